package jwks

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/netrule"
	"github.com/f2fauth/f2fauth/internal/retry"
	"github.com/f2fauth/f2fauth/internal/testutil"

	jose "github.com/go-jose/go-jose/v4"
)

func TestNewValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		want []string // substrings that must all appear in the error
	}{
		{"missing URL", Options{}, []string{"Options.URL", "required"}},
		{"file scheme", Options{URL: "file:///etc/passwd"}, []string{"Options.URL", "use https"}},
		{"plain http off loopback", Options{URL: "http://idp.example/keys"}, []string{"Options.URL", `"idp.example"`}},
		{"no host", Options{URL: "https:///keys"}, []string{"Options.URL", "host"}},
		{"alg none", Options{URL: "https://idp.example/keys", Algorithms: []string{"RS256", "none"}}, []string{"Options.Algorithms", `"none"`}},
		{"alg HS256", Options{URL: "https://idp.example/keys", Algorithms: []string{"HS256"}}, []string{"Options.Algorithms", `"HS256"`}},
		{"alg unknown", Options{URL: "https://idp.example/keys", Algorithms: []string{"rs256"}}, []string{"Options.Algorithms", `"rs256"`}},
		{"negative interval", Options{URL: "https://idp.example/keys", UnknownKIDInterval: -time.Second}, []string{"Options.UnknownKIDInterval"}},
		{"negative refresh", Options{URL: "https://idp.example/keys", RefreshInterval: -1}, []string{"Options.RefreshInterval"}},
		{"retry min > max", Options{URL: "https://idp.example/keys", RetryMin: time.Minute, RetryMax: time.Second}, []string{"Options.RetryMax"}},
		{"all problems together", Options{URL: "ftp://x", Algorithms: []string{"HS512"}, RetryMin: -1},
			[]string{"Options.URL", "Options.Algorithms", `"HS512"`, "Options.RetryMin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ks, err := New(context.Background(), tt.opts)
			if err == nil {
				ks.Close()
				t.Fatal("New succeeded, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestNewDefaultsAndNoBlocking(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, nil)
	block := make(chan struct{})
	srv.block.Store(&block) // the JWKS endpoint hangs
	defer close(block)
	ks, err := New(context.Background(), Options{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	if ks.unknownEvery != DefaultUnknownKIDInterval || ks.refreshEvery != DefaultRefreshInterval ||
		ks.retryMin != DefaultRetryMin || ks.retryMax != DefaultRetryMax ||
		ks.client.Timeout != DefaultHTTPTimeout || len(ks.algs) != 1 || ks.algs[0].name != "RS256" {
		t.Errorf("defaults not applied: %+v", ks)
	}
	// New returned although the endpoint hangs; nothing verifies meanwhile.
	if ks.Ready() {
		t.Fatal("Ready before any key was loaded")
	}
	_, err = ks.VerifySignature(context.Background(), token(t, keysOnce().k1, "k1"))
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want ErrNotReady", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ks.WaitReady(ctx); !errors.Is(err, ErrNotReady) || !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitReady = %v, want ErrNotReady wrapping context.Canceled", err)
	}
}

// paths are the three ways to verify a token; every table runs through all.
var paths = []struct {
	name   string
	verify func(ks *KeySet, tok string) ([]byte, error)
}{
	{"VerifySignature", func(ks *KeySet, tok string) ([]byte, error) {
		return ks.VerifySignature(context.Background(), tok)
	}},
	{"ParseCompact+Verify", func(ks *KeySet, tok string) ([]byte, error) {
		v, err := ks.verifyCompact(context.Background(), tok)
		return v.Payload, err
	}},
}

// TestVerifyAttacks is the attack table: every token but the valid ones must
// be rejected with the expected sentinel.
func TestVerifyAttacks(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	srv := newJWKSServer(t, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil)))
	jku, jkuHits := counterServer(t)
	clock := newFakeClock()
	ks := newTestKeySet(t, srv, Options{Now: clock.Now, UnknownKIDInterval: time.Hour})

	pubDER, err := x509.MarshalPKIXPublicKey(&keys.k1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	attackerJWK := pubJWK(t, keys.attacker, "evil", nil)
	valid := token(t, keys.k1, "k1")
	parts := strings.Split(valid, ".")
	forgedPayload := b64.EncodeToString([]byte(`{"sub":"admin"}`))

	tests := []struct {
		name    string
		tok     string
		wantErr error // nil = accepted
	}{
		{"valid RS256", valid, nil},
		{"valid without typ", craft(t, map[string]any{"alg": "RS256", "kid": "k1"}, `{}`, rs256(keys.k1)), nil},
		{"no kid, published key: tried (documented choice)", craft(t, map[string]any{"alg": "RS256"}, `{}`, rs256(keys.k1)), nil},
		{"no kid, attacker key", craft(t, map[string]any{"alg": "RS256"}, `{}`, rs256(keys.attacker)), ErrInvalidSignature},
		{"alg none", craft(t, map[string]any{"alg": "none", "kid": "k1"}, `{}`, nil), ErrUnsupportedAlg},
		{"alg None", craft(t, map[string]any{"alg": "None", "kid": "k1"}, `{}`, nil), ErrUnsupportedAlg},
		{"HS256 keyed with public key PEM", craft(t, map[string]any{"alg": "HS256", "kid": "k1"}, `{}`, hs256(pubPEM)), ErrUnsupportedAlg},
		{"HS256 keyed with public key DER", craft(t, map[string]any{"alg": "HS256", "kid": "k1"}, `{}`, hs256(pubDER)), ErrUnsupportedAlg},
		{"HS256 keyed with modulus", craft(t, map[string]any{"alg": "HS256", "kid": "k1"}, `{}`, hs256(keys.k1.N.Bytes())), ErrUnsupportedAlg},
		{"RS512 not allowed", signJOSE(t, jose.RS512, keys.k1, "k1", `{}`), ErrUnsupportedAlg},
		{"PS256 not allowed", signJOSE(t, jose.PS256, keys.k1, "k1", `{}`), ErrUnsupportedAlg},
		{"embedded jwk, unpublished kid", craft(t, map[string]any{"alg": "RS256", "kid": "evil", "jwk": attackerJWK}, `{}`, rs256(keys.attacker)), ErrUnknownKey},
		{"embedded jwk, published kid", craft(t, map[string]any{"alg": "RS256", "kid": "k1", "jwk": attackerJWK}, `{}`, rs256(keys.attacker)), ErrInvalidSignature},
		{"embedded jwk, no kid", craft(t, map[string]any{"alg": "RS256", "jwk": attackerJWK}, `{}`, rs256(keys.attacker)), ErrInvalidSignature},
		{"jku header", craft(t, map[string]any{"alg": "RS256", "kid": "evil2", "jku": jku.URL + "/jwks"}, `{}`, rs256(keys.attacker)), ErrUnknownKey},
		{"jku header, published kid", craft(t, map[string]any{"alg": "RS256", "kid": "k1", "jku": jku.URL + "/jwks"}, `{}`, rs256(keys.attacker)), ErrInvalidSignature},
		{"x5u header", craft(t, map[string]any{"alg": "RS256", "kid": "evil3", "x5u": jku.URL + "/cert.pem"}, `{}`, rs256(keys.attacker)), ErrUnknownKey},
		{"stripped signature", parts[0] + "." + parts[1] + ".", ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], ErrMalformed},
		{"tampered payload", parts[0] + "." + forgedPayload + "." + parts[2], ErrInvalidSignature},
		{"tampered header", b64.EncodeToString([]byte(`{"alg":"RS256","kid":"k1","x":1}`)) + "." + parts[1] + "." + parts[2], ErrInvalidSignature},
		{"signature of other token", parts[0] + "." + parts[1] + "." + strings.Split(token(t, keys.k1, "k1x"), ".")[2], ErrInvalidSignature},
		{"known kid signed by another key", token(t, keys.attacker, "k1"), ErrInvalidSignature},
		{"empty", "", ErrMalformed},
		{"garbage", "not a token", ErrMalformed},
		{"bad base64 header", "!!!." + parts[1] + "." + parts[2], ErrMalformed},
		{"JSON serialization refused", `{"payload":"e30","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, ErrMalformed},
		{"crit header unknown", craft(t, map[string]any{"alg": "RS256", "kid": "k1", "crit": []string{"exp"}, "exp": 1}, `{}`, rs256(keys.k1)), ErrMalformed},
		{"crit b64 false", craft(t, map[string]any{"alg": "RS256", "kid": "k1", "crit": []string{"b64"}, "b64": false}, `{}`, rs256(keys.k1)), ErrMalformed},
		{"kid not a string", craft(t, map[string]any{"alg": "RS256", "kid": 1}, `{}`, rs256(keys.k1)), ErrMalformed},
		{"header not an object", b64.EncodeToString([]byte(`["RS256"]`)) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"four parts", valid + ".x", ErrMalformed},
		{"too long", parts[0] + "." + strings.Repeat("A", MaxTokenBytes) + "." + parts[2], ErrMalformed},
	}
	for _, tt := range tests {
		for _, p := range paths {
			t.Run(tt.name+"/"+p.name, func(t *testing.T) {
				payload, err := p.verify(ks, tt.tok)
				if tt.wantErr == nil {
					if err != nil {
						t.Fatalf("rejected: %v", err)
					}
					if len(payload) == 0 {
						t.Fatal("empty payload")
					}
					return
				}
				if err == nil {
					t.Fatalf("accepted, payload %q", payload)
				}
				if payload != nil {
					t.Errorf("payload returned with error")
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			})
		}
	}
	if n := jkuHits.Load(); n != 0 {
		t.Errorf("jku/x5u server got %d requests, want 0", n)
	}
}

// TestVerifyRejectsUnprotectedHeader checks the fast path on a JWS whose kid
// is in an unprotected header (only possible with JSON serialization).
func TestVerifyRejectsUnprotectedHeader(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	srv := newJWKSServer(t, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil)))
	ks := newTestKeySet(t, srv, Options{})
	parts := strings.Split(craft(t, map[string]any{"alg": "RS256"}, `{}`, rs256(keys.k1)), ".")
	raw := fmt.Sprintf(`{"payload":%q,"protected":%q,"header":{"kid":"k1"},"signature":%q}`, parts[1], parts[0], parts[2])
	if _, err := ks.verifyCompact(context.Background(), raw); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	// The same token in compact form verifies (control).
	if v, err := ks.verifyCompact(context.Background(), strings.Join(parts, ".")); err != nil || v.KID != "k1" {
		t.Fatalf("control: kid %q err %v", v.KID, err)
	}
}

// TestKeyTypeAndAlgMatching covers key family, curve, JWK alg and use.
func TestKeyTypeAndAlgMatching(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	srv := newJWKSServer(t, jwksJSON(t,
		pubJWK(t, keys.k1, "rsa", nil), // no alg member, like Entra
		pubJWK(t, keys.ec256, "ec256", nil),
		pubJWK(t, keys.ec384, "ec384", nil),
		pubJWK(t, keys.k2, "rs256only", map[string]any{"alg": "RS256"}),
		pubJWK(t, keys.attacker, "enc", map[string]any{"use": "enc"}),
		pubJWK(t, keys.ed, "ed", nil),
	))
	clock := newFakeClock()
	ks := newTestKeySet(t, srv, Options{Algorithms: []string{"RS256", "PS256", "ES256", "ES384", "EdDSA"}, Now: clock.Now, UnknownKIDInterval: time.Hour})

	tests := []struct {
		name    string
		tok     string
		wantErr error
	}{
		{"RS256 with RSA key", signJOSE(t, jose.RS256, keys.k1, "rsa", `{}`), nil},
		{"PS256 with RSA key", signJOSE(t, jose.PS256, keys.k1, "rsa", `{}`), nil},
		{"ES256 with P-256 key", signJOSE(t, jose.ES256, keys.ec256, "ec256", `{}`), nil},
		{"RS256 with JWK alg RS256", signJOSE(t, jose.RS256, keys.k2, "rs256only", `{}`), nil},
		{"PS256 with JWK alg RS256", signJOSE(t, jose.PS256, keys.k2, "rs256only", `{}`), ErrInvalidSignature},
		{"ES256 token naming an RSA kid", signJOSE(t, jose.ES256, keys.ec256, "rsa", `{}`), ErrInvalidSignature},
		{"RS256 token naming an EC kid", signJOSE(t, jose.RS256, keys.k1, "ec256", `{}`), ErrInvalidSignature},
		{"ES256 token naming a P-384 kid", signJOSE(t, jose.ES256, keys.ec256, "ec384", `{}`), ErrInvalidSignature},
		{"key with use enc is not published", signJOSE(t, jose.RS256, keys.attacker, "enc", `{}`), ErrUnknownKey},
		{"ES384 with P-384 key", signJOSE(t, jose.ES384, keys.ec384, "ec384", `{}`), nil},
		{"ES384 token naming a P-256 kid", signJOSE(t, jose.ES384, keys.ec384, "ec256", `{}`), ErrInvalidSignature},
		{"ES512 not allowed", craft(t, map[string]any{"alg": "ES512", "kid": "ec384"}, `{}`, nil), ErrUnsupportedAlg},
		{"no kid ES256", signJOSE(t, jose.ES256, keys.ec256, "", `{}`), nil},
		{"EdDSA with Ed25519 key", signJOSE(t, jose.EdDSA, keys.ed, "ed", `{}`), nil},
		{"EdDSA token naming an RSA kid", signJOSE(t, jose.EdDSA, keys.ed, "rsa", `{}`), ErrInvalidSignature},
		{"RS256 token naming the Ed25519 kid", signJOSE(t, jose.RS256, keys.k1, "ed", `{}`), ErrInvalidSignature},
		{"ES256 signature of wrong length", craft(t, map[string]any{"alg": "ES256", "kid": "ec256"}, `{}`, func([]byte) []byte { return make([]byte, 63) }), ErrInvalidSignature},
	}
	for _, tt := range tests {
		for _, p := range paths {
			t.Run(tt.name+"/"+p.name, func(t *testing.T) {
				_, err := p.verify(ks, tt.tok)
				if tt.wantErr == nil && err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			})
		}
	}
	if slices.Contains(ks.KIDs(), "enc") {
		t.Error(`Has("enc") = true for a use=enc key`)
	}
	if got := ks.KIDs(); !slices.Equal(got, []string{"ec256", "ec384", "ed", "rs256only", "rsa"}) {
		t.Errorf("KIDs = %v", got)
	}
}

// TestUnknownKIDStorm: 200 concurrent tokens with random kids cause at most
// one extra fetch per interval.
func TestUnknownKIDStorm(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	srv := newJWKSServer(t, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil)))
	clock := newFakeClock()
	ks := newTestKeySet(t, srv, Options{Now: clock.Now})
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("hits after load = %d, want 1", got)
	}
	if srv.noCache.Load() != 0 {
		t.Error("initial load sent Cache-Control: no-cache")
	}

	storm := func() {
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := range 200 {
			tok := token(t, keys.attacker, fmt.Sprintf("forged-%d-%d", clock.ns.Load(), i))
			wg.Go(func() {
				_, err := ks.VerifySignature(context.Background(), tok)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("forged kid: err = %v, want ErrUnknownKey", err)
			}
		}
	}

	storm()
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits after first storm = %d, want 2 (one refetch)", got)
	}
	if got := srv.noCache.Load(); got != 1 {
		t.Errorf("no-cache refetches = %d, want 1", got)
	}
	storm()
	clock.Advance(DefaultUnknownKIDInterval - time.Second)
	storm()
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits within interval = %d, want 2", got)
	}
	clock.Advance(2 * time.Second) // past the interval
	storm()
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("hits after interval = %d, want 3", got)
	}
	if got := ks.Fetches(); got != 3 {
		t.Fatalf("Fetches() = %d, want 3", got)
	}
	// The valid key still works throughout.
	if _, err := ks.VerifySignature(context.Background(), token(t, keys.k1, "k1")); err != nil {
		t.Fatal(err)
	}
}

// TestRotation: a newly published key is accepted after at most one interval.
func TestRotation(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	srv := newJWKSServer(t, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil)))
	clock := newFakeClock()
	ks := newTestKeySet(t, srv, Options{Now: clock.Now, UnknownKIDInterval: 30 * time.Second})
	tok2 := token(t, keys.k2, "k2")

	// A miss before the issuer publishes k2 uses up the interval.
	if _, err := ks.VerifySignature(context.Background(), tok2); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("before rotation: err = %v, want ErrUnknownKey", err)
	}
	srv.set(http.StatusOK, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil), pubJWK(t, keys.k2, "k2", nil)))
	clock.Advance(10 * time.Second)
	if _, err := ks.VerifySignature(context.Background(), tok2); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("within interval: err = %v, want ErrUnknownKey (negative cache)", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2", got)
	}
	clock.Advance(21 * time.Second)
	payload, err := ks.VerifySignature(context.Background(), tok2)
	if err != nil {
		t.Fatalf("after interval: %v", err)
	}
	if string(payload) != `{"sub":"test"}` {
		t.Errorf("payload = %q", payload)
	}
	if !slices.Contains(ks.KIDs(), "k2") || !slices.Contains(ks.KIDs(), "k1") {
		t.Errorf("KIDs = %v", ks.KIDs())
	}
}

// TestFailedRefreshKeepsLastGoodKeys: each kind of failed fetch keeps the keys.
func TestFailedRefreshKeepsLastGoodKeys(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	good := jwksJSON(t, pubJWK(t, keys.k1, "k1", nil))
	// A well-formed set that would replace k1 if an error status were ignored.
	other := jwksJSON(t, pubJWK(t, keys.k2, "k2", nil))
	tests := []struct {
		name   string
		status int
		body   []byte
		class  error
	}{
		{"500 with a key set", http.StatusInternalServerError, other, ErrTransient},
		{"429 with a key set", http.StatusTooManyRequests, other, ErrTransient},
		{"404 with a key set", http.StatusNotFound, other, ErrPermanent},
		{"304 with a key set", http.StatusNotModified, other, ErrPermanent},
		{"not JSON", http.StatusOK, []byte("<html>maintenance</html>"), ErrPermanent},
		{"zero keys", http.StatusOK, jwksJSON(t), ErrPermanent},
		{"no usable key", http.StatusOK, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`), ErrPermanent},
		{"too large", http.StatusOK, []byte(`{"keys":[],"pad":"` + strings.Repeat("a", MaxResponseBytes) + `"}`), ErrPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t, good)
			ks := newTestKeySet(t, srv, Options{
				RefreshInterval: 5 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
			})
			v, err := ks.verifyCompact(context.Background(), token(t, keys.k1, "k1"))
			id := v.ID
			if err != nil {
				t.Fatal(err)
			}
			srv.set(tt.status, tt.body)
			before := ks.Fetches()
			eventually(t, "three failed refreshes", func() bool { return ks.Fetches() >= before+3 })
			if _, err := ks.VerifySignature(context.Background(), token(t, keys.k1, "k1")); err != nil {
				t.Fatalf("last good key dropped: %v", err)
			}
			if !ks.Publishes(id) {
				t.Fatal("a failed fetch unpublished the last good key")
			}
			if err := ks.Err(); !errors.Is(err, tt.class) {
				t.Fatalf("Err() = %v, want %v", err, tt.class)
			}
		})
	}
}

