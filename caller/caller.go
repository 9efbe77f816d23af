package caller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/f2fauth/f2fauth/internal/netrule"
	"github.com/f2fauth/f2fauth/internal/retry"
	"github.com/f2fauth/f2fauth/tokencache"
)

// retryBackoff paces retries after 429/5xx answers and transport errors: exponential
// from 250 ms, capped at 10 s, with jitter; a server's Retry-After is honoured when it
// asks for longer. A retry that would not fit in the run's remaining time is not
// attempted.
var retryBackoff = retry.Backoff{Initial: 250 * time.Millisecond, Max: 10 * time.Second}

// Bounds on what the caller takes from the callee's answer.
const (
	// maxBodyBytes bounds the callee's answer; a longer one fails the run.
	maxBodyBytes = 64 << 10
	// maxHeaderBytes bounds the callee's response headers (Go's default is
	// 10 MB per response); larger ones fail the attempt.
	maxHeaderBytes = 64 << 10
	// maxFieldBytes bounds each callee-reported field (appId, objectId, a role…).
	maxFieldBytes = 128
	// maxRoles bounds how many roles of the callee's answer are kept.
	maxRoles = 16
	// maxReasonBytes bounds Report.Reason.
	maxReasonBytes = 400
)

// Options adjusts a [Caller]. A nil *Options means defaults.
type Options struct {
	// Credential overrides the credential built from Config.Credential and
	// Config.ClientID with tokencache.NewCredential (tests, other hosts).
	Credential azcore.TokenCredential
	// Transport is the base transport under tokencache's bearer transport; default a
	// clone of http.DefaultTransport that reads at most 64 KiB of response headers.
	Transport http.RoundTripper
	// Logger receives one record per invocation and the token cache's refresh events
	// (never tokens: every record passes through the caller's redaction first).
	// Default: discard.
	Logger *slog.Logger
	// Cache tunes the token cache; nil means tokencache defaults.
	Cache *tokencache.Options
	// MeterProvider receives the token cache's metrics (unless Cache names
	// one); default otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// TracerProvider makes the timer run's span and the callee requests'
	// spans (and the token cache's, unless Cache names one); default
	// otel.GetTracerProvider(). When it makes no span IDs (no SDK installed), a
	// private SDK provider without exporter does, so every request to the
	// callee carries a valid W3C traceparent.
	TracerProvider trace.TracerProvider
}

// Caller calls the callee with a cached managed-identity token. One Caller (and so one
// token cache) serves every invocation of the process. It is safe for concurrent use.
type Caller struct {
	cfg    Config
	scope  string
	cache  *tokencache.Cache
	client *http.Client
	logger *slog.Logger
	server serverLimits
	vault  *SecretReader // nil without CALLER_KEYVAULT_URL; reads through cache
	tel    *telemetry    // OpenTelemetry (telemetry.go)
}

// New validates cfg and returns a Caller. It builds the credential (unless opts gives
// one) but requests no token: the first invocation does.
func New(cfg Config, opts *Options) (*Caller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = slog.New(newRedactingHandler(o.Logger.Handler()))
	cred := o.Credential
	if cred == nil {
		if err := CheckIdentityEnv(os.Getenv); err != nil {
			return nil, err
		}
		var err error
		if cred, err = tokencache.NewCredential(cfg.Credential, cfg.ClientID); err != nil {
			return nil, fmt.Errorf("caller: %s=%q: %w", EnvCredential, cfg.Credential, err)
		}
	}
	var copts tokencache.Options
	if o.Cache != nil {
		copts = *o.Cache
	}
	o.withTelemetryDefaults(&copts) // OpenTelemetry (telemetry.go)
	if copts.Logger == nil {
		copts.Logger = o.Logger
	}
	cache, err := tokencache.New(cred, &copts)
	if err != nil {
		return nil, fmt.Errorf("caller: token cache: %w", err)
	}
	base := o.Transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxResponseHeaderBytes = maxHeaderBytes
		base = t
	}
	scope := cfg.Scope()
	vault, err := newVault(cfg, cache, base)
	if err != nil {
		cache.Close()
		return nil, err
	}
	tel := newTelemetry(o.TracerProvider) // OpenTelemetry (telemetry.go)
	return &Caller{
		vault:  vault,
		cfg:    cfg,
		scope:  scope,
		cache:  cache,
		server: defaultServerLimits(cfg.Timeout),
		client: &http.Client{
			// A backstop only: each run's context ends at cfg.Timeout first.
			Timeout: cfg.Timeout + time.Second,
			// netrule checks every hop (https, or http to loopback) under the bearer
			// transport, which checks it too. OpenTelemetry: outermost, a span and
			// the traceparent per request (telemetry.go).
			Transport: tel.transport(cache.Transport(scope, netrule.Transport(base))),
			// Never follow redirects: the bearer transport would send the token to
			// wherever the callee points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		logger: o.Logger,
		tel:    tel,
	}, nil
}

// Config returns the caller's configuration.
func (c *Caller) Config() Config { return c.cfg }

