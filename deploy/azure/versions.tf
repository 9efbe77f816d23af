# Providers. azurerm 4.x: azurerm_function_app_flex_consumption, whose runtime_name
# validation accepts "custom" (webapps.RuntimeNameCustom in the provider's
# internal/services/appservice/function_app_flex_consumption_resource.go), and
# azurerm_storage_container.storage_account_id. azuread 3.x renamed application_id to
# client_id; this configuration uses client_id throughout. No other provider is used:
# terraform_data (code deployment) is built into Terraform >= 1.4.
#
# The azurerm floor is the first release that has every argument used with the values
# the variables allow (checks_test.go computes it and fails if this constraint allows
# less): https_only on the Flex Consumption app exists from 4.31.0, 4.39.0 fixed
# maximum_instance_count updates not being applied, and 4.58.0 accepts
# maximum_instance_count below 40. Lock-file policy: docs/deploy-azure.md.
terraform {
  required_version = ">= 1.6.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.58"
    }
    azuread = {
      source  = "hashicorp/azuread"
      version = "~> 3.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "azurerm" {
  # null: taken from ARM_SUBSCRIPTION_ID (azurerm 4.x requires one of the two).
  subscription_id = var.subscription_id

  features {
    resource_group {
      # Application Insights adds a smart-detector alert rule to the resource group on
      # its own; without this, `terraform destroy` refuses to delete the group.
      prevent_deletion_if_contains_resources = false
    }
  }
}

provider "azuread" {
  # null: the tenant of the signed-in Azure CLI account (or ARM_TENANT_ID).
  tenant_id = var.tenant_id
}
