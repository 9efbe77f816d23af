package callee

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/internal/netrule"
)

// Gateway-mode defaults and bounds.
const (
	// DefaultUpstreamTimeout is the default of CALLEE_UPSTREAM_TIMEOUT: how long the
	// gateway waits for the upstream's response headers.
	DefaultUpstreamTimeout = 30 * time.Second
	// MinUpstreamTimeout and MaxUpstreamTimeout bound CALLEE_UPSTREAM_TIMEOUT.
	MinUpstreamTimeout = time.Second
	MaxUpstreamTimeout = 10 * time.Minute

	upstreamConnectTimeout = 5 * time.Second
	upstreamTLSTimeout     = 10 * time.Second
	upstreamMaxIdleConns   = 64 // one upstream host: per host = total
	upstreamIdleTimeout    = 90 * time.Second
	upstreamMaxRespHeader  = 1 << 20
	upstreamWriteBuffer    = 16 << 10
	healthProbeTimeout     = 2 * time.Second
	healthTTL              = time.Second // a probe result is reused this long
)

// Reason codes of the gateway's own problem+json answers.
const (
	ReasonUpstreamUnavailable = "upstream_unavailable" // 502: connection refused, reset, bad answer
	ReasonUpstreamTimeout     = "upstream_timeout"     // 504: no response headers within CALLEE_UPSTREAM_TIMEOUT
	ReasonMethodNotAllowed    = "method_not_allowed"   // 405: CONNECT is never tunnelled
	ReasonBadRequestBody      = "bad_request_body"     // 400: the client's request body could not be read (e.g. malformed chunked encoding)
	reasonIdentityUnavailable = "identity_unavailable" // 500: the verified identity could not be rendered
)

// GatewayConfig is gateway mode's configuration, read by [GatewayConfigFromEnv].
type GatewayConfig struct {
	// Upstream is the application's base URL (CALLEE_UPSTREAM_URL). Its path, if
	// any, prefixes every forwarded path.
	Upstream *url.URL
	// Timeout bounds the wait for the upstream's response headers
	// (CALLEE_UPSTREAM_TIMEOUT); default DefaultUpstreamTimeout.
	Timeout time.Duration
	// PassAuthorization passes the caller's verified Authorization header on
	// (CALLEE_UPSTREAM_PASS_AUTHORIZATION); default true.
	PassAuthorization bool
	// HealthPath is the upstream path the health endpoint probes
	// (CALLEE_UPSTREAM_HEALTH_PATH); empty: a TCP connect.
	HealthPath string
	// TrustForwarded keeps the client's X-Forwarded-* headers
	// (CALLEE_TRUST_FORWARDED_HEADERS); default false.
	TrustForwarded bool
}

