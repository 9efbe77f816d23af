package authmw

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/f2fauth/f2fauth/internal/localidp"
)

// otelEnv is a testEnv whose Middleware reports to in-memory OpenTelemetry
// providers.
type otelEnv struct {
	*testEnv
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
}

func newOTelEnv(t *testing.T, hook func(*testEnv), opts ...envOption) *otelEnv {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { mp.Shutdown(context.Background()); tp.Shutdown(context.Background()) })
	opts = append([]envOption{func(c *Config) {
		c.MeterProvider, c.TracerProvider = mp, tp
		c.Policy.InsecureAllowAnyCaller = false
		c.Policy.AllowedApplications = []string{testClientID}
	}}, opts...)
	return &otelEnv{testEnv: newEnvHook(t, hook, opts...), reader: reader, spans: rec, tp: tp}
}

// serve sends one request with tok through m.Handler inside a server span, as
// an application's instrumented server would, and returns the status and the
// ended span.
func (e *otelEnv) serve(tok string) (int, sdktrace.ReadOnlySpan) {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	ctx, span := e.tp.Tracer("test-server").Start(req.Context(), "GET /api/x", trace.WithSpanKind(trace.SpanKindServer))
	rec := httptest.NewRecorder()
	e.m.Handler(http.HandlerFunc(echoPrincipalHandler)).ServeHTTP(rec, req.WithContext(ctx))
	span.End()
	for _, s := range e.spans.Ended() {
		if s.SpanContext().SpanID() == span.SpanContext().SpanID() {
			return rec.Code, s
		}
	}
	e.t.Fatal("server span not recorded")
	return 0, nil
}

func (e *otelEnv) collect() metricdata.ResourceMetrics {
	e.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(context.Background(), &rm); err != nil {
		e.t.Fatal(err)
	}
	return rm
}

// findMetric returns the metric called name in rm.
func findMetric(t *testing.T, rm metricdata.ResourceMetrics, name string) metricdata.Metrics {
	t.Helper()
	m, ok := lookupMetric(rm, name)
	if !ok {
		t.Fatalf("metric %s not exported", name)
	}
	return m
}

func lookupMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// hasAttrs reports whether set has every key=value of want ("key=" means absent).
func hasAttrs(set attribute.Set, want ...string) bool {
	for _, w := range want {
		k, v, _ := strings.Cut(w, "=")
		got, ok := set.Value(attribute.Key(k))
		if v == "" {
			if ok {
				return false
			}
			continue
		}
		if !ok || got.Emit() != v {
			return false
		}
	}
	return true
}

// sumInt64 adds the points of an int64 sum or gauge whose attributes match want.
func sumInt64(t *testing.T, m metricdata.Metrics, want ...string) int64 {
	t.Helper()
	var n int64
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if hasAttrs(p.Attributes, want...) {
				n += p.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if hasAttrs(p.Attributes, want...) {
				n += p.Value
			}
		}
	default:
		t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
	}
	return n
}

// histCount counts the recordings of a float64 histogram whose attributes match want.
func histCount(t *testing.T, m metricdata.Metrics, want ...string) uint64 {
	t.Helper()
	d, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
	}
	var n uint64
	for _, p := range d.DataPoints {
		if hasAttrs(p.Attributes, want...) {
			n += p.Count
		}
	}
	return n
}

// decisionEvent returns the decision event of span s as a map.
func decisionEvent(t *testing.T, s sdktrace.ReadOnlySpan) map[string]string {
	t.Helper()
	var found map[string]string
	for _, ev := range s.Events() {
		if ev.Name != EventDecision {
			continue
		}
		if found != nil {
			t.Fatalf("span %q has several decision events", s.Name())
		}
		found = map[string]string{}
		for _, kv := range ev.Attributes {
			found[string(kv.Key)] = kv.Value.Emit()
		}
	}
	if found == nil {
		t.Fatalf("span %q has no %s event", s.Name(), EventDecision)
	}
	return found
}