// Stats returns the token cache's counters (hits, misses, refreshes, failures).
func (c *Caller) Stats() tokencache.Stats { return c.cache.Stats() }

// Close stops the token cache's background work.
func (c *Caller) Close() error { return c.cache.Close() }

// Report is the outcome of one call to the callee; it is the invocation response's
// ReturnValue. It never holds a token.
type Report struct {
	// OK is true when the callee answered 2xx.
	OK bool `json:"ok"`
	// CalleeStatus is the callee's HTTP status, 0 when there was no answer.
	CalleeStatus int `json:"calleeStatus"`
	// Reason is the callee's problem reason (e.g. application_not_allowed), or why there
	// was no answer ("no token: …", "timeout: …", "transport: …").
	Reason string `json:"reason,omitempty"`
	// NoToken is true when no valid token could be had.
	NoToken bool `json:"noToken,omitempty"`
	// Timeout is true when the callee did not answer within Config.Timeout.
	Timeout bool `json:"timeout,omitempty"`
	// Cancelled is true when the run was cancelled before it ended (the handler is
	// shutting down, or the host went away).
	Cancelled bool `json:"cancelled,omitempty"`
	// Attempts is the number of requests sent to the callee.
	Attempts int `json:"attempts"`
	// PastDue echoes the timer's IsPastDue.
	PastDue bool `json:"pastDue,omitempty"`
	// AppID, ObjectID, TenantID and Roles are what the callee says it verified: the
	// callee's words, made single-line and printable, each at most 128 bytes, at most
	// 16 roles.
	AppID    string   `json:"appId,omitempty"`
	ObjectID string   `json:"objectId,omitempty"`
	TenantID string   `json:"tenantId,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	// KeyID is the kid of the key that signed the token, as the callee verified it.
	KeyID string `json:"keyId,omitempty"`
	// DurationMS is the invocation's duration in milliseconds.
	DurationMS int64 `json:"durationMs"`
	// KeyVault is the outcome of the run's secret read; nil without CALLER_KEYVAULT_URL.
	KeyVault *SecretReport `json:"keyVault,omitempty"`
}

// Summary is a one-line description of r for logs. Every part of it is bounded and
// single-line (Call sanitises what the callee sent).
func (r *Report) Summary() string {
	switch {
	case r.OK:
		return fmt.Sprintf("callee answered %d %s (appId=%s, roles=[%s])", r.CalleeStatus, http.StatusText(r.CalleeStatus), r.AppID, strings.Join(r.Roles, ","))
	case r.CalleeStatus != 0 && r.Reason != "":
		return fmt.Sprintf("callee answered %d %s: %s", r.CalleeStatus, http.StatusText(r.CalleeStatus), r.Reason)
	case r.CalleeStatus != 0:
		return fmt.Sprintf("callee answered %d %s", r.CalleeStatus, http.StatusText(r.CalleeStatus))
	default:
		return r.Reason
	}
}

// calleeBody is what the caller reads from the callee's answer: the CallerInfo fields
// of a success or the reason of a problem+json denial.
type calleeBody struct {
	AppID    string   `json:"appId"`
	ObjectID string   `json:"objectId"`
	TenantID string   `json:"tenantId"`
	Roles    []string `json:"roles"`
	KeyID    string   `json:"keyId"`
	Reason   string   `json:"reason"`
}

// errShuttingDown is the cause of a run's context when the handler shuts down.
var errShuttingDown = errors.New("the handler is shutting down")

// Call calls the callee once (plus bounded retries for 429/5xx and transport errors),
// bounded by ctx and Config.Timeout: nothing the callee or the identity endpoint
// sends holds it longer. It never returns without a Report.
func (c *Caller) Call(ctx context.Context, pastDue bool) *Report {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	rep := c.call(ctx, pastDue)
	rep.KeyVault = c.readSecret(ctx)
	rep.PastDue = pastDue
	rep.DurationMS = time.Since(start).Milliseconds()
	return rep
}

// interrupted reports whether ctx has ended, and if so marks rep as a timeout or a
// cancellation.
func (c *Caller) interrupted(ctx context.Context, rep *Report) bool {
	switch ctx.Err() {
	case nil:
		return false
	case context.DeadlineExceeded:
		rep.Timeout = true
		rep.Reason = "timeout: no complete answer from the callee within " + c.cfg.Timeout.String()
	default:
		rep.Cancelled = true
		if errors.Is(context.Cause(ctx), errShuttingDown) {
			rep.Reason = "cancelled: " + errShuttingDown.Error()
		} else {
			rep.Reason = "cancelled: the invocation ended before the run did"
		}
	}
	return true
}

func (c *Caller) call(ctx context.Context, pastDue bool) *Report {
	rep := &Report{}
	// Make sure a token can be had before calling: a failure here is "no token",
	// reported as such, not retried against the callee.
	if _, err := c.cache.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}}); err != nil {
		// Running out of time while waiting for the token is still "no token"; a
		// cancellation (shutdown) is reported as such.
		if ctx.Err() == context.Canceled && c.interrupted(ctx, rep) {
			return rep
		}
		rep.NoToken = true
		rep.Reason = "no token: " + condense(err)
		return rep
	}
	payload, _ := json.Marshal(map[string]any{"source": "f2fauth-caller", "pastDue": pastDue})
	for attempt := 0; ; attempt++ {
		rep.Attempts = attempt + 1
		rep.CalleeStatus, rep.Reason = 0, ""
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.CalleeURL.String(), bytes.NewReader(payload))
		if err != nil {
			rep.Reason = "request: " + condense(err)
			return rep
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := c.client.Do(req)
		var header http.Header
		if err != nil {
			switch {
			case isTokenError(err):
				rep.NoToken = true
				rep.Reason = "no token: " + condense(err)
				return rep
			case c.interrupted(ctx, rep):
				return rep
			case isTimeout(err):
				rep.Timeout = true
				rep.Reason = "timeout: no answer from the callee within " + c.cfg.Timeout.String()
				return rep
			default:
				rep.Reason = "transport: " + condense(err)
			}
		} else {
			rep.CalleeStatus = resp.StatusCode
			header = resp.Header
			final, retryable := c.readAnswer(ctx, resp, rep)
			if final || !retryable {
				return rep
			}
		}
		if attempt >= c.cfg.MaxRetries {
			return rep
		}
		delay := retryBackoff.After(attempt+1, rand.Float64(), header, time.Now())
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= delay {
			return rep // the retry would not fit in the invocation's time
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			if ctx.Err() != context.DeadlineExceeded {
				c.interrupted(ctx, rep)
			}
			return rep
		case <-t.C:
		}
	}
}

// readAnswer reads the callee's answer into rep and closes its body. final is true
// when the run is decided (a 2xx, or a failure not worth retrying); retryable is
// true for 429 and 5xx. The body is read within ctx: it is closed the moment ctx
// ends, so a callee that drips its body, or switches protocols and keeps the
// connection, cannot hold the run past its deadline.
func (c *Caller) readAnswer(ctx context.Context, resp *http.Response, rep *Report) (final, retryable bool) {
	stop := context.AfterFunc(ctx, func() { _ = resp.Body.Close() })
	defer func() {
		stop()
		_ = resp.Body.Close()
	}()
	if resp.StatusCode < 200 {
		// A 1xx is never a final answer; after a 101 the "body" is the raw
		// connection, so do not read it at all.
		rep.Reason = "the callee answered with an interim status, not a final answer"
		return true, false
	}
	data, err := netrule.ReadAll(resp.Body, maxBodyBytes)
	if err != nil {
		if c.interrupted(ctx, rep) {
			return true, false
		}
		if isTimeout(err) {
			rep.Timeout = true
			rep.Reason = "timeout: no complete answer from the callee within " + c.cfg.Timeout.String()
			return true, false
		}
		if errors.Is(err, netrule.ErrTooLarge) {
			rep.Reason = fmt.Sprintf("the callee's answer is larger than %d bytes", maxBodyBytes)
			return true, false
		}
		rep.Reason = "transport: reading the callee's answer: " + condense(err)
		return false, true
	}
	var body calleeBody
	_ = json.Unmarshal(data, &body)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		rep.OK = true
		rep.AppID, rep.ObjectID, rep.TenantID, rep.KeyID = field(body.AppID), field(body.ObjectID), field(body.TenantID), field(body.KeyID)
		rep.Roles = nil
		for _, r := range body.Roles {
			if len(rep.Roles) == maxRoles {
				rep.Roles = append(rep.Roles, "…")
				break
			}
			if r = field(r); r != "" {
				rep.Roles = append(rep.Roles, r)
			}
		}
		return true, false
	}
	rep.Reason = sanitizeReason(body.Reason)
	retryable = resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	return !retryable, retryable
}

// field makes a callee-reported value safe for Logs: redacted, printable, single
// line, at most maxFieldBytes.
func field(s string) string { return safeText(s, maxFieldBytes) }

// isTimeout reports whether err is a deadline or client timeout.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isTokenError reports whether err came from the token cache: no usable token, or a
// request it would not send the token with.
func isTokenError(err error) bool {
	return errors.Is(err, tokencache.ErrNoToken) || errors.Is(err, tokencache.ErrInsecureTransport)
}

// sanitizeReason keeps a problem reason code only if it looks like one (the callee's
// body is not trusted to be well-formed).
func sanitizeReason(s string) string {
	if len(s) > 64 {
		return ""
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			return ""
		}
	}
	return s
}

// condense turns an error (azidentity's are multi-line) into one short, printable
// line with every secret redacted (see redactText) — before it is cut, so no part of a
// secret survives the cut.
func condense(err error) string {
	fields := strings.Fields(redactText(err.Error()))
	kept := fields[:0]
	for _, f := range fields {
		if len(f) >= 3 && strings.Trim(f, "-=") == "" {
			continue // azidentity's separator lines
		}
		kept = append(kept, f)
	}
	return oneLine(strings.Join(kept, " "), maxReasonBytes)
}
