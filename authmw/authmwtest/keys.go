package authmwtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as the SHA-1 thumbprint (RFC 7517 §4.8)
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"sync"
	"time"
)

// signingKey is one RSA key with its self-signed certificate, shaped like an
// Entra signing key: kid == x5t == base64url(SHA-1(cert DER)).
type signingKey struct {
	kid     string
	priv    *rsa.PrivateKey
	certDER []byte
}

// keyring holds the current signing key and the published key set.
type keyring struct {
	mu        sync.RWMutex
	cur       signingKey
	published []signingKey // oldest first
	jwksBody  []byte       // cached JWKS document for published
}

// rotate makes a fresh key current and publishes it next to the old ones.
func (k *keyring) rotate(now time.Time) (string, error) {
	sk, err := newSigningKey(now)
	if err != nil {
		return "", err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cur = sk
	k.published = append(k.published, sk)
	k.jwksBody = buildJWKS(k.published)
	return sk.kid, nil
}

// remove unpublishes kid and reports whether it was published.
func (k *keyring) remove(kid string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, sk := range k.published {
		if sk.kid == kid {
			k.published = append(k.published[:i:i], k.published[i+1:]...)
			k.jwksBody = buildJWKS(k.published)
			return true
		}
	}
	return false
}

func (k *keyring) current() signingKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.cur
}

func (k *keyring) jwks() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.jwksBody
}

func (k *keyring) publishedKIDs() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]string, len(k.published))
	for i, sk := range k.published {
		out[i] = sk.kid
	}
	return out
}

func newSigningKey(now time.Time) (signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return signingKey{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return signingKey{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "authmwtest signing key (tests only)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return signingKey{}, err
	}
	sum := sha1.Sum(der) //nolint:gosec // thumbprint, not a security boundary
	return signingKey{kid: base64.RawURLEncoding.EncodeToString(sum[:]), priv: priv, certDER: der}, nil
}

type jwk struct {
	Kty string   `json:"kty"`
	Use string   `json:"use"`
	Kid string   `json:"kid"`
	X5t string   `json:"x5t"`
	N   string   `json:"n"`
	E   string   `json:"e"`
	X5c []string `json:"x5c"`
	// No "alg" member, like Entra's JWKS.
}

func buildJWKS(keys []signingKey) []byte {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	for _, sk := range keys {
		pub := sk.priv.PublicKey
		set.Keys = append(set.Keys, jwk{
			Kty: "RSA",
			Use: "sig",
			Kid: sk.kid,
			X5t: sk.kid,
			N:   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			E:   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
			X5c: []string{base64.StdEncoding.EncodeToString(sk.certDER)},
		})
	}
	b, err := json.Marshal(set)
	if err != nil { // cannot happen: only strings
		panic("authmwtest: marshal JWKS: " + err.Error())
	}
	return b
}
