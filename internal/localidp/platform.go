package localidp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/f2fauth/f2fauth/authmw/authmwtest"
)

// DefaultTenantID is the tenant ID used when [Options.TenantID] is empty.
const DefaultTenantID = authmwtest.DefaultTenantID

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
//
// It is a thin layer over the public test packages: the authority is an
// authmwtest.Issuer and each endpoint a tokencachetest.Endpoint minting with it.
type Platform struct {
	iss          *authmwtest.Issuer
	lifetime     time.Duration
	log          *slog.Logger
	resourceApps map[string]string

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
	for r, id := range opts.ResourceClientIDs {
		if r == "" || id == "" {
			errs = append(errs, fmt.Errorf("Options.ResourceClientIDs entries need a non-empty resource and client ID (got %q -> %q)", r, id))
		}
	}
	lifetime := opts.TokenLifetime
	if lifetime == 0 {
		lifetime = DefaultTokenLifetime
	}
	iss, err := authmwtest.NewIssuer(authmwtest.Options{TenantID: tid, TokenLifetime: lifetime, Now: opts.Now})
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		if iss != nil {
			iss.Close()
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, errors.Join(errs...))
	}

	p := &Platform{
		iss:          iss,
		lifetime:     lifetime,
		log:          opts.Logger,
		resourceApps: make(map[string]string, len(opts.ResourceClientIDs)),
	}
	for r, id := range opts.ResourceClientIDs {
		p.resourceApps[r] = id
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log.Info("localidp: authority started", "authority", iss.AuthorityURL(), "tenant", tid, "kid", iss.CurrentKID())
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
		p.iss.Close()
	})
}

// AuthorityURL returns the authority host, e.g. "http://127.0.0.1:PORT", the
// local counterpart of https://login.microsoftonline.com (no trailing slash).
func (p *Platform) AuthorityURL() string { return p.iss.AuthorityURL() }

// TenantID returns the tenant (directory) ID.
func (p *Platform) TenantID() string { return p.iss.TenantID() }

// IssuerV1 returns the issuer of v1 tokens and of the v1 discovery document,
// "http://localhost:PORT/{tid}/". Like https://sts.windows.net/{tid}/ it is on
// a different host string than [Platform.AuthorityURL].
func (p *Platform) IssuerV1() string { return p.iss.IssuerV1() }

// IssuerV2 returns the issuer of v2 tokens and of the v2 discovery document,
// "http://127.0.0.1:PORT/{tid}/v2.0"; go-oidc's NewProvider accepts it directly.
func (p *Platform) IssuerV2() string { return p.iss.IssuerV2() }

// DiscoveryURLV1 returns the URL of the v1 OpenID configuration document,
// "{authority}/{tid}/.well-known/openid-configuration".
func (p *Platform) DiscoveryURLV1() string { return p.iss.DiscoveryURLV1() }

// DiscoveryURLV2 returns the URL of the v2 OpenID configuration document,
// "{authority}/{tid}/v2.0/.well-known/openid-configuration".
func (p *Platform) DiscoveryURLV2() string { return p.iss.DiscoveryURLV2() }

// JWKSURLV1 returns the jwks_uri of the v1 document, "{authority}/common/discovery/keys".
func (p *Platform) JWKSURLV1() string { return p.iss.JWKSURLV1() }

// JWKSURLV2 returns the jwks_uri of the v2 document, "{authority}/{tid}/discovery/v2.0/keys".
func (p *Platform) JWKSURLV2() string { return p.iss.JWKSURLV2() }

// JWKSRequests returns how many JWKS requests the authority received on any
// JWKS path, including those answered 503 by [Platform.SetDown].
func (p *Platform) JWKSRequests() int64 { return p.iss.JWKSRequests() }

// DiscoveryRequests returns how many discovery-document requests (v1 and v2)
// the authority received, including those answered 503 by [Platform.SetDown].
func (p *Platform) DiscoveryRequests() int64 { return p.iss.DiscoveryRequests() }

// SetDown injects an outage: while down, discovery documents and JWKS answer
// 503 with a JSON error body. Managed-identity endpoints are not affected (use
// [ManagedIdentity.SetFailure] for those).
func (p *Platform) SetDown(down bool) {
	p.iss.SetDown(down)
	p.log.Info("localidp: authority availability changed", "down", down)
}

// RotateKey generates a new RSA-2048 signing key and makes it current; tokens
// minted from now on carry its kid. Previously published keys stay published,
// as in a normal Entra key rollover. It returns the new kid (or "" if key
// generation failed, which it does not in practice).
func (p *Platform) RotateKey() (newKID string) {
	kid := p.iss.RotateKey()
	if kid == "" {
		p.log.Error("localidp: key rotation failed")
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
	if p.iss.RemoveKey(kid) {
		p.log.Info("localidp: signing key removed", "kid", kid)
	}
}

// CurrentKID returns the kid of the key used for minting.
func (p *Platform) CurrentKID() string { return p.iss.CurrentKID() }

// PublishedKIDs returns the kids currently published in the JWKS, oldest first.
func (p *Platform) PublishedKIDs() []string { return p.iss.PublishedKIDs() }

// serveAuthority serves the authority's routes (the issuer's handler).
func (p *Platform) serveAuthority(w http.ResponseWriter, r *http.Request) {
	p.iss.ServeHTTP(w, r)
}

// String describes the platform without its keys.
func (p *Platform) String() string {
	return fmt.Sprintf("localidp.Platform{authority=%q tenant=%q kid=%q}", p.AuthorityURL(), p.TenantID(), p.CurrentKID())
}

// GoString is like String, so %#v does not print private keys.
func (p *Platform) GoString() string { return p.String() }

// LogValue implements slog.LogValuer without private keys.
func (p *Platform) LogValue() slog.Value {
	return slog.GroupValue(slog.String("authority", p.AuthorityURL()), slog.String("tenant", p.TenantID()), slog.String("kid", p.CurrentKID()))
}
