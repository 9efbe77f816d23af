package authmw

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// maxPolicyFileBytes bounds a policy file; real authsettingsV2 documents are a few KiB.
const maxPolicyFileBytes = 1 << 20

// LoadPolicyFile reads a policy from a JSON file: an Easy Auth authsettingsV2
// document (the ARM properties object, a whole resource document, the output of
// `az webapp auth show`, or the WEBSITE_AUTH_V2_CONFIG_JSON value; mapping in the
// README, "Easy Auth authsettingsV2 -> f2fauth") or a Vault/OpenBao JWT auth role
// (the body of `vault write` or the output of `vault read -format=json`; mapping in
// docs/vault-role.md), told apart by their keys. Parsing is strict: an unknown or
// repeated key, or a setting authmw cannot honour, is an error. Role fields that only
// shape the token Vault issues (token_policies, ...) are skipped; the Middleware logs
// them when it loads the file.
//
// The result is not validated on its own, because other settings may complete it:
// set what is missing and call Policy.Validate, or give the path to New as
// Config.PolicyFile (or AUTHMW_POLICY_FILE), which lays Config.Policy over the file,
// validates the result and watches the file. Errors name the file and wrap
// ErrInvalidPolicy when the content is at fault.
func LoadPolicyFile(path string) (Policy, error) {
	p, _, _, err := loadPolicyFile(path)
	return p, err
}

// loadPolicyFile is LoadPolicyFile also returning the file's format and the fields it
// read but does not honour (to be logged).
func loadPolicyFile(path string) (Policy, policyFormat, []string, error) {
	_, data, err := readPolicyFile(path)
	if err != nil {
		return Policy{}, 0, nil, fmt.Errorf("policy file: %w", err)
	}
	if len(data) > maxPolicyFileBytes {
		return Policy{}, 0, nil, invalidPolicy("policy file %s is larger than %d bytes", path, maxPolicyFileBytes)
	}
	p, format, ignored, err := parsePolicyDocument(data)
	if err != nil {
		return Policy{}, 0, nil, fmt.Errorf("policy file %s: %w", path, err)
	}
	return p, format, ignored, nil
}

