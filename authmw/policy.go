package authmw

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

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

// DefaultMaxTokenLifetime is the default Policy.MaxTokenLifetime: it admits
// Entra access tokens, which live at most about 28 hours.
const DefaultMaxTokenLifetime = 30 * time.Hour

// Bounds of Policy.MaxTokenLifetime.
const (
	minTokenLifetime = time.Minute
	maxTokenLifetime = 720 * time.Hour
)

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
	// AllowedApplications are accepted client application IDs: for Entra issuers
	// (TenantID) appid in v1 tokens and azp in v2 tokens; for generic issuers the
	// claim named by ApplicationClaim. See docs/security.md, "Which claim decides what".
	AllowedApplications []string
	// AllowedIdentities are accepted identities: oid for Entra issuers, sub for
	// generic issuers. Combined with AllowedGroups by OR.
	AllowedIdentities []string
	// AllowedGroups are accepted group object IDs (groups). Combined with AllowedIdentities by OR.
	AllowedGroups []string
	// AllowedTenants are accepted tenant IDs (tid).
	AllowedTenants []string
	// RequiredRoles: the token's roles must contain at least one of them.
	RequiredRoles []string
	// AppOnly accepts only app-only tokens. Entra: idtyp=app, or oid == sub when
	// idtyp is absent; generic: sub equals the application claim. Never with scp.
	AppOnly bool
	// BoundClaims requires each named claim to match one of the listed values; a value
	// may be a glob (like Vault's JWT auth bound_claims) where '*' matches within one
	// path segment (never '/') and '**' matches across segments. Strings compare by
	// value, numbers and booleans by their exact JSON text ("2" never matches 2.0).
	// A list-valued claim matches when any element matches.
	BoundClaims map[string][]string
	// ClaimMappings copies claim values into Principal.Metadata: metadata key -> claim name.
	ClaimMappings map[string]string
	// ApplicationClaim names the claim that holds the calling application for
	// generic issuers (Policy.Issuers): "azp" (default) or "client_id" (RFC 9068).
	// Only that claim is read, never a fallback. Entra issuers (TenantID) pick
	// appid or azp by token version instead.
	ApplicationClaim string
	// MaxTokenLifetime refuses tokens whose exp - iat exceeds it (and tokens
	// without iat); default DefaultMaxTokenLifetime, range 1m to 720h.
	MaxTokenLifetime time.Duration
	// MaxTokenAge rejects tokens whose iat is older than this; 0 means not checked.
	MaxTokenAge time.Duration
	// ClockSkew is the leeway for exp, nbf and iat; default DefaultClockSkew.
	ClockSkew time.Duration
	// ExcludedPaths are served without authentication: exact paths, or prefixes written
	// with a trailing "/*" (like Easy Auth's globalValidation.excludedPaths), matched
	// case-sensitively. "/x/*" matches "/x", "/x/" and everything under "/x/". A request
	// path that is not canonical (dot segments, "//", a backslash, '%', or a non-canonical
	// encoding such as "%2F") is never excluded, so traversal cannot reach a protected route.
	ExcludedPaths []string
	// UnauthenticatedAction is what a request without a token gets; default Return401.
	// Easy Auth's RedirectToLoginPage is not supported (this protects APIs).
	UnauthenticatedAction UnauthenticatedAction
	// EasyAuthHeaders sets X-MS-CLIENT-PRINCIPAL, -ID, -NAME and -IDP on authenticated
	// requests in Easy Auth's exact shape. Incoming X-MS-CLIENT-PRINCIPAL* headers are
	// always stripped, whether or not this is set.
	EasyAuthHeaders bool
	// DisableWWWAuthenticate omits the WWW-Authenticate header from 401 responses
	// (Easy Auth's login.disableWWWAuthenticate).
	DisableWWWAuthenticate bool
}

// ErrInvalidPolicy is wrapped by every problem Policy.Validate, ConfigFromEnv,
// ParseAuthSettingsV2 and LoadPolicyFile report, so callers can test for it with errors.Is.
var ErrInvalidPolicy = errors.New("authmw: invalid policy")

