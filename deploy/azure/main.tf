# Shared pieces: names, the resource group, the storage account (host storage and the
# Flex Consumption deployment containers) and optional Application Insights.

data "azuread_client_config" "current" {}

resource "random_string" "suffix" {
  length  = 6
  lower   = true
  upper   = false
  numeric = true
  special = false
}

locals {
  suffix = random_string.suffix.result

  resource_group_name  = "rg-${var.name_prefix}-${local.suffix}"
  storage_account_name = "${substr(replace(var.name_prefix, "-", ""), 0, 16)}${local.suffix}"
  caller_name          = "${var.name_prefix}-caller-${local.suffix}"
  callee_name          = "${var.name_prefix}-callee-${local.suffix}"
  rogue_name           = "${var.name_prefix}-rogue-${local.suffix}"

  tenant_id = data.azuread_client_config.current.tenant_id

  # The callee's host name is derived, not read from the callee resource: the caller's
  # CALLEE_URL needs it while the callee's AUTHMW_ALLOWED_IDENTITIES needs the caller's
  # principal ID, and reading both from the resources would be a dependency cycle. A
  # postcondition on the callee checks the derivation against the real default_hostname.
  callee_hostname = "${local.callee_name}.${var.app_service_dns_suffix}"
  callee_url      = "https://${local.callee_hostname}/api/ExclusiveFunction"

  # Zips written by `go run ./deploy/package` (deploy/package/pack: <app>.zip).
  package_dir = var.package_dir == null ? "${path.module}/dist" : var.package_dir
  caller_zip  = "${local.package_dir}/caller.zip"
  callee_zip  = "${local.package_dir}/callee.zip"

  app_insights_connection_string = var.enable_application_insights ? azurerm_application_insights.main[0].connection_string : null

  tags = merge({ app = "f2fauth", "managed-by" = "terraform" }, var.tags)
}

resource "azurerm_resource_group" "main" {
  name     = local.resource_group_name
  location = var.location
  tags     = local.tags
}

# One storage account serves all apps: AzureWebJobsStorage (timer locks and schedule
# monitor, reached with each app's managed identity) and one deployment container per app
# that Flex Consumption runs the package from. Apps sharing an account need distinct host
# IDs; they are derived from the app names, which differ within their first 32 characters.
resource "azurerm_storage_account" "main" {
  name                            = local.storage_account_name
  resource_group_name             = azurerm_resource_group.main.name
  location                        = azurerm_resource_group.main.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  tags                            = local.tags
}

resource "azurerm_storage_container" "caller" {
  name                  = "deploy-caller"
  storage_account_id    = azurerm_storage_account.main.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "callee" {
  name                  = "deploy-callee"
  storage_account_id    = azurerm_storage_account.main.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "rogue" {
  count                 = var.enable_rogue_caller ? 1 : 0
  name                  = "deploy-rogue"
  storage_account_id    = azurerm_storage_account.main.id
  container_access_type = "private"
}

# Flex Consumption allows one app per plan, so each app gets its own FC1 plan.
resource "azurerm_service_plan" "caller" {
  name                = "asp-${local.caller_name}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = local.tags
}

resource "azurerm_service_plan" "callee" {
  name                = "asp-${local.callee_name}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = local.tags
}

resource "azurerm_service_plan" "rogue" {
  count               = var.enable_rogue_caller ? 1 : 0
  name                = "asp-${local.rogue_name}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = local.tags
}

resource "azurerm_log_analytics_workspace" "main" {
  count               = var.enable_application_insights ? 1 : 0
  name                = "log-${var.name_prefix}-${local.suffix}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  sku                 = "PerGB2018"
  retention_in_days   = 30
  tags                = local.tags
}

resource "azurerm_application_insights" "main" {
  count               = var.enable_application_insights ? 1 : 0
  name                = "appi-${var.name_prefix}-${local.suffix}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  workspace_id        = azurerm_log_analytics_workspace.main[0].id
  application_type    = "other"
  tags                = local.tags
}

# Each app's system-assigned identity reads its deployment package and uses
# AzureWebJobsStorage through this role (Flex Consumption: storage_authentication_type =
# "SystemAssignedIdentity"; host storage: AzureWebJobsStorage__accountName).
resource "azurerm_role_assignment" "storage_blob_data_owner" {
  for_each = merge(
    {
      caller = azurerm_function_app_flex_consumption.caller.identity[0].principal_id
      callee = azurerm_function_app_flex_consumption.callee.identity[0].principal_id
    },
    var.enable_rogue_caller ? { rogue = azurerm_function_app_flex_consumption.rogue[0].identity[0].principal_id } : {},
  )

  scope                = azurerm_storage_account.main.id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = each.value
  principal_type       = "ServicePrincipal"
}
