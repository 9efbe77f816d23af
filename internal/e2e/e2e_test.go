package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/testutil"

	"github.com/f2fauth/f2fauth/internal/e2e"
	"github.com/f2fauth/f2fauth/internal/localidp"
)

// The end-to-end tests run the callee in this process on 127.0.0.1 and every caller as
// a child process re-executing this test binary (TestMain switches on e2e.RoleEnv), with
// the real azidentity ManagedIdentityCredential against localidp's endpoints.

const (
	audience = "api://callee"
	appRole  = "Exclusive.Invoke"
)

// Identities the callee allows (AUTHMW_ALLOWED_APPLICATIONS), by name. Each test uses
// its own so that token counts are its own.
var registeredNames = []string{"registered", "burst", "no-token", "no-token-slow", "rotation-before", "rotation-after", "refresh-fails", "no-role"}

var (
	platform *localidp.Platform
	calleeUp *e2e.Callee
)

func TestMain(m *testing.M) {
	e2e.MaybeRunChild() // in a caller child process this never returns
	os.Exit(run(m))
}

func run(m *testing.M) int {
	p, err := localidp.Start(localidp.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start localidp:", err)
		return 1
	}
	defer p.Close()
	platform = p
	var allowed []string
	for _, n := range registeredNames {
		allowed = append(allowed, clientID(n))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	settings := e2e.CalleeSettings(p, audience, appRole, allowed...)
	// TestKeyRotationMidRun rotates the shared issuer's key; with -count=N each
	// iteration rotates again, so the callee must be allowed another unknown-kid
	// refetch well within one iteration (the default interval is 30 s).
	settings["AUTHMW_UNKNOWN_KEY_INTERVAL"] = "1s"
	c, err := e2e.StartCallee(ctx, settings, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start callee:", err)
		return 1
	}
	calleeUp = c
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop callee:", err)
		code = 1
	}
	return code
}

// clientID derives a stable GUID-shaped client ID from a name.
func clientID(name string) string {
	h := fnv.New64a()
	h.Write([]byte(name))
	v := h.Sum64()
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(v>>32), uint16(v>>16), uint16(v)&0xfff, uint16(v>>4)&0xfff, v&0xffffffffffff)
}

func objectID(name string) string { return clientID("oid:" + name) }

// newIdentity adds a managed identity; withRole assigns the app role on the callee.
func newIdentity(t *testing.T, name string, withRole bool) *localidp.ManagedIdentity {
	t.Helper()
	id := localidp.Identity{Name: name, ClientID: clientID(name), ObjectID: objectID(name)}
	if withRole {
		id.AppRoles = map[string][]string{audience: {appRole}}
	}
	m, err := platform.AddIdentity(id)
	if err != nil {
		t.Fatalf("AddIdentity(%s): %v", name, err)
	}
	t.Cleanup(m.Close)
	return m
}

// syncBuffer collects log output from concurrent writers.
type syncBuffer = testutil.SyncBuffer

// startCaller runs a caller child for m. At cleanup it stops the child and fails the
// test if the child's output contains the identity header or anything token-shaped.
func startCaller(t *testing.T, m *localidp.ManagedIdentity, env ...string) *e2e.CallerProcess {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := m.Identity().Name
	proc, err := e2e.StartCaller(ctx, e2e.CallerSpec{
		Name:        name,
		IdentityEnv: m.Env(),
		CalleeURL:   calleeUp.URL,
		Audience:    audience,
		Env:         env,
		Stderr:      logs,
	})
	if err != nil {
		t.Fatalf("start caller %s: %v\nlogs:\n%s", name, err, redact(logs.String(), m.Header()))
	}
	t.Cleanup(func() {
		proc.Stop()
		out := logs.String()
		assertNoSecrets(t, name+" logs", out, m.Header())
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, redact(out, m.Header()))
		}
	})
	return proc
}

func assertNoSecrets(t *testing.T, what, s, header string) {
	t.Helper()
	if header != "" && strings.Contains(s, header) {
		t.Errorf("%s contain the IDENTITY_HEADER secret", what)
	}
	if strings.Contains(s, "eyJ") {
		t.Errorf("%s contain something token-shaped (eyJ…)", what)
	}
}

func redact(s, header string) string {
	if header != "" {
		s = strings.ReplaceAll(s, header, "REDACTED")
	}
	return s
}

func invoke(t *testing.T, p *e2e.CallerProcess, pastDue bool) *e2e.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := p.Invoke(ctx, pastDue)
	if err != nil {
		t.Fatalf("invoke %s: %v", p.Name, err)
	}
	b, _ := json.Marshal(res.Response)
	assertNoSecrets(t, "invocation response", string(b), "")
	return res
}

