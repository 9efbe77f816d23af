package tokencache

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Default values used when the corresponding [Options] field is zero.
const (
	// DefaultSafetyMargin is the default of Options.SafetyMargin.
	DefaultSafetyMargin = 30 * time.Second
	// DefaultTimeout is the default of Options.Timeout.
	DefaultTimeout = 30 * time.Second
	// DefaultInvalidateInterval is the default of Options.InvalidateInterval.
	DefaultInvalidateInterval = 30 * time.Second
	// DefaultInitialBackoff is the default of Options.InitialBackoff.
	DefaultInitialBackoff = 2 * time.Second
	// DefaultMaxBackoff is the default of Options.MaxBackoff.
	DefaultMaxBackoff = 5 * time.Minute
	// MinBackoff is the least Options.InitialBackoff and Options.MaxBackoff accept.
	MinBackoff = 100 * time.Millisecond
	// MinInvalidateInterval is the least Options.InvalidateInterval accepts.
	MinInvalidateInterval = time.Second
)

// Refresh-point constants (see the package documentation).
const (
	// longLivedThreshold: tokens living longer than this refresh at half life.
	longLivedThreshold = 2 * time.Hour
	// shortLivedLead: tokens living at most longLivedThreshold refresh this long before expiry.
	shortLivedLead = 5 * time.Minute
	// refreshJitterFraction is the largest share of the refresh interval by which a
	// refresh point is moved earlier.
	refreshJitterFraction = 0.05
	// maxRefreshJitter bounds the refresh jitter.
	maxRefreshJitter = 5 * time.Minute
	// minRefreshInterval is the shortest time between a token's arrival and
	// its background refresh; a token usable for less is refused.
	minRefreshInterval = 5 * time.Second
	// maxTokenLifetime: an expiry further away counts as this far (keeps
	// every time inside the nanosecond range).
	maxTokenLifetime = 30 * 24 * time.Hour
	// evictionInterval: an entry nobody asked for during one interval is
	// evicted by the next sweep.
	evictionInterval = time.Hour
)

// Options configures a [Cache]. A nil *Options means all defaults. Zero fields
// take their documented defaults; negative durations are rejected by [New].
type Options struct {
	// Now is the clock, per instance. Default: time.Now.
	Now func() time.Time

	// SafetyMargin: a token expiring within this duration is never handed out;
	// callers wait for a fresh one instead. Default: 30s.
	SafetyMargin time.Duration

	// Timeout bounds one credential call (the fetch runs on the cache's own
	// lifecycle context with this timeout; a credential that ignores it is
	// abandoned, so the scope is free again) and how long a caller waits for
	// a fetch. Default: 30s.
	Timeout time.Duration

	// InvalidateInterval is the minimum time between two forced refreshes of the
	// same entry through [Cache.Invalidate], and between two new claims
	// values (claims challenges) fetched for the same scopes (see
	// [errClaimsRateLimited]). Default: 30s; at least [MinInvalidateInterval].
	InvalidateInterval time.Duration

	// InitialBackoff is the delay after a failed credential call (foreground
	// or background) before the scope's credential is asked again; it doubles
	// after each consecutive failure up to MaxBackoff. Meanwhile callers
	// without a usable token get the remembered error at once. Default: 2s;
	// at least [MinBackoff].
	InitialBackoff time.Duration

	// MaxBackoff caps the exponential backoff between credential calls after
	// failures (a server's Retry-After on a 429/503 may still ask for longer,
	// up to 1h). Default: 5m; at least [MinBackoff].
	MaxBackoff time.Duration

	// Logger receives refresh started/succeeded/failed records (scope, expiry,
	// attempt; never the token). Default: nil, the cache stays quiet.
	Logger *slog.Logger

	// MeterProvider receives the cache's metrics (requests to the identity
	// endpoint, hits, misses, time until expiry; see docs/observability.md).
	// Default: otel.GetMeterProvider(), a no-op until the application installs
	// an SDK.
	MeterProvider metric.MeterProvider
	// TracerProvider makes one span per credential call. Default:
	// otel.GetTracerProvider().
	TracerProvider trace.TracerProvider

	// jitter returns a pseudo-random number in [0, 1); it is the jitter source for
	// refresh points and backoff delays. A value of 0.5 yields the nominal
	// backoff, 0 the nominal refresh point. It must be safe for concurrent
	// use. Default: math/rand/v2.Float64. Only this package's tests set it.
	jitter func() float64
}

// config is the validated, defaulted form of Options.
type config struct {
	now                func() time.Time
	safetyMargin       time.Duration
	timeout            time.Duration
	invalidateInterval time.Duration
	initialBackoff     time.Duration
	maxBackoff         time.Duration
	rand               func() float64
	logger             *slog.Logger
}

// resolve fills defaults and reports every invalid setting, each naming the field.
func (o *Options) resolve() (config, error) {
	var in Options
	if o != nil {
		in = *o
	}
	cfg := config{
		now:                in.Now,
		safetyMargin:       in.SafetyMargin,
		timeout:            in.Timeout,
		invalidateInterval: in.InvalidateInterval,
		initialBackoff:     in.InitialBackoff,
		maxBackoff:         in.MaxBackoff,
		rand:               in.jitter,
		logger:             in.Logger,
	}
	var errs []error
	// dur fills the default of 0 and refuses a negative value, or one below min:
	// a backoff or rate limit of a nanosecond would let every caller reach the
	// identity endpoint, the storm these settings exist to prevent.
	dur := func(name string, v *time.Duration, def, min time.Duration) {
		switch {
		case *v < 0:
			errs = append(errs, fmt.Errorf("tokencache: Options.%s must not be negative (got %v); use 0 for the default %v: %w", name, *v, def, ErrInvalidConfig))
		case *v == 0:
			*v = def
		case *v < min:
			errs = append(errs, fmt.Errorf("tokencache: Options.%s must be at least %v (got %v); use 0 for the default %v: %w", name, min, *v, def, ErrInvalidConfig))
		}
	}
	dur("SafetyMargin", &cfg.safetyMargin, DefaultSafetyMargin, 0)
	dur("Timeout", &cfg.timeout, DefaultTimeout, 0)
	dur("InvalidateInterval", &cfg.invalidateInterval, DefaultInvalidateInterval, MinInvalidateInterval)
	dur("InitialBackoff", &cfg.initialBackoff, DefaultInitialBackoff, MinBackoff)
	dur("MaxBackoff", &cfg.maxBackoff, DefaultMaxBackoff, MinBackoff)
	if in.MaxBackoff > 0 && in.InitialBackoff > in.MaxBackoff {
		errs = append(errs, fmt.Errorf("tokencache: Options.InitialBackoff (%v) must not exceed Options.MaxBackoff (%v): %w", in.InitialBackoff, in.MaxBackoff, ErrInvalidConfig))
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.rand == nil {
		cfg.rand = rand.Float64
	}
	return cfg, errors.Join(errs...)
}