// readPolicyFile reads at most maxPolicyFileBytes+1 bytes of the regular file at
// path (a symbolic link to one is followed), with its file info. Anything else — a
// named pipe, a device, a directory — is an error, before it is opened: opening a
// pipe would block the reader for good, and the policy would silently never change.
func readPolicyFile(path string) (os.FileInfo, []byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file (%s): point it at a JSON file", path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() { // replaced between the checks
		return nil, nil, fmt.Errorf("%s is not a regular file (%s): point it at a JSON file", path, fi.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFileBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return fi, data, nil
}

// authSettingsV2 is the part of Easy Auth's authsettingsV2 properties that authmw
// reads. Field names match case-insensitively (encoding/json), so both the ARM
// camelCase and PascalCase copies decode; checkKeys has refused unknown keys and
// case-variant duplicates before it is decoded.
type authSettingsV2 struct {
	GlobalValidation *struct {
		RequireAuthentication       *bool    `json:"requireAuthentication"`
		UnauthenticatedClientAction string   `json:"unauthenticatedClientAction"`
		ExcludedPaths               []string `json:"excludedPaths"`
	} `json:"globalValidation"`
	IdentityProviders *struct {
		AzureActiveDirectory *struct {
			Enabled      *bool `json:"enabled"`
			Registration *struct {
				OpenIDIssuer string `json:"openIdIssuer"`
				ClientID     string `json:"clientId"`
			} `json:"registration"`
			Login *struct {
				DisableWWWAuthenticate bool `json:"disableWWWAuthenticate"`
			} `json:"login"`
			Validation *struct {
				AllowedAudiences []string `json:"allowedAudiences"`
				JWTClaimChecks   *struct {
					AllowedGroups             []string `json:"allowedGroups"`
					AllowedClientApplications []string `json:"allowedClientApplications"`
				} `json:"jwtClaimChecks"`
				DefaultAuthorizationPolicy *struct {
					AllowedApplications []string `json:"allowedApplications"`
					AllowedPrincipals   *struct {
						Groups     []string `json:"groups"`
						Identities []string `json:"identities"`
					} `json:"allowedPrincipals"`
				} `json:"defaultAuthorizationPolicy"`
			} `json:"validation"`
		} `json:"azureActiveDirectory"`
	} `json:"identityProviders"`
	// F2FAuth is authmw's extension block for the checks Easy Auth lacks.
	F2FAuth json.RawMessage `json:"f2fauth"`
	// Properties is set when the document is a whole ARM resource ({"properties": {...}}).
	Properties json.RawMessage `json:"properties"`
}

// f2fExtension is the "f2fauth" block.
type f2fExtension struct {
	RequiredRoles          []string                `json:"requiredRoles"`
	AllowedTenants         []string                `json:"allowedTenants"`
	AppOnly                *bool                   `json:"appOnly"`
	BoundClaims            map[string]stringOrList `json:"boundClaims"`
	ClaimMappings          map[string]string       `json:"claimMappings"`
	MaxTokenAge            *jsonDuration           `json:"maxTokenAge"`
	MaxTokenLifetime       *jsonDuration           `json:"maxTokenLifetime"`
	ApplicationClaim       string                  `json:"applicationClaim"`
	ClockSkew              *jsonDuration           `json:"clockSkew"`
	EasyAuthHeaders        *bool                   `json:"easyAuthHeaders"`
	DisableWWWAuthenticate *bool                   `json:"disableWWWAuthenticate"`
	TenantID               string                  `json:"tenantId"`
	AuthorityHost          string                  `json:"authorityHost"`
	Issuers                []string                `json:"issuers"`
	Audiences              []string                `json:"audiences"`
}

// jsonDuration decodes "90s"/"5m"/"1h" strings or a number of seconds.
type jsonDuration time.Duration

// UnmarshalJSON accepts a duration string ("5m") or a number of seconds.
func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err := json.Unmarshal(b, &n); err != nil {
			return errors.New("want a duration string such as \"5m\" or a number of seconds")
		}
		if n > float64(1<<62)/float64(time.Second) || n < -float64(1<<62)/float64(time.Second) {
			return errors.New("duration out of range")
		}
		*d = jsonDuration(time.Duration(n * float64(time.Second)))
		return nil
	}
	v, err := parseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a duration: use e.g. \"90s\", \"5m\" or \"1h\"", s)
	}
	*d = jsonDuration(v)
	return nil
}

// parseAuthSettingsV2 reads a Policy from an Easy Auth authsettingsV2 document. It
// accepts the ARM properties object, a whole resource document ({"id": ...,
// "properties": {...}}), the output of `az webapp auth show`, and the
// WEBSITE_AUTH_V2_CONFIG_JSON app setting (also when that is given as a JSON string).
// The mapping is documented in the README ("Easy Auth authsettingsV2 -> f2fauth").
//
// It is strict, because a key it skipped could silently drop a check: a key it does
// not know (in the parts it reads: globalValidation, the azureActiveDirectory
// provider, the "f2fauth" extension block) is an error, and so is a key given twice,
// also in another case ("allowedApplications" and "ALLOWEDAPPLICATIONS"). Sections
// that do not concern bearer validation (platform, login, httpSettings, other
// providers) are not read. An empty list ([]) is kept as an empty list, which
// accepts nobody. Settings that cannot be honoured are errors too: a disabled Entra
// provider, RedirectToLoginPage, a multi-tenant openIdIssuer. Syntax errors give the
// line and column. The result is not validated as a whole (see LoadPolicyFile).
// Errors wrap ErrInvalidPolicy.
func parseAuthSettingsV2(data []byte) (Policy, error) {
	if !utf8.Valid(data) {
		return Policy{}, invalidPolicy("authsettingsV2: the document is not valid UTF-8")
	}
	data = bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\ufeff"))) // a byte order mark, as some editors write
	if len(data) > 0 && data[0] == '"' {                             // the app setting value quoted as a JSON string
		var inner string
		if err := json.Unmarshal(data, &inner); err != nil {
			return Policy{}, invalidPolicy("authsettingsV2: %s", jsonProblem(data, err))
		}
		data = bytes.TrimSpace([]byte(inner))
	}
	if len(data) == 0 || data[0] != '{' {
		return Policy{}, invalidPolicy("authsettingsV2: want a JSON object (the authsettingsV2 properties or the whole resource)")
	}
	if err := checkKeys(data, authSettingsSchema); err != nil {
		return Policy{}, invalidPolicy("authsettingsV2: %v", err)
	}
	var doc authSettingsV2
	if err := json.Unmarshal(data, &doc); err != nil {
		return Policy{}, invalidPolicy("authsettingsV2: %s", jsonProblem(data, err))
	}
	if len(doc.Properties) > 0 && !isJSONNull(doc.Properties) {
		if doc.GlobalValidation != nil || doc.IdentityProviders != nil {
			return Policy{}, invalidPolicy("authsettingsV2: globalValidation or identityProviders appear both at top level and in properties: keep one")
		}
		outerExt := doc.F2FAuth
		var props authSettingsV2
		if err := json.Unmarshal(doc.Properties, &props); err != nil {
			return Policy{}, invalidPolicy("authsettingsV2 properties: %v", err)
		}
		if len(props.F2FAuth) == 0 {
			props.F2FAuth = outerExt
		} else if len(outerExt) > 0 {
			return Policy{}, invalidPolicy("authsettingsV2: f2fauth appears both at top level and in properties: keep one")
		}
		doc = props
	}
	return doc.toPolicy()
}

