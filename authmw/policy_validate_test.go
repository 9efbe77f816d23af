package authmw

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		policy func(*Policy)
		want   []string // substrings of the error; nil = valid
	}{
		{"minimal tenant policy", nil, nil},
		{"explicit issuer instead of tenant", func(p *Policy) { p.TenantID = ""; p.Issuers = []string{"https://issuer.example/"} }, nil},
		{"loopback http issuer", func(p *Policy) { p.Issuers = []string{"http://127.0.0.1:8080/tid/v2.0"} }, nil},
		{"loopback 127/8 issuer", func(p *Policy) { p.Issuers = []string{"http://127.1.2.3/x"} }, nil},
		{"loopback ::1 authority", func(p *Policy) { p.AuthorityHost = "http://[::1]:9000" }, nil},
		{"localhost authority", func(p *Policy) { p.AuthorityHost = "http://localhost:9000" }, nil},
		{"upper-case tenant GUID", func(p *Policy) { p.TenantID = strings.ToUpper(tTenant) }, nil},
		{"only an empty allow-list: nobody, still a rule", func(p *Policy) { p.InsecureAllowAnyCaller = false; p.AllowedApplications = []string{} }, nil},
		{"bound claims are a rule", func(p *Policy) { p.InsecureAllowAnyCaller = false; p.BoundClaims = map[string][]string{"c": {"x"}} }, nil},
		{"durations at their bounds", func(p *Policy) { p.ClockSkew = 10 * time.Minute; p.MaxTokenAge = time.Minute }, nil},
		{"all settings valid", func(p *Policy) {
			p.AuthorityHost = "https://login.microsoftonline.us"
			p.AllowedApplications = []string{tApp}
			p.AllowedIdentities = []string{tOID}
			p.AllowedGroups = []string{tGroup}
			p.AllowedTenants = []string{tTenant}
			p.RequiredRoles = []string{"r"}
			p.AppOnly = true
			p.BoundClaims = map[string][]string{"c": {"a*"}}
			p.ClaimMappings = map[string]string{"k": "c"}
			p.MaxTokenAge = time.Hour
			p.ClockSkew = time.Minute
			p.ExcludedPaths = []string{"/healthz", "/api/public/*", "/*", "/dir/"}
			p.UnauthenticatedAction = AllowAnonymous
		}, nil},

		{"no audiences", func(p *Policy) { p.Audiences = nil }, []string{"Policy.Audiences is required", "Application ID URI"}},
		{"empty audience entry", func(p *Policy) { p.Audiences = []string{"a", " "} }, []string{"Policy.Audiences entry 1 is empty"}},
		{"no tenant nor issuers", func(p *Policy) { p.TenantID = "" }, []string{"Policy.TenantID (or Policy.Issuers) is required"}},
		{"tenant with slash", func(p *Policy) { p.TenantID = "abc/def" }, []string{"Policy.TenantID", "not a tenant GUID"}},
		{"domain tenant", func(p *Policy) { p.TenantID = "contoso.onmicrosoft.com" }, []string{"Policy.TenantID", "not a tenant GUID", "domain name"}},
		{"no authorization rule", func(p *Policy) { p.InsecureAllowAnyCaller = false },
			[]string{"no authorization rule", "AllowedApplications", "set Policy.InsecureAllowAnyCaller to true"}},
		{"tenants alone are no rule", func(p *Policy) { p.InsecureAllowAnyCaller = false; p.AllowedTenants = []string{tTenant} },
			[]string{"no authorization rule"}},
		{"tenant is URL", func(p *Policy) { p.TenantID = "https://login.microsoftonline.com/x" }, []string{"Policy.TenantID"}},
		{"tenant common", func(p *Policy) { p.TenantID = "common" }, []string{"Policy.TenantID", "multi-tenant"}},
		{"plain http issuer", func(p *Policy) { p.Issuers = []string{"http://issuer.example/"} }, []string{"Policy.Issuers entry 0", "plain http"}},
		{"plain http authority", func(p *Policy) { p.AuthorityHost = "http://login.microsoftonline.com" }, []string{"Policy.AuthorityHost", "plain http"}},
		{"http on 10/8 refused", func(p *Policy) { p.AuthorityHost = "http://10.0.0.1" }, []string{"Policy.AuthorityHost", "plain http"}},
		{"http localhost lookalike", func(p *Policy) { p.AuthorityHost = "http://localhost.evil.example" }, []string{"Policy.AuthorityHost", "plain http"}},
		{"relative issuer", func(p *Policy) { p.Issuers = []string{"issuer.example"} }, []string{"Policy.Issuers", "not an absolute URL"}},
		{"bad URL", func(p *Policy) { p.Issuers = []string{"https://%zz"} }, []string{"Policy.Issuers", "not an absolute URL"}},
		{"ftp issuer", func(p *Policy) { p.Issuers = []string{"ftp://issuer.example/"} }, []string{"Policy.Issuers", "https"}},
		{"issuer with query", func(p *Policy) { p.Issuers = []string{"https://issuer.example/?x=1"} }, []string{"Policy.Issuers", "query"}},
		{"authority with credentials", func(p *Policy) { p.AuthorityHost = "https://u:p@login.example" }, []string{"Policy.AuthorityHost", "credentials"}},
		{"bad action", func(p *Policy) { p.UnauthenticatedAction = "Return404" }, []string{"Policy.UnauthenticatedAction", "Return401"}},
		{"redirect action", func(p *Policy) { p.UnauthenticatedAction = "RedirectToLoginPage" }, []string{"Policy.UnauthenticatedAction", "not supported for APIs", "use Return401"}},
		{"negative skew", func(p *Policy) { p.ClockSkew = -time.Second }, []string{"Policy.ClockSkew is -1s, out of range", "from 1s to 10m"}},
		{"skew of ten years", func(p *Policy) { p.ClockSkew = 87600 * time.Hour }, []string{"Policy.ClockSkew is 87600h, out of range", "from 1s to 10m"}},
		{"skew of a nanosecond", func(p *Policy) { p.ClockSkew = 1 }, []string{"Policy.ClockSkew", "out of range"}},
		{"negative max age", func(p *Policy) { p.MaxTokenAge = -time.Second }, []string{"Policy.MaxTokenAge is -1s, out of range", "from 1m to 24h"}},
		{"max age of a year", func(p *Policy) { p.MaxTokenAge = 8760 * time.Hour }, []string{"Policy.MaxTokenAge", "out of range"}},
		{"excluded without slash", func(p *Policy) { p.ExcludedPaths = []string{"healthz"} }, []string{"Policy.ExcludedPaths entry 0", `start with "/"`}},
		{"excluded star in middle", func(p *Policy) { p.ExcludedPaths = []string{"/a/*/b"} }, []string{"Policy.ExcludedPaths", `trailing "/*"`}},
		{"excluded glob suffix", func(p *Policy) { p.ExcludedPaths = []string{"/a*"} }, []string{"Policy.ExcludedPaths", `trailing "/*"`}},
		{"excluded double star", func(p *Policy) { p.ExcludedPaths = []string{"/**/*.jpg"} }, []string{"Policy.ExcludedPaths"}},
		{"excluded dot segments", func(p *Policy) { p.ExcludedPaths = []string{"/a/../b"} }, []string{"Policy.ExcludedPaths", `write "/b"`}},
		{"excluded prefix trailing slash", func(p *Policy) { p.ExcludedPaths = []string{"/a//*"} }, []string{"Policy.ExcludedPaths", `write "/a/*"`}},
		{"excluded query", func(p *Policy) { p.ExcludedPaths = []string{"/a?b"} }, []string{"Policy.ExcludedPaths", "query"}},
		{"excluded encoded", func(p *Policy) { p.ExcludedPaths = []string{"/a%2Fb"} }, []string{"Policy.ExcludedPaths", "percent"}},
		{"excluded path parameter", func(p *Policy) { p.ExcludedPaths = []string{"/a;v=1/*"} }, []string{"Policy.ExcludedPaths", "';' path parameters"}},
		{"excluded non-ASCII", func(p *Policy) { p.ExcludedPaths = []string{"/caf\u00e9/*"} }, []string{"Policy.ExcludedPaths", "must be ASCII"}},
		{"excluded dots-only segment", func(p *Policy) { p.ExcludedPaths = []string{"/a/.../*"} }, []string{"Policy.ExcludedPaths", "only dots and spaces"}},
		{"bound claim no values", func(p *Policy) { p.BoundClaims = map[string][]string{"c": nil} }, []string{"Policy.BoundClaims", `claim "c" has no values`}},
		{"bound claim empty name", func(p *Policy) { p.BoundClaims = map[string][]string{"": {"x"}} }, []string{"Policy.BoundClaims", "empty claim name"}},
		{"bound claim empty value", func(p *Policy) { p.BoundClaims = map[string][]string{"c": {""}} }, []string{"Policy.BoundClaims", "empty value"}},
		{"bound claim control char", func(p *Policy) { p.BoundClaims = map[string][]string{"c": {"a\nb"}} }, []string{"Policy.BoundClaims", "control"}},
		{"claim mapping empty", func(p *Policy) { p.ClaimMappings = map[string]string{"k": ""} }, []string{"Policy.ClaimMappings"}},
		{"empty allow-list entries", func(p *Policy) {
			p.AllowedApplications = []string{""}
			p.AllowedIdentities = []string{""}
			p.AllowedGroups = []string{""}
			p.AllowedTenants = []string{""}
			p.RequiredRoles = []string{""}
		}, []string{"Policy.AllowedApplications entry 0 is empty", "Policy.AllowedIdentities entry 0", "Policy.AllowedGroups entry 0", "Policy.AllowedTenants entry 0", "Policy.RequiredRoles entry 0"}},
		{"all problems together", func(p *Policy) {
			*p = Policy{AuthorityHost: "http://example.com", UnauthenticatedAction: "x", ClockSkew: -1, ExcludedPaths: []string{"x"}}
		}, []string{"Policy.Audiences", "Policy.TenantID (or Policy.Issuers)", "Policy.AuthorityHost", "Policy.UnauthenticatedAction", "Policy.ClockSkew", "Policy.ExcludedPaths"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := basePolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			err := p.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want error containing %q", tt.want)
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("error does not wrap ErrInvalidPolicy: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if n := len(strings.Split(err.Error(), "\n")); n < len(tt.want) && strings.Count(strings.Join(tt.want, ""), "Policy.") > 1 {
				t.Errorf("%d problems reported, want at least %d", n, len(tt.want))
			}
		})
	}
}
