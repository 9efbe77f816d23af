package authmw

import (
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/localidp"
	"github.com/f2fauth/f2fauth/internal/testutil"
)

// The tests in this file send the attacks of issue 9 through the real
// middleware (httptest server), with real discovery and JWKS from the local
// identity platform. Every attack token is signed with the issuer's real
// published key unless said otherwise, so only the rule under test can
// refuse it.

// signedRaw signs payload (verbatim bytes) with the IdP's key under its kid.
func (e *testEnv) signedRaw(header, payload string) string {
	e.t.Helper()
	tok := testutil.CompactRaw([]byte(header), []byte(payload), rs256(e.signingKey()))
	e.remember(tok)
	return tok
}

// signed signs payload with the standard header of the IdP's current key.
func (e *testEnv) signed(payload string) string {
	kid, _ := e.idp.SigningKey()
	return e.signedRaw(`{"typ":"JWT","alg":"RS256","kid":"`+kid+`"}`, payload)
}

func (e *testEnv) signingKey() *rsa.PrivateKey { _, k := e.idp.SigningKey(); return k }

func httptestRequest(path, tok string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req
}

func discardRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// withRaw marshals c and appends members written verbatim (`"n":1.0`), so
// tests control the exact JSON text.
func withRaw(c localidp.Claims, members string) string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	if members == "" {
		return string(b)
	}
	return string(b[:len(b)-1]) + "," + members + "}"
}

// expect checks status and reason of a request with tok.
func (e *testEnv) expect(t *testing.T, tok string, status int, reason Reason) {
	t.Helper()
	r := e.get(tok)
	if r.status != status || reasonOf(r) != reason {
		t.Fatalf("status %d reason %q, want %d %q\n%s", r.status, reasonOf(r), status, reason, e.logs.String())
	}
}

func without(c localidp.Claims, names ...string) localidp.Claims {
	for _, n := range names {
		delete(c, n)
	}
	return c
}

const rogueApp = "99999999-9999-9999-9999-999999999999"

// TestEntraApplicationClaimByVersion (finding 2): appid for v1, azp for v2 or
// no ver; both present and different is a 401. On main, appid won whatever
// the version: the rogue v2 token passed and the honest one got 403.
func TestEntraApplicationClaimByVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Policy.AllowedApplications = []string{testClientID} })
	tests := []struct {
		name   string
		claims func() localidp.Claims
		status int
		reason Reason
	}{
		{"v2 azp allowed", func() localidp.Claims { return e.claims(2) }, 200, ""},
		{"v1 appid allowed", func() localidp.Claims { return e.claims(1) }, 200, ""},
		{"v2 rogue azp with allowed appid", func() localidp.Claims {
			c := e.claims(2)
			c["azp"], c["appid"] = rogueApp, testClientID
			return c
		}, 401, ReasonApplicationClaimConflict},
		{"v2 allowed azp with other appid", func() localidp.Claims {
			c := e.claims(2)
			c["appid"] = rogueApp
			return c
		}, 401, ReasonApplicationClaimConflict},
		{"v1 rogue appid with allowed azp", func() localidp.Claims {
			c := e.claims(1)
			c["appid"], c["azp"] = rogueApp, testClientID
			return c
		}, 401, ReasonApplicationClaimConflict},
		{"v2 without azp, allowed appid only", func() localidp.Claims {
			c := without(e.claims(2), "azp")
			c["appid"] = testClientID
			return c
		}, 403, ReasonApplicationNotAllowed},
		{"v1 without appid, allowed azp only", func() localidp.Claims {
			c := without(e.claims(1), "appid")
			c["azp"] = testClientID
			return c
		}, 403, ReasonApplicationNotAllowed},
		{"no ver reads azp", func() localidp.Claims { return without(e.claims(2), "ver") }, 200, ""},
		{"no ver ignores appid", func() localidp.Claims {
			c := without(e.claims(2), "ver", "azp")
			c["appid"] = testClientID
			return c
		}, 403, ReasonApplicationNotAllowed},
		{"unknown ver", func() localidp.Claims {
			c := e.claims(2)
			c["ver"] = "3.0"
			return c
		}, 401, ReasonApplicationClaimConflict},
		{"equal appid and azp", func() localidp.Claims {
			c := e.claims(2)
			c["appid"] = testClientID
			return c
		}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { e.expect(t, e.mint(tc.claims()), tc.status, tc.reason) })
	}
}

