package authmw

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EnvVars returns every environment variable ConfigFromEnv reads, in documentation
// order. The slice is the caller's own: changing it changes nothing in authmw.
func EnvVars() []string { return slices.Clone(envVars) }

// envVars lists every environment variable ConfigFromEnv reads, in documentation order.
var envVars = []string{
	"AUTHMW_TENANT_ID",
	"AUTHMW_AUTHORITY_HOST",
	"AUTHMW_ISSUER",
	"AUTHMW_AUDIENCES",
	"AUTHMW_ALLOWED_APPLICATIONS",
	"AUTHMW_ALLOWED_IDENTITIES",
	"AUTHMW_ALLOWED_GROUPS",
	"AUTHMW_ALLOWED_TENANTS",
	"AUTHMW_REQUIRED_ROLES",
	"AUTHMW_INSECURE_ALLOW_ANY_CALLER",
	"AUTHMW_EXCLUDED_PATHS",
	"AUTHMW_UNAUTHENTICATED_ACTION",
	"AUTHMW_CLOCK_SKEW",
	"AUTHMW_POLICY_FILE",
	"AUTHMW_EASYAUTH_HEADERS",
	"AUTHMW_APP_ONLY",
	"AUTHMW_MAX_TOKEN_AGE",
	"AUTHMW_MAX_TOKEN_LIFETIME",
	"AUTHMW_APPLICATION_CLAIM",
	"AUTHMW_BOUND_CLAIMS",
	"AUTHMW_CLAIM_MAPPINGS",
	"AUTHMW_ALLOWED_CLIENT_CIDRS",
	"AUTHMW_TRUSTED_PROXIES",
	"AUTHMW_DISABLE_WWW_AUTHENTICATE",
	"AUTHMW_POLICY_FILE_INTERVAL",
	"AUTHMW_ALGORITHMS",
	"AUTHMW_KEY_REFRESH_INTERVAL",
	"AUTHMW_UNKNOWN_KEY_INTERVAL",
	"AUTHMW_CACHE_SIZE",
	"AUTHMW_AUDIT_ALLOWED",
}

// envForField names, for each Policy field Validate can complain about, the
// environment variable that sets it and the policy-file key that can set it instead.
var envForField = map[string]struct{ env, file string }{
	"TenantID":               {"AUTHMW_TENANT_ID", "identityProviders.azureActiveDirectory.registration.openIdIssuer"},
	"AuthorityHost":          {"AUTHMW_AUTHORITY_HOST", "identityProviders.azureActiveDirectory.registration.openIdIssuer"},
	"Issuers":                {"AUTHMW_ISSUER", "identityProviders.azureActiveDirectory.registration.openIdIssuer"},
	"Audiences":              {"AUTHMW_AUDIENCES", "identityProviders.azureActiveDirectory.validation.allowedAudiences"},
	"AllowedApplications":    {"AUTHMW_ALLOWED_APPLICATIONS", "validation.defaultAuthorizationPolicy.allowedApplications"},
	"AllowedIdentities":      {"AUTHMW_ALLOWED_IDENTITIES", "validation.defaultAuthorizationPolicy.allowedPrincipals.identities"},
	"AllowedGroups":          {"AUTHMW_ALLOWED_GROUPS", "validation.defaultAuthorizationPolicy.allowedPrincipals.groups"},
	"AllowedTenants":         {"AUTHMW_ALLOWED_TENANTS", "f2fauth.allowedTenants"},
	"RequiredRoles":          {"AUTHMW_REQUIRED_ROLES", "f2fauth.requiredRoles"},
	"ExcludedPaths":          {"AUTHMW_EXCLUDED_PATHS", "globalValidation.excludedPaths"},
	"UnauthenticatedAction":  {"AUTHMW_UNAUTHENTICATED_ACTION", "globalValidation.unauthenticatedClientAction"},
	"ClockSkew":              {"AUTHMW_CLOCK_SKEW", "f2fauth.clockSkew"},
	"MaxTokenAge":            {"AUTHMW_MAX_TOKEN_AGE", "f2fauth.maxTokenAge"},
	"MaxTokenLifetime":       {"AUTHMW_MAX_TOKEN_LIFETIME", "f2fauth.maxTokenLifetime"},
	"ApplicationClaim":       {"AUTHMW_APPLICATION_CLAIM", "f2fauth.applicationClaim"},
	"BoundClaims":            {"AUTHMW_BOUND_CLAIMS", "f2fauth.boundClaims"},
	"ClaimMappings":          {"AUTHMW_CLAIM_MAPPINGS", "f2fauth.claimMappings"},
	"AppOnly":                {"AUTHMW_APP_ONLY", "f2fauth.appOnly"},
	"InsecureAllowAnyCaller": {"AUTHMW_INSECURE_ALLOW_ANY_CALLER", ""},
	"AllowedClientCIDRs":     {"AUTHMW_ALLOWED_CLIENT_CIDRS", ""},
	"TrustedProxies":         {"AUTHMW_TRUSTED_PROXIES", ""},
	"PolicyFileInterval":     {"AUTHMW_POLICY_FILE_INTERVAL", ""},
	"KeyRefreshInterval":     {"AUTHMW_KEY_REFRESH_INTERVAL", ""},
	"UnknownKeyInterval":     {"AUTHMW_UNKNOWN_KEY_INTERVAL", ""},
}

