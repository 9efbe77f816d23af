// Package localidp is a local, Entra-like identity platform on loopback, for
// local development and tests ONLY. Its keys are generated in memory, anyone
// who can reach its ports can obtain tokens, and its issuers are plain HTTP:
// it must never be trusted by a production deployment.
//
// A [Platform] serves, on 127.0.0.1, what the real Microsoft identity platform
// serves on login.microsoftonline.com:
//
//   - the v1 and v2 OpenID Connect discovery documents
//     (/{tenant}/.well-known/openid-configuration and
//     /{tenant}/v2.0/.well-known/openid-configuration),
//   - the signing keys (JWKS) at /common/discovery/keys and
//     /{tenant}/discovery/v2.0/keys (plus the /{tenant}/discovery/keys and
//     /common/discovery/v2.0/keys aliases), with key rotation on demand.
//
// Each [ManagedIdentity] added with [Platform.AddIdentity] gets its own
// loopback endpoint speaking the App Service managed-identity protocol
// (IDENTITY_ENDPOINT / IDENTITY_HEADER, api-version 2019-08-01), so the real
// azidentity.ManagedIdentityCredential runs unmodified against it and receives
// Entra-shaped app-only access tokens (aud, iss, appid/azp, oid, sub, tid,
// idtyp=app, roles, iat/nbf/exp, ver).
//
// Like Entra, v1 tokens carry an issuer on a different host string
// ([Platform.IssuerV1] uses "localhost", the authority uses "127.0.0.1") than
// the discovery document's location, so verifiers must handle the v1 issuer
// the same way they would for https://sts.windows.net/{tenant}/.
//
// Faults for tests: [Platform.SetDown] (discovery and JWKS answer 503),
// [Platform.RotateKey] / [Platform.RemoveKey], and
// [ManagedIdentity.SetFailure] (every token request answers an error status).
// Counters ([Platform.JWKSRequests], [Platform.DiscoveryRequests],
// [ManagedIdentity.Requests], [ManagedIdentity.Issued]) let tests prove
// caching. The package never logs tokens, keys or identity headers.
//
// It is a thin layer over the public test packages, which services importing
// authmw and tokencache use directly: the authority is an
// authmw/authmwtest.Issuer, each managed identity a
// tokencache/tokencachetest.Endpoint whose tokens the issuer mints. localidp
// adds what the local run needs on top: several identities with app-role
// assignments per resource, v2 audiences mapped to client IDs, and logs.
package localidp
