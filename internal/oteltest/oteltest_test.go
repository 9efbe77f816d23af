package oteltest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/callee"
	"github.com/f2fauth/f2fauth/caller"
	"github.com/f2fauth/f2fauth/internal/e2e"
	"github.com/f2fauth/f2fauth/internal/localidp"
	"github.com/f2fauth/f2fauth/internal/testutil"
	"github.com/f2fauth/f2fauth/tokencache"
)

const (
	audience = "api://callee"
	appRole  = "Exclusive.Invoke"
)

var (
	registered = localidp.Identity{Name: "registered", ClientID: "3f2a1c9e-5b7d-4e61-9a0c-1d2e3f4a5b01",
		ObjectID: "8c7b6a59-4d3e-4f21-8e0d-9c8b7a6f5e01", AppRoles: map[string][]string{audience: {appRole}}}
	rogue = localidp.Identity{Name: "rogue", ClientID: "d00dfeed-0bad-4bad-8bad-c0ffee000666",
		ObjectID: "0ddba11c-afe0-4bad-9bad-f00d00000666"}
)

// The in-memory exporters, installed globally by TestMain as callee.Run and
// caller.Run install the configured ones.
var (
	spans  = tracetest.NewSpanRecorder()
	reader = sdkmetric.NewManualReader()
)

func TestMain(m *testing.M) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	code := m.Run()
	tp.Shutdown(context.Background())
	mp.Shutdown(context.Background())
	os.Exit(code)
}

// world is one identity platform, the callee and the registered caller, all
// on 127.0.0.1. MSAL caches managed-identity tokens process-wide, so the
// package has exactly one caller identity and one world.
type world struct {
	idp        *localidp.Platform
	mi         *localidp.ManagedIdentity
	callee     *e2e.Callee
	calleeLogs *testutil.SyncBuffer
	callerURL  string
	callerLogs *testutil.SyncBuffer
	sent       *headerLog
}

var (
	worldOnce sync.Once
	theWorld  *world
	worldErr  error
)

// headerLog is the base transport under the caller's bearer transport: it
// records the traceparent of every request the caller puts on the wire.
type headerLog struct {
	mu   sync.Mutex
	seen []string
	next http.RoundTripper
}

func (h *headerLog) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.seen = append(h.seen, strings.Join(r.Header.Values("Traceparent"), ","))
	h.mu.Unlock()
	return h.next.RoundTrip(r)
}

func (h *headerLog) last() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) == 0 {
		return ""
	}
	return h.seen[len(h.seen)-1]
}

func getWorld(t *testing.T) *world {
	t.Helper()
	worldOnce.Do(func() { theWorld, worldErr = startWorld() })
	if worldErr != nil {
		t.Fatal(worldErr)
	}
	return theWorld
}

func startWorld() (*world, error) {
	w := &world{calleeLogs: &testutil.SyncBuffer{}, callerLogs: &testutil.SyncBuffer{}}
	var err error
	if w.idp, err = localidp.Start(localidp.Options{}); err != nil {
		return nil, err
	}
	if w.mi, err = w.idp.AddIdentity(registered); err != nil {
		return nil, err
	}
	// Tokens ask to be refreshed 2 s after issue (refresh_in), so the caller's
	// token cache refreshes in the background while the tests run.
	w.mi.SetRefreshIn(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	settings := e2e.CalleeSettings(w.idp, audience, appRole, registered.ClientID)
	if w.callee, err = e2e.StartCallee(ctx, settings, slog.New(slog.NewJSONHandler(w.calleeLogs, &slog.HandlerOptions{Level: slog.LevelDebug}))); err != nil {
		return nil, err
	}
	// The real credential reads the managed-identity endpoint from the process
	// environment, as on App Service.
	os.Setenv("IDENTITY_ENDPOINT", w.mi.Endpoint())
	os.Setenv("IDENTITY_HEADER", w.mi.Header())
	cfg, err := caller.ConfigFromEnv(func(k string) string {
		return map[string]string{caller.EnvCalleeURL: w.callee.URL, caller.EnvCalleeAudience: audience, caller.EnvSchedule: "0 */5 * * * *"}[k]
	})
	if err != nil {
		return nil, err
	}
	w.sent = &headerLog{next: http.DefaultTransport.(*http.Transport).Clone()}
	c, err := caller.New(cfg, &caller.Options{Logger: slog.New(slog.NewJSONHandler(w.callerLogs, nil)), Transport: w.sent})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w.callerURL = "http://" + ln.Addr().String()
	go c.Serve(context.Background(), ln) //nolint:errcheck // runs until the test binary exits
	return w, nil
}

// invoke sends a timer invocation to the caller as the Functions host does,
// with the host's traceparent when given, and returns the run's report.
func (w *world) invoke(t *testing.T, traceparent string) *caller.Report {
	t.Helper()
	body := `{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},` +
		`"Metadata":{"sys":{"MethodName":"AutoTriggerFunction","UtcNow":"2026-12-01T16:00:00Z","RandGuid":"4e77c1b8-5a2e-4a53-8c9e-0c1d2e3f4a5b"}}}`
	req, err := http.NewRequest(http.MethodPost, w.callerURL+"/"+caller.FunctionName, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(caller.InvocationIDHeader, "0b1c2d3e-0000-4000-8000-000000000001")
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out caller.InvocationResponse
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.ReturnValue == nil {
		t.Fatalf("invocation answered %d, undecodable: %v", res.StatusCode, err)
	}
	return out.ReturnValue
}

// spanContextOf parses a W3C traceparent header.
func spanContextOf(t *testing.T, traceparent string) trace.SpanContext {
	t.Helper()
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		t.Fatalf("traceparent %q is not a valid W3C trace context", traceparent)
	}
	return sc
}

// endedSpans returns the recorded spans of scope named name in trace tid.
func endedSpans(scope, name string, tid trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.InstrumentationScope().Name == scope && s.Name() == name && s.SpanContext().TraceID() == tid {
			out = append(out, s)
		}
	}
	return out
}