// ConfigFromEnv reads a Config from the AUTHMW_* environment variables listed in
// [EnvVars], asking lookup for each; lookup nil means os.LookupEnv (the process
// environment). lookup reports whether a variable is set, so a variable set to "" is
// told from an unset one (a map stands in with
// func(k string) (string, bool) { v, ok := env[k]; return v, ok }). It fills
// Config.Policy, Config.PolicyFile and the Config fields that have a variable; callers
// set the rest (Logger, HTTPClient, ...). An unset or empty variable means the default,
// except for the allow-lists below.
//
// Lists are comma-separated; spaces around items are trimmed and empty items dropped.
// An allow-list (AUTHMW_ALLOWED_*, AUTHMW_REQUIRED_ROLES) that is set but lists no
// item ("", "," or " ") accepts nobody: it never turns its check off. Durations use
// time.ParseDuration syntax ("90s", "5m") or plain seconds ("300") and must lie in
// their documented ranges. Booleans use strconv.ParseBool ("true", "false", "1", "0").
//
// When AUTHMW_POLICY_FILE is set, the file (see [LoadPolicyFile]) is loaded once here
// and the policy from the environment is laid over it, so audiences and the issuer may
// come from the file: a variable with a value replaces the file's value (a list
// replaces the file's list; an allow-list set to "" replaces it with one that accepts
// nobody), and a boolean can only turn a check on. The merged result
// is validated. The returned Config.Policy holds only the environment's settings: the
// Middleware reads the file itself and keeps watching it.
//
// Every problem is reported together (errors.Join, after one "authmw: invalid
// configuration: " prefix), each naming the variable and saying what to do, e.g.
// "AUTHMW_AUDIENCES is required: set it to the callee's Application ID URI or client
// ID". Each wraps ErrInvalidPolicy.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	get := func(name string) string { v, _ := lookup(name); return strings.TrimSpace(v) }
	// list is nil when the variable is unset, and non-nil (maybe empty) when it is set.
	list := func(name string) []string {
		v, ok := lookup(name)
		if !ok {
			return nil
		}
		return append([]string{}, splitList(v)...)
	}
	var (
		c    Config
		errs []error
	)
	bad := func(name, format string, args ...any) {
		errs = append(errs, invalidPolicy("%s %s", name, fmt.Sprintf(format, args...)))
	}
	p := &c.Policy

	p.TenantID = get("AUTHMW_TENANT_ID")
	p.AuthorityHost = get("AUTHMW_AUTHORITY_HOST")
	p.Issuers = splitList(get("AUTHMW_ISSUER"))
	p.Audiences = splitList(get("AUTHMW_AUDIENCES"))
	p.AllowedApplications = list("AUTHMW_ALLOWED_APPLICATIONS")
	p.AllowedIdentities = list("AUTHMW_ALLOWED_IDENTITIES")
	p.AllowedGroups = list("AUTHMW_ALLOWED_GROUPS")
	p.AllowedTenants = list("AUTHMW_ALLOWED_TENANTS")
	p.RequiredRoles = list("AUTHMW_REQUIRED_ROLES")
	p.ExcludedPaths = splitList(get("AUTHMW_EXCLUDED_PATHS"))
	p.AllowedClientCIDRs = list("AUTHMW_ALLOWED_CLIENT_CIDRS")
	p.TrustedProxies = splitList(get("AUTHMW_TRUSTED_PROXIES"))

	if v := get("AUTHMW_UNAUTHENTICATED_ACTION"); v != "" {
		a, err := parseUnauthenticatedAction(v)
		if err != nil {
			bad("AUTHMW_UNAUTHENTICATED_ACTION", "%s", err)
		}
		p.UnauthenticatedAction = a
	}

	// duration parses a duration variable; the Policy ones are range-checked with
	// the merged policy below, the Config ones (config true) here.
	duration := func(field string, dst *time.Duration, config bool) {
		name := envForField[field].env
		v := get(name)
		if v == "" {
			return
		}
		d, err := parseDuration(v)
		r := durationRanges[field]
		if err != nil {
			bad(name, "%q is not a duration: use e.g. \"90s\", \"5m\", \"1h\" or plain seconds, from %s to %s (0 or unset means %s)",
				v, shortDuration(r.min), shortDuration(r.max), r.zero)
			return
		}
		if msg := checkDuration(field, d); config && msg != "" {
			bad(name, "%s", msg)
		}
		*dst = d
	}
	duration("ClockSkew", &p.ClockSkew, false)
	duration("MaxTokenAge", &p.MaxTokenAge, false)
	duration("MaxTokenLifetime", &p.MaxTokenLifetime, false)
	p.ApplicationClaim = get("AUTHMW_APPLICATION_CLAIM")
	duration("PolicyFileInterval", &c.PolicyFileInterval, true)
	duration("KeyRefreshInterval", &c.KeyRefreshInterval, true)
	duration("UnknownKeyInterval", &c.UnknownKeyInterval, true)

	boolean := func(name string, dst *bool) {
		v := get(name)
		if v == "" {
			return
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad(name, "%q is not a boolean: use true or false", v)
			return
		}
		*dst = b
	}
	boolean("AUTHMW_EASYAUTH_HEADERS", &p.EasyAuthHeaders)
	boolean("AUTHMW_APP_ONLY", &p.AppOnly)
	boolean("AUTHMW_DISABLE_WWW_AUTHENTICATE", &p.DisableWWWAuthenticate)
	boolean("AUTHMW_INSECURE_ALLOW_ANY_CALLER", &p.InsecureAllowAnyCaller)

	if v := get("AUTHMW_BOUND_CLAIMS"); v != "" {
		bc, err := parseBoundClaims(v)
		if err != nil {
			bad("AUTHMW_BOUND_CLAIMS", "%s", err)
		}
		p.BoundClaims = bc
	}
	if v := get("AUTHMW_CLAIM_MAPPINGS"); v != "" {
		cm, err := parseClaimMappings(v)
		if err != nil {
			bad("AUTHMW_CLAIM_MAPPINGS", "%s", err)
		}
		p.ClaimMappings = cm
	}

	if v := get("AUTHMW_ALGORITHMS"); v != "" {
		c.Algorithms = splitList(v)
		for _, a := range c.Algorithms {
			if _, ok := supportedAlgorithms[a]; !ok {
				bad("AUTHMW_ALGORITHMS", "lists %q, which is not accepted: use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or ES512 (never none or HMAC)", a)
			}
		}
	}
	if v := get("AUTHMW_CACHE_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n > MaxCacheSize {
			bad("AUTHMW_CACHE_SIZE", "%q is not an integer up to %d: use a number of entries, 0 for the default (%d) or -1 to disable the cache", v, MaxCacheSize, DefaultCacheSize)
		} else {
			c.CacheSize = n
		}
	}
	if v := get("AUTHMW_AUDIT_ALLOWED"); v != "" {
		switch mode := AuditMode(strings.ToLower(v)); mode {
		case AuditSample, AuditAll, AuditNone:
			c.AuditAllowed = mode
		default:
			bad("AUTHMW_AUDIT_ALLOWED", "%q is not a mode: use sample (default: every newly verified token, at most one cache hit per second), all (every request) or none (denials only)", v)
		}
	}

	// Validate what will actually be enforced: the file (if any) with the environment over it.
	merged := c.Policy
	c.PolicyFile = get("AUTHMW_POLICY_FILE")
	fileHint, format := "", formatAuthSettingsV2
	if c.PolicyFile != "" {
		fp, ff, _, err := loadPolicyFile(c.PolicyFile)
		if err != nil {
			bad("AUTHMW_POLICY_FILE", "cannot be used: %v: fix the file or unset the variable", err)
			return c, joinConfigErrors(errs)
		}
		merged = mergePolicy(fp, c.Policy)
		fileHint, format = c.PolicyFile, ff
	}
	errs = append(errs, merged.problemErrs(settingNames(fileHint, format))...)
	return c, joinConfigErrors(errs)
}