// TestDownAtStart: ErrNotReady until the endpoint comes back, then Ready.
func TestDownAtStart(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	srv := newJWKSServer(t, nil)
	srv.set(http.StatusServiceUnavailable, []byte("down"))
	ks, err := New(context.Background(), Options{URL: srv.URL, RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	eventually(t, "two failed fetches", func() bool { return srv.hits.Load() >= 2 })
	tok := token(t, keys.k1, "k1")
	for _, tk := range []string{tok, token(t, keys.attacker, "other"), craft(t, map[string]any{"alg": "RS256"}, `{}`, rs256(keys.k1))} {
		if _, err := ks.VerifySignature(context.Background(), tk); !errors.Is(err, ErrNotReady) {
			t.Fatalf("err = %v, want ErrNotReady", err)
		}
	}
	if ks.Ready() || slices.Contains(ks.KIDs(), "k1") || ks.KIDs() != nil {
		t.Fatal("ready while the endpoint is down")
	}
	srv.set(http.StatusOK, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ks.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if !ks.Ready() {
		t.Fatal("Ready() false after WaitReady")
	}
	if _, err := ks.VerifySignature(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

// TestKeyRemovedOrReplaced: a KeyID stays published only while the exact key
// material behind it is: a key removed, replaced under the same kid, or the
// verifying one of two keys sharing a kid removed, is no longer published.
func TestKeyRemovedOrReplaced(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	tests := []struct {
		name      string
		before    []json.RawMessage
		signer    *rsa.PrivateKey
		after     []json.RawMessage
		published bool
	}{
		{"removed", []json.RawMessage{pubJWK(t, keys.k1, "k1", nil), pubJWK(t, keys.k2, "k2", nil)}, keys.k2,
			[]json.RawMessage{pubJWK(t, keys.k1, "k1", nil)}, false},
		{"replaced under the same kid", []json.RawMessage{pubJWK(t, keys.k2, "k2", nil)}, keys.k2,
			[]json.RawMessage{pubJWK(t, keys.attacker, "k2", nil)}, false},
		{"alg changed under the same kid", []json.RawMessage{pubJWK(t, keys.k2, "k2", nil)}, keys.k2,
			[]json.RawMessage{pubJWK(t, keys.k2, "k2", map[string]any{"alg": "RS256"})}, false},
		{"verifying one of two keys sharing a kid removed", []json.RawMessage{pubJWK(t, keys.k1, "k2", nil), pubJWK(t, keys.k2, "k2", nil)}, keys.k2,
			[]json.RawMessage{pubJWK(t, keys.k1, "k2", nil)}, false},
		{"the other of two keys sharing a kid removed", []json.RawMessage{pubJWK(t, keys.k1, "k2", nil), pubJWK(t, keys.k2, "k2", nil)}, keys.k2,
			[]json.RawMessage{pubJWK(t, keys.k2, "k2", nil)}, true},
		{"unchanged", []json.RawMessage{pubJWK(t, keys.k2, "k2", nil)}, keys.k2,
			[]json.RawMessage{pubJWK(t, keys.k2, "k2", nil)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t, jwksJSON(t, tt.before...))
			ks := newTestKeySet(t, srv, Options{RefreshInterval: 5 * time.Millisecond})
			v, err := ks.verifyCompact(context.Background(), token(t, tt.signer, "k2"))
			id := v.ID
			if err != nil || !ks.Publishes(id) {
				t.Fatalf("before: err %v, published %v", err, ks.Publishes(id))
			}
			srv.set(http.StatusOK, jwksJSON(t, tt.after...))
			n := srv.hits.Load()
			eventually(t, "two refreshes", func() bool { return srv.hits.Load() >= n+2 })
			if got := ks.Publishes(id); got != tt.published {
				t.Fatalf("Publishes = %v, want %v", got, tt.published)
			}
		})
	}
}

// TestBadKeysSkipped: bad keys in a set never discard the good ones.
func TestBadKeysSkipped(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	privJWK, err := (&jose.JSONWebKey{Key: keys.k2, KeyID: "private", Use: "sig"}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	set := []json.RawMessage{
		json.RawMessage(`{"kty":"RSA","kid":"badn","n":"!!!","e":"AQAB"}`),
		json.RawMessage(`{"kty":"XYZ","kid":"badkty"}`),
		json.RawMessage(`{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}`),
		json.RawMessage(`123`),
		json.RawMessage(`{"kty":"EC","kid":"badcurve","crv":"P-192","x":"AA","y":"AA"}`),
		json.RawMessage(`{"kty":"RSA","kid":"noe","n":"` + b64.EncodeToString(keys.k1.N.Bytes()) + `"}`),
		json.RawMessage(`{"kty":"RSA","kid":"bige","n":"` + b64.EncodeToString(keys.k1.N.Bytes()) + `","e":"` + b64.EncodeToString(new(big.Int).Lsh(big.NewInt(1), 80).Bytes()) + `"}`),
		pubJWK(t, keys.small, "small", nil),
		privJWK,
		pubJWK(t, keys.attacker, "wrongalg", map[string]any{"alg": "PS512"}),
		pubJWK(t, keys.ec256, "ec-not-allowed", nil),
		pubJWK(t, keys.k1, "k1", nil),
	}
	srv := newJWKSServer(t, jwksJSON(t, set...))
	ks := newTestKeySet(t, srv, Options{})
	if got := ks.KIDs(); !slices.Equal(got, []string{"k1"}) {
		t.Fatalf("KIDs = %v, want [k1]", got)
	}
	if _, err := ks.VerifySignature(context.Background(), token(t, keys.k1, "k1")); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.VerifySignature(context.Background(), token(t, keys.k2, "private")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("published private key used: %v", err)
	}
}

// TestUnknownKIDWaitHonoursContext: a waiter gives up with its ctx while the
// shared fetch goes on.
func TestUnknownKIDWaitHonoursContext(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	srv := newJWKSServer(t, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil)))
	clock := newFakeClock()
	ks := newTestKeySet(t, srv, Options{Now: clock.Now})
	block := make(chan struct{})
	srv.block.Store(&block)
	srv.set(http.StatusOK, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil), pubJWK(t, keys.k2, "k2", nil)))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := ks.VerifySignature(ctx, token(t, keys.k2, "k2"))
		done <- err
	}()
	eventually(t, "refetch in flight", func() bool { return srv.blocking.Load() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, ErrUnknownKey) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrUnknownKey wrapping context.Canceled", err)
	}
	// A second miss joins the same in-flight fetch, then succeeds.
	done2 := make(chan error, 1)
	go func() {
		_, err := ks.VerifySignature(context.Background(), token(t, keys.k2, "k2"))
		done2 <- err
	}()
	srv.block.Store(nil)
	close(block)
	if err := <-done2; err != nil {
		t.Fatalf("joined fetch: %v", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2 (the waiters shared one fetch)", got)
	}
}

// TestCloseStopsGoroutines: Close cancels fetches in flight and every
// goroutine exits; Close is idempotent.
func TestCloseStopsGoroutines(t *testing.T) {
	// Not parallel: it counts goroutines.
	keys := keysOnce()
	baseline := runtime.NumGoroutine()
	srv := newJWKSServer(t, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil)))
	var sets []*KeySet
	for range 5 {
		sets = append(sets, newTestKeySet(t, srv, Options{RefreshInterval: time.Millisecond}))
	}
	// One key set with a refetch hanging in flight.
	block := make(chan struct{})
	defer close(block)
	srv.block.Store(&block)
	waiter := make(chan error, 1)
	go func() {
		_, err := sets[0].VerifySignature(context.Background(), token(t, keys.k2, "k2"))
		waiter <- err
	}()
	eventually(t, "blocked fetches", func() bool { return srv.blocking.Load() >= 1 })
	for _, ks := range sets {
		ks.Close()
		ks.Close()
	}
	if err := <-waiter; !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("waiter: %v", err)
	}
	if err := sets[0].WaitReady(context.Background()); err != nil {
		t.Fatalf("WaitReady after Close on a loaded set = %v, want nil", err)
	}
	srv.Close()
	eventually(t, fmt.Sprintf("goroutines back to %d", baseline), func() bool {
		return runtime.NumGoroutine() <= baseline
	})
	// Keys loaded before Close keep verifying; unknown kids fetch nothing.
	hits := srv.hits.Load()
	if _, err := sets[1].VerifySignature(context.Background(), token(t, keys.k1, "k1")); err != nil {
		t.Fatal(err)
	}
	if _, err := sets[1].VerifySignature(context.Background(), token(t, keys.k2, "zz")); !errors.Is(err, ErrUnknownKey) {
		t.Fatal(err)
	}
	if srv.hits.Load() != hits {
		t.Fatal("fetch after Close")
	}
}

