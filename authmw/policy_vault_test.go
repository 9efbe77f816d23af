package authmw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/authmw/authmwtest"
	"github.com/f2fauth/f2fauth/internal/testutil"
)

// vaultBaseSkew is Vault's default leeway mapped to ClockSkew: 60s + 150s.
const vaultBaseSkew = 210 * time.Second

// vaultRoleDoc is a minimal jwt role with extra fields (a JSON fragment) added.
func vaultRoleDoc(extra string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return `{"role_type": "jwt", "user_claim": "sub"` + extra + `}`
}

// Each Vault role field maps to the Policy field the docs name, or is refused, or is
// reported as not honoured.
func TestParseVaultJWTRoleFields(t *testing.T) {
	base := func(mod func(*Policy)) Policy {
		p := Policy{UserClaim: "sub", ClockSkew: vaultBaseSkew}
		if mod != nil {
			mod(&p)
		}
		return p
	}
	tests := []struct {
		name        string
		doc         string
		want        Policy
		wantErr     string // substring; "" means no error
		wantIgnored string // substring of the joined ignored list
	}{
		{name: "minimal", doc: vaultRoleDoc(""), want: base(nil)},
		{name: "bound_audiences list", doc: vaultRoleDoc(`"bound_audiences": ["api://callee", "c1"]`),
			want: base(func(p *Policy) { p.Audiences = []string{"api://callee", "c1"} })},
		{name: "bound_audiences comma string", doc: vaultRoleDoc(`"bound_audiences": "api://callee, c1"`),
			want: base(func(p *Policy) { p.Audiences = []string{"api://callee", "c1"} })},
		{name: "bound_audiences empty", doc: vaultRoleDoc(`"bound_audiences": []`), want: base(nil)},
		{name: "bound_subject is an exact sub", doc: vaultRoleDoc(`"bound_subject": "s-1"`),
			want: base(func(p *Policy) { p.BoundClaims = map[string][]string{"sub": {"s-1"}} })},
		{name: "bound_subject with a star", doc: vaultRoleDoc(`"bound_subject": "s-*"`), wantErr: `bound_subject "s-*" contains '*'`},
		{name: "bound_subject and bound_claims sub", doc: vaultRoleDoc(`"bound_subject": "a", "bound_claims": {"sub": "a"}`),
			wantErr: "bound_subject and bound_claims both bind sub"},
		{name: "bound_claims string value", doc: vaultRoleDoc(`"bound_claims": {"appidacr": "2"}`),
			want: base(func(p *Policy) { p.BoundClaims = map[string][]string{"appidacr": {"2"}} })},
		{name: "bound_claims list is any-of", doc: vaultRoleDoc(`"bound_claims_type": "string", "bound_claims": {"appidacr": ["1", "2"]}`),
			want: base(func(p *Policy) { p.BoundClaims = map[string][]string{"appidacr": {"1", "2"}} })},
		{name: "bound_claims glob", doc: vaultRoleDoc(`"bound_claims_type": "glob", "bound_claims": {"xms_mirid": "/subscriptions/*/x"}`),
			want: base(func(p *Policy) { p.BoundClaims = map[string][]string{"xms_mirid": {"/subscriptions/*/x"}} })},
		{name: "bound_claims string type refuses a star", doc: vaultRoleDoc(`"bound_claims": {"xms_mirid": ["a", "*"]}`),
			wantErr: `"xms_mirid" value "*" contains '*'`},
		{name: "bound_claims JSON pointer to a top-level claim", doc: vaultRoleDoc(`"bound_claims": {"/x~1y": "v"}`),
			want: base(func(p *Policy) { p.BoundClaims = map[string][]string{"x/y": {"v"}} })},
		{name: "bound_claims nested pointer", doc: vaultRoleDoc(`"bound_claims": {"/a/b": "v"}`), wantErr: "points into a nested claim"},
		{name: "bound_claims number value", doc: vaultRoleDoc(`"bound_claims": {"n": 2}`), wantErr: "must be a string or a list of strings"},
		{name: "bound_claims duplicate key", doc: vaultRoleDoc(`"bound_claims": {"a": "1", "a": "2"}`), wantErr: `key "bound_claims.a" is given twice`},
		{name: "bound_claims case-distinct claims", doc: vaultRoleDoc(`"bound_claims": {"a": "1", "A": "2"}`),
			want: base(func(p *Policy) { p.BoundClaims = map[string][]string{"a": {"1"}, "A": {"2"}} })},
		{name: "bound_claims_type invalid", doc: vaultRoleDoc(`"bound_claims_type": "regex"`), wantErr: `bound_claims_type "regex" is not valid`},
		{name: "claim_mappings inverted", doc: vaultRoleDoc(`"claim_mappings": {"oid": "object_id", "/tid": "tenant"}`),
			want: base(func(p *Policy) { p.ClaimMappings = map[string]string{"object_id": "oid", "tenant": "tid"} })},
		{name: "claim_mappings as key=value list", doc: vaultRoleDoc(`"claim_mappings": ["oid=object_id"]`),
			want: base(func(p *Policy) { p.ClaimMappings = map[string]string{"object_id": "oid"} })},
		{name: "claim_mappings duplicate target", doc: vaultRoleDoc(`"claim_mappings": {"oid": "k", "tid": "k"}`), wantErr: `two claims to the metadata key "k"`},
		{name: "claim_mappings reserved role", doc: vaultRoleDoc(`"claim_mappings": {"oid": "role"}`), wantErr: `"role", which Vault reserves`},
		{name: "user_claim", doc: `{"role_type": "jwt", "user_claim": "oid"}`, want: base(func(p *Policy) { p.UserClaim = "oid" })},
		{name: "user_claim JSON pointer", doc: `{"role_type": "jwt", "user_claim": "/oid", "user_claim_json_pointer": true}`,
			want: base(func(p *Policy) { p.UserClaim = "oid" })},
		{name: "user_claim literal slash without pointer flag", doc: `{"role_type": "jwt", "user_claim": "/oid"}`,
			want: base(func(p *Policy) { p.UserClaim = "/oid" })},
		{name: "user_claim missing", doc: `{"role_type": "jwt"}`, wantErr: "user_claim is required"},
		{name: "bound_cidrs", doc: vaultRoleDoc(`"bound_cidrs": ["10.0.0.0/8"]`),
			want: base(func(p *Policy) { p.AllowedClientCIDRs = []string{"10.0.0.0/8"} })},
		{name: "token_bound_cidrs comma string", doc: vaultRoleDoc(`"token_bound_cidrs": "10.0.0.0/8, 192.0.2.7"`),
			want: base(func(p *Policy) { p.AllowedClientCIDRs = []string{"10.0.0.0/8", "192.0.2.7"} })},
		{name: "token_bound_cidrs empty is unchecked, as in Vault", doc: vaultRoleDoc(`"token_bound_cidrs": [], "bound_cidrs": null`), want: base(nil)},
		{name: "bound_cidrs and token_bound_cidrs differ", doc: vaultRoleDoc(`"bound_cidrs": ["10.0.0.0/8"], "token_bound_cidrs": ["0.0.0.0/0"]`),
			wantErr: "bound_cidrs and token_bound_cidrs differ"},
		{name: "token_ttl duration string", doc: vaultRoleDoc(`"token_ttl": "1h"`), want: base(func(p *Policy) { p.MaxTokenAge = time.Hour })},
		{name: "token_ttl seconds", doc: vaultRoleDoc(`"token_ttl": 3600`), want: base(func(p *Policy) { p.MaxTokenAge = time.Hour })},
		{name: "token_ttl seconds as string", doc: vaultRoleDoc(`"token_ttl": "3600"`), want: base(func(p *Policy) { p.MaxTokenAge = time.Hour })},
		{name: "token_max_ttl alone", doc: vaultRoleDoc(`"token_max_ttl": 7200`), want: base(func(p *Policy) { p.MaxTokenAge = 2 * time.Hour })},
		{name: "smallest TTL wins", doc: vaultRoleDoc(`"token_ttl": "1h", "token_max_ttl": "768h", "token_explicit_max_ttl": 900`),
			want: base(func(p *Policy) { p.MaxTokenAge = 15 * time.Minute })},
		{name: "deprecated ttl", doc: vaultRoleDoc(`"ttl": 600`), want: base(func(p *Policy) { p.MaxTokenAge = 10 * time.Minute })},
		{name: "ttl and token_ttl differ", doc: vaultRoleDoc(`"ttl": 600, "token_ttl": 700`), wantErr: "ttl and token_ttl differ"},
		{name: "token_ttl above token_max_ttl", doc: vaultRoleDoc(`"token_ttl": "2h", "token_max_ttl": "1h"`), wantErr: "token_ttl (2h) is greater than token_max_ttl (1h)"},
		{name: "token_ttl out of range", doc: vaultRoleDoc(`"token_ttl": "48h"`), wantErr: "token_ttl is 48h, out of range"},
		{name: "token_max_ttl in days out of range", doc: vaultRoleDoc(`"token_max_ttl": "2d"`), wantErr: "token_max_ttl is 48h, out of range"},
		{name: "token_ttl too short", doc: vaultRoleDoc(`"token_ttl": 30`), wantErr: "token_ttl is 30s, out of range"},
		{name: "token_ttl negative", doc: vaultRoleDoc(`"token_ttl": -5`), wantErr: "token_ttl is negative"},
		{name: "token_ttl not a duration", doc: vaultRoleDoc(`"token_ttl": "soon"`), wantErr: "token_ttl is not a duration"},
		{name: "leeways", doc: vaultRoleDoc(`"clock_skew_leeway": 30, "expiration_leeway": 60, "not_before_leeway": 60`),
			want: base(func(p *Policy) { p.ClockSkew = 90 * time.Second })},
		{name: "no leeway at all", doc: vaultRoleDoc(`"clock_skew_leeway": -1, "expiration_leeway": -1, "not_before_leeway": -1`),
			want: base(func(p *Policy) { p.ClockSkew = time.Second }), wantIgnored: "smallest clock skew, 1s"},
		{name: "unequal leeways use the larger", doc: vaultRoleDoc(`"expiration_leeway": 300`),
			want: base(func(p *Policy) { p.ClockSkew = 6 * time.Minute }), wantIgnored: "one clock skew: 6m"},
		{name: "leeway too large", doc: vaultRoleDoc(`"expiration_leeway": 3600`), wantErr: "more than authmw's largest clock skew"},
		{name: "role_type oidc", doc: `{"role_type": "oidc", "user_claim": "sub", "allowed_redirect_uris": ["https://x/cb"]}`,
			wantErr: `role_type is "oidc"`},
		{name: "role_type missing", doc: `{"user_claim": "sub", "bound_audiences": ["a"]}`, wantErr: "role_type is not set: Vault makes such a role an oidc role"},
		{name: "role_type invalid", doc: `{"role_type": "JWT", "user_claim": "sub"}`, wantErr: `role_type "JWT" is not valid`},
		{name: "allowed_redirect_uris", doc: vaultRoleDoc(`"allowed_redirect_uris": "https://x/cb"`), wantErr: "allowed_redirect_uris is set"},
		{name: "max_age", doc: vaultRoleDoc(`"max_age": 60`), wantErr: "max_age is set"},
		{name: "token_policies reported", doc: vaultRoleDoc(`"token_policies": "kv-read,kv-write", "policies": ["kv-read"]`),
			want: base(nil), wantIgnored: "token_policies (Vault policies"},
		{name: "token_num_uses reported", doc: vaultRoleDoc(`"token_num_uses": 3`), want: base(nil), wantIgnored: "token_num_uses"},
		{name: "token_type reported", doc: vaultRoleDoc(`"token_type": "batch", "token_period": "1h", "token_no_default_policy": "true"`),
			want: base(nil), wantIgnored: "token_type"},
		{name: "groups_claim reported", doc: vaultRoleDoc(`"groups_claim": "groups"`), want: base(nil), wantIgnored: "groups_claim"},
		{name: "oidc fields reported", doc: vaultRoleDoc(`"oidc_scopes": "openid", "verbose_oidc_logging": true`),
			want: base(nil), wantIgnored: "verbose_oidc_logging"},
		{name: "defaults of ignored fields are not reported", doc: vaultRoleDoc(`"token_policies": [], "token_type": "default", "groups_claim": "", "token_num_uses": 0`),
			want: base(nil)},
		{name: "unknown field", doc: vaultRoleDoc(`"bound_audience": ["a"]`), wantErr: `unknown key "bound_audience": check its spelling`},
		{name: "field in another case", doc: vaultRoleDoc(`"Bound_Audiences": ["a"]`), wantErr: `write "bound_audiences"`},
		{name: "field given twice", doc: vaultRoleDoc(`"bound_audiences": ["a"], "bound_audiences": []`), wantErr: `key "bound_audiences" is given twice`},
		{name: "wrong type", doc: vaultRoleDoc(`"user_claim_json_pointer": "maybe"`), wantErr: "user_claim_json_pointer must be true or false"},
		{name: "read output: unknown key next to data", doc: `{"data": ` + vaultRoleDoc("") + `, "role_type": "jwt"}`,
			wantErr: `unknown key "role_type" next to "data"`},
		{name: "read output: data null", doc: `{"request_id": "x", "data": null}`, wantErr: `"data" is not a JSON object`},
		{name: "read output: unknown role key named with its path", doc: `{"data": ` + vaultRoleDoc(`"bogus": 1`) + `}`, wantErr: `unknown key "data.bogus"`},
		{name: "envelope key in a write body", doc: vaultRoleDoc(`"lease_id": ""`), wantErr: `keeps the role under "data"`},
		{name: "syntax error with position", doc: "{\"role_type\": \"jwt\",\n \"user_claim\": }", wantErr: "line 2, column"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ignored, err := parseVaultJWTRole([]byte(tt.doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidPolicy) {
					t.Fatalf("err = %v, want one containing %q (and wrapping ErrInvalidPolicy)", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("policy\n got %#v\nwant %#v", got, tt.want)
			}
			joined := strings.Join(ignored, "; ")
			if tt.wantIgnored == "" && len(ignored) > 0 || !strings.Contains(joined, tt.wantIgnored) {
				t.Errorf("ignored = %q, want %q", joined, tt.wantIgnored)
			}
		})
	}
}

// The body written with `vault write` and the output of `vault read -format=json`
// of the same role give the same policy.
func TestParseVaultJWTRoleShapes(t *testing.T) {
	want := Policy{
		Audiences: []string{"api://callee"},
		BoundClaims: map[string][]string{
			"xms_mirid": {"/subscriptions/*/resourcegroups/rg-prod/providers/Microsoft.ManagedIdentity/userAssignedIdentities/*"},
			"tid":       {authmwtest.DefaultTenantID},
		},
		ClaimMappings:      map[string]string{"object_id": "oid", "resource_id": "xms_mirid"},
		UserClaim:          "oid",
		AllowedClientCIDRs: []string{"127.0.0.1"},
		MaxTokenAge:        time.Hour,
		ClockSkew:          vaultBaseSkew,
	}
	for _, file := range []string{"role-write.json", "role-read.json"} {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join("testdata", "vault", file)
			got, format, ignored, err := loadPolicyFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if format != formatVaultRole {
				t.Errorf("format = %v, want the Vault role", format)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("policy\n got %#v\nwant %#v", got, want)
			}
			if len(ignored) != 1 || !strings.HasPrefix(ignored[0], "token_policies") {
				t.Errorf("ignored = %q, want token_policies only", ignored)
			}
		})
	}
}

