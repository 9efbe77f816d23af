package authmw

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/jwks"
)

// Adversarial review 2: key material an issuer's key set may hold, sent
// through the real Middleware (generic issuer on loopback, see keySource).

// setRaw publishes the given JWKs as they are.
func (s *keySource) setRaw(keys ...json.RawMessage) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

// withMembers returns jwk with the members of extra added or replaced.
func withMembers(t *testing.T, jwk json.RawMessage, extra map[string]any) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(jwk, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pkcs1Forgery signs for a key with public exponent 1: the "signature" is the
// PKCS #1 v1.5 encoded SHA-256 digest itself (s^1 = EM).
func pkcs1Forgery(size int) func([]byte) []byte {
	return func(input []byte) []byte {
		prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
		d := sha256.Sum256(input)
		em := make([]byte, size)
		em[1] = 1
		ps := size - 3 - len(prefix) - len(d)
		for i := 2; i < 2+ps; i++ {
			em[i] = 0xff
		}
		copy(em[3+ps:], append(prefix, d[:]...))
		return em
	}
}

func selfSignedDER(t *testing.T, k *rsa.PrivateKey) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func TestKeyMaterialEdgeCases(t *testing.T) {
	key := newRSAKey(t)
	attacker := getAttackerKey()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		name string
		jwk  json.RawMessage
		// sign signs the token's input; nil: key's real RS256 signature.
		sign func([]byte) []byte
		want int
	}{
		{"key_ops verify (control)", withMembers(t, rsaJWK("k1", key), map[string]any{"key_ops": []string{"verify"}}), nil, http.StatusOK},
		{"key_ops encrypt and wrapKey only (an encryption key)", withMembers(t, rsaJWK("k1", key), map[string]any{"key_ops": []string{"encrypt", "wrapKey"}}), nil, http.StatusUnauthorized},
		{"key_ops sign only (a private-key operation)", withMembers(t, rsaJWK("k1", key), map[string]any{"key_ops": []string{"sign"}}), nil, http.StatusUnauthorized},
		{"key_ops a string, not an array", withMembers(t, rsaJWK("k1", key), map[string]any{"key_ops": "encrypt"}), nil, http.StatusUnauthorized},
		{"key_ops empty", withMembers(t, rsaJWK("k1", key), map[string]any{"key_ops": []string{}}), nil, http.StatusUnauthorized},
		{"e = 1, signature = the encoded digest", withMembers(t, rsaJWK("k1", key), map[string]any{"e": b64([]byte{1})}), pkcs1Forgery(key.Size()), http.StatusUnauthorized},
		{"e even", withMembers(t, rsaJWK("k1", key), map[string]any{"e": b64(big.NewInt(65538).Bytes())}), nil, http.StatusUnauthorized},
		{"e = 2^31+1", withMembers(t, rsaJWK("k1", key), map[string]any{"e": b64(big.NewInt(1<<31 + 1).Bytes())}), nil, http.StatusUnauthorized},
		{"RSA modulus of 1024 bits", rsaJWK("k1", small), rs256(small), http.StatusUnauthorized},
		{"modulus with leading zero bytes (same key)", withMembers(t, rsaJWK("k1", key), map[string]any{"n": b64(append([]byte{0, 0}, key.N.Bytes()...))}), nil, http.StatusOK},
		{"x5c certificate of another key", withMembers(t, rsaJWK("k1", key), map[string]any{"x5c": []string{selfSignedDER(t, attacker)}}), nil, http.StatusUnauthorized},
		{"kty EC with RSA members", withMembers(t, rsaJWK("k1", key), map[string]any{"kty": "EC"}), nil, http.StatusUnauthorized},
		{"alg PS256 declared on the key, RS256 token", withMembers(t, rsaJWK("k1", key), map[string]any{"alg": "PS256"}), nil, http.StatusUnauthorized},
		{"use enc", withMembers(t, rsaJWK("k1", key), map[string]any{"use": "enc"}), nil, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newKeySource(t, false, nil)
			// A second, ordinary key keeps the set usable when tt.jwk is skipped.
			src.setRaw(tt.jwk, rsaJWK("other", newRSAKey(t)))
			e := newKeySourceEnv(t, src.URL, nil)
			e.waitReady()
			sign := tt.sign
			if sign == nil {
				sign = rs256(key)
			}
			now := e.clock.Now().Unix()
			tok := forge(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "k1"}, map[string]any{
				"iss": e.iss, "aud": testAudience, "azp": testClientID, "sub": testObjectID, "oid": testObjectID,
				"ver": "2.0", "iat": now, "nbf": now, "exp": now + 3600,
			}, sign)
			e.remember(tok)
			if r := e.get(tok); r.status != tt.want {
				t.Fatalf("status %d (%s), want %d", r.status, reasonOf(r), tt.want)
			}
		})
	}
}

