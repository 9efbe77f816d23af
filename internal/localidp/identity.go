package localidp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/f2fauth/f2fauth/tokencache/tokencachetest"
)

// AppServiceAPIVersion is the only api-version the managed-identity endpoints
// accept, the one azidentity v1.15.0 sends for the App Service source.
const AppServiceAPIVersion = tokencachetest.APIVersion

// TokenPath is the path of every managed-identity endpoint.
const TokenPath = tokencachetest.TokenPath

// Identity describes one managed identity (a service principal of a
// managed identity in Entra terms).
type Identity struct {
	// Name is a label for logs, e.g. "registered-caller". Default: ClientID.
	Name string
	// ClientID is the managed identity's client (application) ID: the appid
	// (v1) or azp (v2) claim. Required.
	ClientID string
	// ObjectID is the managed identity's object (principal) ID: the oid and
	// sub claims. Required.
	ObjectID string
	// ResourceID is the optional ARM resource ID of the identity. When set it
	// becomes the xms_mirid claim and the value a mi_res_id selector must
	// match (case-insensitively). Default: none, and mi_res_id selectors fail.
	ResourceID string
	// AppRoles maps a resource (the audience string as requested, e.g.
	// "api://callee") to the app-role values assigned to this identity on
	// that resource; they become the roles claim. Default: no roles.
	AppRoles map[string][]string
}

// rolesFor returns the roles assigned for resource, trying the exact string
// first and then the string with/without a trailing slash.
func (id Identity) rolesFor(resource string) []string {
	if r, ok := id.AppRoles[resource]; ok {
		return r
	}
	alt := resource + "/"
	if strings.HasSuffix(resource, "/") {
		alt = strings.TrimSuffix(resource, "/")
	}
	return id.AppRoles[alt]
}

func (id Identity) clone() Identity {
	c := id
	if id.AppRoles != nil {
		c.AppRoles = make(map[string][]string, len(id.AppRoles))
		for k, v := range id.AppRoles {
			c.AppRoles[k] = slices.Clone(v)
		}
	}
	return c
}

// ManagedIdentity is a running managed-identity endpoint for one [Identity],
// speaking the App Service protocol (api-version 2019-08-01) on its own
// loopback listener (a tokencachetest.Endpoint minting with the platform's
// issuer). Point azidentity at it with [ManagedIdentity.Env] or by setting
// IDENTITY_ENDPOINT and IDENTITY_HEADER. All methods are safe for concurrent use.
type ManagedIdentity struct {
	p  *Platform
	ep *tokencachetest.Endpoint

	mu        sync.Mutex
	id        Identity
	version   int
	lifetime  time.Duration
	refreshIn time.Duration
	issued    map[string]int64 // tokens issued per resource
}