func TestWaitReadyAfterCloseNotLoaded(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, nil)
	srv.set(http.StatusInternalServerError, nil)
	ks, err := New(context.Background(), Options{URL: srv.URL, RetryMin: time.Hour, RetryMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ks.Close()
	if err := ks.WaitReady(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitReady = %v, want ErrClosed", err)
	}
}

// TestCancelledParentContext: cancelling New's ctx does not stop the key set.
func TestCancelledParentContext(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	srv := newJWKSServer(t, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ks, err := New(ctx, Options{URL: srv.URL, RefreshInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	eventually(t, "refreshes despite cancelled ctx", func() bool { return ks.Fetches() >= 3 })
	if !ks.Ready() {
		t.Fatal("not ready")
	}
}

// TestKeyFits checks the key/alg family table directly (the signature
// libraries would also refuse a mismatch; this is the first line).
func TestKeyFits(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	rsaKey := &key{kind: kindRSA, pub: &keys.k1.PublicKey}
	rsaRS256 := &key{kind: kindRSA, pub: &keys.k1.PublicKey, alg: "RS256"}
	ec256 := &key{kind: kindEC, pub: &keys.ec256.PublicKey, curve: keys.ec256.Curve}
	ec384 := &key{kind: kindEC, pub: &keys.ec384.PublicKey, curve: keys.ec384.Curve}
	ed := &key{kind: kindEd25519}
	tests := []struct {
		key  *key
		alg  string
		want bool
	}{
		{rsaKey, "RS256", true}, {rsaKey, "PS512", true}, {rsaKey, "ES256", false}, {rsaKey, "EdDSA", false},
		{rsaRS256, "RS256", true}, {rsaRS256, "PS256", false}, {rsaRS256, "RS512", false},
		{ec256, "ES256", true}, {ec256, "ES384", false}, {ec256, "RS256", false},
		{ec384, "ES384", true}, {ec384, "ES256", false},
		{ed, "EdDSA", true}, {ed, "RS256", false}, {ed, "ES256", false},
	}
	for _, tt := range tests {
		if got := tt.key.fits(tt.alg, knownAlgs[tt.alg]); got != tt.want {
			t.Errorf("kind %d curve %v alg %q: fits(%s) = %v, want %v", tt.key.kind, tt.key.curve, tt.key.alg, tt.alg, got, tt.want)
		}
	}
}

// TestVerifyReturnsKID: the kid returned is the one of the verifying key,
// also for tokens without kid (authmw indexes its cache by it).
func TestVerifyReturnsKID(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	srv := newJWKSServer(t, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil), pubJWK(t, keys.k2, "k2", nil)))
	ks := newTestKeySet(t, srv, Options{})
	for _, tt := range []struct{ tok, want string }{
		{token(t, keys.k2, "k2"), "k2"},
		{craft(t, map[string]any{"alg": "RS256"}, `{}`, rs256(keys.k2)), "k2"},
		{craft(t, map[string]any{"alg": "RS256"}, `{}`, rs256(keys.k1)), "k1"},
	} {
		if v, err := ks.verifyCompact(context.Background(), tt.tok); err != nil || v.KID != tt.want || !ks.Publishes(v.ID) {
			t.Errorf("VerifyCompact: kid %q err %v, want %q", v.KID, err, tt.want)
		}
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = testutil.SyncBuffer

// TestLogging: fetch failures, skipped keys and key changes are logged by
// kid; key material never is.
func TestLogging(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := newJWKSServer(t, jwksJSON(t,
		json.RawMessage(`{"kty":"RSA","kid":"broken","n":"!!","e":"AQAB"}`),
		pubJWK(t, keys.k1, "k1", nil), pubJWK(t, keys.k2, "k2", nil)))
	ks := newTestKeySet(t, srv, Options{Logger: logger, RefreshInterval: 5 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	srv.set(http.StatusOK, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil)))
	eventually(t, "k2 removed", func() bool { return !slices.Contains(ks.KIDs(), "k2") })
	srv.set(http.StatusBadGateway, nil)
	n := ks.Fetches()
	eventually(t, "a failed fetch", func() bool { return ks.Fetches() > n+1 })
	out := buf.String()
	for _, want := range []string{"kid=broken", "keys loaded", "keys removed", "k2", "fetch failed", "HTTP status 502"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{b64.EncodeToString(keys.k1.N.Bytes()[:15]), b64.EncodeToString(keys.k2.N.Bytes()[:15])} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains key material")
		}
	}
}

func TestRequireKID(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	srv := newJWKSServer(t, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil)))
	ks := newTestKeySet(t, srv, Options{RequireKID: true})
	noKID := craft(t, map[string]any{"alg": "RS256"}, `{}`, rs256(keys.k1))
	for _, p := range paths {
		if _, err := p.verify(ks, noKID); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("%s: err = %v, want ErrUnknownKey", p.name, err)
		}
		if _, err := p.verify(ks, token(t, keys.k1, "k1")); err != nil {
			t.Errorf("%s: with kid: %v", p.name, err)
		}
	}
	if got := ks.Fetches(); got != 1 {
		t.Errorf("Fetches = %d, want 1 (kid-less tokens never refetch)", got)
	}
}

