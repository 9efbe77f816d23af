package callee

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/authmw/echomw"
	"github.com/f2fauth/f2fauth/internal/customhandler"
	"github.com/f2fauth/f2fauth/internal/otelsetup"
)

// Routes the callee serves. ReadyPath is the Functions host's readiness probe and is
// always served without a token; the others are the public function routes as the host
// forwards them (enableForwardingHttpRequest keeps the /api route prefix).
const (
	ReadyPath     = "/"
	FunctionPath  = "/api/ExclusiveFunction"
	HealthzPath   = "/api/healthz"
	listenHost    = "127.0.0.1"
	maxHeaderSize = 64 << 10
)

// DefaultShutdownTimeout bounds how long in-flight requests may take to finish after
// SIGTERM/SIGINT (or cancellation of Serve's context).
const DefaultShutdownTimeout = 10 * time.Second

// ErrConfig is wrapped by every configuration error of the callee's own settings
// (CALLEE_LOG_LEVEL, FUNCTIONS_CUSTOMHANDLER_PORT, PORT). authmw's errors name the
// AUTHMW_* variables themselves.
var ErrConfig = errors.New("callee: invalid configuration")

// CallerInfo is the JSON body of a successful ExclusiveFunction call: who called, read
// from the verified token (never from request headers).
type CallerInfo struct {
	Message   string    `json:"message"`
	AppID     string    `json:"appId"`
	ObjectID  string    `json:"objectId"`
	TenantID  string    `json:"tenantId"`
	Roles     []string  `json:"roles"`
	Subject   string    `json:"subject"`
	AppOnly   bool      `json:"appOnly"`
	Issuer    string    `json:"issuer"`
	KeyID     string    `json:"keyId"`
	Version   string    `json:"version,omitempty"`
	ExpiresAt time.Time `json:"expiresAt"`
	Method    string    `json:"method"`
}

// Server is the callee: an echo server whose every route except the readiness probe is
// protected by authmw or, in gateway mode (CALLEE_UPSTREAM_URL set), a reverse proxy
// that forwards every request authmw allows to the upstream application. Create it
// with [NewServer], run it with [Server.Serve] and release it with [Server.Close].
type Server struct {
	e        *echo.Echo
	handler  http.Handler // e, or the gateway's handler
	gw       *gateway     // nil unless in gateway mode
	mw       *authmw.Middleware
	logger   *slog.Logger
	addr     string
	shutdown time.Duration
	bodies   *callerBodies // rendered CallerInfo of recent callers

	closeOnce sync.Once
}

