package authmw

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/f2fauth/f2fauth/internal/netrule"
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
// the checks Easy Auth lacks. A nil list means "not checked"; a non-nil empty list
// ([]string{}, an empty JSON array in the policy file, or a variable set to "," ) means
// "nobody": it never switches a check off. Audiences is required, and at least one
// authorization rule (AllowedApplications, AllowedIdentities, AllowedGroups,
// RequiredRoles or BoundClaims) is required unless InsecureAllowAnyCaller is set.
type Policy struct {
	// TenantID, when set, trusts both Entra token versions of that tenant: v1 from
	// {AuthorityHost}/{TenantID}/.well-known/openid-configuration and v2 from
	// {AuthorityHost}/{TenantID}/v2.0/.well-known/openid-configuration. Either TenantID
	// or Issuers (or both) must be set. It must be the tenant GUID (compared
	// case-insensitively); a domain name is refused.
	TenantID string
	// AuthorityHost is the Entra authority, default DefaultAuthorityHost. Change it for
	// sovereign clouds or a local identity platform. Plain http is refused unless the
	// host is loopback.
	AuthorityHost string
	// Issuers are explicit OIDC issuer URLs (generic OIDC), each discovered at
	// {issuer}/.well-known/openid-configuration. Plain http is refused unless loopback.
	// An issuer that TenantID trusts too keeps the Entra claim rules.
	Issuers []string
	// Audiences are the accepted aud values (required). Nothing is implicit.
	Audiences []string
	// AllowedApplications are accepted client application IDs: for Entra issuers
	// (TenantID) appid in v1 tokens and azp in v2 tokens; for generic issuers the
	// claim named by ApplicationClaim. See docs/security.md, "Which claim decides what".
	// nil: not checked; empty and non-nil: no application is accepted.
	AllowedApplications []string
	// AllowedIdentities are accepted identities: oid for Entra issuers, sub for
	// generic issuers. Combined with AllowedGroups by OR.
	// nil: not checked; empty and non-nil: no identity is accepted.
	AllowedIdentities []string
	// AllowedGroups are accepted group object IDs (groups). Combined with AllowedIdentities by OR.
	// nil: not checked; empty and non-nil: no group is accepted.
	AllowedGroups []string
	// AllowedTenants are accepted tenant IDs (tid), compared case-insensitively.
	// nil: not checked; empty and non-nil: no tenant is accepted.
	AllowedTenants []string
	// RequiredRoles: the token's roles must contain at least one of them.
	// nil: not checked; empty and non-nil: no token is accepted.
	RequiredRoles []string
	// InsecureAllowAnyCaller accepts a policy without any authorization rule: every
	// caller holding a valid token for one of the Audiences then passes, whichever
	// application or identity it is. Default false: such a policy is refused.
	InsecureAllowAnyCaller bool
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
	// MaxTokenAge rejects tokens whose iat is older than this; 0 means not checked,
	// otherwise 1m to 24h.
	MaxTokenAge time.Duration
	// ClockSkew is the leeway for exp, nbf and iat; 0 means DefaultClockSkew,
	// otherwise 1s to 10m.
	ClockSkew time.Duration
	// ExcludedPaths are served without authentication: exact paths, or prefixes written
	// with a trailing "/*" (like Easy Auth's globalValidation.excludedPaths), matched
	// case-sensitively. "/x/*" matches "/x", "/x/" and everything under "/x/". A request
	// path that is not canonical (dot segments, "//", a backslash, '%', ';' path
	// parameters, a byte outside ASCII, or a non-canonical encoding such as "%2F") is
	// never excluded, so traversal (also "/x/..;/admin", which servlet containers
	// resolve, or an overlong "%C0%AE%C0%AE") cannot reach a protected route. Entries
	// are ASCII.
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
	// AllowedClientCIDRs, when non-nil, admits only requests whose client address is in
	// one of these CIDR blocks ("10.0.0.0/8", "2001:db8::/32"; a bare address is that one
	// address), like Vault's bound_cidrs. The client address is the connection's peer
	// address (http.Request.RemoteAddr), or, when the peer is in TrustedProxies, the
	// address X-Forwarded-For names (see TrustedProxies). Any other request on a
	// protected path is answered 403 client_address_not_allowed before its token is
	// read; ExcludedPaths are not checked. It is applied by Handler and Check (Verify
	// has no request). nil: not checked; empty and non-nil: no address is accepted.
	AllowedClientCIDRs []string
	// TrustedProxies are the CIDR blocks of the reverse proxies in front of the service.
	// Only when the connection comes from one of them is X-Forwarded-For read: its entries
	// are walked from the right, skipping trusted proxies, and the first other address is
	// the client (all trusted: the leftmost). A trusted proxy that sends no usable
	// X-Forwarded-For leaves the client unknown, which AllowedClientCIDRs refuses.
	// Default none: X-Forwarded-For is never believed.
	TrustedProxies []string
	// UserClaim names the claim whose string value becomes Principal.Name, like Vault's
	// user_claim; a token without it, or with a non-string or empty value, is refused
	// 403 claim_mismatch. "" (the default): Principal.Name is not set.
	UserClaim string
}

