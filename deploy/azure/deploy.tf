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
#   the Azure CLI (2.60.0 or later) routes to the Flex Consumption publish endpoint (One
#   Deploy), with your `az login` token. It names the app by resource ID (--ids), so it
#   deploys into the subscription Terraform used even when that is not the CLI's
#   default. It runs again whenever a zip's SHA-256 or the app changes. It retries: a new
#   Storage Blob Data Owner assignment can take minutes to apply, and until then the
#   platform cannot write the package to the deployment container. Each attempt is
#   bounded by `timeout` (GNU coreutils; gtimeout on macOS): after publishing, the CLI
#   polls the host's status in a loop that never ends if the host never answers 2xx.
#   Needs the Azure CLI and a POSIX shell (Linux, macOS, WSL, Git Bash).
# - The code is deployed only after azuread_app_role_assignment.caller exists, so the
#   caller's first token request already carries the role (the managed-identity back
#   end caches tokens per resource for up to 24 h).
# - terraform_data.host_storage_*: after any in-place update of a function app, set its
#   AzureWebJobsStorage back to "" (see apps.tf and docs/deploy-azure.md).

locals {
  code_packages = merge(
    {
      caller = { id = azurerm_function_app_flex_consumption.caller.id, name = azurerm_function_app_flex_consumption.caller.name, zip = local.caller_zip }
      callee = { id = azurerm_function_app_flex_consumption.callee.id, name = azurerm_function_app_flex_consumption.callee.name, zip = local.callee_zip }
    },
    var.enable_rogue_caller ? { rogue = { id = azurerm_function_app_flex_consumption.rogue[0].id, name = azurerm_function_app_flex_consumption.rogue[0].name, zip = local.caller_zip } } : {},
  )

  # Shared by the local-exec steps: the Azure CLI version they need, and a `timeout`
  # command that kills the whole process group (az is a wrapper around Python).
  az_cli_preamble = <<-EOT
    set -u
    v=$(az version --query '"azure-cli"' -o tsv 2>/dev/null || echo 0)
    major=$${v%%.*}; rest=$${v#*.}; minor=$${rest%%.*}
    if [ "$major" -lt 2 ] 2>/dev/null || { [ "$major" -eq 2 ] && [ "$minor" -lt 60 ]; } 2>/dev/null; then
      echo "Azure CLI $v found; 2.60.0 or later is needed (az upgrade)" >&2
      exit 1
    fi
    if command -v timeout >/dev/null 2>&1; then bound=timeout
    elif command -v gtimeout >/dev/null 2>&1; then bound=gtimeout
    else
      echo "the deployment needs timeout (GNU coreutils; on macOS: brew install coreutils)" >&2
      exit 1
    fi
  EOT

  # A code deployment attempt may take this long (seconds) before it is killed.
  deploy_attempt_timeout = 600
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
      ${local.az_cli_preamble}
      attempt=1
      while :; do
        "$bound" -k 30 "$ATTEMPT_TIMEOUT" az functionapp deployment source config-zip --only-show-errors \
          --ids "$APP_ID" --src "$ZIP_PATH" >/dev/null
        rc=$?
        if [ "$rc" -eq 0 ]; then
          echo "deployed $ZIP_PATH to $APP_NAME"
          exit 0
        fi
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
          echo "deployment to $APP_NAME did not finish within $ATTEMPT_TIMEOUT s (the CLI waits for the host to answer)" >&2
        fi
        if [ "$attempt" -ge 6 ]; then
          echo "giving up on $APP_NAME after $attempt attempts; run the same command by hand to see why: az functionapp deployment source config-zip --ids $APP_ID --src $ZIP_PATH" >&2
          exit 1
        fi
        echo "deployment to $APP_NAME failed (attempt $attempt of 6); new storage role assignments can take minutes to apply, retrying in 30 s" >&2
        attempt=$((attempt + 1))
        sleep 30
      done
    EOT
    environment = {
      APP_ID          = each.value.id
      APP_NAME        = each.value.name
      ZIP_PATH        = abspath(each.value.zip)
      ATTEMPT_TIMEOUT = tostring(local.deploy_attempt_timeout)
    }
  }

  depends_on = [
    azurerm_role_assignment.storage_blob_data_owner,
    azuread_application_identifier_uri.callee,
    azuread_app_role_assignment.caller,
    terraform_data.host_storage_caller,
    terraform_data.host_storage_callee,
    terraform_data.host_storage_rogue,
  ]
}

# AzureWebJobsStorage after an update. Each app is created with AzureWebJobsStorage = ""
# (so the host uses AzureWebJobsStorage__accountName with its identity), but the provider
# drops that key from state, and on every in-place update it writes its own keyless
# connection string there unless the planned settings hold the key, which
# ignore_changes prevents (azurerm #29149, #30732, #33211). So whenever an app is
# updated in place, this step sets the key back to "" with the Azure CLI. On a plan with
# no other change nothing runs and nothing restarts.
locals {
  host_storage_command = <<-EOT
    ${local.az_cli_preamble}
    "$bound" -k 30 300 az functionapp config appsettings set --only-show-errors \
      --ids "$APP_ID" --settings "AzureWebJobsStorage=" >/dev/null || {
      echo "could not reset AzureWebJobsStorage on $APP_ID; run: az functionapp config appsettings set --ids $APP_ID --settings AzureWebJobsStorage=" >&2
      exit 1
    }
    echo "AzureWebJobsStorage reset to empty on $APP_ID"
  EOT
}

resource "terraform_data" "host_storage_caller" {
  triggers_replace = azurerm_function_app_flex_consumption.caller.id

  lifecycle {
    replace_triggered_by = [azurerm_function_app_flex_consumption.caller]
  }

  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = local.host_storage_command
    environment = { APP_ID = azurerm_function_app_flex_consumption.caller.id }
  }
}

resource "terraform_data" "host_storage_callee" {
  triggers_replace = azurerm_function_app_flex_consumption.callee.id

  lifecycle {
    replace_triggered_by = [azurerm_function_app_flex_consumption.callee]
  }

  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = local.host_storage_command
    environment = { APP_ID = azurerm_function_app_flex_consumption.callee.id }
  }
}

resource "terraform_data" "host_storage_rogue" {
  count            = var.enable_rogue_caller ? 1 : 0
  triggers_replace = azurerm_function_app_flex_consumption.rogue[count.index].id

  lifecycle {
    replace_triggered_by = [azurerm_function_app_flex_consumption.rogue[count.index]]
  }

  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = local.host_storage_command
    environment = { APP_ID = azurerm_function_app_flex_consumption.rogue[count.index].id }
  }
}
