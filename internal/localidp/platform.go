package localidp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTenantID is the tenant ID used when [Options.TenantID] is empty.
const DefaultTenantID = "7c3e9f2a-4b1d-4e8a-9f6c-2d5b8a1ef2fa"

// DefaultTokenLifetime is the lifetime of minted managed-identity tokens when
// [Options.TokenLifetime] is zero. It matches the ~24 h of real managed-identity
// tokens.
const DefaultTokenLifetime = 24 * time.Hour

// ErrInvalidOption is wrapped by every configuration error returned by [Start]
// and [Platform.AddIdentity]; each such error names the offending setting.
var ErrInvalidOption = errors.New("localidp: invalid option")

// Options configures a [Platform]. The zero value is valid.
type Options struct {
	// TenantID is the directory (tenant) ID used in paths, issuers and the tid
	// claim. It must be non-empty after defaulting and contain only letters,
	// digits, '-', '.' and '_'. Default: [DefaultTenantID].
	TenantID string
	// TokenLifetime is the lifetime of tokens issued by managed-identity
	// endpoints and by [Platform.AccessTokenClaims]. MSAL only caches tokens
	// living longer than 5 minutes, so shorter values make every GetToken call
	// reach the endpoint. Must not be negative. Default: [DefaultTokenLifetime] (24h).
	TokenLifetime time.Duration
	// Now is the clock used for iat/nbf/exp, by Mint's callers via
	// AccessTokenClaims and by the managed-identity endpoints. MSAL compares
	// exp with the real clock, so a fake clock far in the past makes issued
	// tokens look expired to azidentity. Default: time.Now.
	Now func() time.Time
	// Logger receives one line per issued or rejected token request and per
	// key change (kid, appid, oid, resource and reason only; never tokens,
	// keys or identity headers). Default: discard.
	Logger *slog.Logger
	// ResourceClientIDs optionally maps a resource (as requested, e.g.
	// "api://callee") to the client ID of the resource's app registration.
	// Entra v2 access tokens carry that client ID as aud; when a resource is
	// not listed here, v2 tokens carry the resource string as requested.
	// Default: none.
	ResourceClientIDs map[string]string
}

// Platform is a running local identity platform: an OIDC authority on
// 127.0.0.1 plus any number of managed-identity endpoints. Create it with
// [Start] and stop it with [Platform.Close]. All methods are safe for
// concurrent use.
type Platform struct {
	tenantID      string
	lifetime      time.Duration
	now           func() time.Time
	log           *slog.Logger
	resourceApps  map[string]string
	authority     string // http://127.0.0.1:PORT
	issuerV1      string
	issuerV2      string
	discoveryV1   []byte
	discoveryV2   []byte
	srv           *http.Server
	down          atomic.Bool
	jwksCount     atomic.Int64
	discoverCount atomic.Int64

	keys keyring

	mu         sync.Mutex
	identities []*ManagedIdentity
	closed     bool
	closeOnce  sync.Once
}

