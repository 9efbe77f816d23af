package otelsetup

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func envOf(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

// With the OTEL_*_EXPORTER settings unset (or none, or the SDK disabled)
// nothing is installed, unless AlwaysTrace asks for trace IDs; an unknown
// exporter stops startup with a message naming the setting.
func TestSetup(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		env         map[string]string
		always      bool
		wantTracer  bool
		wantMeter   bool
		wantErrName string
	}{
		{name: "unset: nothing", env: nil},
		{name: "none: nothing", env: map[string]string{EnvTracesExporter: "none", EnvMetricsExporter: "none"}},
		{name: "unset, AlwaysTrace: a tracer without exporter", always: true, wantTracer: true},
		{name: "disabled SDK wins", env: map[string]string{EnvSDKDisabled: "true", EnvTracesExporter: "bogus"}},
		{name: "unknown traces exporter", env: map[string]string{EnvTracesExporter: "zipkin-please"}, wantErrName: EnvTracesExporter},
		{name: "unknown metrics exporter", env: map[string]string{EnvMetricsExporter: "statsd"}, wantErrName: EnvMetricsExporter},
		// The exporters read their own settings from the process environment:
		// a choice that is not also there is refused, never silently replaced.
		{name: "exporter not in the process environment", env: map[string]string{EnvTracesExporter: "console"}, wantErrName: EnvTracesExporter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel, err := Setup(ctx, envOf(tc.env), Options{ServiceName: "test", AlwaysTrace: tc.always})
			if tc.wantErrName != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrName) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErrName)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tel.Shutdown(ctx)
			if (tel.TracerProvider != nil) != tc.wantTracer || (tel.MeterProvider != nil) != tc.wantMeter {
				t.Errorf("tracer %v meter %v, want %v %v", tel.TracerProvider != nil, tel.MeterProvider != nil, tc.wantTracer, tc.wantMeter)
			}
			if tel.TracesExporter != "none" || tel.MetricsExporter != "none" {
				t.Errorf("exporters %q/%q, want none", tel.TracesExporter, tel.MetricsExporter)
			}
			if _, ok := otel.GetTextMapPropagator().(propagation.TraceContext); !ok {
				t.Errorf("global propagator %T, want W3C TraceContext", otel.GetTextMapPropagator())
			}
		})
	}
}

// Records logged with a span's context carry its trace_id and span_id;
// others are unchanged.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := WithTraceIDs(slog.New(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "run")
	defer span.End()
	log.InfoContext(ctx, "with span")
	log.Info("without span")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	var with, without map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &with); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &without); err != nil {
		t.Fatal(err)
	}
	sc := trace.SpanContextFromContext(ctx)
	if with["trace_id"] != sc.TraceID().String() || with["span_id"] != sc.SpanID().String() || with["component"] != "test" {
		t.Errorf("record with span: %v", with)
	}
	if _, ok := without["trace_id"]; ok {
		t.Errorf("record without span has a trace_id: %v", without)
	}
	if WithTraceIDs(log) != log {
		t.Error("wrapping twice made a new logger")
	}
}

// With the exporters named in the process environment, autoexport builds them
// (OTLP here, to a loopback port nothing listens on: nothing leaves the machine).
func TestSetupWithExporters(t *testing.T) {
	t.Setenv(EnvTracesExporter, "otlp")
	t.Setenv(EnvMetricsExporter, "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200")
	tel, err := Setup(context.Background(), nil, Options{ServiceName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if tel.TracerProvider == nil || tel.MeterProvider == nil || tel.TracesExporter != "otlp" || tel.MetricsExporter != "otlp" {
		t.Fatalf("installed %+v", tel)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tel.Shutdown(ctx) // the export to the closed port fails; shutdown still ends
}
