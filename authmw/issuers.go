package authmw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/f2fauth/f2fauth/internal/jwks"
	"github.com/f2fauth/f2fauth/internal/netrule"
	"github.com/f2fauth/f2fauth/internal/retry"
)

// Backoff of discovery retries while an issuer is unreachable.
const (
	discoveryRetryMin = 250 * time.Millisecond
	discoveryRetryMax = 30 * time.Second
)

// retryAfterSeconds is the Retry-After sent with 503 keys_unavailable.
const retryAfterSeconds = "5"

// issuerSpec is one issuer to discover.
type issuerSpec struct {
	setting   string // the app setting it comes from: AUTHMW_TENANT_ID or AUTHMW_ISSUER
	field     string // the Policy field: Policy.TenantID or Policy.Issuers[i]
	tokens    string // tenant mode: "v1.0" or "v2.0", the tokens it serves
	base      string // discovery base: {base}/.well-known/openid-configuration
	expected  string // explicit issuers: the exact issuer the document must declare
	tenantID  string // tenant mode: the declared issuer must contain it
	authority string // tenant mode: Policy.AuthorityHost
	// Guarded by Middleware.mu.
	err          error        // of the last discovery (a *SourceError); nil once discovered
	failingSince time.Time    // first failure of the current run of failures
	keys         *jwks.KeySet // once discovered
	issuer       string       // the declared issuer, once discovered
}

// route is a discovered issuer: the exact iss it accepts and the keys that sign its tokens.
type route struct {
	issuer string
	keys   *jwks.KeySet
	entra  bool // discovered through Policy.TenantID: Entra claim rules, kid and tid required
}

// routeTable maps a token's iss to its route. It is replaced, never mutated.
type routeTable struct {
	byIss   map[string]*route
	pending int // issuers not discovered yet
}

// issuerSpecs lists the issuers a (defaulted, valid) policy trusts.
func issuerSpecs(p *Policy) []*issuerSpec {
	var specs []*issuerSpec
	if p.TenantID != "" {
		auth := strings.TrimSuffix(p.AuthorityHost, "/")
		for _, v := range []struct{ tokens, path string }{{"v1.0", ""}, {"v2.0", "/v2.0"}} {
			specs = append(specs, &issuerSpec{setting: "AUTHMW_TENANT_ID", field: "Policy.TenantID", tokens: v.tokens,
				base: auth + "/" + p.TenantID + v.path, tenantID: p.TenantID, authority: auth})
		}
	}
	for i, iss := range p.Issuers {
		specs = append(specs, &issuerSpec{setting: "AUTHMW_ISSUER", field: fmt.Sprintf("Policy.Issuers[%d]", i), base: iss, expected: iss})
	}
	return specs
}

// name is how logs and errors name spec: "AUTHMW_TENANT_ID (Policy.TenantID, v2.0 tokens)".
func (spec *issuerSpec) name() string {
	if spec.tokens != "" {
		return spec.setting + " (" + spec.field + ", " + spec.tokens + " tokens)"
	}
	return spec.setting + " (" + spec.field + ")"
}

// issuerKey identifies the issuer settings of a policy; SetPolicy cannot change them.
func issuerKey(p *Policy) string {
	return p.TenantID + "\x00" + strings.TrimSuffix(p.AuthorityHost, "/") + "\x00" + strings.Join(p.Issuers, "\x00")
}

// Readiness error classes: every error [Middleware.IssuerErrors] reports wraps
// one of them. Both are retried in the background.
var (
	// ErrSourceTransient: the discovery or key endpoint failed in a way that may
	// pass by itself (no connection, timeout, HTTP 408, 429 or 5xx).
	ErrSourceTransient = jwks.ErrTransient
	// ErrSourcePermanent: the failure lasts until the issuer or the configuration
	// changes (HTTP 4xx, a refused redirect, an issuer mismatch, a document too
	// large or without a usable key): check the issuer settings.
	ErrSourcePermanent = jwks.ErrPermanent
)

