# Providers: azurerm 4.x (azurerm_container_app with several containers, probes and
# ingress), azuread 3.x (client_id naming, as in deploy/azure) and random.
terraform {
  required_version = ">= 1.6.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.30"
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

  features {}
}

provider "azuread" {
  # null: the tenant of the signed-in Azure CLI account (or ARM_TENANT_ID).
  tenant_id = var.tenant_id
}
