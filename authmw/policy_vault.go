package authmw

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// policyFormat is the shape of a policy file.
type policyFormat int

const (
	formatAuthSettingsV2 policyFormat = iota // Easy Auth authsettingsV2 (with the f2fauth block)
	formatVaultRole                          // Vault/OpenBao JWT auth role
)

// vaultKeyForField names, for each Policy field a Vault JWT role can set, the role
// field that sets it.
var vaultKeyForField = map[string]string{
	"Audiences":          "bound_audiences",
	"BoundClaims":        "bound_claims",
	"ClaimMappings":      "claim_mappings",
	"UserClaim":          "user_claim",
	"MaxTokenAge":        "token_ttl",
	"ClockSkew":          "clock_skew_leeway",
	"AllowedClientCIDRs": "bound_cidrs",
}

// fileKey is the key of the policy file in format f that sets field, or "".
func (f policyFormat) fileKey(field string) string {
	if f == formatVaultRole {
		return vaultKeyForField[field]
	}
	return envForField[field].file
}

// vaultRoleFields are the fields of a Vault (and OpenBao) JWT auth role: those of
// `vault write auth/<mount>/role/<name>` and of the "data" of `vault read`.
var vaultRoleFields = map[string]bool{
	"name": true, "role_type": true,
	"bound_audiences": true, "bound_subject": true, "bound_claims_type": true, "bound_claims": true,
	"claim_mappings": true, "user_claim": true, "user_claim_json_pointer": true, "groups_claim": true,
	"oidc_scopes": true, "allowed_redirect_uris": true, "verbose_oidc_logging": true, "max_age": true,
	"oauth2_metadata": true, "expiration_leeway": true, "not_before_leeway": true, "clock_skew_leeway": true,
	// token fields (Vault's tokenutil) and their deprecated spellings
	"token_bound_cidrs": true, "token_explicit_max_ttl": true, "token_max_ttl": true, "token_no_default_policy": true,
	"token_num_uses": true, "token_period": true, "token_policies": true, "token_type": true, "token_ttl": true,
	"alias_metadata": true,
	"policies":       true, "num_uses": true, "ttl": true, "max_ttl": true, "period": true, "bound_cidrs": true,
}

// vaultEnvelopeFields are the top-level fields of `vault read -format=json` output.
var vaultEnvelopeFields = map[string]bool{
	"request_id": true, "lease_id": true, "lease_duration": true, "renewable": true, "data": true,
	"warnings": true, "wrap_info": true, "auth": true, "mount_type": true,
}

// Vault's defaults for the JWT time leeways (0 in a role means these; -1 means none).
const (
	vaultDefaultClockSkewLeeway = 60 * time.Second
	vaultDefaultClaimLeeway     = 150 * time.Second
)

// parsePolicyDocument tells the shape of a policy document by its top-level keys and
// parses it: an Easy Auth authsettingsV2 document (parseAuthSettingsV2) or a Vault JWT
// auth role (parseVaultJWTRole). A document with keys of both, or with keys of
// neither, is refused. It also returns the fields read but not honoured, to be logged.
func parsePolicyDocument(data []byte) (Policy, policyFormat, []string, error) {
	keys := topLevelKeys(data)
	var vault, auth, other []string
	for _, k := range keys {
		switch {
		case k == "name": // both shapes have it
		case vaultRoleFields[k] || vaultEnvelopeFields[k]:
			vault = append(vault, k)
		case authSettingsSchemaHas(k):
			auth = append(auth, k)
		default:
			other = append(other, k)
		}
	}
	switch {
	case len(vault) > 0 && len(auth) > 0:
		return Policy{}, 0, nil, invalidPolicy("the document mixes keys of a Vault JWT role (%s) and of an Easy Auth authsettingsV2 document (%s): a policy file is one or the other",
			quoteList(vault), quoteList(auth))
	case len(vault) > 0:
		p, ignored, err := parseVaultJWTRole(data)
		return p, formatVaultRole, ignored, err
	case len(auth) == 0 && len(other) > 0:
		return Policy{}, 0, nil, invalidPolicy("the document is neither an Easy Auth authsettingsV2 document (keys such as properties, globalValidation, identityProviders) "+
			"nor a Vault JWT auth role (keys such as role_type, bound_audiences, user_claim, or the {\"data\": ...} output of vault read): found %s", quoteList(other))
	}
	p, err := parseAuthSettingsV2(data)
	return p, formatAuthSettingsV2, nil, err
}

