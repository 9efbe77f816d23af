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
)

// maxPolicyFileBytes bounds a policy file; real authsettingsV2 documents are a few KiB.
const maxPolicyFileBytes = 1 << 20

// LoadPolicyFile reads a policy from a JSON file in the shape of Easy Auth's
// authsettingsV2 (see ParseAuthSettingsV2). The result is not validated on its own,
// because environment settings may complete it: merge it (MergePolicy) and call
// Policy.Validate on the result. Errors name the file and wrap ErrInvalidPolicy when
// the content is at fault.
func LoadPolicyFile(path string) (Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return Policy{}, fmt.Errorf("authmw: policy file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFileBytes+1))
	if err != nil {
		return Policy{}, fmt.Errorf("authmw: policy file %s: %w", path, err)
	}
	if len(data) > maxPolicyFileBytes {
		return Policy{}, fmt.Errorf("%w: policy file %s is larger than %d bytes", ErrInvalidPolicy, path, maxPolicyFileBytes)
	}
	p, err := ParseAuthSettingsV2(data)
	if err != nil {
		return Policy{}, fmt.Errorf("policy file %s: %w", path, err)
	}
	return p, nil
}

// authSettingsV2 is the part of Easy Auth's authsettingsV2 properties that authmw
// reads. Field names match case-insensitively (encoding/json), so both the ARM
// camelCase and PascalCase copies decode. Unknown fields are ignored.
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

// f2fExtension is the "f2fauth" block. Unlike the Easy Auth part it is decoded
// strictly: a misspelt key is an error, because it would silently drop a check.
type f2fExtension struct {
	RequiredRoles          []string                `json:"requiredRoles"`
	AllowedTenants         []string                `json:"allowedTenants"`
	AppOnly                *bool                   `json:"appOnly"`
	BoundClaims            map[string]stringOrList `json:"boundClaims"`
	ClaimMappings          map[string]string       `json:"claimMappings"`
	MaxTokenAge            *jsonDuration           `json:"maxTokenAge"`
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

// ParseAuthSettingsV2 reads a Policy from an Easy Auth authsettingsV2 document. It
// accepts the ARM properties object, a whole resource document ({"id": ...,
// "properties": {...}}), the output of `az webapp auth show`, and the
// WEBSITE_AUTH_V2_CONFIG_JSON app setting (also when that is given as a JSON string).
// Unknown Easy Auth fields are ignored; the "f2fauth" extension block (top level, or
// inside properties) is decoded strictly. The mapping is documented in the README
// ("Easy Auth authsettingsV2 -> f2fauth"). Settings that cannot be honoured are errors:
// a disabled Entra provider, RedirectToLoginPage, a multi-tenant openIdIssuer. The
// result is not validated as a whole (see LoadPolicyFile). Errors wrap ErrInvalidPolicy.
func ParseAuthSettingsV2(data []byte) (Policy, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' { // the app setting value quoted as a JSON string
		var inner string
		if err := json.Unmarshal(data, &inner); err != nil {
			return Policy{}, fmt.Errorf("%w: authsettingsV2: %v", ErrInvalidPolicy, err)
		}
		data = bytes.TrimSpace([]byte(inner))
	}
	if len(data) == 0 || data[0] != '{' {
		return Policy{}, fmt.Errorf("%w: authsettingsV2: want a JSON object (the authsettingsV2 properties or the whole resource)", ErrInvalidPolicy)
	}
	var doc authSettingsV2
	if err := json.Unmarshal(data, &doc); err != nil {
		return Policy{}, fmt.Errorf("%w: authsettingsV2: %v", ErrInvalidPolicy, err)
	}
	if len(doc.Properties) > 0 && !isJSONNull(doc.Properties) && doc.GlobalValidation == nil && doc.IdentityProviders == nil {
		outerExt := doc.F2FAuth
		var props authSettingsV2
		if err := json.Unmarshal(doc.Properties, &props); err != nil {
			return Policy{}, fmt.Errorf("%w: authsettingsV2 properties: %v", ErrInvalidPolicy, err)
		}
		if len(props.F2FAuth) == 0 {
			props.F2FAuth = outerExt
		} else if len(outerExt) > 0 {
			return Policy{}, fmt.Errorf("%w: authsettingsV2: f2fauth appears both at top level and in properties: keep one", ErrInvalidPolicy)
		}
		doc = props
	}
	return doc.toPolicy()
}

func isJSONNull(b json.RawMessage) bool { return string(bytes.TrimSpace(b)) == "null" }

func (doc *authSettingsV2) toPolicy() (Policy, error) {
	var (
		p    Policy
		errs []error
	)
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: authsettingsV2 %s %s", ErrInvalidPolicy, field, fmt.Sprintf(format, args...)))
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
		dec := json.NewDecoder(bytes.NewReader(doc.F2FAuth))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ext); err != nil {
			bad("f2fauth", "is not valid: %v (keys: requiredRoles, allowedTenants, appOnly, boundClaims, claimMappings, maxTokenAge, clockSkew, easyAuthHeaders, disableWWWAuthenticate, tenantId, authorityHost, issuers, audiences)", err)
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

// appendUnique appends the non-empty items of add that dst does not hold yet.
func appendUnique(dst []string, add ...string) []string {
	for _, a := range add {
		a = strings.TrimSpace(a)
		if a != "" && !slices.Contains(dst, a) {
			dst = append(dst, a)
		}
	}
	return dst
}

// MergePolicy returns base with every non-zero field of override replacing base's:
// a non-empty string, list or map, a non-zero duration, or a true boolean. (An
// override therefore cannot turn a boolean back to false, nor empty a list.) Lists are
// replaced, not merged. ConfigFromEnv and the policy-file watcher use it to lay the
// environment's settings over the file's.
func MergePolicy(base, override Policy) Policy {
	out := base
	str := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	list := func(dst *[]string, v []string) {
		if len(v) > 0 {
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
	return out
}
