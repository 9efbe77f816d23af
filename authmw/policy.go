package authmw

import "time"

// UnauthenticatedAction says what happens to a request on a protected path that carries
// no valid token. It mirrors Easy Auth's globalValidation.unauthenticatedClientAction.
type UnauthenticatedAction string

const (
	// Return401 answers 401 Unauthorized with a WWW-Authenticate challenge (the default).
	Return401 UnauthenticatedAction = "Return401"
	// Return403 answers 403 Forbidden.
	Return403 UnauthenticatedAction = "Return403"
	// AllowAnonymous lets the request through without a Principal. A token that is sent
	// but invalid is still rejected with 401: an attacker's token never becomes anonymous.
	AllowAnonymous UnauthenticatedAction = "AllowAnonymous"
)

// DefaultAuthorityHost is the Entra ID authority of the public cloud.
const DefaultAuthorityHost = "https://login.microsoftonline.com"

// DefaultClockSkew is the leeway applied to exp and nbf, like Easy Auth's grace period.
const DefaultClockSkew = 5 * time.Minute

// Policy is who may call: it mirrors Easy Auth's authsettingsV2 Entra validation and adds
// the checks Easy Auth lacks. The zero value of each list field means "not checked",
// except Audiences, which is required.
type Policy struct {
	// TenantID, when set, trusts both Entra token versions of that tenant: v1 from
	// {AuthorityHost}/{TenantID}/.well-known/openid-configuration and v2 from
	// {AuthorityHost}/{TenantID}/v2.0/.well-known/openid-configuration. Either TenantID
	// or Issuers (or both) must be set.
	TenantID string
	// AuthorityHost is the Entra authority, default DefaultAuthorityHost. Change it for
	// sovereign clouds or a local identity platform. Plain http is refused unless the
	// host is loopback.
	AuthorityHost string
	// Issuers are explicit OIDC issuer URLs (generic OIDC), each discovered at
	// {issuer}/.well-known/openid-configuration. Plain http is refused unless loopback.
	Issuers []string
	// Audiences are the accepted aud values (required). Nothing is implicit.
	Audiences []string
	// AllowedApplications are accepted client application IDs (appid for v1, azp for v2).
	AllowedApplications []string
	// AllowedIdentities are accepted object IDs (oid). Combined with AllowedGroups by OR.
	AllowedIdentities []string
	// AllowedGroups are accepted group object IDs (groups). Combined with AllowedIdentities by OR.
	AllowedGroups []string
	// AllowedTenants are accepted tenant IDs (tid).
	AllowedTenants []string
	// RequiredRoles: the token's roles must contain at least one of them.
	RequiredRoles []string
	// AppOnly accepts only app-only tokens (idtyp=app, or oid == sub when idtyp is absent).
	AppOnly bool
	// BoundClaims requires each named claim to match one of the listed values; a value
	// may be a glob with '*' (like Vault's JWT auth bound_claims). A list-valued claim
	// matches when any element matches.
	BoundClaims map[string][]string
	// ClaimMappings copies claim values into Principal.Metadata: metadata key -> claim name.
	ClaimMappings map[string]string
	// MaxTokenAge rejects tokens whose iat is older than this; 0 means not checked.
	MaxTokenAge time.Duration
	// ClockSkew is the leeway for exp, nbf and iat; default DefaultClockSkew.
	ClockSkew time.Duration
	// ExcludedPaths are served without authentication: exact paths, or prefixes written
	// with a trailing "/*" (like Easy Auth's globalValidation.excludedPaths).
	ExcludedPaths []string
	// UnauthenticatedAction is what a request without a token gets; default Return401.
	UnauthenticatedAction UnauthenticatedAction
	// EasyAuthHeaders sets X-MS-CLIENT-PRINCIPAL, -ID, -NAME and -IDP on authenticated
	// requests in Easy Auth's exact shape. Incoming X-MS-CLIENT-PRINCIPAL* headers are
	// always stripped, whether or not this is set.
	EasyAuthHeaders bool
	// DisableWWWAuthenticate omits the WWW-Authenticate header from 401 responses
	// (Easy Auth's login.disableWWWAuthenticate).
	DisableWWWAuthenticate bool
}
