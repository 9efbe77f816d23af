package authmw

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/f2fauth/f2fauth/internal/localidp"
)

func TestTokens(t *testing.T) {
	e := newEnv(t)
	kid, _ := e.idp.SigningKey()
	attacker := getAttackerKey()
	now := e.clock.Now()

	with := func(v int, mod func(c localidp.Claims)) string {
		c := e.claims(v)
		mod(c)
		return e.mint(c)
	}
	valid1 := e.mint(e.claims(1))
	pubDER, _ := x509.MarshalPKIXPublicKey(&attacker.PublicKey)
	realPub := func() []byte {
		_, k := e.idp.SigningKey()
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	claimsMap := func(c localidp.Claims) map[string]any { return map[string]any(c) }
	attackerJWK := jose.JSONWebKey{Key: &attacker.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"}
	jwkJSON, _ := attackerJWK.MarshalJSON()
	var jwkMap map[string]any
	json.Unmarshal(jwkJSON, &jwkMap)

	// An attacker's JWKS server for jku/x5u: it must never be contacted.
	var attackerHits atomic.Int64
	attackerSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		w.Write([]byte(`{"keys":[` + string(jwkJSON) + `]}`))
	}))
	defer attackerSrv.Close()

	tampered := func() string {
		parts := strings.Split(valid1, ".")
		c := e.claims(1)
		c["roles"] = []string{"Admin"}
		b, _ := json.Marshal(c)
		parts[1] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(parts, ".")
	}()
	stripped := valid1[:strings.LastIndex(valid1, ".")+1]

	tests := []struct {
		name   string
		token  string
		status int
		reason Reason
	}{
		{"v1 token", valid1, 200, ""},
		{"v2 token", e.mint(e.claims(2)), 200, ""},
		{"aud array containing audience", with(2, func(c localidp.Claims) { c["aud"] = []string{"other", testAudience} }), 200, ""},
		{"aud array without audience", with(2, func(c localidp.Claims) { c["aud"] = []string{"other", "x"} }), 401, ReasonAudienceMismatch},
		{"wrong aud", with(1, func(c localidp.Claims) { c["aud"] = "api://other" }), 401, ReasonAudienceMismatch},
		{"no aud", with(1, func(c localidp.Claims) { delete(c, "aud") }), 401, ReasonAudienceMismatch},
		{"wrong iss", with(1, func(c localidp.Claims) { c["iss"] = "https://sts.windows.net/" + e.idp.TenantID() + "/" }), 401, ReasonIssuerMismatch},
		{"iss of v2 with trailing slash", with(2, func(c localidp.Claims) { c["iss"] = e.idp.IssuerV2() + "/" }), 401, ReasonIssuerMismatch},
		{"missing exp", with(1, func(c localidp.Claims) { delete(c, "exp") }), 401, ReasonMissingClaim},
		{"expired beyond skew", with(1, func(c localidp.Claims) { c["exp"] = now.Add(-6 * time.Minute).Unix() }), 401, ReasonTokenExpired},
		{"expired within skew", with(1, func(c localidp.Claims) { c["exp"] = now.Add(-4 * time.Minute).Unix() }), 200, ""},
		{"exp as float", with(1, func(c localidp.Claims) { c["exp"] = float64(now.Add(time.Hour).Unix()) + 0.5 }), 200, ""},
		{"exp as string", with(1, func(c localidp.Claims) { c["exp"] = fmt.Sprint(now.Add(time.Hour).Unix()) }), 401, ReasonMalformedToken},
		{"nbf beyond skew", with(1, func(c localidp.Claims) { c["nbf"] = now.Add(6 * time.Minute).Unix() }), 401, ReasonTokenNotYetValid},
		{"nbf within skew", with(1, func(c localidp.Claims) { c["nbf"] = now.Add(4 * time.Minute).Unix() }), 200, ""},
		{"alg none", forge(map[string]any{"alg": "none", "kid": kid}, claimsMap(e.claims(1)), nil), 401, ReasonUnsupportedAlg},
		{"HS256 with the public key", forge(map[string]any{"alg": "HS256", "kid": kid}, claimsMap(e.claims(1)), hs256(realPub)), 401, ReasonUnsupportedAlg},
		{"embedded jwk", forge(map[string]any{"alg": "RS256", "kid": kid, "jwk": jwkMap}, claimsMap(e.claims(1)), rs256(attacker)), 401, ReasonInvalidSignature},
		{"jku header", forge(map[string]any{"alg": "RS256", "kid": "attacker", "jku": attackerSrv.URL}, claimsMap(e.claims(1)), rs256(attacker)), 401, ReasonUnknownKey},
		{"x5u header", forge(map[string]any{"alg": "RS256", "kid": kid, "x5u": attackerSrv.URL}, claimsMap(e.claims(1)), rs256(attacker)), 401, ReasonInvalidSignature},
		{"stripped signature", stripped, 401, ReasonMalformedToken},
		{"tampered payload", tampered, 401, ReasonInvalidSignature},
		{"known kid, other key", forge(map[string]any{"alg": "RS256", "kid": kid}, claimsMap(e.claims(1)), rs256(attacker)), 401, ReasonInvalidSignature},
		{"no kid (Entra always sends one)", forge(map[string]any{"alg": "RS256"}, claimsMap(e.claims(1)), rs256(attacker)), 401, ReasonUnknownKey},
		{"not a JWT", "abc", 401, ReasonMalformedToken},
		{"JWS JSON serialization", `{"payload":"e30","signatures":[]}`, 401, ReasonMalformedToken},
		{"payload not JSON", forge(map[string]any{"alg": "RS256", "kid": kid}, nil, rs256(attacker)), 401, ReasonMalformedToken},
		{"oversized token", strings.Repeat("a", 20<<10), 401, ReasonMalformedToken},
		{"PS256 not configured", forge(map[string]any{"alg": "PS256", "kid": kid}, claimsMap(e.claims(1)), rs256(attacker)), 401, ReasonUnsupportedAlg},
	}
	_ = pubDER
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.remember(tc.token)
			r := e.get(tc.token)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if got := reasonOf(r); got != tc.reason {
				t.Errorf("reason = %q, want %q", got, tc.reason)
			}
			if tc.status == 401 {
				want := `Bearer realm="callee.test", error="invalid_token", authorization_uri="` + e.idp.AuthorityURL() + "/" + e.idp.TenantID() + `/oauth2/authorize", resource_id="` + testAudience + `"`
				if got := r.header.Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
			}
			for _, part := range strings.Split(tc.token, ".") {
				if len(part) >= 8 && strings.Contains(r.body, part) {
					t.Errorf("response body contains token material")
				}
			}
		})
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("jku/x5u server got %d requests, want 0", n)
	}
}