// TestRetryDelay: the server's Retry-After is honoured when longer than the
// backoff, but never beyond the backoff's maximum (a hostile issuer cannot
// park the key set for an hour).
func TestRetryDelay(t *testing.T) {
	t.Parallel()
	b := retry.Backoff{Initial: time.Millisecond, Max: 50 * time.Millisecond}
	tests := []struct {
		name   string
		header map[string]string
		min    time.Duration
		max    time.Duration
	}{
		{"no Retry-After", nil, time.Millisecond * 3 / 4, time.Millisecond * 5 / 4},
		{"Retry-After-Ms within the maximum", map[string]string{"Retry-After-Ms": "30"}, 30 * time.Millisecond, 30 * time.Millisecond},
		{"Retry-After of an hour", map[string]string{"Retry-After": "3600"}, 50 * time.Millisecond, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(http.StatusTooManyRequests)
			}))
			defer srv.Close()
			_, err := Get(context.Background(), nil, srv.URL, "application/json", false)
			if !errors.Is(err, ErrTransient) {
				t.Fatalf("err = %v, want ErrTransient", err)
			}
			if d := RetryDelay(b, 1, err); d < tt.min || d > tt.max {
				t.Fatalf("RetryDelay = %s, want within [%s, %s]", d, tt.min, tt.max)
			}
		})
	}
}