func wantRun200(t *testing.T, res *e2e.Result, m *localidp.ManagedIdentity) {
	t.Helper()
	rep := res.Report()
	if res.Status != http.StatusOK || !rep.OK || rep.CalleeStatus != http.StatusOK {
		t.Fatalf("run: status %d, report %+v, logs %q; want 200 and callee 200", res.Status, rep, res.Response.Logs)
	}
	id := m.Identity()
	if rep.AppID != id.ClientID || rep.ObjectID != id.ObjectID || rep.TenantID != platform.TenantID() {
		t.Errorf("callee saw appId=%s oid=%s tid=%s; want %s %s %s", rep.AppID, rep.ObjectID, rep.TenantID, id.ClientID, id.ObjectID, platform.TenantID())
	}
	if !slices.Contains(rep.Roles, appRole) {
		t.Errorf("callee saw roles %v; want %s", rep.Roles, appRole)
	}
}

func TestRegisteredCallerGets200AndReusesItsToken(t *testing.T) {
	t.Parallel()
	m := newIdentity(t, "registered", true)
	p := startCaller(t, m)
	for i := range 3 {
		wantRun200(t, invoke(t, p, i == 2), m)
	}
	// Past-due runs still run, and say so in the invocation log.
	res := invoke(t, p, true)
	wantRun200(t, res, m)
	if !strings.Contains(strings.Join(res.Response.Logs, "\n"), "past due") {
		t.Errorf("past-due run logs %q; want a past-due note", res.Response.Logs)
	}
	if got := m.Requests(); got != 1 {
		t.Fatalf("identity endpoint requests after 4 runs = %d; want 1 (token reused across invocations)", got)
	}

	// The identity endpoint goes down: the cached token keeps the caller working.
	m.SetFailure(http.StatusInternalServerError, "")
	for range 3 {
		wantRun200(t, invoke(t, p, false), m)
	}
	if got := m.Requests(); got != 1 {
		t.Errorf("identity endpoint requests = %d; want still 1", got)
	}

	// A malformed payload is the host's bug, not a failed call: 400.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bad, err := p.InvokeRaw(ctx, []byte(`{"Data":`))
	if bad == nil || bad.Status != http.StatusBadRequest {
		t.Errorf("malformed payload: %+v, %v; want status 400", bad, err)
	}
}

func TestCallerSurvivesFailingRefresh(t *testing.T) {
	t.Parallel()
	m := newIdentity(t, "refresh-fails", true)
	// refresh_in makes the token due for refresh almost at once.
	m.SetRefreshIn(time.Second)
	p := startCaller(t, m)
	wantRun200(t, invoke(t, p, false), m)
	m.SetFailure(http.StatusServiceUnavailable, "")
	// Keep running until a refresh has been attempted against the failing endpoint;
	// every run must succeed on the cached token meanwhile.
	deadline := time.Now().Add(20 * time.Second)
	for m.Requests() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no refresh attempt reached the identity endpoint (requests=%d)", m.Requests())
		}
		wantRun200(t, invoke(t, p, false), m)
		time.Sleep(200 * time.Millisecond)
	}
	for range 3 {
		wantRun200(t, invoke(t, p, false), m)
	}
	if m.Issued() != 1 {
		t.Errorf("tokens issued = %d; want 1 (the endpoint was failing)", m.Issued())
	}
}

func TestRogueCallerGets403(t *testing.T) {
	t.Parallel()
	m := newIdentity(t, "rogue", false) // not in AUTHMW_ALLOWED_APPLICATIONS, no role
	p := startCaller(t, m)
	res := invoke(t, p, false)
	rep := res.Report()
	if res.Status < 500 || rep.OK || rep.CalleeStatus != http.StatusForbidden || rep.Reason != "application_not_allowed" {
		t.Fatalf("rogue run: status %d, report %+v; want a 5xx run with callee 403 application_not_allowed", res.Status, rep)
	}
	logs := strings.Join(res.Response.Logs, "\n")
	if !strings.Contains(logs, "403") || !strings.Contains(logs, "application_not_allowed") {
		t.Errorf("logs %q; want the callee's status and reason", logs)
	}
}

func TestAllowedApplicationWithoutRoleGets403(t *testing.T) {
	t.Parallel()
	m := newIdentity(t, "no-role", false) // allowed application, but the role is not assigned
	p := startCaller(t, m)
	res := invoke(t, p, false)
	rep := res.Report()
	if res.Status < 500 || rep.CalleeStatus != http.StatusForbidden || rep.Reason != "role_missing" {
		t.Fatalf("run: status %d, report %+v; want a 5xx run with callee 403 role_missing", res.Status, rep)
	}
}

