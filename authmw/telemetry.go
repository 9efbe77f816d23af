package authmw

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// OpenTelemetry: authmw depends on the OTel API only. Its instruments and spans
// are no-ops until the application installs SDK providers (globally, or in
// Config.MeterProvider and Config.TracerProvider); nothing is exported unless the
// application configures an exporter. The hot path pays an Enabled check and a
// context lookup when nothing is installed, and records with attribute sets built
// once (no allocation) when something is.

// InstrumentationName is the OpenTelemetry instrumentation scope of authmw's
// meter and tracer.
const InstrumentationName = "github.com/f2fauth/f2fauth/authmw"

// Metric names (see docs/observability.md for units and attributes).
const (
	// MetricDecisions counts authorization decisions ({decision}) by
	// f2fauth.authmw.outcome and f2fauth.authmw.reason (denials only).
	MetricDecisions = "f2fauth.authmw.decisions"
	// MetricVerificationDuration is the time to verify a bearer token (s) by
	// f2fauth.authmw.cached and f2fauth.authmw.outcome.
	MetricVerificationDuration = "f2fauth.authmw.verification.duration"
	// MetricKeyFetches counts discovery and JWKS fetches ({fetch}) by
	// f2fauth.authmw.document (discovery or jwks), f2fauth.authmw.issuer and, for
	// failures, error.type (transient or permanent).
	MetricKeyFetches = "f2fauth.authmw.key_fetches"
	// MetricKeys is the number of usable signing keys loaded ({key}) per
	// f2fauth.authmw.issuer; 0 while an issuer is not discovered or not loaded.
	MetricKeys = "f2fauth.authmw.keys"
)

// Span event and attribute names.
const (
	// EventDecision is the span event added to the request's span (the one in
	// its context, when recording) for every decision. Its attributes are the
	// outcome and reason code and, for allowed requests, the caller's appid, oid
	// and tid: never any other claim.
	EventDecision = "f2fauth.authmw.decision"

	attrOutcome  = "f2fauth.authmw.outcome"
	attrReason   = "f2fauth.authmw.reason"
	attrCached   = "f2fauth.authmw.cached"
	attrDocument = "f2fauth.authmw.document"
	attrIssuer   = "f2fauth.authmw.issuer"
	attrErrType  = "error.type"
	attrAppID    = "f2fauth.caller.appid"
	attrOID      = "f2fauth.caller.oid"
	attrTID      = "f2fauth.caller.tid"
)

// Fetched documents, values of f2fauth.authmw.document.
const (
	docDiscovery = "discovery"
	docJWKS      = "jwks"
)

// latencyBuckets suit verifications: about a microsecond cached, a few hundred
// microseconds for an RSA check, more on a JWKS refetch.
var latencyBuckets = []float64{1e-6, 2e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
	1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1}

// telemetry holds authmw's instruments and the attribute sets they record with,
// computed once. The zero value is not usable; a nil *telemetry records nothing.
type telemetry struct {
	decisions metric.Int64Counter
	latency   metric.Float64Histogram
	fetches   metric.Int64Counter
	keys      metric.Int64ObservableGauge
	reg       metric.Registration
	tracer    trace.Tracer

	allowed, anonymous, excluded []metric.AddOption
	denied                       map[Reason][]metric.AddOption
	// latencyOpts[cached][denied]
	latencyOpts [2][2][]metric.RecordOption
}

// newTelemetry builds m's instruments from cfg's providers (default: the global
// ones). Instrument errors are reported through otel.Handle and leave a no-op.
func newTelemetry(m *Middleware, cfg Config) *telemetry {
	mp, tp := cfg.MeterProvider, cfg.TracerProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	meter := mp.Meter(InstrumentationName)
	t := &telemetry{tracer: tp.Tracer(InstrumentationName)}
	var err error
	if t.decisions, err = meter.Int64Counter(MetricDecisions, metric.WithUnit("{decision}"),
		metric.WithDescription("Authorization decisions by outcome and reason code.")); err != nil {
		otel.Handle(err)
	}
	if t.latency, err = meter.Float64Histogram(MetricVerificationDuration, metric.WithUnit("s"),
		metric.WithDescription("Time to verify a bearer token, answered from the verified-token cache or not."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...)); err != nil {
		otel.Handle(err)
	}
	if t.fetches, err = meter.Int64Counter(MetricKeyFetches, metric.WithUnit("{fetch}"),
		metric.WithDescription("Discovery document and JWKS fetches; failures carry error.type.")); err != nil {
		otel.Handle(err)
	}
	if t.keys, err = meter.Int64ObservableGauge(MetricKeys, metric.WithUnit("{key}"),
		metric.WithDescription("Usable signing keys loaded per issuer.")); err != nil {
		otel.Handle(err)
	}
	if t.reg, err = meter.RegisterCallback(m.observeKeys(t.keys), t.keys); err != nil {
		otel.Handle(err)
	}

	add := func(kv ...attribute.KeyValue) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	}
	t.allowed = add(attribute.String(attrOutcome, string(OutcomeAllowed)))
	t.anonymous = add(attribute.String(attrOutcome, string(OutcomeAnonymous)))
	t.excluded = add(attribute.String(attrOutcome, string(OutcomeExcluded)))
	t.denied = make(map[Reason][]metric.AddOption, len(genericDetail)+1)
	for r := range genericDetail {
		t.denied[r] = add(attribute.String(attrOutcome, string(OutcomeDenied)), attribute.String(attrReason, string(r)))
	}
	r := ReasonKeysUnavailable
	t.denied[r] = add(attribute.String(attrOutcome, string(OutcomeDenied)), attribute.String(attrReason, string(r)))
	for c, cached := range []bool{false, true} {
		for d, outcome := range []Outcome{OutcomeAllowed, OutcomeDenied} {
			t.latencyOpts[c][d] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
				attribute.Bool(attrCached, cached), attribute.String(attrOutcome, string(outcome))))}
		}
	}
	return t
}

