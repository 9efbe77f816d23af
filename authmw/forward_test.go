package authmw

import (
	"net/http"
	"testing"
)

func TestStripIdentityHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	spoofed := []string{
		"X-Ms-Client-Principal", "X-Ms-Client-Principal-Id", "X-Ms-Client-Principal-Name", "X-Ms-Client-Principal-Idp",
		"x-ms-client-principal", "X_MS_CLIENT_PRINCIPAL", "X_ms_client_principal_id", "x-ms_client-principal-name",
		"X-MS-CLIENT-PRINCIPAL-IDP", "X-Ms-Token-Aad-Access-Token", "X_MS_TOKEN_AAD_ID_TOKEN", "x-ms-token-anything",
		"X-Ms-Client-Principal ", // not canonicalisable: kept verbatim by Go's server
		// adversarial review: gateways that map every non-alphanumeric byte to '_' (CGI)
		"X.MS.CLIENT.PRINCIPAL", "X~Ms~Client~Principal~Id", "x+ms+token+aad+access+token", "X-MS-CLIENT.PRINCIPAL-NAME",
	}
	for _, k := range spoofed {
		h[k] = []string{"spoofed"}
	}
	kept := []string{"X-Ms-Client", "X-Ms-Tokens", "X-Ms-Request-Id", "Authorization", "X-Msclient-Principal", "Xx-Ms-Client-Principal"}
	for _, k := range kept {
		h[k] = []string{"kept"}
	}
	StripIdentityHeaders(h)
	for _, k := range spoofed {
		if _, ok := h[k]; ok {
			t.Errorf("%q survived", k)
		}
	}
	for _, k := range kept {
		if _, ok := h[k]; !ok {
			t.Errorf("%q was removed", k)
		}
	}
}

func TestSetEasyAuthHeadersWithoutValues(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	var nilP *Principal
	if nilP.SetEasyAuthHeaders(h) || (&Principal{}).SetEasyAuthHeaders(h) || len(h) != 0 {
		t.Fatalf("set headers without Easy Auth values: %v", h)
	}
}

func FuzzIsIdentityHeader(f *testing.F) {
	for _, s := range []string{"X-Ms-Client-Principal", "x_ms_token_", "X-Ms", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		h := http.Header{name: {"v"}}
		StripIdentityHeaders(h)
		if _, ok := h[name]; ok == isIdentityHeader(name) {
			t.Fatalf("StripIdentityHeaders and isIdentityHeader disagree on %q", name)
		}
	})
}

// A claim value that is no valid header value (control characters) never makes the
// headers unsendable: -NAME then names the application, -ID is left out; every
// value that is valid passes unchanged (adversarial review).
func TestEasyAuthHeaderValuesAreSendable(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy.EasyAuthHeaders = true })
	for _, tc := range []struct {
		name string
		keep bool
	}{
		{"caller", true}, {"tab\tand ünïcode", true}, {"a\x01b", false}, {"a\r\nX-Injected: 1", false}, {"a\x00", false}, {"a\x7f", false},
	} {
		c := e.claims(1)
		c["name"] = tc.name
		var got http.Header
		h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
		req, _ := http.NewRequest(http.MethodGet, "/api/x", nil)
		req.Header.Set("Authorization", "Bearer "+e.mint(c))
		h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
		if got == nil {
			t.Fatalf("%q: handler not called", tc.name)
		}
		// A name that is no header value gives way to the application, as an
		// absent name does in Easy Auth; it is never sent altered.
		want := tc.name
		if !tc.keep {
			want = testClientID
		}
		if v := got.Values("X-Ms-Client-Principal-Name"); len(v) != 1 || v[0] != want {
			t.Errorf("%q: X-Ms-Client-Principal-Name = %q, want %q", tc.name, v, want)
		}
		if got.Get("X-Ms-Client-Principal") == "" || got.Get("X-Ms-Client-Principal-Id") == "" {
			t.Errorf("%q: principal headers missing", tc.name)
		}
	}
}

// With Policy.UserClaim (a Vault role's user_claim), X-MS-CLIENT-PRINCIPAL-NAME
// names the principal by that claim, as Principal.Name does, not by the token's
// free-form name claim.
func TestEasyAuthNameFollowsUserClaim(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Policy.EasyAuthHeaders = true
		c.Policy.UserClaim = "oid"
	})
	c := e.claims(1)
	c["name"] = "someone-else"
	var got http.Header
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	req, _ := http.NewRequest(http.MethodGet, "/api/x", nil)
	req.Header.Set("Authorization", "Bearer "+e.mint(c))
	h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
	if got == nil {
		t.Fatal("handler not called")
	}
	if v := got.Get("X-Ms-Client-Principal-Name"); v != c["oid"] {
		t.Errorf("X-Ms-Client-Principal-Name = %q, want the user claim %q", v, c["oid"])
	}
}
