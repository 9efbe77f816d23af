package authmw

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// compiledPolicy is a validated Policy with its defaults filled in and its lists turned
// into sets, so that every check in authorize is O(1) and allocation-free on the
// allowed path. It is immutable once built: a policy change builds a new one.
type compiledPolicy struct {
	// Policy is the validated policy with defaults filled (ClockSkew, AuthorityHost,
	// UnauthenticatedAction) and its slices and maps copied, so later changes by the
	// caller do not leak in.
	Policy Policy

	audiences    set
	applications set
	identities   set
	groups       set
	tenants      set
	roles        set
	boundClaims  []boundClaim

	excludedExact  set
	excludedPrefix []excludedPrefix

	client *clientRule // AllowedClientCIDRs and TrustedProxies; nil: not checked

	// needsRawClaims tells the core to decode every claim into tokenClaims.raw:
	// BoundClaims, ClaimMappings and EasyAuthHeaders read claims beyond the typed ones.
	needsRawClaims bool
}

type set map[string]struct{}

// newSet returns nil (not checked) only for a nil list; an empty list gives an
// empty set, which accepts nobody.
func newSet(items []string) set {
	if items == nil {
		return nil
	}
	s := make(set, len(items))
	for _, it := range items {
		s[it] = struct{}{}
	}
	return s
}

// has reports whether v is in s. An empty v is never a member, so an absent claim
// can never satisfy an allow-list (fail closed even if "" slipped into a list).
func (s set) has(v string) bool {
	if v == "" {
		return false
	}
	_, ok := s[v]
	return ok
}

// boundClaim is one BoundClaims entry: the claim must match one of the patterns.
type boundClaim struct {
	name     string
	patterns []string
}

// excludedPrefix is an ExcludedPaths entry written "/x/*": it matches "/x" and
// anything under "/x/".
type excludedPrefix struct {
	base      string // "/x" ("" for the entry "/*")
	withSlash string // "/x/"
}