// The loader tells the shapes apart by their keys and names the file when it cannot.
func TestPolicyFileShapeDetection(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, doc  string
		wantFormat policyFormat
		wantErr    string
	}{
		{"authsettingsV2 properties", `{"globalValidation": {"excludedPaths": ["/h"]}}`, formatAuthSettingsV2, ""},
		{"authsettingsV2 resource", `{"id": "x", "properties": {}}`, formatAuthSettingsV2, ""},
		{"empty object stays authsettingsV2", `{}`, formatAuthSettingsV2, ""},
		{"quoted app setting", `"{\"globalValidation\": {}}"`, formatAuthSettingsV2, ""},
		{"vault write body", vaultRoleDoc(""), formatVaultRole, ""},
		{"vault read output", `{"request_id": "r", "data": ` + vaultRoleDoc("") + `}`, formatVaultRole, ""},
		{"both shapes", `{"globalValidation": {}, "bound_audiences": ["a"], "role_type": "jwt", "user_claim": "sub"}`, 0,
			`mixes keys of a Vault JWT role ("bound_audiences", "role_type", "user_claim") and of an Easy Auth authsettingsV2 document ("globalValidation")`},
		{"neither", `{"allowedAudiences": ["a"]}`, 0, `is neither an Easy Auth authsettingsV2 document`},
		{"vault role with a syntax error is reported as one", `{"role_type": "jwt", "user_claim": }`, 0, "Vault JWT role: line 1"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("p%d.json", i))
			if err := os.WriteFile(path, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			_, format, _, err := loadPolicyFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err = %v, want one naming %s and containing %q", err, path, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if format != tt.wantFormat {
				t.Errorf("format = %v, want %v", format, tt.wantFormat)
			}
		})
	}
}

