package caller

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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
	"syscall"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/localidp"
)

// These tests attack the real caller — its handler over real HTTP, the real token
// cache and azidentity credential — with hostile callees, identity endpoints and
// invokers on loopback. Waits on channels carry generous deadlines only as failure
// guards; nothing asserts on timing.

// guard is the failure guard for waits that must end long before it.
const guard = time.Minute

// holdingCallee is a raw TCP callee: for every connection it reads the request
// head, writes answer and then keeps the connection open until stop is called.
func holdingCallee(t *testing.T, answer string) (calleeURL string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				_, _ = io.WriteString(c, answer)
				_, _ = io.Copy(io.Discard, br) // hold: read whatever comes until closed
			}()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ln.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + ln.Addr().String() + "/api/ExclusiveFunction", stop
}

// invokeGuarded is f.invoke that fails instead of hanging when no answer comes.
func (f *fixture) invokeGuarded(t *testing.T) run {
	t.Helper()
	done := make(chan run, 1)
	go func() { done <- f.invoke(t, payload(false)) }()
	select {
	case r := <-done:
		return r
	case <-time.After(guard):
		t.Fatalf("no invocation response: the run is held past CALLER_TIMEOUT (%v)", f.c.cfg.Timeout)
		return run{}
	}
}

// Finding 2: nothing the callee sends can hold a run past its timeout; any 1xx final
// answer is a failure.
func TestCalleeCannotHoldTheRun(t *testing.T) {
	drip := func(status int) (string, func()) {
		quit := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "1000000")
			w.WriteHeader(status)
			rc := http.NewResponseController(w)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				if _, err := io.WriteString(w, " "); err != nil || rc.Flush() != nil {
					return
				}
				select {
				case <-r.Context().Done():
					return
				case <-quit:
					return
				case <-tick.C:
				}
			}
		}))
		t.Cleanup(srv.Close)
		var once sync.Once
		return srv.URL, func() { once.Do(func() { close(quit) }) }
	}
	for _, tc := range []struct {
		name       string
		callee     func() (string, func())
		wantStatus int
		check      func(t *testing.T, rep *Report)
	}{
		{"101 Switching Protocols, connection kept",
			func() (string, func()) {
				return holdingCallee(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: evil\r\n\r\n")
			},
			http.StatusBadGateway, func(t *testing.T, rep *Report) {
				if rep.CalleeStatus != 101 || rep.OK || rep.Attempts != 1 || !strings.Contains(rep.Reason, "interim") {
					t.Errorf("report %+v; want a failed run naming the 101 as not final", rep)
				}
			}},
		{"101 without Upgrade", func() (string, func()) {
			return holdingCallee(t, "HTTP/1.1 101 Switching Protocols\r\n\r\n")
		}, http.StatusBadGateway, func(t *testing.T, rep *Report) {
			if rep.CalleeStatus != 101 || rep.OK {
				t.Errorf("report %+v", rep)
			}
		}},
		{"200 whose body drips", func() (string, func()) { return drip(200) }, http.StatusGatewayTimeout, func(t *testing.T, rep *Report) {
			if !rep.Timeout || rep.OK {
				t.Errorf("report %+v; want a timeout, not a success", rep)
			}
		}},
		{"503 whose body drips", func() (string, func()) { return drip(503) }, http.StatusGatewayTimeout, func(t *testing.T, rep *Report) {
			if !rep.Timeout || rep.OK {
				t.Errorf("report %+v; want a timeout", rep)
			}
		}},
		{"headers never end", func() (string, func()) {
			return holdingCallee(t, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
		}, http.StatusGatewayTimeout, func(t *testing.T, rep *Report) {
			if !rep.Timeout {
				t.Errorf("report %+v", rep)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calleeURL, stop := tc.callee()
			f := newFixture(t, calleeURL, func(c *Config) { c.Timeout = time.Second })
			t.Cleanup(stop) // runs first, so a failing run cannot block the fixture's cleanup
			r := f.invokeGuarded(t)
			if r.status != tc.wantStatus {
				t.Errorf("status %d; want %d (logs %q)", r.status, tc.wantStatus, r.logs())
			}
			tc.check(t, r.report())
		})
	}
}

// hostileIdentity is an identity endpoint that answers every request with status
// and body; "{header}" in body is replaced by the X-IDENTITY-HEADER it received.
func hostileIdentity(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, strings.ReplaceAll(body, "{header}", r.Header.Get("X-IDENTITY-HEADER")))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/msi/token"
}

// Finding 6 (caller side): no secret — the identity header, a token — reaches Logs,
// ReturnValue.reason or the process's log output, whatever the identity endpoint
// echoes.
func TestIdentityEndpointSecretsAreRedacted(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	jwt := b64([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + b64([]byte(`{"aud":"api://x","exp":4102444800}`)) + "." + b64([]byte(strings.Repeat("sig", 20)))
	opaque := strings.Repeat("Qk9QYXF1ZVRva2Vu", 6)
	for _, tc := range []struct {
		name    string
		header  string
		status  int
		body    string
		secrets []string
	}{
		{"400 echoing the identity header", "d7f0c2a9-5e1b-4c3d-8a6f-0b9e2d4c1a77", 400,
			`{"error":"invalid_request","error_description":"bad X-IDENTITY-HEADER: {header}"}`, nil},
		{"400 echoing a short identity header", "Xq7Zp3", 400,
			`{"error":"invalid_request","error_description":"header {header} is not valid"}`, nil},
		{"203 carrying a token", "b1e5a0d2-7c3f-4e9a-9d1b-2f6c8e0a4b33", 203,
			`{"access_token":"` + jwt + `","expires_on":"4102444800","token_type":"Bearer"}`, []string{jwt}},
		{"400 carrying an opaque token", "c2e5a0d2-7c3f-4e9a-9d1b-2f6c8e0a4b44", 400,
			`{"error":"x","error_description":"try Bearer ` + opaque + `"}`, []string{opaque}},
		{"400 with a short access_token", "e3e5a0d2-7c3f-4e9a-9d1b-2f6c8e0a4b55", 400,
			`{"error":"x","access_token":"shorttok123"}`, []string{"shorttok123"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			callee := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
			defer callee.Close()
			aud := fmt.Sprintf("api://hostile-%s-%d", guid(t.Name()), fixtureSeq.Add(1))
			f := newFixtureAt(t, callee.URL, aud, hostileIdentity(t, tc.status, tc.body), tc.header, func(c *Config) { c.MaxRetries = 0 })
			resp, err := http.Post(f.url+"/"+FunctionName, "application/json", strings.NewReader(payload(false)))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var ir InvocationResponse
			if err := json.Unmarshal(raw, &ir); err != nil || ir.ReturnValue == nil || !ir.ReturnValue.NoToken {
				t.Fatalf("status %d body %s; want a no-token failure", resp.StatusCode, raw)
			}
			for _, secret := range append([]string{tc.header}, tc.secrets...) {
				for where, text := range map[string]string{"invocation response": string(raw), "process log": f.logs.String()} {
					if strings.Contains(text, secret) {
						t.Errorf("%s holds a secret (%d bytes; not printed)", where, len(secret))
					}
				}
			}
			if hits.Load() != 0 {
				t.Errorf("callee called without a token")
			}
		})
	}
}

// Finding 8: what the callee says about the caller goes into Logs printable,
// single-line and bounded.
func TestCalleeFieldsAreSanitised(t *testing.T) {
	big := strings.Repeat("A", 60<<10)
	roles := []string{"Exclusive.Invoke\r\nrun failed: forged line", "\x1b[31mred"}
	for i := range 100 {
		roles = append(roles, fmt.Sprintf("role-%d", i))
	}
	body, _ := json.Marshal(map[string]any{
		"appId":    "app-1\r\nrun failed: forged line\u2028and\u0085more",
		"objectId": big,
		"tenantId": "tid\x00\x07",
		"keyId":    "kid\n" + big[:1000],
		"roles":    roles,
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	f := newFixture(t, srv.URL, nil)
	r := f.invoke(t, payload(false))
	rep := r.report()
	if r.status != http.StatusOK || !rep.OK {
		t.Fatalf("status %d report %+v", r.status, rep)
	}
	for _, line := range r.resp.Logs {
		if strings.ContainsAny(line, "\r\n\x00\x07\x1b\u2028\u0085") || len(line) > 4096 {
			t.Errorf("Logs entry is not one bounded printable line (%d bytes): %q", len(line), line[:min(len(line), 200)])
		}
	}
	for name, v := range map[string]string{"appId": rep.AppID, "objectId": rep.ObjectID, "tenantId": rep.TenantID, "keyId": rep.KeyID} {
		if strings.ContainsAny(v, "\r\n\x00\x07") || len(v) > maxFieldBytes+len("…") {
			t.Errorf("%s = %q (%d bytes); want printable, single line, bounded", name, v[:min(len(v), 200)], len(v))
		}
	}
	if len(rep.Roles) > maxRoles+1 || rep.Roles[0] != "Exclusive.Invoke run failed: forged line" {
		t.Errorf("roles %d %q", len(rep.Roles), rep.Roles[:min(len(rep.Roles), 3)])
	}
	if n := len(f.logs.String()); n > 16<<10 {
		t.Errorf("process log is %d bytes for one run: the callee's fields are not bounded", n)
	}
}

// Finding 9: the invocation listener cuts off slow clients — headers or body — and
// bounds the body.
func TestInvocationListenerCutsOffSlowClients(t *testing.T) {
	f := newFixture(t, okCallee(t, new(atomic.Int64)).URL, nil)
	f.c.server.readHeader = 300 * time.Millisecond
	f.c.server.read = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.c.Serve(ctx, ln) }()
	defer func() {
		cancel()
		<-served
	}()
	addr := ln.Addr().String()
	body := payload(false)
	for _, tc := range []struct {
		name string
		head string // sent at once
		drip string // then sent one byte at a time, slowly, forever (repeating)
	}{
		{"slow headers", "POST /" + FunctionName + " HTTP/1.1\r\nHost: x\r\n", "X-Pad: aaaaaaaa\r\n"},
		{"slow body", fmt.Sprintf("POST /%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", FunctionName, 1<<20), body},
		{"slow chunked body", "POST /" + FunctionName + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "1\r\n \r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const clients = 20
			closed := make(chan struct{}, clients)
			for range clients {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				go func() { // the server closing the connection ends the read
					_, _ = io.Copy(io.Discard, c)
					closed <- struct{}{}
				}()
				go func() {
					if _, err := io.WriteString(c, tc.head); err != nil {
						return
					}
					for i := 0; ; i++ {
						if _, err := c.Write([]byte{tc.drip[i%len(tc.drip)]}); err != nil {
							return
						}
						time.Sleep(50 * time.Millisecond)
					}
				}()
			}
			deadline := time.After(guard)
			for i := range clients {
				select {
				case <-closed:
				case <-deadline:
					t.Fatalf("%d of %d slow clients still connected", clients-i, clients)
				}
			}
		})
	}
	if f.mi.Requests() != 0 {
		t.Errorf("slow clients reached the identity endpoint")
	}
	// The defaults the binary runs with bound every phase.
	d := defaultServerLimits(DefaultTimeout)
	if d.readHeader <= 0 || d.read <= 0 || d.idle <= 0 || d.write <= DefaultTimeout {
		t.Errorf("default listener limits %+v", d)
	}
}

// Finding 10: a half-set managed identity stops startup, naming both settings.
func TestHalfSetManagedIdentityIsRefused(t *testing.T) {
	base := map[string]string{EnvCalleeURL: "https://callee.example.com/api/x", EnvCalleeAudience: "api://callee"}
	const secret = "s3cr3t-identity-header-value"
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr bool
	}{
		{"endpoint only", map[string]string{EnvIdentityEndpoint: "http://127.0.0.1:41566/msi/token"}, true},
		{"header only", map[string]string{EnvIdentityHeader: secret}, true},
		{"both", map[string]string{EnvIdentityEndpoint: "http://127.0.0.1:41566/msi/token", EnvIdentityHeader: secret}, false},
		{"neither", nil, false},
		{"Azure Arc: endpoint and IMDS_ENDPOINT", map[string]string{EnvIdentityEndpoint: "http://127.0.0.1:40342/metadata/identity/oauth2/token", "IMDS_ENDPOINT": "http://127.0.0.1:40342"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if v, ok := tc.env[k]; ok {
					return v
				}
				return base[k]
			}
			_, err := ConfigFromEnv(getenv)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("ConfigFromEnv: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), EnvIdentityEndpoint) || !strings.Contains(err.Error(), EnvIdentityHeader) {
				t.Fatalf("ConfigFromEnv: %v; want an error naming %s and %s", err, EnvIdentityEndpoint, EnvIdentityHeader)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error quotes IDENTITY_HEADER: %v", err)
			}
			// The binary stops at startup with that error.
			if err := Run(context.Background(), getenv, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), EnvIdentityHeader) {
				t.Errorf("Run: %v", err)
			}
		})
	}
	// New, building the credential from the process environment, refuses too.
	t.Setenv(EnvIdentityEndpoint, "http://127.0.0.1:41566/msi/token")
	t.Setenv(EnvIdentityHeader, "")
	u, _ := url.Parse("https://callee.example.com/api/x")
	if _, err := New(Config{CalleeURL: u, Audience: "api://callee"}, nil); err == nil || !strings.Contains(err.Error(), EnvIdentityHeader) {
		t.Errorf("New with IDENTITY_ENDPOINT alone: %v", err)
	}
}

