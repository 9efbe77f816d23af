// Package customhandler holds what the Azure Functions host asks of every custom
// handler process: which port to listen on.
package customhandler

import (
	"fmt"
	"strconv"
	"strings"
)

// Settings the Functions host (or a container platform) sets for a handler process.
const (
	// EnvPort is the port the Functions host tells a custom handler to listen on.
	EnvPort = "FUNCTIONS_CUSTOMHANDLER_PORT"
	// EnvFallbackPort is the port container platforms set; used when EnvPort is unset.
	EnvFallbackPort = "PORT"
	// DefaultPort is used when neither is set.
	DefaultPort = 8080
)

// Port returns the port from FUNCTIONS_CUSTOMHANDLER_PORT, else PORT, else DefaultPort.
// A value that is not a port number (0–65535) is an error naming the variable.
func Port(getenv func(string) string) (int, error) {
	for _, name := range []string{EnvPort, EnvFallbackPort} {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			return 0, fmt.Errorf("%s must be a TCP port number (0-65535), got %q", name, v)
		}
		return n, nil
	}
	return DefaultPort, nil
}
