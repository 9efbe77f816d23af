package authmw

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envFunc is a lookup function over m: a key present in m is set, even to "".
func envFunc(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// unsetVar, as a value in a test table, means the variable is not set at all.
const unsetVar = "\x00unset"

func minimalEnv() map[string]string {
	return map[string]string{"AUTHMW_TENANT_ID": tTenant, "AUTHMW_AUDIENCES": "api://callee", "AUTHMW_REQUIRED_ROLES": "R"}
}

func TestConfigFromEnvGood(t *testing.T) {
	env := map[string]string{
		"AUTHMW_TENANT_ID":                tTenant,
		"AUTHMW_AUTHORITY_HOST":           "http://127.0.0.1:9999",
		"AUTHMW_ISSUER":                   " https://a.example/ , ,https://b.example/",
		"AUTHMW_AUDIENCES":                "api://callee, " + tApp,
		"AUTHMW_ALLOWED_APPLICATIONS":     tApp + "," + tApp2,
		"AUTHMW_ALLOWED_IDENTITIES":       tOID,
		"AUTHMW_ALLOWED_GROUPS":           tGroup,
		"AUTHMW_ALLOWED_TENANTS":          tTenant,
		"AUTHMW_REQUIRED_ROLES":           "Callee.Invoke,Admin",
		"AUTHMW_EXCLUDED_PATHS":           "/api/healthz, /api/public/*",
		"AUTHMW_UNAUTHENTICATED_ACTION":   "return403",
		"AUTHMW_CLOCK_SKEW":               "2m",
		"AUTHMW_EASYAUTH_HEADERS":         "true",
		"AUTHMW_APP_ONLY":                 "1",
		"AUTHMW_MAX_TOKEN_AGE":            "3600",
		"AUTHMW_BOUND_CLAIMS":             "xms_mirid=/subscriptions/*, appidacr=1, appidacr=2",
		"AUTHMW_CLAIM_MAPPINGS":           "caller=xms_mirid,tenant=tid",
		"AUTHMW_DISABLE_WWW_AUTHENTICATE": "false",
		"AUTHMW_POLICY_FILE_INTERVAL":     "10s",
		"AUTHMW_ALGORITHMS":               "RS256,ES256",
		"AUTHMW_KEY_REFRESH_INTERVAL":     "6h",
		"AUTHMW_UNKNOWN_KEY_INTERVAL":     "1m",
		"AUTHMW_CACHE_SIZE":               "-1",
	}
	c, err := ConfigFromEnv(envFunc(env))
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	want := Policy{
		TenantID:              tTenant,
		AuthorityHost:         "http://127.0.0.1:9999",
		Issuers:               []string{"https://a.example/", "https://b.example/"},
		Audiences:             []string{"api://callee", tApp},
		AllowedApplications:   []string{tApp, tApp2},
		AllowedIdentities:     []string{tOID},
		AllowedGroups:         []string{tGroup},
		AllowedTenants:        []string{tTenant},
		RequiredRoles:         []string{"Callee.Invoke", "Admin"},
		AppOnly:               true,
		BoundClaims:           map[string][]string{"xms_mirid": {"/subscriptions/*"}, "appidacr": {"1", "2"}},
		ClaimMappings:         map[string]string{"caller": "xms_mirid", "tenant": "tid"},
		MaxTokenAge:           time.Hour,
		ClockSkew:             2 * time.Minute,
		ExcludedPaths:         []string{"/api/healthz", "/api/public/*"},
		UnauthenticatedAction: Return403,
		EasyAuthHeaders:       true,
	}
	if !reflect.DeepEqual(c.Policy, want) {
		t.Errorf("Policy =\n%+v\nwant\n%+v", c.Policy, want)
	}
	if c.PolicyFileInterval != 10*time.Second || c.KeyRefreshInterval != 6*time.Hour ||
		c.UnknownKeyInterval != time.Minute || c.CacheSize != -1 ||
		!reflect.DeepEqual(c.Algorithms, []string{"RS256", "ES256"}) || c.PolicyFile != "" {
		t.Errorf("Config fields wrong: %+v", c)
	}
}

func TestConfigFromEnvEachVariable(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		value string
		check func(Config) bool // for good values
		want  []string          // error substrings for bad values
	}{
		{"tenant upper case", "AUTHMW_TENANT_ID", strings.ToUpper(tTenant), func(c Config) bool { return strings.EqualFold(c.Policy.TenantID, tTenant) }, nil},
		{"tenant domain", "AUTHMW_TENANT_ID", "contoso.onmicrosoft.com", nil, []string{"AUTHMW_TENANT_ID", "not a tenant GUID", "domain name is not resolved"}},
		{"tenant bad", "AUTHMW_TENANT_ID", "a/b", nil, []string{"AUTHMW_TENANT_ID", "not a tenant GUID"}},
		{"tenant common", "AUTHMW_TENANT_ID", "common", nil, []string{"AUTHMW_TENANT_ID", "multi-tenant"}},
		{"tenant missing", "AUTHMW_TENANT_ID", "", nil, []string{"AUTHMW_TENANT_ID (or AUTHMW_ISSUER) is required"}},
		{"authority", "AUTHMW_AUTHORITY_HOST", "https://login.microsoftonline.us", func(c Config) bool { return c.Policy.AuthorityHost == "https://login.microsoftonline.us" }, nil},
		{"authority http", "AUTHMW_AUTHORITY_HOST", "http://login.example", nil, []string{"AUTHMW_AUTHORITY_HOST", "plain http"}},
		{"issuer", "AUTHMW_ISSUER", "https://i.example/", func(c Config) bool { return len(c.Policy.Issuers) == 1 }, nil},
		{"issuer bad", "AUTHMW_ISSUER", "https://ok.example/,http://bad.example/", nil, []string{"AUTHMW_ISSUER entry 1", "plain http"}},
		{"audiences missing", "AUTHMW_AUDIENCES", "", nil, []string{"AUTHMW_AUDIENCES is required: set it to the callee's Application ID URI or client ID"}},
		{"audiences only commas", "AUTHMW_AUDIENCES", " , ,", nil, []string{"AUTHMW_AUDIENCES is required"}},
		{"applications", "AUTHMW_ALLOWED_APPLICATIONS", tApp, func(c Config) bool { return c.Policy.AllowedApplications[0] == tApp }, nil},
		{"identities", "AUTHMW_ALLOWED_IDENTITIES", tOID, func(c Config) bool { return c.Policy.AllowedIdentities[0] == tOID }, nil},
		{"groups", "AUTHMW_ALLOWED_GROUPS", tGroup, func(c Config) bool { return c.Policy.AllowedGroups[0] == tGroup }, nil},
		{"tenants", "AUTHMW_ALLOWED_TENANTS", tTenant, func(c Config) bool { return c.Policy.AllowedTenants[0] == tTenant }, nil},
		{"roles", "AUTHMW_REQUIRED_ROLES", "R", func(c Config) bool { return c.Policy.RequiredRoles[0] == "R" }, nil},
		{"excluded", "AUTHMW_EXCLUDED_PATHS", "/h", func(c Config) bool { return c.Policy.ExcludedPaths[0] == "/h" }, nil},
		{"excluded bad", "AUTHMW_EXCLUDED_PATHS", "/ok,/a*b", nil, []string{"AUTHMW_EXCLUDED_PATHS entry 1"}},
		{"action", "AUTHMW_UNAUTHENTICATED_ACTION", "AllowAnonymous", func(c Config) bool { return c.Policy.UnauthenticatedAction == AllowAnonymous }, nil},
		{"action bad", "AUTHMW_UNAUTHENTICATED_ACTION", "Return404", nil, []string{"AUTHMW_UNAUTHENTICATED_ACTION", "Return401"}},
		{"action redirect", "AUTHMW_UNAUTHENTICATED_ACTION", "RedirectToLoginPage", nil, []string{"AUTHMW_UNAUTHENTICATED_ACTION", "not supported for APIs: use Return401"}},
		{"skew", "AUTHMW_CLOCK_SKEW", "90s", func(c Config) bool { return c.Policy.ClockSkew == 90*time.Second }, nil},
		{"skew seconds", "AUTHMW_CLOCK_SKEW", "120", func(c Config) bool { return c.Policy.ClockSkew == 2*time.Minute }, nil},
		{"skew bad", "AUTHMW_CLOCK_SKEW", "5 minutes", nil, []string{"AUTHMW_CLOCK_SKEW", "not a duration"}},
		{"skew negative", "AUTHMW_CLOCK_SKEW", "-1m", nil, []string{"AUTHMW_CLOCK_SKEW is -1m, out of range", "from 1s to 10m"}},
		{"skew of ten years", "AUTHMW_CLOCK_SKEW", "87600h", nil, []string{"AUTHMW_CLOCK_SKEW is 87600h, out of range", "from 1s to 10m"}},
		{"skew in seconds out of range", "AUTHMW_CLOCK_SKEW", "3600", nil, []string{"AUTHMW_CLOCK_SKEW is 1h, out of range"}},
		{"skew at its bound", "AUTHMW_CLOCK_SKEW", "10m", func(c Config) bool { return c.Policy.ClockSkew == 10*time.Minute }, nil},
		{"easyauth headers", "AUTHMW_EASYAUTH_HEADERS", "TRUE", func(c Config) bool { return c.Policy.EasyAuthHeaders }, nil},
		{"easyauth headers bad", "AUTHMW_EASYAUTH_HEADERS", "yes", nil, []string{"AUTHMW_EASYAUTH_HEADERS", "not a boolean"}},
		{"app only", "AUTHMW_APP_ONLY", "true", func(c Config) bool { return c.Policy.AppOnly }, nil},
		{"app only bad", "AUTHMW_APP_ONLY", "maybe", nil, []string{"AUTHMW_APP_ONLY", "not a boolean"}},
		{"max age", "AUTHMW_MAX_TOKEN_AGE", "1h", func(c Config) bool { return c.Policy.MaxTokenAge == time.Hour }, nil},
		{"max age bad", "AUTHMW_MAX_TOKEN_AGE", "1d", nil, []string{"AUTHMW_MAX_TOKEN_AGE", "not a duration"}},
		{"max age of ten years", "AUTHMW_MAX_TOKEN_AGE", "87600h", nil, []string{"AUTHMW_MAX_TOKEN_AGE is 87600h, out of range", "from 1m to 24h"}},
		{"max age of a nanosecond", "AUTHMW_MAX_TOKEN_AGE", "1ns", nil, []string{"AUTHMW_MAX_TOKEN_AGE is 1ns, out of range"}},
		{"bound claims json", "AUTHMW_BOUND_CLAIMS", `{"ver":"2.0","amr":["a","b"]}`, func(c Config) bool {
			return reflect.DeepEqual(c.Policy.BoundClaims, map[string][]string{"ver": {"2.0"}, "amr": {"a", "b"}})
		}, nil},
		{"bound claims bad pair", "AUTHMW_BOUND_CLAIMS", "ver", nil, []string{"AUTHMW_BOUND_CLAIMS", "claim=pattern"}},
		{"bound claims bad json", "AUTHMW_BOUND_CLAIMS", `{"ver":1}`, nil, []string{"AUTHMW_BOUND_CLAIMS", "JSON"}},
		{"bound claims duplicate claim", "AUTHMW_BOUND_CLAIMS", `{"ver":"2.0","ver":"*"}`, nil, []string{"AUTHMW_BOUND_CLAIMS", `"ver" is given twice`}},
		{"bound claims syntax error", "AUTHMW_BOUND_CLAIMS", `{"ver":"2.0",}`, nil, []string{"AUTHMW_BOUND_CLAIMS", "line 1, column"}},
		{"claim mappings bad", "AUTHMW_CLAIM_MAPPINGS", "a=b,c", nil, []string{"AUTHMW_CLAIM_MAPPINGS", "key=claim"}},
		{"claim mappings dup", "AUTHMW_CLAIM_MAPPINGS", "a=b,a=c", nil, []string{"AUTHMW_CLAIM_MAPPINGS", "twice"}},
		{"disable www-auth", "AUTHMW_DISABLE_WWW_AUTHENTICATE", "true", func(c Config) bool { return c.Policy.DisableWWWAuthenticate }, nil},
		{"disable www-auth bad", "AUTHMW_DISABLE_WWW_AUTHENTICATE", "on", nil, []string{"AUTHMW_DISABLE_WWW_AUTHENTICATE"}},
		{"file interval bad", "AUTHMW_POLICY_FILE_INTERVAL", "soon", nil, []string{"AUTHMW_POLICY_FILE_INTERVAL"}},
		{"file interval of a nanosecond", "AUTHMW_POLICY_FILE_INTERVAL", "1ns", nil, []string{"AUTHMW_POLICY_FILE_INTERVAL is 1ns, out of range", "from 1s to 5m"}},
		{"file interval of a day", "AUTHMW_POLICY_FILE_INTERVAL", "24h", nil, []string{"AUTHMW_POLICY_FILE_INTERVAL is 24h, out of range"}},
		{"algorithms bad", "AUTHMW_ALGORITHMS", "RS256,HS256", nil, []string{"AUTHMW_ALGORITHMS", `"HS256"`, "never none or HMAC"}},
		{"key refresh bad", "AUTHMW_KEY_REFRESH_INTERVAL", "-5m", nil, []string{"AUTHMW_KEY_REFRESH_INTERVAL is -5m, out of range", "from 5m to 24h"}},
		{"key refresh of a year", "AUTHMW_KEY_REFRESH_INTERVAL", "8760h", nil, []string{"AUTHMW_KEY_REFRESH_INTERVAL is 8760h, out of range"}},
		{"key refresh of a second", "AUTHMW_KEY_REFRESH_INTERVAL", "1", nil, []string{"AUTHMW_KEY_REFRESH_INTERVAL is 1s, out of range"}},
		{"unknown key bad", "AUTHMW_UNKNOWN_KEY_INTERVAL", "x", nil, []string{"AUTHMW_UNKNOWN_KEY_INTERVAL"}},
		{"unknown key of a nanosecond", "AUTHMW_UNKNOWN_KEY_INTERVAL", "1ns", nil, []string{"AUTHMW_UNKNOWN_KEY_INTERVAL is 1ns, out of range", "from 1s to 10m"}},
		{"unknown key of a day", "AUTHMW_UNKNOWN_KEY_INTERVAL", "24h", nil, []string{"AUTHMW_UNKNOWN_KEY_INTERVAL is 24h, out of range"}},
		{"unknown key at its bound", "AUTHMW_UNKNOWN_KEY_INTERVAL", "1s", func(c Config) bool { return c.UnknownKeyInterval == time.Second }, nil},
		{"applications set but empty: nobody", "AUTHMW_ALLOWED_APPLICATIONS", " , ", func(c Config) bool {
			return c.Policy.AllowedApplications != nil && len(c.Policy.AllowedApplications) == 0
		}, nil},
		{"roles set but empty: nobody", "AUTHMW_REQUIRED_ROLES", ",", func(c Config) bool {
			return c.Policy.RequiredRoles != nil && len(c.Policy.RequiredRoles) == 0
		}, nil},
		{"no rule at all", "AUTHMW_REQUIRED_ROLES", unsetVar, nil, []string{"no authorization rule", "AUTHMW_ALLOWED_APPLICATIONS", "AUTHMW_INSECURE_ALLOW_ANY_CALLER"}},
		{"insecure allow any caller", "AUTHMW_INSECURE_ALLOW_ANY_CALLER", "true", func(c Config) bool { return c.Policy.InsecureAllowAnyCaller }, nil},
		{"cache size bad", "AUTHMW_CACHE_SIZE", "big", nil, []string{"AUTHMW_CACHE_SIZE", "not an integer"}},
		// adversarial review: a size whose first generation could not be allocated crashed the process at start
		{"cache size too large", "AUTHMW_CACHE_SIZE", "99999999999", nil, []string{"AUTHMW_CACHE_SIZE", "up to 1000000"}},
		{"cache size at its bound", "AUTHMW_CACHE_SIZE", "1000000", func(c Config) bool { return c.CacheSize == MaxCacheSize }, nil},
		{"policy file missing", "AUTHMW_POLICY_FILE", "/nonexistent/authsettings.json", nil, []string{"AUTHMW_POLICY_FILE", "fix the file or unset the variable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := minimalEnv()
			env[tt.key] = tt.value
			if tt.value == unsetVar {
				delete(env, tt.key)
			}
			c, err := ConfigFromEnv(envFunc(env))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ConfigFromEnv: %v", err)
				}
				if !tt.check(c) {
					t.Errorf("%s=%q not applied: %+v", tt.key, tt.value, c)
				}
				return
			}
			if err == nil {
				t.Fatalf("ConfigFromEnv accepted %s=%q", tt.key, tt.value)
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

func TestConfigFromEnvAllProblemsTogether(t *testing.T) {
	env := map[string]string{
		"AUTHMW_AUTHORITY_HOST":         "http://example.com",
		"AUTHMW_UNAUTHENTICATED_ACTION": "nope",
		"AUTHMW_CLOCK_SKEW":             "soon",
		"AUTHMW_APP_ONLY":               "perhaps",
		"AUTHMW_EXCLUDED_PATHS":         "relative",
	}
	_, err := ConfigFromEnv(envFunc(env))
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"AUTHMW_AUDIENCES", "AUTHMW_TENANT_ID", "AUTHMW_AUTHORITY_HOST",
		"AUTHMW_UNAUTHENTICATED_ACTION", "AUTHMW_CLOCK_SKEW", "AUTHMW_APP_ONLY", "AUTHMW_EXCLUDED_PATHS"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 8 { // and no authorization rule
		t.Errorf("%d problems reported, want 8:\n%v", n, err)
	}
	if n := strings.Count(err.Error(), "authmw:"); n != 1 {
		t.Errorf("prefix given %d times, want once:\n%v", n, err)
	}
}

func TestConfigFromEnvPolicyFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "auth.json")
	writeFile(t, good, `{"identityProviders":{"azureActiveDirectory":{"enabled":true,
		"registration":{"openIdIssuer":"https://login.microsoftonline.com/`+tTenant+`/v2.0","clientId":"`+tApp+`"}}}}`)
	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, `{"globalValidation":{"excludedPaths":["nope"]}}`)

	t.Run("audiences and issuer from the file", func(t *testing.T) {
		c, err := ConfigFromEnv(envFunc(map[string]string{"AUTHMW_POLICY_FILE": good, "AUTHMW_REQUIRED_ROLES": "R"}))
		if err != nil {
			t.Fatalf("ConfigFromEnv: %v", err)
		}
		if c.PolicyFile != good {
			t.Errorf("PolicyFile = %q", c.PolicyFile)
		}
		if c.Policy.TenantID != "" || len(c.Policy.Audiences) != 0 || c.Policy.RequiredRoles[0] != "R" {
			t.Errorf("Config.Policy should hold only the environment's settings: %+v", c.Policy)
		}
	})
	t.Run("merged result validated", func(t *testing.T) {
		_, err := ConfigFromEnv(envFunc(map[string]string{"AUTHMW_POLICY_FILE": bad}))
		if err == nil {
			t.Fatal("no error")
		}
		for _, w := range []string{"AUTHMW_AUDIENCES (or", "in AUTHMW_POLICY_FILE", "AUTHMW_EXCLUDED_PATHS (or globalValidation.excludedPaths"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	})
	t.Run("env fixes the file", func(t *testing.T) {
		env := minimalEnv()
		env["AUTHMW_POLICY_FILE"] = bad
		env["AUTHMW_EXCLUDED_PATHS"] = "/ok"
		if _, err := ConfigFromEnv(envFunc(env)); err != nil {
			t.Fatalf("ConfigFromEnv: %v", err)
		}
	})
	t.Run("file durations bounded like the variables", func(t *testing.T) {
		p := filepath.Join(dir, "skew.json")
		writeFile(t, p, `{"f2fauth":{"clockSkew":"87600h","maxTokenAge":1e9}}`)
		env := minimalEnv()
		env["AUTHMW_POLICY_FILE"] = p
		_, err := ConfigFromEnv(envFunc(env))
		for _, w := range []string{"AUTHMW_CLOCK_SKEW (or f2fauth.clockSkew in AUTHMW_POLICY_FILE", "is 87600h, out of range",
			"AUTHMW_MAX_TOKEN_AGE (or f2fauth.maxTokenAge", "from 1m to 24h"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("error %v does not contain %q", err, w)
			}
		}
	})
	t.Run("unparseable file", func(t *testing.T) {
		p := filepath.Join(dir, "broken.json")
		writeFile(t, p, `{"identityProviders":`)
		env := minimalEnv()
		env["AUTHMW_POLICY_FILE"] = p
		env["AUTHMW_APP_ONLY"] = "x"
		_, err := ConfigFromEnv(envFunc(env))
		if err == nil || !strings.Contains(err.Error(), "AUTHMW_POLICY_FILE") || !strings.Contains(err.Error(), "AUTHMW_APP_ONLY") {
			t.Fatalf("error = %v, want both AUTHMW_POLICY_FILE and AUTHMW_APP_ONLY named", err)
		}
	})
}