// NewServer reads the callee's configuration with lookup (nil: os.LookupEnv, the
// process environment), which reports whether a variable is set — the AUTHMW_* variables of
// package authmw, FUNCTIONS_CUSTOMHANDLER_PORT / PORT, CALLEE_LOG_LEVEL and the
// gateway settings (CALLEE_UPSTREAM_URL and the others in [GatewaySettings]) — and
// builds the server. Every configuration problem is reported together, each naming its
// variable. It does not block on the network (authmw loads the issuer's keys in the
// background; see [Server.WaitReady]). logger nil means a JSON logger on stderr at the
// level of CALLEE_LOG_LEVEL.
func NewServer(ctx context.Context, lookup func(string) (string, bool), logger *slog.Logger) (*Server, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	// The callee's own settings treat "" as unset; authmw tells them apart (an
	// allow-list set to "" accepts nobody).
	getenv := func(name string) string { v, _ := lookup(name); return v }
	var errs []error
	level, err := LogLevel(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	addr, err := ListenAddr(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	gwCfg, err := GatewayConfigFromEnv(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	if logger == nil {
		logger = NewLogger(os.Stderr, level)
	}
	logger = otelsetup.WithTraceIDs(logger) // OpenTelemetry: trace_id/span_id on records made with a request's context
	// Every setting is checked before anything starts: a configuration error is
	// reported alone, never after background discovery has begun.
	cfg, err := authmw.ConfigFromEnv(lookup)
	if err == nil {
		// The gateway hands the upstream the verified identity as Easy Auth does.
		cfg.Policy.EasyAuthHeaders = cfg.Policy.EasyAuthHeaders || gwCfg != nil
	}
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, newConfigError(errs)
	}
	cfg.Logger = logger
	mw, err := authmw.New(ctx, cfg)
	if err != nil {
		return nil, newConfigError([]error{err})
	}
	s := newServer(mw, logger, addr)
	if gwCfg != nil {
		s.gw = newGateway(*gwCfg, logger)
		s.handler = s.gw.handler(mw)
		// Streams (uploads, server-sent events, WebSockets) may last as long as the
		// application wants; headers must still arrive within ReadHeaderTimeout.
		s.e.Server.ReadTimeout, s.e.Server.WriteTimeout = 0, 0
		logger.Info("callee: gateway mode", "upstream", gwCfg.Upstream.Redacted(), "timeout", gwCfg.Timeout.String(),
			"pass_authorization", gwCfg.PassAuthorization, "trust_forwarded_headers", gwCfg.TrustForwarded)
	}
	s.handler = traceServer(s.handler) // OpenTelemetry (telemetry.go): continue the caller's trace
	return s, nil
}

func newServer(mw *authmw.Middleware, logger *slog.Logger, addr string) *Server {
	s := &Server{mw: mw, logger: logger, addr: addr, shutdown: DefaultShutdownTimeout, bodies: newCallerBodies()}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(io.Discard)
	e.StdLogger = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	e.HTTPErrorHandler = s.errorHandler
	e.Server.ReadHeaderTimeout = 10 * time.Second
	e.Server.ReadTimeout = 30 * time.Second
	e.Server.WriteTimeout = 60 * time.Second
	e.Server.IdleTimeout = 2 * time.Minute
	e.Server.MaxHeaderBytes = maxHeaderSize

	// authmw guards everything, including unknown paths (the health endpoint too,
	// unless AUTHMW_EXCLUDED_PATHS lists it); only the host's readiness probe
	// bypasses it, whatever AUTHMW_EXCLUDED_PATHS says.
	e.Use(bypassReadiness(echomw.Middleware(mw)))
	e.GET(ReadyPath, s.ready)
	e.HEAD(ReadyPath, s.ready)
	e.GET(FunctionPath, s.exclusive)
	e.POST(FunctionPath, s.exclusive)
	e.GET(HealthzPath, s.healthz)
	s.e = e
	s.handler = e
	return s
}

// bypassReadiness runs auth for every request except GET/HEAD of the readiness path.
func bypassReadiness(auth echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		protected := auth(next)
		return func(c echo.Context) error {
			r := c.Request()
			if r.URL.Path == ReadyPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
				return next(c)
			}
			return protected(c)
		}
	}
}

// Handler returns the server's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Addr returns the address [Server.ListenAndServe] listens on: 127.0.0.1 and the port
// from FUNCTIONS_CUSTOMHANDLER_PORT, else PORT, else 8080.
func (s *Server) Addr() string { return s.addr }

// WaitReady blocks until authmw has loaded the issuer's signing keys (until then
// protected routes answer 503) or ctx ends.
func (s *Server) WaitReady(ctx context.Context) error { return s.mw.WaitReady(ctx) }

// ListenAndServe listens on [Server.Addr] and calls [Server.Serve].
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("callee: listen on %s: %w", s.addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then shuts down gracefully: it stops accepting
// connections and lets in-flight requests finish, for at most DefaultShutdownTimeout.
// It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := s.e.Server
	srv.Handler = s.handler
	srv.ErrorLog = s.e.StdLogger
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.logger.Info("callee: listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("callee: serve: %w", err)
	case <-ctx.Done():
	}
	// After a failed start the StartupError is the one message; the shutdown is routine.
	level := slog.LevelInfo
	if _, failed := errors.AsType[*StartupError](context.Cause(ctx)); failed {
		level = slog.LevelDebug
	}
	s.logger.Log(ctx, level, "callee: shutting down", "timeout_ms", s.shutdown.Milliseconds())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdown)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close() // cut streams still open after the grace period
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("callee: shutdown: %w", err)
	}
	s.logger.Log(ctx, level, "callee: stopped")
	return nil
}

// Close releases the authmw middleware's background work. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mw.Close()
		if s.gw != nil {
			s.gw.close()
		}
	})
	return nil
}

// Run is the callee's whole program: it builds the server from lookup (nil:
// os.LookupEnv; see [NewServer]), listens on
// 127.0.0.1 (the Functions host dials 127.0.0.1) and serves until ctx is cancelled or
// the process receives SIGTERM or SIGINT, then shuts down gracefully. A configuration
// error ([*ConfigError]) is returned before anything listens. A permanent failure of
// an issuer before its keys load (unknown tenant, issuer mismatch, no usable key) stops
// the server and is returned as a [*StartupError]; transient ones are waited out.
// main prints the error and exits non-zero.
func Run(ctx context.Context, lookup func(string) (string, bool), logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	tel, err := otelsetup.Setup(ctx, lookup, otelsetup.Options{ServiceName: "f2fauth-callee"}) // OpenTelemetry
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // best effort flush at exit
	s, err := NewServer(ctx, lookup, logger)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		if err := s.WaitStarted(ctx); err != nil && ctx.Err() == nil {
			cancel(err)
		}
	}()
	err = s.ListenAndServe(ctx)
	if se, ok := errors.AsType[*StartupError](context.Cause(ctx)); ok {
		return se
	}
	return err
}

