package authmw

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/f2fauth/f2fauth/internal/jwks"
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

// checkURL refuses URLs that are not https, or plain http off loopback.
func checkURL(setting, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s: %q is not an absolute URL", setting, raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%s: %q uses plain http off loopback; use https", setting, raw)
	}
	return fmt.Errorf("%s: %q must be an https URL", setting, raw)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// discoverLoop discovers spec until it succeeds or the Middleware is closed,
// retrying with exponential backoff.
func (m *Middleware) discoverLoop(spec *issuerSpec) {
	defer m.wg.Done()
	wait := discoveryRetryMin
	for {
		err := m.discover(spec)
		if err == nil {
			return
		}
		m.logWarn("authmw: issuer discovery failed; retrying", "setting", spec.setting, "error", err.Error(), "retry_in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-m.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(wait*2, discoveryRetryMax)
	}
}

// discover fetches spec's discovery document, checks the issuer and jwks_uri it
// declares, and installs the route with a key set for the jwks_uri.
func (m *Middleware) discover(spec *issuerSpec) error {
	ctx := oidc.ClientContext(m.ctx, m.cfg.HTTPClient)
	if spec.expected == "" {
		// Entra v1 declares an issuer on another host than the document
		// (https://sts.windows.net/{tid}/): take the declared one, checked below.
		ctx = oidc.InsecureIssuerURLContext(ctx, spec.base)
	}
	p, err := oidc.NewProvider(ctx, spec.base)
	if err != nil {
		return err
	}
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil {
		return err
	}
	if err := checkURL("issuer declared by "+spec.setting, meta.Issuer); err != nil {
		return err
	}
	if spec.expected != "" && meta.Issuer != spec.expected {
		return fmt.Errorf("%s: discovery declares issuer %q, expected %q", spec.setting, meta.Issuer, spec.expected)
	}
	if spec.tenantID != "" && !strings.Contains(meta.Issuer, spec.tenantID) {
		return fmt.Errorf("%s: discovery declares issuer %q, which is not of tenant %q", spec.setting, meta.Issuer, spec.tenantID)
	}
	if err := checkURL("jwks_uri declared by "+spec.setting, meta.JWKSURI); err != nil {
		return err
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
			OnKeysRemoved:      m.cache.purgeKIDs,
			RequireKID:         spec.tenantID != "", // Entra always sends kid
		})
		if err != nil {
			return err
		}
		m.keySets[meta.JWKSURI] = ks
	}
	old := m.routes.Load()
	nt := &routeTable{byIss: make(map[string]*route, len(old.byIss)+1), pending: old.pending - 1}
	for k, v := range old.byIss {
		nt.byIss[k] = v
	}
	nt.byIss[meta.Issuer] = &route{issuer: meta.Issuer, keys: ks, entra: spec.tenantID != ""}
	m.routes.Store(nt)
	m.logInfo("authmw: issuer discovered", "setting", spec.setting, "issuer", meta.Issuer, "jwks_uri", meta.JWKSURI)
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

// WaitReady blocks until [Middleware.Ready] or ctx is done.
func (m *Middleware) WaitReady(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !m.Ready() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("authmw: waiting for signing keys: %w", errors.Join(ErrNotReady, ctx.Err()))
		case <-m.ctx.Done():
			return fmt.Errorf("authmw: middleware closed: %w", ErrNotReady)
		case <-t.C:
		}
	}
	return nil
}
