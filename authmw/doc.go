// Package authmw is bearer-token validation middleware for services called with
// Microsoft Entra ID (or any OIDC issuer's) access tokens. It mirrors the checks of
// App Service "Easy Auth" (issuer, audiences, allowed client applications, allowed
// identities, groups, tenants) and adds app roles, app-only enforcement, bound claims,
// a maximum token age, an audit log and a hot-reloadable policy.
//
// One core, [Middleware.Verify], turns a raw token into a [Principal] or an [*Error];
// thin adapters make it a net/http middleware ([Middleware.Handler]) or an echo
// middleware (package authmw/echomw, over [Middleware.Check]), so authmw itself
// does not depend on echo. Package authmw/authmwtest is an Entra-shaped issuer
// for testing protected handlers.
//
// # Issuers and keys
//
// With Policy.TenantID, both Entra token versions of the tenant are trusted: v1
// from {AuthorityHost}/{tid}/.well-known/openid-configuration and v2 from
// {AuthorityHost}/{tid}/v2.0/.well-known/openid-configuration, each with exactly
// the issuer and jwks_uri its own document declares. With
// Policy.Issuers, each issuer is discovered at {issuer}/.well-known/openid-configuration
// and must declare itself exactly. A token's iss selects the key set; an iss that
// matches no trusted issuer is rejected without any network request. Discovery and
// key loading run in the background ([New] never blocks on the network): until an
// issuer's keys are loaded its tokens are answered 503 with Retry-After. Keys come
// only from the issuers' JWKS (jku, x5u, x5c and embedded jwk headers are ignored);
// an unknown kid causes at most one JWKS refetch per Config.UnknownKeyInterval.
// Every discovery and JWKS request is https (plain http only to loopback) on
// every hop, follows same-origin redirects only (whatever Config.HTTPClient
// allows) and reads at most 1 MiB. A cached verification is served only while
// the exact key that verified it is published: a key replaced under the same kid
// counts as removed. [Middleware.IssuerErrors] reports each issuer's last failure,
// classed [ErrSourceTransient] or [ErrSourcePermanent].
//
// # Responses
//
//   - 401 (missing or invalid token): WWW-Authenticate: Bearer realm="…"[,
//     error="invalid_token"][, authorization_uri="…", resource_id="…"]; the error
//     parameter only when a token (any Authorization header) was sent; the Entra
//     hints in TenantID mode; the header is omitted with Policy.DisableWWWAuthenticate.
//   - 403 (valid token, caller not allowed): WWW-Authenticate: Bearer realm="…",
//     error="insufficient_scope" (no error parameter for anonymous_forbidden).
//   - 503 (keys not loaded yet): Retry-After in seconds.
//
// Every denial has an application/problem+json body (RFC 9457) with a stable
// "reason" code ([Reason]) and a generic detail; it never contains any part of
// the token or its claims. The server-side detail goes to the audit log.
//
// # Verified-token cache
//
// A token that passed every check is remembered (bounded by Config.CacheSize) and
// accepted again without another signature check until its exp (plus skew), as
// long as its signing key is still published. [Middleware.SetPolicy] empties the
// cache, and a key that leaves the issuer's JWKS drops its tokens from it.
package authmw
