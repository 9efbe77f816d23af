variable "subscription_id" {
  description = "Azure subscription to deploy into. null takes ARM_SUBSCRIPTION_ID; azurerm 4.x needs one of the two (export ARM_SUBSCRIPTION_ID=$(az account show --query id -o tsv))."
  type        = string
  default     = null

  validation {
    condition     = var.subscription_id == null || can(regex("^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$", var.subscription_id))
    error_message = "subscription_id must be a subscription GUID (az account show --query id -o tsv) or null."
  }
}

variable "tenant_id" {
  description = "Entra tenant for the callee's app registration. null takes ARM_TENANT_ID or the Azure CLI's tenant. It must be the tenant of the subscription: managed identities live there."
  type        = string
  default     = null

  validation {
    condition     = var.tenant_id == null || can(regex("^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$", var.tenant_id))
    error_message = "tenant_id must be a tenant GUID (az account show --query tenantId -o tsv) or null."
  }
}

variable "location" {
  description = "Azure region for every resource. It must offer the Flex Consumption plan: az functionapp list-flexconsumption-locations -o table."
  type        = string
  default     = "northeurope"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]+$", var.location))
    error_message = "location must be a region name such as northeurope or eastus2 (lower case, no spaces)."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name; a random 6-character suffix keeps global names (storage account, function apps) unique."
  type        = string
  default     = "f2fauth"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,13}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-15 characters: lower-case letters, digits and '-', starting with a letter and not ending with '-' (function app names stay under 32 characters so host IDs cannot collide)."
  }
}

variable "tags" {
  description = "Tags added to every Azure resource."
  type        = map(string)
  default     = {}
}

variable "caller_schedule" {
  description = "The caller's timer, a six-field NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week}) in UTC; becomes the CALLER_SCHEDULE app setting that AutoTriggerFunction/function.json reads as %CALLER_SCHEDULE%."
  type        = string
  default     = "0 */5 * * * *"

  validation {
    condition     = length(regexall("[^ \t]+", var.caller_schedule)) == 6 && can(regex("^[0-9A-Za-z*/,\\- \t]+$", var.caller_schedule))
    error_message = "caller_schedule must be a six-field NCRONTAB expression such as \"0 */5 * * * *\" (second minute hour day month day-of-week)."
  }
}

variable "caller_timeout" {
  description = "CALLER_TIMEOUT: how long one call to the callee may take, retries included (Go duration)."
  type        = string
  default     = "30s"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$", var.caller_timeout))
    error_message = "caller_timeout must be a Go duration such as 30s, 1m or 1m30s."
  }
}

variable "caller_max_retries" {
  description = "CALLER_MAX_RETRIES: retries after a 429 or 5xx answer from the callee."
  type        = number
  default     = 3

  validation {
    condition     = var.caller_max_retries >= 0 && var.caller_max_retries <= 10 && floor(var.caller_max_retries) == var.caller_max_retries
    error_message = "caller_max_retries must be a whole number from 0 to 10."
  }
}

variable "caller_user_assigned_identity_id" {
  description = "Optional resource ID of an existing user-assigned managed identity for the caller to call the callee with. When set, it is attached to the caller, AZURE_CLIENT_ID is set to its client ID, and it (not the system-assigned identity) gets the app role and is the one allowed identity. Empty: the caller's system-assigned identity is used."
  type        = string
  default     = ""

  validation {
    condition     = var.caller_user_assigned_identity_id == "" || can(regex("^/subscriptions/[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}/resourceGroups/[^/]+/providers/Microsoft\\.ManagedIdentity/userAssignedIdentities/[^/]+$", var.caller_user_assigned_identity_id))
    error_message = "caller_user_assigned_identity_id must be empty or a user-assigned identity resource ID spelt exactly /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name> (the provider parses it case-sensitively: copy it from az identity show -g <rg> -n <name> --query id -o tsv)."
  }
}

variable "revoke_caller" {
  description = "Kill switch. true removes the caller's app-role assignment and replaces the caller in the callee's AUTHMW_ALLOWED_IDENTITIES with the all-zero GUID, which no identity has, so the callee refuses the caller (403) as soon as the setting is applied, even with tokens that still carry the role (managed-identity tokens are cached up to 24 h). Never clear AUTHMW_ALLOWED_IDENTITIES by hand instead: an empty list means the identity is not checked at all."
  type        = bool
  default     = false
}

variable "enable_rogue_caller" {
  description = "Deploy a third function app running the caller's code with the same settings but its own identity, which is neither assigned the app role nor allowed, to show the refusal in the cloud."
  type        = bool
  default     = false
}