// keySchema lists the keys an object may hold (matched case-insensitively, like
// encoding/json does), each with the schema of its value: nil for a value whose keys
// are not checked (a leaf, or a section authmw does not read), anyKeys for a map with
// free keys (told apart exactly, as claim names are).
type keySchema map[string]keySchema

var anyKeys = keySchema{"": nil}

func schemaKeys(names ...string) keySchema {
	s := make(keySchema, len(names))
	for _, n := range names {
		s[n] = nil
	}
	return s
}

// with returns s with name -> child added.
func (s keySchema) with(name string, child keySchema) keySchema {
	s[name] = child
	return s
}

// lookup finds key in s and returns the name it matched (key itself in a map with
// free keys, its lower case when s is nil), which tells duplicates apart.
func (s keySchema) lookup(key string) (name string, child keySchema, known bool) {
	if s == nil {
		return strings.ToLower(key), nil, true
	}
	if _, free := s[""]; free {
		return key, nil, true
	}
	for k, v := range s {
		if strings.EqualFold(k, key) {
			return k, v, true
		}
	}
	return "", nil, false
}

// authSettingsSchema is the key schema of an authsettingsV2 document.
var authSettingsSchema = func() keySchema {
	aad := schemaKeys("enabled", "isAutoProvisioned").
		with("registration", schemaKeys("openIdIssuer", "clientId", "clientSecretSettingName",
			"clientSecretCertificateThumbprint", "clientSecretCertificateSubjectAlternativeName", "clientSecretCertificateIssuer")).
		with("login", schemaKeys("loginParameters", "disableWWWAuthenticate")).
		with("validation", schemaKeys("allowedAudiences").
			with("jwtClaimChecks", schemaKeys("allowedGroups", "allowedClientApplications")).
			with("defaultAuthorizationPolicy", schemaKeys("allowedApplications").
				with("allowedPrincipals", schemaKeys("groups", "identities"))))
	f2f := schemaKeys("requiredRoles", "allowedTenants", "appOnly", "maxTokenAge", "maxTokenLifetime", "applicationClaim", "clockSkew", "easyAuthHeaders",
		"disableWWWAuthenticate", "tenantId", "authorityHost", "issuers", "audiences").
		with("boundClaims", anyKeys).with("claimMappings", anyKeys)
	props := schemaKeys("platform", "login", "httpSettings", "clearInboundClaimsMapping").
		with("globalValidation", schemaKeys("requireAuthentication", "unauthenticatedClientAction", "redirectToProvider", "excludedPaths")).
		with("identityProviders", schemaKeys("facebook", "gitHub", "google", "twitter", "apple", "azureStaticWebApps",
			"customOpenIdConnectProviders", "legacyMicrosoftAccount").with("azureActiveDirectory", aad)).
		with("f2fauth", f2f)
	top := schemaKeys("id", "name", "type", "kind", "location", "resourceGroup", "systemData", "tags").with("properties", props)
	for k, v := range props {
		top[k] = v
	}
	return top
}()