// TestEnvVarsIsACopy: a caller changing the list it got changes nothing in authmw.
func TestEnvVarsIsACopy(t *testing.T) {
	t.Parallel()
	got := EnvVars()
	want := got[0]
	got[0] = "CHANGED"
	if again := EnvVars(); again[0] != want || len(again) != len(envVars) {
		t.Fatalf("EnvVars()[0] = %q after a caller changed its copy; want %q", again[0], want)
	}
}

// TestConfigFromEnvSetEmptyVsUnset: lookup says whether a variable is set, whatever
// function it is: an allow-list set to "" accepts nobody, an unset one is not checked.
func TestConfigFromEnvSetEmptyVsUnset(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		env    map[string]string
		wantOK bool // AllowedApplications non-nil
	}{
		{"set to empty", map[string]string{"AUTHMW_ALLOWED_APPLICATIONS": ""}, true},
		{"set to a comma", map[string]string{"AUTHMW_ALLOWED_APPLICATIONS": ","}, true},
		{"unset", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := minimalEnv()
			maps.Copy(env, tt.env)
			c, err := ConfigFromEnv(envFunc(env))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Policy.AllowedApplications; (got != nil) != tt.wantOK || len(got) != 0 {
				t.Errorf("AllowedApplications = %#v; want non-nil %v and empty", got, tt.wantOK)
			}
		})
	}
}