// authSettingsSchemaHas reports whether k is a top-level key of an authsettingsV2
// document (case-insensitively, as ARM matches them).
func authSettingsSchemaHas(k string) bool {
	_, _, known := authSettingsSchema.lookup(k)
	return known
}

// quoteList quotes items, sorted, for a message; at most 8.
func quoteList(items []string) string {
	items = slices.Clone(items)
	slices.Sort(items)
	more := ""
	if len(items) > 8 {
		more = fmt.Sprintf(" and %d more", len(items)-8)
		items = items[:8]
	}
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = strconv.Quote(it)
	}
	return strings.Join(q, ", ") + more
}

// trimPolicyJSON drops a byte order mark and surrounding white space.
func trimPolicyJSON(data []byte) []byte {
	return bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\ufeff")))
}

// topLevelKeys returns the keys of the JSON object data, as far as it is readable;
// none for anything else (such as a quoted app-setting value).
func topLevelKeys(data []byte) []string {
	data = trimPolicyJSON(data)
	if !utf8.Valid(data) || len(data) == 0 || data[0] != '{' {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return keys
		}
		k, _ := tok.(string)
		keys = append(keys, k)
		if err := skipJSONValue(dec, 1); err != nil {
			return keys
		}
	}
	return keys
}

// skipJSONValue reads one value from dec, checking only its syntax and its nesting.
func skipJSONValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxPolicyDepth {
		return schemaError(fmt.Sprintf("the document nests deeper than %d levels", maxPolicyDepth))
	}
	for dec.More() {
		if d == '{' {
			if _, err := dec.Token(); err != nil {
				return err
			}
		}
		if err := skipJSONValue(dec, depth+1); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

// objectMembers splits the JSON object data into its members, refusing a key given
// twice (exactly: Vault field and claim names are case-sensitive). prefix is the
// path of data in the document, for messages.
func objectMembers(data []byte, prefix string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, errors.New(jsonProblem(data, offsetError{err, dec.InputOffset()}))
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("%s is not a JSON object", strings.TrimSuffix(prefix, "."))
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New(jsonProblem(data, offsetError{err, dec.InputOffset()}))
		}
		key, _ := tok.(string)
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("key %q is given twice: keep one", prefix+key)
		}
		start := dec.InputOffset()
		if err := skipJSONValue(dec, 1); err != nil {
			var se schemaError
			if errors.As(err, &se) {
				return nil, err
			}
			return nil, errors.New(jsonProblem(data, offsetError{err, dec.InputOffset()}))
		}
		raw := bytes.TrimSpace(data[start:dec.InputOffset()])
		out[key] = bytes.TrimSpace(bytes.TrimPrefix(raw, []byte(":")))
	}
	if _, err := dec.Token(); err != nil {
		return nil, errors.New(jsonProblem(data, offsetError{err, dec.InputOffset()}))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON object")
	}
	return out, nil
}

