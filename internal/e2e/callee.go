package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/f2fauth/f2fauth/callee"
	"github.com/f2fauth/f2fauth/internal/localidp"
)

// CalleeSettings returns the callee's AUTHMW_* settings for trusting platform p: tokens
// for audience, from one of allowedApps, carrying role. /api/healthz is excluded.
func CalleeSettings(p *localidp.Platform, audience, role string, allowedApps ...string) map[string]string {
	return map[string]string{
		"AUTHMW_TENANT_ID":            p.TenantID(),
		"AUTHMW_AUTHORITY_HOST":       p.AuthorityURL(),
		"AUTHMW_AUDIENCES":            audience,
		"AUTHMW_ALLOWED_APPLICATIONS": strings.Join(allowedApps, ","),
		"AUTHMW_REQUIRED_ROLES":       role,
		"AUTHMW_EXCLUDED_PATHS":       callee.HealthzPath,
	}
}

// Callee is the callee running in this process on 127.0.0.1.
type Callee struct {
	// URL is the ExclusiveFunction URL, http://127.0.0.1:PORT/api/ExclusiveFunction.
	URL string
	// BaseURL is http://127.0.0.1:PORT.
	BaseURL string
	srv     *callee.Server
	cancel  context.CancelFunc
	done    chan error
}

// StartCallee builds the callee from settings (as it would read them from its
// environment), serves it on a free loopback port and waits until authmw has loaded
// the issuer's keys.
func StartCallee(ctx context.Context, settings map[string]string, logger *slog.Logger) (*Callee, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	lookup := func(k string) (string, bool) { v, ok := settings[k]; return v, ok }
	srv, err := callee.NewServer(ctx, lookup, logger)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("e2e: callee listen: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Callee{
		BaseURL: "http://" + ln.Addr().String(),
		srv:     srv,
		cancel:  cancel,
		done:    make(chan error, 1),
	}
	c.URL = c.BaseURL + callee.FunctionPath
	go func() { c.done <- srv.Serve(sctx, ln) }()
	if err := srv.WaitReady(ctx); err != nil {
		c.Stop()
		return nil, fmt.Errorf("e2e: callee keys not loaded: %w", err)
	}
	return c, nil
}

// Stop shuts the callee down gracefully and returns Serve's error.
func (c *Callee) Stop() error {
	c.cancel()
	err := <-c.done
	c.srv.Close()
	c.done <- err // idempotent for a second Stop
	return err
}