func (s *Server) ready(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// problemTypeURI is the "type" of authmw's problem+json bodies, which the
// exclusive function's own 401 imitates (TestAnonymousFunctionAnswersLikeAuthmw).
const problemTypeURI = "https://github.com/f2fauth/f2fauth/blob/main/README.md#reason-codes"

// exclusive answers with the verified caller. Without a Principal (AllowAnonymous
// configured) it fails closed with 401: the function is for authenticated callers only.
func (s *Server) exclusive(c echo.Context) error {
	p, ok := authmw.PrincipalFrom(c.Request().Context())
	if !ok {
		h := c.Response().Header()
		h.Set("WWW-Authenticate", `Bearer realm="`+safeRealm(c.Request().Host)+`"`)
		h.Set("Cache-Control", "no-store")
		return c.Blob(http.StatusUnauthorized, "application/problem+json",
			[]byte(`{"type":"`+problemTypeURI+`","title":"Unauthorized","status":401,"detail":"The request has no bearer token in the Authorization header.","reason":"missing_token"}`))
	}
	roles := p.Roles
	if roles == nil {
		roles = []string{}
	}
	// authmw's audit record already names the caller (AUTHMW_AUDIT_ALLOWED); a second
	// line on every request would cost more than the verification.
	if ctx := c.Request().Context(); s.logger.Enabled(ctx, slog.LevelDebug) {
		s.logger.DebugContext(ctx, "callee: exclusive function called", "appid", p.AppID, "oid", p.ObjectID, "tid", p.TenantID, "kid", p.KeyID)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return s.bodies.write(c, p, &CallerInfo{
		Message:   "Hello from the callee: you are an authorized caller.",
		AppID:     p.AppID,
		ObjectID:  p.ObjectID,
		TenantID:  p.TenantID,
		Roles:     roles,
		Subject:   p.Subject,
		AppOnly:   p.AppOnly,
		Issuer:    p.Issuer,
		KeyID:     p.KeyID,
		Version:   p.Version,
		ExpiresAt: p.ExpiresAt.UTC(),
		Method:    c.Request().Method,
	})
}

// errorHandler writes echo's errors as problem+json, leaving responses authmw already
// wrote alone.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status := http.StatusInternalServerError
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
	}
	if status >= 500 {
		s.logger.Error("callee: request failed", "status", status, "method", c.Request().Method, "path", c.Request().URL.Path, "error", err.Error())
	}
	body := fmt.Sprintf(`{"title":%q,"status":%d}`, http.StatusText(status), status)
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.Blob(status, "application/problem+json", []byte(body))
}

func safeRealm(host string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, host)
}

// ListenAddr returns <host>:<port>: the host from CALLEE_LISTEN_HOST (default 127.0.0.1,
// where the Functions host dials; set 0.0.0.0 on a container platform), the port from
// FUNCTIONS_CUSTOMHANDLER_PORT, else PORT, else DefaultPort. A value that is not an IP
// address (or "localhost") or not a port number (0–65535) is an error naming the variable.
func ListenAddr(getenv func(string) string) (string, error) {
	host := listenHost
	if v := strings.TrimSpace(getenv(EnvListenHost)); v != "" {
		if v != "localhost" && net.ParseIP(v) == nil {
			return "", fmt.Errorf("%w: %s must be an IP address such as 127.0.0.1 or 0.0.0.0, got %q", ErrConfig, EnvListenHost, v)
		}
		host = v
	}
	port, err := customhandler.Port(getenv)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// LogLevel parses CALLEE_LOG_LEVEL: debug, info (default), warn or error.
func LogLevel(getenv func(string) string) (slog.Level, error) {
	switch v := strings.ToLower(strings.TrimSpace(getenv(EnvLogLevel))); v {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return slog.LevelInfo, fmt.Errorf("%w: %s must be debug, info, warn or error, got %q", ErrConfig, EnvLogLevel, v)
	}
}

// NewLogger returns the structured JSON logger the callee uses when none is given.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}
