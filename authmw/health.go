package authmw

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// errIssuerMismatch marks a discovery document that declares another issuer
// than the one configured.
var errIssuerMismatch = errors.New("issuer mismatch")

// SourceError is the failure of one configured issuer's discovery document
// or key set. It names the app setting to check (and the Config field behind
// it), quotes what was answered (bounded, as an excerpt) and says what to
// check. It wraps [ErrSourceTransient] or [ErrSourcePermanent].
type SourceError struct {
	// Setting is the app setting to check: AUTHMW_TENANT_ID, AUTHMW_ISSUER or
	// AUTHMW_AUTHORITY_HOST.
	Setting string
	// Field is the Config field behind the issuer, e.g. "Policy.TenantID" or
	// "Policy.Issuers[0]"; Tokens is "v1.0" or "v2.0" in tenant mode.
	Field, Tokens string
	// URL is the discovery base: the document is {URL}/.well-known/openid-configuration.
	URL string
	// Err is what failed (the request and what was answered).
	Err error
	// Check says what to check, in a sentence that starts after "check ".
	Check string
}

// Error reads "AUTHMW_TENANT_ID (Policy.TenantID, v2.0 tokens): GET …: permanent
// failure: HTTP status 400: "…": check that …".
func (e *SourceError) Error() string {
	field := e.Field
	if e.Tokens != "" {
		field += ", " + e.Tokens + " tokens"
	}
	return fmt.Sprintf("%s (%s): %v: check %s", e.Setting, field, e.Err, e.Check)
}

// Unwrap returns the cause, which wraps ErrSourceTransient or ErrSourcePermanent.
func (e *SourceError) Unwrap() error { return e.Err }

// Permanent reports whether the failure lasts until the issuer or the
// configuration changes (retrying does not help).
func (e *SourceError) Permanent() bool { return errors.Is(e.Err, ErrSourcePermanent) }

// explain builds the SourceError of err for spec: which setting applies and
// what to check.
func explain(spec *issuerSpec, err error, keys bool) *SourceError {
	se := &SourceError{Setting: spec.setting, Field: spec.field, Tokens: spec.tokens, URL: spec.base, Err: err}
	permanent := errors.Is(err, ErrSourcePermanent)
	text := err.Error()
	unknownTenant := strings.Contains(text, "AADSTS90002") || strings.Contains(text, "invalid_tenant")
	customAuthority := spec.authority != "" && !strings.EqualFold(spec.authority, strings.TrimSuffix(DefaultAuthorityHost, "/"))
	if spec.tenantID != "" && customAuthority && !unknownTenant {
		se.Setting, se.Field = "AUTHMW_AUTHORITY_HOST", "Policy.AuthorityHost"
	}
	switch {
	case !permanent:
		se.Check = fmt.Sprintf("outbound access from this app to %s (firewall, DNS, proxy, private endpoint); "+
			"until the keys load, protected requests are answered 503 with Retry-After and the fetch is retried", hostOf(spec.base))
	case keys:
		se.Check = "the key set at the jwks_uri the discovery document declares: it must answer 200 with at least one " +
			"signing key usable with AUTHMW_ALGORITHMS (default RS256)"
	case spec.expected != "" && errors.Is(err, errIssuerMismatch):
		se.Check = "that AUTHMW_ISSUER is exactly the issuer its discovery document declares, the tokens' iss claim: " +
			"same scheme, host (localhost is not 127.0.0.1) and trailing slash"
	case spec.expected != "":
		se.Check = "that AUTHMW_ISSUER is the issuer URL, whose discovery document is served at " +
			"{AUTHMW_ISSUER}/.well-known/openid-configuration"
	case se.Setting == "AUTHMW_AUTHORITY_HOST":
		se.Check = fmt.Sprintf("that AUTHMW_AUTHORITY_HOST (now %s) is the Entra authority of the tenant's cloud "+
			"(default %s) and that AUTHMW_TENANT_ID is the tenant's Directory (tenant) ID", spec.authority, DefaultAuthorityHost)
	default:
		se.Check = fmt.Sprintf("that AUTHMW_TENANT_ID (now %s) is the Directory (tenant) ID of the Entra tenant that issues "+
			"the tokens (Entra admin center > Overview) and that AUTHMW_AUTHORITY_HOST (now %s) is that tenant's cloud",
			spec.tenantID, spec.authority)
	}
	return se
}

// hostOf returns the scheme and host of a URL, for hints.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	return raw
}

// sourceClass names the class of a source failure, for logs and health.
func sourceClass(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrSourcePermanent):
		return "permanent"
	case errors.Is(err, ErrSourceTransient):
		return "transient"
	default:
		return "unknown"
	}
}

// ReadinessError is returned by [Middleware.ReadinessError] while some
// issuer's keys are not loaded. It wraps [ErrNotReady] and each failing
// issuer's [*SourceError] (permanent ones first), so errors.Is(err,
// ErrSourcePermanent) tells a configuration error, which waiting will not
// fix, from an outage (ErrSourceTransient) or a first load still running
// (neither).
type ReadinessError struct {
	// Sources are the failures of the issuers not ready yet, permanent first.
	Sources []*SourceError
	// Pending counts the issuers not ready whose first attempt has not failed.
	Pending int
}