// A role that cannot be honoured stops startup with the variable and the field named.
func TestVaultRoleRefusedByConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := func(extra map[string]string) func(string) (string, bool) {
		m := map[string]string{"AUTHMW_TENANT_ID": tTenant, "AUTHMW_AUDIENCES": "api://callee"}
		for k, v := range extra {
			m[k] = v
		}
		return envFunc(m)
	}
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"oidc role", map[string]string{"AUTHMW_POLICY_FILE": write("oidc.json", `{"role_type": "oidc", "user_claim": "sub", "bound_subject": "x"}`)},
			[]string{"AUTHMW_POLICY_FILE", "oidc.json", `role_type is "oidc"`}},
		{"bad CIDR in the role", map[string]string{"AUTHMW_POLICY_FILE": write("cidr.json", vaultRoleDoc(`"bound_subject": "x", "bound_cidrs": ["10.0.0.300/8"]`))},
			[]string{"AUTHMW_ALLOWED_CLIENT_CIDRS (or bound_cidrs in AUTHMW_POLICY_FILE", `entry 0 "10.0.0.300/8" is not a CIDR block`}},
		{"role without a binding", map[string]string{"AUTHMW_POLICY_FILE": write("open.json", vaultRoleDoc(`"bound_cidrs": ["10.0.0.0/8"]`))},
			[]string{"no authorization rule"}},
		{"bad trusted proxy", map[string]string{"AUTHMW_REQUIRED_ROLES": "r", "AUTHMW_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"},
			[]string{`AUTHMW_TRUSTED_PROXIES entry 1 "proxy.local" is not a CIDR block`}},
		{"bad client CIDR", map[string]string{"AUTHMW_REQUIRED_ROLES": "r", "AUTHMW_ALLOWED_CLIENT_CIDRS": "10.0.0.0/33"},
			[]string{`AUTHMW_ALLOWED_CLIENT_CIDRS entry 0 "10.0.0.0/33"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ConfigFromEnv(env(tt.env))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	c, err := ConfigFromEnv(env(map[string]string{"AUTHMW_REQUIRED_ROLES": "r", "AUTHMW_ALLOWED_CLIENT_CIDRS": "10.0.0.0/8, 2001:db8::/32",
		"AUTHMW_TRUSTED_PROXIES": "192.0.2.1"}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Policy.AllowedClientCIDRs, []string{"10.0.0.0/8", "2001:db8::/32"}) || !reflect.DeepEqual(c.Policy.TrustedProxies, []string{"192.0.2.1"}) {
		t.Errorf("policy = %+v", c.Policy)
	}
}

// clientAddress believes X-Forwarded-For only from trusted proxies, and then only its
// rightmost untrusted entry.
func TestClientAddress(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00::/64")}
	tests := []struct {
		name, remote string
		xff          []string
		want         string // "" = unknown
	}{
		{"direct IPv4", "192.0.2.7:5000", nil, "192.0.2.7"},
		{"direct IPv6", "[2001:db8::7]:5000", nil, "2001:db8::7"},
		{"IPv4-mapped", "[::ffff:192.0.2.7]:5000", nil, "192.0.2.7"},
		{"zone dropped", "[fe80::1%lo]:5000", nil, "fe80::1"},
		{"untrusted peer's header ignored", "192.0.2.7:5000", []string{"198.51.100.1"}, "192.0.2.7"},
		{"trusted proxy", "10.0.0.5:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"rightmost untrusted wins over a spoofed left entry", "10.0.0.5:5000", []string{"127.0.0.1, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops skipped", "10.0.0.5:5000", []string{"198.51.100.1, 10.0.0.9"}, "198.51.100.1"},
		{"several header lines in order", "10.0.0.5:5000", []string{"127.0.0.1", "198.51.100.1"}, "198.51.100.1"},
		{"all trusted: leftmost", "10.0.0.5:5000", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"entry with port (App Service)", "10.0.0.5:5000", []string{"198.51.100.1:61234"}, "198.51.100.1"},
		{"bracketed IPv6 with port", "[fd00::5]:5000", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"trusted proxy without header", "10.0.0.5:5000", nil, ""},
		{"garbage entry", "10.0.0.5:5000", []string{"198.51.100.1, unknown"}, ""},
		{"empty entry", "10.0.0.5:5000", []string{"198.51.100.1,"}, ""},
		{"not an address", "pipe", nil, ""},
		{"too many trusted hops", "10.0.0.5:5000", []string{strings.Repeat("10.0.0.1,", 40) + "10.0.0.1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, why := clientAddress(r, proxies)
			if tt.want == "" {
				if got.IsValid() || why == "" {
					t.Errorf("got %v (%q), want unknown with a reason", got, why)
				}
				return
			}
			if got.String() != tt.want {
				t.Errorf("got %v (%q), want %s", got, why, tt.want)
			}
		})
	}
}

func TestParseCIDR(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3/8": "10.0.0.0/8", "192.0.2.7": "192.0.2.7/32", "2001:db8::1": "2001:db8::1/128",
		"::ffff:10.0.0.0/104": "10.0.0.0/8", " 10.0.0.0/8 ": "10.0.0.0/8",
	} {
		if got, err := parseCIDR(in); err != nil || got.String() != want {
			t.Errorf("parseCIDR(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.0/33", "fe80::1%eth0", "host", "::ffff:10.0.0.0/8", "10.0.0.0/8/8"} {
		if _, err := parseCIDR(in); err == nil {
			t.Errorf("parseCIDR(%q) accepted", in)
		}
	}
}

// vaultPair runs the same rules twice against one issuer: once from a Vault role
// file, once written in authmw's own form, each behind its own loopback server.
type vaultPair struct {
	idp        *authmwtest.Issuer
	role, own  *httptest.Server
	mRole      *Middleware
	roleLogs   *testutil.SyncBuffer
	rolePath   string
	from       map[string]*http.Client // source address -> client
	legitClaim authmwtest.Claims
}

const (
	vaultTestApp   = "11111111-2222-3333-4444-555555555555"
	vaultTestMIRID = "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourcegroups/rg-prod/providers/Microsoft.ManagedIdentity/userAssignedIdentities/caller"
)

// clientFrom returns an HTTP client whose connections leave from the loopback
// address src (127.0.0.1, .2 and .3 are all bindable on Linux).
func clientFrom(t *testing.T, src string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// principalEcho answers 200 with the principal's name and metadata.
func principalEcho(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	out := map[string]any{}
	if p != nil {
		out["name"], out["metadata"] = p.Name, p.Metadata
	}
	json.NewEncoder(w).Encode(out)
}

func newVaultPair(t *testing.T, roleDoc string, own Policy, trusted []string) *vaultPair {
	t.Helper()
	idp, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	vp := &vaultPair{idp: idp, roleLogs: &testutil.SyncBuffer{}, from: map[string]*http.Client{}}
	vp.rolePath = filepath.Join(t.TempDir(), "role.json")
	if err := os.WriteFile(vp.rolePath, []byte(roleDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	issuer := Policy{TenantID: idp.TenantID(), AuthorityHost: idp.AuthorityURL(), TrustedProxies: trusted}
	start := func(cfg Config) (*Middleware, *httptest.Server) {
		m, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(func() { m.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(m.Handler(http.HandlerFunc(principalEcho)))
		t.Cleanup(srv.Close)
		return m, srv
	}
	vp.mRole, vp.role = start(Config{Policy: issuer, PolicyFile: vp.rolePath, PolicyFileInterval: 10 * time.Millisecond, shortIntervals: true,
		Logger: slog.New(slog.NewTextHandler(vp.roleLogs, nil))})
	own.TenantID, own.AuthorityHost, own.TrustedProxies = issuer.TenantID, issuer.AuthorityHost, trusted
	_, vp.own = start(Config{Policy: own})
	for _, src := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		vp.from[src] = clientFrom(t, src)
	}
	vp.legitClaim = idp.AppClaims(authmwtest.App{AppID: vaultTestApp, ResourceID: vaultTestMIRID}, "api://callee", authmwtest.V2)
	return vp
}

// token mints the legit claims changed by mod.
func (vp *vaultPair) token(t *testing.T, mod func(authmwtest.Claims)) string {
	t.Helper()
	c := authmwtest.Claims{}
	for k, v := range vp.legitClaim {
		c[k] = v
	}
	if mod != nil {
		mod(c)
	}
	tok, err := vp.idp.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type vaultOutcome struct {
	status int
	reason Reason
	body   string
}

func (vp *vaultPair) call(t *testing.T, srv *httptest.Server, src, tok string, xff []string) vaultOutcome {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	res, err := vp.from[src].Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var pb struct {
		Reason Reason `json:"reason"`
	}
	json.Unmarshal(b, &pb)
	out := vaultOutcome{status: res.StatusCode, reason: pb.Reason}
	if res.StatusCode == 200 {
		out.body = string(b)
	}
	return out
}

// The rules of a Vault role (glob bound claims, bound_cidrs, user_claim,
// claim_mappings, token_ttl) allow and deny exactly as the same rules written in
// authmw's own form: the same real tokens from the same loopback addresses get the
// same answers, and the answers are the expected ones.
func TestVaultRoleDecidesAsAuthmwForm(t *testing.T) {
	roleDoc, err := os.ReadFile(filepath.Join("testdata", "vault", "role-read.json"))
	if err != nil {
		t.Fatal(err)
	}
	own := Policy{
		Audiences: []string{"api://callee"},
		BoundClaims: map[string][]string{
			"xms_mirid": {"/subscriptions/*/resourcegroups/rg-prod/providers/Microsoft.ManagedIdentity/userAssignedIdentities/*"},
			"tid":       {authmwtest.DefaultTenantID},
		},
		ClaimMappings:      map[string]string{"object_id": "oid", "resource_id": "xms_mirid"},
		UserClaim:          "oid",
		AllowedClientCIDRs: []string{"127.0.0.1/32"},
		MaxTokenAge:        time.Hour,
		ClockSkew:          vaultBaseSkew,
	}
	vp := newVaultPair(t, string(roleDoc), own, []string{"127.0.0.3/32"})

	legit := vp.token(t, nil)
	devRG := vp.token(t, func(c authmwtest.Claims) {
		c["xms_mirid"] = strings.Replace(vaultTestMIRID, "rg-prod", "rg-dev", 1)
	})
	noMIRID := vp.token(t, func(c authmwtest.Claims) { delete(c, "xms_mirid") })
	otherTenant := vp.token(t, func(c authmwtest.Claims) { c["tid"] = "00000000-0000-0000-0000-000000000001" })
	otherAud := vp.token(t, func(c authmwtest.Claims) { c["aud"] = "api://other" })
	noOID := vp.token(t, func(c authmwtest.Claims) { delete(c, "oid") })
	old := vp.token(t, func(c authmwtest.Claims) { c["iat"] = time.Now().Add(-2 * time.Hour).Unix() })

	const (
		ok       = 200
		fb       = 403
		un       = 401
		clientNo = ReasonClientAddressNotAllowed
	)
	tests := []struct {
		name   string
		src    string
		tok    string
		xff    []string
		status int
		reason Reason
	}{
		{"legit caller from the allowed address", "127.0.0.1", legit, nil, ok, ""},
		{"legit caller from another address", "127.0.0.2", legit, nil, fb, clientNo},
		{"spoofed X-Forwarded-For from an untrusted peer", "127.0.0.2", legit, []string{"127.0.0.1"}, fb, clientNo},
		{"X-Forwarded-For of a non-proxy is ignored", "127.0.0.1", legit, []string{"127.0.0.2"}, ok, ""},
		{"through the trusted proxy", "127.0.0.3", legit, []string{"127.0.0.1"}, ok, ""},
		{"through the trusted proxy, spoofed left entry", "127.0.0.3", legit, []string{"127.0.0.1, 127.0.0.2"}, fb, clientNo},
		{"through two trusted hops", "127.0.0.3", legit, []string{"127.0.0.1, 127.0.0.3"}, ok, ""},
		{"trusted proxy without X-Forwarded-For", "127.0.0.3", legit, nil, fb, clientNo},
		{"trusted proxy with a garbage entry", "127.0.0.3", legit, []string{"127.0.0.1, nobody"}, fb, clientNo},
		{"no token from the allowed address", "127.0.0.1", "", nil, un, ReasonMissingToken},
		{"no token from another address", "127.0.0.2", "", nil, fb, clientNo},
		{"resource group outside the glob", "127.0.0.1", devRG, nil, fb, ReasonClaimMismatch},
		{"resource group outside the glob, other address", "127.0.0.2", devRG, nil, fb, clientNo},
		{"no xms_mirid", "127.0.0.1", noMIRID, nil, fb, ReasonClaimMismatch},
		{"other tenant", "127.0.0.1", otherTenant, nil, un, ReasonIssuerMismatch},
		{"other audience", "127.0.0.1", otherAud, nil, un, ReasonAudienceMismatch},
		{"user claim absent", "127.0.0.1", noOID, nil, fb, ReasonClaimMismatch},
		{"older than token_ttl", "127.0.0.1", old, nil, un, ReasonTokenTooOld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fromRole := vp.call(t, vp.role, tt.src, tt.tok, tt.xff)
			fromOwn := vp.call(t, vp.own, tt.src, tt.tok, tt.xff)
			if fromRole != fromOwn {
				t.Errorf("Vault role: %+v; authmw form: %+v", fromRole, fromOwn)
			}
			if fromRole.status != tt.status || fromRole.reason != tt.reason {
				t.Errorf("got %d %q, want %d %q", fromRole.status, fromRole.reason, tt.status, tt.reason)
			}
		})
	}
	// The principal carries the user claim and the mapped claims.
	got := vp.call(t, vp.role, "127.0.0.1", legit, nil).body
	want := fmt.Sprintf(`{"metadata":{"object_id":%q,"resource_id":%q},"name":%q}`, vaultTestApp, vaultTestMIRID, vaultTestApp)
	if strings.TrimSpace(got) != want {
		t.Errorf("principal = %s, want %s", got, want)
	}
	// The ignored token-issuance field was reported at startup.
	if logs := vp.roleLogs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "token_policies") {
		t.Errorf("ignored fields not logged at WARN:\n%s", logs)
	}
}

// A Vault role file is hot-reloaded like an authsettingsV2 one, with the same
// strictness: valid changes apply; an unknown key, an oidc role, or a change that
// turns a check off (bound_cidrs, a bound claim, token_ttl) is refused and the old
// role stays.
func TestVaultRoleReload(t *testing.T) {
	write := func(t *testing.T, path, doc string) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	role := func(rg, extra string) string {
		return `{"role_type": "jwt", "user_claim": "oid", "bound_audiences": ["api://callee"], "bound_claims_type": "glob",
		  "bound_claims": {"xms_mirid": "/subscriptions/*/resourcegroups/` + rg + `/providers/**"}` + extra + `}`
	}
	const cidrs = `, "bound_cidrs": ["127.0.0.1"], "token_ttl": "1h"`
	tests := []struct {
		name, doc, logWant string
	}{
		{"bound_cidrs removed", role("rg-prod", `, "token_ttl": "1h"`), "turn off the check of bound_cidrs (AUTHMW_ALLOWED_CLIENT_CIDRS)"},
		{"bound_cidrs emptied (Vault: unchecked)", role("rg-prod", `, "bound_cidrs": [], "token_ttl": "1h"`), "turn off the check of bound_cidrs"},
		{"token_ttl removed", role("rg-prod", `, "bound_cidrs": ["127.0.0.1"]`), "turn off the check of token_ttl (AUTHMW_MAX_TOKEN_AGE)"},
		{"bound claim removed", `{"role_type": "jwt", "user_claim": "oid", "bound_audiences": ["api://callee"], "bound_subject": "x"` + cidrs + `}`,
			`turn off the check of bound_claims (AUTHMW_BOUND_CLAIMS) \"xms_mirid\"`},
		{"unknown key", role("rg-prod", cidrs+`, "bound_cidr": ["0.0.0.0/0"]`), `unknown key \"bound_cidr\"`},
		{"oidc role", strings.Replace(role("rg-prod", cidrs), `"jwt"`, `"oidc"`, 1), `role_type is \"oidc\"`},
		{"string claim with a star", strings.Replace(role("rg-prod", cidrs), `"glob"`, `"string"`, 1), `contains '*'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vp := newVaultPair(t, role("rg-prod", cidrs), Policy{Audiences: []string{"api://callee"}, InsecureAllowAnyCaller: true}, nil)
			legit := vp.token(t, nil)
			if r := vp.call(t, vp.role, "127.0.0.1", legit, nil); r.status != 200 {
				t.Fatalf("legit caller before: %+v", r)
			}
			write(t, vp.rolePath, tt.doc)
			waitFor(t, "the refusal to be logged", func() bool { return strings.Contains(vp.roleLogs.String(), tt.logWant) })
			if r := vp.call(t, vp.role, "127.0.0.2", legit, nil); r.status != 403 || r.reason != ReasonClientAddressNotAllowed {
				t.Errorf("other address after a refused reload: %+v", r)
			}
			if r := vp.call(t, vp.role, "127.0.0.1", legit, nil); r.status != 200 {
				t.Errorf("legit caller after a refused reload: %+v", r)
			}
		})
	}
	t.Run("valid change applies", func(t *testing.T) {
		vp := newVaultPair(t, role("rg-prod", cidrs), Policy{Audiences: []string{"api://callee"}, InsecureAllowAnyCaller: true}, nil)
		legit := vp.token(t, nil)
		if r := vp.call(t, vp.role, "127.0.0.1", legit, nil); r.status != 200 {
			t.Fatalf("legit caller before: %+v", r)
		}
		write(t, vp.rolePath, role("rg-dev", `, "bound_cidrs": ["127.0.0.1", "127.0.0.2"], "token_ttl": "1h", "token_policies": ["p"]`))
		waitFor(t, "the new role to apply", func() bool {
			return vp.call(t, vp.role, "127.0.0.1", legit, nil).reason == ReasonClaimMismatch
		})
		if r := vp.call(t, vp.role, "127.0.0.2", legit, nil); r.status != 403 || r.reason != ReasonClaimMismatch {
			t.Errorf("127.0.0.2 after the change: %+v, want past the address check and refused by the claim", r)
		}
		if logs := vp.roleLogs.String(); !strings.Contains(logs, "authmw: policy replaced") || !strings.Contains(logs, "token_policies") {
			t.Errorf("applied change or its ignored field not logged:\n%s", logs)
		}
	})
}

// FuzzParsePolicyDocument: any input is parsed or refused without panicking, the
// same way twice, and an accepted Vault role always binds a user claim and never
// passes a literal '*' from a string-type binding.
func FuzzParsePolicyDocument(f *testing.F) {
	for _, name := range []string{"role-write.json", "role-read.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "vault", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		vaultRoleDoc(`"bound_claims": {"a": ["x", "y"]}, "bound_cidrs": "10.0.0.0/8,::1"`),
		vaultRoleDoc(`"bound_claims": {"/a~1b": "*"}`),
		`{"data": {"role_type": "jwt", "user_claim": "/x", "user_claim_json_pointer": "true"}}`,
		`{"globalValidation": {}, "role_type": "jwt"}`, `{}`, `{"data": null}`, `[1]`, `"x"`, `{"token_ttl": 1e400}`,
		vaultRoleDoc(`"token_ttl": "99999999999999999d"`), vaultRoleDoc(`"clock_skew_leeway": -2`),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p1, f1, ig1, err1 := parsePolicyDocument(data)
		p2, f2, ig2, err2 := parsePolicyDocument(data)
		if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(p1, p2) || f1 != f2 || !reflect.DeepEqual(ig1, ig2) {
			t.Fatalf("not deterministic")
		}
		if err1 != nil {
			if !errors.Is(err1, ErrInvalidPolicy) {
				t.Fatalf("error does not wrap ErrInvalidPolicy: %v", err1)
			}
			return
		}
		if f1 == formatVaultRole {
			if p1.UserClaim == "" {
				t.Fatalf("accepted a role without a user claim")
			}
			if !strings.Contains(string(data), "glob") {
				for name, vals := range p1.BoundClaims {
					for _, v := range vals {
						if strings.Contains(v, "*") {
							t.Fatalf("string-type binding %q=%q kept a '*'", name, v)
						}
					}
				}
			}
		}
	})
}

// FuzzClientAddress: any connection address and X-Forwarded-For header give a valid
// address with no reason, or an invalid one with a reason, without panicking; a peer
// that is not a trusted proxy is always the answer, whatever the header says.
func FuzzClientAddress(f *testing.F) {
	for _, s := range [][2]string{
		{"10.0.0.5:1", "198.51.100.1, 10.0.0.9"}, {"192.0.2.7:1", "10.0.0.1"}, {"[fd00::1]:1", "[2001:db8::1]:443"},
		{"10.0.0.5:1", ""}, {"10.0.0.5:1", ",,,"}, {"x", "y"}, {"[::ffff:10.0.0.5]:1", "::ffff:192.0.2.1"},
	} {
		f.Add(s[0], s[1])
	}
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00::/64")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		got, why := clientAddress(r, proxies)
		if got.IsValid() == (why != "") {
			t.Fatalf("address %v with reason %q", got, why)
		}
		if peer, ok := parseHostAddr(remote); ok && !prefixesContain(proxies, peer) && got != peer {
			t.Fatalf("untrusted peer %v answered as %v", peer, got)
		}
	})
}

// BenchmarkClientCheck is the per-request cost of AllowedClientCIDRs, direct and
// through a trusted proxy.
func BenchmarkClientCheck(b *testing.B) {
	cr := newClientRule(&Policy{AllowedClientCIDRs: []string{"10.20.0.0/16", "192.0.2.0/24"}, TrustedProxies: []string{"10.0.0.0/24"}})
	for _, bc := range []struct {
		name, remote, xff string
	}{{"direct", "192.0.2.7:5000", ""}, {"via proxy", "10.0.0.5:5000", "10.20.1.2, 10.0.0.9"}} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = bc.remote
		if bc.xff != "" {
			r.Header.Set("X-Forwarded-For", bc.xff)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if e := cr.check(r); e != nil {
					b.Fatal(e)
				}
			}
		})
	}
}