// policyProblem is one problem found in a policy: the Policy field it concerns and
// a message that completes a sentence starting with the setting's name, such as
// "is required: set it to ...". ConfigFromEnv names the environment variable instead.
type policyProblem struct {
	field string // Policy field name, e.g. "Audiences"
	alt   string // another field that would also satisfy the requirement, if any
	msg   string
}

// err renders the problem with name for the field and altName for alt.
func (p policyProblem) err(name, altName string) error {
	if p.alt != "" {
		name += " (or " + altName + ")"
	}
	return fmt.Errorf("%w: %s %s", ErrInvalidPolicy, name, p.msg)
}

// Validate reports every problem of p together (joined with errors.Join), each naming
// the Policy field and saying what to do; nil when p can be used. Zero durations,
// AuthorityHost and UnauthenticatedAction are valid: they mean the defaults. It checks:
// at least one audience; TenantID or Issuers set; TenantID a tenant GUID or domain;
// issuer and authority URLs absolute, https (plain http only on a loopback host), with
// no query, fragment or credentials; a known UnauthenticatedAction; no negative
// durations; no empty list entries; excluded paths that start with "/", are clean and
// use "*" only as a trailing "/*"; bound claims and claim mappings with names and values.
func (p Policy) Validate() error {
	probs := p.problems()
	if len(probs) == 0 {
		return nil
	}
	errs := make([]error, len(probs))
	for i, pr := range probs {
		errs[i] = pr.err("Policy."+pr.field, "Policy."+pr.alt)
	}
	return errors.Join(errs...)
}

