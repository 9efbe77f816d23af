output "api_url" {
  description = "The API's public URL: every request goes through the gateway."
  value       = "https://${azurerm_container_app.api.ingress[0].fqdn}"
}

output "audience" {
  description = "What callers request tokens for (<audience>/.default), e.g. the caller's CALLEE_AUDIENCE."
  value       = local.audience_requested
}

output "api_client_id" {
  description = "The API application's client ID (the aud of its v2 tokens, AUTHMW_AUDIENCES)."
  value       = azuread_application.api.client_id
}

output "app_principal_id" {
  description = "The Container App's system-assigned identity: grant it AcrPull on registry_server if images are private."
  value       = azurerm_container_app.api.identity[0].principal_id
}
