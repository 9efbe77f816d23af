package authmw

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/authmw/authmwtest"
	"github.com/f2fauth/f2fauth/internal/testutil"
)

const otherTenantID = "0b9b1d6e-0000-4000-8000-00000000dead"

// newHealthIssuer starts an authmwtest issuer.
func newHealthIssuer(t *testing.T) *authmwtest.Issuer {
	t.Helper()
	iss, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iss.Close)
	return iss
}

// newHealthMiddleware builds a Middleware trusting pol's issuers, logging JSON to logs.
func newHealthMiddleware(t *testing.T, pol Policy, logs *testutil.SyncBuffer) *Middleware {
	t.Helper()
	pol.Audiences = []string{testAudience}
	pol.AllowedApplications = []string{testClientID}
	cfg := Config{Policy: pol}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// readinessError waits until ReadinessError reports a failure (not only "loading").
func readinessError(t *testing.T, m *Middleware) *ReadinessError {
	t.Helper()
	var re *ReadinessError
	waitUntil(t, "a readiness failure", func() bool {
		err := m.ReadinessError()
		var ok bool
		re, ok = errors.AsType[*ReadinessError](err)
		return ok && len(re.Sources) > 0
	})
	return re
}

// The classification: 4xx on discovery (Entra's 400 AADSTS90002 for an
// unknown tenant), an issuer mismatch and a key set without a usable key are
// permanent; connection refused, 5xx and 429 are transient. Each names the
// app setting to check.
func TestReadinessErrorClassifies(t *testing.T) {
	t.Parallel()
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return "http://" + ln.Addr().String()
	}()
	tests := []struct {
		name      string
		setup     func(iss *authmwtest.Issuer) Policy
		class     error
		setting   string
		inMessage []string
	}{
		{"unknown tenant, Entra 400 AADSTS90002", func(iss *authmwtest.Issuer) Policy {
			iss.SetDiscoveryFault(authmwtest.UnknownTenant(otherTenantID))
			return Policy{TenantID: otherTenantID, AuthorityHost: iss.AuthorityURL()}
		}, ErrSourcePermanent, "AUTHMW_TENANT_ID", []string{"HTTP status 400", "AADSTS90002", "check that AUTHMW_TENANT_ID"}},
		{"authority answering 404", func(iss *authmwtest.Issuer) Policy {
			iss.SetDiscoveryFault(&authmwtest.Fault{Status: 404, Body: `{}`})
			return Policy{TenantID: iss.TenantID(), AuthorityHost: iss.AuthorityURL()}
		}, ErrSourcePermanent, "AUTHMW_AUTHORITY_HOST", []string{"HTTP status 404"}},
		{"issuer mismatch (trailing slash)", func(iss *authmwtest.Issuer) Policy {
			return Policy{Issuers: []string{iss.IssuerV2() + "/"}}
		}, ErrSourcePermanent, "AUTHMW_ISSUER", []string{"issuer mismatch", "trailing slash"}},
		{"key set without a usable key", func(iss *authmwtest.Issuer) Policy {
			iss.SetJWKSFault(authmwtest.NoUsableKeys())
			return Policy{Issuers: []string{iss.IssuerV2()}}
		}, ErrSourcePermanent, "AUTHMW_ISSUER", []string{"no usable key", "AUTHMW_ALGORITHMS"}},
		{"authority 503", func(iss *authmwtest.Issuer) Policy {
			iss.SetDown(true)
			return Policy{TenantID: iss.TenantID(), AuthorityHost: iss.AuthorityURL()}
		}, ErrSourceTransient, "AUTHMW_AUTHORITY_HOST", []string{"HTTP status 503", "outbound access"}},
		{"authority 429", func(iss *authmwtest.Issuer) Policy {
			iss.SetDiscoveryFault(&authmwtest.Fault{Status: 429, Body: `{}`, RetryAfter: "1"})
			return Policy{Issuers: []string{iss.IssuerV2()}}
		}, ErrSourceTransient, "AUTHMW_ISSUER", []string{"HTTP status 429"}},
		{"connection refused", func(*authmwtest.Issuer) Policy {
			return Policy{Issuers: []string{refused + "/tenant/v2.0"}}
		}, ErrSourceTransient, "AUTHMW_ISSUER", []string{"outbound access"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			iss := newHealthIssuer(t)
			m := newHealthMiddleware(t, tt.setup(iss), nil)
			re := readinessError(t, m)
			if !errors.Is(re, ErrNotReady) || !errors.Is(re, tt.class) {
				t.Fatalf("readiness error %v: want ErrNotReady and %v", re, tt.class)
			}
			src := re.Sources[0]
			if src.Setting != tt.setting {
				t.Errorf("setting %q, want %q: %v", src.Setting, tt.setting, src)
			}
			if got := src.Permanent(); got != (tt.class == ErrSourcePermanent) || (re.Permanent() != nil) != got {
				t.Errorf("Permanent() = %v for %v", got, src)
			}
			msg := re.Error()
			for _, w := range append(tt.inMessage, tt.setting, "check ") {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q: %s", w, msg)
				}
			}
			// In tenant mode two issuers (v1, v2) fail, not necessarily together:
			// the one the readiness error names is the one to look at.
			want := map[error]string{ErrSourcePermanent: "permanent", ErrSourceTransient: "transient"}[tt.class]
			h := m.Health()
			if h.Ready || !slices.ContainsFunc(h.Issuers, func(ih IssuerHealth) bool { return ih.DiscoveryURL == src.URL && ih.Failure == want }) {
				t.Errorf("health %+v, want %s failure of %s", h, want, src.URL)
			}
		})
	}
}

