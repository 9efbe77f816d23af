package callee_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/authmw/authmwtest"
	"github.com/f2fauth/f2fauth/callee"
	"github.com/f2fauth/f2fauth/internal/testutil"
)

// exitGuard bounds how long a misconfigured callee may run before it must have
// exited: the "within 30 s of start". It is a guard, not a timing target.
const exitGuard = 30 * time.Second

const (
	startupAudience = "api://callee-startup"
	startupApp      = "11111111-2222-3333-4444-555555555555"
	otherTenant     = "0b9b1d6e-0000-4000-8000-00000000dead"
)

// buildCallee builds the shipped callee binary (callee/functionapp) into a
// temporary directory, as the Functions host would run it.
func buildCallee(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "handler")
	cmd := exec.Command("go", "build", "-o", bin, "./functionapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./functionapp: %v\n%s", err, out)
	}
	return bin
}

// calleeProc is the callee binary running as a child process.
type calleeProc struct {
	base   string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	stderr *testutil.SyncBuffer
	done   chan struct{}
	err    error // of Wait, valid after done
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startCallee runs bin with exactly env (plus the port the host would give it),
// stdout and stderr read from pipes.
func startCallee(t *testing.T, bin string, env map[string]string) *calleeProc {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{"FUNCTIONS_CUSTOMHANDLER_PORT=" + strconv.Itoa(port)}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &calleeProc{base: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitExit waits for the process to exit (at most exitGuard) and returns its
// exit code.
func (p *calleeProc) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(exitGuard):
		t.Fatalf("callee still running %s after start; want it to exit. Output:\n%s", exitGuard, p.stderr)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

func (p *calleeProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// get performs one GET with an optional bearer token.
func get(t *testing.T, url, token string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body, nil
}

// eventually polls cond until it holds, failing after a generous guard.
func eventually(t *testing.T, p *calleeProc, what string, guard time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if !p.running() {
			t.Fatalf("callee exited while waiting for %s:\n%s", what, p.stderr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s; output:\n%s", what, guard, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// healthReport is the JSON of the health endpoint.
type healthReport struct {
	Status        string `json:"status"`
	Ready         bool   `json:"ready"`
	PolicyVersion string `json:"policy_version"`
	Issuers       []struct {
		Setting        string    `json:"setting"`
		KeysLoaded     bool      `json:"keys_loaded"`
		Keys           int       `json:"keys"`
		LastKeyRefresh time.Time `json:"last_key_refresh"`
		Failure        string    `json:"failure"`
	} `json:"issuers"`
}

func settingsFor(iss *authmwtest.Issuer) map[string]string {
	return map[string]string{
		"AUTHMW_TENANT_ID":            iss.TenantID(),
		"AUTHMW_AUTHORITY_HOST":       iss.AuthorityURL(),
		"AUTHMW_AUDIENCES":            startupAudience,
		"AUTHMW_ALLOWED_APPLICATIONS": startupApp,
		"AUTHMW_EXCLUDED_PATHS":       callee.HealthzPath,
	}
}

func newIssuer(t *testing.T) *authmwtest.Issuer {
	t.Helper()
	iss, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iss.Close)
	return iss
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestCalleeBinaryFailsLoudly runs the built callee against a local issuer
// that answers as a misconfigured deployment would see it, and checks that it
// exits non-zero with one message naming the app setting, what was answered
// and what to check — instead of running "healthy" and answering 503 forever.
func TestCalleeBinaryFailsLoudly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the callee binary")
	}
	bin := buildCallee(t)
	tests := []struct {
		name  string
		setup func(iss *authmwtest.Issuer, env map[string]string)
		want  []string // in the exit message
	}{
		{"unknown tenant (Entra 400 AADSTS90002)", func(iss *authmwtest.Issuer, env map[string]string) {
			env["AUTHMW_TENANT_ID"] = otherTenant
			iss.SetDiscoveryFault(authmwtest.UnknownTenant(otherTenant))
		}, []string{"AUTHMW_TENANT_ID", "HTTP status 400", "AADSTS90002", "check that AUTHMW_TENANT_ID"}},
		{"unknown tenant (404)", func(iss *authmwtest.Issuer, env map[string]string) {
			env["AUTHMW_TENANT_ID"] = otherTenant
		}, []string{"AUTHMW_TENANT_ID", "HTTP status 404", "invalid_tenant"}},
		{"issuer with a trailing slash", func(iss *authmwtest.Issuer, env map[string]string) {
			delete(env, "AUTHMW_TENANT_ID")
			delete(env, "AUTHMW_AUTHORITY_HOST")
			env["AUTHMW_ISSUER"] = iss.IssuerV2() + "/"
		}, []string{"AUTHMW_ISSUER", "issuer mismatch", "trailing slash"}},
		{"issuer on localhost for 127.0.0.1", func(iss *authmwtest.Issuer, env map[string]string) {
			delete(env, "AUTHMW_TENANT_ID")
			delete(env, "AUTHMW_AUTHORITY_HOST")
			env["AUTHMW_ISSUER"] = strings.Replace(iss.IssuerV2(), "127.0.0.1", "localhost", 1)
		}, []string{"AUTHMW_ISSUER", "issuer mismatch", "localhost is not 127.0.0.1"}},
		{"key set without a usable key", func(iss *authmwtest.Issuer, env map[string]string) {
			iss.SetJWKSFault(authmwtest.NoUsableKeys())
		}, []string{"AUTHMW_AUTHORITY_HOST", "no usable key", "AUTHMW_ALGORITHMS"}},
		{"authority host answering 404", func(iss *authmwtest.Issuer, env map[string]string) {
			iss.SetDiscoveryFault(&authmwtest.Fault{Status: http.StatusNotFound, Body: `{"error":"not_found"}`})
		}, []string{"AUTHMW_AUTHORITY_HOST", "HTTP status 404", "check that AUTHMW_AUTHORITY_HOST"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			iss := newIssuer(t)
			env := settingsFor(iss)
			tt.setup(iss, env)
			p := startCallee(t, bin, env)
			if code := p.waitExit(t); code == 0 {
				t.Fatalf("exit status 0; want non-zero. Output:\n%s", p.stderr)
			}
			out := p.stderr.String()
			msg := lastLine(out)
			t.Logf("exit message: %s", msg)
			if !strings.HasPrefix(msg, "callee: cannot start: ") {
				t.Fatalf("last line %q is not the startup error; output:\n%s", msg, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("exit message lacks %q:\n%s", w, msg)
				}
			}
			assertOneMessage(t, msg)
			if n := strings.Count(out, "callee: cannot start"); n != 1 {
				t.Errorf("%d startup-error messages; want exactly one:\n%s", n, out)
			}
			if strings.Contains(out, "context canceled") {
				t.Errorf("spurious context-canceled message:\n%s", out)
			}
		})
	}
}

// assertOneMessage checks a process message: one line, one prefix, app
// settings rather than Go field names.
func assertOneMessage(t *testing.T, msg string) {
	t.Helper()
	if strings.Contains(msg, "\n") {
		t.Errorf("message spans several lines:\n%s", msg)
	}
	for _, prefix := range []string{"callee: ", "authmw: ", "invalid configuration", "invalid policy"} {
		if n := strings.Count(msg, prefix); n > 1 {
			t.Errorf("prefix %q appears %d times:\n%s", prefix, n, msg)
		}
	}
	for _, goName := range []string{"Policy.", "Config."} {
		if strings.Contains(msg, goName) {
			t.Errorf("message names a Go field (%s…) instead of the app setting:\n%s", goName, msg)
		}
	}
}

// TestCalleeBinaryConfigErrors checks the text of a few misconfigurations:
// one line, no repeated prefix, app-setting names, the JSON position of a
// broken policy file, and no discovery noise before the error.
func TestCalleeBinaryConfigErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the callee binary")
	}
	bin := buildCallee(t)
	dead := func() string { // an issuer URL nobody listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return "http://" + ln.Addr().String() + "/tenant/v2.0"
	}()
	badFile := filepath.Join(t.TempDir(), "authsettings.json")
	if err := os.WriteFile(badFile, []byte("{\n  \"globalValidation\": {\n    \"excludedPaths\": [\"/a\",]\n  }\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := map[string]string{"AUTHMW_ISSUER": dead, "AUTHMW_AUDIENCES": startupAudience, "AUTHMW_ALLOWED_APPLICATIONS": startupApp}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range valid {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nothing set", map[string]string{}, []string{"AUTHMW_AUDIENCES is required", "AUTHMW_TENANT_ID (or AUTHMW_ISSUER) is required"}},
		{"callee and authmw problems together", with("CALLEE_LOG_LEVEL", "loud", "AUTHMW_TENANT_ID", "contoso.com", "AUTHMW_ISSUER", ""),
			[]string{"CALLEE_LOG_LEVEL", "AUTHMW_TENANT_ID \"contoso.com\" is not a tenant GUID"}},
		{"bad port with valid auth settings", with("FUNCTIONS_CUSTOMHANDLER_PORT", "abc"), []string{"FUNCTIONS_CUSTOMHANDLER_PORT"}},
		{"policy file with a JSON syntax error", with("AUTHMW_POLICY_FILE", badFile), []string{"AUTHMW_POLICY_FILE", "line 3"}},
		{"bad duration", with("AUTHMW_CLOCK_SKEW", "forever"), []string{"AUTHMW_CLOCK_SKEW"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startCallee(t, bin, tt.env)
			if code := p.waitExit(t); code == 0 {
				t.Fatalf("exit status 0; want non-zero. Output:\n%s", p.stderr)
			}
			out := strings.TrimSpace(p.stderr.String())
			t.Logf("output: %s", out)
			if strings.Contains(out, "\n") {
				t.Errorf("more than one line of output; want the one error:\n%s", out)
			}
			if !strings.HasPrefix(out, "callee: invalid configuration: ") {
				t.Errorf("output does not start with the one prefix:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			assertOneMessage(t, out)
		})
	}
}

// TestCalleeBinaryWaitsOutAnOutage: with the authority down (503) the callee
// keeps running, answers protected requests 503 + Retry-After and its health
// endpoint 503 naming a transient failure; when the authority comes back it
// loads the keys by itself, and health and requests turn 200.
func TestCalleeBinaryWaitsOutAnOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the callee binary")
	}
	bin := buildCallee(t)
	iss := newIssuer(t)
	iss.SetDown(true)
	p := startCallee(t, bin, settingsFor(iss))
	tok, err := iss.AppToken(authmwtest.App{AppID: startupApp}, startupAudience, authmwtest.V2)
	if err != nil {
		t.Fatal(err)
	}

	var h healthReport
	eventually(t, p, "a health report of a transient failure", 20*time.Second, func() bool {
		resp, body, err := get(t, p.base+callee.HealthzPath, "")
		if err != nil {
			return false
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("health while down: %d (Retry-After %q) %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		h = healthReport{}
		if err := json.Unmarshal(body, &h); err != nil {
			t.Fatalf("health body %s: %v", body, err)
		}
		return len(h.Issuers) > 0 && h.Issuers[0].Failure == "transient"
	})
	if h.Ready || h.Status != "unavailable" || h.PolicyVersion == "" || h.Issuers[0].KeysLoaded || h.Issuers[0].Setting != "AUTHMW_TENANT_ID" {
		t.Errorf("health while down: %+v", h)
	}
	resp, body, err := get(t, p.base+callee.FunctionPath, tok)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "keys_unavailable") {
		t.Fatalf("protected call while down: %d (Retry-After %q) %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, _, err := get(t, p.base+callee.ReadyPath, ""); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("host readiness probe while down: %v %v", resp, err)
	}

	iss.SetDown(false)
	eventually(t, p, "health 200 after the authority came back", 60*time.Second, func() bool {
		resp, body, err := get(t, p.base+callee.HealthzPath, "")
		if err != nil || resp.StatusCode != http.StatusOK {
			return false
		}
		h = healthReport{}
		if err := json.Unmarshal(body, &h); err != nil {
			t.Fatalf("health body %s: %v", body, err)
		}
		return true
	})
	if !h.Ready || h.Status != "ok" || len(h.Issuers) != 2 {
		t.Fatalf("health after recovery: %+v", h)
	}
	for _, is := range h.Issuers {
		if !is.KeysLoaded || is.Keys == 0 || is.LastKeyRefresh.IsZero() || is.Failure != "" {
			t.Errorf("issuer after recovery: %+v", is)
		}
	}
	resp, body, err = get(t, p.base+callee.FunctionPath, tok)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("protected call after recovery: %v %v %s", resp, err, body)
	}
	if !p.running() {
		t.Fatalf("callee exited:\n%s", p.stderr)
	}
	out := p.stderr.String()
	t.Logf("callee output:\n%s", out)
	if !strings.Contains(out, `"level":"WARN","msg":"authmw: issuer discovery failed; retrying"`) || !strings.Contains(out, `"class":"transient"`) {
		t.Errorf("the outage was not logged as a transient discovery failure:\n%s", out)
	}
	if strings.Contains(out, tok) || strings.Contains(out, tok[strings.LastIndex(tok, ".")+1:]) {
		t.Error("the token appears in the callee's output")
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	if code := p.waitExit(t); code != 0 {
		t.Errorf("exit status %d after SIGINT; want 0:\n%s", code, p.stderr)
	}
}

// TestHealthReportsPermanentFailure: the health endpoint of a callee whose
// tenant is unknown answers 503 naming the setting and a permanent failure,
// and WaitStarted returns the StartupError that makes Run exit.
func TestHealthReportsPermanentFailure(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	iss.SetDiscoveryFault(authmwtest.UnknownTenant(otherTenant))
	env := settingsFor(iss)
	env["AUTHMW_TENANT_ID"] = otherTenant
	logs := &testutil.SyncBuffer{}
	s, err := callee.NewServer(t.Context(), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, callee.NewLogger(logs, slog.LevelDebug))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	ctx, cancel := context.WithTimeout(t.Context(), exitGuard)
	defer cancel()
	err = s.WaitStarted(ctx)
	se, ok := errors.AsType[*callee.StartupError](err)
	if !ok || se.Source.Setting != "AUTHMW_TENANT_ID" || !errors.Is(err, authmw.ErrSourcePermanent) {
		t.Fatalf("WaitStarted = %v; want a StartupError naming AUTHMW_TENANT_ID", err)
	}
	resp, body, err := get(t, srv.URL+callee.HealthzPath, "")
	if err != nil {
		t.Fatal(err)
	}
	var h healthReport
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || h.Ready || h.Status != "unavailable" ||
		len(h.Issuers) == 0 || h.Issuers[0].Failure != "permanent" || h.Issuers[0].Setting != "AUTHMW_TENANT_ID" {
		t.Fatalf("health: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "AADSTS") || strings.Contains(string(body), "error_description") {
		t.Errorf("health body quotes the authority's answer (kept for the logs): %s", body)
	}
	// The host's readiness probe stays cheap and says nothing about the keys.
	if resp, body, err := get(t, srv.URL+callee.ReadyPath, ""); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %v %v %s", resp, err, body)
	}
}

// NewServer's configuration error lists the callee's and authmw's problems
// under one prefix and still matches both packages' sentinels.
func TestConfigErrorOnePrefix(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CALLEE_LOG_LEVEL": "loud", "AUTHMW_TENANT_ID": "contoso.com", "AUTHMW_AUDIENCES": startupAudience,
		"AUTHMW_ALLOWED_APPLICATIONS": startupApp, "PORT": "99999"}
	_, err := callee.NewServer(t.Context(), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	ce, ok := errors.AsType[*callee.ConfigError](err)
	if !ok || !errors.Is(err, callee.ErrConfig) || !errors.Is(err, authmw.ErrInvalidPolicy) {
		t.Fatalf("NewServer = %v; want a ConfigError matching ErrConfig and authmw.ErrInvalidPolicy", err)
	}
	if len(ce.Problems) != 3 {
		t.Errorf("problems %q; want 3 (CALLEE_LOG_LEVEL, PORT, AUTHMW_TENANT_ID)", ce.Problems)
	}
	assertOneMessage(t, err.Error())
	for _, w := range []string{"CALLEE_LOG_LEVEL", "PORT", "AUTHMW_TENANT_ID"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %s: %v", w, err)
		}
	}
}
