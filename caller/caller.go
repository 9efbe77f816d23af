package caller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/f2fauth/f2fauth/tokencache"
)

// Retry pacing for 429/5xx answers: exponential from initialRetryDelay, capped at
// maxRetryDelay; a server's Retry-After wins but is capped at maxRetryDelay too. A
// retry that would not fit in the invocation's remaining time is not attempted.
const (
	initialRetryDelay = 250 * time.Millisecond
	maxRetryDelay     = 10 * time.Second
	maxBodyBytes      = 64 << 10
)

// Options adjusts a [Caller]. A nil *Options means defaults.
type Options struct {
	// Credential overrides the credential built from Config.Credential and
	// Config.ClientID with tokencache.NewCredential (tests, other hosts).
	Credential azcore.TokenCredential
	// Transport is the base transport under tokencache's bearer transport; default a
	// clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Logger receives one record per invocation and the token cache's refresh events
	// (never tokens). Default: discard.
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
	tel    *telemetry // OpenTelemetry (telemetry.go)
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
	cred := o.Credential
	if cred == nil {
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
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	scope := cfg.Scope()
	tel := newTelemetry(o.TracerProvider) // OpenTelemetry (telemetry.go)
	return &Caller{
		cfg:   cfg,
		scope: scope,
		cache: cache,
		client: &http.Client{
			Timeout:   cfg.Timeout,
			Transport: tel.transport(cache.Transport(scope, base)), // OpenTelemetry: span + traceparent
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
	// Attempts is the number of requests sent to the callee.
	Attempts int `json:"attempts"`
	// PastDue echoes the timer's IsPastDue.
	PastDue bool `json:"pastDue,omitempty"`
	// AppID, ObjectID, TenantID and Roles are what the callee says it verified.
	AppID    string   `json:"appId,omitempty"`
	ObjectID string   `json:"objectId,omitempty"`
	TenantID string   `json:"tenantId,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	// KeyID is the kid of the key that signed the token, as the callee verified it.
	KeyID string `json:"keyId,omitempty"`
	// DurationMS is the invocation's duration in milliseconds.
	DurationMS int64 `json:"durationMs"`
}

// Summary is a one-line description of r for logs.
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

// Call calls the callee once (plus bounded retries for 429/5xx and transport errors),
// bounded by ctx and Config.Timeout. It never returns without a Report.
func (c *Caller) Call(ctx context.Context, pastDue bool) *Report {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	rep := c.call(ctx, pastDue)
	rep.PastDue = pastDue
	rep.DurationMS = time.Since(start).Milliseconds()
	return rep
}

func (c *Caller) call(ctx context.Context, pastDue bool) *Report {
	rep := &Report{}
	// Make sure a token can be had before calling: a failure here is "no token",
	// reported as such, not retried against the callee.
	if _, err := c.cache.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}}); err != nil {
		rep.NoToken = true
		rep.Reason = "no token: " + condense(err)
		return rep
	}
	payload, _ := json.Marshal(map[string]any{"source": "f2fauth-caller", "pastDue": pastDue})
	for attempt := 0; ; attempt++ {
		rep.Attempts = attempt + 1
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.CalleeURL.String(), bytes.NewReader(payload))
		if err != nil {
			rep.Reason = "request: " + condense(err)
			return rep
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := c.client.Do(req)
		var retryAfter time.Duration
		if err != nil {
			rep.CalleeStatus = 0
			switch {
			case isTokenError(err):
				rep.NoToken = true
				rep.Reason = "no token: " + condense(err)
				return rep
			case ctx.Err() != nil || isTimeout(err):
				rep.Timeout = true
				rep.Reason = "timeout: no answer from the callee within " + c.cfg.Timeout.String()
				return rep
			default:
				rep.Reason = "transport: " + condense(err)
			}
		} else {
			rep.CalleeStatus = resp.StatusCode
			rep.Reason = ""
			var body calleeBody
			data, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
			resp.Body.Close()
			_ = json.Unmarshal(data, &body)
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				rep.OK = true
				rep.AppID, rep.ObjectID, rep.TenantID, rep.Roles, rep.KeyID = body.AppID, body.ObjectID, body.TenantID, body.Roles, body.KeyID
				return rep
			}
			rep.Reason = sanitizeReason(body.Reason)
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
				return rep
			}
			retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		if attempt >= c.cfg.MaxRetries {
			return rep
		}
		delay := backoff(attempt)
		if retryAfter > 0 {
			delay = min(retryAfter, maxRetryDelay)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= delay {
			return rep // the retry would not fit in the invocation's time
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return rep
		case <-t.C:
		}
	}
}

// backoff is the exponential delay before retry number attempt+1, with jitter.
func backoff(attempt int) time.Duration {
	d := initialRetryDelay << min(attempt, 10)
	d = min(d, maxRetryDelay)
	return time.Duration(float64(d) * (0.75 + 0.5*rand.Float64()))
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date; 0 when absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// isTimeout reports whether err is a deadline or client timeout.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isTokenError reports whether err came from the token cache (no usable token).
func isTokenError(err error) bool {
	for _, target := range []error{tokencache.ErrCredential, tokencache.ErrTimeout, tokencache.ErrTokenTooShortLived,
		tokencache.ErrClosed, tokencache.ErrNoScopes} {
		if errors.Is(err, target) {
			return true
		}
	}
	return errors.Is(err, tokencache.ErrInsecureTransport)
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

// condense turns an error (azidentity's are multi-line) into one short line, with the
// managed-identity secret redacted should any layer ever echo it.
func condense(err error) string {
	fields := strings.Fields(err.Error())
	kept := fields[:0]
	for _, f := range fields {
		if len(f) >= 3 && strings.Trim(f, "-=") == "" {
			continue // azidentity's separator lines
		}
		kept = append(kept, f)
	}
	s := strings.Join(kept, " ")
	for _, secret := range []string{os.Getenv("IDENTITY_HEADER"), os.Getenv("MSI_SECRET")} {
		if len(secret) >= 8 {
			s = strings.ReplaceAll(s, secret, "REDACTED")
		}
	}
	const maxLen = 400
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	return s
}