// parseVaultJWTRole reads a Policy from a HashiCorp Vault or OpenBao JWT auth role, in
// either shape: the JSON body written with `vault write auth/<mount>/role/<name>`
// (the role's fields at top level) or the output of `vault read -format=json
// auth/<mount>/role/<name>` (the fields under "data", next to request_id, lease_id
// and the like). The mapping (documented in docs/vault-role.md):
//
//   - bound_audiences: Audiences
//   - bound_subject: a bound claim on sub (exact)
//   - bound_claims with bound_claims_type "string" (exact; a value with '*' is refused,
//     since authmw would read it as a wildcard) or "glob" (authmw's globs): BoundClaims;
//     a value may be a string or a list of strings (any of them)
//   - claim_mappings (claim -> metadata key): ClaimMappings (metadata key -> claim)
//   - user_claim (and user_claim_json_pointer): UserClaim, the Principal's Name
//   - token_bound_cidrs / bound_cidrs: AllowedClientCIDRs (an empty list: not checked,
//     as in Vault)
//   - token_ttl, token_max_ttl, token_explicit_max_ttl (and the deprecated ttl, max_ttl):
//     MaxTokenAge, the smallest one set
//   - clock_skew_leeway + the larger of expiration_leeway and not_before_leeway: ClockSkew
//
// The issuer is not part of a role (Vault keeps it on the auth mount): set
// AUTHMW_ISSUER or AUTHMW_TENANT_ID. It is strict: an unknown field, a field given
// twice, a role_type other than "jwt", allowed_redirect_uris, max_age, a JSON pointer
// to a nested claim, or a duration out of authmw's range is an error naming the field.
// Fields that only shape the Vault token issued at login (policies, token_policies,
// token_num_uses, token_period, token_type, groups_claim, oidc_scopes, ...) cannot be
// honoured and are returned, described, in ignored, for the caller to log.
func parseVaultJWTRole(data []byte) (p Policy, ignored []string, err error) {
	if !utf8.Valid(data) {
		return Policy{}, nil, invalidPolicy("Vault JWT role: the document is not valid UTF-8")
	}
	data = trimPolicyJSON(data)
	if len(data) == 0 || data[0] != '{' {
		return Policy{}, nil, invalidPolicy("Vault JWT role: want a JSON object (the role's fields, or the output of vault read -format=json)")
	}
	members, err := objectMembers(data, "")
	if err != nil {
		return Policy{}, nil, invalidPolicy("Vault JWT role: %v", err)
	}
	prefix := ""
	if inner, ok := members["data"]; ok {
		for k := range members {
			if !vaultEnvelopeFields[k] {
				return Policy{}, nil, invalidPolicy("Vault JWT role: unknown key %q next to \"data\": the output of vault read has only %s",
					k, knownList(vaultEnvelopeFields))
			}
		}
		if isJSONNull(inner) || len(inner) == 0 || inner[0] != '{' {
			return Policy{}, nil, invalidPolicy("Vault JWT role: \"data\" is not a JSON object: read the role with vault read -format=json auth/<mount>/role/<name>")
		}
		if members, err = objectMembers(inner, "data."); err != nil {
			return Policy{}, nil, invalidPolicy("Vault JWT role: %v", err)
		}
		prefix = "data."
	}
	for k := range members {
		if vaultRoleFields[k] {
			continue
		}
		hint := "check its spelling"
		if vaultEnvelopeFields[k] {
			hint = "the output of vault read keeps the role under \"data\""
		} else if lk := strings.ToLower(k); lk != k && vaultRoleFields[lk] {
			hint = fmt.Sprintf("Vault field names are lower case: write %q", lk)
		}
		return Policy{}, nil, invalidPolicy("Vault JWT role: unknown key %q: %s (known: %s)", prefix+k, hint, knownList(vaultRoleFields))
	}
	r := &vaultRole{m: members, prefix: prefix}
	p, ignored = r.toPolicy()
	return p, ignored, errors.Join(r.errs...)
}

// knownList lists a set's keys, sorted.
func knownList(set map[string]bool) string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}

// vaultRole is a role being mapped: its members and the problems found.
type vaultRole struct {
	m      map[string]json.RawMessage
	prefix string
	errs   []error
}

func (r *vaultRole) bad(field, format string, args ...any) {
	r.errs = append(r.errs, invalidPolicy("Vault JWT role %s%s %s", r.prefix, field, fmt.Sprintf(format, args...)))
}

// raw returns the field's JSON value; nil when absent or null.
func (r *vaultRole) raw(field string) json.RawMessage {
	v, ok := r.m[field]
	if !ok || isJSONNull(v) {
		return nil
	}
	return v
}

// str reads a string field ("" when absent or null).
func (r *vaultRole) str(field string) string {
	v := r.raw(field)
	if v == nil {
		return ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		r.bad(field, "must be a string")
		return ""
	}
	return s
}

// boolean reads a bool field, also written as a string ("true"), as Vault accepts.
func (r *vaultRole) boolean(field string) bool {
	v := r.raw(field)
	if v == nil {
		return false
	}
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		return b
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		if b, err := strconv.ParseBool(strings.TrimSpace(s)); err == nil {
			return b
		}
	}
	r.bad(field, "must be true or false")
	return false
}