// settingNames returns how problems name a Policy field: by its environment variable
// (short), and also by its key in the policy file at path, of the given format, when
// path is set (name).
func settingNames(path string, format policyFormat) (name, short func(field string) string) {
	short = func(field string) string {
		if m, ok := envForField[field]; ok {
			return m.env
		}
		return "Policy." + field
	}
	name = func(field string) string {
		if key := format.fileKey(field); path != "" && key != "" {
			return short(field) + " (or " + key + " in AUTHMW_POLICY_FILE " + path + ")"
		}
		return short(field)
	}
	return name, short
}

// joinConfigErrors joins errs after one "authmw: invalid configuration: " prefix; nil
// when there are none.
func joinConfigErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("authmw: invalid configuration: %w", errors.Join(errs...))
}

// splitList splits a comma-separated list, trimming spaces and dropping empty items.
// It returns nil for a list with no items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseDuration accepts time.ParseDuration syntax or a plain number of seconds.
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > int64(1<<63-1)/int64(time.Second) || n < -int64(1<<63-1)/int64(time.Second) {
			return 0, errors.New("out of range")
		}
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// parseUnauthenticatedAction accepts the Easy Auth names case-insensitively.
func parseUnauthenticatedAction(s string) (UnauthenticatedAction, error) {
	for _, a := range []UnauthenticatedAction{Return401, Return403, AllowAnonymous} {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	if strings.EqualFold(s, "RedirectToLoginPage") {
		return "", errors.New("RedirectToLoginPage is not supported for APIs: use Return401")
	}
	return "", fmt.Errorf("%q is not valid: use Return401 (default), Return403 or AllowAnonymous", s)
}

// parseBoundClaims reads AUTHMW_BOUND_CLAIMS: either a JSON object whose values are a
// string or a list of strings ({"xms_mirid": ["/subscriptions/*"]}), or a
// comma-separated list of claim=pattern pairs, where a repeated claim adds an
// alternative (ver=2.0,appidacr=1,appidacr=2).
func parseBoundClaims(s string) (map[string][]string, error) {
	if strings.HasPrefix(s, "{") {
		var raw map[string]stringOrList
		err := checkKeys([]byte(s), anyKeys)
		if err == nil {
			err = json.Unmarshal([]byte(s), &raw)
		}
		if err != nil {
			return nil, fmt.Errorf("is not a valid JSON object of claim -> value or [values]: %v", err)
		}
		out := make(map[string][]string, len(raw))
		for k, v := range raw {
			out[k] = v
		}
		return out, nil
	}
	out := map[string][]string{}
	for _, pair := range splitList(s) {
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("item %q is not claim=pattern: write e.g. xms_mirid=/subscriptions/*/resourcegroups/rg-prod/*,appidacr=2 (or a JSON object)", pair)
		}
		if !slices.Contains(out[k], v) {
			out[k] = append(out[k], v)
		}
	}
	return out, nil
}

// parseClaimMappings reads AUTHMW_CLAIM_MAPPINGS: comma-separated key=claim pairs.
func parseClaimMappings(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range splitList(s) {
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("item %q is not key=claim: write e.g. caller=xms_mirid,tenant=tid", pair)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("maps key %q twice: use each metadata key once", k)
		}
		out[k] = v
	}
	return out, nil
}

// stringOrList decodes a JSON string or a JSON array of strings.
type stringOrList []string

// UnmarshalJSON accepts a JSON string or an array of strings.
func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stringOrList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("want a string or a list of strings")
	}
	*s = many
	return nil
}
