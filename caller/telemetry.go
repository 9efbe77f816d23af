package caller

import (
	"context"
	"net/http"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/f2fauth/f2fauth/internal/otelsetup"
	"github.com/f2fauth/f2fauth/tokencache"
)

// InstrumentationName is the OpenTelemetry instrumentation scope of the
// caller's tracer.
const InstrumentationName = "github.com/f2fauth/f2fauth/caller"

// Span names.
const (
	// SpanInvocation is the span of one timer run (kind server): it continues
	// the Functions host's trace when the invocation request carries a W3C
	// traceparent header, else it starts a new trace.
	SpanInvocation = FunctionName
	// SpanCalleeRequest is the span of one request to the callee (kind
	// client); its context travels in the request's traceparent header.
	SpanCalleeRequest = "POST callee"
)

// fallbackTracer makes spans with IDs when no SDK TracerProvider is installed
// (a Caller used as a library without caller.Run): every call to the callee
// must carry a valid traceparent. It has no exporter.
var fallbackTracer = sync.OnceValue(func() trace.Tracer {
	return sdktrace.NewTracerProvider().Tracer(InstrumentationName)
})

// telemetry is the caller's tracing: the timer run's span and the callee
// requests' spans, propagated with W3C Trace Context.
type telemetry struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// withTelemetryDefaults gives the token cache the Caller's providers unless
// its own options name others, and adds trace IDs to the Caller's log records.
func (o *Options) withTelemetryDefaults(copts *tokencache.Options) {
	if copts.MeterProvider == nil {
		copts.MeterProvider = o.MeterProvider
	}
	if copts.TracerProvider == nil {
		copts.TracerProvider = o.TracerProvider
	}
	o.Logger = otelsetup.WithTraceIDs(o.Logger)
}

func newTelemetry(tp trace.TracerProvider) *telemetry {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return &telemetry{tracer: tp.Tracer(InstrumentationName), prop: otelsetup.Propagator}
}

// startInvocation starts the timer run's span, continuing the host's trace.
//
// The Functions host sends a timer invocation with .NET's HttpClient, which
// adds traceparent (and tracestate) headers for the host's current activity;
// the payload's Metadata carries no trace context for custom handlers (the
// host's RpcTraceContext exists only in its gRPC protocol), so the headers are
// what is continued.
func (t *telemetry) startInvocation(r *http.Request, invocationID string) (context.Context, trace.Span) {
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("faas.trigger", "timer"),
		attribute.String("faas.name", FunctionName),
	)}
	if invocationID != "" {
		opts = append(opts, trace.WithAttributes(attribute.String("faas.invocation_id", invocationID)))
	}
	parent := trace.SpanContextFromContext(ctx)
	sctx, span := t.tracer.Start(ctx, SpanInvocation, opts...)
	if sc := span.SpanContext(); !sc.IsValid() || sc.SpanID() == parent.SpanID() {
		// No SDK installed: the API's no-op tracer made no IDs of its own.
		sctx, span = fallbackTracer().Start(ctx, SpanInvocation, opts...)
	}
	return sctx, span
}

// traceInvocation runs next (the invocation handler) inside the timer run's
// span; the span's status is an error when the run failed (status ≥ 500).
func (t *telemetry) traceInvocation(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := safeText(r.Header.Get(InvocationIDHeader), 64) // as serveInvocation reads it
		ctx, span := t.startInvocation(r, id)
		defer span.End()
		sw := &statusWriter{ResponseWriter: w}
		next(sw, r.WithContext(ctx))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, "run failed: "+strconv.Itoa(sw.status))
		}
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
	}
}

// transport wraps next so every request to the callee is a client span whose
// context is sent in the traceparent header (replacing any the request had).
func (t *telemetry) transport(next http.RoundTripper) http.RoundTripper {
	return &tracingTransport{t: t, next: next}
}

type tracingTransport struct {
	t    *telemetry
	next http.RoundTripper
}

func (tt *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", req.Method),
		attribute.String("server.address", req.URL.Hostname()),
		attribute.String("url.path", req.URL.Path), // never the query: it may hold a function key
	}
	if p := req.URL.Port(); p != "" {
		if n, err := strconv.Atoi(p); err == nil {
			attrs = append(attrs, attribute.Int("server.port", n))
		}
	}
	ctx, span := tt.t.tracer.Start(req.Context(), SpanCalleeRequest, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	out := req.Clone(ctx)
	out.Header.Del("Traceparent")
	out.Header.Del("Tracestate")
	tt.t.prop.Inject(ctx, propagation.HeaderCarrier(out.Header))
	resp, err := tt.next.RoundTrip(out)
	if err != nil {
		span.SetStatus(codes.Error, "no answer from the callee")
		span.SetAttributes(attribute.String("error.type", errorType(err)))
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, strconv.Itoa(resp.StatusCode))
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(resp.StatusCode)))
	}
	return resp, nil
}

// errorType is the error.type of a request without an answer.
func errorType(err error) string {
	switch {
	case isTokenError(err):
		return "no_token"
	case isTimeout(err):
		return "timeout"
	default:
		return "transport"
	}
}

// statusWriter records the status the invocation handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