// GatewayConfigFromEnv reads gateway mode's settings with getenv. It returns nil and
// no error when CALLEE_UPSTREAM_URL is unset (the callee serves its own routes). All
// problems are reported together, each naming its setting.
func GatewayConfigFromEnv(getenv func(string) string) (*GatewayConfig, error) {
	raw := strings.TrimSpace(getenv(EnvUpstreamURL))
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if raw == "" {
		for _, k := range gatewaySettings {
			if strings.TrimSpace(getenv(k)) != "" {
				bad("%s is set but %s is not: set %s to the application's URL (e.g. http://127.0.0.1:8080) or remove %s", k, EnvUpstreamURL, EnvUpstreamURL, k)
			}
		}
		return nil, errors.Join(errs...)
	}
	boolean := func(name string, def bool) bool {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("%s must be true or false, got %q", name, v)
			return def
		}
		return b
	}
	cfg := &GatewayConfig{Timeout: DefaultUpstreamTimeout}
	cfg.PassAuthorization = boolean(EnvUpstreamPassAuthorization, true)
	cfg.TrustForwarded = boolean(EnvTrustForwardedHeaders, false)
	insecure := boolean(EnvUpstreamInsecureHTTP, false)

	u, err := url.Parse(raw)
	switch {
	case err != nil:
		// The value is not echoed: it may hold a credential.
		bad("%s is not a URL: set it to the application's base URL, such as http://127.0.0.1:8080", EnvUpstreamURL)
	case u.User != nil:
		bad("%s must not carry user info (credentials in a URL end up in logs)", EnvUpstreamURL)
	case !u.IsAbs() || u.Host == "" || u.Hostname() == "":
		bad("%s must be an absolute http(s) URL with a host, such as http://127.0.0.1:8080", EnvUpstreamURL)
	case u.Scheme != "http" && u.Scheme != "https":
		bad("%s must use http or https, got scheme %q", EnvUpstreamURL, u.Scheme)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		bad("%s must not have a query or fragment (set only scheme, host, port and an optional base path)", EnvUpstreamURL)
	case u.Port() != "" && !validPort(u.Port()):
		bad("%s has an invalid port %q", EnvUpstreamURL, u.Port())
	default:
		if err := netrule.CheckURL(u); err != nil && !insecure {
			bad("%s is plain http to %q, which is not loopback: use https, or set %s=true to send tokens and identity headers unencrypted (%v)", EnvUpstreamURL, u.Hostname(), EnvUpstreamInsecureHTTP, err)
		}
		cfg.Upstream = u
	}
	if v := strings.TrimSpace(getenv(EnvUpstreamTimeout)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < MinUpstreamTimeout || d > MaxUpstreamTimeout {
			bad("%s must be a Go duration from %s to %s such as 30s, got %q", EnvUpstreamTimeout, MinUpstreamTimeout, MaxUpstreamTimeout, v)
		} else {
			cfg.Timeout = d
		}
	}
	if v := strings.TrimSpace(getenv(EnvUpstreamHealthPath)); v != "" {
		if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.ContainsAny(v, "?#\\ \t\r\n") {
			bad("%s must be a path starting with a single / (no query), such as /healthz, got %q", EnvUpstreamHealthPath, v)
		} else {
			cfg.HealthPath = v
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n <= 65535
}

// copyBuffers recycles ReverseProxy's 32 KiB copy buffers across requests.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// gateway is the reverse proxy of gateway mode: authmw in front, the upstream behind.
type gateway struct {
	cfg       GatewayConfig
	proxy     *httputil.ReverseProxy
	transport *http.Transport
	logger    *slog.Logger
	now       func() time.Time

	mu       sync.Mutex // guards the fields below
	checked  time.Time
	up       bool
	inflight chan struct{}
}

func newGateway(cfg GatewayConfig, logger *slog.Logger) *gateway {
	g := &gateway{cfg: cfg, logger: logger, now: time.Now}
	g.transport = &http.Transport{
		// Never an environment proxy: HTTP_PROXY would receive every bearer token.
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   upstreamConnectTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:      true, // negotiated over TLS only; plain http stays HTTP/1.1
		MaxIdleConns:           upstreamMaxIdleConns,
		MaxIdleConnsPerHost:    upstreamMaxIdleConns,
		IdleConnTimeout:        upstreamIdleTimeout,
		TLSHandshakeTimeout:    upstreamTLSTimeout,
		ExpectContinueTimeout:  time.Second,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: upstreamMaxRespHeader,
		// Pass encodings through untouched: no Accept-Encoding added, nothing decompressed.
		DisableCompression: true,
		// A forwarded request carries the bearer token and X-MS-CLIENT-PRINCIPAL (each
		// one to a few KiB with real Entra tokens): with the default 4 KiB buffer a
		// header block larger than that would leave in two writes (two system calls).
		WriteBufferSize: upstreamWriteBuffer,
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:   g.rewrite,
		Transport: g.transport,
		// Zero, not -1: ReverseProxy already flushes after every write for the responses
		// that stream (text/event-stream, or no Content-Length: chunked), and -1 on every
		// response would cost a timer goroutine and a separate write for the headers of
		// each small answer. Bodies of known length are copied as they arrive either way.
		FlushInterval: 0,
		BufferPool:    copyBuffers,
		ErrorHandler:  g.errorHandler,
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return g
}

// handler is gateway mode's whole HTTP handler: authmw guards every request; the
// health endpoint is answered here, everything else is forwarded.
//
// A request with a body gets "Connection: close" on every answer except a forwarded
// one: gateway mode has no server ReadTimeout (streams may last), and net/http drains
// an unread body before it writes the answer, so a denied request whose body never
// comes would otherwise hold its connection, unanswered, for as long as the client
// likes — a slowloris needing no token. Only the upstream reads bodies.
func (g *gateway) handler(mw *authmw.Middleware) http.Handler {
	proxied := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Del("Connection") // forwarded: the body is streamed to the upstream
		g.proxy.ServeHTTP(w, r)
	}))
	health := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.healthz(w, r, mw) }))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			w.Header().Set("Connection", "close")
		}
		if r.Method == http.MethodConnect {
			writeProblem(w, http.StatusMethodNotAllowed, ReasonMethodNotAllowed, "The gateway does not tunnel CONNECT requests.")
			return
		}
		if r.URL.Path == HealthzPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			health.ServeHTTP(w, r)
			return
		}
		proxied.ServeHTTP(w, r)
	})
}