// A token without kid is tried against every published key that fits its
// algorithm, and one naming a kid against every key published under it: a
// key set of thousands of keys (1 MiB holds about 2,500 RSA or 7,000 EC keys)
// would make each forged token cost thousands of signature checks. The set
// keeps at most jwks.MaxKeys usable keys.
func TestForgedTokenCostBoundedByKeyCount(t *testing.T) {
	key := newRSAKey(t)
	for _, kid := range []string{"", "shared"} {
		t.Run("kid="+kid, func(t *testing.T) {
			src := newKeySource(t, false, nil)
			var set []json.RawMessage
			for i := range 300 {
				// One modulus, distinct odd exponents: distinct keys, cheap to make.
				set = append(set, withMembers(t, rsaJWK(kid, key), map[string]any{
					"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(3 + 2*i)).Bytes())}))
			}
			src.setRaw(set...)
			e := newKeySourceEnv(t, src.URL, nil)
			e.waitReady()
			if n := e.m.Health().Issuers[0].Keys; n >= len(set) || n > jwks.MaxKeys {
				t.Fatalf("key set holds %d keys: a forged token costs %d signature checks (limit %d)", n, n, jwks.MaxKeys)
			}
			hdr := map[string]any{"alg": "RS256", "typ": "JWT"}
			if kid != "" {
				hdr["kid"] = kid
			}
			now := e.clock.Now().Unix()
			tok := forge(hdr, map[string]any{
				"iss": e.iss, "aud": testAudience, "azp": testClientID, "sub": testObjectID,
				"ver": "2.0", "iat": now, "nbf": now, "exp": now + 3600,
			}, rs256(getAttackerKey()))
			e.remember(tok)
			if r := e.get(tok); r.status != http.StatusUnauthorized {
				t.Fatalf("forged token: %d", r.status)
			}
		})
	}
}

// A forged kid makes the key set refetch; a permanent failure of that refetch
// (here 404) after the keys loaded must not make a running service unready:
// the callee exits only on a permanent failure before its first load.
func TestForgedKidRefetchFailingPermanentlyKeepsReady(t *testing.T) {
	key := newRSAKey(t)
	var gone atomic.Bool
	var src *keySource
	src = newKeySource(t, false, map[string]http.HandlerFunc{"/keys": func(w http.ResponseWriter, r *http.Request) {
		if gone.Load() {
			http.NotFound(w, r)
			return
		}
		src.mu.Lock()
		defer src.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"keys": src.keys})
	}})
	src.setKeys("k1", key)
	e := newKeySourceEnv(t, src.URL, nil)
	e.waitReady()
	good := e.token("k1", key)
	if r := e.get(good); r.status != http.StatusOK {
		t.Fatalf("valid token: %d", r.status)
	}
	gone.Store(true)
	if r := e.get(e.token("forged", getAttackerKey())); r.status != http.StatusUnauthorized || reasonOf(r) != ReasonUnknownKey {
		t.Fatalf("forged kid: %d %q", r.status, reasonOf(r))
	}
	if err := e.issuerError(); !errors.Is(err, ErrSourcePermanent) {
		t.Fatalf("issuer error = %v, want the refetch's permanent failure", err)
	}
	if err := e.m.ReadinessError(); err != nil {
		t.Fatalf("ReadinessError after a failed refetch = %v, want nil (a running service would stop)", err)
	}
	if h := e.m.Health(); !h.Ready || h.Issuers[0].Failure != "permanent" {
		t.Fatalf("health = %+v, want ready with the failure reported", h)
	}
	if r := e.get(good); r.status != http.StatusOK {
		t.Fatalf("valid token after the failed refetch: %d", r.status)
	}
}

// A discovery document fetched over https that declares a plain-http jwks_uri
// on loopback (allowed for http issuers in development) would have the keys
// fetched from whatever local process listens on that port: refused like a
// redirect that downgrades the scheme.
func TestHTTPSDiscoveryWithPlainHTTPJWKSRefused(t *testing.T) {
	attackerKey := getAttackerKey()
	var hits atomic.Int64
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(`{"keys":[` + string(rsaJWK("k1", attackerKey)) + `]}`))
	}))
	defer local.Close()
	var src *keySource
	src = newKeySource(t, true, map[string]http.HandlerFunc{"/.well-known/openid-configuration": func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": src.URL, "jwks_uri": local.URL + "/keys"})
	}})
	client := src.Client()
	client.Timeout = 5 * time.Second
	e := newKeySourceEnv(t, src.URL, client)
	if err := e.issuerError(); !errors.Is(err, ErrSourcePermanent) {
		t.Fatalf("issuer error = %v, want permanent", err)
	}
	if r := e.get(e.token("k1", attackerKey)); r.status == http.StatusOK {
		t.Fatalf("token signed with the plain-http key set's key accepted")
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the plain-http key set was fetched %d times", n)
	}
}

// Two trusted issuers publishing the same kid with different keys: a token is
// verified only with the keys of the issuer its iss names, so one issuer's key
// never signs for the other.
func TestKidCollisionBetweenIssuers(t *testing.T) {
	keyA, keyB := newRSAKey(t), newRSAKey(t)
	a, b := newKeySource(t, false, nil), newKeySource(t, false, nil)
	a.setKeys("k1", keyA)
	b.setKeys("k1", keyB)
	e := newKeySourceEnv(t, a.URL, nil)
	// A second Middleware trusting both, served by the same test env.
	m, err := New(context.Background(), Config{
		Policy: Policy{Issuers: []string{a.URL, b.URL}, Audiences: []string{testAudience}, AllowedApplications: []string{testClientID}},
		Now:    e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now().Unix()
	tok := func(iss string, key *rsa.PrivateKey) string {
		s := forge(map[string]any{"alg": "RS256", "kid": "k1"}, map[string]any{
			"iss": iss, "aud": testAudience, "azp": testClientID, "sub": testObjectID,
			"ver": "2.0", "iat": now, "nbf": now, "exp": now + 3600,
		}, rs256(key))
		e.remember(s)
		return s
	}
	for _, tc := range []struct {
		name string
		tok  string
		ok   bool
	}{
		{"A's token, A's key", tok(a.URL, keyA), true},
		{"B's token, B's key", tok(b.URL, keyB), true},
		{"iss B signed with A's key under the shared kid", tok(b.URL, keyA), false},
		{"iss A signed with B's key under the shared kid", tok(a.URL, keyB), false},
	} {
		if _, err := m.Verify(context.Background(), tc.tok); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
