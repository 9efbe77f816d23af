package authmw

import (
	"bytes"
	"fmt"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"net/url"
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
	patterns []glob
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
	if p.MaxTokenLifetime == 0 {
		p.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if p.ApplicationClaim == "" {
		p.ApplicationClaim = "azp"
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
		bc := boundClaim{name: name}
		for _, pat := range p.BoundClaims[name] {
			bc.patterns = append(bc.patterns, compileGlob(pat))
		}
		cp.boundClaims = append(cp.boundClaims, bc)
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
	if cp.tenants != nil && !cp.tenants.has(strings.ToLower(c.TenantID)) { // GUIDs: any case
		return forbidden(ReasonTenantNotAllowed, fmt.Sprintf("tid %q is not in AllowedTenants", c.TenantID))
	}
	if app := c.application(cp.Policy.ApplicationClaim); cp.applications != nil && !cp.applications.has(app) {
		return forbidden(ReasonApplicationNotAllowed,
			fmt.Sprintf("client application %q is not in AllowedApplications", truncate(app)))
	}
	if cp.identities != nil || cp.groups != nil {
		ok := cp.identities.has(c.identity())
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
				fmt.Sprintf("identity %q is not in AllowedIdentities and none of the token's %d groups is in AllowedGroups",
					truncate(c.identity()), len(c.Groups)))
		}
	}
	if cp.Policy.AppOnly && !c.appOnly(cp.Policy.ApplicationClaim) {
		return forbidden(ReasonAppOnlyRequired,
			fmt.Sprintf("token is not app-only (idtyp %q, scp present %t)", truncate(c.IDType), c.Scope != nil))
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
				fmt.Sprintf("token's %d roles contain none of RequiredRoles %q", len(c.Roles), cp.Policy.RequiredRoles))
		}
	}
	for i := range cp.boundClaims {
		bc := &cp.boundClaims[i]
		v, present := c.claim(bc.name)
		if !present {
			return forbidden(ReasonClaimMismatch, fmt.Sprintf("bound claim %q is absent", bc.name))
		}
		if !claimMatches(v, bc.patterns, true) {
			return forbidden(ReasonClaimMismatch,
				fmt.Sprintf("bound claim %q value %s matches none of %q", bc.name, describeClaim(v), cp.Policy.BoundClaims[bc.name]))
		}
	}
	return nil
}