// An allowed call (verified, then from the cache), a denied call and a call
// without a token are counted by outcome and reason, timed cached and
// uncached, and recorded as events on the request's span that carry the
// reason code and, for the allowed caller, only appid, oid and tid.
func TestTelemetryDecisionsMetricsAndSpanEvents(t *testing.T) {
	e := newOTelEnv(t, nil)
	e.waitReady()
	allowed := e.mint(e.claims(2))
	rogue := localidp.Identity{ClientID: "99999999-8888-7777-6666-555555555555", ObjectID: "44444444-3333-2222-1111-000000000000"}
	denied := e.mint(e.idp.AccessTokenClaims(rogue, testAudience, 2))

	type call struct {
		name   string
		tok    string
		status int
		event  map[string]string
	}
	calls := []call{
		{"allowed, verified", allowed, 200, map[string]string{attrOutcome: "allowed", attrAppID: testClientID, attrOID: testObjectID, attrTID: e.idp.TenantID()}},
		{"allowed, cached", allowed, 200, map[string]string{attrOutcome: "allowed", attrAppID: testClientID, attrOID: testObjectID, attrTID: e.idp.TenantID()}},
		{"denied, other application", denied, 403, map[string]string{attrOutcome: "denied", attrReason: string(ReasonApplicationNotAllowed)}},
		{"denied, no token", "", 401, map[string]string{attrOutcome: "denied", attrReason: string(ReasonMissingToken)}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			status, span := e.serve(c.tok)
			if status != c.status {
				t.Fatalf("status %d, want %d", status, c.status)
			}
			ev := decisionEvent(t, span)
			if len(ev) != len(c.event) {
				t.Errorf("event attributes %v, want exactly %v", ev, c.event)
			}
			for k, v := range c.event {
				if ev[k] != v {
					t.Errorf("event %s = %q, want %q", k, ev[k], v)
				}
			}
			for k, v := range ev {
				if c.tok != "" && strings.Contains(c.tok, v) && len(v) > 40 {
					t.Errorf("event attribute %s carries part of the token", k)
				}
			}
		})
	}

	rm := e.collect()
	dec := findMetric(t, rm, MetricDecisions)
	if dec.Unit != "{decision}" {
		t.Errorf("%s unit %q", dec.Name, dec.Unit)
	}
	for _, tc := range []struct {
		attrs []string
		want  int64
	}{
		{[]string{attrOutcome + "=allowed", attrReason + "="}, 2},
		{[]string{attrOutcome + "=denied", attrReason + "=" + string(ReasonApplicationNotAllowed)}, 1},
		{[]string{attrOutcome + "=denied", attrReason + "=" + string(ReasonMissingToken)}, 1},
	} {
		if got := sumInt64(t, dec, tc.attrs...); got != tc.want {
			t.Errorf("%s%v = %d, want %d", MetricDecisions, tc.attrs, got, tc.want)
		}
	}
	lat := findMetric(t, rm, MetricVerificationDuration)
	if lat.Unit != "s" {
		t.Errorf("%s unit %q", lat.Name, lat.Unit)
	}
	for _, tc := range []struct {
		attrs []string
		want  uint64
	}{
		{[]string{attrCached + "=false", attrOutcome + "=allowed"}, 1},
		{[]string{attrCached + "=true", attrOutcome + "=allowed"}, 1},
		{[]string{attrCached + "=false", attrOutcome + "=denied"}, 1}, // the request without a token never reaches verification
	} {
		if got := histCount(t, lat, tc.attrs...); got != tc.want {
			t.Errorf("%s%v count = %d, want %d", MetricVerificationDuration, tc.attrs, got, tc.want)
		}
	}
	fetches := findMetric(t, rm, MetricKeyFetches)
	if got := sumInt64(t, fetches, attrDocument+"=discovery", attrErrType+"="); got != 2 {
		t.Errorf("successful discovery fetches = %d, want 2 (v1 and v2)", got)
	}
	if got := sumInt64(t, fetches, attrDocument+"=jwks", attrErrType+"="); got < 1 {
		t.Errorf("successful JWKS fetches = %d, want at least 1", got)
	}
	keys := findMetric(t, rm, MetricKeys)
	for _, iss := range []string{e.idp.IssuerV1(), e.idp.IssuerV2()} {
		if got := sumInt64(t, keys, attrIssuer+"="+iss); got < 1 {
			t.Errorf("%s{issuer=%s} = %d, want at least 1", MetricKeys, iss, got)
		}
	}

	var fetchSpans int
	for _, s := range e.spans.Ended() {
		if strings.HasPrefix(s.Name(), "authmw fetch ") {
			fetchSpans++
			if s.SpanKind() != trace.SpanKindClient || s.EndTime().Before(s.StartTime()) {
				t.Errorf("fetch span %q: kind %v, %v..%v", s.Name(), s.SpanKind(), s.StartTime(), s.EndTime())
			}
		}
	}
	if fetchSpans < 3 {
		t.Errorf("%d fetch spans, want the 2 discoveries and at least 1 JWKS load", fetchSpans)
	}
}