// TestGenericIssuerClaims (finding 2): for an issuer listed in
// Policy.Issuers, the application is the claim Policy.ApplicationClaim names
// and nothing else; identities match sub, not a custom oid; app-only means
// sub == the application and no scp.
func TestGenericIssuerClaims(t *testing.T) {
	t.Parallel()
	generic := func(p func(*Policy)) *testEnv {
		var issuer string
		e := newEnvHook(t, func(e *testEnv) { issuer = e.idp.IssuerV2() }, func(c *Config) {
			c.Policy.TenantID, c.Policy.AuthorityHost = "", ""
			c.Policy.Issuers = []string{issuer}
			p(&c.Policy)
		})
		e.waitReady()
		return e
	}
	azp := generic(func(p *Policy) { p.AllowedApplications = []string{testClientID} })
	cid := generic(func(p *Policy) {
		p.AllowedApplications = []string{testClientID}
		p.ApplicationClaim = "client_id"
	})
	ids := generic(func(p *Policy) { p.AllowedIdentities = []string{testObjectID} })
	only := generic(func(p *Policy) { p.AppOnly = true; p.ApplicationClaim = "client_id" })
	tests := []struct {
		name   string
		e      *testEnv
		claims func(c localidp.Claims)
		status int
		reason Reason
	}{
		{"azp: allowed", azp, nil, 200, ""},
		{"azp: rogue azp, allowed appid and client_id", azp, func(c localidp.Claims) {
			c["azp"], c["appid"], c["client_id"] = rogueApp, testClientID, testClientID
		}, 403, ReasonApplicationNotAllowed},
		{"azp: no azp, allowed appid (no fallback)", azp, func(c localidp.Claims) {
			delete(c, "azp")
			c["appid"] = testClientID
		}, 403, ReasonApplicationNotAllowed},
		{"client_id: allowed", cid, func(c localidp.Claims) { c["client_id"], c["azp"] = testClientID, rogueApp }, 200, ""},
		{"client_id: absent, allowed azp (no fallback)", cid, nil, 403, ReasonApplicationNotAllowed},
		{"identity: sub matches", ids, nil, 200, ""},
		{"identity: custom oid matches, sub does not", ids, func(c localidp.Claims) { c["sub"] = "someone" }, 403, ReasonIdentityNotAllowed},
		{"app-only: sub is the client", only, func(c localidp.Claims) { c["client_id"], c["sub"] = testClientID, testClientID }, 200, ""},
		{"app-only: idtyp=app is not a generic claim", only, func(c localidp.Claims) { c["client_id"] = testClientID }, 403, ReasonAppOnlyRequired},
		{"app-only: scp present", only, func(c localidp.Claims) {
			c["client_id"], c["sub"], c["scp"] = testClientID, testClientID, "read"
		}, 403, ReasonAppOnlyRequired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.e.claims(2)
			if tc.claims != nil {
				tc.claims(c)
			}
			tc.e.expect(t, tc.e.mint(c), tc.status, tc.reason)
		})
	}
	// The principal (and so the audit record and the Easy Auth -ID header) names
	// the identity the policy checked: a generic issuer's custom oid is only a
	// claim, never the caller's identity.
	t.Run("principal identity is sub, not a custom oid", func(t *testing.T) {
		c := ids.claims(2)
		c["oid"] = "victim-object-id"
		c["sub"] = testObjectID
		p, err := ids.m.Verify(t.Context(), ids.mint(c))
		if err != nil {
			t.Fatal(err)
		}
		if p.ObjectID != testObjectID {
			t.Errorf("Principal.ObjectID = %q, want the sub %q", p.ObjectID, testObjectID)
		}
	})
}

