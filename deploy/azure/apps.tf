# The two function apps (plus the optional rogue caller): Linux, Flex Consumption, custom
# handler runtime, each running the "handler" binary from its zip.
#
# The app_settings maps below are checked by terraform_test.go against the names the
# code reads (caller.Settings / caller.RequiredSettings, callee.Settings /
# callee.RequiredSettings, authmw.EnvVars): a name set here that the code does not read
# fails the test. Platform settings are checked against explicit lists instead
# (flexRequiredSettings / flexForbiddenSettings in checks_test.go): Flex Consumption
# refuses FUNCTIONS_WORKER_RUNTIME, WEBSITE_RUN_FROM_PACKAGE and the like.

locals {
  # Host storage through the app's system-assigned identity. The provider writes an
  # AzureWebJobsStorage connection string (without a key) for identity-based deployment
  # storage; the empty value overrides it so the host uses the __accountName form.
  # The provider drops that key from state on read (azurerm #29149), so every app
  # ignores changes to it (lifecycle below) and terraform_data.host_storage_* sets it
  # back to "" after any update (deploy.tf; docs/deploy-azure.md explains why both).
  # __credential pins the system-assigned identity: without it the host's credential
  # would follow AZURE_CLIENT_ID, which names the caller's user-assigned identity.
  platform_settings = {
    AzureWebJobsStorage              = ""
    AzureWebJobsStorage__accountName = azurerm_storage_account.main.name
    AzureWebJobsStorage__credential  = "managedidentity"
  }

  # What every caller instance reads (caller.Settings). The rogue caller gets exactly
  # these too: same code, same settings, only its identity differs.
  caller_settings = merge({
    CALLEE_URL         = local.callee_url
    CALLEE_AUDIENCE    = local.callee_audience_requested
    CALLER_SCHEDULE    = var.caller_schedule
    CALLER_CREDENTIAL  = "managedidentity"
    CALLER_TIMEOUT     = var.caller_timeout
    CALLER_MAX_RETRIES = tostring(var.caller_max_retries)
  }, local.key_vault_caller_settings) # keyvault.tf; empty unless enable_key_vault

  # An object ID no identity has: the allowed-identities list of a revoked caller.
  # (authmw reads an empty AUTHMW_ALLOWED_IDENTITIES as "nobody" too, but a platform may
  # drop an app setting with an empty value, which would mean "not checked".)
  nobody = "00000000-0000-0000-0000-000000000000"

  # The callee's policy (authmw.EnvVars) and own settings (callee.Settings). Easy Auth
  # stays off: no auth_settings / auth_settings_v2 block anywhere; authmw replaces it.
  callee_settings = {
    AUTHMW_TENANT_ID          = local.tenant_id
    AUTHMW_AUDIENCES          = local.callee_audience_accepted
    AUTHMW_REQUIRED_ROLES     = var.app_role_value
    AUTHMW_ALLOWED_IDENTITIES = var.revoke_caller ? local.nobody : local.caller_principal_id
    AUTHMW_EXCLUDED_PATHS     = "/api/healthz"
    CALLEE_LOG_LEVEL          = var.callee_log_level
  }
}

resource "azurerm_function_app_flex_consumption" "caller" {
  name                = local.caller_name
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  service_plan_id     = azurerm_service_plan.caller.id
  https_only          = true
  tags                = local.tags

  storage_container_type      = "blobContainer"
  storage_container_endpoint  = "${azurerm_storage_account.main.primary_blob_endpoint}${azurerm_storage_container.caller.name}"
  storage_authentication_type = "SystemAssignedIdentity"
  runtime_name                = "custom"
  runtime_version             = "1.0"
  instance_memory_in_mb       = var.instance_memory_mb
  maximum_instance_count      = var.maximum_instance_count

  # See deploy.tf: only used with code_deployment = "provider".
  zip_deploy_file = var.code_deployment == "provider" ? local.caller_zip : null

  # Publishing with basic-auth credentials is only needed by zip_deploy_file (the
  # provider pushes to Kudu with them); the Azure CLI path uses your Entra token.
  webdeploy_publish_basic_authentication_enabled = var.code_deployment == "provider"

  identity {
    type         = local.caller_uses_user_assigned ? "SystemAssigned, UserAssigned" : "SystemAssigned"
    identity_ids = local.caller_uses_user_assigned ? [var.caller_user_assigned_identity_id] : null
  }

  site_config {
    application_insights_connection_string = local.app_insights_connection_string
  }

  app_settings = merge(
    local.platform_settings,
    local.caller_settings,
    local.caller_uses_user_assigned ? { AZURE_CLIENT_ID = data.azurerm_user_assigned_identity.caller[0].client_id } : {},
  )

  lifecycle {
    # The provider drops AzureWebJobsStorage from state; see platform_settings.
    ignore_changes = [app_settings["AzureWebJobsStorage"]]
  }
}