func TestConfigFromEnvNilLookup(t *testing.T) {
	for _, k := range EnvVars() {
		t.Setenv(k, "")
	}
	t.Setenv("AUTHMW_TENANT_ID", tTenant)
	t.Setenv("AUTHMW_AUDIENCES", "api://x")
	t.Setenv("AUTHMW_REQUIRED_ROLES", "R")
	for name, lookup := range map[string]func(string) (string, bool){"nil": nil, "os.LookupEnv": os.LookupEnv} {
		c, err := ConfigFromEnv(lookup)
		if err != nil || c.Policy.Audiences[0] != "api://x" {
			t.Fatalf("ConfigFromEnv(%s) = %+v, %v", name, c, err)
		}
		// From the process environment, a variable set to "" is told from an unset
		// one: an emptied allow-list accepts nobody.
		if c.Policy.AllowedApplications == nil || len(c.Policy.AllowedApplications) != 0 {
			t.Errorf("ConfigFromEnv(%s), AUTHMW_ALLOWED_APPLICATIONS set to \"\": AllowedApplications = %#v, want empty and non-nil",
				name, c.Policy.AllowedApplications)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// envMiddleware builds the real Middleware from env (ConfigFromEnv and New, as
// NewFromEnv does, with the test's clock) against a real issuer on loopback and
// serves it; it returns the test env for minting tokens and a request function.
func envMiddleware(t *testing.T, env map[string]string) (*testEnv, func(tok string) int) {
	t.Helper()
	e := newEnv(t)
	all := map[string]string{"AUTHMW_TENANT_ID": e.idp.TenantID(), "AUTHMW_AUTHORITY_HOST": e.idp.AuthorityURL(),
		"AUTHMW_AUDIENCES": testAudience}
	for k, v := range env {
		all[k] = strings.ReplaceAll(v, "{TENANT_UPPER}", strings.ToUpper(e.idp.TenantID()))
	}
	cfg, err := ConfigFromEnv(envFunc(all))
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	cfg.Now = e.clock.Now
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	t.Cleanup(srv.Close)
	return e, func(tok string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/x", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
}

// Finding 3, environment side: an allow-list variable that is set but lists nobody
// refuses every caller; it used to switch the check off.
func TestNewFromEnvEmptiedAllowListMeansNobody(t *testing.T) {
	for _, v := range []string{",", " ", " , "} {
		e, get := envMiddleware(t, map[string]string{"AUTHMW_ALLOWED_APPLICATIONS": v, "AUTHMW_REQUIRED_ROLES": "Callee.Invoke"})
		if got := get(e.rogueToken()); got != http.StatusForbidden {
			t.Errorf("AUTHMW_ALLOWED_APPLICATIONS=%q: rogue caller got %d, want 403", v, got)
		}
	}
}

// Finding 5: a tenant GUID in upper case (as an operator may paste it, in
// AUTHMW_TENANT_ID and AUTHMW_ALLOWED_TENANTS) becomes ready and accepts the tenant's
// tokens; it used to stay 503 forever.
func TestNewFromEnvUpperCaseTenant(t *testing.T) {
	e, get := envMiddleware(t, map[string]string{"AUTHMW_TENANT_ID": "{TENANT_UPPER}", "AUTHMW_ALLOWED_TENANTS": "{TENANT_UPPER}",
		"AUTHMW_ALLOWED_APPLICATIONS": testClientID})
	if strings.ToUpper(e.idp.TenantID()) == e.idp.TenantID() {
		t.Fatal("tenant ID has no letters: the test proves nothing")
	}
	if got := get(e.mint(e.claims(2))); got != http.StatusOK {
		t.Errorf("v2 token, upper-case tenant: %d, want 200", got)
	}
	if got := get(e.mint(e.claims(1))); got != http.StatusOK {
		t.Errorf("v1 token, upper-case tenant: %d, want 200", got)
	}
}

// Finding 9: settings that would disable a protection stop startup, naming the variable.
func TestNewFromEnvRefusesDisablingDurations(t *testing.T) {
	for _, kv := range [][2]string{{"AUTHMW_CLOCK_SKEW", "87600h"}, {"AUTHMW_UNKNOWN_KEY_INTERVAL", "1ns"},
		{"AUTHMW_MAX_TOKEN_AGE", "87600h"}, {"AUTHMW_KEY_REFRESH_INTERVAL", "87600h"}, {"AUTHMW_POLICY_FILE_INTERVAL", "1ns"}} {
		env := minimalEnv()
		env[kv[0]] = kv[1]
		m, err := NewFromEnv(t.Context(), envFunc(env), nil)
		if err == nil {
			m.Close()
			t.Errorf("%s=%s accepted", kv[0], kv[1])
			continue
		}
		if !strings.Contains(err.Error(), kv[0]+" is ") || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("%s=%s: error %q does not name the variable and its range", kv[0], kv[1], err)
		}
	}
}