variable "require_app_role_assignment" {
  description = "app_role_assignment_required on the callee's service principal. true (recommended): Entra refuses tokens for the callee to any identity without an app-role assignment, so a rogue caller fails at token time (AADSTS501051) before reaching the callee. false: any identity in the tenant gets a token (without roles) and authmw answers 403 - set it to watch authmw's own refusal."
  type        = bool
  default     = true
}

variable "app_role_value" {
  description = "Value of the callee's app role that callers must hold; becomes AUTHMW_REQUIRED_ROLES."
  type        = string
  default     = "Exclusive.Invoke"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9._-]{0,119}$", var.app_role_value))
    error_message = "app_role_value must start with a letter and hold only letters, digits, '.', '_' or '-' (no spaces, at most 120 characters)."
  }
}

variable "callee_log_level" {
  description = "CALLEE_LOG_LEVEL: debug, info, warn or error."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.callee_log_level)
    error_message = "callee_log_level must be one of debug, info, warn, error."
  }
}

variable "enable_application_insights" {
  description = "Create a Log Analytics workspace and Application Insights and connect both function apps (the caller's invocation logs, including its Logs lines, land there)."
  type        = bool
  default     = true
}

variable "instance_memory_mb" {
  description = "Flex Consumption instance memory per app."
  type        = number
  default     = 2048

  validation {
    condition     = contains([512, 2048, 4096], var.instance_memory_mb)
    error_message = "instance_memory_mb must be 512, 2048 or 4096."
  }
}

variable "maximum_instance_count" {
  description = "Flex Consumption scale-out limit per app, 1-1000 (azurerm accepts values below 40 from 4.58.0, this module's floor)."
  type        = number
  default     = 40

  validation {
    condition     = var.maximum_instance_count >= 1 && var.maximum_instance_count <= 1000 && floor(var.maximum_instance_count) == var.maximum_instance_count
    error_message = "maximum_instance_count must be a whole number from 1 to 1000."
  }
}

variable "code_deployment" {
  description = "How the zips from `go run ./deploy/package` reach the apps. \"az-cli\" (default): a local-exec runs `az functionapp deployment source config-zip`, which uses the Flex Consumption publish endpoint, whenever a zip changes. \"provider\": the provider's zip_deploy_file attribute (see deploy.tf for why it is not the default). \"none\": infrastructure only; deploy the zips yourself."
  type        = string
  default     = "az-cli"

  validation {
    condition     = contains(["az-cli", "provider", "none"], var.code_deployment)
    error_message = "code_deployment must be one of az-cli, provider, none."
  }
}

variable "package_dir" {
  description = "Directory holding caller.zip and callee.zip. null means dist/ next to these files, where `go run ./deploy/package` writes them."
  type        = string
  default     = null

  validation {
    condition     = var.package_dir == null || try(length(trimspace(var.package_dir)) > 0, false)
    error_message = "package_dir must be null or a non-empty directory path."
  }
}

variable "app_service_dns_suffix" {
  description = "DNS suffix of function app default host names (azurewebsites.net in the public cloud). The callee's URL is derived from it before the callee exists and checked against the real host name after creation."
  type        = string
  default     = "azurewebsites.net"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.app_service_dns_suffix))
    error_message = "app_service_dns_suffix must be a DNS suffix such as azurewebsites.net or chinacloudsites.cn."
  }
}

variable "enable_key_vault" {
  description = "Create a Key Vault (RBAC authorization) with one secret, assign only the caller's identity \"Key Vault Secrets User\" on it, and set CALLER_KEYVAULT_URL / CALLER_KEYVAULT_SECRET on the callers (docs/key-vault.md). Off by default."
  type        = bool
  default     = false
}

variable "key_vault_secret_name" {
  description = "Name of the secret the caller reads every run (CALLER_KEYVAULT_SECRET), with enable_key_vault."
  type        = string
  default     = "callee-api-key"

  validation {
    condition     = can(regex("^[0-9A-Za-z-]{1,127}$", var.key_vault_secret_name))
    error_message = "key_vault_secret_name must be 1-127 letters, digits and dashes."
  }
}

variable "key_vault_secret_value" {
  description = "First version of the secret, with enable_key_vault; null generates a random UUID. It ends up in the Terraform state: rotate with az keyvault secret set afterwards."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.key_vault_secret_value == null || try(length(var.key_vault_secret_value) >= 1 && length(var.key_vault_secret_value) <= 25600, false)
    error_message = "key_vault_secret_value must be null or 1 to 25600 characters (Key Vault's limit is 25 KiB)."
  }
}
