output "resource_group_name" {
  description = "Resource group holding every Azure resource (delete it, or run terraform destroy, to tear down)."
  value       = azurerm_resource_group.main.name
}

output "caller_url" {
  description = "The caller function app's base URL (it has no public function: its timer calls the callee)."
  value       = "https://${azurerm_function_app_flex_consumption.caller.default_hostname}"
}

output "callee_url" {
  description = "The callee's protected function URL, as set in the caller's CALLEE_URL."
  value       = "https://${azurerm_function_app_flex_consumption.callee.default_hostname}/api/ExclusiveFunction"
}

output "callee_healthz_url" {
  description = "The callee's unauthenticated health endpoint (AUTHMW_EXCLUDED_PATHS)."
  value       = "https://${azurerm_function_app_flex_consumption.callee.default_hostname}/api/healthz"
}

output "rogue_caller_url" {
  description = "The rogue caller's base URL, or null when enable_rogue_caller is false."
  value       = var.enable_rogue_caller ? "https://${azurerm_function_app_flex_consumption.rogue[0].default_hostname}" : null
}

output "callee_client_id" {
  description = "Client (application) ID of the callee's Entra app: the aud of the v2 tokens the callee accepts (AUTHMW_AUDIENCES)."
  value       = azuread_application.callee.client_id
}

output "callee_application_id_uri" {
  description = "Application ID URI the caller requests tokens for (CALLEE_AUDIENCE; scope <uri>/.default)."
  value       = azuread_application_identifier_uri.callee.identifier_uri
}

output "tenant_id" {
  description = "Entra tenant of the callee app and the managed identities (AUTHMW_TENANT_ID)."
  value       = local.tenant_id
}

output "caller_principal_id" {
  description = "Object (principal) ID of the identity the caller calls with: assigned the app role and listed in AUTHMW_ALLOWED_IDENTITIES."
  value       = local.caller_principal_id
}

output "rogue_principal_id" {
  description = "Object ID of the rogue caller's own identity (never assigned, never allowed), or null."
  value       = var.enable_rogue_caller ? azurerm_function_app_flex_consumption.rogue[0].identity[0].principal_id : null
}

output "caller_logs_command" {
  description = "The command that streams the caller's logs live (Azure Functions Core Tools opens Application Insights Live Metrics for the caller)."
  value       = var.enable_application_insights ? "func azure functionapp logstream ${azurerm_function_app_flex_consumption.caller.name} --browser" : "Application Insights is disabled (enable_application_insights = false): set it to true to get the caller's logs."
}

output "caller_logs_query_command" {
  description = "The command that prints the caller's last 50 log lines and runs (Azure CLI with the application-insights extension)."
  value       = var.enable_application_insights ? "az monitor app-insights query --resource-group ${azurerm_resource_group.main.name} --app ${azurerm_application_insights.main[0].name} --offset 1h --analytics-query \"union traces, requests | where cloud_RoleName =~ '${azurerm_function_app_flex_consumption.caller.name}' | order by timestamp desc | take 50 | project timestamp, itemType, message, name, resultCode, success\"" : null
}
