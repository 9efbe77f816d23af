package authmw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	setting  string // the setting it comes from, for logs
	base     string // discovery base: {base}/.well-known/openid-configuration
	expected string // explicit issuers: the exact issuer the document must declare
	tenantID string // tenant mode: the declared issuer must contain it
	// Guarded by Middleware.mu.
	err  error        // of the last discovery; nil once discovered
	keys *jwks.KeySet // once discovered
}

// route is a discovered issuer: the exact iss it accepts and the keys that sign its tokens.
type route struct {
	issuer string
	keys   *jwks.KeySet
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
		specs = append(specs,
			&issuerSpec{setting: "Policy.TenantID (v1.0 tokens)", base: auth + "/" + p.TenantID, tenantID: p.TenantID},
			&issuerSpec{setting: "Policy.TenantID (v2.0 tokens)", base: auth + "/" + p.TenantID + "/v2.0", tenantID: p.TenantID},
		)
	}
	for i, iss := range p.Issuers {
		specs = append(specs, &issuerSpec{setting: fmt.Sprintf("Policy.Issuers[%d]", i), base: iss, expected: iss})
	}
	return specs
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
// retrying with the shared backoff, and records the last error.
func (m *Middleware) discoverLoop(spec *issuerSpec) {
	defer m.wg.Done()
	backoff := retry.Backoff{Initial: discoveryRetryMin, Max: discoveryRetryMax}
	for failures := 1; ; failures++ {
		err := m.fetched(docDiscovery, spec.base, time.Now(), m.discover(spec)) // OpenTelemetry (telemetry.go): times and records discover
		m.mu.Lock()
		spec.err = err
		m.mu.Unlock()
		if err == nil {
			return
		}
		wait := jwks.RetryDelay(backoff, failures, err)
		m.log.Warn("authmw: issuer discovery failed; retrying", "setting", spec.setting, "error", err.Error(), "retry_in", wait.String())
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
		return fmt.Errorf("%s: %w: %s", spec.setting, ErrSourcePermanent, fmt.Sprintf(format, args...))
	}
	if err := json.Unmarshal(body, &meta); err != nil {
		return permanent("the discovery document is not JSON: %v", err)
	}
	// Explicit issuers: the declared issuer must be the one configured (go-oidc's
	// rule). Tenant mode: Entra v1 declares an issuer on another host than the
	// document (https://sts.windows.net/{tid}/), so it must name the tenant.
	if spec.expected != "" && meta.Issuer != spec.expected {
		return permanent("discovery declares issuer %q, expected %q", netrule.Excerpt([]byte(meta.Issuer)), spec.expected)
	}
	if spec.tenantID != "" && !strings.Contains(strings.ToLower(meta.Issuer), strings.ToLower(spec.tenantID)) {
		return permanent("discovery declares issuer %q, which is not of tenant %q", netrule.Excerpt([]byte(meta.Issuer)), spec.tenantID)
	}
	for _, u := range []struct{ name, v string }{{"issuer", meta.Issuer}, {"jwks_uri", meta.JWKSURI}} {
		if err := netrule.CheckRawURL(u.v); err != nil {
			return permanent("%s %q declared by discovery: %v", u.name, netrule.Excerpt([]byte(u.v)), err)
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	ks := m.keySets[meta.JWKSURI]
	if ks == nil {
		ks, err = jwks.New(m.ctx, jwks.Options{
			URL:                meta.JWKSURI,
			Client:             m.cfg.HTTPClient,
			Algorithms:         m.cfg.Algorithms,
			UnknownKIDInterval: m.cfg.UnknownKeyInterval,
			RefreshInterval:    m.cfg.KeyRefreshInterval,
			Now:                m.cfg.Now,
			Logger:             m.cfg.Logger,
			OnFetch:            func(start time.Time, err error) { m.fetched(docJWKS, meta.Issuer, start, err) }, // OpenTelemetry
		})
		if err != nil {
			return permanent("%v", err)
		}
		m.keySets[meta.JWKSURI] = ks
	}
	spec.keys = ks
	old := m.routes.Load()
	nt := &routeTable{byIss: maps.Clone(old.byIss), pending: old.pending - 1}
	nt.byIss[meta.Issuer] = &route{issuer: meta.Issuer, keys: ks}
	m.routes.Store(nt)
	if nt.pending == 0 {
		close(m.discovered)
	}
	m.log.Info("authmw: issuer discovered", "setting", spec.setting, "issuer", meta.Issuer, "jwks_uri", meta.JWKSURI)
	return nil
}

// IssuerErrors returns, for each configured issuer (keyed by the URL its
// discovery document is read from) whose last discovery or key fetch failed,
// that error. Each wraps [ErrSourceTransient] or [ErrSourcePermanent]. An empty
// map means no failure is outstanding.
func (m *Middleware) IssuerErrors() map[string]error {
	m.mu.Lock()
	defer m.mu.Unlock()
	errs := map[string]error{}
	for _, s := range m.specs {
		err := s.err
		if err == nil && s.keys != nil {
			err = s.keys.Err()
		}
		if err != nil {
			errs[s.base] = err
		}
	}
	return errs
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
// signal of the last discovery, then for each key set's first load.
func (m *Middleware) WaitReady(ctx context.Context) error {
	select {
	case <-m.discovered:
	case <-ctx.Done():
		return fmt.Errorf("authmw: waiting for signing keys: %w", errors.Join(ErrNotReady, ctx.Err()))
	case <-m.ctx.Done():
		return fmt.Errorf("authmw: middleware closed: %w", ErrNotReady)
	}
	for _, r := range m.routes.Load().byIss {
		if err := r.keys.WaitReady(ctx); errors.Is(err, jwks.ErrClosed) {
			return fmt.Errorf("authmw: middleware closed: %w", ErrNotReady)
		} else if err != nil {
			return fmt.Errorf("authmw: waiting for signing keys: %w", errors.Join(ErrNotReady, ctx.Err()))
		}
	}
	return nil
}