// Start validates opts, generates the first signing key and starts the
// authority's HTTP server on 127.0.0.1 with a random port. Configuration
// errors wrap [ErrInvalidOption] and are all reported together.
func Start(opts Options) (*Platform, error) {
	var errs []error
	tid := opts.TenantID
	if tid == "" {
		tid = DefaultTenantID
	}
	if !validPathSegment(tid) {
		errs = append(errs, fmt.Errorf("%w: Options.TenantID must contain only letters, digits, '-', '.' and '_' (got %q)", ErrInvalidOption, tid))
	}
	if opts.TokenLifetime < 0 {
		errs = append(errs, fmt.Errorf("%w: Options.TokenLifetime must not be negative (got %s)", ErrInvalidOption, opts.TokenLifetime))
	}
	for r, id := range opts.ResourceClientIDs {
		if r == "" || id == "" {
			errs = append(errs, fmt.Errorf("%w: Options.ResourceClientIDs entries need a non-empty resource and client ID (got %q -> %q)", ErrInvalidOption, r, id))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	p := &Platform{
		tenantID:     tid,
		lifetime:     opts.TokenLifetime,
		now:          opts.Now,
		log:          opts.Logger,
		resourceApps: make(map[string]string, len(opts.ResourceClientIDs)),
	}
	for r, id := range opts.ResourceClientIDs {
		p.resourceApps[r] = id
	}
	if p.lifetime == 0 {
		p.lifetime = DefaultTokenLifetime
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if _, err := p.keys.rotate(p.now()); err != nil {
		return nil, fmt.Errorf("localidp: generate signing key: %w", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("localidp: listen on 127.0.0.1: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	p.authority = fmt.Sprintf("http://127.0.0.1:%d", port)
	p.issuerV1 = fmt.Sprintf("http://localhost:%d/%s/", port, tid)
	p.issuerV2 = fmt.Sprintf("%s/%s/v2.0", p.authority, tid)
	if p.discoveryV1, err = p.buildDiscovery(1); err == nil {
		p.discoveryV2, err = p.buildDiscovery(2)
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("localidp: build discovery documents: %w", err)
	}

	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serveAuthority),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	go p.srv.Serve(ln) //nolint:errcheck // returns http.ErrServerClosed on Close
	p.log.Info("localidp: authority started", "authority", p.authority, "tenant", tid, "kid", p.CurrentKID())
	return p, nil
}

// Close stops the authority and every managed-identity endpoint added to it.
// It is safe to call more than once.
func (p *Platform) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		ids := p.identities
		p.identities = nil
		p.mu.Unlock()
		for _, m := range ids {
			m.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := p.srv.Shutdown(ctx); err != nil {
			p.srv.Close()
		}
	})
}

// AuthorityURL returns the authority host, e.g. "http://127.0.0.1:PORT", the
// local counterpart of https://login.microsoftonline.com (no trailing slash).
func (p *Platform) AuthorityURL() string { return p.authority }

// TenantID returns the tenant (directory) ID.
func (p *Platform) TenantID() string { return p.tenantID }

// IssuerV1 returns the issuer of v1 tokens and of the v1 discovery document,
// "http://localhost:PORT/{tid}/". Like https://sts.windows.net/{tid}/ it is on
// a different host string than [Platform.AuthorityURL].
func (p *Platform) IssuerV1() string { return p.issuerV1 }

// IssuerV2 returns the issuer of v2 tokens and of the v2 discovery document,
// "http://127.0.0.1:PORT/{tid}/v2.0"; go-oidc's NewProvider accepts it directly.
func (p *Platform) IssuerV2() string { return p.issuerV2 }

// DiscoveryURLV1 returns the URL of the v1 OpenID configuration document,
// "{authority}/{tid}/.well-known/openid-configuration".
func (p *Platform) DiscoveryURLV1() string {
	return p.authority + "/" + p.tenantID + "/.well-known/openid-configuration"
}

// DiscoveryURLV2 returns the URL of the v2 OpenID configuration document,
// "{authority}/{tid}/v2.0/.well-known/openid-configuration".
func (p *Platform) DiscoveryURLV2() string {
	return p.issuerV2 + "/.well-known/openid-configuration"
}

// JWKSURLV1 returns the jwks_uri of the v1 document, "{authority}/common/discovery/keys".
func (p *Platform) JWKSURLV1() string { return p.authority + "/common/discovery/keys" }

// JWKSURLV2 returns the jwks_uri of the v2 document, "{authority}/{tid}/discovery/v2.0/keys".
func (p *Platform) JWKSURLV2() string {
	return p.authority + "/" + p.tenantID + "/discovery/v2.0/keys"
}

// JWKSRequests returns how many JWKS requests the authority received on any
// JWKS path, including those answered 503 by [Platform.SetDown].
func (p *Platform) JWKSRequests() int64 { return p.jwksCount.Load() }

// DiscoveryRequests returns how many discovery-document requests (v1 and v2)
// the authority received, including those answered 503 by [Platform.SetDown].
func (p *Platform) DiscoveryRequests() int64 { return p.discoverCount.Load() }

// SetDown injects an outage: while down, discovery documents and JWKS answer
// 503 with a JSON error body. Managed-identity endpoints are not affected (use
// [ManagedIdentity.SetFailure] for those).
func (p *Platform) SetDown(down bool) {
	p.down.Store(down)
	p.log.Info("localidp: authority availability changed", "down", down)
}

// RotateKey generates a new RSA-2048 signing key and makes it current; tokens
// minted from now on carry its kid. Previously published keys stay published,
// as in a normal Entra key rollover. It returns the new kid (or "" if key
// generation failed, which it does not in practice).
func (p *Platform) RotateKey() (newKID string) {
	kid, err := p.keys.rotate(p.now())
	if err != nil {
		p.log.Error("localidp: key rotation failed", "error", err)
		return ""
	}
	p.log.Info("localidp: signing key rotated", "kid", kid)
	return kid
}

// RemoveKey stops publishing the key with the given kid (an emergency
// revocation); tokens signed with it no longer verify for a verifier that
// refetches the JWKS. Unknown kids are ignored. Removing the current key does
// not select another one: minting keeps using the removed key (useful to test
// tokens signed with an unpublished key) until [Platform.RotateKey] is called.
func (p *Platform) RemoveKey(kid string) {
	if p.keys.remove(kid) {
		p.log.Info("localidp: signing key removed", "kid", kid)
	}
}

// CurrentKID returns the kid of the key used for minting.
func (p *Platform) CurrentKID() string {
	k := p.keys.current()
	return k.kid
}

// PublishedKIDs returns the kids currently published in the JWKS, oldest first.
func (p *Platform) PublishedKIDs() []string { return p.keys.publishedKIDs() }

// validPathSegment reports whether s is safe to embed in URL paths unescaped.
func validPathSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
		default:
			return false
		}
	}
	return true
}

