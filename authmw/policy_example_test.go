package authmw_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/f2fauth/f2fauth/authmw"
)

// ConfigFromEnv reads the AUTHMW_* variables; here a map stands in for os.Getenv.
func ExampleConfigFromEnv() {
	env := map[string]string{
		"AUTHMW_TENANT_ID":            "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"AUTHMW_AUDIENCES":            "api://f2fauth-callee",
		"AUTHMW_ALLOWED_APPLICATIONS": "0b7e1e5a-6a2b-4f7e-9c1e-2f2f2f2f2f2f",
		"AUTHMW_REQUIRED_ROLES":       "Callee.Invoke",
		"AUTHMW_EXCLUDED_PATHS":       "/api/healthz",
	}
	cfg, err := authmw.ConfigFromEnv(func(k string) string { return env[k] })
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
	_, err := authmw.ConfigFromEnv(func(k string) string { return env[k] })
	fmt.Println(errors.Is(err, authmw.ErrInvalidPolicy))
	fmt.Println(err)
	// Output:
	// true
	// authmw: invalid configuration: AUTHMW_CLOCK_SKEW "five minutes" is not a duration: use e.g. "90s", "5m", "1h" or plain seconds, from 1s to 10m (0 or unset means the default, 5m)
	// AUTHMW_AUDIENCES is required: set it to the callee's Application ID URI or client ID
}

// ParseAuthSettingsV2 turns an exported Easy Auth configuration into a Policy.
func ExampleParseAuthSettingsV2() {
	doc := []byte(`{
	  "globalValidation": {"requireAuthentication": true, "unauthenticatedClientAction": "Return401",
	                       "excludedPaths": ["/api/healthz"]},
	  "identityProviders": {"azureActiveDirectory": {"enabled": true,
	    "registration": {"openIdIssuer": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
	                     "clientId": "11111111-1111-1111-1111-111111111111"},
	    "validation": {"allowedAudiences": ["api://f2fauth-callee"],
	      "defaultAuthorizationPolicy": {"allowedApplications": ["0b7e1e5a-6a2b-4f7e-9c1e-2f2f2f2f2f2f"]}}}},
	  "f2fauth": {"requiredRoles": ["Callee.Invoke"], "appOnly": true}
	}`)
	p, err := authmw.ParseAuthSettingsV2(doc)
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

// LoadPolicyFile reads the file; MergePolicy lays other settings over it.
func ExampleLoadPolicyFile() {
	dir, _ := os.MkdirTemp("", "authmw-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "authsettings.json")
	_ = os.WriteFile(path, []byte(`{"properties": {"identityProviders": {"azureActiveDirectory": {
	  "registration": {"openIdIssuer": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
	                   "clientId": "11111111-1111-1111-1111-111111111111"}}}}}`), 0o600)

	fromFile, err := authmw.LoadPolicyFile(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	p := authmw.MergePolicy(fromFile, authmw.Policy{RequiredRoles: []string{"Callee.Invoke"}})
	fmt.Println(p.TenantID, p.AuthorityHost, p.Audiences, p.RequiredRoles, p.Validate() == nil)
	// Output: 72f988bf-86f1-41af-91ab-2d7cd011db47 https://login.microsoftonline.com [11111111-1111-1111-1111-111111111111] [Callee.Invoke] true
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
