// Package caller is the timer-triggered Azure Functions custom handler that calls the
// callee with its managed identity. Its executable is caller/functionapp.
package caller

import "github.com/f2fauth/f2fauth/internal/customhandler"

// App settings (environment variables) the caller reads. Terraform and the local run set
// exactly these; a test in deploy/ checks that no template drifts from this list.
const (
	// EnvCalleeURL is the callee's function URL, e.g. https://callee.azurewebsites.net/api/ExclusiveFunction. Required.
	EnvCalleeURL = "CALLEE_URL"
	// EnvCalleeAudience is the callee's Application ID URI or client ID; the token is
	// requested for "<audience>/.default". Required.
	EnvCalleeAudience = "CALLEE_AUDIENCE"
	// EnvSchedule is the timer's NCRONTAB schedule, read by the Functions host through
	// AutoTriggerFunction/function.json ("%CALLER_SCHEDULE%").
	EnvSchedule = "CALLER_SCHEDULE"
	// EnvClientID selects a user-assigned managed identity by client ID; empty means system-assigned.
	EnvClientID = "AZURE_CLIENT_ID"
	// EnvCredential chooses the credential: "managedidentity" (default) or "dev"
	// (managed identity, then workload identity, then Azure CLI) for local runs.
	EnvCredential = "CALLER_CREDENTIAL"
	// EnvTimeout bounds one call to the callee, including retries (Go duration); default
	// 30s, at most MaxTimeout.
	EnvTimeout = "CALLER_TIMEOUT"
	// EnvMaxRetries is the number of retries after a 429 or 5xx answer; default 3.
	EnvMaxRetries = "CALLER_MAX_RETRIES"
)

// Settings returns every app setting the caller reads. The slice is the caller's own.
func Settings() []string {
	return []string{EnvCalleeURL, EnvCalleeAudience, EnvSchedule, EnvClientID, EnvCredential, EnvTimeout, EnvMaxRetries,
		EnvKeyVaultURL, EnvKeyVaultSecret, EnvKeyVaultCAFile}
}

// RequiredSettings returns the app settings a deployment must set. The slice is the
// caller's own.
func RequiredSettings() []string { return []string{EnvCalleeURL, EnvCalleeAudience, EnvSchedule} }

// Settings the Functions host sets for the handler process; they are not app settings and
// are therefore not in [Settings].
const (
	// EnvCustomHandlerPort is the port the Functions host tells a custom handler to listen on.
	EnvCustomHandlerPort = customhandler.EnvPort
	// EnvPort is the fallback port; the default is [DefaultPort].
	EnvPort = customhandler.EnvFallbackPort
)

// DefaultPort is the port used when neither FUNCTIONS_CUSTOMHANDLER_PORT nor PORT is set.
const DefaultPort = customhandler.DefaultPort