// compilePolicy validates p, fills its defaults and precomputes the lookup sets.
func compilePolicy(p Policy) (*compiledPolicy, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = clonePolicy(p)
	p.normalize()
	if p.ClockSkew == 0 {
		p.ClockSkew = DefaultClockSkew
	}
	if p.AuthorityHost == "" {
		p.AuthorityHost = DefaultAuthorityHost
	}
	p.AuthorityHost = strings.TrimRight(p.AuthorityHost, "/")
	if p.UnauthenticatedAction == "" {
		p.UnauthenticatedAction = Return401
	}

	cp := &compiledPolicy{
		Policy:       p,
		audiences:    newSet(p.Audiences),
		applications: newSet(p.AllowedApplications),
		identities:   newSet(p.AllowedIdentities),
		groups:       newSet(p.AllowedGroups),
		tenants:      newSet(p.AllowedTenants),
		roles:        newSet(p.RequiredRoles),
	}
	names := make([]string, 0, len(p.BoundClaims))
	for name := range p.BoundClaims {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic order, so the reported claim is stable
	for _, name := range names {
		cp.boundClaims = append(cp.boundClaims, boundClaim{name: name, patterns: p.BoundClaims[name]})
	}
	for _, e := range p.ExcludedPaths {
		if base, ok := strings.CutSuffix(e, "/*"); ok {
			cp.excludedPrefix = append(cp.excludedPrefix, excludedPrefix{base: base, withSlash: base + "/"})
			continue
		}
		if cp.excludedExact == nil {
			cp.excludedExact = make(set)
		}
		cp.excludedExact[e] = struct{}{}
	}
	cp.needsRawClaims = len(p.BoundClaims) > 0 || len(p.ClaimMappings) > 0 || p.EasyAuthHeaders || p.UserClaim != ""
	cp.client = newClientRule(&p)
	return cp, nil
}

// clonePolicy copies p's slices and maps so the compiled policy owns them.
func clonePolicy(p Policy) Policy {
	p.Issuers = slices.Clone(p.Issuers)
	p.Audiences = slices.Clone(p.Audiences)
	p.AllowedApplications = slices.Clone(p.AllowedApplications)
	p.AllowedIdentities = slices.Clone(p.AllowedIdentities)
	p.AllowedGroups = slices.Clone(p.AllowedGroups)
	p.AllowedTenants = slices.Clone(p.AllowedTenants)
	p.RequiredRoles = slices.Clone(p.RequiredRoles)
	p.ExcludedPaths = slices.Clone(p.ExcludedPaths)
	p.AllowedClientCIDRs = slices.Clone(p.AllowedClientCIDRs)
	p.TrustedProxies = slices.Clone(p.TrustedProxies)
	if p.BoundClaims != nil {
		bc := make(map[string][]string, len(p.BoundClaims))
		for k, v := range p.BoundClaims {
			bc[k] = slices.Clone(v)
		}
		p.BoundClaims = bc
	}
	if p.ClaimMappings != nil {
		cm := make(map[string]string, len(p.ClaimMappings))
		for k, v := range p.ClaimMappings {
			cm[k] = v
		}
		p.ClaimMappings = cm
	}
	return p
}

// audienceAllowed reports whether any of the token's aud values is listed in
// Policy.Audiences (exact, case-sensitive match; nothing is implicitly allowed).
func (cp *compiledPolicy) audienceAllowed(aud []string) bool {
	for _, a := range aud {
		if cp.audiences.has(a) {
			return true
		}
	}
	return false
}

// authorize applies the policy's 403 checks to verified claims, in Easy Auth's
// order and then beyond it: tenant, client application, principals (identities OR
// groups), app-only, required roles, bound claims. It returns nil when the caller is
// allowed, else a forbidden *Error whose Reason names the first failing check.
// Issuer, audience and time checks are the verifier's (401) and are not repeated here.
func (cp *compiledPolicy) authorize(c *tokenClaims) *Error {
	if cp.tenants != nil && !cp.tenants.has(c.TenantID) {
		return forbidden(ReasonTenantNotAllowed, fmt.Sprintf("tid %q is not in AllowedTenants", c.TenantID))
	}
	if cp.applications != nil && !cp.applications.has(c.clientApp()) {
		return forbidden(ReasonApplicationNotAllowed,
			fmt.Sprintf("client application (appid/azp) %q is not in AllowedApplications", c.clientApp()))
	}
	if cp.identities != nil || cp.groups != nil {
		ok := cp.identities.has(c.ObjectID)
		if !ok && cp.groups != nil {
			for _, g := range c.Groups {
				if cp.groups.has(g) {
					ok = true
					break
				}
			}
		}
		if !ok {
			return forbidden(ReasonIdentityNotAllowed,
				fmt.Sprintf("oid %q is not in AllowedIdentities and none of the token's %d groups is in AllowedGroups",
					c.ObjectID, len(c.Groups)))
		}
	}
	if cp.Policy.AppOnly && !c.appOnly() {
		return forbidden(ReasonAppOnlyRequired,
			fmt.Sprintf("token is not app-only (idtyp %q, oid %q, sub %q)", c.IDType, c.ObjectID, c.Subject))
	}
	if cp.roles != nil {
		ok := false
		for _, r := range c.Roles {
			if cp.roles.has(r) {
				ok = true
				break
			}
		}
		if !ok {
			return forbidden(ReasonRoleMissing,
				fmt.Sprintf("token roles %q contain none of RequiredRoles %q", c.Roles, cp.Policy.RequiredRoles))
		}
	}
	for i := range cp.boundClaims {
		bc := &cp.boundClaims[i]
		v, present := c.raw[bc.name]
		if !present {
			return forbidden(ReasonClaimMismatch, fmt.Sprintf("bound claim %q is absent", bc.name))
		}
		if !claimMatches(v, bc.patterns) {
			return forbidden(ReasonClaimMismatch,
				fmt.Sprintf("bound claim %q value %s matches none of %q", bc.name, describeClaim(v), bc.patterns))
		}
	}
	return nil
}

// claimMatches reports whether a decoded JSON claim value matches any pattern.
// Strings, numbers and booleans are compared in their JSON text form ("42", "true");
// a list matches when any of its elements does. Objects and null never match.
func claimMatches(v any, patterns []string) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if _, nested := e.([]any); nested {
				continue // only one level of list, like Vault
			}
			if claimMatches(e, patterns) {
				return true
			}
		}
		return false
	case []string:
		for _, e := range x {
			if anyGlob(patterns, e) {
				return true
			}
		}
		return false
	case string:
		return anyGlob(patterns, x)
	case interface{ String() string }: // json.Number
		return anyGlob(patterns, x.String())
	case bool:
		if x {
			return anyGlob(patterns, "true")
		}
		return anyGlob(patterns, "false")
	case float64:
		var buf [32]byte
		return anyGlob(patterns, strconv.AppendFloat(buf[:0], x, 'f', -1, 64))
	case int64:
		var buf [24]byte
		return anyGlob(patterns, strconv.AppendInt(buf[:0], x, 10))
	case int:
		var buf [24]byte
		return anyGlob(patterns, strconv.AppendInt(buf[:0], int64(x), 10))
	default:
		return false
	}
}

