// Package callee is the HTTP-triggered, anonymous-level Azure Functions custom handler
// protected by authmw. Its executable is callee/functionapp.
package callee

import (
	"slices"

	"github.com/f2fauth/f2fauth/internal/customhandler"
)

// App settings the callee reads besides the AUTHMW_* settings of package authmw
// (authmw.EnvVars()). A test in deploy/ checks that no template drifts from these lists.
const (
	// EnvLogLevel sets the log level: debug, info (default), warn or error.
	EnvLogLevel = "CALLEE_LOG_LEVEL"
	// EnvListenHost is the address to listen on: 127.0.0.1 (default, where the Functions
	// host dials) or, on a container platform, 0.0.0.0.
	EnvListenHost = "CALLEE_LISTEN_HOST"

	// EnvUpstreamURL switches the callee to gateway mode: every request authmw allows
	// is forwarded to this http(s) URL (see docs/gateway.md). Unset (default): the
	// callee serves its own function routes.
	EnvUpstreamURL = "CALLEE_UPSTREAM_URL"
	// EnvUpstreamTimeout bounds the wait for the upstream's response headers, as a Go
	// duration from 1s to 10m; default 30s. Bodies may stream for longer.
	EnvUpstreamTimeout = "CALLEE_UPSTREAM_TIMEOUT"
	// EnvUpstreamPassAuthorization says whether the caller's verified Authorization header is
	// passed on to the upstream: true (default, as Easy Auth does) or false.
	EnvUpstreamPassAuthorization = "CALLEE_UPSTREAM_PASS_AUTHORIZATION"
	// EnvUpstreamHealthPath is the upstream path the health endpoint probes with GET
	// (any answer below 500 is "up"); default empty: a TCP connect to the upstream.
	EnvUpstreamHealthPath = "CALLEE_UPSTREAM_HEALTH_PATH"
	// EnvUpstreamInsecureHTTP allows a plain-http upstream URL off loopback: true or
	// false (default). Tokens and identity headers then cross the network unencrypted.
	EnvUpstreamInsecureHTTP = "CALLEE_UPSTREAM_INSECURE_HTTP"
	// EnvTrustForwardedHeaders keeps the X-Forwarded-For, -Host and -Proto the client
	// sent (the gateway appends the client address to X-Forwarded-For): true, only
	// behind an ingress that overwrites them, or false (default: they are replaced).
	EnvTrustForwardedHeaders = "CALLEE_TRUST_FORWARDED_HEADERS"
)

// Settings returns the callee's own app settings; the AUTHMW_* ones are in
// authmw.EnvVars. The slice is the caller's own.
func Settings() []string { return slices.Clone(settings) }

// settings lists the callee's own app settings.
var settings = []string{EnvLogLevel, EnvListenHost, EnvUpstreamURL, EnvUpstreamTimeout,
	EnvUpstreamPassAuthorization, EnvUpstreamHealthPath, EnvUpstreamInsecureHTTP, EnvTrustForwardedHeaders}

// GatewaySettings returns the settings that only mean something with [EnvUpstreamURL];
// setting one of them without it is a configuration error. The slice is the caller's own.
func GatewaySettings() []string { return slices.Clone(gatewaySettings) }

// gatewaySettings lists the settings that only mean something with [EnvUpstreamURL].
var gatewaySettings = []string{EnvUpstreamTimeout, EnvUpstreamPassAuthorization,
	EnvUpstreamHealthPath, EnvUpstreamInsecureHTTP, EnvTrustForwardedHeaders}

// RequiredSettings returns the app settings a deployment must set for the callee.
// The slice is the caller's own.
func RequiredSettings() []string { return []string{"AUTHMW_AUDIENCES"} }

// Settings the Functions host (or a container platform) sets for the handler process; they
// are not app settings and are therefore not in [Settings].
const (
	// EnvCustomHandlerPort is the port the Functions host tells a custom handler to listen on.
	EnvCustomHandlerPort = customhandler.EnvPort
	// EnvPort is the fallback port (container platforms); the default is [DefaultPort].
	EnvPort = customhandler.EnvFallbackPort
)

// DefaultPort is the port used when neither FUNCTIONS_CUSTOMHANDLER_PORT nor PORT is set.
const DefaultPort = customhandler.DefaultPort
