package caller

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/tokencache"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	valid := map[string]string{
		EnvCalleeURL:      "https://callee.azurewebsites.net/api/ExclusiveFunction",
		EnvCalleeAudience: "api://tenant/callee",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range valid {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name      string
		env       map[string]string
		wantNames []string // variables the error must name; nil = valid
		check     func(t *testing.T, c Config)
	}{
		{"defaults", valid, nil, func(t *testing.T, c Config) {
			if c.Audience != "api://tenant/callee" || c.Scope() != "api://tenant/callee/.default" {
				t.Errorf("audience %q scope %q", c.Audience, c.Scope())
			}
			if c.Credential != tokencache.ManagedIdentity || c.Timeout != DefaultTimeout || c.MaxRetries != DefaultMaxRetries || c.ClientID != "" {
				t.Errorf("defaults not applied: %+v", c)
			}
			if c.Addr != "127.0.0.1:8080" {
				t.Errorf("addr %q", c.Addr)
			}
		}},
		{"everything missing names both required variables", map[string]string{}, []string{EnvCalleeURL, EnvCalleeAudience}, nil},
		{"audience with /.default is not doubled", with(EnvCalleeAudience, "api://tenant/callee/.default"), nil, func(t *testing.T, c Config) {
			if c.Scope() != "api://tenant/callee/.default" {
				t.Errorf("scope %q", c.Scope())
			}
		}},
		{"client ID audience", with(EnvCalleeAudience, "0f5c2b9e-6a3d-4c1e-9b7a-3e8d2f4a1c01"), nil, nil},
		{"audience with a trailing slash", with(EnvCalleeAudience, "api://callee/"), nil, func(t *testing.T, c Config) {
			if c.Scope() != "api://callee/.default" {
				t.Errorf("scope %q; want api://callee/.default", c.Scope())
			}
		}},
		{"audience with slashes around /.default", with(EnvCalleeAudience, "api://callee//.default/"), nil, func(t *testing.T, c Config) {
			if c.Scope() != "api://callee/.default" {
				t.Errorf("scope %q; want api://callee/.default", c.Scope())
			}
		}},
		{"bare scheme", with(EnvCalleeAudience, "api://"), []string{EnvCalleeAudience}, nil},
		{"timeout at the host's bound", with(EnvTimeout, MaxTimeout.String()), nil, nil},
		{"timeout beyond the host's functionTimeout", with(EnvTimeout, "5m"), []string{EnvTimeout}, nil},
		{"timeout of an hour", with(EnvTimeout, "1h"), []string{EnvTimeout}, nil},
		{"only /.default", with(EnvCalleeAudience, "/.default"), []string{EnvCalleeAudience}, nil},
		{"audience with spaces", with(EnvCalleeAudience, "api://a api://b"), []string{EnvCalleeAudience}, nil},
		{"relative URL", with(EnvCalleeURL, "/api/ExclusiveFunction"), []string{EnvCalleeURL}, nil},
		{"unparsable URL", with(EnvCalleeURL, "https://[::1"), []string{EnvCalleeURL}, nil},
		{"plain http off loopback", with(EnvCalleeURL, "http://callee.example.com/api/ExclusiveFunction"), []string{EnvCalleeURL}, nil},
		{"plain http to loopback", with(EnvCalleeURL, "http://127.0.0.1:7071/api/ExclusiveFunction"), nil, nil},
		{"ftp scheme", with(EnvCalleeURL, "ftp://callee.example.com/x"), []string{EnvCalleeURL}, nil},
		{"credentials in URL", with(EnvCalleeURL, "https://user:pw@callee.example.com/x"), []string{EnvCalleeURL}, nil},
		{"timeout", with(EnvTimeout, "5s"), nil, func(t *testing.T, c Config) {
			if c.Timeout != 5*time.Second {
				t.Errorf("timeout %v", c.Timeout)
			}
		}},
		{"bad timeout", with(EnvTimeout, "soon"), []string{EnvTimeout}, nil},
		{"negative timeout", with(EnvTimeout, "-1s"), []string{EnvTimeout}, nil},
		{"retries", with(EnvMaxRetries, "0"), nil, func(t *testing.T, c Config) {
			if c.MaxRetries != 0 {
				t.Errorf("retries %d", c.MaxRetries)
			}
		}},
		{"bad retries", with(EnvMaxRetries, "many"), []string{EnvMaxRetries}, nil},
		{"too many retries", with(EnvMaxRetries, "99"), []string{EnvMaxRetries}, nil},
		{"dev credential", with(EnvCredential, "dev", EnvClientID, "c0ffee00-0000-4000-8000-000000000001"), nil, func(t *testing.T, c Config) {
			if c.Credential != tokencache.DevChain || c.ClientID != "c0ffee00-0000-4000-8000-000000000001" {
				t.Errorf("credential %q client %q", c.Credential, c.ClientID)
			}
		}},
		{"unknown credential", with(EnvCredential, "password"), []string{EnvCredential}, nil},
		{"blank client ID", with(EnvClientID, "   "), []string{EnvClientID}, nil},
		{"port", with(EnvCustomHandlerPort, "34567"), nil, func(t *testing.T, c Config) {
			if c.Addr != "127.0.0.1:34567" {
				t.Errorf("addr %q", c.Addr)
			}
		}},
		{"bad port", with(EnvCustomHandlerPort, "x"), []string{EnvCustomHandlerPort}, nil},
		{"all problems at once", map[string]string{EnvTimeout: "x", EnvMaxRetries: "-1", EnvCredential: "y", EnvPort: "z"},
			[]string{EnvCalleeURL, EnvCalleeAudience, EnvTimeout, EnvMaxRetries, EnvCredential, EnvPort}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ConfigFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantNames != nil {
				if err == nil {
					t.Fatalf("ConfigFromEnv accepted %v", tc.env)
				}
				if !errors.Is(err, ErrConfig) {
					t.Errorf("error does not wrap ErrConfig: %v", err)
				}
				for _, n := range tc.wantNames {
					if !strings.Contains(err.Error(), n) {
						t.Errorf("error does not name %s: %v", n, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ConfigFromEnv: %v", err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	var c Config
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), EnvCalleeURL) || !strings.Contains(err.Error(), EnvCalleeAudience) {
		t.Fatalf("Validate of a zero Config: %v; want errors naming %s and %s", err, EnvCalleeURL, EnvCalleeAudience)
	}
	u, _ := url.Parse("https://callee.example.com/api/x")
	c = Config{CalleeURL: u, Audience: "api://callee/", Timeout: time.Hour}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), EnvTimeout) {
		t.Errorf("Validate with a 1h timeout: %v; want an error naming %s", err, EnvTimeout)
	}
	c.Timeout = 0
	if err := c.Validate(); err != nil || c.Scope() != "api://callee/.default" || c.Timeout != DefaultTimeout {
		t.Errorf("Validate: %v, scope %q, timeout %v", err, c.Scope(), c.Timeout)
	}
}

func TestNormalizeAudience(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"api://callee":                         "api://callee",
		"api://callee/":                        "api://callee",
		"api://callee/.default":                "api://callee",
		"api://callee//.default":               "api://callee",
		" api://tenant/callee/.default ":       "api://tenant/callee",
		"https://vault.azure.net/":             "https://vault.azure.net",
		"0f5c2b9e-6a3d-4c1e-9b7a-3e8d2f4a1c01": "0f5c2b9e-6a3d-4c1e-9b7a-3e8d2f4a1c01",
		"/.default":                            "", ".default": "", "api://": "", "/": "", "": "",
	} {
		if got := NormalizeAudience(in); got != want {
			t.Errorf("NormalizeAudience(%q) = %q; want %q", in, got, want)
		}
	}
}
