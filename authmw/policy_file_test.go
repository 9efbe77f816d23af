package authmw

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// exportedAuthSettingsV2 is the properties of a realistic authsettingsV2 resource, as
// exported with `az rest --method get --url .../config/authsettingsV2`.
const exportedAuthSettingsV2 = `{
  "platform": {"enabled": true, "runtimeVersion": "~1"},
  "globalValidation": {
    "requireAuthentication": true,
    "unauthenticatedClientAction": "Return401",
    "redirectToProvider": "azureactivedirectory",
    "excludedPaths": ["/api/healthz", "/api/public/*"]
  },
  "identityProviders": {
    "azureActiveDirectory": {
      "enabled": true,
      "isAutoProvisioned": false,
      "registration": {
        "openIdIssuer": "https://login.microsoftonline.com/` + tTenant + `/v2.0",
        "clientId": "` + tApp + `",
        "clientSecretSettingName": "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"
      },
      "login": {"loginParameters": [], "disableWWWAuthenticate": false},
      "validation": {
        "jwtClaimChecks": {"allowedGroups": [], "allowedClientApplications": ["` + tApp2 + `"]},
        "allowedAudiences": ["api://` + tApp + `"],
        "defaultAuthorizationPolicy": {
          "allowedPrincipals": {"identities": ["` + tOID + `"], "groups": ["` + tGroup + `"]},
          "allowedApplications": ["` + tApp + `"]
        }
      }
    },
    "facebook": {"enabled": false},
    "customOpenIdConnectProviders": {}
  },
  "login": {"tokenStore": {"enabled": false}, "preserveUrlFragmentsForLogins": false},
  "httpSettings": {"requireHttps": true, "routes": {"apiPrefix": "/.auth"}, "forwardProxy": {"convention": "NoProxy"}}
}`

func exportedPolicy() Policy {
	return Policy{
		TenantID:              tTenant,
		AuthorityHost:         "https://login.microsoftonline.com",
		Audiences:             []string{tApp, "api://" + tApp},
		AllowedApplications:   []string{tApp, tApp2},
		AllowedIdentities:     []string{tOID},
		AllowedGroups:         []string{tGroup},
		ExcludedPaths:         []string{"/api/healthz", "/api/public/*"},
		UnauthenticatedAction: Return401,
	}
}