// errIdentityUnavailable cancels an outbound request whose Principal has no Easy
// Auth values: it must not reach the upstream without the identity it was allowed as.
var errIdentityUnavailable = errors.New("callee: the verified principal has no Easy Auth headers")

// rewrite builds the outbound request. ReverseProxy has already removed hop-by-hop
// headers (RFC 9110 §7.6.1, including those named in Connection) and the client's
// Forwarded / X-Forwarded-* headers.
// routingOverrideHeaders name a path or URL that some application frameworks
// route by in place of the request line's.
var routingOverrideHeaders = []string{"X-Original-Url", "X-Rewrite-Url", "X-Original-Uri"}

func (g *gateway) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(g.cfg.Upstream)
	h := pr.Out.Header
	// Only the verified token speaks for the caller: drop every identity header
	// the client sent, in every spelling, then set the ones authmw built.
	authmw.StripIdentityHeaders(h)
	injectTrace(pr.Out.Context(), h) // OpenTelemetry (telemetry.go): the upstream continues the callee's span
	if pr.Out.Trailer != nil {
		authmw.StripIdentityHeaders(pr.Out.Trailer)
	}
	p, verified := authmw.PrincipalFrom(pr.In.Context())
	if verified && !p.SetEasyAuthHeaders(h) {
		ctx, cancel := context.WithCancelCause(pr.Out.Context())
		cancel(errIdentityUnavailable)
		pr.Out = pr.Out.WithContext(ctx)
	}
	// Only WebSocket upgrades are forwarded. Any other offer (h2c above all) is dropped
	// and the request forwarded as plain HTTP/1.1, as a server may do: an h2c
	// connection to an upstream that accepts it would be a tunnel in which the client
	// sends further requests, with headers of its choosing, that the gateway never sees.
	if up := h.Get("Upgrade"); up != "" && !strings.EqualFold(up, "websocket") {
		h.Del("Upgrade")
		h.Del("Connection")
		h.Del("Http2-Settings")
	}
	// Only a token authmw verified is passed on: on an excluded path the client's
	// Authorization (never checked) would reach the application as if it had been.
	if !g.cfg.PassAuthorization || !verified {
		h.Del("Authorization")
	}
	// Headers some frameworks route by instead of the request line (IIS URL
	// Rewrite, Symfony, Laminas): the path authmw checked must be the path the
	// application serves, so a client never chooses another one.
	for _, k := range routingOverrideHeaders {
		h.Del(k)
	}
	if b := pr.Out.Body; b != nil && b != http.NoBody {
		pr.Out.Body = &clientBody{ReadCloser: b}
	}
	if g.cfg.TrustForwarded {
		if v := pr.In.Header.Values("X-Forwarded-For"); len(v) > 0 {
			h["X-Forwarded-For"] = v
		}
	}
	pr.SetXForwarded()
	if g.cfg.TrustForwarded {
		for _, k := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v := pr.In.Header.Get(k); v != "" {
				h.Set(k, v)
			}
		}
	}
}

// errorHandler answers a failed forward: 504 when the upstream was too slow, 502
// otherwise, with a problem+json body that never carries the cause (it names internal
// addresses); the cause goes to the log.
//
// r is the outbound request (ReverseProxy passes that): its context is the client's,
// or the one rewrite cancelled.
func (g *gateway) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if r.ContentLength != 0 {
		// Nobody reads the rest of the body now: close rather than wait to drain it.
		w.Header().Set("Connection", "close")
	}
	if errors.Is(context.Cause(r.Context()), errIdentityUnavailable) {
		g.logger.Error("callee: request not forwarded", "method", r.Method, "path", r.URL.Path, "error", errIdentityUnavailable.Error())
		writeProblem(w, http.StatusInternalServerError, reasonIdentityUnavailable, "The gateway could not render the caller's identity.")
		return
	}
	if r.Context().Err() != nil {
		g.logger.Debug("callee: client went away during forward", "method", r.Method, "path", r.URL.Path, "error", err.Error())
		return
	}
	if cb, ok := r.Body.(*clientBody); ok && cb.failed.Load() {
		// The client's body, not the upstream, failed (malformed chunked encoding, a
		// body cut short): its own 400, and the upstream is not marked down — else
		// any client, even without a token on an excluded path, could take the
		// replica out of rotation through the readiness probe.
		g.logger.Debug("callee: request body unreadable during forward", "method", r.Method, "path", r.URL.Path, "error", err.Error())
		writeProblem(w, http.StatusBadRequest, ReasonBadRequestBody, "The request body could not be read.")
		return
	}
	status, reason, detail := http.StatusBadGateway, ReasonUpstreamUnavailable, "The application behind the gateway did not answer; retry later."
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		status, reason, detail = http.StatusGatewayTimeout, ReasonUpstreamTimeout, "The application behind the gateway did not answer in time."
	}
	if status == http.StatusBadGateway {
		// Unreachable, not merely slow: one slow route must not take the replica out
		// of rotation through the readiness probe.
		g.markDown()
	}
	g.logger.Warn("callee: upstream failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err.Error())
	writeProblem(w, status, reason, detail)
}