// discoverLoop discovers spec until it succeeds or the Middleware is closed,
// retrying with the shared backoff, and records the last error. Failures are
// logged at WARN, at ERROR once they have lasted jwks.ErrorLogAfter; nothing
// is logged for the attempt that Close interrupts.
func (m *Middleware) discoverLoop(spec *issuerSpec) {
	defer m.wg.Done()
	backoff := retry.Backoff{Initial: discoveryRetryMin, Max: discoveryRetryMax}
	for failures := 1; ; failures++ {
		err := m.fetched(docDiscovery, spec.base, time.Now(), m.discover(spec)) // OpenTelemetry (telemetry.go): times and records discover
		if m.ctx.Err() != nil {
			return // closed: the failure is ours, not the issuer's
		}
		if err == nil {
			return // discover cleared spec.err with the route installed
		}
		se := explain(spec, err, false)
		m.mu.Lock()
		spec.err = se
		if spec.failingSince.IsZero() {
			spec.failingSince = time.Now()
		}
		since := spec.failingSince
		m.mu.Unlock()
		wait := jwks.RetryDelay(backoff, failures, se)
		level := slog.LevelWarn
		if time.Since(since) >= jwks.ErrorLogAfter {
			level = slog.LevelError
		}
		m.log.LogAttrs(m.ctx, level, "authmw: issuer discovery failed; retrying",
			slog.String("setting", se.Setting), slog.String("url", spec.base), slog.String("class", sourceClass(se)),
			slog.Int("attempt", failures), slog.Int64("retry_in_ms", wait.Milliseconds()), slog.String("error", se.Error()))
		if !retry.Sleep(m.ctx, wait) {
			return
		}
	}
}

// discover fetches spec's discovery document (bounded, under the network
// rules), checks the issuer and jwks_uri it declares, and installs the route
// with a key set for the jwks_uri.
func (m *Middleware) discover(spec *issuerSpec) error {
	body, err := jwks.Get(m.ctx, m.cfg.HTTPClient, strings.TrimSuffix(spec.base, "/")+"/.well-known/openid-configuration", "application/json", false)
	if err != nil {
		return err
	}
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	permanent := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSourcePermanent, fmt.Sprintf(format, args...))
	}
	if err := json.Unmarshal(body, &meta); err != nil {
		return permanent("the discovery document is not JSON: %v", err)
	}
	// Explicit issuers: the declared issuer must be the one configured (go-oidc's
	// rule). Tenant mode: Entra v1 declares an issuer on another host than the
	// document (https://sts.windows.net/{tid}/), so it must name the tenant.
	if spec.expected != "" && meta.Issuer != spec.expected {
		return fmt.Errorf("%w: %w: discovery declares issuer %q, not %q", ErrSourcePermanent, errIssuerMismatch, netrule.Excerpt([]byte(meta.Issuer)), spec.expected)
	}
	if spec.tenantID != "" && !strings.Contains(strings.ToLower(meta.Issuer), strings.ToLower(spec.tenantID)) {
		return fmt.Errorf("%w: %w: discovery declares issuer %q, which is not of tenant %q", ErrSourcePermanent, errIssuerMismatch, netrule.Excerpt([]byte(meta.Issuer)), spec.tenantID)
	}
	for _, u := range []struct{ name, v string }{{"issuer", meta.Issuer}, {"jwks_uri", meta.JWKSURI}} {
		if err := netrule.CheckRawURL(u.v); err != nil {
			return permanent("%s %q declared by discovery: %v", u.name, netrule.Excerpt([]byte(u.v)), err)
		}
	}
	// Like a redirect, the declared jwks_uri may not downgrade the scheme: keys
	// named by a document fetched over https are fetched over https, even on
	// loopback (where any local process may listen on a port).
	if strings.HasPrefix(strings.ToLower(spec.base), "https:") && !strings.HasPrefix(strings.ToLower(meta.JWKSURI), "https:") {
		return permanent("jwks_uri %q declared by discovery over https is not https", netrule.Excerpt([]byte(meta.JWKSURI)))
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	entra := spec.tenantID != ""
	ksKey := meta.JWKSURI
	if entra {
		ksKey += "\x00kid required" // not shared with a generic issuer's set, which tries kid-less tokens
	}
	ks := m.keySets[ksKey]
	if ks == nil {
		ks, err = jwks.New(m.ctx, jwks.Options{
			URL:                meta.JWKSURI,
			Client:             m.cfg.HTTPClient,
			Algorithms:         m.cfg.Algorithms,
			UnknownKIDInterval: m.cfg.UnknownKeyInterval,
			RefreshInterval:    m.cfg.KeyRefreshInterval,
			Now:                m.cfg.Now,
			Logger:             m.cfg.Logger,
			RequireKID:         entra,                                                                            // Entra always sends kid
			OnFetch:            func(start time.Time, err error) { m.fetched(docJWKS, meta.Issuer, start, err) }, // OpenTelemetry
		})
		if err != nil {
			return permanent("%v", err)
		}
		m.keySets[ksKey] = ks
	}
	spec.keys = ks
	spec.issuer = meta.Issuer
	spec.err, spec.failingSince = nil, time.Time{}
	old := m.routes.Load()
	nt := &routeTable{byIss: maps.Clone(old.byIss), pending: old.pending - 1}
	// An issuer trusted both through TenantID and through Issuers keeps the Entra
	// rules (tid, kid, oid), whichever discovery ends last.
	if prev := nt.byIss[meta.Issuer]; prev == nil || !prev.entra {
		nt.byIss[meta.Issuer] = &route{issuer: meta.Issuer, keys: ks, entra: entra}
	}
	m.routes.Store(nt)
	if nt.pending == 0 {
		close(m.discovered)
	}
	m.log.Info("authmw: issuer discovered", "setting", spec.setting, "url", spec.base, "issuer", meta.Issuer, "jwks_uri", meta.JWKSURI)
	return nil
}