// TestEntraIdentityAndAppOnlyClaims: oid decides identities, idtyp (else
// oid == sub without scp) decides app-only, and tid must be the issuer's
// tenant (finding 5, the token side).
func TestEntraIdentityAndAppOnlyClaims(t *testing.T) {
	t.Parallel()
	ids := newEnv(t, func(c *Config) { c.Policy.AllowedIdentities = []string{testObjectID} })
	only := newEnv(t, func(c *Config) { c.Policy.AppOnly = true })
	tenants := newEnv(t, func(c *Config) { c.Policy.AllowedTenants = []string{localidp.DefaultTenantID} })
	tests := []struct {
		name   string
		e      *testEnv
		claims func(c localidp.Claims)
		status int
		reason Reason
	}{
		{"oid allowed, sub differs", ids, func(c localidp.Claims) { c["sub"] = "pairwise" }, 200, ""},
		{"sub allowed, oid differs", ids, func(c localidp.Claims) { c["oid"], c["sub"] = "other", testObjectID }, 403, ReasonIdentityNotAllowed},
		{"idtyp app", only, nil, 200, ""},
		{"idtyp user", only, func(c localidp.Claims) { c["idtyp"] = "user" }, 403, ReasonAppOnlyRequired},
		{"no idtyp, oid == sub", only, func(c localidp.Claims) { delete(c, "idtyp") }, 200, ""},
		{"no idtyp, oid == sub, but delegated scp", only, func(c localidp.Claims) { delete(c, "idtyp"); c["scp"] = "user_impersonation" }, 403, ReasonAppOnlyRequired},
		{"idtyp app with scp", only, func(c localidp.Claims) { c["scp"] = "user_impersonation" }, 403, ReasonAppOnlyRequired},
		{"tid of another tenant", only, func(c localidp.Claims) { c["tid"] = "00000000-0000-0000-0000-000000000001" }, 401, ReasonIssuerMismatch},
		{"tid missing", only, func(c localidp.Claims) { delete(c, "tid") }, 401, ReasonIssuerMismatch},
		{"tid in upper case", only, func(c localidp.Claims) { c["tid"] = strings.ToUpper(c["tid"].(string)) }, 200, ""},
		// adversarial review: AllowedTenants compared the token's tid case-sensitively
		{"tid in upper case, allowed tenant", tenants, func(c localidp.Claims) { c["tid"] = strings.ToUpper(c["tid"].(string)) }, 200, ""},
		{"tid of another tenant, allowed tenant", tenants, func(c localidp.Claims) { c["tid"] = "00000000-0000-0000-0000-000000000001" }, 401, ReasonIssuerMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []int{1, 2} {
				c := tc.e.claims(v)
				if tc.claims != nil {
					tc.claims(c)
				}
				tc.e.expect(t, tc.e.mint(c), tc.status, tc.reason)
			}
		})
	}
}

// TestBoundClaimsExactText (finding 6): numbers compare by their exact JSON
// text, and "*" stays within one path segment. On main the float64
// comparison and the slash-crossing "*" made every "want 403" row a 200
// (and "1.0 is 1.0" a 403).
func TestBoundClaimsExactText(t *testing.T) {
	t.Parallel()
	bound := func(name string, patterns ...string) *testEnv {
		return newEnv(t, func(c *Config) { c.Policy.BoundClaims = map[string][]string{name: patterns} })
	}
	n, v, f := bound("n", "9007199254740992"), bound("v", "2"), bound("f", "1.0")
	g := bound("xms_mirid", "/subscriptions/*/resourcegroups/rg-prod/*")
	deep := bound("xms_mirid", "/subscriptions/*/resourcegroups/rg-prod/**")
	tests := []struct {
		name    string
		e       *testEnv
		members string
		status  int
	}{
		{"2^53 is 2^53", n, `"n":9007199254740992`, 200},
		{"2^53+1 is not 2^53", n, `"n":9007199254740993`, 403},
		{"2 is 2", v, `"v":2`, 200},
		{"string \"2\" matches 2", v, `"v":"2"`, 200},
		{"2.0 is not 2", v, `"v":2.0`, 403},
		{"20e-1 is not 2", v, `"v":20e-1`, 403},
		{"list element by text", v, `"v":[1,2.00,2]`, 200},
		{"list without the exact text", v, `"v":[1,2.00,2e0]`, 403},
		{"1.0 is 1.0", f, `"f":1.0`, 200},
		{"1 is not 1.0", f, `"f":1`, 403},
		{"* within a segment", g, `"xms_mirid":"/subscriptions/s1/resourcegroups/rg-prod/app"`, 200},
		{"* does not cross / (rg-prod later in the ID)", g, `"xms_mirid":"/subscriptions/s1/resourcegroups/rg-dev/providers/x/resourcegroups/rg-prod/app"`, 403},
		{"trailing * stays in its segment", g, `"xms_mirid":"/subscriptions/s1/resourcegroups/rg-prod/app/sub"`, 403},
		{"** crosses /", deep, `"xms_mirid":"/subscriptions/s1/resourcegroups/rg-prod/providers/a/b"`, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := Reason("")
			if tc.status == 403 {
				want = ReasonClaimMismatch
			}
			tc.e.expect(t, tc.e.signed(withRaw(tc.e.claims(2), tc.members)), tc.status, want)
		})
	}
}

