package caller

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/testutil"

	"github.com/f2fauth/f2fauth/internal/localidp"
)

// These tests run the real azidentity ManagedIdentityCredential against a localidp
// managed-identity endpoint (set through IDENTITY_ENDPOINT/IDENTITY_HEADER, hence no
// t.Parallel) and a fake callee (httptest) that injects the answers under test. Each
// test uses its own audience, because MSAL caches managed-identity tokens process-wide.

var testPlatform *localidp.Platform

func TestMain(m *testing.M) {
	p, err := localidp.Start(localidp.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testPlatform = p
	code := m.Run()
	p.Close()
	os.Exit(code)
}

func guid(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	v := h.Sum64()
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(v>>32), uint16(v>>16), uint16(v)&0xfff, uint16(v>>4)&0xfff, v&0xffffffffffff)
}

// lockedBuffer collects log output from concurrent writers.
type lockedBuffer = testutil.SyncBuffer

type fixture struct {
	c    *Caller
	mi   *localidp.ManagedIdentity
	url  string // the handler's base URL
	logs *lockedBuffer
}

var fixtureSeq atomic.Int64

// newFixture builds a Caller for calleeURL with its own identity and audience and
// serves its Handler on loopback.
func newFixture(t testing.TB, calleeURL string, mutate func(*Config)) *fixture {
	t.Helper()
	// A fresh audience per fixture: MSAL caches managed-identity tokens process-wide
	// by resource, so a repeated test (-count=N) must not find the last one's token.
	aud := fmt.Sprintf("api://callee-%s-%d", guid(t.Name()), fixtureSeq.Add(1))
	mi, err := testPlatform.AddIdentity(localidp.Identity{Name: t.Name(), ClientID: guid("client " + t.Name()), ObjectID: guid("object " + t.Name()),
		AppRoles: map[string][]string{aud: {"Exclusive.Invoke"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mi.Close)
	f := newFixtureAt(t, calleeURL, aud, mi.Endpoint(), mi.Header(), mutate)
	f.mi = mi
	return f
}

// newFixtureAt is newFixture with the managed-identity endpoint and secret given
// (e.g. a hostile endpoint); f.mi is nil.
func newFixtureAt(t testing.TB, calleeURL, aud, endpoint, header string, mutate func(*Config)) *fixture {
	t.Helper()
	t.Setenv("IDENTITY_ENDPOINT", endpoint)
	t.Setenv("IDENTITY_HEADER", header)
	u, err := url.Parse(calleeURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{CalleeURL: u, Audience: aud, Timeout: 10 * time.Second, MaxRetries: 3}
	if mutate != nil {
		mutate(&cfg)
	}
	logs := &lockedBuffer{}
	c, err := New(cfg, &Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(c.Handler())
	t.Cleanup(func() {
		hs.Close()
		c.Close()
		out := logs.String()
		if strings.Contains(out, header) || strings.Contains(out, "eyJ") {
			t.Errorf("caller logs contain a secret (IDENTITY_HEADER or a token)")
		}
	})
	return &fixture{c: c, url: hs.URL, logs: logs}
}

type run struct {
	status int
	resp   InvocationResponse
}

func (f *fixture) invoke(t *testing.T, body string) run {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url+"/"+FunctionName, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(InvocationIDHeader, "00000000-0000-4000-8000-000000000001")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := run{status: resp.StatusCode}
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &r.resp); err != nil {
		t.Fatalf("status %d: body is not an invocation response: %v (%s)", resp.StatusCode, err, data)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	return r
}

func (r run) report() *Report {
	if r.resp.ReturnValue == nil {
		return &Report{}
	}
	return r.resp.ReturnValue
}

func (r run) logs() string { return strings.Join(r.resp.Logs, "\n") }

func payload(pastDue bool) string {
	return fmt.Sprintf(`{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":%t}},"Metadata":{"sys":{"MethodName":"AutoTriggerFunction"}}}`, pastDue)
}

// okCallee answers 200 with a CallerInfo body after checking a bearer token came along.
func okCallee(t testing.TB, hits *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "Bearer ") || strings.Count(auth, ".") != 2 {
			http.Error(w, `{"reason":"missing_token"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"appId":"app-1","objectId":"oid-1","tenantId":"tid-1","roles":["Exclusive.Invoke"],"keyId":"kid-1"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHandlerRoutes(t *testing.T) {
	var hits atomic.Int64
	f := newFixture(t, okCallee(t, &hits).URL, nil)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/", 200},
		{http.MethodGet, "/" + FunctionName, 405},
		{http.MethodPost, "/OtherFunction", 404},
	} {
		req, _ := http.NewRequest(tc.method, f.url+tc.path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s = %d; want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
	if hits.Load() != 0 || f.mi.Requests() != 0 {
		t.Errorf("readiness and misrouted requests reached the callee (%d) or the identity endpoint (%d)", hits.Load(), f.mi.Requests())
	}
}

func TestMalformedPayloadIs400(t *testing.T) {
	var hits atomic.Int64
	f := newFixture(t, okCallee(t, &hits).URL, nil)
	for _, body := range []string{``, `not json`, `{"Data":{}}`, `{"Data":{"timer":"now"}}`, `{"Data":{"timer":{"IsPastDue":"yes"}}}`} {
		r := f.invoke(t, body)
		if r.status != http.StatusBadRequest || len(r.resp.Logs) == 0 {
			t.Errorf("payload %q: status %d logs %q; want 400 with a reason", body, r.status, r.resp.Logs)
		}
	}
	big := `{"Data":{"timer":{"IsPastDue":false}},"Metadata":{"pad":"` + strings.Repeat("x", MaxInvocationBytes) + `"}}`
	if r := f.invoke(t, big); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized payload: status %d; want 413", r.status)
	}
	if hits.Load() != 0 || f.mi.Requests() != 0 {
		t.Errorf("malformed payloads reached the callee (%d) or the identity endpoint (%d)", hits.Load(), f.mi.Requests())
	}
}

func TestRunsReuseTheTokenAndPastDueRunsStillRun(t *testing.T) {
	var hits atomic.Int64
	f := newFixture(t, okCallee(t, &hits).URL, nil)
	for i := range 5 {
		pastDue := i%2 == 1
		r := f.invoke(t, payload(pastDue))
		rep := r.report()
		if r.status != http.StatusOK || !rep.OK || rep.CalleeStatus != 200 || rep.AppID != "app-1" || rep.KeyID != "kid-1" || rep.Attempts != 1 {
			t.Fatalf("run %d: status %d report %+v", i, r.status, rep)
		}
		if rep.PastDue != pastDue || strings.Contains(r.logs(), "past due") != pastDue {
			t.Errorf("run %d: pastDue %v, logs %q", i, rep.PastDue, r.logs())
		}
	}
	if hits.Load() != 5 {
		t.Errorf("callee hits %d; want 5", hits.Load())
	}
	if got := f.mi.Requests(); got != 1 {
		t.Errorf("identity endpoint requests %d; want 1 for 5 runs", got)
	}
	if st := f.c.Stats(); st.Refreshes != 1 || st.Failures != 0 || st.Hits < 5 {
		t.Errorf("token cache stats %+v", st)
	}
}

// scripted is a fake callee answering from a script, one step per request (the last repeats).
type scripted struct {
	mu    sync.Mutex
	steps []func(w http.ResponseWriter)
	hits  int
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := min(s.hits, len(s.steps)-1)
	s.hits++
	step := s.steps[i]
	s.mu.Unlock()
	step(w)
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

func answer(status int, headers map[string]string, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		if body != "" && w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/problem+json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

var ok200 = answer(200, map[string]string{"Content-Type": "application/json"}, `{"appId":"app-1","roles":["Exclusive.Invoke"]}`)

func TestCalleeAnswers(t *testing.T) {
	for _, tc := range []struct {
		name         string
		steps        []func(http.ResponseWriter)
		maxRetries   int
		wantStatus   int
		wantCallee   int
		wantAttempts int
		wantHits     int
		wantReason   string
	}{
		{"503 twice then 200", []func(http.ResponseWriter){answer(503, nil, ""), answer(503, nil, ""), ok200}, 3, 200, 200, 3, 3, ""},
		{"429 with Retry-After then 200", []func(http.ResponseWriter){answer(429, map[string]string{"Retry-After": "1"}, ""), ok200}, 3, 200, 200, 2, 2, ""},
		{"always 500: bounded retries, failed run", []func(http.ResponseWriter){answer(500, nil, `{"status":500,"reason":"boom"}`)}, 2, 502, 500, 3, 3, "boom"},
		{"no retries configured", []func(http.ResponseWriter){answer(503, nil, "")}, 0, 502, 503, 1, 1, ""},
		{"403 is final", []func(http.ResponseWriter){answer(403, nil, `{"status":403,"reason":"application_not_allowed"}`)}, 3, 502, 403, 1, 1, "application_not_allowed"},
		{"401 invalid_token: transport refreshes the token and retries once",
			[]func(http.ResponseWriter){answer(401, map[string]string{"WWW-Authenticate": `Bearer realm="x", error="invalid_token"`}, `{"reason":"token_expired"}`), ok200}, 3, 200, 200, 1, 2, ""},
		{"garbage reason is not echoed", []func(http.ResponseWriter){answer(403, nil, `{"reason":"<script>alert(1)</script>"}`)}, 0, 502, 403, 1, 1, ""},
		{"Retry-After beyond the run's time: not retried", []func(http.ResponseWriter){answer(503, map[string]string{"Retry-After": "3600"}, ""), ok200}, 3, 502, 503, 1, 1, ""},
		{"101 is not a final answer", []func(http.ResponseWriter){answer(101, nil, ""), ok200}, 3, 502, 101, 1, 1, "the callee answered with an interim status, not a final answer"},
		{"redirects are not followed", []func(http.ResponseWriter){answer(302, map[string]string{"Location": "https://example.com/steal"}, "")}, 3, 502, 302, 1, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scripted{steps: tc.steps}
			srv := httptest.NewServer(s)
			defer srv.Close()
			f := newFixture(t, srv.URL, func(c *Config) { c.MaxRetries = tc.maxRetries })
			r := f.invoke(t, payload(false))
			rep := r.report()
			if r.status != tc.wantStatus || rep.CalleeStatus != tc.wantCallee || rep.Attempts != tc.wantAttempts || s.count() != tc.wantHits || rep.Reason != tc.wantReason {
				t.Fatalf("status %d callee %d attempts %d hits %d reason %q; want %d %d %d %d %q (logs %q)",
					r.status, rep.CalleeStatus, rep.Attempts, s.count(), rep.Reason,
					tc.wantStatus, tc.wantCallee, tc.wantAttempts, tc.wantHits, tc.wantReason, r.logs())
			}
			if tc.wantStatus != 200 && !strings.Contains(r.logs(), fmt.Sprint(tc.wantCallee)) {
				t.Errorf("failed run logs %q do not give the callee's status", r.logs())
			}
		})
	}
}

func TestCalleeThatHangsEndsTheRunWith504(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	f := newFixture(t, srv.URL, func(c *Config) { c.Timeout = 500 * time.Millisecond })
	r := f.invoke(t, payload(false))
	if rep := r.report(); r.status != http.StatusGatewayTimeout || !rep.Timeout || rep.OK {
		t.Fatalf("status %d report %+v; want 504 with timeout", r.status, rep)
	}
	if !strings.Contains(r.logs(), "timeout") {
		t.Errorf("logs %q; want the reason", r.logs())
	}
}

func TestNoTokenFailsTheRunWithoutCallingTheCallee(t *testing.T) {
	var hits atomic.Int64
	f := newFixture(t, okCallee(t, &hits).URL, nil)
	f.mi.SetFailure(http.StatusBadRequest, "") // azidentity does not retry 400
	r := f.invoke(t, payload(false))
	rep := r.report()
	if r.status != http.StatusBadGateway || !rep.NoToken || rep.CalleeStatus != 0 || !strings.Contains(r.logs(), "no token: ") {
		t.Fatalf("status %d report %+v logs %q; want 502 no token", r.status, rep, r.logs())
	}
	if strings.Contains(r.logs(), f.mi.Header()) {
		t.Error("logs contain IDENTITY_HEADER")
	}
	if hits.Load() != 0 {
		t.Errorf("callee called %d times without a token", hits.Load())
	}
	// The cache remembers the failure for its backoff: the next run fails too,
	// without asking the identity endpoint again (tokencache's resilience tests
	// cover the recovery once the backoff has passed).
	asked := f.mi.Requests()
	f.mi.SetFailure(0, "")
	if r := f.invoke(t, payload(false)); r.status != http.StatusBadGateway || !r.report().NoToken {
		t.Fatalf("run inside the failure backoff: status %d report %+v", r.status, r.report())
	}
	if n := f.mi.Requests(); n != asked {
		t.Errorf("identity endpoint asked %d more times inside the failure backoff", n-asked)
	}
	if hits.Load() != 0 {
		t.Errorf("callee called %d times without a token", hits.Load())
	}
}

// SIGTERM (here: Serve's context ending, which is what Run's signal.NotifyContext
// does) cancels the runs in flight; each still answers its invocation, and Serve
// returns cleanly. TestRunAnswersInFlightRunsOnSIGTERM sends a real SIGTERM.
func TestServeCancelsAndAnswersInFlightRunsOnShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(entered) })
		select { // a callee that would hold the run for its whole timeout
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	f := newFixture(t, srv.URL, func(c *Config) { c.Timeout = 4 * time.Minute })
	if f.c.server.shutdown < f.c.cfg.Timeout {
		t.Errorf("shutdown waits %v, less than a run may take (%v)", f.c.server.shutdown, f.c.cfg.Timeout)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- f.c.Serve(ctx, ln) }()

	done := make(chan run, 1)
	go func() {
		g := *f
		g.url = "http://" + ln.Addr().String()
		done <- g.invoke(t, payload(false))
	}()
	<-entered
	cancel()
	var r run
	select {
	case r = <-done:
	case <-time.After(time.Minute): // failure guard only
		t.Fatal("the in-flight run was not answered after shutdown began")
	}
	rep := r.report()
	if r.status != http.StatusServiceUnavailable || !rep.Cancelled || rep.OK || !strings.Contains(r.logs(), "shutting down") {
		t.Fatalf("in-flight run: status %d report %+v logs %q; want 503, cancelled, reason naming the shutdown", r.status, rep, r.logs())
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestRunReportsConfigurationErrors(t *testing.T) {
	err := Run(context.Background(), func(string) string { return "" }, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), EnvCalleeURL) || !strings.Contains(err.Error(), EnvCalleeAudience) {
		t.Fatalf("Run with an empty environment: %v; want an error naming %s and %s", err, EnvCalleeURL, EnvCalleeAudience)
	}
}
