// Package authmw is bearer-token validation middleware for services called with
// Microsoft Entra ID (or any OIDC issuer's) access tokens. It mirrors the checks of
// App Service "Easy Auth" (issuer, audiences, allowed client applications, allowed
// identities, groups, tenants) and adds app roles, app-only enforcement, bound claims,
// a maximum token age, an audit log and a hot-reloadable policy.
//
// One core, [Middleware.Verify], turns a raw token into a [Principal] or an [*Error];
// thin adapters make it a net/http middleware ([Middleware.Handler]) or an echo
// middleware ([Middleware.Echo]).
package authmw
