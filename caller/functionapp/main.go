// Command functionapp is the caller's Azure Functions custom handler: the host POSTs each
// timer occurrence of AutoTriggerFunction to it, and it calls the callee with its managed
// identity. Build it as "handler" (GOOS=linux GOARCH=amd64) next to host.json.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/f2fauth/f2fauth/caller"
)

func main() {
	if err := caller.Run(context.Background(), os.Getenv, nil); err != nil {
		fmt.Fprintln(os.Stderr, err) // errors already name the caller and every offending variable
		os.Exit(1)
	}
}