// TestGetErrorBounded: what a server chooses (a body, a redirect's Location)
// reaches an error, and so a log line, only as a short excerpt.
func TestGetErrorBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 5000)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"redirect to a long foreign Location", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "http://"+long+".example/keys")
			w.WriteHeader(http.StatusFound)
		}, netrule.ErrRedirect},
		{"unparsable Location", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "http://x/%zz"+long)
			w.WriteHeader(http.StatusFound)
		}, ErrTransient},
		{"long error body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(long))
		}, ErrPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			_, err := Get(context.Background(), nil, srv.URL, "application/json", false)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if n := len(err.Error()); n > 400 || strings.Contains(err.Error(), long[:200]) {
				t.Fatalf("error of %d bytes quotes the server's text: %.300s…", n, err.Error())
			}
		})
	}
}

// slowLogHandler delays the records whose message is msg (a slow log sink: a
// fault), widening the moment between a fetch's install and its end.
type slowLogHandler struct {
	msg string
	d   time.Duration
}

func (h slowLogHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h slowLogHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		time.Sleep(h.d)
	}
	return nil
}
func (h slowLogHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h slowLogHandler) WithGroup(string) slog.Handler      { return h }

// A kid published just after the keys became ready is fetched by the first
// token that names it: the miss must not join the fetch that just ended (its
// keys predate the kid), which left the new key unknown until the next
// unknown-kid interval, and let a removed key's cached tokens through.
func TestMissRightAfterLoadStartsItsOwnFetch(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	srv := newJWKSServer(t, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil)))
	ks, err := New(context.Background(), Options{URL: srv.URL, Logger: slog.New(slowLogHandler{"jwks: keys loaded", 200 * time.Millisecond})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ks.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	srv.set(http.StatusOK, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil), pubJWK(t, keys.k2, "k2", nil)))
	if _, err := ks.VerifySignature(ctx, token(t, keys.k2, "k2")); err != nil {
		t.Fatalf("token of a key published after the first load: %v (joined the finished fetch?)", err)
	}
}