// TestTimeClaims (finding 7): a future iat, NumericDates out of range or not
// integers, and lifetimes above Policy.MaxTokenLifetime are 401, never 200
// or 500. On main: the future iat passed MaxTokenAge (200), exp in year 10000
// gave 500, and there was no lifetime limit.
func TestTimeClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Policy.MaxTokenAge = time.Hour })
	now := e.clock.Now().Unix()
	num := func(v int64) string { return strconv.FormatInt(v, 10) }
	with := func(exp, iat string) string {
		return withRaw(without(e.claims(2), "exp", "iat", "nbf"), `"exp":`+exp+`,"iat":`+iat)
	}
	tests := []struct {
		name    string
		payload string
		status  int
		reason  Reason
	}{
		{"control", with(num(now+3600), num(now)), 200, ""},
		{"iat 10 years ahead", with(num(now+3600), num(now+10*365*86400)), 401, ReasonTokenNotYetValid},
		{"iat beyond the skew", with(num(now+3600), num(now+6*60)), 401, ReasonTokenNotYetValid},
		{"iat within the skew", with(num(now+3600), num(now+4*60)), 200, ""},
		{"exp in year 10000", with("253402300800", num(now)), 401, ReasonMalformedToken},
		{"exp near int64 max", with("9223372036854775807", num(now)), 401, ReasonMalformedToken},
		{"exp 1e400", with("1e400", num(now)), 401, ReasonMalformedToken},
		{"exp with exponent", with("1.8e9", num(now)), 401, ReasonMalformedToken},
		{"exp a string", with(`"`+num(now+3600)+`"`, num(now)), 401, ReasonMalformedToken},
		{"exp null", with("null", num(now)), 401, ReasonMalformedToken},
		{"iat before 2000", with(num(now+3600), "0"), 401, ReasonMalformedToken},
		{"iat negative", with(num(now+3600), "-1"), 401, ReasonMalformedToken},
		{"fraction truncated", with(num(now+3600)+".75", num(now)+".5"), 200, ""},
		{"no iat", withRaw(without(e.claims(2), "iat"), ""), 401, ReasonMissingClaim},
		{"lifetime of Entra's longest tokens (28h)", with(num(now+28*3600-60), num(now-60)), 200, ""},
		{"lifetime 31h", with(num(now+31*3600-60), num(now-60)), 401, ReasonTokenLifetime},
		{"exp in year 2286", with("9999999999", num(now)), 401, ReasonTokenLifetime},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { e.expect(t, e.signed(tc.payload), tc.status, tc.reason) })
	}
	// MaxTokenAge was not needed for the future-iat rule.
	plain := newEnv(t)
	plain.expect(t, plain.signed(withRaw(without(plain.claims(2), "iat"), `"iat":`+num(now+86400))), 401, ReasonTokenNotYetValid)
}

// TestStrictClaimsJSON (finding 8): one strict decoder for every token,
// whatever the policy. Each payload is signed by the issuer; on main the
// invalid JSON in unread claims was accepted (200) under the plain policy
// and refused under the policy with bound claims, and duplicates were
// resolved last-wins.
func TestStrictClaimsJSON(t *testing.T) {
	t.Parallel()
	plain := newEnv(t)
	rich := newEnv(t, func(c *Config) {
		c.Policy.BoundClaims = map[string][]string{"ver": {"2.0"}}
		c.Policy.ClaimMappings = map[string]string{"k": "x"}
		c.Policy.EasyAuthHeaders = true
	})
	attacks := map[string]string{
		"array with empty element":   `"x":[1,,2]`,
		"object without colon":       `"x":{"a" "b"}`,
		"mismatched brackets":        `"x":[}`,
		"invalid escape":             `"x":"\q"`,
		"invalid UTF-8":              "\"x\":\"\xff\xfe\"",
		"invalid UTF-8 in a name":    "\"\xc3\":1",
		"lone surrogate":             `"x":"\ud800"`,
		"duplicate unread claim":     `"x":1,"x":2`,
		"duplicate aud":              `"aud":"api://other"`,
		"duplicate iss":              `"iss":"https://evil.example/"`,
		"duplicate azp":              `"azp":"` + rogueApp + `"`,
		"duplicate roles":            `"roles":["Admin"]`,
		"duplicate via escaped name": `"\u0061ud":"api://other"`,
		"leading zero":               `"x":01`,
		"bare word":                  `"x":True`,
		"trailing comma":             `"x":1,`,
	}
	for name, members := range attacks {
		t.Run(name, func(t *testing.T) {
			for _, e := range []*testEnv{plain, rich} {
				e.expect(t, e.signed(withRaw(e.claims(2), members)), 401, ReasonMalformedToken)
			}
		})
	}
	for name, payload := range map[string]string{
		"trailing data":   withRaw(plain.claims(2), "") + "{}",
		"top-level array": "[" + withRaw(plain.claims(2), "") + "]",
		"null":            "null",
	} {
		t.Run(name, func(t *testing.T) {
			for _, e := range []*testEnv{plain, rich} {
				e.expect(t, e.signed(payload), 401, ReasonMalformedToken)
			}
		})
	}
	t.Run("control", func(t *testing.T) {
		for _, e := range []*testEnv{plain, rich} {
			e.expect(t, e.signed(withRaw(e.claims(2), `"x":[1,{"a":"\u00e9"}]`)), 200, "")
		}
	})
}