// serveAuthority routes the authority's requests. Routing is by hand so every
// answer, including 404 and 405, is an Entra-style JSON error.
func (p *Platform) serveAuthority(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	kind, tenant := route(segs)
	switch kind {
	case routeNone:
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint on the local identity platform")
		return
	case routeToken:
		if tenant != p.tenantID {
			writeError(w, http.StatusNotFound, "invalid_tenant", "tenant not found on the local identity platform")
			return
		}
		writeError(w, http.StatusBadRequest, "unsupported_grant_type", "the local identity platform issues tokens only through managed-identity endpoints")
		return
	}
	// Discovery or JWKS.
	if kind == routeJWKS {
		p.jwksCount.Add(1)
	} else {
		p.discoverCount.Add(1)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "method not allowed")
		return
	}
	if tenant != p.tenantID && !(kind == routeJWKS && tenant == "common") {
		writeError(w, http.StatusNotFound, "invalid_tenant", "tenant not found on the local identity platform")
		return
	}
	if p.down.Load() {
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the local identity platform is down (fault injected)")
		return
	}
	var body []byte
	switch kind {
	case routeDiscoveryV1:
		body = p.discoveryV1
	case routeDiscoveryV2:
		body = p.discoveryV2
	case routeJWKS:
		body = p.keys.jwks()
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "max-age=86400, private")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body) //nolint:errcheck // client went away
	}
}

type routeKind int

const (
	routeNone routeKind = iota
	routeDiscoveryV1
	routeDiscoveryV2
	routeJWKS
	routeToken
)

// route classifies a split path; tenant is the first segment.
func route(segs []string) (routeKind, string) {
	if len(segs) < 2 {
		return routeNone, ""
	}
	tenant, rest := segs[0], strings.Join(segs[1:], "/")
	switch rest {
	case ".well-known/openid-configuration":
		return routeDiscoveryV1, tenant
	case "v2.0/.well-known/openid-configuration":
		return routeDiscoveryV2, tenant
	case "discovery/keys", "discovery/v2.0/keys":
		return routeJWKS, tenant
	case "oauth2/token", "oauth2/v2.0/token", "oauth2/authorize", "oauth2/v2.0/authorize":
		return routeToken, tenant
	}
	return routeNone, ""
}

// String describes the platform without its keys.
func (p *Platform) String() string {
	return fmt.Sprintf("localidp.Platform{authority=%q tenant=%q kid=%q}", p.authority, p.tenantID, p.CurrentKID())
}

// GoString is like String, so %#v does not print private keys.
func (p *Platform) GoString() string { return p.String() }

// LogValue implements slog.LogValuer without private keys.
func (p *Platform) LogValue() slog.Value {
	return slog.GroupValue(slog.String("authority", p.authority), slog.String("tenant", p.tenantID), slog.String("kid", p.CurrentKID()))
}
