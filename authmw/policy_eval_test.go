package authmw

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

const (
	tTenant  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	tTenant2 = "11111111-2222-3333-4444-555555555555"
	tApp     = "0b7e1e5a-6a2b-4f7e-9c1e-2f2f2f2f2f2f"
	tApp2    = "99999999-8888-7777-6666-555555555555"
	tOID     = "6f1c2d3e-0000-4000-8000-00000000a11d"
	tOID2    = "6f1c2d3e-0000-4000-8000-00000000b22e"
	tGroup   = "a0a0a0a0-0000-4000-8000-00000000000a"
	tGroup2  = "b0b0b0b0-0000-4000-8000-00000000000b"
)

func basePolicy() Policy {
	return Policy{TenantID: tTenant, Audiences: []string{"api://callee"}, InsecureAllowAnyCaller: true}
}

func mustCompile(t testing.TB, p Policy) *compiledPolicy {
	t.Helper()
	cp, err := compilePolicy(p)
	if err != nil {
		t.Fatalf("compilePolicy: %v", err)
	}
	return cp
}

// appToken is a v2 app-only managed-identity token's claims.
func appToken() *tokenClaims {
	return &tokenClaims{
		Issuer: "https://login.microsoftonline.com/" + tTenant + "/v2.0", Subject: tOID,
		Audience: audience{"api://callee"}, ObjectID: tOID, TenantID: tTenant, AZP: tApp,
		IDType: "app", Version: "2.0", Roles: []string{"Callee.Invoke"},
		entra: true,
	}
}

// rawMembers is members for a test literal.
func rawMembers(js string) []member {
	m, err := members([]byte(js))
	if err != nil {
		panic(err)
	}
	return m
}

func TestCompilePolicyDefaults(t *testing.T) {
	p := basePolicy()
	p.AuthorityHost = "https://login.microsoftonline.us/"
	cp := mustCompile(t, p)
	if cp.Policy.ClockSkew != DefaultClockSkew {
		t.Errorf("ClockSkew = %v, want %v", cp.Policy.ClockSkew, DefaultClockSkew)
	}
	if cp.Policy.UnauthenticatedAction != Return401 {
		t.Errorf("UnauthenticatedAction = %q, want Return401", cp.Policy.UnauthenticatedAction)
	}
	if cp.Policy.AuthorityHost != "https://login.microsoftonline.us" {
		t.Errorf("AuthorityHost = %q, want trailing slash trimmed", cp.Policy.AuthorityHost)
	}
	if cp2 := mustCompile(t, basePolicy()); cp2.Policy.AuthorityHost != DefaultAuthorityHost {
		t.Errorf("default AuthorityHost = %q", cp2.Policy.AuthorityHost)
	}
	if cp.needsRawClaims {
		t.Error("needsRawClaims set for a policy without bound claims, mappings or Easy Auth headers")
	}
	for name, p := range map[string]Policy{
		"bound claims":     {BoundClaims: map[string][]string{"ver": {"2.0"}}},
		"claim mappings":   {ClaimMappings: map[string]string{"k": "c"}},
		"easy auth header": {EasyAuthHeaders: true},
	} {
		p.TenantID, p.Audiences, p.InsecureAllowAnyCaller = tTenant, []string{"a"}, true
		if !mustCompile(t, p).needsRawClaims {
			t.Errorf("%s: needsRawClaims not set", name)
		}
	}
	if _, err := compilePolicy(Policy{}); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("compilePolicy(zero) error = %v, want ErrInvalidPolicy", err)
	}
}

func TestCompilePolicyCopies(t *testing.T) {
	p := basePolicy()
	p.AllowedApplications = []string{tApp}
	cp := mustCompile(t, p)
	p.AllowedApplications[0] = "changed"
	if cp.Policy.AllowedApplications[0] != tApp {
		t.Error("compiled policy shares the caller's slice")
	}
}