// TestStrictHeaderJSON (finding 8, header side): the JOSE header is decoded
// by the same strict rules.
func TestStrictHeaderJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	kid, _ := e.idp.SigningKey()
	payload := withRaw(e.claims(2), "")
	for name, h := range map[string]string{
		"duplicate kid":        `{"alg":"RS256","kid":"other","kid":"` + kid + `"}`,
		"duplicate alg":        `{"alg":"none","alg":"RS256","kid":"` + kid + `"}`,
		"invalid JSON member":  `{"alg":"RS256","kid":"` + kid + `","x":[1,,2]}`,
		"invalid UTF-8 member": "{\"alg\":\"RS256\",\"kid\":\"" + kid + "\",\"x\":\"\xff\"}",
	} {
		t.Run(name, func(t *testing.T) { e.expect(t, e.signedRaw(h, payload), 401, ReasonMalformedToken) })
	}
}

// TestKIDRequiredInTenantMode (finding 10): a kid-less token is refused
// before any signature check — even one genuinely signed by the issuer's
// key, which main accepted after trying every published key.
func TestKIDRequiredInTenantMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.expect(t, e.signedRaw(`{"alg":"RS256","typ":"JWT"}`, withRaw(e.claims(2), "")), 401, ReasonUnknownKey)
	e.expect(t, e.signedRaw(`{"alg":"RS256","kid":""}`, withRaw(e.claims(2), "")), 401, ReasonUnknownKey)
	e.expect(t, e.signedRaw(`{"alg":"RS256","kid":null}`, withRaw(e.claims(2), "")), 401, ReasonUnknownKey)
}

// TestFrontEndHeadersNeverReachHandler (finding 10): X-MS-CLIENT-PRINCIPAL*
// and X-MS-TOKEN-* headers are stripped in every spelling, with or without
// a token, on excluded and protected paths. On main the underscore spellings
// and X-MS-TOKEN-AAD-* reached the handler.
func TestFrontEndHeadersNeverReachHandler(t *testing.T) {
	t.Parallel()
	names := []string{
		"X-MS-CLIENT-PRINCIPAL", "X_MS_CLIENT_PRINCIPAL", "x_ms_client_principal_id", "X-Ms-Client_Principal-Name",
		"X_MS_CLIENT_PRINCIPAL_IDP", "X-MS-CLIENT-PRINCIPALX", "X-MS-TOKEN-AAD-ACCESS-TOKEN", "X_MS_TOKEN_AAD_ID_TOKEN",
		"x-ms-token-aad-refresh-token", "X-MS-TOKEN-GOOGLE-ACCESS-TOKEN",
		"X.MS.CLIENT.PRINCIPAL", "X~MS~CLIENT~PRINCIPAL~ID", // adversarial review: CGI maps them to HTTP_X_MS_CLIENT_PRINCIPAL*
	}
	for _, easy := range []bool{false, true} {
		e := newEnv(t, func(c *Config) {
			c.Policy.ExcludedPaths = []string{"/healthz"}
			c.Policy.EasyAuthHeaders = easy
			c.Policy.UnauthenticatedAction = AllowAnonymous
		})
		var seen []string
		srv := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range r.Header {
				if strings.Contains(strings.Join(v, ","), "forged") {
					seen = append(seen, k)
				}
			}
		}))
		for _, path := range []string{"/healthz", "/api/x"} {
			for _, tok := range []string{"", e.mint(e.claims(2))} {
				seen = nil
				req := httptestRequest(path, tok)
				for _, n := range names {
					req.Header[n] = []string{"forged"}
				}
				srv.ServeHTTP(discardRecorder(), req)
				if len(seen) > 0 {
					t.Errorf("easyauth=%v %s token=%v: forged headers reached the handler: %v", easy, path, tok != "", seen)
				}
			}
		}
	}
}

