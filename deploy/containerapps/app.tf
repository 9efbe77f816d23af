# One Container App, two containers in every replica: the callee as the gateway (the
# only one ingress reaches) and the application it protects. Containers of a replica
# share its network, so the gateway reaches the app on 127.0.0.1. Container Apps'
# built-in authentication stays off (no auth config): the gateway replaces it.
#
# gateway_settings are the gateway's settings, wired like the callee's app_settings in
# deploy/azure/apps.tf; containerapps_test.go checks every name against the code
# (callee.Settings, authmw.EnvVars).

locals {
  gateway_port = 8080

  # An object ID no identity has: the allowed-identities list when no caller is given.
  # (authmw reads an empty AUTHMW_ALLOWED_IDENTITIES as "nobody" too, but a platform may
  # drop an app setting with an empty value, which would mean "not checked".)
  nobody = "00000000-0000-0000-0000-000000000000"

  gateway_settings = {
    AUTHMW_TENANT_ID                   = local.tenant_id
    AUTHMW_AUDIENCES                   = local.audience_accepted
    AUTHMW_REQUIRED_ROLES              = var.app_role_value
    AUTHMW_ALLOWED_IDENTITIES          = length(var.caller_principal_ids) > 0 ? join(",", var.caller_principal_ids) : local.nobody
    AUTHMW_EXCLUDED_PATHS              = "/api/healthz"
    CALLEE_LOG_LEVEL                   = var.callee_log_level
    CALLEE_LISTEN_HOST                 = "0.0.0.0"
    PORT                               = tostring(local.gateway_port)
    CALLEE_UPSTREAM_URL                = "http://127.0.0.1:${var.app_port}"
    CALLEE_UPSTREAM_TIMEOUT            = var.upstream_timeout
    CALLEE_UPSTREAM_PASS_AUTHORIZATION = tostring(var.pass_authorization)
    CALLEE_UPSTREAM_HEALTH_PATH        = var.app_health_path
  }
}

resource "azurerm_container_app" "api" {
  name                         = local.app_name
  resource_group_name          = azurerm_resource_group.main.name
  container_app_environment_id = azurerm_container_app_environment.main.id
  revision_mode                = "Single"
  tags                         = local.tags

  identity {
    type = "SystemAssigned"
  }

  dynamic "registry" {
    for_each = var.registry_server == "" ? [] : [var.registry_server]
    content {
      server   = registry.value
      identity = "System"
    }
  }

  # Ingress reaches the gateway's port only; the app's port is not exposed.
  ingress {
    external_enabled           = true
    target_port                = local.gateway_port
    transport                  = "http"
    allow_insecure_connections = false

    traffic_weight {
      latest_revision = true
      percentage      = 100
    }
  }

  template {
    min_replicas = var.min_replicas
    max_replicas = var.max_replicas

    container {
      name   = "gateway"
      image  = var.gateway_image
      cpu    = 0.25
      memory = "0.5Gi"

      dynamic "env" {
        for_each = local.gateway_settings
        content {
          name  = env.key
          value = env.value
        }
      }

      # Ready only while the app answers: /api/healthz is the gateway's own endpoint
      # (excluded from authentication above) and reports the app's health.
      readiness_probe {
        transport = "HTTP"
        port      = local.gateway_port
        path      = "/api/healthz"
      }

      # Alive as long as the gateway accepts connections, whatever the app does.
      liveness_probe {
        transport = "TCP"
        port      = local.gateway_port
      }
    }

    container {
      name   = "app"
      image  = var.app_image
      cpu    = 0.25
      memory = "0.5Gi"

      dynamic "env" {
        for_each = var.app_env
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }
}