// list reads a comma-separated string slice, as Vault does: a JSON list of strings or
// one string of comma-separated items; items are trimmed. nil when absent, null or empty.
func (r *vaultRole) list(field string) []string {
	v := r.raw(field)
	if v == nil {
		return nil
	}
	var out []string
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		if strings.TrimSpace(s) == "" {
			return nil
		}
		for item := range strings.SplitSeq(s, ",") {
			out = append(out, strings.TrimSpace(item))
		}
		return out
	}
	if err := json.Unmarshal(v, &out); err != nil {
		r.bad(field, "must be a list of strings or a comma-separated string")
		return nil
	}
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// integer reads an integer field (a number or a numeric string).
func (r *vaultRole) integer(field string) int64 {
	v := r.raw(field)
	if v == nil {
		return 0
	}
	s := string(v)
	var q string
	if json.Unmarshal(v, &q) == nil {
		s = strings.TrimSpace(q)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		r.bad(field, "must be an integer")
	}
	return n
}

// maxVaultDuration bounds durations read from a role (100 years).
const maxVaultDuration = 100 * 365 * 24 * time.Hour

// duration reads a Vault duration: seconds as a number or a numeric string, or a
// duration string ("90s", "1h", "2d"). Negative values are refused unless signed.
func (r *vaultRole) duration(field string, signed bool) time.Duration {
	v := r.raw(field)
	if v == nil {
		return 0
	}
	d, err := parseVaultDuration(v)
	switch {
	case err != nil:
		r.bad(field, "%v", err)
		return 0
	case d < 0 && !signed:
		r.bad(field, "is negative: use 0 (unset) or a positive number of seconds")
		return 0
	}
	return d
}