// AddIdentity validates id and starts a managed-identity endpoint for it on
// 127.0.0.1 with a random port and a random IDENTITY_HEADER secret. The
// endpoint issues v1 tokens until [ManagedIdentity.SetTokenVersion] says
// otherwise. It is stopped by [ManagedIdentity.Close] or [Platform.Close].
func (p *Platform) AddIdentity(id Identity) (*ManagedIdentity, error) {
	var errs []error
	if id.ClientID == "" {
		errs = append(errs, fmt.Errorf("%w: Identity.ClientID is required", ErrInvalidOption))
	}
	if id.ObjectID == "" {
		errs = append(errs, fmt.Errorf("%w: Identity.ObjectID is required", ErrInvalidOption))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	id = id.clone()
	if id.Name == "" {
		id.Name = id.ClientID
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("localidp: AddIdentity on a closed Platform")
	}
	m := &ManagedIdentity{p: p, id: id, version: 1}
	ep, err := tokencachetest.NewEndpoint(tokencachetest.Options{
		Mint:       m.mint,
		ClientID:   id.ClientID,
		ObjectID:   id.ObjectID,
		ResourceID: id.ResourceID,
		Logger:     p.log.With("identity", id.Name, "appid", id.ClientID),
	})
	if err != nil {
		return nil, fmt.Errorf("localidp: start managed-identity endpoint: %w", err)
	}
	m.ep = ep
	p.identities = append(p.identities, m)
	p.log.Info("localidp: managed identity started", "identity", id.Name, "appid", id.ClientID, "oid", id.ObjectID, "endpoint", ep.URL())
	return m, nil
}

// mint is the endpoint's token source: Entra-shaped claims signed by the
// platform's issuer.
func (m *ManagedIdentity) mint(resource string) (tokencachetest.Token, error) {
	m.mu.Lock()
	id := m.id.clone()
	version, lifetime, refreshIn := m.version, m.lifetime, m.refreshIn
	m.mu.Unlock()
	if lifetime <= 0 {
		lifetime = m.p.lifetime
	}
	claims := m.p.accessTokenClaims(id, resource, version, lifetime)
	tok, err := m.p.Mint(claims)
	if err != nil {
		return tokencachetest.Token{}, err
	}
	m.mu.Lock()
	if m.issued == nil {
		m.issued = make(map[string]int64)
	}
	m.issued[resource]++
	m.mu.Unlock()
	roles, _ := claims["roles"].([]string)
	m.p.log.Info("localidp: token minted", "identity", id.Name, "appid", id.ClientID, "oid", id.ObjectID, "resource", resource, "ver", version, "roles", len(roles))
	return tokencachetest.Token{
		AccessToken: tok,
		ExpiresOn:   time.Unix(claims["exp"].(int64), 0),
		NotBefore:   time.Unix(claims["nbf"].(int64), 0),
		RefreshIn:   refreshIn,
	}, nil
}

// Endpoint returns the value for IDENTITY_ENDPOINT, e.g.
// "http://127.0.0.1:PORT/msi/token".
func (m *ManagedIdentity) Endpoint() string { return m.ep.URL() }

// Header returns the value for IDENTITY_HEADER: a random secret, different
// for every endpoint, that requests must send as X-IDENTITY-HEADER. Do not log it.
func (m *ManagedIdentity) Header() string { return m.ep.Header() }

// Env returns {"IDENTITY_ENDPOINT=…", "IDENTITY_HEADER=…"} for exec.Cmd.Env.
func (m *ManagedIdentity) Env() []string { return m.ep.Env() }

// Requests returns how many requests the endpoint received, including
// rejected and fault-injected ones.
func (m *ManagedIdentity) Requests() int64 { return m.ep.Requests() }

// Issued returns how many tokens the endpoint issued.
func (m *ManagedIdentity) Issued() int64 { return m.ep.Issued() }

// IssuedFor returns how many tokens the endpoint issued for resource (as
// requested, e.g. "api://callee" or "https://vault.azure.net"), so tests can
// prove a client asks once per resource.
func (m *ManagedIdentity) IssuedFor(resource string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.issued[resource]
}

// SetFailure injects a fault: with status != 0 every request (before any
// validation) is answered with that status, a JSON error body and, if
// retryAfter is non-empty, a Retry-After header. Status 0 makes the endpoint
// healthy again. Note azidentity retries 408/429/500/502/503/504 up to 3
// times with backoff unless Retry-After exceeds its 60 s maximum delay, in
// which case it gives up after the first response.
func (m *ManagedIdentity) SetFailure(status int, retryAfter string) {
	m.ep.SetFault(tokencachetest.Fault{Status: status, RetryAfter: retryAfter})
	m.p.log.Info("localidp: managed identity failure mode changed", "identity", m.Identity().Name, "status", status, "retry_after", retryAfter)
}

// SetTokenVersion selects the access-token version the endpoint issues: 2
// for v2 tokens, anything else for v1 (the default, like an app registration
// without requestedAccessTokenVersion).
func (m *ManagedIdentity) SetTokenVersion(v int) {
	if v != 2 {
		v = 1
	}
	m.mu.Lock()
	m.version = v
	m.mu.Unlock()
}

// SetTokenLifetime overrides the platform's token lifetime for this endpoint;
// 0 restores the platform default. Lifetimes of 5 minutes or less are not
// cached by MSAL.
func (m *ManagedIdentity) SetTokenLifetime(d time.Duration) {
	m.mu.Lock()
	m.lifetime = d
	m.mu.Unlock()
}

// SetRefreshIn makes responses carry refresh_in (whole seconds), which MSAL
// turns into AccessToken.RefreshOn; 0 (the default, like App Service) omits it.
func (m *ManagedIdentity) SetRefreshIn(d time.Duration) {
	m.mu.Lock()
	m.refreshIn = d
	m.mu.Unlock()
}

// SetAppRoles replaces the roles assigned to the identity on resource (nil or
// empty removes the assignment). Tokens issued afterwards reflect the change;
// tokens already cached by clients do not (as in Azure, where changes take up
// to 24 h to show).
func (m *ManagedIdentity) SetAppRoles(resource string, roles []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(roles) == 0 {
		delete(m.id.AppRoles, resource)
		return
	}
	if m.id.AppRoles == nil {
		m.id.AppRoles = make(map[string][]string)
	}
	m.id.AppRoles[resource] = slices.Clone(roles)
}

// Identity returns a copy of the identity this endpoint serves.
func (m *ManagedIdentity) Identity() Identity {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id.clone()
}

// Close stops this endpoint. It is safe to call more than once.
func (m *ManagedIdentity) Close() { m.ep.Close() }

// ServeHTTP implements the App Service managed-identity protocol.
func (m *ManagedIdentity) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.ep.ServeHTTP(w, r)
}

// String describes the endpoint without its secret header.
func (m *ManagedIdentity) String() string {
	id := m.Identity()
	return fmt.Sprintf("localidp.ManagedIdentity{name=%q appid=%q endpoint=%q header=REDACTED}", id.Name, id.ClientID, m.Endpoint())
}

// GoString is like String, so %#v does not print the header either.
func (m *ManagedIdentity) GoString() string { return m.String() }

// LogValue implements slog.LogValuer without the secret header.
func (m *ManagedIdentity) LogValue() slog.Value {
	id := m.Identity()
	return slog.GroupValue(slog.String("name", id.Name), slog.String("appid", id.ClientID), slog.String("endpoint", m.Endpoint()))
}