// ErrInvalidPolicy is wrapped by every problem Policy.Validate, ConfigFromEnv and
// LoadPolicyFile report, so callers can test for it with errors.Is.
// The problems' messages do not repeat its text.
var ErrInvalidPolicy = errors.New("authmw: invalid policy")

// policyError is one problem with a policy: its message, wrapping ErrInvalidPolicy.
type policyError string

func (e policyError) Error() string { return string(e) }
func (e policyError) Unwrap() error { return ErrInvalidPolicy }

// invalidPolicy formats a policyError.
func invalidPolicy(format string, args ...any) error {
	return policyError(fmt.Sprintf(format, args...))
}

// policyProblem is one problem found in a policy: the Policy field it concerns and
// a message that completes a sentence starting with the setting's name, such as
// "is required: set it to ...". In msg, "{Field}" stands for another setting's name.
// Validate names Policy fields; ConfigFromEnv names the environment variables.
type policyProblem struct {
	field  string // Policy field name, e.g. "Audiences"; "" when msg is a whole sentence
	alt    string // another field that would also satisfy the requirement, if any
	format string
	args   []any
}

// fieldPlaceholder matches "{Field}" in a policyProblem message.
var fieldPlaceholder = regexp.MustCompile(`\{[A-Za-z]+\}`)

// err renders the problem, naming fields with name (short names in the message body).
func (p policyProblem) err(name, short func(field string) string) error {
	format := fieldPlaceholder.ReplaceAllStringFunc(p.format, func(f string) string {
		return strings.ReplaceAll(short(f[1:len(f)-1]), "%", "%%")
	})
	msg := fmt.Sprintf(format, p.args...)
	if p.field == "" {
		return policyError(msg)
	}
	n := name(p.field)
	if p.alt != "" {
		n += " (or " + name(p.alt) + ")"
	}
	return policyError(n + " " + msg)
}

// Validate reports every problem of p together (joined with errors.Join), each naming
// the Policy field and saying what to do; nil when p can be used. Zero durations,
// AuthorityHost and UnauthenticatedAction are valid: they mean the defaults. It checks:
// at least one audience; TenantID or Issuers set; TenantID a tenant GUID; at least one
// authorization rule unless InsecureAllowAnyCaller; issuer and authority URLs absolute,
// https (plain http only on a loopback host), with no query, fragment or credentials; a
// known UnauthenticatedAction; durations within their ranges; no empty list entries;
// excluded paths that start with "/", are clean and use "*" only as a trailing "/*";
// bound claims and claim mappings with names and values.
func (p Policy) Validate() error {
	name := func(f string) string { return "Policy." + f }
	return errors.Join(p.problemErrs(name, name)...)
}

// problemErrs renders p's problems, naming fields with name (short in message bodies).
func (p Policy) problemErrs(name, short func(field string) string) []error {
	var errs []error
	for _, pr := range p.problems() {
		errs = append(errs, pr.err(name, short))
	}
	return errs
}

// durationRange is the accepted range of a duration setting; 0 always means zero.
type durationRange struct {
	min, max time.Duration
	zero     string // what 0 means
}

// durationRanges bound every duration setting (Policy and Config fields) so that
// none can switch off the guarantee it exists for: a skew or token age of years, a
// refresh that never happens, or a rate limit of a nanosecond.
var durationRanges = map[string]durationRange{
	"ClockSkew":          {time.Second, 10 * time.Minute, "the default, 5m"},
	"MaxTokenAge":        {time.Minute, 24 * time.Hour, "not checked"},
	"MaxTokenLifetime":   {minTokenLifetime, maxTokenLifetime, "the default, 30h"},
	"PolicyFileInterval": {time.Second, 5 * time.Minute, "the default, 5s"},
	"KeyRefreshInterval": {5 * time.Minute, 24 * time.Hour, "the default, 12h"},
	"UnknownKeyInterval": {time.Second, 10 * time.Minute, "the default, 30s"},
}

// checkDuration returns "" when d is in field's range, else the problem.
func checkDuration(field string, d time.Duration) string {
	r := durationRanges[field]
	if d == 0 || (d >= r.min && d <= r.max) {
		return ""
	}
	return fmt.Sprintf("is %s, out of range: use 0 (%s) or a duration from %s to %s",
		shortDuration(d), r.zero, shortDuration(r.min), shortDuration(r.max))
}

