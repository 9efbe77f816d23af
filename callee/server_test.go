package callee

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/f2fauth/f2fauth/internal/localidp"
)

const (
	testAudience = "api://callee"
	testRole     = "Exclusive.Invoke"
)

var (
	allowedID = localidp.Identity{Name: "allowed", ClientID: "11111111-1111-4111-8111-111111111111", ObjectID: "22222222-2222-4222-8222-222222222222",
		AppRoles: map[string][]string{testAudience: {testRole}}}
	rogueID = localidp.Identity{Name: "rogue", ClientID: "66666666-6666-4666-8666-666666666666", ObjectID: "77777777-7777-4777-8777-777777777777"}
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startPlatform starts a local identity platform for one test.
func startPlatform(t testing.TB) *localidp.Platform {
	t.Helper()
	p, err := localidp.Start(localidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// envFor is the callee's test environment as a lookup function: a key in the map is
// set, even to "".
func envFor(p *localidp.Platform, extra map[string]string) func(string) (string, bool) {
	env := map[string]string{
		"AUTHMW_TENANT_ID":            p.TenantID(),
		"AUTHMW_AUTHORITY_HOST":       p.AuthorityURL(),
		"AUTHMW_AUDIENCES":            testAudience,
		"AUTHMW_ALLOWED_APPLICATIONS": allowedID.ClientID,
		"AUTHMW_REQUIRED_ROLES":       testRole,
	}
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// serve runs a Server built from lookup on a loopback port until the test ends.
func serve(t *testing.T, lookup func(string) (string, bool)) (*Server, string) {
	t.Helper()
	ctx := context.Background()
	s, err := NewServer(ctx, lookup, quietLogger())
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		s.Close()
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := s.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	return s, "http://" + ln.Addr().String()
}

func mint(t *testing.T, p *localidp.Platform, id localidp.Identity, aud string) string {
	t.Helper()
	tok, err := p.Mint(p.AccessTokenClaims(id, aud, 1))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestNewServerReportsEveryProblemNamingTheVariable(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"CALLEE_LOG_LEVEL":             "loud",
		"FUNCTIONS_CUSTOMHANDLER_PORT": "http",
		"AUTHMW_TENANT_ID":             "7c3e9f2a-4b1d-4e8a-9f6c-2d5b8a1ef2fa",
		// AUTHMW_AUDIENCES missing
	}
	_, err := NewServer(context.Background(), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, quietLogger())
	if err == nil {
		t.Fatal("NewServer accepted a bad configuration")
	}
	for _, name := range []string{"CALLEE_LOG_LEVEL", "FUNCTIONS_CUSTOMHANDLER_PORT", "AUTHMW_AUDIENCES"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

// TestEmptiedAllowListAcceptsNobody: an AUTHMW_* allow-list set to "" (an app setting
// emptied, not removed) reaches authmw as set, so it accepts nobody; it never turns the
// check off.
func TestEmptiedAllowListAcceptsNobody(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	_, base := serve(t, envFor(p, map[string]string{"AUTHMW_ALLOWED_APPLICATIONS": ""}))
	r := do(t, http.MethodPost, base+FunctionPath, mint(t, p, allowedID, testAudience), nil)
	if reason, _ := r.body["reason"].(string); r.status != http.StatusForbidden || reason != "application_not_allowed" {
		t.Fatalf("status %d reason %q; want 403 application_not_allowed", r.status, reason)
	}
}

func TestRunFailsFastOnBadConfiguration(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := Run(ctx, func(string) (string, bool) { return "", false }, quietLogger())
	if err == nil || !strings.Contains(err.Error(), "AUTHMW_AUDIENCES") {
		t.Fatalf("Run with an empty environment: %v; want an error naming AUTHMW_AUDIENCES", err)
	}
}

func TestListenAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"default", nil, "127.0.0.1:8080", ""},
		{"custom handler port wins", map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "7071", "PORT": "9000"}, "127.0.0.1:7071", ""},
		{"PORT fallback", map[string]string{"PORT": "9000"}, "127.0.0.1:9000", ""},
		{"not a number", map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "eighty"}, "", "FUNCTIONS_CUSTOMHANDLER_PORT"},
		{"out of range", map[string]string{"PORT": "70000"}, "", "PORT"},
		{"container listen host", map[string]string{"CALLEE_LISTEN_HOST": "0.0.0.0", "PORT": "9000"}, "0.0.0.0:9000", ""},
		{"bad listen host", map[string]string{"CALLEE_LISTEN_HOST": "example.com"}, "", "CALLEE_LISTEN_HOST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ListenAddr(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ListenAddr: %v; want error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ListenAddr = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]slog.Level{"": slog.LevelInfo, "DEBUG": slog.LevelDebug, "warn": slog.LevelWarn, "error": slog.LevelError} {
		got, err := LogLevel(func(string) string { return in })
		if err != nil || got != want {
			t.Errorf("LogLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := LogLevel(func(string) string { return "verbose" }); err == nil || !strings.Contains(err.Error(), EnvLogLevel) {
		t.Errorf("LogLevel(verbose): %v; want an error naming %s", err, EnvLogLevel)
	}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func do(t *testing.T, method, url, token string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header}
	_ = json.Unmarshal(data, &r.body)
	return r
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	_, base := serve(t, envFor(p, map[string]string{"AUTHMW_EXCLUDED_PATHS": HealthzPath}))
	_, baseNoExcl := serve(t, envFor(p, nil))
	_, baseAnon := serve(t, envFor(p, map[string]string{"AUTHMW_UNAUTHENTICATED_ACTION": "AllowAnonymous"}))
	good := mint(t, p, allowedID, testAudience)
	rogue := mint(t, p, rogueID, testAudience)
	noRole := mint(t, p, localidp.Identity{ClientID: allowedID.ClientID, ObjectID: allowedID.ObjectID}, testAudience)
	wrongAud := mint(t, p, allowedID, "api://someone-else")

	for _, tc := range []struct {
		name       string
		method     string
		url        string
		token      string
		header     map[string]string
		wantStatus int
		wantReason string
	}{
		{"readiness without token", http.MethodGet, base + "/", "", nil, 200, ""},
		{"readiness without token, nothing excluded", http.MethodGet, baseNoExcl + "/", "", nil, 200, ""},
		{"readiness HEAD", http.MethodHead, baseNoExcl + "/", "", nil, 200, ""},
		{"function GET with token", http.MethodGet, base + FunctionPath, good, nil, 200, ""},
		{"function POST with token", http.MethodPost, base + FunctionPath, good, nil, 200, ""},
		{"function without token", http.MethodGet, base + FunctionPath, "", nil, 401, "missing_token"},
		{"function with spoofed principal headers only", http.MethodGet, base + FunctionPath, "",
			map[string]string{"X-MS-CLIENT-PRINCIPAL-ID": allowedID.ObjectID, "X-MS-CLIENT-PRINCIPAL-NAME": "allowed"}, 401, "missing_token"},
		{"function, rogue application", http.MethodPost, base + FunctionPath, rogue, nil, 403, "application_not_allowed"},
		{"function, role not assigned", http.MethodPost, base + FunctionPath, noRole, nil, 403, "role_missing"},
		{"function, token for another audience", http.MethodPost, base + FunctionPath, wrongAud, nil, 401, "audience_mismatch"},
		{"function, wrong method", http.MethodPut, base + FunctionPath, good, nil, 405, ""},
		{"healthz excluded, no token", http.MethodGet, base + HealthzPath, "", nil, 200, ""},
		{"healthz not excluded, no token", http.MethodGet, baseNoExcl + HealthzPath, "", nil, 401, "missing_token"},
		{"healthz not excluded, token", http.MethodGet, baseNoExcl + HealthzPath, good, nil, 200, ""},
		{"anonymous allowed by policy, function still needs a caller", http.MethodGet, baseAnon + FunctionPath, "", nil, 401, "missing_token"},
		{"anonymous allowed by policy, healthz open", http.MethodGet, baseAnon + HealthzPath, "", nil, 200, ""},
		{"anonymous allowed by policy, bad token still refused", http.MethodGet, baseAnon + FunctionPath, wrongAud, nil, 401, "audience_mismatch"},
		{"unknown path without token fails closed", http.MethodGet, base + "/api/other", "", nil, 401, "missing_token"},
		{"unknown path with token", http.MethodGet, base + "/api/other", good, nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, tc.url, tc.token, tc.header)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d; want %d (body %v)", r.status, tc.wantStatus, r.body)
			}
			if tc.wantReason != "" {
				if got, _ := r.body["reason"].(string); got != tc.wantReason {
					t.Errorf("reason %q; want %q", got, tc.wantReason)
				}
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
					t.Errorf("Content-Type %q; want application/problem+json", ct)
				}
			}
		})
	}
}

