package callee

import (
	"context"
	"net"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/f2fauth/f2fauth/internal/otelsetup"
)

// InstrumentationName is the OpenTelemetry instrumentation scope of the
// callee's tracer.
const InstrumentationName = "github.com/f2fauth/f2fauth/callee"

// traceServer wraps the callee's handler: every request continues the trace
// of its W3C traceparent header in a server span (authmw adds its decision to
// that span as an event, and log records made with the request's context carry
// its trace_id). The tracer is the global one (callee.Run installs the SDK
// from the OTEL_* settings). Without an SDK, the caller's span context is
// still carried through, so logs and a gateway's forwarded request keep the
// caller's trace ID.
func traceServer(next http.Handler) http.Handler {
	t := &serverTelemetry{tracer: otel.GetTracerProvider().Tracer(InstrumentationName), prop: otelsetup.Propagator, next: next}
	return t
}

type serverTelemetry struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	next   http.Handler
}

// unsetTracerProvider is the global TracerProvider before any is registered:
// the API's delegating no-op.
var unsetTracerProvider = otel.GetTracerProvider()

// serverSpanOptions are built once: no allocation per request.
var serverSpanOptions = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

func (t *serverTelemetry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	continued := len(r.Header["Traceparent"]) > 0
	if continued {
		ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	if otel.GetTracerProvider() == unsetTracerProvider {
		// No SDK (the shipped default without OTEL_TRACES_EXPORTER): nothing
		// is recorded, but the caller's span context is carried on for the
		// logs, authmw and a gateway's forwarded request.
		if continued && trace.SpanContextFromContext(ctx).IsValid() {
			r = r.WithContext(ctx)
		}
		t.next.ServeHTTP(w, r)
		return
	}
	ctx, span := t.tracer.Start(ctx, spanName(r), serverSpanOptions...)
	if !span.IsRecording() {
		if trace.SpanContextFromContext(ctx).IsValid() {
			r = r.WithContext(ctx)
		}
		t.next.ServeHTTP(w, r)
		return
	}
	defer span.End()
	span.SetAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.Path), // never the query
		attribute.String("client.address", clientAddress(r.RemoteAddr)),
	)
	sw := &statusWriter{ResponseWriter: w}
	t.next.ServeHTTP(sw, r.WithContext(ctx))
	if sw.status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, strconv.Itoa(sw.status))
		}
	}
}

// spanName is "{method} {route}" for the callee's own routes, else "{method}"
// (gateway paths are the application's, unbounded).
func spanName(r *http.Request) string {
	switch {
	case r.URL.Path == FunctionPath && r.Method == http.MethodPost:
		return "POST " + FunctionPath
	case r.URL.Path == FunctionPath && r.Method == http.MethodGet:
		return "GET " + FunctionPath
	case r.URL.Path == HealthzPath && r.Method == http.MethodGet:
		return "GET " + HealthzPath
	case r.URL.Path == ReadyPath && r.Method == http.MethodGet:
		return "GET " + ReadyPath
	}
	return r.Method
}

func clientAddress(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// injectTrace replaces the trace headers of a request the gateway forwards
// with the callee's span context, so the upstream continues the same trace.
func injectTrace(ctx context.Context, h http.Header) {
	h.Del("Traceparent")
	h.Del("Tracestate")
	otelsetup.Propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// statusWriter records the response status for the server span. Flush and
// Hijack (gateway streams and WebSockets) reach the underlying writer through
// Unwrap (http.ResponseController).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
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

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