func anyGlob[T string | []byte](patterns []string, s T) bool {
	for _, p := range patterns {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// globMatch reports whether s matches pattern, where '*' matches any run of
// characters (including none) and every other byte matches itself, case-sensitively.
// It runs in O(len(pattern)*len(s)) without allocating.
func globMatch[T string | []byte](pattern string, s T) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pattern) && pattern[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// describeClaim renders a claim value for a log detail, bounded in length.
func describeClaim(v any) string {
	s := fmt.Sprintf("%v", v)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconv.Quote(s)
}

// excluded reports whether a request path is in Policy.ExcludedPaths and so is served
// without authentication. Entries match exactly, or as a prefix when written with a
// trailing "/*" ("/api/public/*" matches "/api/public", "/api/public/" and anything
// under "/api/public/"), case-sensitively.
//
// It fails closed: a path that is not already in canonical form — with "." or ".."
// segments, repeated slashes, a backslash, a '%' (double encoding) or a NUL — is never
// excluded, because the router may resolve it differently than path.Clean would. So
// "/api/healthz/../ExclusiveFunction" and "/api/public/x/../../admin" require a token.
// Callers holding a *url.URL should use excludedURL, which also refuses paths whose
// original encoding differed (for example an encoded slash, %2F).
func (cp *compiledPolicy) excluded(p string) bool {
	if cp.excludedExact == nil && cp.excludedPrefix == nil {
		return false
	}
	if !canonicalPath(p) {
		return false
	}
	if cp.excludedExact.has(p) {
		return true
	}
	for _, e := range cp.excludedPrefix {
		if p == e.base || strings.HasPrefix(p, e.withSlash) {
			return true
		}
	}
	return false
}

// excludedURL is excluded for a request URL. A URL whose path was sent in a
// non-canonical encoding (u.RawPath set, as for an encoded slash "%2F" or an encoded
// unreserved character) is never excluded: routers that match on the raw path could
// otherwise route it to a protected handler while the decoded path looks excluded.
func (cp *compiledPolicy) excludedURL(u *url.URL) bool {
	if u == nil || u.RawPath != "" {
		return false
	}
	return cp.excluded(u.Path)
}

// canonicalPath reports whether p is absolute and equal to path.Clean(p), except
// that one trailing slash is allowed, and holds no byte a router might reinterpret.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	if strings.ContainsAny(p, "\\%\x00") {
		return false
	}
	// Fast check for the common case before path.Clean (which may allocate).
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return true
	}
	c := path.Clean(p)
	return c == p || c+"/" == p
}