// Function keys in CALLEE_URL never reach a log: not the startup line, not a
// transport error, not a configuration error.
func TestFunctionKeyIsNeverLogged(t *testing.T) {
	const key = "FuNcKeY0123456789abcdef"
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	calleeURL := "http://" + dead.Addr().String() + "/api/ExclusiveFunction?code=" + key
	dead.Close() // nothing listens: every attempt is a transport error
	f := newFixture(t, calleeURL, func(c *Config) { c.MaxRetries = 1; c.Audience += "/" })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.c.Serve(ctx, ln) }()
	g := *f
	g.url = "http://" + ln.Addr().String()
	r := g.invoke(t, payload(false))
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	rep := r.report()
	if rep.OK || !strings.Contains(rep.Reason, "transport") {
		t.Fatalf("report %+v; want a transport failure", rep)
	}
	logs := f.logs.String()
	for where, text := range map[string]string{"Logs": r.logs(), "reason": rep.Reason, "process log": logs} {
		if strings.Contains(text, key) {
			t.Errorf("%s holds the function key: %s", where, strings.ReplaceAll(text, key, "<KEY>"))
		}
	}
	// Startup says which scope is asked for — normalised, never "//.default".
	if want := `"scope":"` + f.c.cfg.Audience + `/.default"`; !strings.Contains(logs, want) || strings.Contains(logs, "//.default") {
		t.Errorf("startup log does not name the scope %s: %s", want, logs)
	}
	// Configuration errors do not quote the key either.
	_, err = ConfigFromEnv(func(k string) string {
		return map[string]string{EnvCalleeURL: "http://callee.example.com/api/x?code=" + key, EnvCalleeAudience: "api://callee"}[k]
	})
	if err == nil || strings.Contains(err.Error(), key) {
		t.Errorf("ConfigFromEnv: %v", err)
	}
}