// A Middleware whose keys are loaded reports no readiness error and a health
// snapshot with its keys, their last refresh and the policy version.
func TestHealthWhenReady(t *testing.T) {
	t.Parallel()
	iss := newHealthIssuer(t)
	m := newHealthMiddleware(t, Policy{TenantID: iss.TenantID(), AuthorityHost: iss.AuthorityURL()}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.ReadinessError(); err != nil {
		t.Fatalf("ReadinessError after WaitReady: %v", err)
	}
	h := m.Health()
	if !h.Ready || h.PolicyVersion == "" || h.PolicyGeneration != 0 || len(h.Issuers) != 2 {
		t.Fatalf("health %+v", h)
	}
	for i, ih := range h.Issuers {
		if ih.Setting != "AUTHMW_TENANT_ID" || !ih.KeysLoaded || ih.Keys != 1 || ih.LastKeyRefresh.IsZero() ||
			ih.Failure != "" || !ih.FailingSince.IsZero() || ih.Issuer == "" || ih.JWKSURI == "" {
			t.Errorf("issuer %d: %+v", i, ih)
		}
	}
	if h.Issuers[0].Tokens != "v1.0" || h.Issuers[1].Tokens != "v2.0" {
		t.Errorf("tokens %q %q", h.Issuers[0].Tokens, h.Issuers[1].Tokens)
	}
	// The JSON holds no key material.
	b, _ := json.Marshal(h)
	for _, bad := range []string{`"n":`, `"e":`, "BEGIN", "PRIVATE"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("health JSON holds %q: %s", bad, b)
		}
	}
	// A policy change shows in the version and the generation.
	p := m.Policy()
	p.AllowedApplications = []string{testClientID, "22222222-2222-3333-4444-555555555555"}
	if err := m.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	if h2 := m.Health(); h2.PolicyVersion == h.PolicyVersion || h2.PolicyGeneration != 1 {
		t.Errorf("after SetPolicy: version %q (was %q), generation %d", h2.PolicyVersion, h.PolicyVersion, h2.PolicyGeneration)
	}
}

