package localidp

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AppServiceAPIVersion is the only api-version the managed-identity endpoints
// accept, the one azidentity v1.15.0 sends for the App Service source.
const AppServiceAPIVersion = "2019-08-01"

// TokenPath is the path of every managed-identity endpoint.
const TokenPath = "/msi/token"

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
// loopback listener. Point azidentity at it with [ManagedIdentity.Env] or by
// setting IDENTITY_ENDPOINT and IDENTITY_HEADER. All methods are safe for
// concurrent use.
type ManagedIdentity struct {
	p        *Platform
	header   string
	endpoint string
	srv      *http.Server

	requests atomic.Int64
	issued   atomic.Int64

	mu         sync.Mutex
	id         Identity
	failStatus int
	retryAfter string
	version    int
	lifetime   time.Duration
	refreshIn  time.Duration
	closeOnce  sync.Once
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("localidp: listen on 127.0.0.1: %w", err)
	}
	m := &ManagedIdentity{
		p:        p,
		id:       id,
		header:   randomID(32),
		endpoint: "http://" + ln.Addr().String() + TokenPath,
		version:  1,
	}
	m.srv = &http.Server{
		Handler:           m,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	go m.srv.Serve(ln) //nolint:errcheck // returns http.ErrServerClosed on Close
	p.identities = append(p.identities, m)
	p.log.Info("localidp: managed identity started", "identity", id.Name, "appid", id.ClientID, "oid", id.ObjectID, "endpoint", m.endpoint)
	return m, nil
}

// Endpoint returns the value for IDENTITY_ENDPOINT, e.g.
// "http://127.0.0.1:PORT/msi/token".
func (m *ManagedIdentity) Endpoint() string { return m.endpoint }

// Header returns the value for IDENTITY_HEADER: a random secret, different
// for every endpoint, that requests must send as X-IDENTITY-HEADER. Do not log it.
func (m *ManagedIdentity) Header() string { return m.header }

// Env returns {"IDENTITY_ENDPOINT=…", "IDENTITY_HEADER=…"} for exec.Cmd.Env.
func (m *ManagedIdentity) Env() []string {
	return []string{"IDENTITY_ENDPOINT=" + m.endpoint, "IDENTITY_HEADER=" + m.header}
}

// Requests returns how many requests the endpoint received, including
// rejected and fault-injected ones.
func (m *ManagedIdentity) Requests() int64 { return m.requests.Load() }

// Issued returns how many tokens the endpoint issued.
func (m *ManagedIdentity) Issued() int64 { return m.issued.Load() }

// SetFailure injects a fault: with status != 0 every request (before any
// validation) is answered with that status, a JSON error body and, if
// retryAfter is non-empty, a Retry-After header. Status 0 makes the endpoint
// healthy again. Note azidentity retries 408/429/500/502/503/504 up to 3
// times with backoff unless Retry-After exceeds its 60 s maximum delay, in
// which case it gives up after the first response.
func (m *ManagedIdentity) SetFailure(status int, retryAfter string) {
	m.mu.Lock()
	m.failStatus, m.retryAfter = status, retryAfter
	m.mu.Unlock()
	m.p.log.Info("localidp: managed identity failure mode changed", "identity", m.id.Name, "status", status, "retry_after", retryAfter)
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
func (m *ManagedIdentity) Close() {
	m.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := m.srv.Shutdown(ctx); err != nil {
			m.srv.Close()
		}
	})
}

// tokenResponse is the App Service 2019-08-01 success body.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresOn   string `json:"expires_on"`
	NotBefore   string `json:"not_before"`
	Resource    string `json:"resource"`
	TokenType   string `json:"token_type"`
	ClientID    string `json:"client_id"`
	RefreshIn   int64  `json:"refresh_in,omitempty"`
}