// TestEasyAuthPrincipalOnlyAuthorizedClaims (finding 10): with Easy Auth
// headers on, a token carrying a claim twice is refused, so the principal
// header can only list claims the policy saw; an allowed token lists each
// of its claims once.
func TestEasyAuthPrincipalOnlyAuthorizedClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.Policy.EasyAuthHeaders = true
		c.Policy.AllowedIdentities = []string{testObjectID}
		c.Policy.RequiredRoles = []string{"Callee.Invoke"}
	})
	for _, dup := range []string{`"oid":"attacker"`, `"roles":["Admin"]`, `"tid":"other"`, `"sub":"admin"`} {
		e.expect(t, e.signed(withRaw(e.claims(1), dup)), 401, ReasonMalformedToken)
	}
	c := e.claims(1)
	var got http.Header
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	h.ServeHTTP(discardRecorder(), httptestRequest("/api/x", e.mint(c)))
	if got == nil {
		t.Fatal("handler not called")
	}
	checkEasyAuthPrincipal(t, got, c)
}

// TestClaimSettingsFromEnv: AUTHMW_APPLICATION_CLAIM and
// AUTHMW_MAX_TOKEN_LIFETIME are read, defaulted and bounded; errors name the
// variable and the accepted values.
func TestClaimSettingsFromEnv(t *testing.T) {
	t.Parallel()
	base := map[string]string{"AUTHMW_TENANT_ID": tTenant, "AUTHMW_AUDIENCES": "api://callee", "AUTHMW_REQUIRED_ROLES": "Exclusive.Invoke"}
	tests := []struct {
		name, key, value string
		check            func(Policy) bool
		wantErr          []string
	}{
		{"client_id", "AUTHMW_APPLICATION_CLAIM", "client_id", func(p Policy) bool { return p.ApplicationClaim == "client_id" }, nil},
		{"azp", "AUTHMW_APPLICATION_CLAIM", "azp", func(p Policy) bool { return p.ApplicationClaim == "azp" }, nil},
		{"appid refused", "AUTHMW_APPLICATION_CLAIM", "appid", nil, []string{"AUTHMW_APPLICATION_CLAIM", `"azp"`, `"client_id"`}},
		{"fallback list refused", "AUTHMW_APPLICATION_CLAIM", "azp,client_id", nil, []string{"AUTHMW_APPLICATION_CLAIM"}},
		{"lifetime", "AUTHMW_MAX_TOKEN_LIFETIME", "2h", func(p Policy) bool { return p.MaxTokenLifetime == 2*time.Hour }, nil},
		{"lifetime too short", "AUTHMW_MAX_TOKEN_LIFETIME", "1s", nil, []string{"AUTHMW_MAX_TOKEN_LIFETIME", "from 1m to 720h"}},
		{"lifetime too long", "AUTHMW_MAX_TOKEN_LIFETIME", "87600h", nil, []string{"AUTHMW_MAX_TOKEN_LIFETIME", "from 1m to 720h"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{tc.key: tc.value}
			for k, v := range base {
				env[k] = v
			}
			c, err := ConfigFromEnv(envFunc(env))
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("accepted")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil || !tc.check(c.Policy) {
				t.Fatalf("err %v policy %+v", err, c.Policy)
			}
		})
	}
	cp := mustCompile(t, basePolicy())
	if cp.Policy.ApplicationClaim != "azp" || cp.Policy.MaxTokenLifetime != DefaultMaxTokenLifetime || DefaultMaxTokenLifetime < 28*time.Hour {
		t.Errorf("defaults: %q %s", cp.Policy.ApplicationClaim, cp.Policy.MaxTokenLifetime)
	}
}

