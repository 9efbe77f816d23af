package caller_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/f2fauth/f2fauth/caller"
)

// ConfigFromEnv reads the app settings; the token scope never doubles "/.default".
func ExampleConfigFromEnv() {
	env := map[string]string{
		"CALLEE_URL":      "https://callee.azurewebsites.net/api/ExclusiveFunction",
		"CALLEE_AUDIENCE": "api://contoso.onmicrosoft.com/callee/.default",
	}
	cfg, err := caller.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.Scope(), cfg.Credential, cfg.Timeout, cfg.MaxRetries, cfg.Addr)

	_, err = caller.ConfigFromEnv(func(string) string { return "" })
	fmt.Println(err)
	// Output:
	// api://contoso.onmicrosoft.com/callee/.default managedidentity 30s 3 127.0.0.1:8080
	// caller: invalid configuration: CALLEE_URL is required: set it to the callee's function URL, e.g. https://callee.azurewebsites.net/api/ExclusiveFunction
	// caller: invalid configuration: CALLEE_AUDIENCE is required: set it to the callee's Application ID URI (e.g. api://<tenant>/callee) or client ID
}

// ParseInvocation reads the Functions host's timer invocation.
func ExampleParseInvocation() {
	body := []byte(`{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":true}},"Metadata":{"sys":{"MethodName":"AutoTriggerFunction"}}}`)
	inv, err := caller.ParseInvocation(body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(inv.MethodName, inv.Timer.IsPastDue)

	_, err = caller.ParseInvocation([]byte(`{"Data":{}}`))
	fmt.Println(err)
	// Output:
	// AutoTriggerFunction true
	// caller: malformed invocation payload: "Data" has no "timer" timer binding
}

// New builds the caller (one token cache for the process) and Serve runs the custom
// handler; caller.Run does both from the environment, with signal handling.
func ExampleNew() {
	cfg, err := caller.ConfigFromEnv(os.Getenv)
	if err != nil {
		log.Fatal(err) // names every missing or invalid variable
	}
	c, err := caller.New(cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	rep := c.Call(context.Background(), false) // what one timer run does
	fmt.Println(rep.Summary())
}
