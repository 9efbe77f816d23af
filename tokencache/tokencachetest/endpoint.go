// Package tokencachetest is an App Service managed-identity endpoint for
// tests: the real azidentity.ManagedIdentityCredential (and so a
// tokencache.Cache over it) gets tokens from it on loopback, the way
// net/http/httptest tests HTTP code.
//
// An [Endpoint] speaks the protocol of App Service, Azure Functions and
// Container Apps (api-version 2019-08-01): GET {IDENTITY_ENDPOINT}?api-version=
// 2019-08-01&resource=… with the X-IDENTITY-HEADER secret, optional
// user-assigned selectors (client_id, object_id / principal_id, mi_res_id,
// mutually exclusive), and a JSON answer with access_token, expires_on,
// not_before, resource, token_type and client_id (plus refresh_in when set).
// azidentity picks it when IDENTITY_ENDPOINT and IDENTITY_HEADER are set:
// [Endpoint.Setenv] does that for a test, [Endpoint.Env] gives the pair for a
// child process.
//
// Tokens come from [Options.Mint]; by default they are opaque random strings.
// To get tokens an authmw-protected service accepts, mint them with an issuer
// such as authmw/authmwtest (see the example of [Options]).
//
// Faults for tests: [Endpoint.SetFault] (any status, Retry-After, a body, for
// every request or the next n, or no answer at all). Counters
// ([Endpoint.Requests], [Endpoint.Issued]) let tests prove caching.
//
// MSAL, under azidentity, caches managed-identity tokens in memory for the
// whole process, per resource: a second credential asking for a resource
// already cached does not reach the endpoint. Give every test its own resource.
//
// Anyone who can reach the port and knows the header gets tokens: an Endpoint
// is for tests and local runs only. It never logs or returns tokens or the
// identity header in errors.
package tokencachetest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// APIVersion is the only api-version the endpoint accepts, the one azidentity
// v1.15.0 sends for the App Service source.
const APIVersion = "2019-08-01"

// TokenPath is the path of the endpoint, as in [Endpoint.URL].
const TokenPath = "/msi/token"

// DefaultTokenLifetime is the lifetime of tokens when neither [Token.ExpiresOn]
// nor an exp claim says otherwise and [Options.TokenLifetime] is zero: the
// ~24 h of real managed-identity tokens.
const DefaultTokenLifetime = 24 * time.Hour

// Token is what [Options.Mint] returns for one request.
type Token struct {
	// AccessToken is the token. Required.
	AccessToken string
	// ExpiresOn becomes expires_on. Default: the token's exp claim when it is
	// a JWT that has one, else now + Options.TokenLifetime.
	ExpiresOn time.Time
	// NotBefore becomes not_before. Default: the token's nbf claim when it is
	// a JWT that has one, else now.
	NotBefore time.Time
	// RefreshIn becomes refresh_in (whole seconds), which azidentity turns
	// into AccessToken.RefreshOn. Default: 0, and the member is omitted, as on
	// App Service.
	RefreshIn time.Duration
}

// Options configures an [Endpoint]. The zero value is valid.
type Options struct {
	// Mint returns the token for resource (the requested scope without
	// "/.default", e.g. "api://callee"). An error is answered 500. It may be
	// called concurrently. Default: an opaque random token.
	Mint func(resource string) (Token, error)
	// ClientID is the identity's client ID: client_id in responses and the
	// value a client_id selector must match (case-insensitively).
	// Default: a random UUID.
	ClientID string
	// ObjectID is the identity's object (principal) ID, the value an
	// object_id or principal_id selector must match. Default: a random UUID.
	ObjectID string
	// ResourceID is the identity's ARM resource ID, the value a mi_res_id
	// selector must match. Default: none, and mi_res_id selectors fail.
	ResourceID string
	// TokenLifetime is the lifetime of tokens whose expiry neither
	// Token.ExpiresOn nor an exp claim gives. MSAL does not cache tokens
	// living 5 minutes or less. Must not be negative. Default: [DefaultTokenLifetime].
	TokenLifetime time.Duration
	// Now is the clock for default expiries. MSAL compares expires_on with the
	// real clock. Default: time.Now.
	Now func() time.Time
	// Logger receives one line per issued, rejected or fault-injected request
	// (resource, status and reason only; never tokens or identity headers).
	// Default: discard.
	Logger *slog.Logger
}

