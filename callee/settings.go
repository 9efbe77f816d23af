// Package callee is the HTTP-triggered, anonymous-level Azure Functions custom handler
// protected by authmw. Its executable is callee/functionapp.
package callee

import "github.com/f2fauth/f2fauth/internal/customhandler"

// App settings the callee reads besides the AUTHMW_* settings of package authmw
// (authmw.EnvVars). A test in deploy/ checks that no template drifts from these lists.
const (
	// EnvLogLevel sets the log level: debug, info (default), warn or error.
	EnvLogLevel = "CALLEE_LOG_LEVEL"
	// EnvListenHost is the address to listen on: 127.0.0.1 (default, where the Functions
	// host dials) or, on a container platform, 0.0.0.0.
	EnvListenHost = "CALLEE_LISTEN_HOST"
)

// Settings lists the callee's own app settings; the AUTHMW_* ones are in authmw.EnvVars.
var Settings = []string{EnvLogLevel, EnvListenHost}

// RequiredSettings lists the app settings a deployment must set for the callee.
var RequiredSettings = []string{"AUTHMW_AUDIENCES"}

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