func TestAuthorizationHeader(t *testing.T) {
	e := newEnv(t)
	tok := e.mint(e.claims(1))
	tests := []struct {
		name   string
		header http.Header
		path   string
		status int
		reason Reason
		errStr bool // WWW-Authenticate carries error="invalid_token"
	}{
		{"no header", http.Header{}, "/api/x", 401, ReasonMissingToken, false},
		{"valid", http.Header{"Authorization": {"Bearer " + tok}}, "/api/x", 200, "", false},
		{"scheme case-insensitive", http.Header{"Authorization": {"bEARER " + tok}}, "/api/x", 200, "", false},
		{"Bearer alone", http.Header{"Authorization": {"Bearer"}}, "/api/x", 401, ReasonMalformedHeader, true},
		{"Bearer and space", http.Header{"Authorization": {"Bearer "}}, "/api/x", 401, ReasonMalformedHeader, true},
		{"two tokens", http.Header{"Authorization": {"Bearer a b"}}, "/api/x", 401, ReasonMalformedHeader, true},
		{"Basic", http.Header{"Authorization": {"Basic x"}}, "/api/x", 401, ReasonMalformedHeader, true},
		{"two headers", http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, "/api/x", 401, ReasonMalformedHeader, true},
		{"20 KiB token", http.Header{"Authorization": {"Bearer " + strings.Repeat("x", 20<<10)}}, "/api/x", 401, ReasonMalformedToken, true},
		{"query string token", http.Header{}, "/api/x?access_token=" + tok, 401, ReasonMissingToken, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.path, tc.header)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if got := reasonOf(r); got != tc.reason {
				t.Errorf("reason = %q, want %q", got, tc.reason)
			}
			if tc.status == 401 {
				www := r.header.Get("WWW-Authenticate")
				if !strings.HasPrefix(www, `Bearer realm="callee.test"`) {
					t.Errorf("WWW-Authenticate = %q", www)
				}
				if got := strings.Contains(www, `error="invalid_token"`); got != tc.errStr {
					t.Errorf("WWW-Authenticate = %q, want error=invalid_token: %v", www, tc.errStr)
				}
			}
		})
	}
}

func TestHugeHeaderIsNot5xx(t *testing.T) {
	e := newEnv(t)
	// Beyond the server's header limit: Go answers 431 itself.
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/x", nil)
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("x", 2<<20))
	res, err := e.srv.Client().Do(req)
	if err == nil {
		res.Body.Close()
		if res.StatusCode < 400 || res.StatusCode >= 500 {
			t.Fatalf("status %d, want 4xx", res.StatusCode)
		}
	}
}

