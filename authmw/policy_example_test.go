package authmw_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/f2fauth/f2fauth/authmw"
)

// ConfigFromEnv reads the AUTHMW_* variables; here a map stands in for os.LookupEnv.
func ExampleConfigFromEnv() {
	env := map[string]string{
		"AUTHMW_TENANT_ID":            "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"AUTHMW_AUDIENCES":            "api://f2fauth-callee",
		"AUTHMW_ALLOWED_APPLICATIONS": "0b7e1e5a-6a2b-4f7e-9c1e-2f2f2f2f2f2f",
		"AUTHMW_REQUIRED_ROLES":       "Callee.Invoke",
		"AUTHMW_EXCLUDED_PATHS":       "/api/healthz",
	}
	cfg, err := authmw.ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Policy.Audiences, cfg.Policy.RequiredRoles, cfg.Policy.ExcludedPaths)
	// Output: [api://f2fauth-callee] [Callee.Invoke] [/api/healthz]
}

// A missing or bad setting is an error naming the variable; all problems come together.
func ExampleConfigFromEnv_errors() {
	env := map[string]string{
		"AUTHMW_TENANT_ID":      "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"AUTHMW_REQUIRED_ROLES": "Callee.Invoke",
		"AUTHMW_CLOCK_SKEW":     "five minutes",
	}
	_, err := authmw.ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	fmt.Println(errors.Is(err, authmw.ErrInvalidPolicy))
	fmt.Println(err)
	// Output:
	// true
	// authmw: invalid configuration: AUTHMW_CLOCK_SKEW "five minutes" is not a duration: use e.g. "90s", "5m", "1h" or plain seconds, from 1s to 10m (0 or unset means the default, 5m)
	// AUTHMW_AUDIENCES is required: set it to the callee's Application ID URI or client ID
}

// LoadPolicyFile reads an exported Easy Auth configuration (authsettingsV2) into a
// Policy; here the file also carries the f2fauth extension block.
func ExampleLoadPolicyFile() {
	dir, _ := os.MkdirTemp("", "authmw-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "authsettings.json")
	_ = os.WriteFile(path, []byte(`{
	  "globalValidation": {"requireAuthentication": true, "unauthenticatedClientAction": "Return401",
	                       "excludedPaths": ["/api/healthz"]},
	  "identityProviders": {"azureActiveDirectory": {"enabled": true,
	    "registration": {"openIdIssuer": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
	                     "clientId": "11111111-1111-1111-1111-111111111111"},
	    "validation": {"allowedAudiences": ["api://f2fauth-callee"],
	      "defaultAuthorizationPolicy": {"allowedApplications": ["0b7e1e5a-6a2b-4f7e-9c1e-2f2f2f2f2f2f"]}}}},
	  "f2fauth": {"requiredRoles": ["Callee.Invoke"], "appOnly": true}
	}`), 0o600)

	p, err := authmw.LoadPolicyFile(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("tenant:", p.TenantID)
	fmt.Println("audiences:", p.Audiences)
	fmt.Println("applications:", p.AllowedApplications)
	fmt.Println("roles:", p.RequiredRoles, "app-only:", p.AppOnly)
	fmt.Println("valid:", p.Validate() == nil)
	// Output:
	// tenant: 72f988bf-86f1-41af-91ab-2d7cd011db47
	// audiences: [11111111-1111-1111-1111-111111111111 api://f2fauth-callee]
	// applications: [0b7e1e5a-6a2b-4f7e-9c1e-2f2f2f2f2f2f]
	// roles: [Callee.Invoke] app-only: true
	// valid: true
}

// A file may leave settings to the environment: AUTHMW_POLICY_FILE names it and the
// AUTHMW_* variables that are set replace the file's values. Here the file names the
// issuer and the audience, the environment the allowed application.
func ExampleNewFromEnv_policyFile() {
	idp, token := startIdP()
	defer idp.Close()

	dir, _ := os.MkdirTemp("", "authmw-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "authsettings.json")
	_ = os.WriteFile(path, []byte(`{"identityProviders": {"azureActiveDirectory": {
	  "registration": {"openIdIssuer": "`+idp.IssuerV2()+`"},
	  "validation": {"allowedAudiences": ["api://callee"]}}}}`), 0o600)

	env := map[string]string{
		"AUTHMW_POLICY_FILE":          path,
		"AUTHMW_ALLOWED_APPLICATIONS": "caller-app-id",
	}
	m, err := authmw.NewFromEnv(context.Background(), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	p := m.Policy()
	fmt.Println(p.Audiences, p.AllowedApplications)

	waitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.WaitReady(waitCtx); err != nil {
		log.Fatal(err)
	}
	caller, err := m.Verify(context.Background(), token)
	fmt.Println(caller.AppID, err)
	// Output:
	// [api://callee] [caller-app-id]
	// caller-app-id <nil>
}

// Validate reports every problem, each naming the Policy field.
func ExamplePolicy_Validate() {
	p := authmw.Policy{
		Issuers:       []string{"http://issuer.example.com"},
		RequiredRoles: []string{"Callee.Invoke"},
		ExcludedPaths: []string{"/static/*.js"},
	}
	fmt.Println(p.Validate())
	// Output:
	// Policy.Audiences is required: set it to the callee's Application ID URI or client ID
	// Policy.Issuers entry 0 "http://issuer.example.com" uses plain http on a non-loopback host: use https (plain http is only allowed for 127.0.0.0/8, ::1 and localhost)
	// Policy.ExcludedPaths entry 0 "/static/*.js" may use "*" only as a trailing "/*" (prefix match)
}
