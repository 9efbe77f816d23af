package callee

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/f2fauth/f2fauth/authmw"
)

// startupPoll is how often [Server.WaitStarted] looks at authmw's readiness.
const startupPoll = 100 * time.Millisecond

// healthRetryAfter is the Retry-After of a 503 from the health endpoint, in seconds.
const healthRetryAfter = "5"

// ConfigError lists every problem of the callee's settings found at start,
// each naming its app setting. It wraps [ErrConfig] and the problems' errors
// (authmw's wrap authmw.ErrInvalidPolicy).
type ConfigError struct {
	// Problems are the problems' texts, without any "…: invalid configuration: " prefix.
	Problems []string
	errs     []error
}

// Error reads "callee: invalid configuration: <problem>; <problem>; …" (one line).
func (e *ConfigError) Error() string {
	return ErrConfig.Error() + ": " + strings.Join(e.Problems, "; ")
}

// Unwrap returns ErrConfig and the underlying errors.
func (e *ConfigError) Unwrap() []error { return append([]error{ErrConfig}, e.errs...) }

// newConfigError flattens errs (the callee's own, wrapping ErrConfig, and
// authmw's, joined under one prefix) into one ConfigError with one prefix.
func newConfigError(errs []error) *ConfigError {
	ce := &ConfigError{errs: errs}
	var add func(err error)
	add = func(err error) {
		msg := err.Error()
		if rest, ok := strings.CutPrefix(msg, "authmw: invalid configuration: "); ok {
			// authmw joins its problems under one prefix: take them one by one.
			if j, ok := errors.Unwrap(err).(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() {
					add(e)
				}
				return
			}
			msg = rest
		} else if rest, ok := strings.CutPrefix(msg, ErrConfig.Error()+": "); ok {
			msg = rest
		} else if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				add(e)
			}
			return
		}
		ce.Problems = append(ce.Problems, strings.ReplaceAll(msg, "\n", "; "))
	}
	for _, err := range errs {
		add(err)
	}
	return ce
}

// StartupError is a failure at start that waiting will not fix: an issuer
// setting is wrong (authmw reported a permanent failure before any key was
// loaded). [Run] returns it and the program exits non-zero, so the platform
// shows a failed start instead of an app that refuses every caller.
type StartupError struct {
	// Source is authmw's explanation: the setting, what was answered, what to check.
	Source *authmw.SourceError
}

// Error reads "callee: cannot start: AUTHMW_TENANT_ID: GET …: permanent failure:
// HTTP status 400: "…": check that …" and names the app setting only.
func (e *StartupError) Error() string {
	return "callee: cannot start: " + e.Source.Setting + ": " + e.Source.Err.Error() + ": check " + e.Source.Check
}

// Unwrap returns the source error (which wraps authmw.ErrSourcePermanent).
func (e *StartupError) Unwrap() error { return e.Source }

// WaitStarted waits until authmw has loaded every issuer's keys (nil), or
// reports a permanent issuer failure (a [*StartupError]), or ctx ends
// (ctx's error). Transient failures (no connection, timeouts, 5xx, 429) are
// waited out: meanwhile protected routes answer 503 with Retry-After.
func (s *Server) WaitStarted(ctx context.Context) error {
	t := time.NewTicker(startupPoll)
	defer t.Stop()
	for {
		err := s.mw.ReadinessError()
		if err == nil {
			return nil
		}
		if re, ok := errors.AsType[*authmw.ReadinessError](err); ok {
			if p := re.Permanent(); p != nil {
				return &StartupError{Source: p}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// healthBody is the JSON of the health endpoint: "ok", "unavailable" (keys not
// loaded) or "degraded" (gateway mode: the upstream does not answer), authmw's
// state (per issuer: keys loaded, how many, last successful refresh, failure
// class; the policy version) and, in gateway mode, the upstream's. It holds no
// secret.
type healthBody struct {
	Status string `json:"status"`
	authmw.Health
	Upstream *UpstreamHealth `json:"upstream,omitempty"`
}

// healthOf is the health endpoint's status code and body; up is nil outside
// gateway mode.
func healthOf(h authmw.Health, up *UpstreamHealth) (int, healthBody) {
	switch {
	case !h.Ready:
		return http.StatusServiceUnavailable, healthBody{Status: "unavailable", Health: h, Upstream: up}
	case up != nil && up.Status != "up":
		return http.StatusServiceUnavailable, healthBody{Status: "degraded", Health: h, Upstream: up}
	}
	return http.StatusOK, healthBody{Status: "ok", Health: h, Upstream: up}
}

// healthz answers the health endpoint ([HealthzPath]): 200 when every
// issuer's keys are loaded, else 503 with Retry-After. It does no I/O.
func (s *Server) healthz(c echo.Context) error {
	status, body := healthOf(s.mw.Health(), nil)
	hdr := c.Response().Header()
	hdr.Set("Cache-Control", "no-store")
	if status != http.StatusOK {
		hdr.Set("Retry-After", healthRetryAfter)
	}
	return c.JSON(status, body)
}
