package authmw

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// fuzzSeeds are the seed corpus: valid-looking, malformed and forged values.
func fuzzSeeds(e *testEnv) []string {
	kid, _ := e.idp.SigningKey()
	valid := e.mint(e.claims(1))
	return []string{
		"", "Bearer", "Bearer ", "bearer x", "Bearer a b", "Basic dXNlcjpwYXNz",
		"Bearer a.b.c", "Bearer ..", "Bearer " + valid[:len(valid)-2],
		"Bearer eyJhbGciOiJub25lIn0.eyJleHAiOjF9.",
		"Bearer " + forge(map[string]any{"alg": "RS256", "kid": kid}, map[string]any(e.claims(2)), rs256(getAttackerKey())),
		"Bearer " + forge(map[string]any{"alg": "HS256", "kid": kid}, map[string]any(e.claims(2)), hs256([]byte("k"))),
		"Bearer {\"payload\":\"e30\",\"signatures\":[{\"protected\":\"e30\",\"signature\":\"\"}]}",
		// Signed by the issuer's real key, refused by the strict decoder or the claim rules.
		"Bearer " + e.signed(withRaw(e.claims(2), `"x":[1,,2]`)),
		"Bearer " + e.signed(withRaw(e.claims(2), `"aud":"api://other"`)),
		"Bearer " + e.signed(withRaw(e.claims(2), "\"x\":\"\xff\"")),
		"Bearer " + e.signed(withRaw(without(e.claims(2), "exp"), `"exp":253402300800`)),
		"Bearer " + e.signed(withRaw(e.claims(2), `"appid":"`+rogueApp+`"`)),
		"Bearer " + e.signedRaw(`{"alg":"RS256"}`, withRaw(e.claims(2), "")),
		"Bearer " + e.signedRaw(`{"alg":"RS256","kid":"x","kid":"`+kid+`"}`, withRaw(e.claims(2), "")),
	}
}

// FuzzAuthorizationHeader: any Authorization header value never panics, never
// 5xx, and never reaches the protected handler.
func FuzzAuthorizationHeader(f *testing.F) {
	e := newEnv(f, func(c *Config) { c.Logger = nil; c.OnDecision = nil })
	for _, s := range fuzzSeeds(e) {
		f.Add(s)
	}
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	f.Fuzz(func(t *testing.T, v string) {
		req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
		req.Header["Authorization"] = []string{v}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("Authorization %q: status %d", v, w.Code)
		}
	})
}

// FuzzVerify: any token never panics and never yields a Principal.
func FuzzVerify(f *testing.F) {
	e := newEnv(f, func(c *Config) { c.Logger = nil; c.OnDecision = nil })
	for _, s := range fuzzSeeds(e) {
		if len(s) > 7 {
			f.Add(s[7:])
		}
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := e.m.Verify(context.Background(), raw)
		if p != nil || err == nil {
			t.Fatalf("fuzzed token accepted")
		}
		if _, ok := err.(*Error); !ok {
			t.Fatalf("error %T is not *Error", err)
		}
	})
}