// TestAnonymousFunctionAnswersLikeAuthmw: the 401 the exclusive function writes itself
// (AllowAnonymous let the request through without a token) has the shape of the one
// authmw writes for the same request.
func TestAnonymousFunctionAnswersLikeAuthmw(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	_, base := serve(t, envFor(p, nil))
	_, baseAnon := serve(t, envFor(p, map[string]string{"AUTHMW_UNAUTHENTICATED_ACTION": "AllowAnonymous"}))
	want := do(t, http.MethodGet, base+FunctionPath, "", nil)
	got := do(t, http.MethodGet, baseAnon+FunctionPath, "", nil)
	if got.status != want.status || got.header.Get("Content-Type") != want.header.Get("Content-Type") {
		t.Fatalf("status %d %q; authmw answers %d %q", got.status, got.header.Get("Content-Type"), want.status, want.header.Get("Content-Type"))
	}
	for _, k := range []string{"type", "title", "status", "reason"} {
		if got.body[k] != want.body[k] || want.body[k] == nil {
			t.Errorf("%s = %v; authmw's body has %v", k, got.body[k], want.body[k])
		}
	}
}

func TestExclusiveFunctionDescribesTheVerifiedCaller(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	_, base := serve(t, envFor(p, nil))
	tok := mint(t, p, allowedID, testAudience)
	// Headers claiming another identity are ignored: only the token counts.
	r := do(t, http.MethodPost, base+FunctionPath, tok, map[string]string{
		"X-MS-CLIENT-PRINCIPAL-ID": rogueID.ObjectID, "X-MS-CLIENT-PRINCIPAL": "eyJmYWtlIjp0cnVlfQ==",
	})
	if r.status != 200 {
		t.Fatalf("status %d body %v", r.status, r.body)
	}
	want := map[string]any{
		"appId": allowedID.ClientID, "objectId": allowedID.ObjectID, "tenantId": p.TenantID(),
		"subject": allowedID.ObjectID, "appOnly": true, "issuer": p.IssuerV1(), "keyId": p.CurrentKID(), "method": "POST",
	}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("%s = %v; want %v", k, r.body[k], v)
		}
	}
	if roles, _ := r.body["roles"].([]any); len(roles) != 1 || roles[0] != testRole {
		t.Errorf("roles = %v; want [%s]", r.body["roles"], testRole)
	}
	if strings.Contains(strings.Join(valuesOf(r.body), " "), "eyJ") {
		t.Error("response echoes token material")
	}
}

func valuesOf(m map[string]any) []string {
	var out []string
	for _, v := range m {
		b, _ := json.Marshal(v)
		out = append(out, string(b))
	}
	return out
}

// TestGracefulShutdown: a request in flight when shutdown starts still completes, and
// Serve returns nil once it has.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	s, err := NewServer(context.Background(), envFor(p, map[string]string{"AUTHMW_EXCLUDED_PATHS": "/slow"}), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	started, release := make(chan struct{}), make(chan struct{})
	s.e.GET("/slow", func(c echo.Context) error {
		close(started)
		<-release
		return c.String(http.StatusOK, "finished")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-started
	cancel() // SIGTERM in production: Run's signal.NotifyContext cancels this context
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while a request was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	r := <-got
	if r.err != nil || r.status != http.StatusOK || r.body != "finished" {
		t.Fatalf("in-flight request: %+v; want 200 finished", r)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after graceful shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("listener still accepts connections after shutdown")
	}
}