// claimMatches reports whether a claim's JSON text matches any pattern.
// Strings compare by their decoded value; numbers, true and false by their
// exact JSON text ("2.0" never matches "2", 9007199254740993 never matches
// 9007199254740992); a list matches when any of its elements does (one level,
// like Vault). Objects and null never match.
func claimMatches(v jsontext.Value, patterns []glob, top bool) bool {
	switch v.Kind() {
	case '"':
		if len(v) >= 2 && !bytes.ContainsAny(v, `\`) {
			return anyGlob(patterns, string(v[1:len(v)-1])) // no escapes: the text is the value
		}
		var s string
		return json.Unmarshal(v, &s) == nil && anyGlob(patterns, s)
	case '0', 't', 'f':
		return anyGlob(patterns, strings.TrimSpace(string(v)))
	case '[':
		if !top {
			return false
		}
		var items []jsontext.Value
		if json.Unmarshal(v, &items) != nil {
			return false
		}
		for _, e := range items {
			if claimMatches(e, patterns, false) {
				return true
			}
		}
	}
	return false
}

func anyGlob(patterns []glob, s string) bool {
	for i := range patterns {
		if patterns[i].match(s) {
			return true
		}
	}
	return false
}

// glob is a compiled BoundClaims pattern, matched case-sensitively: "*"
// matches any run of characters other than '/' (within one path segment),
// "**" any run including '/'; every other byte matches itself. So
// "/subscriptions/*/resourcegroups/rg-prod/*" cannot match a resource group
// rg-dev whose ID has "rg-prod" further on.
type glob []int16 // a literal byte, or globStar / globDeep

const (
	globStar int16 = -1
	globDeep int16 = -2
)

func compileGlob(pattern string) glob {
	g := make(glob, 0, len(pattern))
	for i := 0; i < len(pattern); i++ {
		switch {
		case pattern[i] != '*':
			g = append(g, int16(pattern[i]))
		case i+1 < len(pattern) && pattern[i+1] == '*':
			for i+1 < len(pattern) && pattern[i+1] == '*' {
				i++
			}
			g = append(g, globDeep)
		default:
			g = append(g, globStar)
		}
	}
	return g
}

// match runs g as an NFA over s: O(len(g)*len(s)) steps whatever the input,
// without allocating for patterns of up to 63 elements.
func (g glob) match(s string) bool {
	if len(g) >= 64 {
		return g.matchSlow(s)
	}
	closure := func(st uint64) uint64 { // a star may match nothing
		for i, t := range g {
			if st&(1<<i) != 0 && t < 0 {
				st |= 1 << (i + 1)
			}
		}
		return st
	}
	cur := closure(1)
	for j := 0; j < len(s) && cur != 0; j++ {
		c := int16(s[j])
		var next uint64
		for i, t := range g {
			if cur&(1<<i) == 0 {
				continue
			}
			if t == globDeep || (t == globStar && c != '/') {
				next |= 1 << i
			} else if t == c {
				next |= 1 << (i + 1)
			}
		}
		cur = closure(next)
	}
	return cur&(1<<len(g)) != 0
}

// matchSlow is match for long patterns, with the state set in a slice.
func (g glob) matchSlow(s string) bool {
	cur, next := make([]bool, len(g)+1), make([]bool, len(g)+1)
	closure := func(st []bool) {
		for i, t := range g {
			if st[i] && t < 0 {
				st[i+1] = true
			}
		}
	}
	cur[0] = true
	closure(cur)
	for j := 0; j < len(s); j++ {
		c := int16(s[j])
		clear(next)
		for i, t := range g {
			if !cur[i] {
				continue
			}
			if t == globDeep || (t == globStar && c != '/') {
				next[i] = true
			} else if t == c {
				next[i+1] = true
			}
		}
		closure(next)
		cur, next = next, cur
	}
	return cur[len(g)]
}

// describeClaim renders a claim value for a log detail, bounded in length.
func describeClaim(v jsontext.Value) string {
	return strconv.Quote(truncate(string(v)))
}

// excluded reports whether a request path is in Policy.ExcludedPaths and so is served
// without authentication. Entries match exactly, or as a prefix when written with a
// trailing "/*" ("/api/public/*" matches "/api/public", "/api/public/" and anything
// under "/api/public/"), case-sensitively.
//
// It fails closed: a path that is not already in canonical form — with "." or ".."
// segments, repeated slashes, a backslash, a '%' (double encoding), a ';' or a NUL — is
// never excluded, because the router may resolve it differently than path.Clean would.
// Neither is a path with a byte outside ASCII or a control character (an overlong UTF-8
// form, "%C0%AE" for '.', or a fullwidth dot may be folded into '.' by an upstream), nor
// one with a segment of only dots and spaces ("/x/.. /admin": Windows drops trailing
// dots and spaces from names).
// So "/api/healthz/../ExclusiveFunction" and "/api/public/x/../../admin" require a
// token, and so does "/api/public/..;/admin": path.Clean keeps "..;" as a name, but
// servlet containers (Tomcat, Jetty, Spring) strip ";" path parameters from each
// segment first and resolve it to /api/admin — an upstream behind the gateway would.
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
// that one trailing slash is allowed, and holds no byte a router might reinterpret
// (a backslash, '%', ';' path parameters, control characters, anything outside
// ASCII, a segment of only dots and spaces).
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' || strings.Contains(p, "//") || strings.ContainsAny(p, "\\%;") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c >= 0x80 || c < 0x20 || c == 0x7f {
			return false
		}
	}
	// A segment of only dots and spaces is "." or ".." here, and "..." or ".. " on
	// Windows, which drops trailing dots and spaces from a name: an upstream that
	// maps paths to files there would read it as "..".
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg != "" && strings.TrimRight(seg, ". ") == "" {
			return false
		}
	}
	return true
}
