package localidp

import (
	"crypto/rsa"
	"time"

	"github.com/f2fauth/f2fauth/authmw/authmwtest"
)

// Claims is a JWT claim set. Values must be JSON-marshalable; numeric dates
// (iat, nbf, exp) are Unix seconds.
type Claims = authmwtest.Claims

// SigningKey returns the current signing key and its kid, for tests that
// craft tokens by hand (for example with a forged header). Never use it
// outside tests.
func (p *Platform) SigningKey() (kid string, key *rsa.PrivateKey) {
	return p.iss.SigningKey()
}

// Mint signs c as a compact JWS with the current key. The header is
// {"alg":"RS256","typ":"JWT","x5t":kid,"kid":kid}, like Entra's. Mint does not
// add or check any claim: what you pass is what is signed.
func (p *Platform) Mint(c Claims) (string, error) {
	return p.iss.Mint(c)
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
	v, aud := authmwtest.V1, resource
	if version == 2 {
		v = authmwtest.V2
		if appID, ok := p.resourceApps[resource]; ok {
			aud = appID
		}
	}
	app := authmwtest.App{AppID: id.ClientID, ObjectID: id.ObjectID, Roles: id.rolesFor(resource), ResourceID: id.ResourceID}
	c := p.iss.AppClaims(app, aud, v)
	if lifetime != p.lifetime {
		c["exp"] = time.Unix(c["iat"].(int64), 0).Add(lifetime).Unix()
	}
	return c
}