// Error names each failing issuer's setting, what was answered and what to check.
func (e *ReadinessError) Error() string {
	if len(e.Sources) == 0 {
		return fmt.Sprintf("%v: %d issuer(s) still loading", ErrNotReady, e.Pending)
	}
	parts := make([]string, len(e.Sources))
	for i, s := range e.Sources {
		parts[i] = s.Error()
	}
	return ErrNotReady.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap returns ErrNotReady and the sources' errors.
func (e *ReadinessError) Unwrap() []error {
	errs := []error{ErrNotReady}
	for _, s := range e.Sources {
		errs = append(errs, s)
	}
	return errs
}

// Permanent returns the first permanent failure, or nil.
func (e *ReadinessError) Permanent() *SourceError {
	for _, s := range e.Sources {
		if s.Permanent() {
			return s
		}
	}
	return nil
}

// ReadinessError returns nil when [Middleware.Ready]; otherwise a
// [*ReadinessError]. It does not block: [New] returns at once, and a service
// polls this (or [Middleware.WaitReady]) to decide whether to start, wait or
// stop. A permanent failure (errors.Is(err, ErrSourcePermanent)) will not
// pass by waiting: the issuer settings are wrong.
func (m *Middleware) ReadinessError() error {
	if m.Ready() {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	re := &ReadinessError{}
	for _, s := range m.specs {
		if s.keys != nil && s.keys.Ready() {
			continue
		}
		if err := m.specErr(s); err != nil {
			re.Sources = append(re.Sources, err.(*SourceError))
		} else {
			re.Pending++
		}
	}
	slices.SortStableFunc(re.Sources, func(a, b *SourceError) int {
		switch pa, pb := a.Permanent(), b.Permanent(); {
		case pa && !pb:
			return -1
		case pb && !pa:
			return 1
		}
		return 0
	})
	return re
}

// Health is a snapshot of the Middleware's state for health endpoints and
// probes. It holds no secret: no key material, no token, no error text.
type Health struct {
	// Ready: every issuer's keys are loaded ([Middleware.Ready]).
	Ready bool `json:"ready"`
	// PolicyVersion is a short digest of the active policy (with defaults):
	// instances with the same value enforce the same policy.
	PolicyVersion string `json:"policy_version"`
	// PolicyGeneration counts policy replacements since start (0: the initial one).
	PolicyGeneration uint64 `json:"policy_generation"`
	// Issuers has one entry per configured issuer, in configuration order.
	Issuers []IssuerHealth `json:"issuers"`
}

// IssuerHealth is the state of one configured issuer.
type IssuerHealth struct {
	// Setting is the app setting the issuer comes from (AUTHMW_TENANT_ID or
	// AUTHMW_ISSUER); Tokens is "v1.0" or "v2.0" in tenant mode.
	Setting string `json:"setting"`
	Tokens  string `json:"tokens,omitempty"`
	// DiscoveryURL is the discovery base, Issuer the issuer it declared and
	// JWKSURI its key set (both empty until discovered).
	DiscoveryURL string `json:"discovery_url"`
	Issuer       string `json:"issuer,omitempty"`
	JWKSURI      string `json:"jwks_uri,omitempty"`
	// KeysLoaded: its signing keys are loaded; Keys counts the usable ones.
	KeysLoaded bool `json:"keys_loaded"`
	Keys       int  `json:"keys"`
	// LastKeyRefresh is the last successful key fetch (zero: never).
	LastKeyRefresh time.Time `json:"last_key_refresh,omitzero"`
	// Failure is the class of the outstanding failure: "", "transient" or "permanent".
	Failure string `json:"failure,omitempty"`
	// FailingSince is when discovery started failing (zero when it is not failing).
	FailingSince time.Time `json:"failing_since,omitzero"`
}

// Health returns the current state of the issuers and the policy. It is
// cheap (no I/O) and safe to serve to probes.
func (m *Middleware) Health() Health {
	st := m.state.Load()
	h := Health{Ready: m.Ready(), PolicyVersion: policyVersion(&st.cp.Policy), PolicyGeneration: st.gen}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.specs {
		ih := IssuerHealth{Setting: s.setting, Tokens: s.tokens, DiscoveryURL: s.base, Issuer: s.issuer,
			FailingSince: s.failingSince, Failure: sourceClass(m.specErr(s))}
		if s.keys != nil {
			ih.JWKSURI = s.keys.URL()
			ih.KeysLoaded = s.keys.Ready()
			ih.Keys = s.keys.KeyCount()
			ih.LastKeyRefresh = s.keys.LastLoad()
		}
		h.Issuers = append(h.Issuers, ih)
	}
	return h
}

// policyVersion is a short digest of p.
func policyVersion(p *Policy) string {
	b, err := json.Marshal(p)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}