// tenantIDPattern accepts a tenant GUID or a verified domain (contoso.onmicrosoft.com).
var tenantIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$`)

func (p Policy) problems() []policyProblem {
	var probs []policyProblem
	add := func(field, format string, args ...any) {
		probs = append(probs, policyProblem{field: field, msg: fmt.Sprintf(format, args...)})
	}

	if len(p.Audiences) == 0 {
		add("Audiences", "is required: set it to the callee's Application ID URI or client ID")
	}
	if p.TenantID == "" && len(p.Issuers) == 0 {
		probs = append(probs, policyProblem{field: "TenantID", alt: "Issuers",
			msg: "is required: set the tenant ID (GUID) of the Entra tenant that issues the tokens, or an OIDC issuer URL"})
	}
	if p.TenantID != "" {
		switch strings.ToLower(p.TenantID) {
		case "common", "organizations", "consumers":
			add("TenantID", "%q is a multi-tenant authority, which cannot pin an issuer: set the tenant ID (GUID) and list accepted tenants in AllowedTenants", p.TenantID)
		default:
			if !tenantIDPattern.MatchString(p.TenantID) {
				add("TenantID", "%q is not a tenant ID: set it to the tenant GUID or its domain (no slashes or URL)", p.TenantID)
			}
		}
	}
	if p.AuthorityHost != "" {
		if msg := checkIssuerURL(p.AuthorityHost); msg != "" {
			add("AuthorityHost", "%q %s", p.AuthorityHost, msg)
		}
	}
	for i, iss := range p.Issuers {
		if msg := checkIssuerURL(iss); msg != "" {
			add("Issuers", "entry %d %q %s", i, iss, msg)
		}
	}
	lists := []struct {
		field string
		items []string
	}{
		{"Issuers", p.Issuers},
		{"Audiences", p.Audiences},
		{"AllowedApplications", p.AllowedApplications},
		{"AllowedIdentities", p.AllowedIdentities},
		{"AllowedGroups", p.AllowedGroups},
		{"AllowedTenants", p.AllowedTenants},
		{"RequiredRoles", p.RequiredRoles},
	}
	for _, l := range lists {
		for i, it := range l.items {
			if strings.TrimSpace(it) == "" {
				add(l.field, "entry %d is empty: remove it (an empty entry would match a token that lacks the claim)", i)
			}
		}
	}
	switch p.UnauthenticatedAction {
	case "", Return401, Return403, AllowAnonymous:
	case "RedirectToLoginPage":
		add("UnauthenticatedAction", "RedirectToLoginPage is not supported for APIs: use Return401")
	default:
		add("UnauthenticatedAction", "%q is not valid: use Return401 (default), Return403 or AllowAnonymous", string(p.UnauthenticatedAction))
	}
	if p.ClockSkew < 0 {
		add("ClockSkew", "is negative (%s): use a duration >= 0 (0 means the default, %s)", p.ClockSkew, DefaultClockSkew)
	}
	switch p.ApplicationClaim {
	case "", "azp", "client_id":
	default:
		add("ApplicationClaim", "%q is not supported: use \"azp\" (default) or \"client_id\" (RFC 9068)", p.ApplicationClaim)
	}
	if p.MaxTokenLifetime != 0 && (p.MaxTokenLifetime < minTokenLifetime || p.MaxTokenLifetime > maxTokenLifetime) {
		add("MaxTokenLifetime", "is %s: use a duration from %s to %s (0 means the default, %s)", p.MaxTokenLifetime, minTokenLifetime, maxTokenLifetime, DefaultMaxTokenLifetime)
	}
	if p.MaxTokenAge < 0 {
		add("MaxTokenAge", "is negative (%s): use a duration > 0, or 0 to not check token age", p.MaxTokenAge)
	}
	for i, e := range p.ExcludedPaths {
		if msg := checkExcludedPath(e); msg != "" {
			add("ExcludedPaths", "entry %d %q %s", i, e, msg)
		}
	}
	for name, pats := range p.BoundClaims {
		if strings.TrimSpace(name) == "" {
			add("BoundClaims", "has an empty claim name: name the claim to check")
			continue
		}
		if len(pats) == 0 {
			add("BoundClaims", "claim %q has no values: list at least one accepted value or glob", name)
		}
		for _, pat := range pats {
			if pat == "" {
				add("BoundClaims", "claim %q has an empty value: use \"*\" to only require the claim to be present", name)
			}
			if strings.ContainsFunc(pat, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				add("BoundClaims", "claim %q value %q contains control characters", name, pat)
			}
		}
	}
	for key, claim := range p.ClaimMappings {
		if strings.TrimSpace(key) == "" || strings.TrimSpace(claim) == "" {
			add("ClaimMappings", "entry %q -> %q needs both a metadata key and a claim name", key, claim)
		}
	}
	return probs
}

// checkIssuerURL returns "" when s is usable as an issuer or authority URL, else
// what is wrong with it, phrased to follow the URL in a message.
func checkIssuerURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "is not an absolute URL: use e.g. https://login.microsoftonline.com"
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "must not carry credentials, a query or a fragment"
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return ""
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return ""
		}
		return "uses plain http on a non-loopback host: use https (plain http is only allowed for 127.0.0.0/8, ::1 and localhost)"
	default:
		return "must be an https URL"
	}
}

// isLoopbackHost reports whether host (without port) is localhost, 127.0.0.0/8 or ::1.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkExcludedPath returns "" when e is a valid ExcludedPaths entry, else the problem.
func checkExcludedPath(e string) string {
	if !strings.HasPrefix(e, "/") {
		return "must start with \"/\""
	}
	base, prefix := strings.CutSuffix(e, "/*")
	if strings.Contains(base, "*") {
		return "may use \"*\" only as a trailing \"/*\" (prefix match)"
	}
	if strings.ContainsAny(e, "?#%\\\x00") {
		return "must be a plain decoded path, without query, fragment, percent-encoding or backslash"
	}
	if prefix && base == "" {
		return "" // "/*": every path
	}
	c := path.Clean(base)
	switch {
	case prefix && c != base:
		return fmt.Sprintf("is not a clean path: write %q", c+"/*")
	case !prefix && c != base && c+"/" != base:
		return fmt.Sprintf("is not a clean path: write %q", c)
	}
	return ""
}