// Fault is an injected failure, set with [Endpoint.SetFault]. The zero value
// means healthy.
type Fault struct {
	// Status is the HTTP status of every answer while the fault lasts, before
	// any validation. azidentity retries 408, 429, 500, 502, 503 and 504 (3
	// retries by default) unless Retry-After exceeds its 60 s maximum delay.
	Status int
	// RetryAfter, when non-empty, is sent as the Retry-After header.
	RetryAfter string
	// Body replaces the default Entra-style JSON error body; with Status 200
	// it tests a malformed success.
	Body string
	// Hang makes requests wait without an answer until their client gives up;
	// closing the endpoint drops their connections. Status is then ignored.
	Hang bool
	// Times is how many requests the fault answers before the endpoint is
	// healthy again; 0 means until the next SetFault.
	Times int
}

// Endpoint is a running managed-identity endpoint on 127.0.0.1 with a random
// port and a random IDENTITY_HEADER secret. Create it with [NewEndpoint] and
// stop it with [Endpoint.Close]. All methods are safe for concurrent use.
type Endpoint struct {
	opts   Options
	header string
	url    string
	srv    *httptest.Server
	closed chan struct{}
	once   sync.Once

	requests atomic.Int64
	issued   atomic.Int64

	mu        sync.Mutex
	fault     Fault
	remaining int // fault answers left when fault.Times > 0
}

// NewEndpoint validates opts and starts the endpoint. Every problem with opts
// is reported in one error naming the option. It panics, like
// httptest.NewServer, when it cannot listen on loopback.
func NewEndpoint(opts Options) (*Endpoint, error) {
	if opts.TokenLifetime < 0 {
		return nil, fmt.Errorf("tokencachetest: Options.TokenLifetime must not be negative (got %s)", opts.TokenLifetime)
	}
	if opts.TokenLifetime == 0 {
		opts.TokenLifetime = DefaultTokenLifetime
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ClientID == "" {
		opts.ClientID = randomUUID()
	}
	if opts.ObjectID == "" {
		opts.ObjectID = randomUUID()
	}
	e := &Endpoint{opts: opts, header: randomString(32), closed: make(chan struct{})}
	e.srv = httptest.NewUnstartedServer(e)
	e.srv.Config.ReadHeaderTimeout = 10 * time.Second
	e.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	e.srv.Start()
	e.url = e.srv.URL + TokenPath
	return e, nil
}

// URL returns the value for IDENTITY_ENDPOINT, "http://127.0.0.1:PORT/msi/token".
func (e *Endpoint) URL() string { return e.url }

// Header returns the value for IDENTITY_HEADER: a random secret, different for
// every endpoint, that requests must send as X-IDENTITY-HEADER. Do not log it.
func (e *Endpoint) Header() string { return e.header }

// ClientID returns the identity's client ID ([Options.ClientID] or the default).
func (e *Endpoint) ClientID() string { return e.opts.ClientID }

// ObjectID returns the identity's object ID ([Options.ObjectID] or the default).
func (e *Endpoint) ObjectID() string { return e.opts.ObjectID }

// Env returns {"IDENTITY_ENDPOINT=…", "IDENTITY_HEADER=…"} for exec.Cmd.Env.
func (e *Endpoint) Env() []string {
	return []string{"IDENTITY_ENDPOINT=" + e.url, "IDENTITY_HEADER=" + e.header}
}

// Setenv points managed-identity credentials created afterwards in this test
// at the endpoint: it sets IDENTITY_ENDPOINT and IDENTITY_HEADER and clears
// the variables that would make azidentity choose another source
// (IDENTITY_SERVER_THUMBPRINT, MSI_ENDPOINT, MSI_SECRET, IMDS_ENDPOINT), with
// t.Setenv, so the test must not be parallel and everything is restored when
// it ends.
func (e *Endpoint) Setenv(t testing.TB) {
	t.Helper()
	t.Setenv("IDENTITY_ENDPOINT", e.url)
	t.Setenv("IDENTITY_HEADER", e.header)
	for _, k := range []string{"IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
	}
}

// Requests returns how many requests the endpoint received, including
// rejected and fault-injected ones.
func (e *Endpoint) Requests() int64 { return e.requests.Load() }

// Issued returns how many tokens the endpoint issued.
func (e *Endpoint) Issued() int64 { return e.issued.Load() }

// SetFault injects f; SetFault(Fault{}) makes the endpoint healthy again.
func (e *Endpoint) SetFault(f Fault) {
	e.mu.Lock()
	e.fault, e.remaining = f, f.Times
	e.mu.Unlock()
}

// Close stops the endpoint, releasing hanging requests first. It is safe to
// call more than once.
func (e *Endpoint) Close() {
	e.once.Do(func() {
		close(e.closed)
		e.srv.Close()
	})
}

// String describes the endpoint without its secret header.
func (e *Endpoint) String() string {
	return fmt.Sprintf("tokencachetest.Endpoint{url=%q client_id=%q header=REDACTED}", e.url, e.opts.ClientID)
}

// GoString is like String, so %#v does not print the header either.
func (e *Endpoint) GoString() string { return e.String() }

// LogValue implements slog.LogValuer without the secret header.
func (e *Endpoint) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", e.url), slog.String("client_id", e.opts.ClientID))
}