// ServeHTTP implements the App Service managed-identity protocol.
func (m *ManagedIdentity) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.requests.Add(1)
	m.mu.Lock()
	id := m.id.clone()
	failStatus, retryAfter := m.failStatus, m.retryAfter
	version, lifetime, refreshIn := m.version, m.lifetime, m.refreshIn
	m.mu.Unlock()
	log := m.p.log.With("identity", id.Name, "appid", id.ClientID)

	if failStatus != 0 {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		log.Info("localidp: token request failed (fault injected)", "status", failStatus)
		writeError(w, failStatus, "service_unavailable", "managed identity endpoint failure (fault injected)")
		return
	}
	reject := func(status int, code, desc string) {
		log.Info("localidp: token request rejected", "status", status, "reason", desc)
		writeError(w, status, code, desc)
	}
	if r.URL.Path != TokenPath {
		reject(http.StatusNotFound, "not_found", "no such endpoint; use "+TokenPath)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		reject(http.StatusMethodNotAllowed, "invalid_request", "only GET is supported")
		return
	}
	got := r.Header.Values("X-IDENTITY-HEADER")
	if len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), []byte(m.header)) != 1 {
		reject(http.StatusUnauthorized, "unauthorized", "missing or wrong X-IDENTITY-HEADER")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		reject(http.StatusBadRequest, "invalid_request", "malformed query string")
		return
	}
	single := func(name string) (string, bool) {
		v := q[name]
		if len(v) > 1 {
			return "", false
		}
		if len(v) == 0 {
			return "", true
		}
		return v[0], true
	}
	for name := range q {
		if _, ok := single(name); !ok {
			reject(http.StatusBadRequest, "invalid_request", "query parameter "+strconv.Quote(name)+" given more than once")
			return
		}
	}
	if v, _ := single("api-version"); v != AppServiceAPIVersion {
		reject(http.StatusBadRequest, "invalid_request", "api-version must be "+AppServiceAPIVersion)
		return
	}
	resource, _ := single("resource")
	resource = strings.TrimSuffix(resource, "/.default")
	if resource == "" {
		reject(http.StatusBadRequest, "invalid_request", "resource is required")
		return
	}
	if msg := selectIdentity(q, id); msg != "" {
		reject(http.StatusBadRequest, "invalid_request", msg)
		return
	}
	if lifetime <= 0 {
		lifetime = m.p.lifetime
	}
	claims := m.p.accessTokenClaims(id, resource, version, lifetime)
	k := m.p.keys.current()
	tok, err := sign(k, claims)
	if err != nil {
		log.Error("localidp: signing failed", "error", err)
		writeError(w, http.StatusInternalServerError, "server_error", "signing failed")
		return
	}
	body, err := json.Marshal(tokenResponse{
		AccessToken: tok,
		ExpiresOn:   strconv.FormatInt(claims["exp"].(int64), 10),
		NotBefore:   strconv.FormatInt(claims["nbf"].(int64), 10),
		Resource:    resource,
		TokenType:   "Bearer",
		ClientID:    id.ClientID,
		RefreshIn:   int64(refreshIn / time.Second),
	})
	if err != nil {
		log.Error("localidp: encoding response failed", "error", err)
		writeError(w, http.StatusInternalServerError, "server_error", "encoding failed")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(body) //nolint:errcheck // client went away
	m.issued.Add(1)
	roles, _ := claims["roles"].([]string)
	log.Info("localidp: token issued", "oid", id.ObjectID, "resource", resource, "ver", version, "kid", k.kid, "roles", len(roles))
}

// selectIdentity checks the optional user-assigned selectors against id and
// returns a reason when the request does not address this identity.
func selectIdentity(q url.Values, id Identity) string {
	n := 0
	for _, name := range []string{"client_id", "object_id", "principal_id", "mi_res_id"} {
		if q.Has(name) {
			n++
		}
	}
	if n > 1 {
		return "client_id, object_id/principal_id and mi_res_id are mutually exclusive"
	}
	switch {
	case q.Has("client_id"):
		if !strings.EqualFold(q.Get("client_id"), id.ClientID) {
			return "identity not found: client_id does not match this identity"
		}
	case q.Has("object_id"):
		if !strings.EqualFold(q.Get("object_id"), id.ObjectID) {
			return "identity not found: object_id does not match this identity"
		}
	case q.Has("principal_id"):
		if !strings.EqualFold(q.Get("principal_id"), id.ObjectID) {
			return "identity not found: principal_id does not match this identity"
		}
	case q.Has("mi_res_id"):
		if id.ResourceID == "" || !strings.EqualFold(q.Get("mi_res_id"), id.ResourceID) {
			return "identity not found: mi_res_id does not match this identity"
		}
	}
	return ""
}

// String describes the endpoint without its secret header.
func (m *ManagedIdentity) String() string {
	m.mu.Lock()
	name, appid := m.id.Name, m.id.ClientID
	m.mu.Unlock()
	return fmt.Sprintf("localidp.ManagedIdentity{name=%q appid=%q endpoint=%q header=REDACTED}", name, appid, m.endpoint)
}

// GoString is like String, so %#v does not print the header either.
func (m *ManagedIdentity) GoString() string { return m.String() }

// LogValue implements slog.LogValuer without the secret header.
func (m *ManagedIdentity) LogValue() slog.Value {
	m.mu.Lock()
	name, appid := m.id.Name, m.id.ClientID
	m.mu.Unlock()
	return slog.GroupValue(slog.String("name", name), slog.String("appid", appid), slog.String("endpoint", m.endpoint))
}
