# The API's Entra application: the audience callers request tokens for and the app role
# they must hold, assigned to each identity in caller_principal_ids. Same shape as the
# callee's registration in deploy/azure/entra.tf (v2 tokens: aud = the client ID).

resource "random_uuid" "invoke_role" {}

resource "azuread_application" "api" {
  display_name     = "${var.name_prefix} api ${local.suffix}"
  sign_in_audience = "AzureADMyOrg"
  owners           = [data.azuread_client_config.current.object_id]

  api {
    # v2 tokens carry aud = the client ID whichever form the caller asked for, so
    # AUTHMW_AUDIENCES holds exactly one value.
    requested_access_token_version = 2
  }

  app_role {
    id                   = random_uuid.invoke_role.result
    value                = var.app_role_value
    display_name         = "Call the API behind the f2fauth gateway"
    description          = "Assigned to the managed identities allowed to call."
    allowed_member_types = ["Application"]
    enabled              = true
  }

  lifecycle {
    ignore_changes = [identifier_uris]
  }
}

resource "azuread_application_identifier_uri" "api" {
  application_id = azuread_application.api.id
  identifier_uri = "api://${azuread_application.api.client_id}"
}

resource "azuread_service_principal" "api" {
  client_id                    = azuread_application.api.client_id
  app_role_assignment_required = true
  owners                       = [data.azuread_client_config.current.object_id]
}

resource "azuread_app_role_assignment" "callers" {
  for_each = toset(var.caller_principal_ids)

  app_role_id         = azuread_service_principal.api.app_role_ids[var.app_role_value]
  principal_object_id = each.value
  resource_object_id  = azuread_service_principal.api.object_id
}

locals {
  # The audience callers request ("<audience>/.default") and the one the gateway accepts.
  audience_requested = "api://${azuread_application.api.client_id}"
  audience_accepted  = azuread_application.api.client_id
}