// shortDuration formats d without trailing zero units ("10m", not "10m0s").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// normalize lower-cases the tenant GUIDs, which Entra compares case-insensitively.
// compilePolicy calls it on its own copy.
func (p *Policy) normalize() {
	p.TenantID = strings.ToLower(p.TenantID)
	for i, t := range p.AllowedTenants {
		p.AllowedTenants[i] = strings.ToLower(t)
	}
}

// hasAuthorizationRule reports whether p limits who may call beyond holding a token
// for the audience. A present but empty list is a rule: it accepts nobody.
func (p *Policy) hasAuthorizationRule() bool {
	return p.AllowedApplications != nil || p.AllowedIdentities != nil || p.AllowedGroups != nil ||
		p.RequiredRoles != nil || len(p.BoundClaims) > 0
}

// tenantIDPattern accepts a tenant GUID or a domain (contoso.onmicrosoft.com): the
// shape of an Entra issuer's tenant segment. Only a GUID is a valid TenantID.
var tenantIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$`)

// tenantGUIDPattern matches a GUID in either case.
var tenantGUIDPattern = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

func (p Policy) problems() []policyProblem {
	var probs []policyProblem
	add := func(field, format string, args ...any) {
		probs = append(probs, policyProblem{field: field, format: format, args: args})
	}

	if len(p.Audiences) == 0 {
		add("Audiences", "is required: set it to the callee's Application ID URI or client ID")
	}
	if p.TenantID == "" && len(p.Issuers) == 0 {
		probs = append(probs, policyProblem{field: "TenantID", alt: "Issuers",
			format: "is required: set the tenant ID (GUID) of the Entra tenant that issues the tokens, or an OIDC issuer URL"})
	}
	if p.TenantID != "" {
		switch strings.ToLower(p.TenantID) {
		case "common", "organizations", "consumers":
			add("TenantID", "%q is a multi-tenant authority, which cannot pin an issuer: set the tenant ID (GUID) and list accepted tenants in {AllowedTenants}", p.TenantID)
		default:
			if !tenantGUIDPattern.MatchString(p.TenantID) {
				add("TenantID", "%q is not a tenant GUID: set it to the Directory (tenant) ID, e.g. 72f988bf-86f1-41af-91ab-2d7cd011db47 (a domain name is not resolved; tokens carry the GUID)", p.TenantID)
			}
		}
	}
	if !p.hasAuthorizationRule() && !p.InsecureAllowAnyCaller {
		probs = append(probs, policyProblem{format: "no authorization rule is set, so every caller with a valid token for the audience would pass: " +
			"list the allowed callers in {AllowedApplications}, {AllowedIdentities}, {AllowedGroups}, {RequiredRoles} or {BoundClaims}, " +
			"or, if any caller is really meant to pass, set {InsecureAllowAnyCaller} to true"})
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
		{"AllowedClientCIDRs", p.AllowedClientCIDRs},
		{"TrustedProxies", p.TrustedProxies},
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
	for _, f := range []struct {
		field string
		d     time.Duration
	}{{"ClockSkew", p.ClockSkew}, {"MaxTokenAge", p.MaxTokenAge}, {"MaxTokenLifetime", p.MaxTokenLifetime}} {
		if msg := checkDuration(f.field, f.d); msg != "" {
			add(f.field, "%s", msg)
		}
	}
	switch p.ApplicationClaim {
	case "", "azp", "client_id":
	default:
		add("ApplicationClaim", "%q is not supported: use \"azp\" (default) or \"client_id\" (RFC 9068)", p.ApplicationClaim)
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
	probs = append(probs, clientProblems(p)...)
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
	if err := netrule.CheckURL(u); err != nil {
		if strings.EqualFold(u.Scheme, "http") {
			return "uses plain http on a non-loopback host: use https (plain http is only allowed for 127.0.0.0/8, ::1 and localhost)"
		}
		return "must be an https URL"
	}
	return ""
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
	if strings.ContainsAny(e, "?#%;\\\x00") {
		return "must be a plain decoded path, without query, fragment, percent-encoding, ';' path parameters or backslash"
	}
	if strings.IndexFunc(e, func(r rune) bool { return r >= 0x80 }) >= 0 {
		return "must be ASCII: request paths outside ASCII are never excluded (an upstream may read a fullwidth or overlong form as '.' or '/')"
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
	case !canonicalPath(base):
		return "has a control character or a segment of only dots and spaces: no request path would match it"
	}
	return ""
}
