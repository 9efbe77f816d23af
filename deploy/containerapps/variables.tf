variable "subscription_id" {
  description = "Azure subscription to deploy into. null takes ARM_SUBSCRIPTION_ID."
  type        = string
  default     = null

  validation {
    condition     = var.subscription_id == null || can(regex("^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$", var.subscription_id))
    error_message = "subscription_id must be a subscription GUID (az account show --query id -o tsv) or null."
  }
}

variable "tenant_id" {
  description = "Entra tenant of the API's app registration. null takes ARM_TENANT_ID or the Azure CLI's tenant."
  type        = string
  default     = null

  validation {
    condition     = var.tenant_id == null || can(regex("^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$", var.tenant_id))
    error_message = "tenant_id must be a tenant GUID (az account show --query tenantId -o tsv) or null."
  }
}

variable "location" {
  description = "Azure region for every resource (one that offers Azure Container Apps)."
  type        = string
  default     = "northeurope"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]+$", var.location))
    error_message = "location must be a region name such as northeurope or eastus2 (lower case, no spaces)."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name; a random 6-character suffix keeps names unique."
  type        = string
  default     = "f2fauth"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,13}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-15 characters: lower-case letters, digits and '-', starting with a letter and not ending with '-'."
  }
}

variable "tags" {
  description = "Tags added to every Azure resource."
  type        = map(string)
  default     = {}
}

variable "gateway_image" {
  description = "Image of the callee gateway, built from deploy/container/Dockerfile and pushed to a registry the Container App can pull from (public, or see registry_server)."
  type        = string

  validation {
    condition     = length(trimspace(var.gateway_image)) > 0 && !can(regex("\\s", var.gateway_image))
    error_message = "gateway_image must be an image reference such as myregistry.azurecr.io/f2fauth-callee:1.0."
  }
}

variable "app_image" {
  description = "Image of the application the gateway protects, in any language. It must listen on 127.0.0.1:<app_port> and may read the X-MS-CLIENT-PRINCIPAL* headers the gateway sets."
  type        = string

  validation {
    condition     = length(trimspace(var.app_image)) > 0 && !can(regex("\\s", var.app_image))
    error_message = "app_image must be an image reference such as myregistry.azurecr.io/orders-api:1.0."
  }
}

variable "app_port" {
  description = "Port the application listens on inside the replica; becomes CALLEE_UPSTREAM_URL=http://127.0.0.1:<app_port>. It must differ from the gateway's port (8080)."
  type        = number
  default     = 3000

  validation {
    condition     = var.app_port >= 1 && var.app_port <= 65535 && floor(var.app_port) == var.app_port && var.app_port != 8080
    error_message = "app_port must be a port number other than 8080, which the gateway listens on."
  }
}

variable "app_env" {
  description = "Environment variables of the application container (not of the gateway). Tell the app to listen on 127.0.0.1:<app_port> here if it reads its address from the environment."
  type        = map(string)
  default     = {}
}

variable "app_health_path" {
  description = "CALLEE_UPSTREAM_HEALTH_PATH: the application's health path the gateway probes for its readiness (any answer below 500 is up). Empty: a TCP connect to the app's port."
  type        = string
  default     = ""

  validation {
    condition     = var.app_health_path == "" || can(regex("^/[^/?# ]", var.app_health_path))
    error_message = "app_health_path must be empty or a path such as /healthz (no query)."
  }
}

variable "upstream_timeout" {
  description = "CALLEE_UPSTREAM_TIMEOUT: how long the gateway waits for the app's response headers (Go duration, 1s to 10m); 504 after that."
  type        = string
  default     = "30s"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ms|s|m))+$", var.upstream_timeout))
    error_message = "upstream_timeout must be a Go duration such as 30s or 2m."
  }
}

variable "pass_authorization" {
  description = "CALLEE_UPSTREAM_PASS_AUTHORIZATION: pass the caller's bearer token on to the app (as Easy Auth does). false if the app has no use for it."
  type        = bool
  default     = true
}

variable "caller_principal_ids" {
  description = "Object IDs of the managed identities (service principals) allowed to call: each is assigned the app role and listed in AUTHMW_ALLOWED_IDENTITIES. Empty: nobody is allowed yet (the all-zero GUID is listed)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.caller_principal_ids : can(regex("^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$", id))])
    error_message = "caller_principal_ids must be object ID GUIDs (az identity show ... --query principalId -o tsv)."
  }
}

variable "app_role_value" {
  description = "Value of the API's app role that callers must hold; becomes AUTHMW_REQUIRED_ROLES."
  type        = string
  default     = "Exclusive.Invoke"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9._-]{0,119}$", var.app_role_value))
    error_message = "app_role_value must start with a letter and hold only letters, digits, '.', '_' or '-'."
  }
}

variable "callee_log_level" {
  description = "CALLEE_LOG_LEVEL of the gateway: debug, info, warn or error."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.callee_log_level)
    error_message = "callee_log_level must be one of debug, info, warn, error."
  }
}

variable "min_replicas" {
  description = "Minimum replicas (each runs the gateway and the app side by side)."
  type        = number
  default     = 1
}

variable "max_replicas" {
  description = "Maximum replicas."
  type        = number
  default     = 3
}

variable "registry_server" {
  description = "Optional private registry host (e.g. myregistry.azurecr.io) pulled with the app's system-assigned identity, which needs AcrPull on it. Empty: public images."
  type        = string
  default     = ""
}
