package tokencache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func collectMetrics(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
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

// matches reports whether set has every key=value of want ("key=" means absent).
func matches(set attribute.Set, want ...string) bool {
	for _, w := range want {
		k, v, _ := strings.Cut(w, "=")
		got, ok := set.Value(attribute.Key(k))
		if v == "" {
			if ok {
				return false
			}
		} else if !ok || got.Emit() != v {
			return false
		}
	}
	return true
}

func sumPoints(t *testing.T, m metricdata.Metrics, want ...string) int64 {
	t.Helper()
	d, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s: data %T", m.Name, m.Data)
	}
	var n int64
	for _, p := range d.DataPoints {
		if matches(p.Attributes, want...) {
			n += p.Value
		}
	}
	return n
}

// A first token (a caller waits), hits, a background refresh and a failed
// background refresh are exported as metrics and spans; the time until expiry
// is observed per scope. The hot path records nothing itself: hits come from
// the cache's counters at collection.
func TestTelemetryRefreshMetricsAndSpans(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(tokenFor(clk, time.Hour))
	c := newTestCache(t, cred, clk, func(o *Options) { o.MeterProvider, o.TracerProvider = mp, tp })
	const scope = "api://callee/.default"
	ctx := context.Background()

	for range 3 {
		if _, err := c.GetToken(ctx, opts(scope)); err != nil {
			t.Fatal(err)
		}
	}
	// Past the refresh point (5 minutes before expiry): the next call is a hit
	// and starts a background refresh.
	clk.Advance(56 * time.Minute)
	if _, err := c.GetToken(ctx, opts(scope)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "background refresh", func() bool { return entryStats(t, c, scope).Refreshes == 2 })
	// The next background refresh fails; the cached token is still served.
	cred.set(func(context.Context, int64, policyOpts) (accessToken, error) {
		return accessToken{}, errors.New("identity endpoint unreachable")
	})
	clk.Advance(56 * time.Minute)
	if _, err := c.GetToken(ctx, opts(scope)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "failed background refresh", func() bool { return entryStats(t, c, scope).Failures >= 1 })

	ms := collectMetrics(t, reader)
	req, ok := ms[MetricRequests]
	if !ok {
		t.Fatalf("%s not exported", MetricRequests)
	}
	for _, tc := range []struct {
		attrs []string
		want  int64
	}{
		{[]string{attrScope + "=" + scope, attrBackground + "=false", attrErrType + "="}, 1},
		{[]string{attrBackground + "=true", attrErrType + "="}, 1},
		{[]string{attrBackground + "=true", attrErrType + "=credential"}, 1},
	} {
		if got := sumPoints(t, req, tc.attrs...); got != tc.want {
			t.Errorf("%s%v = %d, want %d", MetricRequests, tc.attrs, got, tc.want)
		}
	}
	if got := sumPoints(t, ms[MetricHits], attrScope+"="+scope); got != 4 {
		t.Errorf("%s = %d, want 4", MetricHits, got)
	}
	if got := sumPoints(t, ms[MetricMisses], attrScope+"="+scope); got != 1 {
		t.Errorf("%s = %d, want 1", MetricMisses, got)
	}
	g, ok := ms[MetricTimeUntilExpiry].Data.(metricdata.Gauge[float64])
	if !ok || len(g.DataPoints) != 1 || ms[MetricTimeUntilExpiry].Unit != "s" {
		t.Fatalf("%s: %+v", MetricTimeUntilExpiry, ms[MetricTimeUntilExpiry])
	}
	// The refreshed token was issued at +56m for an hour; now is +112m.
	if v := g.DataPoints[0].Value; v != (4 * time.Minute).Seconds() {
		t.Errorf("%s = %v, want 240", MetricTimeUntilExpiry, v)
	}
	if h, ok := ms[MetricRequestDuration].Data.(metricdata.Histogram[float64]); !ok || len(h.DataPoints) != 3 {
		t.Errorf("%s: %+v", MetricRequestDuration, ms[MetricRequestDuration])
	}

	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want one per credential call (3)", len(spans))
	}
	var failed int
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.Emit(), "tok-") {
				t.Errorf("span attribute %s carries a token", kv.Key)
			}
		}
		if s.Status().Code == codes.Error {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d spans with status Error, want 1", failed)
	}
}

// error.type names the identity endpoint's status, or the kind of failure.
func TestCredentialErrorType(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"throttled", &azcore.ResponseError{StatusCode: 429, RawResponse: &http.Response{StatusCode: 429}}, "429"},
		{"too short-lived", fmt.Errorf("%w (expires on …)", errTokenTooShortLived), "token_too_short_lived"},
		{"unusable token", fmt.Errorf("%w: empty", errUnusableToken), "unusable_token"},
		{"panic", fmt.Errorf("%w: boom", errCredentialPanic), "panic"},
		{"abandoned", fmt.Errorf("%w: the credential did not return", errTimeout), "timeout"},
		{"timeout", fmt.Errorf("get token: %w", context.DeadlineExceeded), "timeout"},
		{"canceled", context.Canceled, "canceled"},
		{"other", errors.New("no managed identity endpoint"), "credential"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := credentialErrorType(tc.err); got != tc.want {
				t.Errorf("credentialErrorType = %q, want %q", got, tc.want)
			}
		})
	}
}

// A credential error whose methods block or panic cannot wedge a fetch
// through its telemetry either: the failure is still counted (error.type
// "credential") and the span's message is the cache's own description.
func TestTelemetryHostileCredentialError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func(release chan struct{}) error
	}{
		{"Error blocks", func(r chan struct{}) error { return blockingError{r} }},
		{"Unwrap panics", func(chan struct{}) error { return panickingUnwrap{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			release := make(chan struct{})
			defer close(release)
			cred := &fakeCred{}
			cred.set(func(context.Context, int64, policyOpts) (accessToken, error) { return accessToken{}, tc.err(release) })
			c := newTestCache(t, cred, newFakeClock(), func(o *Options) { o.MeterProvider, o.TracerProvider = mp, tp })
			if _, err := c.GetToken(context.Background(), opts("api://hostile")); !errors.Is(err, ErrNoToken) {
				t.Fatalf("err = %v, want ErrNoToken", err)
			}
			if got := sumPoints(t, collectMetrics(t, reader)[MetricRequests], attrErrType+"=credential"); got != 1 {
				t.Errorf("failed requests with error.type=credential: %d, want 1", got)
			}
			spans := rec.Ended()
			if len(spans) != 1 || spans[0].Status().Code != codes.Error || !strings.Contains(spans[0].Status().Description, "api://hostile") {
				t.Errorf("spans %v", spans)
			}
		})
	}
}
