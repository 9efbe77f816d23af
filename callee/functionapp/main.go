// Command functionapp is the callee's Azure Functions custom handler: an HTTP server on
// FUNCTIONS_CUSTOMHANDLER_PORT protected by authmw (configured from AUTHMW_* settings).
// Build it as "handler" (GOOS=linux GOARCH=amd64) next to host.json. With
// CALLEE_UPSTREAM_URL set it is instead a gateway in front of any HTTP app (see
// docs/gateway.md); deploy/container/Dockerfile packages it as a container image.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/f2fauth/f2fauth/callee"
)

func main() {
	if err := callee.Run(context.Background(), os.LookupEnv, nil); err != nil {
		// Run's errors start with "callee: " already (one prefix, one line).
		msg := err.Error()
		if !strings.HasPrefix(msg, "callee: ") {
			msg = "callee: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}
