package caller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/f2fauth/f2fauth/internal/otelsetup"
)

// Limits of the invocation listener. The Functions host posts a small JSON body over
// loopback at once; anything slower is not the host and is cut off.
const (
	// DefaultReadHeaderTimeout bounds reading an invocation's headers.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds reading a whole invocation request, body included.
	DefaultReadTimeout = 10 * time.Second
	// DefaultIdleTimeout bounds how long an idle keep-alive connection stays open.
	DefaultIdleTimeout = 2 * time.Minute
	// MaxInvocationHeaderBytes bounds an invocation's headers.
	MaxInvocationHeaderBytes = 64 << 10
	// ShutdownGrace is how much longer than Config.Timeout a shutdown waits for
	// in-flight runs to answer.
	ShutdownGrace = 5 * time.Second
)

// serverLimits are the listener's bounds; tests shorten them.
type serverLimits struct {
	readHeader, read, write, idle, shutdown time.Duration
}

// defaultServerLimits derives the limits from the run timeout: a response is written
// within the run's time plus ShutdownGrace, and shutdown waits at least as long as a
// run may take.
func defaultServerLimits(runTimeout time.Duration) serverLimits {
	return serverLimits{
		readHeader: DefaultReadHeaderTimeout,
		read:       DefaultReadTimeout,
		write:      DefaultReadTimeout + runTimeout + ShutdownGrace,
		idle:       DefaultIdleTimeout,
		shutdown:   runTimeout + ShutdownGrace,
	}
}

// InvocationIDHeader carries the host's invocation ID.
const InvocationIDHeader = "X-Azure-Functions-InvocationId"

// Handler returns the custom handler's HTTP interface:
//
//   - GET / — the host's readiness probe: 200.
//   - POST /AutoTriggerFunction — a timer invocation: calls the callee and answers the
//     invocation response (Outputs, Logs, ReturnValue). 200 when the callee answered
//     2xx; 502 (504 on timeout) with the reason in Logs otherwise, so the host records
//     a failed run; 400 for a malformed payload. Past-due runs still run.
func (c *Caller) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "function": FunctionName})
	})
	mux.HandleFunc("POST /"+FunctionName, c.tel.traceInvocation(c.serveInvocation)) // OpenTelemetry: the run is a span
	return mux
}

func (c *Caller) serveInvocation(w http.ResponseWriter, r *http.Request) {
	id := safeText(r.Header.Get(InvocationIDHeader), 64)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxInvocationBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		status, msg := http.StatusBadRequest, "could not read the invocation payload"
		if errors.As(err, &mbe) {
			status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("invocation payload larger than %d bytes", MaxInvocationBytes)
		}
		c.logger.Warn("caller: bad invocation", "invocation_id", id, "error", msg)
		writeJSON(w, status, InvocationResponse{Outputs: map[string]any{}, Logs: []string{msg}})
		return
	}
	inv, err := ParseInvocation(body)
	if err != nil {
		msg := condense(err)
		c.logger.Warn("caller: malformed invocation", "invocation_id", id, "error", msg)
		writeJSON(w, http.StatusBadRequest, InvocationResponse{Outputs: map[string]any{}, Logs: []string{msg}})
		return
	}
	var logs []string
	if inv.Timer.IsPastDue {
		logs = append(logs, "timer is past due; running anyway")
	}
	rep := c.Call(r.Context(), inv.Timer.IsPastDue)

	status := http.StatusOK
	level := slog.LevelInfo
	if rep.KeyVault != nil {
		logs = append(logs, rep.KeyVault.Summary())
		if !rep.KeyVault.OK && rep.OK {
			status, level = http.StatusBadGateway, slog.LevelError // the secret is part of the run
		}
	}
	if !rep.OK {
		status, level = http.StatusBadGateway, slog.LevelError
		switch {
		case rep.Timeout:
			status = http.StatusGatewayTimeout
		case rep.Cancelled:
			status = http.StatusServiceUnavailable
		}
		logs = append(logs, "run failed: "+rep.Summary())
	} else {
		logs = append(logs, rep.Summary())
	}
	c.logger.Log(r.Context(), level, "caller: invocation finished",
		"invocation_id", id, "past_due", inv.Timer.IsPastDue, "ok", rep.OK, "callee_status", rep.CalleeStatus,
		"reason", rep.Reason, "attempts", rep.Attempts, "appid", rep.AppID, "oid", rep.ObjectID, "duration_ms", rep.DurationMS)
	writeJSON(w, status, InvocationResponse{Outputs: map[string]any{}, Logs: logs, ReturnValue: rep})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Serve serves c.Handler() on ln until ctx is done, then shuts down: it stops
// accepting, cancels the runs in flight — each still answers its invocation, as a
// failed run (503) whose reason says the handler is shutting down — and waits for
// those answers for at most Config.Timeout + ShutdownGrace (as long as a run may
// take). The listener bounds slow clients: DefaultReadHeaderTimeout for headers,
// DefaultReadTimeout for the whole request, MaxInvocationBytes for the body. It
// returns nil after a clean shutdown.
func (c *Caller) Serve(ctx context.Context, ln net.Listener) error {
	runs, cancelRuns := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelRuns(nil)
	srv := &http.Server{
		Handler:           c.Handler(),
		ReadHeaderTimeout: c.server.readHeader,
		ReadTimeout:       c.server.read,
		WriteTimeout:      c.server.write,
		IdleTimeout:       c.server.idle,
		MaxHeaderBytes:    MaxInvocationHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return runs },
		ErrorLog:          slog.NewLogLogger(c.logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	c.logger.Info("caller: listening; each run asks for a token for scope "+c.scope,
		"addr", ln.Addr().String(), "callee_url", safeURL(c.cfg.CalleeURL), "scope", c.scope,
		"credential", string(c.cfg.Credential), "timeout", c.cfg.Timeout.String())
	select {
	case err := <-errc:
		return fmt.Errorf("caller: serve: %w", err)
	case <-ctx.Done():
	}
	c.logger.Info("caller: shutting down; cancelling runs in flight", "wait", c.server.shutdown.String())
	cancelRuns(errShuttingDown)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.server.shutdown)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("caller: shutdown: in-flight runs did not answer within %s: %w", c.server.shutdown, err)
	}
	return nil
}

// Run is the caller's whole program: it reads the configuration with getenv (every
// problem reported together, naming the variables), builds the Caller (one token cache
// for the process), listens on 127.0.0.1 and FUNCTIONS_CUSTOMHANDLER_PORT (the Functions
// host dials 127.0.0.1) and serves until ctx is cancelled or SIGTERM/SIGINT arrives.
// logger nil means a JSON logger on stderr. The error it returns is redacted.
func Run(ctx context.Context, getenv func(string) string, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := runProgram(ctx, getenv, logger)
	return redactErr(err)
}

func runProgram(ctx context.Context, getenv func(string) string, logger *slog.Logger) error {
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	tel, err := otelsetup.Setup(ctx, otelsetup.Getenv(getenv), otelsetup.Options{ServiceName: "f2fauth-caller", AlwaysTrace: true}) // OpenTelemetry
	if err != nil {
		return fmt.Errorf("caller: %w", err)
	}
	defer tel.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // best effort flush at exit
	if logger == nil {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	c, err := New(cfg, &Options{Logger: logger})
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("caller: listen on %s: %w", cfg.Addr, err)
	}
	return c.Serve(ctx, ln)
}
