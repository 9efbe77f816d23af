# Getting the code into the apps.
#
# What was relied on (provider source and issue tracker, checked for azurerm 4.x):
# - azurerm_function_app_flex_consumption has an optional `zip_deploy_file` attribute,
#   but the provider uploads it to Kudu's /api/zipdeploy with publishing (basic-auth)
#   credentials (internal/services/appservice/helpers/publish_app.go,
#   PublishZipDeployLocalFileKuduPush). Flex Consumption does not serve /api/zipdeploy
#   (Microsoft's "Zip deployment for Azure Functions" page: "The Flex Consumption plan
#   doesn't support zip deployment"); it takes packages through the One Deploy endpoint
#   /api/publish. hashicorp/terraform-provider-azurerm#29630 ("zip deploy is not
#   working", 404) is open and the fix, PR #31937 (/api/publish?type=zip for flex), was
#   closed unmerged. So `zip_deploy_file` is wired (code_deployment = "provider") for
#   provider versions that fix it, but is not the default.
# - Default (code_deployment = "az-cli"): after the app, its storage role and the Entra
#   pieces exist, a local-exec runs `az functionapp deployment source config-zip`, which
#   the Azure CLI routes to the Flex Consumption publish endpoint (One Deploy), with
#   your `az login` token. It runs again whenever a zip's SHA-256 or the app changes.
#   It retries: a new Storage Blob Data Owner assignment can take minutes to apply, and
#   until then the platform cannot write the package to the deployment container.
#   Needs the Azure CLI and a POSIX shell (Linux, macOS, WSL, Git Bash).
# - The code is deployed only after azuread_app_role_assignment.caller exists, so the
#   caller's first token request already carries the role (the managed-identity back
#   end caches tokens per resource for up to 24 h).

locals {
  code_packages = merge(
    {
      caller = { id = azurerm_function_app_flex_consumption.caller.id, name = azurerm_function_app_flex_consumption.caller.name, zip = local.caller_zip }
      callee = { id = azurerm_function_app_flex_consumption.callee.id, name = azurerm_function_app_flex_consumption.callee.name, zip = local.callee_zip }
    },
    var.enable_rogue_caller ? { rogue = { id = azurerm_function_app_flex_consumption.rogue[0].id, name = azurerm_function_app_flex_consumption.rogue[0].name, zip = local.caller_zip } } : {},
  )
}

resource "terraform_data" "code" {
  for_each = var.code_deployment == "az-cli" ? local.code_packages : {}

  triggers_replace = {
    app_id     = each.value.id
    zip_sha256 = fileexists(each.value.zip) ? filesha256(each.value.zip) : "missing"
  }

  lifecycle {
    precondition {
      condition     = fileexists(each.value.zip)
      error_message = "${each.value.zip} does not exist: run `go run ./deploy/package` from the repository root first (or set package_dir)."
    }
  }

  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = <<-EOT
      set -u
      attempt=1
      while :; do
        if az functionapp deployment source config-zip --only-show-errors \
             --resource-group "$RESOURCE_GROUP" --name "$APP_NAME" --src "$ZIP_PATH" >/dev/null; then
          echo "deployed $ZIP_PATH to $APP_NAME"
          exit 0
        fi
        if [ "$attempt" -ge 6 ]; then
          echo "giving up on $APP_NAME after $attempt attempts; run the same command by hand to see why" >&2
          exit 1
        fi
        echo "deployment to $APP_NAME failed (attempt $attempt of 6); new storage role assignments can take minutes to apply, retrying in 30 s" >&2
        attempt=$((attempt + 1))
        sleep 30
      done
    EOT
    environment = {
      RESOURCE_GROUP = azurerm_resource_group.main.name
      APP_NAME       = each.value.name
      ZIP_PATH       = abspath(each.value.zip)
    }
  }

  depends_on = [
    azurerm_role_assignment.storage_blob_data_owner,
    azuread_application_identifier_uri.callee,
    azuread_app_role_assignment.caller,
  ]
}
