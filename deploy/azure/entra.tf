# The callee's Entra application: the audience callers request tokens for, the app role
# they must hold, and the one assignment that lets the caller's managed identity in.
# The signed-in principal needs Application Administrator (or Application.ReadWrite.All +
# AppRoleAssignment.ReadWrite.All) in the tenant.

resource "random_uuid" "exclusive_invoke" {}

resource "azuread_application" "callee" {
  display_name     = "${var.name_prefix} callee ${local.suffix}"
  sign_in_audience = "AzureADMyOrg"
  owners           = [data.azuread_client_config.current.object_id]

  api {
    # Token version, chosen deliberately: 2.
    # v2 tokens always carry aud = the callee's client ID (a GUID), whichever form the
    # caller asked for (api://<client id>/.default or <client id>/.default), and
    # iss = https://login.microsoftonline.com/<tenant>/v2.0. So AUTHMW_AUDIENCES holds
    # exactly one value, the client ID, and no second spelling of the audience is
    # accepted. (With v1 - the default when this is null - aud would be the exact
    # string the caller requested and iss https://sts.windows.net/<tenant>/; authmw
    # accepts both versions in tenant mode, but the audience list would then have to
    # name api://<client id> as well.) The version is a property of this resource app,
    # not of the endpoint the caller uses, so managed-identity tokens follow it too.
    requested_access_token_version = 2
  }

  app_role {
    id                   = random_uuid.exclusive_invoke.result
    value                = var.app_role_value
    display_name         = "Invoke the exclusive function"
    description          = "Call the callee's ExclusiveFunction. Assigned to the caller's managed identity only."
    allowed_member_types = ["Application"]
    enabled              = true
  }

  # The Application ID URI api://<client id> needs the client ID, which exists only
  # after this resource is created; it is set by azuread_application_identifier_uri
  # below (the provider's documented pattern), so it must be ignored here.
  lifecycle {
    ignore_changes = [identifier_uris]
  }
}

resource "azuread_application_identifier_uri" "callee" {
  application_id = azuread_application.callee.id
  identifier_uri = "api://${azuread_application.callee.client_id}"
}

resource "azuread_service_principal" "callee" {
  client_id                    = azuread_application.callee.client_id
  app_role_assignment_required = var.require_app_role_assignment
  owners                       = [data.azuread_client_config.current.object_id]
}

locals {
  caller_uses_user_assigned = var.caller_user_assigned_identity_id != ""

  # The identity the caller calls the callee with: the user-assigned one when given,
  # else the function app's system-assigned identity. It is assigned the app role and
  # is the only entry of AUTHMW_ALLOWED_IDENTITIES.
  caller_principal_id = local.caller_uses_user_assigned ? data.azurerm_user_assigned_identity.caller[0].principal_id : azurerm_function_app_flex_consumption.caller.identity[0].principal_id

  # The audience the caller requests ("<CALLEE_AUDIENCE>/.default") and the one authmw
  # accepts. See requested_access_token_version above for why they differ in form.
  callee_audience_requested = "api://${azuread_application.callee.client_id}"
  callee_audience_accepted  = azuread_application.callee.client_id
}

data "azurerm_user_assigned_identity" "caller" {
  count               = local.caller_uses_user_assigned ? 1 : 0
  name                = element(split("/", var.caller_user_assigned_identity_id), 8)
  resource_group_name = element(split("/", var.caller_user_assigned_identity_id), 4)
}

# revoke_caller = true removes this assignment. Tokens already minted keep their roles
# until they expire, and the managed-identity back end caches tokens per resource for up
# to 24 h, so revoke_caller also takes the caller out of AUTHMW_ALLOWED_IDENTITIES, which
# the callee enforces at once.
resource "azuread_app_role_assignment" "caller" {
  count = var.revoke_caller ? 0 : 1

  app_role_id         = azuread_service_principal.callee.app_role_ids[var.app_role_value]
  principal_object_id = local.caller_principal_id
  resource_object_id  = azuread_service_principal.callee.object_id

  lifecycle {
    precondition {
      condition     = azurerm_function_app_flex_consumption.caller.identity[0].tenant_id == local.tenant_id
      error_message = "The azuread provider's tenant (${local.tenant_id}) is not the tenant of the caller's managed identity (${azurerm_function_app_flex_consumption.caller.identity[0].tenant_id}): set tenant_id (or ARM_TENANT_ID) to the subscription's tenant (az account show --query tenantId -o tsv)."
    }
  }
}