func TestAudienceAllowed(t *testing.T) {
	p := basePolicy()
	p.Audiences = []string{"api://callee", tApp}
	cp := mustCompile(t, p)
	tests := []struct {
		name string
		aud  []string
		want bool
	}{
		{"listed", []string{"api://callee"}, true},
		{"client id listed", []string{tApp}, true},
		{"one of many", []string{"other", tApp}, true},
		{"not listed", []string{"api://other"}, false},
		{"case differs", []string{"API://callee"}, false},
		{"api:// of client id not implicit", []string{"api://" + tApp}, false},
		{"empty", nil, false},
		{"empty string", []string{""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cp.audienceAllowed(tt.aud); got != tt.want {
				t.Errorf("audienceAllowed(%q) = %v, want %v", tt.aud, got, tt.want)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	type mod func(*Policy)
	type cmod func(*tokenClaims)
	tests := []struct {
		name   string
		policy mod
		claims cmod
		want   Reason // "" = allowed
	}{
		{"empty lists allow anything", nil, nil, ""},
		{"empty lists allow a user token", nil, func(c *tokenClaims) { c.IDType = "user"; c.Roles = nil }, ""},

		{"tenant listed", func(p *Policy) { p.AllowedTenants = []string{tTenant2, tTenant} }, nil, ""},
		{"tenant not listed", func(p *Policy) { p.AllowedTenants = []string{tTenant2} }, nil, ReasonTenantNotAllowed},
		{"tenant absent", func(p *Policy) { p.AllowedTenants = []string{tTenant} }, func(c *tokenClaims) { c.TenantID = "" }, ReasonTenantNotAllowed},

		{"v2 azp listed", func(p *Policy) { p.AllowedApplications = []string{tApp} }, nil, ""},
		{"v2 azp not listed", func(p *Policy) { p.AllowedApplications = []string{tApp2} }, nil, ReasonApplicationNotAllowed},
		{"v1 appid listed", func(p *Policy) { p.AllowedApplications = []string{tApp2} },
			func(c *tokenClaims) { c.AZP = ""; c.AppID = tApp2; c.Version = "1.0" }, ""},
		{"v1 appid not listed", func(p *Policy) { p.AllowedApplications = []string{tApp} },
			func(c *tokenClaims) { c.AZP = ""; c.AppID = tApp2; c.Version = "1.0" }, ReasonApplicationNotAllowed},
		{"no client app claim", func(p *Policy) { p.AllowedApplications = []string{tApp} },
			func(c *tokenClaims) { c.AZP = "" }, ReasonApplicationNotAllowed},
		{"application case-sensitive", func(p *Policy) { p.AllowedApplications = []string{strings.ToUpper(tApp)} }, nil, ReasonApplicationNotAllowed},

		{"identity listed", func(p *Policy) { p.AllowedIdentities = []string{tOID} }, nil, ""},
		{"identity not listed", func(p *Policy) { p.AllowedIdentities = []string{tOID2} }, nil, ReasonIdentityNotAllowed},
		{"identity absent oid", func(p *Policy) { p.AllowedIdentities = []string{tOID} }, func(c *tokenClaims) { c.ObjectID = "" }, ReasonIdentityNotAllowed},
		{"group listed", func(p *Policy) { p.AllowedGroups = []string{tGroup} }, func(c *tokenClaims) { c.Groups = []string{tGroup2, tGroup} }, ""},
		{"group not listed", func(p *Policy) { p.AllowedGroups = []string{tGroup} }, func(c *tokenClaims) { c.Groups = []string{tGroup2} }, ReasonIdentityNotAllowed},
		{"no groups claim", func(p *Policy) { p.AllowedGroups = []string{tGroup} }, nil, ReasonIdentityNotAllowed},
		{"identities OR groups: identity matches", func(p *Policy) {
			p.AllowedIdentities = []string{tOID}
			p.AllowedGroups = []string{tGroup}
		}, nil, ""},
		{"identities OR groups: group matches", func(p *Policy) {
			p.AllowedIdentities = []string{tOID2}
			p.AllowedGroups = []string{tGroup}
		}, func(c *tokenClaims) { c.Groups = []string{tGroup} }, ""},
		{"identities OR groups: neither", func(p *Policy) {
			p.AllowedIdentities = []string{tOID2}
			p.AllowedGroups = []string{tGroup}
		}, func(c *tokenClaims) { c.Groups = []string{tGroup2} }, ReasonIdentityNotAllowed},
		{"applications AND principals: app fails", func(p *Policy) {
			p.AllowedApplications = []string{tApp2}
			p.AllowedIdentities = []string{tOID}
		}, nil, ReasonApplicationNotAllowed},
		{"applications AND principals: principal fails", func(p *Policy) {
			p.AllowedApplications = []string{tApp}
			p.AllowedIdentities = []string{tOID2}
		}, nil, ReasonIdentityNotAllowed},
		{"applications AND principals: both pass", func(p *Policy) {
			p.AllowedApplications = []string{tApp}
			p.AllowedIdentities = []string{tOID}
		}, nil, ""},
		{"tenant reported before application", func(p *Policy) {
			p.AllowedTenants = []string{tTenant2}
			p.AllowedApplications = []string{tApp2}
		}, nil, ReasonTenantNotAllowed},

		{"app-only via idtyp", func(p *Policy) { p.AppOnly = true }, nil, ""},
		{"app-only idtyp=user", func(p *Policy) { p.AppOnly = true }, func(c *tokenClaims) { c.IDType = "user" }, ReasonAppOnlyRequired},
		{"app-only idtyp=user wins over oid==sub", func(p *Policy) { p.AppOnly = true }, func(c *tokenClaims) { c.IDType = "user"; c.Subject = c.ObjectID }, ReasonAppOnlyRequired},
		{"app-only via oid==sub (v1, no idtyp)", func(p *Policy) { p.AppOnly = true }, func(c *tokenClaims) { c.IDType = "" }, ""},
		{"app-only oid!=sub, no idtyp", func(p *Policy) { p.AppOnly = true }, func(c *tokenClaims) { c.IDType = ""; c.Subject = "user-pairwise-sub" }, ReasonAppOnlyRequired},
		{"app-only no oid, no idtyp", func(p *Policy) { p.AppOnly = true }, func(c *tokenClaims) { c.IDType = ""; c.ObjectID = ""; c.Subject = "" }, ReasonAppOnlyRequired},
		{"app-only reported after principals", func(p *Policy) {
			p.AppOnly = true
			p.AllowedIdentities = []string{tOID2}
		}, func(c *tokenClaims) { c.IDType = "user" }, ReasonIdentityNotAllowed},

		{"role present", func(p *Policy) { p.RequiredRoles = []string{"Callee.Invoke"} }, nil, ""},
		{"any of roles", func(p *Policy) { p.RequiredRoles = []string{"Other", "Callee.Invoke"} }, nil, ""},
		{"role missing", func(p *Policy) { p.RequiredRoles = []string{"Admin"} }, nil, ReasonRoleMissing},
		{"no roles claim", func(p *Policy) { p.RequiredRoles = []string{"Callee.Invoke"} }, func(c *tokenClaims) { c.Roles = nil }, ReasonRoleMissing},
		{"role case-sensitive", func(p *Policy) { p.RequiredRoles = []string{"callee.invoke"} }, nil, ReasonRoleMissing},
		{"role reported after app-only", func(p *Policy) {
			p.AppOnly = true
			p.RequiredRoles = []string{"Admin"}
		}, func(c *tokenClaims) { c.IDType = "user" }, ReasonAppOnlyRequired},

		{"bound exact", func(p *Policy) { p.BoundClaims = map[string][]string{"xms_mirid": {"/subscriptions/s/rg/caller"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"xms_mirid":"/subscriptions/s/rg/caller"}`) }, ""},
		{"bound exact mismatch", func(p *Policy) { p.BoundClaims = map[string][]string{"xms_mirid": {"/subscriptions/s/rg/caller"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"xms_mirid":"/subscriptions/s/rg/caller2"}`) }, ReasonClaimMismatch},
		{"bound case-sensitive", func(p *Policy) { p.BoundClaims = map[string][]string{"env": {"prod"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"env":"Prod"}`) }, ReasonClaimMismatch},
		{"bound glob", func(p *Policy) {
			p.BoundClaims = map[string][]string{"xms_mirid": {"/subscriptions/*/resourcegroups/rg-*/providers/**"}}
		},
			func(c *tokenClaims) {
				c.raw = rawMembers(`{"xms_mirid":"/subscriptions/abc/resourcegroups/rg-prod/providers/Microsoft.Web/sites/caller"}`)
			}, ""},
		{"bound glob mismatch", func(p *Policy) {
			p.BoundClaims = map[string][]string{"xms_mirid": {"/subscriptions/*/resourcegroups/rg-*/x"}}
		},
			func(c *tokenClaims) { c.raw = rawMembers(`{"xms_mirid":"/subscriptions/abc/resourcegroups/dev/x"}`) }, ReasonClaimMismatch},
		{"bound one of several values", func(p *Policy) { p.BoundClaims = map[string][]string{"ver": {"1.0", "2.0"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"ver":"2.0"}`) }, ""},
		{"bound list claim any element", func(p *Policy) { p.BoundClaims = map[string][]string{"amr": {"mfa"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"amr":["pwd","mfa"]}`) }, ""},
		{"bound list claim no element", func(p *Policy) { p.BoundClaims = map[string][]string{"amr": {"mfa"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"amr":["pwd"]}`) }, ReasonClaimMismatch},
		{"bound number", func(p *Policy) { p.BoundClaims = map[string][]string{"appidacr": {"2"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"appidacr":2}`) }, ""},
		{"bound number mismatch", func(p *Policy) { p.BoundClaims = map[string][]string{"appidacr": {"2"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"appidacr":1}`) }, ReasonClaimMismatch},
		{"bound number glob", func(p *Policy) { p.BoundClaims = map[string][]string{"n": {"12*"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"n":12345}`) }, ""},
		{"bound number in list", func(p *Policy) { p.BoundClaims = map[string][]string{"n": {"3"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"n":[1,3]}`) }, ""},
		{"bound bool", func(p *Policy) { p.BoundClaims = map[string][]string{"flag": {"true"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"flag":true}`) }, ""},
		{"bound bool mismatch", func(p *Policy) { p.BoundClaims = map[string][]string{"flag": {"true"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"flag":false}`) }, ReasonClaimMismatch},
		{"bound claim absent", func(p *Policy) { p.BoundClaims = map[string][]string{"env": {"*"}} }, nil, ReasonClaimMismatch},
		{"bound star requires presence", func(p *Policy) { p.BoundClaims = map[string][]string{"env": {"*"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"env":""}`) }, ""},
		{"bound object never matches", func(p *Policy) { p.BoundClaims = map[string][]string{"obj": {"*"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"obj":{"a":"b"}}`) }, ReasonClaimMismatch},
		{"bound null never matches", func(p *Policy) { p.BoundClaims = map[string][]string{"n": {"*"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"n":null}`) }, ReasonClaimMismatch},
		{"bound nested list ignored", func(p *Policy) { p.BoundClaims = map[string][]string{"n": {"a"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"n":[["a"]]}`) }, ReasonClaimMismatch},
		{"all bound claims must match", func(p *Policy) { p.BoundClaims = map[string][]string{"a": {"1"}, "b": {"2"}} },
			func(c *tokenClaims) { c.raw = rawMembers(`{"a":"1","b":"3"}`) }, ReasonClaimMismatch},
		{"everything configured and satisfied", func(p *Policy) {
			p.AllowedTenants = []string{tTenant}
			p.AllowedApplications = []string{tApp}
			p.AllowedIdentities = []string{tOID2}
			p.AllowedGroups = []string{tGroup}
			p.AppOnly = true
			p.RequiredRoles = []string{"Callee.Invoke"}
			p.BoundClaims = map[string][]string{"ver": {"2.*"}}
		}, func(c *tokenClaims) {
			c.Groups = []string{tGroup}
			c.raw = rawMembers(`{"ver":"2.0"}`)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := basePolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			c := appToken()
			if tt.claims != nil {
				tt.claims(c)
			}
			got := mustCompile(t, p).authorize(c)
			switch {
			case tt.want == "" && got != nil:
				t.Fatalf("authorize = %v, want allowed", got)
			case tt.want != "" && got == nil:
				t.Fatalf("authorize allowed, want %s", tt.want)
			case got != nil:
				if got.Reason != tt.want {
					t.Errorf("reason = %s, want %s (detail %q)", got.Reason, tt.want, got.Detail)
				}
				if !errors.Is(got, ErrForbidden) || got.Status() != 403 {
					t.Errorf("error %v is not a 403 ErrForbidden", got)
				}
				if got.Detail == "" {
					t.Error("empty Detail")
				}
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything", true},
		{"a*", "a", true},
		{"a*", "abc", true},
		{"a*", "ba", false},
		{"*c", "abc", true},
		{"a*c", "abbbc", true},
		{"a*c", "abcd", false},
		{"a*b*c", "aXbYbZc", true},
		{"a**c", "ac", true},
		{"abc", "abc", true},
		{"abc", "ABC", false},
		{"*a*a*a*a*b", strings.Repeat("a", 200), false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
		long := compileGlob(strings.Repeat("x", 70) + tt.pattern)
		if got := long.match(strings.Repeat("x", 70) + tt.s); got != tt.want {
			t.Errorf("matchSlow(x*70+%q, x*70+%q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestExcluded(t *testing.T) {
	p := basePolicy()
	p.ExcludedPaths = []string{"/api/healthz", "/api/public/*", "/exact/", "/.well-known/*"}
	cp := mustCompile(t, p)
	tests := []struct {
		path string
		want bool
	}{
		{"/api/healthz", true},
		{"/api/healthz/", false}, // exact means exact
		{"/api/healthz/x", false},
		{"/api/healthzx", false},
		{"/API/healthz", false}, // case-sensitive
		{"/api/public", true},
		{"/api/public/", true},
		{"/api/public/x", true},
		{"/api/public/x/y", true},
		{"/api/publicx", false},
		{"/api/publi", false},
		{"/exact/", true},
		{"/exact", false},
		{"/.well-known/openid-configuration", true},
		{"/api/other", false},
		{"/", false},
		{"", false},
		{"api/healthz", false},
		// traversal and non-canonical forms never bypass
		{"/api/healthz/../ExclusiveFunction", false},
		{"/api/public/../admin", false},
		{"/api/public/x/../../admin", false},
		{"/api/public/./x", false},
		{"/api/public/..", false},
		{"//api/public/x", false},
		{"/api/public//x", false},
		{"/api/public/%2e%2e/admin", false},
		{"/api/public/%2F../admin", false},
		{"/api/public\\..\\admin", false},
		{"/api/public/x\x00", false},
		{"/admin/../api/public/x", false}, // cleans to an excluded path, but the router sees /admin/...
		// ';' path parameters: servlet containers read "..;" as ".." (adversarial review)
		{"/api/public/..;/admin", false},
		{"/api/public/x/..;/..;/admin", false},
		{"/api/public/..;jsessionid=1/admin", false},
		{"/api/public/.;/x", false},
		{"/api/public/x;y", false},
		// outside ASCII: overlong UTF-8 and fullwidth dots an upstream may fold into ".."
		{"/api/public/\xc0\xae\xc0\xae/admin", false},
		{"/api/public/\uff0e\uff0e/admin", false},
		{"/api/public/caf\u00e9", false},
		// dot-and-space-only segments Windows reads as "..", control characters
		{"/api/public/.. /admin", false},
		{"/api/public/.../admin", false},
		{"/api/public/. ./admin", false},
		{"/api/public/x\t", false},
		{"/api/public/v1.2", true},
		{"/api/public/file.", true},
		{"/api/public/..\t/admin", false},
		{"/api/public/\u2024\u2024/admin", false},
		{"/api/public/.well-known", true},
		{"/api/public/a b", true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := cp.excluded(tt.path); got != tt.want {
				t.Errorf("excluded(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}

	t.Run("no excluded paths", func(t *testing.T) {
		if mustCompile(t, basePolicy()).excluded("/api/healthz") {
			t.Error("excluded with no ExcludedPaths")
		}
	})
	t.Run("slash star excludes all canonical paths", func(t *testing.T) {
		p := basePolicy()
		p.ExcludedPaths = []string{"/*"}
		cp := mustCompile(t, p)
		if !cp.excluded("/") || !cp.excluded("/x/y") || cp.excluded("/x/../y") {
			t.Error(`"/*" does not match canonical paths only`)
		}
	})
}

func TestExcludedURL(t *testing.T) {
	p := basePolicy()
	p.ExcludedPaths = []string{"/api/public/*"}
	cp := mustCompile(t, p)
	tests := []struct {
		raw  string
		want bool
	}{
		{"http://h/api/public/x", true},
		{"http://h/api/public/a%20b", true}, // canonical encoding: RawPath empty
		{"http://h/api/public%2Fx", false},  // encoded slash
		{"http://h/api/public/%2e%2e/admin", false},
		{"http://h/api/public/..%2Fadmin", false},
		{"http://h/api/%70ublic/x", false}, // needless encoding
		{"http://h/admin", false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			u, err := url.Parse(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := cp.excludedURL(u); got != tt.want {
				t.Errorf("excludedURL(%q) [Path %q RawPath %q] = %v, want %v", tt.raw, u.Path, u.RawPath, got, tt.want)
			}
		})
	}
	if cp.excludedURL(nil) {
		t.Error("excludedURL(nil) = true")
	}
}

func BenchmarkAuthorize(b *testing.B) {
	p := basePolicy()
	p.AllowedTenants = []string{tTenant2, tTenant}
	p.AllowedApplications = []string{tApp2, tApp}
	p.AllowedIdentities = []string{tOID2}
	p.AllowedGroups = []string{tGroup}
	p.AppOnly = true
	p.RequiredRoles = []string{"Admin", "Callee.Invoke"}
	p.BoundClaims = map[string][]string{
		"xms_mirid": {"/subscriptions/*/resourcegroups/rg-*/providers/Microsoft.Web/sites/*"},
		"appidacr":  {"2"},
	}
	cp := mustCompile(b, p)
	c := appToken()
	c.Groups = []string{tGroup2, tGroup}
	c.raw = rawMembers(`{"xms_mirid":"/subscriptions/abc/resourcegroups/rg-prod/providers/Microsoft.Web/sites/caller","appidacr":2}`)
	if e := cp.authorize(c); e != nil {
		b.Fatal(e)
	}
	b.ReportAllocs()
	for b.Loop() {
		if e := cp.authorize(c); e != nil {
			b.Fatal(e)
		}
	}
}

func BenchmarkExcluded(b *testing.B) {
	p := basePolicy()
	p.ExcludedPaths = []string{"/api/healthz", "/api/public/*", "/.well-known/*"}
	cp := mustCompile(b, p)
	b.ReportAllocs()
	for b.Loop() {
		if cp.excluded("/api/callee/run") || !cp.excluded("/api/public/x") {
			b.Fatal("wrong result")
		}
	}
}

func FuzzExcluded(f *testing.F) {
	for _, s := range []string{"/api/public/x", "/api/public/../admin", "/api/public", "//api/public/x",
		"/api/public/./x", "/api/healthz", "/api/healthz/", "/a%2Fb", "/api/public\\x", ""} {
		f.Add(s)
	}
	p := basePolicy()
	p.ExcludedPaths = []string{"/api/healthz", "/api/public/*"}
	cp := mustCompile(f, p)
	f.Fuzz(func(t *testing.T, s string) {
		if !cp.excluded(s) {
			return
		}
		// Whatever is excluded is canonical and really under an excluded entry.
		if strings.Contains(s, "/../") || strings.HasSuffix(s, "/..") || strings.Contains(s, "//") ||
			strings.Contains(s, "/./") || strings.ContainsAny(s, "%\\\x00") {
			t.Fatalf("non-canonical path %q excluded", s)
		}
		if s != "/api/healthz" && s != "/api/public" && !strings.HasPrefix(s, "/api/public/") {
			t.Fatalf("path %q excluded but matches no entry", s)
		}
	})
}

func TestAuthorizeAllowedPathDoesNotAllocate(t *testing.T) {
	p := basePolicy()
	p.AllowedTenants = []string{tTenant}
	p.AllowedApplications = []string{tApp}
	p.AllowedGroups = []string{tGroup}
	p.AppOnly = true
	p.RequiredRoles = []string{"Callee.Invoke"}
	p.BoundClaims = map[string][]string{"n": {"2"}, "s": {"a*"}, "b": {"true"}}
	p.ExcludedPaths = []string{"/api/public/*", "/.well-known/*"}
	cp := mustCompile(t, p)
	c := appToken()
	c.Groups = []string{tGroup}
	c.raw = rawMembers(`{"n":2,"s":"abc","b":true}`) // list claims are decoded, and allocate
	allocs := testing.AllocsPerRun(100, func() {
		if e := cp.authorize(c); e != nil {
			t.Fatal(e)
		}
		if !cp.excluded("/api/public/x") || !cp.excluded("/.well-known/openid-configuration") || cp.excluded("/api/run") {
			t.Fatal("excluded wrong")
		}
	})
	if allocs != 0 {
		t.Errorf("authorize+excluded allocate %v times per call on the allowed path, want 0", allocs)
	}
}

// globMatch compiles pattern and matches s against it, as bound claims do.
func globMatch(pattern, s string) bool { return compileGlob(pattern).match(s) }
