package jwks

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/f2fauth/f2fauth/internal/testutil"
)

// FuzzVerifyCompact feeds arbitrary strings to the one verification path:
// it must never panic, always return one of the sentinel errors, and accept
// nothing but a genuinely signed header and payload, whose header is a strict
// JSON object (no duplicate names, valid UTF-8).
func FuzzVerifyCompact(f *testing.F) {
	ks, signed := fuzzSetup(f)
	sentinels := []error{ErrMalformed, ErrUnsupportedAlg, ErrNotReady, ErrUnknownKey, ErrInvalidSignature}
	f.Fuzz(func(t *testing.T, in string) {
		v, err := ks.verifyCompact(context.Background(), in)
		checkFuzzResult(t, in, v.Payload, err, signed, sentinels)
	})
}

func checkFuzzResult(t *testing.T, in string, payload []byte, err error, signed map[string]bool, sentinels []error) {
	t.Helper()
	if err != nil {
		if payload != nil {
			t.Fatal("payload returned with an error")
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error wraps no sentinel: %v", err)
	}
	i := strings.LastIndexByte(in, '.')
	if i < 0 || !signed[in[:i]] {
		t.Fatalf("accepted a token whose header and payload were never signed: %q", in)
	}
}

// fuzzSetup starts a loaded key set and seeds the corpus; it returns the
// signing inputs that a published key really signed.
func fuzzSetup(f *testing.F) (*KeySet, map[string]bool) {
	keys := keysOnce()
	srv := newJWKSServer(f, jwksJSON(f, pubJWK(f, keys.k1, "k1", nil), pubJWK(f, keys.ec256, "e1", nil)))
	clock := newFakeClock() // never advanced: at most one unknown-kid refetch
	ks := newTestKeySet(f, srv, Options{Now: clock.Now, Algorithms: []string{"RS256", "ES256"}, UnknownKIDInterval: time.Hour})

	valid := token(f, keys.k1, "k1")
	validNoKID := craft(f, map[string]any{"alg": "RS256"}, `{"sub":"x"}`, rs256(keys.k1))
	// Signing inputs that were really signed by a published key.
	validES := signJOSE(f, jose.ES256, keys.ec256, "e1", `{"sub":"ec"}`)
	signed := map[string]bool{}
	for _, tok := range []string{valid, validNoKID, validES} {
		signed[tok[:strings.LastIndexByte(tok, '.')]] = true
	}
	parts := strings.Split(valid, ".")

	f.Add(valid)
	f.Add(validNoKID)
	f.Add(validES)
	f.Add("")
	f.Add(".")
	f.Add("..")
	f.Add("a.b.c")
	f.Add("a.b.c.d.e")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".e30." + parts[2])
	f.Add(craft(f, map[string]any{"alg": "none", "kid": "k1"}, `{}`, nil))
	f.Add(craft(f, map[string]any{"alg": "HS256", "kid": "k1"}, `{}`, hs256([]byte("k"))))
	f.Add(craft(f, map[string]any{"alg": "ES256", "kid": "k1"}, `{}`, nil))
	f.Add(craft(f, map[string]any{"alg": "RS256", "kid": "k1", "crit": []string{"b64"}, "b64": false}, `{}`, nil))
	f.Add(`{"payload":"e30","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`)
	for _, h := range []string{`{"alg":"RS256","kid":"k1","kid":"k1"}`, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"x\":\"\xff\"}", `{"alg":"RS256","kid":"k1","x":[1,,2]}`, `null`} {
		f.Add(testutil.CompactRaw([]byte(h), []byte(`{"sub":"test"}`), rs256(keys.k1)))
	}
	f.Add(strings.Repeat("A", 5000) + "." + parts[1] + "." + parts[2])

	return ks, signed
}

// FuzzParseKeySet feeds arbitrary JWKS documents to the parser: it never
// panics, every key it keeps is usable and has a KeyID, and the KeyIDs are a
// function of the document (the same document gives the same ids).
func FuzzParseKeySet(f *testing.F) {
	keys := keysOnce()
	f.Add([]byte(`{"keys":[` + string(pubJWK(f, keys.k1, "k1", nil)) + `,` + string(pubJWK(f, keys.k2, "k1", map[string]any{"alg": "RS256"})) + `]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"RSA","n":"!!","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":null}`))
	ks := &KeySet{algs: []allowedAlg{{"RS256", knownAlgs["RS256"]}, {"ES256", knownAlgs["ES256"]}, {"EdDSA", knownAlgs["EdDSA"]}},
		log: slog.New(slog.DiscardHandler), url: "fuzz"}
	f.Fuzz(func(t *testing.T, doc []byte) {
		m1, err1 := ks.parse(context.Background(), doc)
		m2, err2 := ks.parse(context.Background(), doc)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("parse is not deterministic: %v vs %v", err1, err2)
		}
		if err1 != nil {
			if !errors.Is(err1, ErrPermanent) {
				t.Fatalf("parse error %v is not ErrPermanent", err1)
			}
			return
		}
		if len(m1.all) == 0 || len(m1.all) != len(m2.all) {
			t.Fatalf("%d and %d keys", len(m1.all), len(m2.all))
		}
		for i, k := range m1.all {
			if k.id != m2.all[i].id || k.id.digest == ([32]byte{}) || k.kind == 0 || k.pub == nil {
				t.Fatalf("key %d: %+v", i, k)
			}
		}
	})
}