// SIGTERM to the real program: the run in flight is cancelled and answered (503,
// reason naming the shutdown), and Run returns cleanly.
func TestRunAnswersInFlightRunsOnSIGTERM(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	callee := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(entered) })
		select { // holds the run until the caller gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer callee.Close()
	defer close(release)
	aud := fmt.Sprintf("api://sigterm-%d", fixtureSeq.Add(1))
	mi, err := testPlatform.AddIdentity(localidp.Identity{Name: t.Name(), ClientID: guid("client " + t.Name()), ObjectID: guid("object " + t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	defer mi.Close()
	t.Setenv(EnvIdentityEndpoint, mi.Endpoint())
	t.Setenv(EnvIdentityHeader, mi.Header())
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(probe.Addr().(*net.TCPAddr).Port)
	probe.Close()
	env := map[string]string{EnvCalleeURL: callee.URL, EnvCalleeAudience: aud, EnvTimeout: "4m", EnvCustomHandlerPort: port,
		EnvIdentityEndpoint: mi.Endpoint(), EnvIdentityHeader: mi.Header()}
	ran := make(chan error, 1)
	go func() {
		ran <- Run(context.Background(), func(k string) string { return env[k] }, slog.New(slog.DiscardHandler))
	}()
	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(guard)
	for { // wait until Run serves (it registers for SIGTERM before listening)
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-ran:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Run never listened")
		}
		time.Sleep(20 * time.Millisecond)
	}
	done := make(chan run, 1)
	go func() { done <- (&fixture{url: base}).invoke(t, payload(false)) }()
	<-entered
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if rep := r.report(); r.status != http.StatusServiceUnavailable || !rep.Cancelled || !strings.Contains(r.logs(), "shutting down") {
			t.Fatalf("in-flight run after SIGTERM: status %d report %+v logs %q", r.status, rep, r.logs())
		}
	case <-time.After(guard):
		t.Fatal("in-flight run not answered after SIGTERM")
	}
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(guard):
		t.Fatal("Run did not return after SIGTERM")
	}
}

// A callee that echoes the bearer token it received into its answer does not get
// it — or its signature alone — into Logs, ReturnValue or the process log.
func TestCalleeEchoingTheTokenIsRedacted(t *testing.T) {
	var mu sync.Mutex
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		got = tok
		mu.Unlock()
		sig := tok[strings.LastIndex(tok, ".")+1:]
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"appId": tok, "objectId": "Bearer " + tok, "roles": []string{tok[:40]}, "keyId": sig})
	}))
	defer srv.Close()
	f := newFixture(t, srv.URL, nil)
	resp, err := http.Post(f.url+"/"+FunctionName, "application/json", strings.NewReader(payload(false)))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mu.Lock()
	tok := got
	mu.Unlock()
	if resp.StatusCode != http.StatusOK || strings.Count(tok, ".") != 2 {
		t.Fatalf("status %d; callee got a token: %v", resp.StatusCode, tok != "")
	}
	sig := tok[strings.LastIndex(tok, ".")+1:]
	for where, text := range map[string]string{"invocation response": string(raw), "process log": f.logs.String()} {
		if strings.Contains(text, "eyJ") || strings.Contains(text, sig[:24]) {
			t.Errorf("%s holds the token or its signature (not printed)", where)
		}
	}
}
