# Optional (enable_key_vault, default off): a Key Vault the caller reads a secret from on
# every run with the same managed identity it calls the callee with (caller/keyvault.go,
# docs/key-vault.md).
#
#   - the vault uses Azure RBAC for its data plane (rbac_authorization_enabled), never
#     access policies;
#   - only the caller's identity (local.caller_principal_id: the user-assigned identity
#     when one is given, else the caller app's system-assigned one) is assigned
#     "Key Vault Secrets User" on the vault. The rogue caller gets the same settings and
#     is refused with 403 by Key Vault;
#   - whoever runs Terraform is assigned "Key Vault Secrets Officer" on this vault only,
#     to create the secret. RBAC takes a few minutes to propagate: if the first apply
#     fails with 403 on the secret, run apply again.
#
# The secret's first version comes from key_vault_secret_value (or a random UUID) and is
# therefore in the Terraform state; rotate it with `az keyvault secret set` (a new
# version), which Terraform leaves alone (ignore_changes) and the caller reads on its
# next run.

locals {
  key_vault_name = "kv${substr(replace(var.name_prefix, "-", ""), 0, 14)}${local.suffix}"

  # The caller's Key Vault settings (caller.EnvKeyVaultURL, caller.EnvKeyVaultSecret);
  # empty when the vault is off.
  key_vault_caller_settings = var.enable_key_vault ? {
    CALLER_KEYVAULT_URL    = azurerm_key_vault.main[0].vault_uri
    CALLER_KEYVAULT_SECRET = var.key_vault_secret_name
  } : {}
}

resource "azurerm_key_vault" "main" {
  count               = var.enable_key_vault ? 1 : 0
  name                = local.key_vault_name
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  tenant_id           = local.tenant_id
  sku_name            = "standard"
  tags                = local.tags

  # Data-plane access by Azure RBAC role assignments (below), not access policies.
  rbac_authorization_enabled = true
  soft_delete_retention_days = 7
  purge_protection_enabled   = false
}

resource "random_uuid" "key_vault_secret" {
  count = var.enable_key_vault && var.key_vault_secret_value == null ? 1 : 0
}

# The deployer writes the secret: "Key Vault Secrets Officer" on this vault only.
resource "azurerm_role_assignment" "key_vault_deployer" {
  count                = var.enable_key_vault ? 1 : 0
  scope                = azurerm_key_vault.main[0].id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azuread_client_config.current.object_id
}

# The caller's identity, and only it, reads secrets: "Key Vault Secrets User".
resource "azurerm_role_assignment" "key_vault_caller" {
  count                = var.enable_key_vault ? 1 : 0
  scope                = azurerm_key_vault.main[0].id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = local.caller_principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_key_vault_secret" "caller" {
  count        = var.enable_key_vault ? 1 : 0
  name         = var.key_vault_secret_name
  key_vault_id = azurerm_key_vault.main[0].id
  value        = var.key_vault_secret_value == null ? random_uuid.key_vault_secret[0].result : var.key_vault_secret_value
  content_type = "text/plain"
  tags         = local.tags

  depends_on = [azurerm_role_assignment.key_vault_deployer]

  lifecycle {
    # Rotation happens outside Terraform (az keyvault secret set adds a version).
    ignore_changes = [value]
  }
}
