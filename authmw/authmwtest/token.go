package authmwtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Claims is a JWT claim set. Values must be JSON-marshalable; numeric dates
// (iat, nbf, exp) are Unix seconds.
type Claims map[string]any

// Version selects the shape of an Entra access token.
type Version int

// Access-token versions. An app registration issues v1 tokens unless its
// manifest sets requestedAccessTokenVersion to 2.
const (
	V1 Version = 1 // iss https://sts.windows.net/{tid}/ (here [Issuer.IssuerV1]), appid, ver "1.0"
	V2 Version = 2 // iss {authority}/{tid}/v2.0 (here [Issuer.IssuerV2]), azp, ver "2.0"
)

// App is the caller of an app-only token: an app registration's service
// principal or a managed identity.
type App struct {
	// AppID is the client (application) ID: the appid (v1) or azp (v2) claim.
	AppID string
	// ObjectID is the service principal's object ID: the oid and sub claims.
	// Default: AppID.
	ObjectID string
	// Roles are the app roles assigned to the app on the audience: the roles
	// claim. Default: none, and the claim is absent.
	Roles []string
	// ResourceID is a managed identity's ARM resource ID: the xms_mirid claim.
	// Default: none, and the claim is absent.
	ResourceID string
}

// Mint signs c as a compact JWS with the current key. The header is
// {"typ":"JWT","alg":"RS256","x5t":kid,"kid":kid}, like Entra's. Mint adds and
// checks nothing: what you pass is what is signed, so tests can mint expired,
// foreign or malformed-claim tokens. It fails only when c does not marshal.
func (i *Issuer) Mint(c Claims) (string, error) {
	return sign(i.keys.current(), c)
}

// AppToken mints the app-only access token that app gets for audience (an
// App ID URI such as "api://callee", or a client ID), valid from now for
// Options.TokenLifetime: it is Mint(AppClaims(app, audience, v)).
func (i *Issuer) AppToken(app App, audience string, v Version) (string, error) {
	return i.Mint(i.AppClaims(app, audience, v))
}

// AppClaims builds the claims of an Entra app-only access token for app
// calling audience, for tests that change a claim before [Issuer.Mint].
//
// Both versions carry: aud (= audience exactly), iss, iat and nbf (= now),
// exp (= now + Options.TokenLifetime), aio, oid and sub (= app.ObjectID), tid,
// idtyp "app", rh, uti (random), roles (only when app.Roles has values) and
// xms_mirid (only when app.ResourceID is set). Numeric dates are int64.
//
// [V2]: iss = [Issuer.IssuerV2], azp = app.AppID, azpacr "2", ver "2.0".
// [V1] (and any other value): iss = [Issuer.IssuerV1], appid = app.AppID,
// appidacr "2", idp = IssuerV1, ver "1.0".
func (i *Issuer) AppClaims(app App, audience string, v Version) Claims {
	now := i.now()
	oid := app.ObjectID
	if oid == "" {
		oid = app.AppID
	}
	c := Claims{
		"aud":   audience,
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(i.lifetime).Unix(),
		"aio":   randomID(24),
		"idtyp": "app",
		"oid":   oid,
		"rh":    "0." + randomID(30) + ".",
		"sub":   oid,
		"tid":   i.tenantID,
		"uti":   randomID(16),
	}
	if len(app.Roles) > 0 {
		c["roles"] = slices.Clone(app.Roles)
	}
	if app.ResourceID != "" {
		c["xms_mirid"] = app.ResourceID
	}
	if v == V2 {
		c["iss"] = i.issuerV2
		c["azp"] = app.AppID
		c["azpacr"] = "2"
		c["ver"] = "2.0"
	} else {
		c["iss"] = i.issuerV1
		c["appid"] = app.AppID
		c["appidacr"] = "2"
		c["idp"] = i.issuerV1
		c["ver"] = "1.0"
	}
	return c
}

// SigningKey returns the current signing key and its kid, for tests that
// craft tokens by hand (a forged header, another algorithm). Tests only.
func (i *Issuer) SigningKey() (kid string, key *rsa.PrivateKey) {
	k := i.keys.current()
	return k.kid, k.priv
}

func sign(k signingKey, c Claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("authmwtest: marshal claims: %w", err)
	}
	header, err := json.Marshal(struct {
		Typ string `json:"typ"`
		Alg string `json:"alg"`
		X5t string `json:"x5t"`
		Kid string `json:"kid"`
	}{"JWT", "RS256", k.kid, k.kid})
	if err != nil {
		return "", fmt.Errorf("authmwtest: marshal header: %w", err)
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
		return "", fmt.Errorf("authmwtest: sign: %w", err)
	}
	sb.WriteByte('.')
	sb.WriteString(enc.EncodeToString(sig))
	return sb.String(), nil
}

// randomID returns n random bytes, base64url-encoded.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails (Go ≥1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}