// clientBody is the client's request body on its way to the upstream; it records
// whether reading it failed, so that errorHandler can tell the client's fault from
// the upstream's.
type clientBody struct {
	io.ReadCloser
	failed atomic.Bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.failed.Store(true)
	}
	return n, err
}

// gatewayProblem is the gateway's RFC 9457 body, in the shape of authmw's.
type gatewayProblem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func writeProblem(w http.ResponseWriter, status int, reason, detail string) {
	body, _ := json.Marshal(gatewayProblem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Reason: reason})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // client went away
}

// UpstreamHealth is the "upstream" member of the health endpoint's body in gateway mode.
type UpstreamHealth struct {
	Status string `json:"status"` // "up" or "down"
}

// healthz answers the health endpoint in gateway mode: authmw's state as in
// [Server.healthz] plus "upstream": {"status": "up"|"down"}; 503 while the keys
// are not loaded or the upstream does not answer, so a readiness probe keeps
// traffic away until both are ready. The gateway itself starts and serves
// whether or not the upstream is up.
func (g *gateway) healthz(w http.ResponseWriter, r *http.Request, mw *authmw.Middleware) {
	up := &UpstreamHealth{Status: "up"}
	if !g.upstreamUp(r.Context()) {
		up.Status = "down"
	}
	status, body := healthOf(mw.Health(), up)
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if status != http.StatusOK {
		w.Header().Set("Retry-After", healthRetryAfter)
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(b) //nolint:errcheck // client went away
	}
}

// upstreamUp returns the upstream's health, probing it when the last result is older
// than healthTTL. Concurrent callers share one probe; each waits only as long as its
// own ctx allows. No lock is held during the probe.
func (g *gateway) upstreamUp(ctx context.Context) bool {
	g.mu.Lock()
	if !g.checked.IsZero() && g.now().Sub(g.checked) < healthTTL {
		up := g.up
		g.mu.Unlock()
		return up
	}
	ch := g.inflight
	if ch == nil {
		ch = make(chan struct{})
		g.inflight = ch
		go g.probe(ch)
	}
	g.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.up
}

// probe checks the upstream once (bounded by healthProbeTimeout) and records the result.
func (g *gateway) probe(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), healthProbeTimeout)
	defer cancel()
	err := g.check(ctx)
	g.mu.Lock()
	was, first := g.up, g.checked.IsZero()
	g.up, g.checked, g.inflight = err == nil, g.now(), nil
	g.mu.Unlock()
	close(done)
	switch {
	case err != nil && (was || first):
		g.logger.Warn("callee: upstream is down", "error", err.Error())
	case err == nil && (!was || first):
		g.logger.Info("callee: upstream is up")
	}
}

func (g *gateway) check(ctx context.Context) error {
	u := g.cfg.Upstream
	if g.cfg.HealthPath == "" {
		addr := u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	target := *u
	target.Path = strings.TrimSuffix(u.Path, "/") + g.cfg.HealthPath
	target.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "f2fauth-callee-health")
	resp, err := g.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	_, _ = netrule.ReadAll(resp.Body, 64<<10)
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("health probe answered %d", resp.StatusCode)
	}
	return nil
}

// markDown records a failed forward so the health endpoint reports it without
// waiting for the next probe.
func (g *gateway) markDown() {
	g.mu.Lock()
	g.up, g.checked = false, g.now()
	g.mu.Unlock()
}

func (g *gateway) close() { g.transport.CloseIdleConnections() }