// waitSpan waits for exactly one span of scope named name in trace tid
// (servers end their span after the response is written).
func waitSpan(t *testing.T, scope, name string, tid trace.TraceID) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := endedSpans(scope, name, tid)
		if len(got) == 1 {
			return got[0]
		}
		if len(got) > 1 || time.Now().After(deadline) {
			t.Fatalf("%d %q spans of %s in trace %s, want 1", len(got), name, scope, tid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventAttrs returns the attributes of the span's only event called name.
func eventAttrs(t *testing.T, s sdktrace.ReadOnlySpan, name string) map[string]string {
	t.Helper()
	var out map[string]string
	for _, ev := range s.Events() {
		if ev.Name != name {
			continue
		}
		if out != nil {
			t.Fatalf("span %q has several %s events", s.Name(), name)
		}
		out = map[string]string{}
		for _, kv := range ev.Attributes {
			out[string(kv.Key)] = kv.Value.Emit()
		}
	}
	if out == nil {
		t.Fatalf("span %q has no %s event", s.Name(), name)
	}
	return out
}

// logTraceIDs returns the trace_id of every JSON log record whose msg has prefix.
func logTraceIDs(t *testing.T, logs, prefix string) []string {
	t.Helper()
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, prefix) {
			if id, ok := rec["trace_id"].(string); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

// One timer run is one trace: the caller's run continues the host's trace,
// its request to the callee carries a valid W3C traceparent, and the callee's
// server span (with authmw's decision event) and log records carry the same
// trace ID — whether the host sent a traceparent or not, and even when the
// caller has no SDK tracer of its own.
func TestTimerRunAndCalleeDecisionShareATrace(t *testing.T) {
	w := getWorld(t)
	hostTrace := "0af7651916cd43dd8448eb211c80319c"
	hostSpan := "b7ad6b7169203331"
	for _, tc := range []struct {
		name        string
		traceparent string
	}{
		{"host sends traceparent", "00-" + hostTrace + "-" + hostSpan + "-01"},
		{"no traceparent from the host", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := w.invoke(t, tc.traceparent)
			if !rep.OK || rep.CalleeStatus != http.StatusOK {
				t.Fatalf("run: %+v", rep)
			}
			sent := spanContextOf(t, w.sent.last())
			tid := sent.TraceID()
			if tc.traceparent != "" && tid.String() != hostTrace {
				t.Errorf("the caller sent trace %s, want the host's %s", tid, hostTrace)
			}

			if tc.traceparent == "" && tid.String() == hostTrace {
				t.Error("a run without the host's traceparent reused an old trace")
			}

			// The caller: the run (server span, child of the host's span when
			// given) and the request to the callee (client span, whose context
			// is the traceparent that was sent).
			run := waitSpan(t, caller.InstrumentationName, caller.SpanInvocation, tid)
			if run.SpanKind() != trace.SpanKindServer {
				t.Errorf("run span kind %v", run.SpanKind())
			}
			if tc.traceparent != "" && (run.Parent().SpanID().String() != hostSpan || !run.Parent().IsRemote()) {
				t.Errorf("run span's parent %v, want the host's span %s", run.Parent(), hostSpan)
			}
			out := waitSpan(t, caller.InstrumentationName, caller.SpanCalleeRequest, tid)
			if out.SpanContext().SpanID() != sent.SpanID() || out.Parent().SpanID() != run.SpanContext().SpanID() {
				t.Errorf("the traceparent sent (%s) is not the request span (%s, child of the run)", sent.SpanID(), out.SpanContext().SpanID())
			}

			// The callee continues that trace: its server span's remote parent is
			// the caller's request span, and authmw's decision is an event on it.
			srv := waitSpan(t, callee.InstrumentationName, "POST "+callee.FunctionPath, tid)
			if srv.SpanKind() != trace.SpanKindServer || !srv.Parent().IsRemote() || srv.Parent().SpanID() != sent.SpanID() {
				t.Errorf("callee span kind %v, parent %v; want a server span whose remote parent is %s", srv.SpanKind(), srv.Parent(), sent.SpanID())
			}
			ev := eventAttrs(t, srv, authmw.EventDecision)
			want := map[string]string{"f2fauth.authmw.outcome": "allowed", "f2fauth.caller.appid": registered.ClientID,
				"f2fauth.caller.oid": registered.ObjectID, "f2fauth.caller.tid": w.idp.TenantID()}
			if fmt.Sprint(ev) != fmt.Sprint(want) {
				t.Errorf("decision event %v, want %v", ev, want)
			}

			// Both programs' log records of this run carry the trace ID.
			if ids := logTraceIDs(t, w.callerLogs.String(), "caller: invocation finished"); !contains(ids, tid.String()) {
				t.Errorf("no caller 'invocation finished' record with trace_id %s (got %v)", tid, ids)
			}
			if ids := logTraceIDs(t, w.calleeLogs.String(), ""); !contains(ids, tid.String()) {
				t.Errorf("no callee record with trace_id %s (got %v)", tid, ids)
			}
		})
	}
}

// A Caller built without any SDK tracer (the API's no-op provider) still sends
// a valid traceparent, which the callee continues.
func TestTraceparentWithoutCallerSDK(t *testing.T) {
	w := getWorld(t)
	cfg, err := caller.ConfigFromEnv(func(k string) string {
		return map[string]string{caller.EnvCalleeURL: w.callee.URL, caller.EnvCalleeAudience: audience, caller.EnvSchedule: "0 */5 * * * *"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	sent := &headerLog{next: http.DefaultTransport.(*http.Transport).Clone()}
	c, err := caller.New(cfg, &caller.Options{TracerProvider: noop.NewTracerProvider(), Transport: sent})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	other := &world{callerURL: "http://" + ln.Addr().String()}
	if rep := other.invoke(t, ""); !rep.OK {
		t.Fatalf("run: %+v", rep)
	}
	sc := spanContextOf(t, sent.last())
	srv := waitSpan(t, callee.InstrumentationName, "POST "+callee.FunctionPath, sc.TraceID())
	if srv.Parent().SpanID() != sc.SpanID() {
		t.Errorf("callee span's parent %s, want the traceparent's span %s", srv.Parent().SpanID(), sc.SpanID())
	}
}

// collect reads every metric exported so far, by name.
func collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// total adds the int64 points (sum or gauge) whose attributes include want.
func total(m metricdata.Metrics, want ...attribute.KeyValue) int64 {
	match := func(set attribute.Set) bool {
		for _, kv := range want {
			if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
				return false
			}
		}
		return true
	}
	var n int64
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				n += p.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				n += p.Value
			}
		}
	}
	return n
}

// An allowed call (a timer run), a denied call (another application's valid
// token) and a background token refresh are exported as metrics and spans
// by the programs as shipped: authmw and tokencache report to the global
// providers the application installed.
func TestExportedMetricsAndSpans(t *testing.T) {
	w := getWorld(t)
	outcome := attribute.Key("f2fauth.authmw.outcome")
	reason := attribute.Key("f2fauth.authmw.reason")
	before := collect(t)
	allowedBefore := total(before[authmw.MetricDecisions], outcome.String("allowed"))
	deniedBefore := total(before[authmw.MetricDecisions], outcome.String("denied"), reason.String(string(authmw.ReasonApplicationNotAllowed)))

	// Allowed: one timer run.
	if rep := w.invoke(t, ""); !rep.OK {
		t.Fatalf("run: %+v", rep)
	}
	// Denied: a valid token of an application the callee does not allow.
	tok, err := w.idp.Mint(w.idp.AccessTokenClaims(rogue, audience, 2))
	if err != nil {
		t.Fatal(err)
	}
	deniedTrace := "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodPost, w.callee.URL, strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("traceparent", "00-"+deniedTrace+"-00f067aa0ba902b7-01")
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("rogue call answered %d, want 403", res.StatusCode)
	}
	tid, _ := trace.TraceIDFromHex(deniedTrace)
	srv := waitSpan(t, callee.InstrumentationName, "POST "+callee.FunctionPath, tid)
	if ev := eventAttrs(t, srv, authmw.EventDecision); ev["f2fauth.authmw.reason"] != string(authmw.ReasonApplicationNotAllowed) || ev["f2fauth.caller.appid"] != "" {
		t.Errorf("denied decision event %v: want the reason code and no claim", ev)
	}

	// Token refresh: the token asked to be refreshed after 2 s; wait for the
	// cache's background refresh to be counted.
	background := attribute.Key("f2fauth.tokencache.background")
	deadline := time.Now().Add(20 * time.Second)
	var ms map[string]metricdata.Metrics
	for {
		ms = collect(t)
		if total(ms[tokencache.MetricRequests], background.Bool(true)) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no background refresh counted in %s", tokencache.MetricRequests)
		}
		time.Sleep(100 * time.Millisecond)
	}

	dec := ms[authmw.MetricDecisions]
	if got := total(dec, outcome.String("allowed")) - allowedBefore; got != 1 {
		t.Errorf("allowed decisions +%d, want +1", got)
	}
	if got := total(dec, outcome.String("denied"), reason.String(string(authmw.ReasonApplicationNotAllowed))) - deniedBefore; got != 1 {
		t.Errorf("application_not_allowed decisions +%d, want +1", got)
	}
	for _, name := range []string{authmw.MetricVerificationDuration, authmw.MetricKeyFetches, authmw.MetricKeys,
		tokencache.MetricRequests, tokencache.MetricRequestDuration, tokencache.MetricHits, tokencache.MetricTimeUntilExpiry} {
		if _, ok := ms[name]; !ok {
			t.Errorf("metric %s not exported", name)
		}
	}
	if total(ms[tokencache.MetricRequests], background.Bool(false)) < 1 {
		t.Errorf("the first token (a waiting caller) is not counted in %s", tokencache.MetricRequests)
	}
	if total(ms[tokencache.MetricHits]) < 1 {
		t.Errorf("no cache hit counted in %s", tokencache.MetricHits)
	}
	if g, ok := ms[tokencache.MetricTimeUntilExpiry].Data.(metricdata.Gauge[float64]); !ok || len(g.DataPoints) != 1 || g.DataPoints[0].Value <= 0 {
		t.Errorf("%s: %+v", tokencache.MetricTimeUntilExpiry, ms[tokencache.MetricTimeUntilExpiry].Data)
	}
	if total(ms[authmw.MetricKeys], attribute.String("f2fauth.authmw.issuer", w.idp.IssuerV1())) < 1 {
		t.Errorf("%s reports no key for %s", authmw.MetricKeys, w.idp.IssuerV1())
	}

	var refreshSpans int
	for _, s := range spans.Ended() {
		if s.InstrumentationScope().Name != tokencache.InstrumentationName {
			continue
		}
		for _, kv := range s.Attributes() {
			if kv.Key == background && kv.Value.AsBool() {
				refreshSpans++
			}
		}
	}
	if refreshSpans < 1 {
		t.Error("no span for the background refresh")
	}
}

