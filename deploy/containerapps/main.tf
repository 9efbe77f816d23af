# Shared pieces: names, the resource group, logs and the Container Apps environment.

data "azuread_client_config" "current" {}

resource "random_string" "suffix" {
  length  = 6
  lower   = true
  upper   = false
  numeric = true
  special = false
}

locals {
  suffix    = random_string.suffix.result
  tenant_id = data.azuread_client_config.current.tenant_id

  resource_group_name = "rg-${var.name_prefix}-ca-${local.suffix}"
  environment_name    = "cae-${var.name_prefix}-${local.suffix}"
  app_name            = "${var.name_prefix}-api-${local.suffix}"

  tags = merge({ app = "f2fauth", "managed-by" = "terraform" }, var.tags)
}

resource "azurerm_resource_group" "main" {
  name     = local.resource_group_name
  location = var.location
  tags     = local.tags
}

resource "azurerm_log_analytics_workspace" "main" {
  name                = "log-${var.name_prefix}-${local.suffix}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  sku                 = "PerGB2018"
  retention_in_days   = 30
  tags                = local.tags
}

resource "azurerm_container_app_environment" "main" {
  name                       = local.environment_name
  resource_group_name        = azurerm_resource_group.main.name
  location                   = azurerm_resource_group.main.location
  log_analytics_workspace_id = azurerm_log_analytics_workspace.main.id
  tags                       = local.tags
}
