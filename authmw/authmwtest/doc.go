// Package authmwtest is an Entra-shaped OpenID Connect issuer for tests: it
// serves discovery documents and signing keys on loopback and mints access
// tokens with any claims, so a service can test its authmw-protected handlers
// without Azure, the way net/http/httptest tests HTTP code.
//
// An [Issuer] serves, on 127.0.0.1 with a random port, what the Microsoft
// identity platform serves on login.microsoftonline.com for one tenant:
//
//   - the v1 and v2 OpenID Connect discovery documents
//     (/{tenant}/.well-known/openid-configuration and
//     /{tenant}/v2.0/.well-known/openid-configuration),
//   - the signing keys (JWKS) at /common/discovery/keys and
//     /{tenant}/discovery/v2.0/keys (plus the /{tenant}/discovery/keys and
//     /common/discovery/v2.0/keys aliases), in Entra's shape (RSA-2048,
//     kid == x5t, x5c, no "alg" member).
//
// Point authmw at it with Policy.TenantID = [Issuer.TenantID] and
// Policy.AuthorityHost = [Issuer.AuthorityURL]; both token versions of the
// tenant are then trusted, as with login.microsoftonline.com.
//
// Like Entra, v1 tokens carry an issuer on a different host string
// ([Issuer.IssuerV1] uses "localhost", the authority uses "127.0.0.1") than the
// discovery document's location, the counterpart of https://sts.windows.net/{tenant}/.
//
// Tokens: [Issuer.Mint] signs any claim set with the current key (RS256, an
// Entra-shaped header); [Issuer.AppToken] and [Issuer.AppClaims] build the
// app-only access token a client-credentials or managed-identity caller gets
// (aud, iss, appid/azp, oid, sub, tid, idtyp=app, roles, iat/nbf/exp, ver).
//
// Faults and counters: [Issuer.SetDown] (discovery and JWKS answer 503),
// [Issuer.RotateKey] / [Issuer.RemoveKey] (key rollover and revocation),
// [Issuer.JWKSRequests] and [Issuer.DiscoveryRequests].
//
// The keys are generated in memory and anyone who can reach the port can read
// the key set: an Issuer must never be trusted outside tests and local runs.
// The package never logs.
package authmwtest