// FuzzDecodeClaims: the one claims decoder never panics; whatever it accepts
// is valid JSON (RFC 8259, valid UTF-8) whose top-level names are unique and
// that encoding/json also reads as an object; members() lists it without error.
func FuzzDecodeClaims(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"iss":"x","aud":["a"],"exp":1700000000,"iat":1700000000.5,"roles":["r"]}`,
		`{"x":[1,,2]}`, `{"a" "b"}`, `[}`, `{"x":"\q"}`, "{\"x\":\"\xff\"}", `{"x":1,"x":2}`,
		`{"exp":253402300800}`, `{"exp":1e400}`, `{"aud":null}`, `{"\u0061ud":"a","aud":"b"}`, `null`, ` {"scp":""} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c tokenClaims
		if decodeClaims(b, &c) != nil {
			return
		}
		var v1 map[string]json.RawMessage
		if err := json.Unmarshal(b, &v1); err != nil || v1 == nil {
			t.Fatalf("accepted %q that encoding/json does not read as an object: %v", b, err)
		}
		ms, err := members(b)
		if err != nil {
			t.Fatalf("members refused what decodeClaims accepted: %q", b)
		}
		seen := map[string]bool{}
		for _, m := range ms {
			if seen[m.name] {
				t.Fatalf("duplicate name %q accepted", m.name)
			}
			seen[m.name] = true
		}
		if len(seen) != len(v1) {
			t.Fatalf("members %d, encoding/json %d", len(seen), len(v1))
		}
		for _, d := range []numericDate{c.Expiry, c.NotBefore, c.IssuedAt} {
			if d != 0 && (d < minNumericDate || d >= maxNumericDate) {
				t.Fatalf("NumericDate %d out of range accepted", d)
			}
		}
	})
}

// TestEasyAuthHeadersCarryTheAuthorizedIdentity (adversarial review): the
// X-MS-CLIENT-PRINCIPAL-ID a handler or upstream reads is the identity
// AllowedIdentities checked — sub for a generic issuer, not its custom oid,
// which used to be sent (a token of "alice" rendered as the victim's oid) —
// and a claim that is no valid header value (control characters) is left
// out, never passed on to fail the upstream request.
func TestEasyAuthHeadersCarryTheAuthorizedIdentity(t *testing.T) {
	t.Parallel()
	var issuer string
	e := newEnvHook(t, func(e *testEnv) { issuer = e.idp.IssuerV2() }, func(c *Config) {
		c.Policy.TenantID, c.Policy.AuthorityHost = "", ""
		c.Policy.Issuers = []string{issuer}
		c.Policy.AllowedIdentities = []string{"alice"}
		c.Policy.EasyAuthHeaders = true
	})
	e.waitReady()
	serve := func(c localidp.Claims) http.Header {
		t.Helper()
		var got http.Header
		h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
		rec := discardRecorder()
		h.ServeHTTP(rec, httptestRequest("/api/x", e.mint(c)))
		if rec.Code != http.StatusOK || got == nil {
			t.Fatalf("status %d, handler called %v", rec.Code, got != nil)
		}
		return got
	}
	c := e.claims(2)
	c["sub"], c["oid"] = "alice", testObjectID
	if got := serve(c).Get("X-MS-CLIENT-PRINCIPAL-ID"); got != "alice" {
		t.Errorf("generic issuer: X-MS-CLIENT-PRINCIPAL-ID = %q, want the authorized sub %q", got, "alice")
	}
	c = e.claims(2)
	c["sub"], c["name"] = "alice", "Alice\r\nX-Injected: 1\x01"
	h := serve(c)
	if got := h.Get("X-MS-CLIENT-PRINCIPAL-NAME"); got != testClientID {
		t.Errorf("name with control characters: X-MS-CLIENT-PRINCIPAL-NAME = %q, want the application %q", got, testClientID)
	}
	for k, v := range h {
		for _, s := range v {
			if strings.ContainsAny(s, "\r\n\x01") {
				t.Errorf("header %s carries control characters", k)
			}
		}
	}
}

