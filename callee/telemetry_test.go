package callee

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/f2fauth/f2fauth/internal/testutil"
)

// Without any OpenTelemetry SDK installed (these tests install none), the
// callee still continues the caller's trace: a gateway forwards the caller's
// trace ID, a malformed traceparent is never passed to the upstream, and log
// records of the request carry the caller's trace_id.
func TestTraceContextWithoutSDK(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	_, base := serve(t, gatewayEnv(p, up, nil))
	tok := mint(t, p, allowedID, testAudience)
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	for _, tc := range []struct {
		name, in, tracestate string
		want                 string // the traceparent the upstream gets ("" = none)
	}{
		{"valid traceparent continues", "00-" + traceID + "-b7ad6b7169203331-01", "", "00-" + traceID + "-b7ad6b7169203331-01"},
		{"valid, with tracestate", "00-" + traceID + "-b7ad6b7169203331-00", "vendor=abc", "00-" + traceID + "-b7ad6b7169203331-00"},
		{"malformed is dropped", "00-zzzz-b7ad6b7169203331-01", "vendor=abc", ""},
		{"all-zero trace ID is dropped", "00-00000000000000000000000000000000-b7ad6b7169203331-01", "", ""},
		{"none sent, none forwarded", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newReq(t, http.MethodGet, base+"/x", tok, nil)
			if tc.in != "" {
				req.Header.Set("traceparent", tc.in)
			}
			if tc.tracestate != "" {
				req.Header.Set("tracestate", tc.tracestate)
			}
			if resp, _ := send(t, req); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("status %d", resp.StatusCode)
			}
			got := rc.last(t).Header
			if v := strings.Join(got.Values("Traceparent"), ","); v != tc.want {
				t.Errorf("upstream traceparent %q, want %q", v, tc.want)
			}
			if tc.want == "" && got.Get("Tracestate") != "" {
				t.Errorf("upstream got tracestate %q without a trace", got.Get("Tracestate"))
			}
			if tc.want != "" && got.Get("Tracestate") != tc.tracestate {
				t.Errorf("upstream tracestate %q, want %q", got.Get("Tracestate"), tc.tracestate)
			}
		})
	}
}

// The callee's log records made with the request's context carry the caller's
// trace ID (here authmw's denial, which is always logged).
func TestLogsCarryTraceID(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	buf := &testutil.SyncBuffer{}
	s, err := NewServer(t.Context(), envFor(p, nil), slog.New(slog.NewJSONHandler(buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, FunctionPath, nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", rec.Code)
	}
	found := false
	for _, line := range strings.Split(buf.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" {
			found = true
		}
	}
	if !found {
		t.Errorf("no log record carries the caller's trace_id:\n%s", buf.String())
	}
}

// BenchmarkExclusiveFunctionTraceparent is BenchmarkExclusiveFunction with the
// caller's traceparent, as every call from the caller carries one: the cost of
// continuing the trace (no SDK installed, so nothing is recorded).
func BenchmarkExclusiveFunctionTraceparent(b *testing.B) {
	p := startPlatform(b)
	s, err := NewServer(b.Context(), envFor(p, nil), quietLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.WaitReady(b.Context()); err != nil {
		b.Fatal(err)
	}
	tok, err := p.Mint(p.AccessTokenClaims(allowedID, testAudience, 1))
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, FunctionPath, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
