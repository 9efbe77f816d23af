package otelsetup_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel/trace"

	"github.com/f2fauth/f2fauth/internal/otelsetup"
)

// A record logged with a request's context carries the trace it belongs to.
func ExampleWithTraceIDs() {
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	log := otelsetup.WithTraceIDs(slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: noTime})))
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithRemoteSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true}))
	log.InfoContext(ctx, "callee: exclusive function called")
	// Output:
	// {"level":"INFO","msg":"callee: exclusive function called","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}
}

// Setup with no OTEL_* exporter set installs nothing but the W3C propagator;
// the caller asks for a tracer anyway (AlwaysTrace) so its spans have IDs.
func ExampleSetup() {
	tel, err := otelsetup.Setup(context.Background(), func(string) (string, bool) { return "", false },
		otelsetup.Options{ServiceName: "f2fauth-caller", AlwaysTrace: true})
	if err != nil {
		panic(err)
	}
	defer tel.Shutdown(context.Background())
	fmt.Println(tel.TracesExporter, tel.MetricsExporter, tel.TracerProvider != nil, tel.MeterProvider != nil)
	// Output:
	// none none true false
}