func TestNoTokenGets401(t *testing.T) {
	t.Parallel()
	client := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		name   string
		header map[string]string
		reason string
	}{
		{"no header", nil, "missing_token"},
		{"spoofed Easy Auth headers", map[string]string{"X-MS-CLIENT-PRINCIPAL-ID": objectID("registered"), "X-MS-CLIENT-PRINCIPAL-NAME": "registered"}, "missing_token"},
		{"garbage token", map[string]string{"Authorization": "Bearer not.a.jwt"}, "malformed_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, calleeUp.URL, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Reason string `json:"reason"`
			}
			data, _ := io.ReadAll(resp.Body)
			_ = json.Unmarshal(data, &body)
			if resp.StatusCode != http.StatusUnauthorized || body.Reason != tc.reason {
				t.Fatalf("status %d reason %q; want 401 %s (body %s)", resp.StatusCode, body.Reason, tc.reason, data)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Errorf("Content-Type %q; want application/problem+json", ct)
			}
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q; want a Bearer challenge", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestColdBurstMakesOneTokenRequest(t *testing.T) {
	t.Parallel()
	m := newIdentity(t, "burst", true)
	p := startCaller(t, m)
	const n = 12
	results := make([]*e2e.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			results[i], errs[i] = p.Invoke(ctx, false)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("invocation %d: %v", i, errs[i])
		}
		wantRun200(t, results[i], m)
	}
	if got := m.Requests(); got != 1 {
		t.Fatalf("identity endpoint requests for a cold burst of %d = %d; want 1", n, got)
	}
}

func TestNoValidTokenFailsTheRunThenRecovers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		identity   string
		status     int
		retryAfter string
	}{
		// Throttled with a long Retry-After: azidentity gives up at once.
		{"throttled", "no-token", http.StatusTooManyRequests, "120"},
		// Failing with 500: azidentity retries for longer than CALLER_TIMEOUT.
		{"server error outlasting the timeout", "no-token-slow", http.StatusInternalServerError, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newIdentity(t, tc.identity, true)
			m.SetFailure(tc.status, tc.retryAfter)
			p := startCaller(t, m, "CALLER_TIMEOUT=2s")
			res := invoke(t, p, false)
			rep := res.Report()
			if res.Status < 500 || rep.OK || !rep.NoToken || rep.CalleeStatus != 0 {
				t.Fatalf("run without a token: status %d, report %+v; want a 5xx run reporting no token", res.Status, rep)
			}
			if logs := strings.Join(res.Response.Logs, "\n"); !strings.Contains(logs, "no token") {
				t.Errorf("logs %q; want the reason (no token)", logs)
			}
			assertNoSecrets(t, "invocation logs", strings.Join(res.Response.Logs, "\n"), m.Header())
			t.Logf("failed run: handler status %d, logs %q", res.Status, res.Response.Logs)

			// The endpoint comes back: the caller recovers by itself.
			m.SetFailure(0, "")
			if tc.retryAfter != "" {
				// ...but not before the Retry-After it was given: meanwhile runs
				// fail at once from the remembered answer, without a request.
				before := m.Requests()
				if res = invoke(t, p, false); res.Status == http.StatusOK || m.Requests() != before {
					t.Fatalf("within Retry-After: status %d, %d new identity requests; want a failed run and none", res.Status, m.Requests()-before)
				}
				return
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				res = invoke(t, p, false)
				if res.Status == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("caller did not recover: last run %d %+v", res.Status, res.Report())
				}
				time.Sleep(250 * time.Millisecond)
			}
			wantRun200(t, res, m)
		})
	}
}

func TestKeyRotationMidRun(t *testing.T) {
	// Not parallel: it rotates the issuer's signing key for everyone.
	before := newIdentity(t, "rotation-before", true)
	p1 := startCaller(t, before)
	res := invoke(t, p1, false)
	wantRun200(t, res, before)
	oldKID := res.Report().KeyID
	if oldKID == "" || oldKID != platform.CurrentKID() {
		t.Fatalf("first token kid %q; want the current key %q", oldKID, platform.CurrentKID())
	}
	jwksBefore := platform.JWKSRequests()

	newKID := platform.RotateKey()
	if newKID == oldKID {
		t.Fatal("RotateKey returned the old kid")
	}
	// The running caller keeps its cached token, signed by the old key (still published).
	res = invoke(t, p1, false)
	wantRun200(t, res, before)
	if got := res.Report().KeyID; got != oldKID {
		t.Errorf("cached token kid %q; want the old key %q", got, oldKID)
	}

	// A new caller gets a token signed by the new key; the callee fetches the new
	// JWKS on the unknown kid and lets it in without restart.
	after := newIdentity(t, "rotation-after", true)
	p2 := startCaller(t, after)
	res = invoke(t, p2, false)
	wantRun200(t, res, after)
	if got := res.Report().KeyID; got != newKID {
		t.Errorf("new token kid %q; want the rotated key %q", got, newKID)
	}
	if platform.JWKSRequests() <= jwksBefore {
		t.Errorf("JWKS requests %d -> %d; want a refetch for the new key", jwksBefore, platform.JWKSRequests())
	}
	// Both callers keep working.
	wantRun200(t, invoke(t, p1, false), before)
	wantRun200(t, invoke(t, p2, false), after)
}
