package localidp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Claims is a JWT claim set. Values must be JSON-marshalable; numeric dates
// (iat, nbf, exp) are Unix seconds.
type Claims map[string]any

// SigningKey returns the current signing key and its kid, for tests that
// craft tokens by hand (for example with a forged header). Never use it
// outside tests.
func (p *Platform) SigningKey() (kid string, key *rsa.PrivateKey) {
	k := p.keys.current()
	return k.kid, k.priv
}

// Mint signs c as a compact JWS with the current key. The header is
// {"alg":"RS256","typ":"JWT","x5t":kid,"kid":kid}, like Entra's. Mint does not
// add or check any claim: what you pass is what is signed.
func (p *Platform) Mint(c Claims) (string, error) {
	k := p.keys.current()
	return sign(k, c)
}

func sign(k signingKey, c Claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("localidp: marshal claims: %w", err)
	}
	header, err := json.Marshal(struct {
		Typ string `json:"typ"`
		Alg string `json:"alg"`
		X5t string `json:"x5t"`
		Kid string `json:"kid"`
	}{"JWT", "RS256", k.kid, k.kid})
	if err != nil {
		return "", fmt.Errorf("localidp: marshal header: %w", err)
	}
	enc := base64.RawURLEncoding
	var sb strings.Builder
	sb.Grow(enc.EncodedLen(len(header)) + enc.EncodedLen(len(payload)) + enc.EncodedLen(k.priv.Size()) + 2)
	sb.WriteString(enc.EncodeToString(header))
	sb.WriteByte('.')
	sb.WriteString(enc.EncodeToString(payload))
	sum := sha256.Sum256([]byte(sb.String()))
	sig, err := rsa.SignPKCS1v15(nil, k.priv, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("localidp: sign: %w", err)
	}
	sb.WriteByte('.')
	sb.WriteString(enc.EncodeToString(sig))
	return sb.String(), nil
}

// AccessTokenClaims builds Entra-shaped app-only access-token claims for id
// calling resource (an App ID URI such as "api://callee", or a client ID).
//
// Both versions carry: aud, iss, iat, nbf (= now), exp (= now +
// Options.TokenLifetime), aio, oid and sub (= id.ObjectID), tid, idtyp "app",
// rh, uti (random), roles (only when id.AppRoles has values for resource,
// matched exactly or with/without a trailing slash) and xms_mirid when
// id.ResourceID is set.
//
// version 1 (the default for any value other than 2): iss = [Platform.IssuerV1],
// aud = resource exactly as requested, appid = id.ClientID, appidacr "2",
// idp = IssuerV1, ver "1.0".
//
// version 2: iss = [Platform.IssuerV2], aud = the client ID registered for
// resource in Options.ResourceClientIDs (else resource as requested),
// azp = id.ClientID, azpacr "2", ver "2.0".
func (p *Platform) AccessTokenClaims(id Identity, resource string, version int) Claims {
	return p.accessTokenClaims(id, resource, version, p.lifetime)
}

func (p *Platform) accessTokenClaims(id Identity, resource string, version int, lifetime time.Duration) Claims {
	now := p.now()
	c := Claims{
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(lifetime).Unix(),
		"aio":   randomID(24),
		"idtyp": "app",
		"oid":   id.ObjectID,
		"rh":    "0." + randomID(30) + ".",
		"sub":   id.ObjectID,
		"tid":   p.tenantID,
		"uti":   randomID(16),
	}
	if roles := id.rolesFor(resource); len(roles) > 0 {
		c["roles"] = roles
	}
	if id.ResourceID != "" {
		c["xms_mirid"] = id.ResourceID
	}
	if version == 2 {
		aud := resource
		if appID, ok := p.resourceApps[resource]; ok {
			aud = appID
		}
		c["aud"] = aud
		c["iss"] = p.issuerV2
		c["azp"] = id.ClientID
		c["azpacr"] = "2"
		c["ver"] = "2.0"
	} else {
		c["aud"] = resource
		c["iss"] = p.issuerV1
		c["appid"] = id.ClientID
		c["appidacr"] = "2"
		c["idp"] = p.issuerV1
		c["ver"] = "1.0"
	}
	return c
}

// randomID returns n random bytes, base64url-encoded.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails (Go ≥1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}