// takeFault returns the fault answering this request, if any.
func (e *Endpoint) takeFault() (Fault, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.fault
	if f.Status == 0 && !f.Hang {
		return Fault{}, false
	}
	if f.Times > 0 {
		e.remaining--
		if e.remaining <= 0 {
			e.fault = Fault{}
		}
	}
	return f, true
}

// response is the App Service 2019-08-01 success body.
type response struct {
	AccessToken string `json:"access_token"`
	ExpiresOn   string `json:"expires_on"`
	NotBefore   string `json:"not_before"`
	Resource    string `json:"resource"`
	TokenType   string `json:"token_type"`
	ClientID    string `json:"client_id"`
	RefreshIn   int64  `json:"refresh_in,omitempty"`
}

// ServeHTTP implements the App Service managed-identity protocol.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	log := e.opts.Logger
	if f, ok := e.takeFault(); ok {
		if f.Hang {
			log.Info("tokencachetest: token request hangs (fault injected)")
			select {
			case <-r.Context().Done():
			case <-e.closed:
				panic(http.ErrAbortHandler) // drop the connection: no answer at all
			}
			return
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		log.Info("tokencachetest: token request failed (fault injected)", "status", f.Status)
		if f.Body != "" {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(f.Status)
			io.WriteString(w, f.Body) //nolint:errcheck // client went away
			return
		}
		writeError(w, f.Status, "service_unavailable", "managed identity endpoint failure (fault injected)")
		return
	}
	reject := func(status int, code, desc string) {
		log.Info("tokencachetest: token request rejected", "status", status, "reason", desc)
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
	if len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), []byte(e.header)) != 1 {
		reject(http.StatusUnauthorized, "unauthorized", "missing or wrong X-IDENTITY-HEADER")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		reject(http.StatusBadRequest, "invalid_request", "malformed query string")
		return
	}
	for name, v := range q {
		if len(v) > 1 {
			reject(http.StatusBadRequest, "invalid_request", "query parameter "+strconv.Quote(name)+" given more than once")
			return
		}
	}
	if q.Get("api-version") != APIVersion {
		reject(http.StatusBadRequest, "invalid_request", "api-version must be "+APIVersion)
		return
	}
	resource := strings.TrimSuffix(q.Get("resource"), "/.default")
	if resource == "" {
		reject(http.StatusBadRequest, "invalid_request", "resource is required")
		return
	}
	if msg := e.selectIdentity(q); msg != "" {
		reject(http.StatusBadRequest, "invalid_request", msg)
		return
	}
	mint := e.opts.Mint
	if mint == nil {
		mint = opaqueToken
	}
	tok, err := mint(resource)
	if err == nil && tok.AccessToken == "" {
		err = errors.New("Options.Mint returned an empty AccessToken")
	}
	if err != nil {
		log.Error("tokencachetest: minting failed", "resource", resource, "error", err)
		writeError(w, http.StatusInternalServerError, "server_error", "minting the token failed")
		return
	}
	now := e.opts.Now()
	exp, nbf := jwtTimes(tok.AccessToken)
	if tok.ExpiresOn.IsZero() {
		tok.ExpiresOn = exp
		if exp.IsZero() {
			tok.ExpiresOn = now.Add(e.opts.TokenLifetime)
		}
	}
	if tok.NotBefore.IsZero() {
		tok.NotBefore = nbf
		if nbf.IsZero() {
			tok.NotBefore = now
		}
	}
	body, err := json.Marshal(response{
		AccessToken: tok.AccessToken,
		ExpiresOn:   strconv.FormatInt(tok.ExpiresOn.Unix(), 10),
		NotBefore:   strconv.FormatInt(tok.NotBefore.Unix(), 10),
		Resource:    resource,
		TokenType:   "Bearer",
		ClientID:    e.opts.ClientID,
		RefreshIn:   int64(tok.RefreshIn / time.Second),
	})
	if err != nil { // cannot happen: only strings and numbers
		writeError(w, http.StatusInternalServerError, "server_error", "encoding failed")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(body) //nolint:errcheck // client went away
	e.issued.Add(1)
	log.Info("tokencachetest: token issued", "resource", resource, "expires_on", tok.ExpiresOn.Unix())
}