// TestIssuerTrustedTwiceKeepsEntraRules (adversarial review): the tenant's own
// v2 issuer also listed in Policy.Issuers got the Entra rules (tid, kid, oid)
// or the generic ones depending on which discovery ended last, so a token of
// another tenant's tid passed about one start in three. The generic discovery
// is replayed here after both ended, the order that let it through.
func TestIssuerTrustedTwiceKeepsEntraRules(t *testing.T) {
	t.Parallel()
	var issuer string
	e := newEnvHook(t, func(e *testEnv) { issuer = e.idp.IssuerV2() }, func(c *Config) {
		c.Policy.Issuers = []string{issuer}
	})
	e.waitReady()
	for _, s := range e.m.specs {
		if s.tenantID == "" {
			if err := e.m.discover(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := e.claims(2)
	c["tid"] = "00000000-0000-0000-0000-000000000001"
	e.expect(t, e.mint(c), 401, ReasonIssuerMismatch)
	kid, _ := e.idp.SigningKey()
	e.expect(t, e.signedRaw(`{"alg":"RS256"}`, withRaw(e.claims(2), "")), 401, ReasonUnknownKey)
	e.expect(t, e.signedRaw(`{"alg":"RS256","kid":"`+kid+`"}`, withRaw(e.claims(2), "")), 200, "")
}

// TestAlreadyRefusedForms is a regression test (adversarial review): header,
// encoding, audience and Authorization forms that were refused already, each
// signed with the issuer's real key so that only the rule under test refuses.
func TestAlreadyRefusedForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Policy.AllowedApplications = []string{testClientID} })
	kid, _ := e.idp.SigningKey()
	good := withRaw(e.claims(2), "")
	aud := func(v string) string { return withRaw(without(e.claims(2), "aud"), `"aud":`+v) }
	utf16 := func(s string) string {
		b := []byte{0xff, 0xfe}
		for _, r := range s {
			b = append(b, byte(r), 0)
		}
		return string(b)
	}
	tests := []struct {
		name   string
		tok    string
		status int
		reason Reason
	}{
		{"control", e.signed(good), 200, ""},
		{"kid with path characters", e.signedRaw(`{"alg":"RS256","kid":"../../`+kid+`"}`, good), 401, ReasonUnknownKey},
		{"kid of 9000 bytes", e.signedRaw(`{"alg":"RS256","kid":"`+strings.Repeat("k", 9000)+`"}`, good), 401, ReasonUnknownKey},
		{"kid empty (tenant mode)", e.signedRaw(`{"alg":"RS256","kid":""}`, good), 401, ReasonUnknownKey},
		{"kid null", e.signedRaw(`{"alg":"RS256","kid":null}`, good), 401, ReasonUnknownKey},
		{"kid a number", e.signedRaw(`{"alg":"RS256","kid":1}`, good), 401, ReasonMalformedToken},
		{"kid with NUL", e.signedRaw(`{"alg":"RS256","kid":"`+kid+`\u0000"}`, good), 401, ReasonUnknownKey},
		{"alg null", e.signedRaw(`{"alg":null,"kid":"`+kid+`"}`, good), 401, ReasonUnsupportedAlg},
		{"alg lower case", e.signedRaw(`{"alg":"rs256","kid":"`+kid+`"}`, good), 401, ReasonUnsupportedAlg},
		{"alg with a space", e.signedRaw(`{"alg":"RS256 ","kid":"`+kid+`"}`, good), 401, ReasonUnsupportedAlg},
		{"header a JSON array", e.signedRaw(`["RS256"]`, good), 401, ReasonMalformedToken},
		{"payload with a BOM", e.signed("\ufeff" + good), 401, ReasonMalformedToken},
		{"payload in UTF-16", e.signed(utf16(good)), 401, ReasonMalformedToken},
		{"payload null", e.signed("null"), 401, ReasonMalformedToken},
		{"payload an array", e.signed("[" + good + "]"), 401, ReasonMalformedToken},
		{"payload with trailing data", e.signed(good + "{}"), 401, ReasonMalformedToken},
		{"nbf a string", e.signed(strings.Replace(good, `"nbf":`, `"nbf":"1","x_nbf":`, 1)), 401, ReasonMalformedToken},
		{"aud as a list with the audience", e.signed(aud(`["other","` + testAudience + `"]`)), 200, ""},
		{"aud with a trailing slash", e.signed(aud(`"` + testAudience + `/"`)), 401, ReasonAudienceMismatch},
		{"aud in another case", e.signed(aud(`"API://CALLEE"`)), 401, ReasonAudienceMismatch},
		{"aud an empty list", e.signed(aud(`[]`)), 401, ReasonAudienceMismatch},
		{"aud empty", e.signed(aud(`""`)), 401, ReasonAudienceMismatch},
		{"aud a number", e.signed(aud(`1`)), 401, ReasonMalformedToken},
		{"aud a nested list", e.signed(aud(`[["` + testAudience + `"]]`)), 401, ReasonMalformedToken},
		{"azp a list", e.signed(withRaw(without(e.claims(2), "azp"), `"azp":["`+testClientID+`"]`)), 401, ReasonMalformedToken},
		{"azp in another case", e.signed(withRaw(without(e.claims(2), "azp"), `"AZP":"`+testClientID+`"`)), 403, ReasonApplicationNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { e.expect(t, tc.tok, tc.status, tc.reason) })
	}
	for _, h := range []string{"Bearer\t" + e.signed(good), "Bearer " + e.signed(good) + ",", "Bearer " + e.signed(good) + ", Bearer x", "Token " + e.signed(good)} {
		if r := e.do("/api/x", http.Header{"Authorization": {h}}); r.status != 401 {
			t.Errorf("Authorization form %.12q…: status %d, want 401", h, r.status)
		}
	}
}
