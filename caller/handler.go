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

// DefaultShutdownTimeout bounds how long in-flight invocations may take to finish after
// SIGTERM/SIGINT.
const DefaultShutdownTimeout = 10 * time.Second

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
	id := r.Header.Get(InvocationIDHeader)
	if len(id) > 64 {
		id = id[:64]
	}
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
		c.logger.Warn("caller: malformed invocation", "invocation_id", id, "error", err.Error())
		writeJSON(w, http.StatusBadRequest, InvocationResponse{Outputs: map[string]any{}, Logs: []string{err.Error()}})
		return
	}
	var logs []string
	if inv.Timer.IsPastDue {
		logs = append(logs, "timer is past due; running anyway")
	}
	rep := c.Call(r.Context(), inv.Timer.IsPastDue)

	status := http.StatusOK
	level := slog.LevelInfo
	if !rep.OK {
		status, level = http.StatusBadGateway, slog.LevelError
		if rep.Timeout {
			status = http.StatusGatewayTimeout
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

// Serve serves c.Handler() on ln until ctx is done, then shuts down gracefully (in-flight
// invocations finish, for at most DefaultShutdownTimeout). It returns nil after a clean
// shutdown.
func (c *Caller) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           c.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(c.logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	c.logger.Info("caller: listening", "addr", ln.Addr().String(), "callee_url", c.cfg.CalleeURL.String(), "scope", c.scope, "credential", string(c.cfg.Credential))
	select {
	case err := <-errc:
		return fmt.Errorf("caller: serve: %w", err)
	case <-ctx.Done():
	}
	c.logger.Info("caller: shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("caller: shutdown: %w", err)
	}
	return nil
}

// Run is the caller's whole program: it reads the configuration with getenv (every
// problem reported together, naming the variables), builds the Caller (one token cache
// for the process), listens on 127.0.0.1 and FUNCTIONS_CUSTOMHANDLER_PORT (the Functions
// host dials 127.0.0.1) and serves until ctx is cancelled or SIGTERM/SIGINT arrives.
// logger nil means a JSON logger on stderr.
func Run(ctx context.Context, getenv func(string) string, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	tel, err := otelsetup.Setup(ctx, getenv, otelsetup.Options{ServiceName: "f2fauth-caller", AlwaysTrace: true}) // OpenTelemetry
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