// IssuerErrors returns, for each configured issuer (keyed by the URL its
// discovery document is read from) whose last discovery or key fetch failed,
// that error: a [*SourceError] naming the setting, wrapping
// [ErrSourceTransient] or [ErrSourcePermanent]. An empty map means no
// failure is outstanding.
func (m *Middleware) IssuerErrors() map[string]error {
	m.mu.Lock()
	defer m.mu.Unlock()
	errs := map[string]error{}
	for _, s := range m.specs {
		if err := m.specErr(s); err != nil {
			errs[s.base] = err
		}
	}
	return errs
}

// specErr is spec's outstanding failure, of discovery or of its key set.
// m.mu must be held.
func (m *Middleware) specErr(spec *issuerSpec) error {
	if spec.err != nil {
		return spec.err
	}
	if spec.keys != nil {
		if err := spec.keys.Err(); err != nil {
			return explain(spec, err, true)
		}
	}
	return nil
}

// Ready reports whether every configured issuer has been discovered and its
// signing keys loaded. Until then, tokens of issuers not ready are answered 503.
func (m *Middleware) Ready() bool {
	rt := m.routes.Load()
	if rt.pending > 0 {
		return false
	}
	for _, r := range rt.byIss {
		if !r.keys.Ready() {
			return false
		}
	}
	return true
}

// WaitReady blocks until [Middleware.Ready] or ctx is done: it waits for the
// signal of the last discovery, then for each key set's first load. When ctx
// ends first, the error is the [*ReadinessError] of that moment (naming each
// failing issuer's setting) joined with ctx's error; both ErrNotReady and
// ctx's error match errors.Is.
func (m *Middleware) WaitReady(ctx context.Context) error {
	gaveUp := func() error {
		if err := m.ReadinessError(); err != nil {
			return fmt.Errorf("%w (gave up waiting: %w)", err, ctx.Err())
		}
		return fmt.Errorf("%w: %w", ErrNotReady, ctx.Err())
	}
	closed := fmt.Errorf("%w: the Middleware is closed", ErrNotReady)
	select {
	case <-m.discovered:
	case <-ctx.Done():
		return gaveUp()
	case <-m.ctx.Done():
		return closed
	}
	for _, r := range m.routes.Load().byIss {
		if err := r.keys.WaitReady(ctx); errors.Is(err, jwks.ErrClosed) {
			return closed
		} else if err != nil {
			return gaveUp()
		}
	}
	return nil
}