// checkKeys walks the JSON document data and refuses syntax errors, keys that
// schema does not know and keys given twice (in any case), naming the key.
func checkKeys(data []byte, schema keySchema) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	err := walkJSON(dec, schema, "", 0)
	if err == nil {
		if _, e := dec.Token(); e != io.EOF {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	var ke schemaError
	if err == nil || errors.As(err, &ke) {
		return err
	}
	return errors.New(jsonProblem(data, offsetError{err, dec.InputOffset()}))
}

// schemaError is a problem with a key that walkJSON found.
type schemaError string

func (e schemaError) Error() string { return string(e) }

// offsetError is an error of the JSON decoder with the offset it stopped at.
type offsetError struct {
	err    error
	offset int64
}

func (e offsetError) Error() string { return e.err.Error() }

// maxPolicyDepth bounds the nesting of a policy document (real ones nest 6 deep).
const maxPolicyDepth = 32

// walkJSON reads one value from dec, checking object keys against schema (nil: unchecked).
func walkJSON(dec *json.Decoder, schema keySchema, path string, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); ok && (d == '[' || d == '{') && depth >= maxPolicyDepth {
		return schemaError(fmt.Sprintf("%q nests deeper than %d levels", path, maxPolicyDepth))
	}
	switch tok {
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := walkJSON(dec, nil, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('{'):
	default:
		return nil
	}
	seen := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		at := strings.TrimPrefix(path+"."+key, ".")
		name, child, known := schema.lookup(key)
		if !known {
			return schemaError(fmt.Sprintf("unknown key %q: check its spelling (known here: %s)", at, knownKeys(schema)))
		}
		if prev, dup := seen[name]; dup {
			return schemaError(fmt.Sprintf("key %q is given twice (also as %q; keys match case-insensitively): keep one", at, prev))
		}
		seen[name] = key
		if err := walkJSON(dec, child, at, depth+1); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

// knownKeys lists schema's keys, sorted.
func knownKeys(schema keySchema) string {
	names := make([]string, 0, len(schema))
	for k := range schema {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// jsonProblem describes a JSON decoding error with the line and column in data.
func jsonProblem(data []byte, err error) string {
	var (
		off int64 = -1
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
		oe  offsetError
	)
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	case errors.As(err, &oe):
		off = oe.offset
	}
	if off < 0 || off > int64(len(data)) {
		return err.Error()
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

func isJSONNull(b json.RawMessage) bool { return string(bytes.TrimSpace(b)) == "null" }

func (doc *authSettingsV2) toPolicy() (Policy, error) {
	var (
		p    Policy
		errs []error
	)
	bad := func(field, format string, args ...any) {
		errs = append(errs, invalidPolicy("authsettingsV2 %s %s", field, fmt.Sprintf(format, args...)))
	}

	if gv := doc.GlobalValidation; gv != nil {
		p.ExcludedPaths = slices.Clone(gv.ExcludedPaths)
		if gv.RequireAuthentication != nil && !*gv.RequireAuthentication {
			// "Allow unauthenticated access": the action is then irrelevant in Easy Auth.
			p.UnauthenticatedAction = AllowAnonymous
		} else if a := strings.TrimSpace(gv.UnauthenticatedClientAction); a != "" {
			ua, err := parseUnauthenticatedAction(a)
			if err != nil {
				bad("globalValidation.unauthenticatedClientAction", "%s", err)
			}
			p.UnauthenticatedAction = ua
		}
	}

	if ip := doc.IdentityProviders; ip != nil && ip.AzureActiveDirectory != nil {
		aad := ip.AzureActiveDirectory
		if aad.Enabled != nil && !*aad.Enabled {
			bad("identityProviders.azureActiveDirectory.enabled", "is false: this document does not validate Entra tokens; enable the provider or remove the file")
		}
		if r := aad.Registration; r != nil {
			if iss := strings.TrimSpace(r.OpenIDIssuer); iss != "" {
				if err := issuerIntoPolicy(iss, &p); err != nil {
					bad("identityProviders.azureActiveDirectory.registration.openIdIssuer", "%s", err)
				}
			}
			if id := strings.TrimSpace(r.ClientID); id != "" {
				p.Audiences = appendUnique(p.Audiences, id)
			}
		}
		if l := aad.Login; l != nil {
			p.DisableWWWAuthenticate = l.DisableWWWAuthenticate
		}
		if v := aad.Validation; v != nil {
			p.Audiences = appendUnique(p.Audiences, v.AllowedAudiences...)
			if dp := v.DefaultAuthorizationPolicy; dp != nil {
				p.AllowedApplications = appendUnique(p.AllowedApplications, dp.AllowedApplications...)
				if ap := dp.AllowedPrincipals; ap != nil {
					p.AllowedIdentities = appendUnique(p.AllowedIdentities, ap.Identities...)
					p.AllowedGroups = appendUnique(p.AllowedGroups, ap.Groups...)
				}
			}
			if jc := v.JWTClaimChecks; jc != nil {
				p.AllowedApplications = appendUnique(p.AllowedApplications, jc.AllowedClientApplications...)
				p.AllowedGroups = appendUnique(p.AllowedGroups, jc.AllowedGroups...)
			}
		}
	}

	if len(doc.F2FAuth) > 0 && !isJSONNull(doc.F2FAuth) {
		var ext f2fExtension
		if err := json.Unmarshal(doc.F2FAuth, &ext); err != nil {
			bad("f2fauth", "is not valid: %v", err)
		} else {
			ext.applyTo(&p)
		}
	}
	return p, errors.Join(errs...)
}

func (ext *f2fExtension) applyTo(p *Policy) {
	p.RequiredRoles = appendUnique(p.RequiredRoles, ext.RequiredRoles...)
	p.AllowedTenants = appendUnique(p.AllowedTenants, ext.AllowedTenants...)
	p.Issuers = appendUnique(p.Issuers, ext.Issuers...)
	p.Audiences = appendUnique(p.Audiences, ext.Audiences...)
	if ext.AppOnly != nil {
		p.AppOnly = *ext.AppOnly
	}
	if ext.EasyAuthHeaders != nil {
		p.EasyAuthHeaders = *ext.EasyAuthHeaders
	}
	if ext.DisableWWWAuthenticate != nil {
		p.DisableWWWAuthenticate = *ext.DisableWWWAuthenticate
	}
	if ext.MaxTokenAge != nil {
		p.MaxTokenAge = time.Duration(*ext.MaxTokenAge)
	}
	if ext.MaxTokenLifetime != nil {
		p.MaxTokenLifetime = time.Duration(*ext.MaxTokenLifetime)
	}
	if ext.ApplicationClaim != "" {
		p.ApplicationClaim = ext.ApplicationClaim
	}
	if ext.ClockSkew != nil {
		p.ClockSkew = time.Duration(*ext.ClockSkew)
	}
	if ext.TenantID != "" {
		p.TenantID = ext.TenantID
	}
	if ext.AuthorityHost != "" {
		p.AuthorityHost = ext.AuthorityHost
	}
	if len(ext.BoundClaims) > 0 {
		p.BoundClaims = make(map[string][]string, len(ext.BoundClaims))
		for k, v := range ext.BoundClaims {
			p.BoundClaims[k] = v
		}
	}
	if len(ext.ClaimMappings) > 0 {
		p.ClaimMappings = ext.ClaimMappings
	}
}

// issuerIntoPolicy maps registration.openIdIssuer: a tenant-specific Entra issuer
// (<authority>/<tid>/v2.0, <authority>/<tid>, https://sts.windows.net/<tid>/) becomes
// TenantID (and AuthorityHost for a login.* authority); anything else is an explicit issuer.
func issuerIntoPolicy(iss string, p *Policy) error {
	u, err := url.Parse(iss)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", iss)
	}
	host := strings.ToLower(u.Hostname())
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	entraShape := strings.EqualFold(u.Scheme, "https") && u.RawQuery == "" && u.Fragment == "" &&
		(len(segs) == 1 || (len(segs) == 2 && segs[1] == "v2.0")) && segs[0] != "" && segs[0] != "v2.0"
	isSTS := host == "sts.windows.net"
	isLogin := strings.HasPrefix(host, "login.")
	if entraShape && (isSTS || isLogin) {
		tid := segs[0]
		switch strings.ToLower(tid) {
		case "common", "organizations", "consumers":
			return fmt.Errorf("%q is not tenant-specific (Easy Auth would validate no issuer or tenant): use <authority>/<tenant-id>/v2.0, and list accepted tenants in f2fauth.allowedTenants", iss)
		}
		if tenantIDPattern.MatchString(tid) {
			p.TenantID = tid
			if isLogin {
				p.AuthorityHost = "https://" + u.Host
			}
			return nil
		}
	}
	p.Issuers = appendUnique(p.Issuers, iss)
	return nil
}

// appendUnique appends the non-empty items of add that dst does not hold yet. The
// result is non-nil when add is (a list given empty stays present: it means nobody).
func appendUnique(dst []string, add ...string) []string {
	if dst == nil && add != nil {
		dst = []string{}
	}
	for _, a := range add {
		a = strings.TrimSpace(a)
		if a != "" && !slices.Contains(dst, a) {
			dst = append(dst, a)
		}
	}
	return dst
}

// mergePolicy returns base with every set field of override replacing base's: a
// non-empty string or map, a non-nil list (also an empty one, which accepts nobody), a
// non-zero duration, or a true boolean. (An override therefore cannot turn a boolean
// back to false, nor remove a list.) Lists are replaced, not merged. ConfigFromEnv and
// the policy-file watcher use it to lay the environment's settings over the file's.
func mergePolicy(base, override Policy) Policy {
	out := base
	str := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	list := func(dst *[]string, v []string) {
		if v != nil {
			*dst = v
		}
	}
	str(&out.TenantID, override.TenantID)
	str(&out.AuthorityHost, override.AuthorityHost)
	list(&out.Issuers, override.Issuers)
	list(&out.Audiences, override.Audiences)
	list(&out.AllowedApplications, override.AllowedApplications)
	list(&out.AllowedIdentities, override.AllowedIdentities)
	list(&out.AllowedGroups, override.AllowedGroups)
	list(&out.AllowedTenants, override.AllowedTenants)
	list(&out.RequiredRoles, override.RequiredRoles)
	list(&out.ExcludedPaths, override.ExcludedPaths)
	list(&out.AllowedClientCIDRs, override.AllowedClientCIDRs)
	list(&out.TrustedProxies, override.TrustedProxies)
	str(&out.UserClaim, override.UserClaim)
	if override.AppOnly {
		out.AppOnly = true
	}
	if len(override.BoundClaims) > 0 {
		out.BoundClaims = override.BoundClaims
	}
	if len(override.ClaimMappings) > 0 {
		out.ClaimMappings = override.ClaimMappings
	}
	if override.MaxTokenAge != 0 {
		out.MaxTokenAge = override.MaxTokenAge
	}
	if override.ClockSkew != 0 {
		out.ClockSkew = override.ClockSkew
	}
	if override.MaxTokenLifetime != 0 {
		out.MaxTokenLifetime = override.MaxTokenLifetime
	}
	if override.ApplicationClaim != "" {
		out.ApplicationClaim = override.ApplicationClaim
	}
	if override.UnauthenticatedAction != "" {
		out.UnauthenticatedAction = override.UnauthenticatedAction
	}
	if override.EasyAuthHeaders {
		out.EasyAuthHeaders = true
	}
	if override.DisableWWWAuthenticate {
		out.DisableWWWAuthenticate = true
	}
	if override.InsecureAllowAnyCaller {
		out.InsecureAllowAnyCaller = true
	}
	return out
}
