// Package oteltest proves, with the real programs' parts over loopback HTTP,
// what an operator gets from OpenTelemetry: the caller's timer run, the
// callee's server span and authmw's decision share one trace (continuing the
// Functions host's trace when the invocation brings a traceparent), and the
// metrics and spans of an allowed call, a denied call and a token refresh are
// exported. The SDK is installed globally with in-memory exporters (a
// ManualReader and a SpanRecorder), exactly as callee.Run and caller.Run
// install it with the exporters the OTEL_* settings name. It holds tests only.
package oteltest