resource "azurerm_function_app_flex_consumption" "callee" {
  name                = local.callee_name
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  service_plan_id     = azurerm_service_plan.callee.id
  https_only          = true
  tags                = local.tags

  storage_container_type      = "blobContainer"
  storage_container_endpoint  = "${azurerm_storage_account.main.primary_blob_endpoint}${azurerm_storage_container.callee.name}"
  storage_authentication_type = "SystemAssignedIdentity"
  runtime_name                = "custom"
  runtime_version             = "1.0"
  instance_memory_in_mb       = var.instance_memory_mb
  maximum_instance_count      = var.maximum_instance_count

  zip_deploy_file = var.code_deployment == "provider" ? local.callee_zip : null

  # Publishing with basic-auth credentials is only needed by zip_deploy_file (the
  # provider pushes to Kudu with them); the Azure CLI path uses your Entra token.
  webdeploy_publish_basic_authentication_enabled = var.code_deployment == "provider"

  identity {
    type = "SystemAssigned"
  }

  site_config {
    application_insights_connection_string = local.app_insights_connection_string
  }

  app_settings = merge(local.platform_settings, local.callee_settings)

  lifecycle {
    # The provider drops AzureWebJobsStorage from state; see platform_settings.
    ignore_changes = [app_settings["AzureWebJobsStorage"]]

    # Managed identities live in the subscription's tenant; the app registration, its
    # app role and AUTHMW_TENANT_ID are in the azuread provider's. They must be one.
    precondition {
      condition     = azurerm_function_app_flex_consumption.caller.identity[0].tenant_id == local.tenant_id
      error_message = "The azuread provider's tenant (${local.tenant_id}) is not the tenant of the subscription's managed identities (${azurerm_function_app_flex_consumption.caller.identity[0].tenant_id}): set tenant_id (or ARM_TENANT_ID) to the subscription's tenant (az account show --query tenantId -o tsv)."
    }

    postcondition {
      condition     = self.default_hostname == local.callee_hostname
      error_message = "The callee's default host name is ${self.default_hostname}, not the ${local.callee_hostname} that the caller's CALLEE_URL was derived from. Set app_service_dns_suffix to match and apply again."
    }
  }
}

resource "azurerm_function_app_flex_consumption" "rogue" {
  count               = var.enable_rogue_caller ? 1 : 0
  name                = local.rogue_name
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  service_plan_id     = azurerm_service_plan.rogue[0].id
  https_only          = true
  tags                = local.tags

  storage_container_type      = "blobContainer"
  storage_container_endpoint  = "${azurerm_storage_account.main.primary_blob_endpoint}${azurerm_storage_container.rogue[0].name}"
  storage_authentication_type = "SystemAssignedIdentity"
  runtime_name                = "custom"
  runtime_version             = "1.0"
  instance_memory_in_mb       = var.instance_memory_mb
  maximum_instance_count      = var.maximum_instance_count

  zip_deploy_file = var.code_deployment == "provider" ? local.caller_zip : null

  # Publishing with basic-auth credentials is only needed by zip_deploy_file (the
  # provider pushes to Kudu with them); the Azure CLI path uses your Entra token.
  webdeploy_publish_basic_authentication_enabled = var.code_deployment == "provider"

  # Its own system-assigned identity: never assigned the app role, never allowed.
  identity {
    type = "SystemAssigned"
  }

  site_config {
    application_insights_connection_string = local.app_insights_connection_string
  }

  app_settings = merge(local.platform_settings, local.caller_settings)

  lifecycle {
    # The provider drops AzureWebJobsStorage from state; see platform_settings.
    ignore_changes = [app_settings["AzureWebJobsStorage"]]
  }
}