// A key set served gzip-compressed is decompressed by the transport; the
// size limit applies to the decompressed body, so a gzip bomb (a few KiB
// that inflate to 16 MiB) is a too-large response, read no further than
// the limit, not 16 MiB in memory.
func TestGzipBombRefused(t *testing.T) {
	t.Parallel()
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write([]byte(`{"keys":[],"pad":"`))
	chunk := bytes.Repeat([]byte("a"), 1<<20)
	for range 16 {
		zw.Write(chunk)
	}
	zw.Write([]byte(`"}`))
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(bomb.Bytes())
	}))
	t.Cleanup(srv.Close)
	_, err := Get(context.Background(), nil, srv.URL, "application/json", false)
	if !errors.Is(err, ErrPermanent) || !errors.Is(err, netrule.ErrTooLarge) {
		t.Fatalf("gzip bomb of %d bytes: err = %v, want a permanent too-large failure", bomb.Len(), err)
	}
}

// EC keys that must never verify: a point not on its curve (invalid-curve
// attacks), a P-384 key that declares ES256, an EC key that declares an RSA
// algorithm, and an EC key whose key_ops exclude "verify".
func TestECKeyEdgeCasesSkipped(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	one := b64.EncodeToString(bytes.Repeat([]byte{1}, 32))
	set := []json.RawMessage{
		json.RawMessage(`{"kty":"EC","kid":"offcurve","crv":"P-256","x":"` + one + `","y":"` + one + `"}`),
		pubJWK(t, keys.ec384, "p384-declares-es256", map[string]any{"alg": "ES256"}),
		pubJWK(t, keys.ec256, "ec-declares-rs256", map[string]any{"alg": "RS256"}),
		pubJWK(t, keys.ec256, "ec-derive-only", map[string]any{"key_ops": []string{"deriveKey"}}),
		pubJWK(t, keys.ec256, "good", nil),
	}
	srv := newJWKSServer(t, jwksJSON(t, set...))
	ks := newTestKeySet(t, srv, Options{Algorithms: []string{"RS256", "ES256", "ES384"}})
	if got := ks.KIDs(); !slices.Equal(got, []string{"good"}) {
		t.Fatalf("KIDs = %v, want [good]", got)
	}
	for _, kid := range []string{"offcurve", "p384-declares-es256", "ec-derive-only"} {
		if _, err := ks.VerifySignature(context.Background(), signJOSE(t, jose.ES256, keys.ec256, kid, `{}`)); err == nil {
			t.Errorf("token naming %s verified", kid)
		}
	}
}