// selectIdentity checks the optional user-assigned selectors and returns a
// reason when the request does not address this identity.
func (e *Endpoint) selectIdentity(q url.Values) string {
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
		if !strings.EqualFold(q.Get("client_id"), e.opts.ClientID) {
			return "identity not found: client_id does not match this identity"
		}
	case q.Has("object_id"):
		if !strings.EqualFold(q.Get("object_id"), e.opts.ObjectID) {
			return "identity not found: object_id does not match this identity"
		}
	case q.Has("principal_id"):
		if !strings.EqualFold(q.Get("principal_id"), e.opts.ObjectID) {
			return "identity not found: principal_id does not match this identity"
		}
	case q.Has("mi_res_id"):
		if e.opts.ResourceID == "" || !strings.EqualFold(q.Get("mi_res_id"), e.opts.ResourceID) {
			return "identity not found: mi_res_id does not match this identity"
		}
	}
	return ""
}

// jwtTimes reads exp and nbf from a JWT's payload without verifying it; zero
// times when tok is not a JWT or lacks them.
func jwtTimes(tok string) (exp, nbf time.Time) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return
	}
	var c struct {
		Exp json.Number `json:"exp"`
		Nbf json.Number `json:"nbf"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return
	}
	if s, err := c.Exp.Int64(); err == nil {
		exp = time.Unix(s, 0)
	}
	if s, err := c.Nbf.Int64(); err == nil {
		nbf = time.Unix(s, 0)
	}
	return
}

// opaqueToken is the default Options.Mint.
func opaqueToken(string) (Token, error) {
	return Token{AccessToken: "tokencachetest-" + randomString(24)}, nil
}

// writeError writes an Entra-style JSON error body. It never carries request
// data, so secrets sent by a client cannot be echoed.
func writeError(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}{code, desc})
	w.Write(b) //nolint:errcheck // client went away
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails (Go ≥1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomUUID returns a random (version 4) UUID.
func randomUUID() string {
	b := make([]byte, 16)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails (Go ≥1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
