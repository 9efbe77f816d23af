// Package otelsetup installs the OpenTelemetry SDK for the caller and callee
// programs, with exporters chosen by the standard OTEL_* environment variables
// (through go.opentelemetry.io/contrib/exporters/autoexport), and offers the
// W3C trace-context helpers both programs share.
//
// Only the applications import it: the libraries (authmw, tokencache) use the
// OTel API alone, and a test in internal/consumertest keeps the SDK out of
// their dependencies.
//
// Defaults differ from autoexport's: with OTEL_TRACES_EXPORTER or
// OTEL_METRICS_EXPORTER unset, nothing is exported (autoexport would default
// to OTLP and try to reach a collector on localhost). Set them to "otlp",
// "console" or "prometheus" (metrics) to export; "none" is the default.
package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Environment variables read through lookup. The exporters themselves read
// their own settings (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL,
// OTEL_EXPORTER_OTLP_HEADERS…) and the SDK its resource and sampler settings
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER) from the
// process environment, as every OpenTelemetry SDK does.
const (
	EnvTracesExporter  = "OTEL_TRACES_EXPORTER"
	EnvMetricsExporter = "OTEL_METRICS_EXPORTER"
	EnvSDKDisabled     = "OTEL_SDK_DISABLED"
)

// Options adjust [Setup].
type Options struct {
	// ServiceName is the default service.name resource attribute
	// (OTEL_SERVICE_NAME overrides it).
	ServiceName string
	// AlwaysTrace installs an SDK TracerProvider even when no trace exporter
	// is configured, so spans have IDs and outgoing requests carry a valid
	// traceparent (context propagation is not export). The caller sets it.
	AlwaysTrace bool
}

// Telemetry is what [Setup] installed. Its fields are nil when nothing was
// installed for that signal.
type Telemetry struct {
	TracerProvider *sdktrace.TracerProvider
	MeterProvider  *sdkmetric.MeterProvider
	// TracesExporter and MetricsExporter name the exporters in use ("none" when off).
	TracesExporter, MetricsExporter string
}

// shutdownTimeout bounds Shutdown when its context has no deadline.
const shutdownTimeout = 5 * time.Second

// Shutdown flushes and stops what Setup installed, within ctx's deadline or
// 5 s. It is safe on a nil *Telemetry.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, shutdownTimeout)
		defer cancel()
	}
	var errs []error
	if t.TracerProvider != nil {
		errs = append(errs, t.TracerProvider.Shutdown(ctx))
	}
	if t.MeterProvider != nil {
		errs = append(errs, t.MeterProvider.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// Propagator is the propagator both programs use: W3C Trace Context.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Setup reads the OTEL_* settings with lookup (nil: os.LookupEnv), builds the providers and
// exporters they ask for and installs them globally (otel.SetTracerProvider,
// otel.SetMeterProvider), with the W3C Trace Context propagator. An unknown
// exporter name is an error naming the setting. With OTEL_SDK_DISABLED=true,
// nothing is exported (the caller still gets its trace IDs).
func Setup(ctx context.Context, lookup func(string) (string, bool), opts Options) (*Telemetry, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	getenv := func(k string) string { v, _ := lookup(k); return v }
	otel.SetTextMapPropagator(Propagator)
	tel := &Telemetry{TracesExporter: "none", MetricsExporter: "none"}
	disabled := strings.EqualFold(strings.TrimSpace(getenv(EnvSDKDisabled)), "true")
	traces := exporterName(getenv, EnvTracesExporter, disabled)
	metrics := exporterName(getenv, EnvMetricsExporter, disabled)
	var bad []error
	if !slices.Contains(traceExporters, traces) {
		bad = append(bad, fmt.Errorf("%s=%q is not supported: use %s", EnvTracesExporter, traces, strings.Join(traceExporters, ", ")))
	}
	if !slices.Contains(metricExporters, metrics) {
		bad = append(bad, fmt.Errorf("%s=%q is not supported: use %s", EnvMetricsExporter, metrics, strings.Join(metricExporters, ", ")))
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("invalid OpenTelemetry settings: %w", errors.Join(bad...))
	}
	if traces == "none" && metrics == "none" && !opts.AlwaysTrace {
		return tel, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", opts.ServiceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES still yields the other attributes.
		otel.Handle(fmt.Errorf("otelsetup: OTEL_RESOURCE_ATTRIBUTES: %w", err))
	}
	var errs []error
	if traces != "none" || opts.AlwaysTrace {
		topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
		if traces != "none" {
			err := sameAsProcess(getenv, EnvTracesExporter)
			var exp sdktrace.SpanExporter
			if err == nil {
				exp, err = autoexport.NewSpanExporter(ctx)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", EnvTracesExporter, traces, err))
			} else {
				topts = append(topts, sdktrace.WithBatcher(exp))
				tel.TracesExporter = traces
			}
		}
		tel.TracerProvider = sdktrace.NewTracerProvider(topts...)
	}
	if metrics != "none" {
		err := sameAsProcess(getenv, EnvMetricsExporter)
		var reader sdkmetric.Reader
		if err == nil {
			reader, err = autoexport.NewMetricReader(ctx)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", EnvMetricsExporter, metrics, err))
		} else {
			tel.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader))
			tel.MetricsExporter = metrics
		}
	}
	if len(errs) > 0 {
		_ = tel.Shutdown(ctx)
		return nil, fmt.Errorf("invalid OpenTelemetry settings: %w", errors.Join(errs...))
	}
	if tel.TracerProvider != nil {
		otel.SetTracerProvider(tel.TracerProvider)
	}
	if tel.MeterProvider != nil {
		otel.SetMeterProvider(tel.MeterProvider)
	}
	return tel, nil
}

// The exporters autoexport offers (a comma-separated list is not supported).
var (
	traceExporters  = []string{"none", "otlp", "console"}
	metricExporters = []string{"none", "otlp", "prometheus", "console"}
)

// sameAsProcess checks that the process environment, from which autoexport and
// the exporters read their settings, says what lookup says.
func sameAsProcess(getenv func(string) string, key string) error {
	if got, want := strings.TrimSpace(os.Getenv(key)), strings.TrimSpace(getenv(key)); !strings.EqualFold(got, want) {
		return fmt.Errorf("exporters read the process environment, where %s is %q: set it there", key, got)
	}
	return nil
}

// Getenv adapts a getenv-style function (empty means unset) to Setup's lookup.
func Getenv(getenv func(string) string) func(string) (string, bool) {
	if getenv == nil {
		return nil
	}
	return func(k string) (string, bool) { v := getenv(k); return v, v != "" }
}

// exporterName is the exporter a setting asks for: "none" when unset (not
// autoexport's otlp) or when the SDK is disabled.
func exporterName(getenv func(string) string, key string, disabled bool) string {
	v := strings.ToLower(strings.TrimSpace(getenv(key)))
	if v == "" || disabled {
		return "none"
	}
	return v
}

// LogHandler wraps h so that every record logged with a context carrying a
// valid span context gets trace_id and span_id attributes: one timer run and
// the callee's decision then show the same trace_id in the logs.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(traceHandler); ok {
		return h
	}
	return traceHandler{h}
}

// WithTraceIDs returns logger with its handler wrapped by [LogHandler].
func WithTraceIDs(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return nil
	}
	h := logger.Handler()
	if w := LogHandler(h); w != h {
		return slog.New(w)
	}
	return logger
}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r = r.Clone()
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