func TestPolicyDenials(t *testing.T) {
	tests := []struct {
		name   string
		policy func(p *Policy)
		claims func(c localidp.Claims)
		status int
		reason Reason
	}{
		{"application allowed", func(p *Policy) { p.AllowedApplications = []string{testClientID} }, nil, 200, ""},
		{"application not allowed", func(p *Policy) { p.AllowedApplications = []string{"other"} }, nil, 403, ReasonApplicationNotAllowed},
		{"identity not allowed", func(p *Policy) { p.AllowedIdentities = []string{"other"} }, nil, 403, ReasonIdentityNotAllowed},
		{"group allows when identity does not", func(p *Policy) { p.AllowedIdentities = []string{"other"}; p.AllowedGroups = []string{"g1"} },
			func(c localidp.Claims) { c["groups"] = []string{"g1"} }, 200, ""},
		{"tenant not allowed", func(p *Policy) { p.AllowedTenants = []string{"other-tenant"} }, nil, 403, ReasonTenantNotAllowed},
		{"role missing", func(p *Policy) { p.RequiredRoles = []string{"Admin"} }, nil, 403, ReasonRoleMissing},
		{"role present", func(p *Policy) { p.RequiredRoles = []string{"Admin", "Callee.Invoke"} }, nil, 200, ""},
		{"app-only required, user token", func(p *Policy) { p.AppOnly = true }, func(c localidp.Claims) { delete(c, "idtyp"); c["sub"] = "someone-else" }, 403, ReasonAppOnlyRequired},
		{"app-only via oid == sub", func(p *Policy) { p.AppOnly = true }, func(c localidp.Claims) { delete(c, "idtyp") }, 200, ""},
		{"bound claim mismatch", func(p *Policy) { p.BoundClaims = map[string][]string{"xms_mirid": {"/subscriptions/*/good"}} },
			func(c localidp.Claims) { c["xms_mirid"] = "/subscriptions/1/bad" }, 403, ReasonClaimMismatch},
		{"bound claim glob match", func(p *Policy) { p.BoundClaims = map[string][]string{"xms_mirid": {"/subscriptions/*/good"}} },
			func(c localidp.Claims) { c["xms_mirid"] = "/subscriptions/1/good" }, 200, ""},
		{"max token age exceeded", func(p *Policy) { p.MaxTokenAge = time.Hour }, func(c localidp.Claims) {
			c["iat"] = c["iat"].(int64) - int64((2 * time.Hour).Seconds())
		}, 401, ReasonTokenTooOld},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { tc.policy(&c.Policy) })
			c := e.claims(1)
			if tc.claims != nil {
				tc.claims(c)
			}
			r := e.get(e.mint(c))
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if got := reasonOf(r); got != tc.reason {
				t.Errorf("reason = %q, want %q", got, tc.reason)
			}
			if tc.status == 403 {
				if got, want := r.header.Get("WWW-Authenticate"), `Bearer realm="callee.test", error="insufficient_scope"`; got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
			}
			if d := e.lastDecision(); d.Reason != tc.reason || (tc.status != 200) != (d.Outcome == OutcomeDenied) {
				t.Errorf("decision = %+v", d)
			}
		})
	}
}

func TestUnauthenticatedActionsAndExcludedPaths(t *testing.T) {
	tests := []struct {
		name   string
		action UnauthenticatedAction
		path   string
		token  string // "valid", "bad" or ""
		status int
		reason Reason
	}{
		{"Return401 no token", Return401, "/api/x", "", 401, ReasonMissingToken},
		{"Return403 no token", Return403, "/api/x", "", 403, ReasonAnonymousForbidden},
		{"AllowAnonymous no token", AllowAnonymous, "/api/x", "", 200, ""},
		{"AllowAnonymous bad token", AllowAnonymous, "/api/x", "bad", 401, ReasonMalformedToken},
		{"AllowAnonymous valid token", AllowAnonymous, "/api/x", "valid", 200, ""},
		{"excluded exact", Return401, "/healthz", "", 200, ""},
		{"excluded prefix", Return401, "/public/a/b", "bad", 200, ""},
		{"excluded prefix base is not other path", Return401, "/publicity", "", 401, ReasonMissingToken},
		{"excluded path traversal", Return401, "/public/../api/x", "", 401, ReasonMissingToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.Policy.UnauthenticatedAction = tc.action
				c.Policy.ExcludedPaths = []string{"/healthz", "/public/*"}
			})
			h := http.Header{}
			switch tc.token {
			case "valid":
				h.Set("Authorization", "Bearer "+e.mint(e.claims(1)))
			case "bad":
				h.Set("Authorization", "Bearer not.a.token")
			}
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL, nil)
			req.URL.Opaque = tc.path // keep dot segments as sent
			for k, v := range h {
				req.Header[k] = v
			}
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body struct {
				Reason Reason `json:"reason"`
			}
			json.NewDecoder(res.Body).Decode(&body)
			if res.StatusCode != tc.status || body.Reason != tc.reason {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, body.Reason, tc.status, tc.reason)
			}
			if tc.status == 403 && res.Header.Get("WWW-Authenticate") != `Bearer realm="callee.test"` {
				t.Errorf("WWW-Authenticate = %q", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestDisableWWWAuthenticate(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy.DisableWWWAuthenticate = true; c.Realm = "" })
	r := e.get("")
	if r.status != 401 || r.header.Get("WWW-Authenticate") != "" {
		t.Fatalf("got %d, WWW-Authenticate %q", r.status, r.header.Get("WWW-Authenticate"))
	}
}

func TestRealmDefaultsToHost(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Realm = "" })
	r := e.do("/x", http.Header{})
	host := strings.TrimPrefix(e.srv.URL, "http://")
	if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="`+host+`", authorization_uri=`) {
		t.Fatalf("WWW-Authenticate = %q", got)
	}
}