// While the issuer is down, discovery failures are counted as transient and
// the issuers report 0 keys; once it is back, keys are loaded.
func TestTelemetryKeyFetchFailures(t *testing.T) {
	e := newOTelEnv(t, func(e *testEnv) { e.idp.SetDown(true) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		rm := e.collect()
		if m, ok := lookupMetric(rm, MetricKeyFetches); ok && sumInt64(t, m, attrDocument+"=discovery", attrErrType+"=transient") >= 2 {
			keys := findMetric(t, rm, MetricKeys)
			if got := sumInt64(t, keys); got != 0 {
				t.Errorf("%s = %d while the issuer is down, want 0", MetricKeys, got)
			}
			if n := len(keys.Data.(metricdata.Gauge[int64]).DataPoints); n != 2 {
				t.Errorf("%s has %d points while down, want one per issuer (2)", MetricKeys, n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no transient discovery failure recorded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status, _ := e.serve(e.mint(e.claims(2))); status != http.StatusServiceUnavailable {
		t.Fatalf("status %d while keys are unavailable, want 503", status)
	}
	e.idp.SetDown(false)
	e.waitReady()
	rm := e.collect()
	if got := sumInt64(t, findMetric(t, rm, MetricKeys), attrIssuer+"="+e.idp.IssuerV2()); got < 1 {
		t.Errorf("%s{v2} = %d after recovery", MetricKeys, got)
	}
	if got := sumInt64(t, findMetric(t, rm, MetricDecisions), attrReason+"="+string(ReasonKeysUnavailable)); got != 1 {
		t.Errorf("keys_unavailable decisions = %d, want 1", got)
	}
}

// Without providers (the global no-op ones) nothing is recorded and nothing
// breaks; a span in the request's context that is not recording gets no event.
func TestTelemetryNoSDK(t *testing.T) {
	e := newEnv(t)
	tok := e.mint(e.claims(2))
	for range 2 {
		if r := e.get(tok); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
	if e.m.tel.latency.Enabled(context.Background()) || e.m.tel.decisions.Enabled(context.Background()) {
		t.Error("instruments enabled without an SDK")
	}
}

// BenchmarkHandlerCachedOTel is BenchmarkHandlerCached with a metrics SDK
// installed: every decision and latency is recorded.
func BenchmarkHandlerCachedOTel(b *testing.B) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	e, tok := benchEnv(b, func(c *Config) { c.MeterProvider = mp })
	h := e.m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// BenchmarkTelemetryHooksNoSDK is everything the OpenTelemetry hooks add to a
// cached request when no SDK is installed (the default): the decision hook,
// and the verification clock check before and after the cache lookup.
func BenchmarkTelemetryHooksNoSDK(b *testing.B) {
	e, _ := benchEnv(b)
	req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
	p := &Principal{AppID: testClientID}
	ctx := req.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t0 := e.m.tel.verifyStart(ctx)
		e.m.tel.verified(ctx, t0, true, nil)
		e.m.recordDecision(req, p, nil)
	}
}