// observeKeys reports the usable keys of every discovered issuer, and 0 for the
// issuers not discovered yet.
func (m *Middleware) observeKeys(g metric.Int64ObservableGauge) metric.Callback {
	return func(_ context.Context, o metric.Observer) error {
		for iss, r := range m.routes.Load().byIss {
			o.ObserveInt64(g, int64(r.keys.KeyCount()), metric.WithAttributes(attribute.String(attrIssuer, iss)))
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, s := range m.specs {
			if s.keys == nil {
				o.ObserveInt64(g, 0, metric.WithAttributes(attribute.String(attrIssuer, s.base)))
			}
		}
		return nil
	}
}

// close unregisters the keys gauge's callback.
func (t *telemetry) close() {
	if t != nil && t.reg != nil {
		_ = t.reg.Unregister()
	}
}

// decision records the decision Check made for r: the decisions counter and an
// event on r's span. p and err are what authenticate returned.
func (m *Middleware) recordDecision(r *http.Request, p *Principal, err *Error) {
	t := m.tel
	ctx := r.Context()
	span := trace.SpanFromContext(ctx)
	recording := span.IsRecording()
	counting := t.decisions.Enabled(ctx)
	if !recording && !counting {
		return
	}
	outcome, opts := OutcomeAllowed, t.allowed
	var reason Reason
	switch {
	case err != nil:
		outcome, reason = OutcomeDenied, err.Reason
		if opts = t.denied[reason]; opts == nil {
			opts = []metric.AddOption{metric.WithAttributes(attribute.String(attrOutcome, string(outcome)), attribute.String(attrReason, string(reason)))}
		}
	case p == nil && m.state.Load().cp.excludedURL(r.URL):
		outcome, opts = OutcomeExcluded, t.excluded
	case p == nil:
		outcome, opts = OutcomeAnonymous, t.anonymous
	}
	if counting {
		t.decisions.Add(ctx, 1, opts...)
	}
	if recording {
		attrs := make([]attribute.KeyValue, 0, 5)
		attrs = append(attrs, attribute.String(attrOutcome, string(outcome)))
		if reason != "" {
			attrs = append(attrs, attribute.String(attrReason, string(reason)))
		}
		if p != nil {
			attrs = append(attrs, attribute.String(attrAppID, p.AppID), attribute.String(attrOID, p.ObjectID), attribute.String(attrTID, p.TenantID))
		}
		span.AddEvent(EventDecision, trace.WithAttributes(attrs...))
	}
}

// verifyStart returns the start time of a verification, or the zero time when
// the latency histogram records nothing (then no clock is read).
func (t *telemetry) verifyStart(ctx context.Context) time.Time {
	if !t.latency.Enabled(ctx) {
		return time.Time{}
	}
	return time.Now()
}

// verified records the latency of a verification started at start.
func (t *telemetry) verified(ctx context.Context, start time.Time, cached bool, err *Error) {
	if start.IsZero() {
		return
	}
	c, d := 0, 0
	if cached {
		c = 1
	}
	if err != nil {
		d = 1
	}
	t.latency.Record(ctx, time.Since(start).Seconds(), t.latencyOpts[c][d]...)
}

// fetched records one discovery or JWKS fetch of issuer, started at start and
// ended now with err: the fetches counter and a span (kind client) with the
// fetch's times. It returns err. Fetches cut short by Close are not recorded.
func (m *Middleware) fetched(document, issuer string, start time.Time, err error) error {
	if m.ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return err
	}
	t := m.tel
	kv := []attribute.KeyValue{attribute.String(attrDocument, document), attribute.String(attrIssuer, issuer)}
	if err != nil {
		kv = append(kv, attribute.String(attrErrType, sourceClass(err)))
	}
	if t.fetches.Enabled(m.ctx) {
		t.fetches.Add(m.ctx, 1, metric.WithAttributes(kv...))
	}
	_, span := t.tracer.Start(m.ctx, "authmw fetch "+document, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(start), trace.WithAttributes(kv...))
	if span.IsRecording() && err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	return err
}