// parseVaultDuration parses the JSON value of a Vault duration field.
func parseVaultDuration(v json.RawMessage) (time.Duration, error) {
	bad := errors.New("is not a duration: use a number of seconds (3600) or a duration such as \"1h\", \"90m\" or \"2d\"")
	s := strings.TrimSpace(string(v))
	var q string
	if json.Unmarshal(v, &q) == nil {
		s = strings.TrimSpace(q)
	}
	if s == "" {
		return 0, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		switch {
		case math.IsNaN(f):
			return 0, bad // time.Duration(NaN) is 0 on amd64: "unset", silently
		case f > maxVaultDuration.Seconds() || f < -maxVaultDuration.Seconds():
			return 0, errors.New("is out of range")
		case f != math.Trunc(f):
			// Vault refuses these too; truncated, 0.5 would read as 0, "unset".
			return 0, errors.New("is not a whole number of seconds: write 90 or \"90s\", or a duration such as \"1500ms\"")
		}
		return time.Duration(f) * time.Second, nil
	}
	if len(v) > 0 && v[0] != '"' {
		return 0, bad // a JSON value that is neither a number nor a string
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n > int64(maxVaultDuration/(24*time.Hour)) || n < -int64(maxVaultDuration/(24*time.Hour)) {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	return d, nil
}

// object reads an object field into its members (nil when absent or null).
func (r *vaultRole) object(field string) map[string]json.RawMessage {
	v := r.raw(field)
	if v == nil {
		return nil
	}
	if v[0] != '{' {
		r.bad(field, "must be a JSON object")
		return nil
	}
	m, err := objectMembers(v, r.prefix+field+".")
	if err != nil {
		r.bad(field, "%v", err)
		return nil
	}
	return m
}

// claimName resolves a claim reference of a role: a plain name, or a JSON pointer
// ("/name") to a top-level claim; a pointer into a nested claim is refused.
func claimName(ref string, pointer bool) (string, error) {
	if !pointer || !strings.HasPrefix(ref, "/") {
		return ref, nil
	}
	seg := ref[1:]
	if strings.Contains(seg, "/") {
		return "", fmt.Errorf("%q points into a nested claim, which authmw does not read: bind a top-level claim", ref)
	}
	seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
	if seg == "" {
		return "", fmt.Errorf("%q names no claim", ref)
	}
	return seg, nil
}

// sortedKeys returns m's keys, sorted, so problems are reported in a stable order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// toPolicy maps the role; problems go to r.errs.
func (r *vaultRole) toPolicy() (Policy, []string) {
	var (
		p       Policy
		ignored []string
	)
	ignore := func(field, why string) { ignored = append(ignored, field+" ("+why+")") }

	switch rt := r.str("role_type"); rt {
	case "jwt":
	case "":
		r.bad("role_type", "is not set: Vault makes such a role an oidc role (browser login), which does not accept bearer JWTs; set it to \"jwt\"")
	case "oidc":
		r.bad("role_type", "is \"oidc\": an oidc role serves Vault's browser login, not bearer tokens, so authmw cannot honour it; use a \"jwt\" role")
	default:
		r.bad("role_type", "%q is not valid: use \"jwt\"", rt)
	}
	if uris := r.list("allowed_redirect_uris"); len(uris) > 0 {
		r.bad("allowed_redirect_uris", "is set: redirect URIs belong to an oidc (browser login) role, which authmw cannot honour; remove them")
	}
	if d := r.duration("max_age", false); d > 0 {
		r.bad("max_age", "is set: it checks auth_time (time since an interactive login), which authmw does not check and app tokens do not carry; remove it")
	}

	p.Audiences = r.list("bound_audiences")

	glob := false
	switch t := r.str("bound_claims_type"); t {
	case "", "string":
	case "glob":
		glob = true
	default:
		r.bad("bound_claims_type", "%q is not valid: use \"string\" (exact) or \"glob\"", t)
	}
	if bc := r.object("bound_claims"); len(bc) > 0 {
		p.BoundClaims = make(map[string][]string, len(bc))
		for _, key := range sortedKeys(bc) {
			name, err := claimName(key, true)
			if err != nil {
				r.bad("bound_claims", "key %v", err)
				continue
			}
			if _, dup := p.BoundClaims[name]; dup {
				r.bad("bound_claims", "binds claim %q twice (as %q and as a pointer or name): keep one", name, key)
				continue
			}
			var vals stringOrList
			if err := json.Unmarshal(bc[key], &vals); err != nil {
				r.bad("bound_claims", "%q must be a string or a list of strings (write numbers and booleans as strings)", key)
				continue
			}
			if !glob {
				for _, v := range vals {
					if strings.Contains(v, "*") {
						r.bad("bound_claims", "%q value %q contains '*': with bound_claims_type \"string\" Vault compares it literally, but authmw would read it as a wildcard; use bound_claims_type \"glob\" if a wildcard is meant", key, v)
					}
				}
			}
			p.BoundClaims[name] = []string(vals)
		}
	}
	if sub := r.str("bound_subject"); sub != "" {
		switch {
		case strings.Contains(sub, "*"):
			r.bad("bound_subject", "%q contains '*': Vault compares bound_subject literally, but authmw would read it as a wildcard", sub)
		case p.BoundClaims["sub"] != nil:
			r.bad("bound_subject", "and bound_claims both bind sub: keep one")
		default:
			if p.BoundClaims == nil {
				p.BoundClaims = map[string][]string{}
			}
			p.BoundClaims["sub"] = []string{sub}
		}
	}

	if cm := r.claimMappings(); len(cm) > 0 {
		p.ClaimMappings = make(map[string]string, len(cm))
		for _, claimRef := range sortedKeys(cm) {
			key := cm[claimRef]
			name, err := claimName(claimRef, true)
			switch {
			case err != nil:
				r.bad("claim_mappings", "key %v", err)
			case key == "":
				r.bad("claim_mappings", "maps %q to an empty metadata key", claimRef)
			case key == "role":
				r.bad("claim_mappings", "maps %q to the metadata key \"role\", which Vault reserves: choose another key", claimRef)
			case p.ClaimMappings[key] != "":
				r.bad("claim_mappings", "maps two claims to the metadata key %q: keep one", key)
			default:
				p.ClaimMappings[key] = name
			}
		}
	}

	uc := r.str("user_claim")
	if uc == "" {
		r.bad("user_claim", "is required (Vault requires it too): name the claim that identifies the caller, e.g. \"sub\" or \"oid\"")
	} else if name, err := claimName(uc, r.boolean("user_claim_json_pointer")); err != nil {
		r.bad("user_claim", "%v", err)
	} else {
		p.UserClaim = name
	}

	cidrs, legacy := r.list("token_bound_cidrs"), r.list("bound_cidrs")
	if len(cidrs) > 0 && len(legacy) > 0 && !sameItems(cidrs, legacy) {
		r.bad("bound_cidrs", "and token_bound_cidrs differ: bound_cidrs is the deprecated name of token_bound_cidrs; keep one")
	}
	if len(cidrs) == 0 {
		cidrs = legacy
	}
	p.AllowedClientCIDRs = cidrs // nil when empty: Vault reads an empty list as "not checked"

	r.mapTTL(&p)
	if note := r.mapLeeways(&p); note != "" {
		ignored = append(ignored, note)
	}

	if pol := append(r.list("token_policies"), r.list("policies")...); len(pol) > 0 {
		ignore("token_policies", "Vault policies of the token issued at login; authmw issues no token")
	}
	for _, f := range []string{"token_num_uses", "num_uses"} {
		if r.integer(f) != 0 {
			ignore(f, "uses of the Vault token; authmw issues no token")
		}
	}
	for _, f := range []string{"token_period", "period"} {
		if r.duration(f, false) != 0 {
			ignore(f, "renewal period of the Vault token; authmw issues no token")
		}
	}
	if t := r.str("token_type"); t != "" && t != "default" {
		ignore("token_type", "type of the Vault token; authmw issues no token")
	}
	if r.boolean("token_no_default_policy") {
		ignore("token_no_default_policy", "Vault policy of the token; authmw issues no token")
	}
	if am := r.object("alias_metadata"); len(am) > 0 {
		ignore("alias_metadata", "metadata of the Vault entity alias; use claim_mappings for Principal.Metadata")
	}
	if gc := r.str("groups_claim"); gc != "" {
		ignore("groups_claim", "Vault group aliases; the token's groups are in Principal.Groups and Principal.Claims, and a token without the claim is not refused")
	}
	if s := r.list("oidc_scopes"); len(s) > 0 {
		ignore("oidc_scopes", "scopes of Vault's browser login")
	}
	if r.boolean("verbose_oidc_logging") {
		ignore("verbose_oidc_logging", "logging of Vault's browser login; authmw never logs tokens or claims")
	}
	if m := r.list("oauth2_metadata"); len(m) > 0 {
		ignore("oauth2_metadata", "tokens of Vault's browser login")
	}
	_ = r.str("name") // informational
	return p, ignored
}

// claimMappings reads claim_mappings: an object of claim -> metadata key, or a list
// of "claim=key" strings (Vault's key-value pairs).
func (r *vaultRole) claimMappings() map[string]string {
	v := r.raw("claim_mappings")
	if v == nil {
		return nil
	}
	out := map[string]string{}
	if v[0] == '[' {
		var pairs []string
		if err := json.Unmarshal(v, &pairs); err != nil {
			r.bad("claim_mappings", "must be an object of claim -> metadata key, or a list of \"claim=key\" strings")
			return nil
		}
		for _, pair := range pairs {
			k, val, ok := strings.Cut(pair, "=")
			if !ok {
				r.bad("claim_mappings", "item %q is not claim=key", pair)
				continue
			}
			if _, dup := out[k]; dup {
				r.bad("claim_mappings", "maps claim %q twice: keep one", k)
			}
			out[k] = val
		}
		return out
	}
	m := r.object("claim_mappings")
	for k, raw := range m {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			r.bad("claim_mappings", "%q must map to a metadata key (a string)", k)
			continue
		}
		out[k] = s
	}
	return out
}

// sameItems reports whether a and b hold the same items, in any order.
func sameItems(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// mapTTL maps the Vault token TTLs to MaxTokenAge: the Vault token a login yields
// lives token_ttl (at most token_max_ttl or token_explicit_max_ttl); authmw, which
// issues no token, accepts a JWT for that long after its iat. The smallest one set wins.
func (r *vaultRole) mapTTL(p *Policy) {
	pick := func(field, legacy string) time.Duration {
		d, old := r.duration(field, false), r.duration(legacy, false)
		if d != 0 && old != 0 && d != old {
			r.bad(legacy, "and %s differ: %s is the deprecated name of %s; keep one", field, legacy, field)
		}
		if d == 0 {
			d = old
		}
		return d
	}
	ttl, maxTTL := pick("token_ttl", "ttl"), pick("token_max_ttl", "max_ttl")
	explicit := r.duration("token_explicit_max_ttl", false)
	if ttl > 0 && maxTTL > 0 && ttl > maxTTL {
		r.bad("token_ttl", "(%s) is greater than token_max_ttl (%s): Vault refuses this too; lower token_ttl", shortDuration(ttl), shortDuration(maxTTL))
		return
	}
	var (
		age   time.Duration
		field string
	)
	for _, c := range []struct {
		field string
		d     time.Duration
	}{{"token_ttl", ttl}, {"token_max_ttl", maxTTL}, {"token_explicit_max_ttl", explicit}} {
		if c.d > 0 && (age == 0 || c.d < age) {
			age, field = c.d, c.field
		}
	}
	if age == 0 {
		return
	}
	if msg := checkDuration("MaxTokenAge", age); msg != "" {
		r.bad(field, "%s (it becomes authmw's maximum token age: a token is accepted for that long after its iat)", msg)
		return
	}
	p.MaxTokenAge = age
}

// mapLeeways maps Vault's JWT leeways to ClockSkew: clock_skew_leeway plus the larger
// of expiration_leeway and not_before_leeway (0 means Vault's default, -1 none).
// Equal expiration and not-before leeways (the default) map exactly; otherwise the
// returned note says the larger is used for both.
func (r *vaultRole) mapLeeways(p *Policy) string {
	leeway := func(field string, def time.Duration) time.Duration {
		d := r.duration(field, true)
		switch {
		case d == 0:
			return def
		case d == -time.Second:
			return 0
		case d < 0:
			r.bad(field, "is negative: use 0 (Vault's default), -1 (no leeway) or a number of seconds")
			return 0
		}
		return d
	}
	skew := leeway("clock_skew_leeway", vaultDefaultClockSkewLeeway)
	exp := leeway("expiration_leeway", vaultDefaultClaimLeeway)
	nbf := leeway("not_before_leeway", vaultDefaultClaimLeeway)
	total := skew + max(exp, nbf)
	r2 := durationRanges["ClockSkew"]
	switch {
	case total > r2.max:
		r.bad("clock_skew_leeway", "plus expiration_leeway or not_before_leeway is %s, more than authmw's largest clock skew, %s: lower them",
			shortDuration(total), shortDuration(r2.max))
		return ""
	case total < r2.min:
		p.ClockSkew = r2.min
		return "clock_skew_leeway, expiration_leeway, not_before_leeway (no leeway at all: authmw's smallest clock skew, 1s, is used)"
	}
	p.ClockSkew = total
	if exp != nbf {
		return fmt.Sprintf("expiration_leeway, not_before_leeway (authmw has one clock skew: %s, with the larger leeway, applies to exp and nbf)", shortDuration(total))
	}
	return ""
}

// clientRule is the compiled client-address check: AllowedClientCIDRs and TrustedProxies.
type clientRule struct {
	allowed []netip.Prefix
	proxies []netip.Prefix
}

// maxForwardedHops bounds how many X-Forwarded-For entries are walked.
const maxForwardedHops = 32

// newClientRule compiles p's client-address check; nil when AllowedClientCIDRs is nil.
// p has been validated, so every entry parses.
func newClientRule(p *Policy) *clientRule {
	if p.AllowedClientCIDRs == nil {
		return nil
	}
	cr := &clientRule{allowed: []netip.Prefix{}}
	for _, s := range p.AllowedClientCIDRs {
		if pr, err := parseCIDR(s); err == nil {
			cr.allowed = append(cr.allowed, pr)
		}
	}
	for _, s := range p.TrustedProxies {
		if pr, err := parseCIDR(s); err == nil {
			cr.proxies = append(cr.proxies, pr)
		}
	}
	return cr
}

// check returns nil when r's client address is allowed (or nothing is checked), else
// the 403 denial.
func (cr *clientRule) check(r *http.Request) *Error {
	if cr == nil {
		return nil
	}
	addr, why := clientAddress(r, cr.proxies)
	if !addr.IsValid() {
		return forbidden(ReasonClientAddressNotAllowed, "client address unknown: "+why)
	}
	if prefixesContain(cr.allowed, addr) {
		return nil
	}
	return forbidden(ReasonClientAddressNotAllowed, fmt.Sprintf("client address %s is not in AllowedClientCIDRs", addr))
}

// clientAddress is the address of r's client: the connection's peer, or, when the
// peer is a trusted proxy, the rightmost X-Forwarded-For entry that is not a trusted
// proxy (the leftmost when all are). An invalid address comes with the reason.
func clientAddress(r *http.Request, proxies []netip.Prefix) (netip.Addr, string) {
	peer, ok := parseHostAddr(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, fmt.Sprintf("the connection's address %q is not an IP address", truncate(r.RemoteAddr))
	}
	if !prefixesContain(proxies, peer) {
		return peer, ""
	}
	// Walked from the right, entry by entry, never splitting more than the
	// hops examined: the header may hold hundreds of thousands of entries.
	vals := r.Header.Values("X-Forwarded-For")
	if len(vals) == 0 {
		return netip.Addr{}, fmt.Sprintf("trusted proxy %s sent no X-Forwarded-For", peer)
	}
	addr, hops := peer, 0
	for i := len(vals) - 1; i >= 0; i-- {
		for v := vals[i]; ; hops++ {
			if hops >= maxForwardedHops {
				return netip.Addr{}, fmt.Sprintf("X-Forwarded-For has more than %d trusted hops", maxForwardedHops)
			}
			comma := strings.LastIndexByte(v, ',')
			entry := strings.TrimSpace(v[comma+1:])
			a, ok := parseHostAddr(entry)
			if !ok {
				return netip.Addr{}, fmt.Sprintf("X-Forwarded-For entry %q is not an IP address", truncate(entry))
			}
			addr = a
			if !prefixesContain(proxies, a) {
				return a, ""
			}
			if comma < 0 {
				hops++
				break
			}
			v = v[:comma]
		}
	}
	return addr, ""
}

// parseHostAddr parses "ip", "ip:port", "[ipv6]" or "[ipv6]:port", dropping any zone
// and unmapping IPv4-mapped IPv6 addresses.
func parseHostAddr(s string) (netip.Addr, bool) {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a = ap.Addr()
	} else if x, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		a = x
	} else {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// prefixesContain reports whether a is in any of ps.
func prefixesContain(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseCIDR parses a CIDR block ("10.0.0.0/8"; host bits are ignored, as Vault does)
// or a bare address (that one address).
func parseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, errors.New("an IPv4-mapped block shorter than /96")
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("an address with a zone")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// clientProblems validates AllowedClientCIDRs and TrustedProxies.
func clientProblems(p Policy) []policyProblem {
	var probs []policyProblem
	for _, l := range []struct {
		field string
		items []string
	}{{"AllowedClientCIDRs", p.AllowedClientCIDRs}, {"TrustedProxies", p.TrustedProxies}} {
		for i, e := range l.items {
			if strings.TrimSpace(e) == "" {
				continue // reported with the other empty entries
			}
			if _, err := parseCIDR(e); err != nil {
				probs = append(probs, policyProblem{field: l.field,
					format: "entry %d %q is not a CIDR block or an IP address: write e.g. 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7",
					args:   []any{i, e}})
			}
		}
	}
	if strings.ContainsFunc(p.UserClaim, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		probs = append(probs, policyProblem{field: "UserClaim", format: "%q contains control characters", args: []any{p.UserClaim}})
	}
	return probs
}

// setPrincipalName sets p.Name from the claim named by pol.UserClaim, refusing a
// token without it or with a value that is not a non-empty string (as Vault refuses
// such a login).
func setPrincipalName(p *Principal, pol *Policy, c *tokenClaims) *Error {
	if pol.UserClaim == "" {
		return nil
	}
	v, ok := c.claim(pol.UserClaim)
	if !ok || v.Kind() != '"' {
		return forbidden(ReasonClaimMismatch, fmt.Sprintf("user claim %q is absent or not a string", pol.UserClaim))
	}
	s := claimString(v)
	if s == "" {
		return forbidden(ReasonClaimMismatch, fmt.Sprintf("user claim %q is empty", pol.UserClaim))
	}
	p.Name = s
	return nil
}

// logIgnoredFields warns, once per load, about the policy file's fields that were read
// but cannot be honoured.
func logIgnoredFields(logger *slog.Logger, path string, ignored []string) {
	if logger == nil || len(ignored) == 0 {
		return
	}
	logger.Warn("authmw: policy file fields not honoured", slog.String("path", path),
		slog.String("fields", strings.Join(ignored, "; ")))
}
