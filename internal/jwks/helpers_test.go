package jwks

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/testutil"

	jose "github.com/go-jose/go-jose/v4"
)

// testKeys are generated once per test binary (RSA generation is slow).
type testKeys struct {
	k1, k2, attacker *rsa.PrivateKey
	small            *rsa.PrivateKey // 1024 bits: must be skipped
	ec256, ec384     *ecdsa.PrivateKey
	ed               ed25519.PrivateKey
}

var keysOnce = sync.OnceValue(func() *testKeys {
	must := func(k *rsa.PrivateKey, err error) *rsa.PrivateKey {
		if err != nil {
			panic(err)
		}
		return k
	}
	mustEC := func(k *ecdsa.PrivateKey, err error) *ecdsa.PrivateKey {
		if err != nil {
			panic(err)
		}
		return k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &testKeys{
		ed:       ed,
		k1:       must(rsa.GenerateKey(rand.Reader, 2048)),
		k2:       must(rsa.GenerateKey(rand.Reader, 2048)),
		attacker: must(rsa.GenerateKey(rand.Reader, 2048)),
		small:    must(rsa.GenerateKey(rand.Reader, 1024)),
		ec256:    mustEC(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)),
		ec384:    mustEC(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)),
	}
})

// pubJWK returns the public JWK JSON of priv, Entra style (no "alg", "use":"sig").
func pubJWK(t testing.TB, priv crypto.Signer, kid string, extra map[string]any) json.RawMessage {
	t.Helper()
	jwk := jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Use: "sig"}
	b, err := jwk.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) == 0 {
		return b
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksJSON builds a key set document.
func jwksJSON(t testing.TB, keys ...json.RawMessage) []byte {
	t.Helper()
	if keys == nil {
		keys = []json.RawMessage{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksServer is a JWKS endpoint whose answer tests can change.
type jwksServer struct {
	*httptest.Server
	body     atomic.Pointer[[]byte]
	status   atomic.Int32
	hits     atomic.Int64
	noCache  atomic.Int64 // requests carrying Cache-Control: no-cache
	block    atomic.Pointer[chan struct{}]
	blocking atomic.Int64 // requests currently blocked
}

func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(http.StatusOK, body)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.Header.Get("Cache-Control") == "no-cache" {
			s.noCache.Add(1)
		}
		if ch := s.block.Load(); ch != nil {
			s.blocking.Add(1)
			select {
			case <-*ch:
			case <-r.Context().Done():
			}
			s.blocking.Add(-1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(s.status.Load()))
		_, _ = w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, body []byte) {
	s.status.Store(int32(status))
	s.body.Store(&body)
}

// counter is an httptest server that must never be contacted (jku/x5u).
func counterServer(t testing.TB) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// fakeClock is an injectable clock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var b64 = base64.RawURLEncoding

// craft builds a compact JWS with an arbitrary header; sign computes the
// signature over the signing input (nil sign = empty signature).
func craft(t testing.TB, header map[string]any, payload string, sign func(input []byte) []byte) string {
	t.Helper()
	return testutil.Compact(header, []byte(payload), sign)
}

var (
	rs256 = testutil.RS256
	hs256 = testutil.HS256
)

// signJOSE signs with go-jose (any algorithm it supports).
func signJOSE(t testing.TB, alg jose.SignatureAlgorithm, priv any, kid string, payload string) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// token is an RS256 token with kid signed by priv.
func token(t testing.TB, priv *rsa.PrivateKey, kid string) string {
	t.Helper()
	return craft(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, `{"sub":"test"}`, rs256(priv))
}

// newTestKeySet starts a KeySet against srv and waits until it is ready.
func newTestKeySet(t testing.TB, srv *jwksServer, opts Options) *KeySet {
	t.Helper()
	opts.URL = srv.URL
	ks, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ks.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return ks
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// KIDs returns the kids currently published, sorted (nil before the first
// load). Keys without a kid are listed as "".
func (k *KeySet) KIDs() []string {
	if m := k.keys.Load(); m != nil {
		return kidsNotIn(m, nil)
	}
	return nil
}

// Fetches returns the number of JWKS HTTP requests made so far.
func (k *KeySet) Fetches() int64 { return k.fetches.Load() }
