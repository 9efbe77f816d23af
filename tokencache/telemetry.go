package tokencache

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// OpenTelemetry: tokencache depends on the OTel API only; its instruments and
// spans are no-ops until the application installs SDK providers (globally, or
// in Options.MeterProvider and Options.TracerProvider). GetToken's hot path
// records nothing: hits, misses and the time until expiry are observed from the
// cache's own counters when a metric reader collects.

// InstrumentationName is the OpenTelemetry instrumentation scope of
// tokencache's meter and tracer.
const InstrumentationName = "github.com/f2fauth/f2fauth/tokencache"

// Metric names (see docs/observability.md).
const (
	// MetricRequests counts credential calls, i.e. requests to the identity
	// endpoint ({request}), by f2fauth.tokencache.scope and
	// f2fauth.tokencache.background (true for refreshes ahead of expiry, false
	// when a caller waits); failures carry error.type.
	MetricRequests = "f2fauth.tokencache.requests"
	// MetricRequestDuration is the duration of credential calls (s), with the
	// attributes of MetricRequests.
	MetricRequestDuration = "f2fauth.tokencache.request.duration"
	// MetricHits counts GetToken calls answered from the cache at once ({hit}).
	MetricHits = "f2fauth.tokencache.hits"
	// MetricMisses counts GetToken calls that waited for a credential call ({miss}).
	MetricMisses = "f2fauth.tokencache.misses"
	// MetricTimeUntilExpiry is the cached token's remaining lifetime (s) per
	// scope; negative once expired. Scopes without a token report nothing.
	MetricTimeUntilExpiry = "f2fauth.tokencache.token.time_until_expiry"
)

const (
	attrScope      = "f2fauth.tokencache.scope"
	attrTenant     = "f2fauth.tokencache.tenant_id"
	attrBackground = "f2fauth.tokencache.background"
	attrErrType    = "error.type"
)

// requestBuckets suit identity-endpoint calls: milliseconds to tens of seconds.
var requestBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// telemetry holds a Cache's instruments. A nil *telemetry records nothing.
type telemetry struct {
	requests metric.Int64Counter
	duration metric.Float64Histogram
	reg      metric.Registration
	tracer   trace.Tracer
}

// newTelemetry builds c's instruments from opts' providers (default: the
// global ones). Instrument errors go to otel.Handle and leave a no-op.
func newTelemetry(c *Cache, opts *Options) *telemetry {
	var mp metric.MeterProvider
	var tp trace.TracerProvider
	if opts != nil {
		mp, tp = opts.MeterProvider, opts.TracerProvider
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	meter := mp.Meter(InstrumentationName)
	t := &telemetry{tracer: tp.Tracer(InstrumentationName)}
	var err error
	if t.requests, err = meter.Int64Counter(MetricRequests, metric.WithUnit("{request}"),
		metric.WithDescription("Credential calls (requests to the identity endpoint); failures carry error.type.")); err != nil {
		otel.Handle(err)
	}
	if t.duration, err = meter.Float64Histogram(MetricRequestDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of credential calls."),
		metric.WithExplicitBucketBoundaries(requestBuckets...)); err != nil {
		otel.Handle(err)
	}
	hits, err := meter.Int64ObservableCounter(MetricHits, metric.WithUnit("{hit}"),
		metric.WithDescription("GetToken calls answered from the cache without waiting."))
	if err != nil {
		otel.Handle(err)
	}
	misses, err := meter.Int64ObservableCounter(MetricMisses, metric.WithUnit("{miss}"),
		metric.WithDescription("GetToken calls that waited for a credential call."))
	if err != nil {
		otel.Handle(err)
	}
	expiry, err := meter.Float64ObservableGauge(MetricTimeUntilExpiry, metric.WithUnit("s"),
		metric.WithDescription("Seconds until the cached token expires; negative once expired."))
	if err != nil {
		otel.Handle(err)
	}
	if t.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, e := range c.Stats().Entries {
			set := metric.WithAttributeSet(entrySet(e.Scope, e.TenantID))
			o.ObserveInt64(hits, int64(e.Hits), set)
			o.ObserveInt64(misses, int64(e.Misses), set)
			if e.HasToken {
				o.ObserveFloat64(expiry, e.SecondsUntilExpiry, set)
			}
		}
		return nil
	}, hits, misses, expiry); err != nil {
		otel.Handle(err)
	}
	return t
}

// entrySet is the attribute set of one cache entry: its scopes and tenant.
func entrySet(scope, tenant string) attribute.Set {
	if tenant == "" {
		return attribute.NewSet(attribute.String(attrScope, scope))
	}
	return attribute.NewSet(attribute.String(attrScope, scope), attribute.String(attrTenant, tenant))
}

// close unregisters the observable instruments' callback.
func (t *telemetry) close() {
	if t != nil && t.reg != nil {
		_ = t.reg.Unregister()
	}
}

// fetched records one credential call for e, started at start and finished
// now with err (nil on success), described as ce: the requests counter, the
// duration histogram and a span (kind client) with the call's times. It never
// records the token; the span's error message is ce's (redacted, bounded).
func (c *Cache) fetched(e *entry, background bool, attempt int, start time.Time, err error, ce *credError) {
	t := c.tel
	if t == nil {
		return
	}
	ctx := c.life
	kv := make([]attribute.KeyValue, 0, 4)
	kv = append(kv, attribute.String(attrScope, strings.Join(e.opts.Scopes, " ")), attribute.Bool(attrBackground, background))
	if e.opts.TenantID != "" {
		kv = append(kv, attribute.String(attrTenant, e.opts.TenantID))
	}
	if err != nil {
		kv = append(kv, attribute.String(attrErrType, boundedErrorType(err)))
	}
	if t.requests.Enabled(ctx) || t.duration.Enabled(ctx) {
		opt := metric.WithAttributeSet(attribute.NewSet(kv...))
		t.requests.Add(ctx, 1, opt)
		t.duration.Record(ctx, time.Since(start).Seconds(), opt)
	}
	_, span := t.tracer.Start(ctx, "tokencache get token", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(start), trace.WithAttributes(kv...), trace.WithAttributes(attribute.Int("f2fauth.tokencache.attempt", attempt)))
	if ce != nil && span.IsRecording() {
		span.SetStatus(codes.Error, ce.msg)
	}
	span.End()
}

// boundedErrorType is credentialErrorType read as describeError reads an
// error: in its own goroutine, within describeTimeout, a panic recovered, so
// an error whose methods block or panic cannot wedge the fetch ("credential").
func boundedErrorType(err error) string {
	out := make(chan string, 1)
	go func() {
		defer func() {
			if recover() != nil {
				out <- "credential"
			}
		}()
		out <- credentialErrorType(err)
	}()
	t := time.NewTimer(describeTimeout)
	defer t.Stop()
	select {
	case s := <-out:
		return s
	case <-t.C:
		return "credential"
	}
}

// credentialErrorType is the error.type of a failed credential call: the HTTP
// status the identity endpoint answered, timeout, token_too_short_lived,
// unusable_token, panic, canceled or credential.
func credentialErrorType(err error) string {
	switch {
	case errors.Is(err, errTokenTooShortLived):
		return "token_too_short_lived"
	case errors.Is(err, errUnusableToken):
		return "unusable_token"
	case errors.Is(err, errCredentialPanic):
		return "panic"
	}
	if resp := responseOf(err); resp != nil {
		return strconv.Itoa(resp.StatusCode)
	}
	switch {
	case errors.Is(err, errTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, errAbandonedOnClose), errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "credential"
	}
}