// Closing a Middleware while a discovery is in flight logs nothing: before the
// fix a "discovery failed: … context canceled" warning preceded every
// configuration error that made the program close it.
func TestNoDiscoveryWarningAfterClose(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	defer hang.Close()
	logs := &testutil.SyncBuffer{}
	pol := Policy{Issuers: []string{hang.URL + "/tenant/v2.0"}, Audiences: []string{testAudience}, AllowedApplications: []string{testClientID}}
	m, err := New(context.Background(), Config{Policy: pol, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	m.Close()
	if out := logs.String(); strings.Contains(out, "discovery failed") || strings.Contains(out, "context canceled") {
		t.Errorf("Close logged a failure:\n%s", out)
	}
}

// Discovery failures are WARN while young and ERROR once they have lasted
// jwks.ErrorLogAfter (the clock is moved by back-dating the first failure).
func TestDiscoveryFailureEscalatesToError(t *testing.T) {
	t.Parallel()
	iss := newHealthIssuer(t)
	iss.SetDown(true)
	logs := &testutil.SyncBuffer{}
	m := newHealthMiddleware(t, Policy{Issuers: []string{iss.IssuerV2()}}, logs)
	readinessError(t, m)
	level := func(line string) string {
		var rec struct{ Level, Msg string }
		_ = json.Unmarshal([]byte(line), &rec)
		if rec.Msg != "authmw: issuer discovery failed; retrying" {
			return ""
		}
		return rec.Level
	}
	levels := func() (warn, errs int) {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			switch level(sc.Text()) {
			case "WARN":
				warn++
			case "ERROR":
				errs++
			}
		}
		return warn, errs
	}
	if w, e := levels(); w == 0 || e != 0 {
		t.Fatalf("first failures: %d WARN, %d ERROR; want WARN only:\n%s", w, e, logs)
	}
	m.mu.Lock()
	m.specs[0].failingSince = time.Now().Add(-2 * time.Minute)
	m.mu.Unlock()
	waitUntil(t, "an ERROR record", func() bool { _, e := levels(); return e > 0 })
	if strings.Contains(logs.String(), "Policy.Issuers[0]\"") {
		t.Errorf("the setting is named by its Go field alone:\n%s", logs)
	}
	if !strings.Contains(logs.String(), `"setting":"AUTHMW_ISSUER"`) || !strings.Contains(logs.String(), `"retry_in_ms":`) {
		t.Errorf("log keys:\n%s", logs)
	}
}

// Audit records: an allowed decision has no "status" key (nothing was sent
// yet) and every record carries duration_ms as a number; a denial keeps its
// status and reason.
func TestAuditRecordKeys(t *testing.T) {
	t.Parallel()
	iss := newHealthIssuer(t)
	logs := &testutil.SyncBuffer{}
	m := newHealthMiddleware(t, Policy{Issuers: []string{iss.IssuerV2()}}, logs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	defer srv.Close()
	tok, err := iss.AppToken(authmwtest.App{AppID: testClientID}, testAudience, authmwtest.V2)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range []string{"Bearer " + tok, "Bearer garbage"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/x", nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var allowed, denied map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["msg"] != auditMsg {
			continue
		}
		switch rec["outcome"] {
		case "allowed":
			allowed = rec
		case "denied":
			denied = rec
		}
	}
	if allowed == nil || denied == nil {
		t.Fatalf("audit records missing:\n%s", logs)
	}
	if _, ok := allowed["status"]; ok {
		t.Errorf("allowed record has a status: %v", allowed)
	}
	if _, ok := allowed["reason"]; ok {
		t.Errorf("allowed record has a reason: %v", allowed)
	}
	for _, rec := range []map[string]any{allowed, denied} {
		if _, ok := rec["duration_ms"].(float64); !ok {
			t.Errorf("record without a numeric duration_ms: %v", rec)
		}
		if _, ok := rec["duration"]; ok {
			t.Errorf("record with a unit-less duration: %v", rec)
		}
	}
	if denied["status"] != float64(401) || denied["reason"] != string(ReasonMalformedToken) {
		t.Errorf("denied record: %v", denied)
	}
	if strings.Contains(logs.String(), tok[strings.LastIndex(tok, ".")+1:]) {
		t.Error("the token's signature is in the logs")
	}
}

// WaitReady's error when it gives up says why, with one "authmw:" prefix.
func TestWaitReadyErrorNamesTheSetting(t *testing.T) {
	t.Parallel()
	iss := newHealthIssuer(t)
	iss.SetDown(true)
	m := newHealthMiddleware(t, Policy{Issuers: []string{iss.IssuerV2()}}, nil)
	readinessError(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := m.WaitReady(ctx)
	if !errors.Is(err, ErrNotReady) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrSourceTransient) {
		t.Fatalf("WaitReady = %v", err)
	}
	msg := err.Error()
	if strings.Count(msg, "authmw: ") != 1 || !strings.Contains(msg, "AUTHMW_ISSUER") || strings.Contains(msg, "\n") {
		t.Errorf("WaitReady error: %s", msg)
	}
	m.Close()
	if err := m.WaitReady(context.Background()); !errors.Is(err, ErrNotReady) || strings.Count(err.Error(), "authmw: ") != 1 {
		t.Errorf("WaitReady after Close = %v", err)
	}
}