// In gateway mode the forwarded request carries the callee's span context:
// the upstream application continues the same trace, as a child of the
// callee's server span (the caller's own traceparent is not passed through).
func TestGatewayForwardsTheCalleeSpanContext(t *testing.T) {
	w := getWorld(t)
	var mu sync.Mutex
	var got []string
	app := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Values("Traceparent")...)
		mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	defer app.Close()
	settings := e2e.CalleeSettings(w.idp, audience, appRole, registered.ClientID)
	settings[callee.EnvUpstreamURL] = app.URL
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gw, err := e2e.StartCallee(ctx, settings, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()

	tok, err := w.idp.Mint(w.idp.AccessTokenClaims(registered, audience, 2))
	if err != nil {
		t.Fatal(err)
	}
	const incoming = "00-5d3b8f0e1c2a4b6d8e0f1a2b3c4d5e6f-1a2b3c4d5e6f7081-01"
	req, _ := http.NewRequest(http.MethodGet, gw.BaseURL+"/orders/42", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("traceparent", incoming)
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("gateway answered %d, want the app's 204", res.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("the app received traceparent %q, want exactly one", got)
	}
	fwd := spanContextOf(t, got[0])
	in := spanContextOf(t, incoming)
	srv := waitSpan(t, callee.InstrumentationName, http.MethodGet, in.TraceID())
	if fwd.TraceID() != in.TraceID() || fwd.SpanID() != srv.SpanContext().SpanID() {
		t.Errorf("forwarded traceparent %s, want trace %s and the gateway's span %s", got[0], in.TraceID(), srv.SpanContext().SpanID())
	}
	if srv.Parent().SpanID() != in.SpanID() {
		t.Errorf("gateway span's parent %s, want the caller's %s", srv.Parent().SpanID(), in.SpanID())
	}
}