func TestParseAuthSettingsV2(t *testing.T) {
	aad := func(issuer string) string {
		return `{"identityProviders":{"azureActiveDirectory":{"registration":{"openIdIssuer":"` + issuer + `"}}}}`
	}
	tests := []struct {
		name string
		doc  string
		want Policy
	}{
		{"exported properties", exportedAuthSettingsV2, exportedPolicy()},
		{"ARM resource wrapper", `{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/callee/config/authsettingsV2",
			"name": "authsettingsV2", "type": "Microsoft.Web/sites/config", "location": "West Europe",
			"properties": ` + exportedAuthSettingsV2 + `}`, exportedPolicy()},
		{"WEBSITE_AUTH_V2_CONFIG_JSON as a JSON string", quoteJSON(exportedAuthSettingsV2), exportedPolicy()},
		{"PascalCase keys", `{"GlobalValidation":{"ExcludedPaths":["/h"]},"IdentityProviders":{"AzureActiveDirectory":{"Registration":{"ClientId":"c"}}}}`,
			Policy{ExcludedPaths: []string{"/h"}, Audiences: []string{"c"}}},
		{"v2 issuer", aad("https://login.microsoftonline.com/" + tTenant + "/v2.0"),
			Policy{TenantID: tTenant, AuthorityHost: "https://login.microsoftonline.com"}},
		{"v1 issuer", aad("https://login.microsoftonline.com/" + tTenant + "/"),
			Policy{TenantID: tTenant, AuthorityHost: "https://login.microsoftonline.com"}},
		{"sts issuer", aad("https://sts.windows.net/" + tTenant + "/"), Policy{TenantID: tTenant}},
		{"sts issuer with v2.0 (portal)", aad("https://sts.windows.net/" + tTenant + "/v2.0"), Policy{TenantID: tTenant}},
		{"sovereign authority", aad("https://login.microsoftonline.us/" + tTenant + "/v2.0"),
			Policy{TenantID: tTenant, AuthorityHost: "https://login.microsoftonline.us"}},
		{"domain tenant", aad("https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"),
			Policy{TenantID: "contoso.onmicrosoft.com", AuthorityHost: "https://login.microsoftonline.com"}},
		{"generic issuer", aad("https://accounts.example.com"), Policy{Issuers: []string{"https://accounts.example.com"}}},
		{"local issuer", aad("http://127.0.0.1:8080/" + tTenant + "/v2.0"), Policy{Issuers: []string{"http://127.0.0.1:8080/" + tTenant + "/v2.0"}}},
		{"b2c-like path issuer", aad("https://login.microsoftonline.com/" + tTenant + "/b2c_1/v2.0"),
			Policy{Issuers: []string{"https://login.microsoftonline.com/" + tTenant + "/b2c_1/v2.0"}}},
		{"allow anonymous", `{"globalValidation":{"requireAuthentication":false,"unauthenticatedClientAction":"RedirectToLoginPage"}}`,
			Policy{UnauthenticatedAction: AllowAnonymous}},
		{"return403", `{"globalValidation":{"requireAuthentication":true,"unauthenticatedClientAction":"Return403"}}`,
			Policy{UnauthenticatedAction: Return403}},
		{"disable www-authenticate", `{"identityProviders":{"azureActiveDirectory":{"login":{"disableWWWAuthenticate":true}}}}`,
			Policy{DisableWWWAuthenticate: true}},
		{"jwtClaimChecks union", `{"identityProviders":{"azureActiveDirectory":{"validation":{
			"jwtClaimChecks":{"allowedGroups":["g2","g1"],"allowedClientApplications":["a2"]},
			"defaultAuthorizationPolicy":{"allowedApplications":["a1","a2"],"allowedPrincipals":{"groups":["g1"]}}}}}}`,
			Policy{AllowedApplications: []string{"a1", "a2"}, AllowedGroups: []string{"g1", "g2"}}},
		{"clientId deduplicated", `{"identityProviders":{"azureActiveDirectory":{"registration":{"clientId":"c"},"validation":{"allowedAudiences":["c","api://c"]}}}}`,
			Policy{Audiences: []string{"c", "api://c"}}},
		{"extension block", `{"f2fauth":{"requiredRoles":["Callee.Invoke"],"allowedTenants":["t1"],"appOnly":true,
			"boundClaims":{"xms_mirid":"/subscriptions/*","appidacr":["1","2"]},"claimMappings":{"caller":"xms_mirid"},
			"maxTokenAge":"1h","clockSkew":120,"easyAuthHeaders":true,"disableWWWAuthenticate":true,
			"tenantId":"` + tTenant + `","authorityHost":"http://127.0.0.1:1","issuers":["https://i.example/"],"audiences":["api://x"]}}`,
			Policy{RequiredRoles: []string{"Callee.Invoke"}, AllowedTenants: []string{"t1"}, AppOnly: true,
				BoundClaims:   map[string][]string{"xms_mirid": {"/subscriptions/*"}, "appidacr": {"1", "2"}},
				ClaimMappings: map[string]string{"caller": "xms_mirid"}, MaxTokenAge: time.Hour, ClockSkew: 2 * time.Minute,
				EasyAuthHeaders: true, DisableWWWAuthenticate: true, TenantID: tTenant, AuthorityHost: "http://127.0.0.1:1",
				Issuers: []string{"https://i.example/"}, Audiences: []string{"api://x"}}},
		{"extension at resource top level", `{"properties":{"globalValidation":{}},"f2fauth":{"appOnly":true}}`, Policy{AppOnly: true}},
		{"sections not read are not checked", `{"platform":{"enabled":true,"anything":1},"httpSettings":{"x":{"y":[1]}},
			"identityProviders":{"google":{"enabled":false,"whatever":true},"azureActiveDirectory":{"registration":{"clientId":"c"}}}}`,
			Policy{Audiences: []string{"c"}}},
		{"empty lists stay present (nobody)", `{"identityProviders":{"azureActiveDirectory":{"validation":{
			"jwtClaimChecks":{"allowedGroups":[],"allowedClientApplications":[]},
			"defaultAuthorizationPolicy":{"allowedApplications":[],"allowedPrincipals":{"identities":[" "]}}}}},
			"f2fauth":{"requiredRoles":[],"allowedTenants":[]}}`,
			Policy{AllowedApplications: []string{}, AllowedIdentities: []string{}, AllowedGroups: []string{},
				RequiredRoles: []string{}, AllowedTenants: []string{}}},
		{"case-insensitive keys, once each", `{"GLOBALVALIDATION":{"excludedpaths":["/h"]}}`, Policy{ExcludedPaths: []string{"/h"}}},
		{"bound claims differing in case are two claims", `{"f2fauth":{"boundClaims":{"tid":"a","TID":"b"}}}`,
			Policy{BoundClaims: map[string][]string{"tid": {"a"}, "TID": {"b"}}}},
		{"empty object", `{}`, Policy{}},
		{"byte order mark", "\ufeff{\"globalValidation\":{\"excludedPaths\":[\"/h\"]}}", Policy{ExcludedPaths: []string{"/h"}}},
		{"platform disabled is fine (migrating off Easy Auth)", `{"platform":{"enabled":false}}`, Policy{}},
		{"null extension", `{"f2fauth":null}`, Policy{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAuthSettingsV2([]byte(tt.doc))
			if err != nil {
				t.Fatalf("parseAuthSettingsV2: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestParseAuthSettingsV2ExportedIsUsable(t *testing.T) {
	p, err := parseAuthSettingsV2([]byte(exportedAuthSettingsV2))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := compilePolicy(p)
	if err != nil {
		t.Fatalf("exported document does not compile: %v", err)
	}
	c := appToken()
	c.Audience = audience{tApp}
	c.AZP = tApp
	if e := cp.authorize(c); e != nil {
		t.Errorf("authorize: %v", e)
	}
	c.AZP = "someone-else"
	if e := cp.authorize(c); e == nil || e.Reason != ReasonApplicationNotAllowed {
		t.Errorf("authorize(other app) = %v, want application_not_allowed", e)
	}
}

func TestParseAuthSettingsV2Errors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"empty", ``, []string{"want a JSON object"}},
		{"array", `[]`, []string{"want a JSON object"}},
		{"null", `null`, []string{"want a JSON object"}},
		{"number string", `"42"`, []string{"want a JSON object"}},
		{"truncated", `{"globalValidation":`, []string{"authsettingsV2"}},
		{"trailing garbage", `{} x`, []string{"authsettingsV2"}},
		{"wrong type", `{"globalValidation":{"excludedPaths":"/x"}}`, []string{"authsettingsV2"}},
		{"bad properties", `{"properties":[1]}`, []string{"properties"}},
		{"provider disabled", `{"identityProviders":{"azureActiveDirectory":{"enabled":false}}}`,
			[]string{"identityProviders.azureActiveDirectory.enabled", "is false"}},
		{"redirect to login", `{"globalValidation":{"unauthenticatedClientAction":"RedirectToLoginPage"}}`,
			[]string{"globalValidation.unauthenticatedClientAction", "not supported for APIs: use Return401"}},
		{"unknown action", `{"globalValidation":{"unauthenticatedClientAction":"Return404"}}`,
			[]string{"globalValidation.unauthenticatedClientAction", "Return404"}},
		{"multi-tenant issuer", `{"identityProviders":{"azureActiveDirectory":{"registration":{"openIdIssuer":"https://login.microsoftonline.com/common/v2.0"}}}}`,
			[]string{"openIdIssuer", "not tenant-specific"}},
		{"organizations issuer", `{"identityProviders":{"azureActiveDirectory":{"registration":{"openIdIssuer":"https://login.microsoftonline.com/organizations"}}}}`,
			[]string{"openIdIssuer", "not tenant-specific"}},
		{"issuer not a URL", `{"identityProviders":{"azureActiveDirectory":{"registration":{"openIdIssuer":"login.microsoftonline.com"}}}}`,
			[]string{"openIdIssuer", "not an absolute URL"}},
		{"extension typo", `{"f2fauth":{"requiredRole":["x"]}}`, []string{"f2fauth", "requiredRole"}},
		{"extension bad duration", `{"f2fauth":{"maxTokenAge":"1 day"}}`, []string{"f2fauth", "not a duration"}},
		{"extension bad bound claim", `{"f2fauth":{"boundClaims":{"x":{"a":1}}}}`, []string{"f2fauth", "string or a list"}},
		{"extension twice", `{"properties":{"globalValidation":{},"f2fauth":{}},"f2fauth":{}}`, []string{"both"}},
		{"misspelt allow-list key", `{"identityProviders":{"azureActiveDirectory":{"validation":{"defaultAuthorizationPolicy":{"allowedApplication":["a"]}}}}}`,
			[]string{`unknown key "identityProviders.azureActiveDirectory.validation.defaultAuthorizationPolicy.allowedApplication"`, "allowedApplications"}},
		{"misspelt section", `{"identityProviders":{"azureActiveDirectry":{}}}`, []string{`unknown key "identityProviders.azureActiveDirectry"`}},
		{"unknown top-level key", `{"newFeature":{"x":1}}`, []string{`unknown key "newFeature"`}},
		{"case-variant duplicate", `{"identityProviders":{"azureActiveDirectory":{"validation":{"defaultAuthorizationPolicy":{
			"allowedApplications":["a"],"ALLOWEDAPPLICATIONS":[]}}}}}`,
			[]string{`"identityProviders.azureActiveDirectory.validation.defaultAuthorizationPolicy.ALLOWEDAPPLICATIONS" is given twice`, `"allowedApplications"`}},
		{"exact duplicate", `{"f2fauth":{"requiredRoles":["r"],"requiredRoles":[]}}`, []string{`"f2fauth.requiredRoles" is given twice`}},
		{"duplicate bound claim", `{"f2fauth":{"boundClaims":{"a":"x","a":"y"}}}`, []string{`"f2fauth.boundClaims.a" is given twice`}},
		{"unicode-folded duplicate", "{\"globalValidation\":{\"excludedPaths\":[],\"excludedPath\u017f\":[\"/*\"]}}", []string{"given twice"}},
		{"sections both at top and in properties", `{"properties":{"globalValidation":{}},"identityProviders":{}}`, []string{"both at top level and in properties"}},
		{"syntax error with position", "{\n  \"globalValidation\": {\"excludedPaths\": [1,,2]}\n}", []string{"line 2, column"}},
		{"invalid JSON in a section not read", "{\"platform\": {\"a\" \"b\"}}", []string{"line 1, column"}},
		{"nested too deep", `{"platform":` + strings.Repeat(`[`, 100000) + strings.Repeat(`]`, 100000) + `}`, []string{"nests deeper than"}},
		{"invalid UTF-8", "{\"f2fauth\":{\"requiredRoles\":[\"\xff\"]}}", []string{"not valid UTF-8"}},
		{"several problems", `{"globalValidation":{"unauthenticatedClientAction":"RedirectToLoginPage"},
			"identityProviders":{"azureActiveDirectory":{"enabled":false}}}`,
			[]string{"unauthenticatedClientAction", "enabled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseAuthSettingsV2([]byte(tt.doc))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("error does not wrap ErrInvalidPolicy: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadPolicyFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "auth.json")
	writeFile(t, good, exportedAuthSettingsV2)
	p, err := LoadPolicyFile(good)
	if err != nil || !reflect.DeepEqual(p, exportedPolicy()) {
		t.Fatalf("LoadPolicyFile = %+v, %v", p, err)
	}
	if _, err := LoadPolicyFile(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file error = %v, want os.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, `{"globalValidation":{"unauthenticatedClientAction":"RedirectToLoginPage"}}`)
	if _, err := LoadPolicyFile(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad file error = %v, want it to name the file", err)
	}
	big := filepath.Join(dir, "big.json")
	writeFile(t, big, `{"x":"`+strings.Repeat("a", maxPolicyFileBytes)+`"}`)
	if _, err := LoadPolicyFile(big); !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), "larger") {
		t.Errorf("big file error = %v", err)
	}
}

func TestMergePolicy(t *testing.T) {
	base := exportedPolicy()
	base.AppOnly = true
	base.ClockSkew = time.Minute
	t.Run("zero override keeps base", func(t *testing.T) {
		if got := mergePolicy(base, Policy{}); !reflect.DeepEqual(got, base) {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("non-zero override wins", func(t *testing.T) {
		over := Policy{
			TenantID: tTenant2, AuthorityHost: "https://login.microsoftonline.us", Issuers: []string{"https://i/"},
			Audiences: []string{"x"}, AllowedApplications: []string{"a"}, AllowedIdentities: []string{"o"},
			AllowedGroups: []string{"g"}, AllowedTenants: []string{"t"}, RequiredRoles: []string{"r"},
			BoundClaims: map[string][]string{"c": {"v"}}, ClaimMappings: map[string]string{"k": "c"},
			MaxTokenAge: time.Hour, ClockSkew: 2 * time.Minute, ExcludedPaths: []string{"/p"},
			UnauthenticatedAction: Return403, EasyAuthHeaders: true, DisableWWWAuthenticate: true,
			InsecureAllowAnyCaller: true, AllowedClientCIDRs: []string{"10.0.0.0/8"}, TrustedProxies: []string{"10.1.0.0/16"},
			UserClaim: "oid", ApplicationClaim: "client_id", MaxTokenLifetime: time.Hour,
		}
		got := mergePolicy(base, over)
		over.AppOnly = true // base's true stays
		if !reflect.DeepEqual(got, over) {
			t.Errorf("got\n%+v\nwant\n%+v", got, over)
		}
	})
	t.Run("an empty list overrides: nobody", func(t *testing.T) {
		got := mergePolicy(base, Policy{AllowedApplications: []string{}, RequiredRoles: []string{}})
		if got.AllowedApplications == nil || len(got.AllowedApplications) != 0 || got.RequiredRoles == nil || len(got.RequiredRoles) != 0 {
			t.Errorf("empty override lists not applied: %#v %#v", got.AllowedApplications, got.RequiredRoles)
		}
	})
	t.Run("every field covered", func(t *testing.T) {
		// If a field is added to Policy, mergePolicy must learn it: this counts the fields.
		if n := reflect.TypeFor[Policy]().NumField(); n != 24 {
			t.Errorf("Policy has %d fields; update mergePolicy and this test", n)
		}
	})
}

func quoteJSON(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func FuzzParseAuthSettingsV2(f *testing.F) {
	f.Add([]byte(exportedAuthSettingsV2))
	f.Add([]byte(`{"properties":` + exportedAuthSettingsV2 + `}`))
	f.Add([]byte(quoteJSON(exportedAuthSettingsV2)))
	f.Add([]byte(`{"f2fauth":{"requiredRoles":["r"],"boundClaims":{"a":["b*"]},"maxTokenAge":"1h","clockSkew":30}}`))
	f.Add([]byte(`{"identityProviders":{"azureActiveDirectory":{"registration":{"openIdIssuer":"https://sts.windows.net/x/"}}}}`))
	f.Add([]byte(`{"globalValidation":{"requireAuthentication":false}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`"\"{}\""`))
	f.Add([]byte(``))
	f.Add([]byte(`{"identityProviders":{"azureActiveDirectory":{"validation":{"defaultAuthorizationPolicy":{"allowedApplications":["a"],"ALLOWEDAPPLICATIONS":[]}}}}}`))
	f.Add([]byte(`{"identityProviders":{"azureActiveDirectory":{"validation":{"defaultAuthorizationPolicy":{"allowedApplication":["a"]}}}}}`))
	f.Add([]byte("{\"globalValidation\":{\"excludedPath\u017f\":[]}}"))
	f.Add([]byte(`{"f2fauth":{"boundClaims":{"a":"x","a":"y"}}}`))
	f.Add([]byte("{\n  \"platform\": {,}\n}"))
	f.Add([]byte(`{"properties":{"globalValidation":{}},"globalValidation":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseAuthSettingsV2(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error does not wrap ErrInvalidPolicy: %v", err)
			}
			return
		}
		if cp, err := compilePolicy(mergePolicy(p, Policy{TenantID: tTenant, Audiences: []string{"a"}, InsecureAllowAnyCaller: true})); err == nil {
			_ = cp.authorize(appToken())
			_ = cp.excluded("/api/x")
		}
	})
}
