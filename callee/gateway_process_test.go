package callee

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/internal/testutil"
)

// These tests run the real callee executable (callee/functionapp, built with go build)
// in gateway mode in front of rawUpstream, a plain HTTP/1.1 server written on a bare
// socket: like a Node, Python or PHP app it sees header names exactly as they arrive
// on the wire, not as Go would canonicalise them.

// buildCallee builds the callee executable into a temporary directory.
func buildCallee(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the callee executable")
	}
	exe := filepath.Join(t.TempDir(), "handler")
	cmd := exec.Command("go", "build", "-o", exe, "./functionapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./functionapp: %v\n%s", err, out)
	}
	return exe
}

// calleeProcess is a running callee executable.
type calleeProcess struct {
	base string
	logs *testutil.SyncBuffer
}

// startCalleeProcess runs exe with env (plus PORT=0) and waits until it listens and
// authmw has loaded the issuer's keys (a token-carrying request stops getting 503
// keys_unavailable).
func startCalleeProcess(t *testing.T, exe string, env map[string]string, token string) *calleeProcess {
	t.Helper()
	cmd := exec.Command(exe)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "AUTHMW_") && !strings.HasPrefix(k, "CALLEE_") &&
			k != EnvPort && k != EnvCustomHandlerPort && !strings.EqualFold(k, "HTTP_PROXY") && !strings.EqualFold(k, "HTTPS_PROXY") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, EnvPort+"=0")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &testutil.SyncBuffer{}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); pw.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(waitFor):
			cmd.Process.Kill()
			<-exited
		}
		if strings.Contains(logs.String(), "eyJ") {
			t.Error("the callee logged something token-shaped")
		}
	})
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			logs.Write([]byte(line + "\n"))
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if !sent && json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "callee: listening" {
				addrc <- rec.Addr
				sent = true
			}
		}
		io.Copy(io.Discard, pr)
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-exited:
		t.Fatalf("the callee exited:\n%s", logs.String())
	case <-time.After(waitFor):
		t.Fatalf("the callee never listened:\n%s", logs.String())
	}
	cp := &calleeProcess{base: "http://" + addr, logs: logs}
	deadline := time.Now().Add(waitFor)
	for {
		// A protected path (the health endpoint may be excluded): forwarded once ready.
		resp, body := send(t, newReq(t, http.MethodGet, cp.base+"/readiness-probe", token, nil))
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), string(authmw.ReasonKeysUnavailable)) {
			return cp
		}
		if time.Now().After(deadline) {
			t.Fatalf("the callee never loaded the issuer's keys:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rawRequest is one request as rawUpstream read it off the wire.
type rawRequest struct {
	line    string
	headers [][2]string // name exactly as sent, value
}

// rawUpstream is a keep-alive HTTP/1.1 server on a bare socket. GET /hang never
// answers; anything else is answered 200 with the number of headers it saw.
type rawUpstream struct {
	ln   net.Listener
	mu   sync.Mutex
	reqs []rawRequest
	quit chan struct{}
}

func startRawUpstream(t *testing.T) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln, quit: make(chan struct{})}
	t.Cleanup(func() { close(u.quit); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go u.serve(c)
		}
	}()
	return u
}

func (u *rawUpstream) url() string { return "http://" + u.ln.Addr().String() }

func (u *rawUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		req := rawRequest{line: strings.TrimRight(line, "\r\n")}
		length := 0
		for {
			h, err := br.ReadString('\n')
			if err != nil {
				return
			}
			h = strings.TrimRight(h, "\r\n")
			if h == "" {
				break
			}
			name, value, _ := strings.Cut(h, ":")
			value = strings.TrimSpace(value)
			req.headers = append(req.headers, [2]string{name, value})
			if strings.EqualFold(name, "Content-Length") {
				length, _ = strconv.Atoi(value)
			}
		}
		io.CopyN(io.Discard, br, int64(length))
		u.mu.Lock()
		u.reqs = append(u.reqs, req)
		u.mu.Unlock()
		if strings.HasPrefix(req.line, "GET /hang ") {
			<-u.quit
			return
		}
		body := strconv.Itoa(len(req.headers))
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
}

func (u *rawUpstream) requests() []rawRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]rawRequest(nil), u.reqs...)
}

// TestGatewayProcessIdentityHeaders: through the real executable, a plain upstream
// gets the Easy Auth headers for an allowed call, nothing for a denied one, and never
// a spoofed identity header in any spelling.
func TestGatewayProcessIdentityHeaders(t *testing.T) {
	t.Parallel()
	exe := buildCallee(t)
	p := startPlatform(t)
	up := startRawUpstream(t)
	good := mint(t, p, allowedID, testAudience)
	env := map[string]string{
		"AUTHMW_TENANT_ID": p.TenantID(), "AUTHMW_AUTHORITY_HOST": p.AuthorityURL(), "AUTHMW_AUDIENCES": testAudience,
		"AUTHMW_ALLOWED_APPLICATIONS": allowedID.ClientID, "AUTHMW_REQUIRED_ROLES": testRole,
		EnvUpstreamURL: up.url(),
	}
	cp := startCalleeProcess(t, exe, env, good)
	spoofs := []string{
		"X-MS-CLIENT-PRINCIPAL", "x-ms-client-principal", "X_MS_CLIENT_PRINCIPAL", "x_ms_client_principal",
		"X-MS-CLIENT-PRINCIPAL-ID", "X_MS_CLIENT_PRINCIPAL_ID", "X-Ms-Client-Principal_Name", "x-ms-client-principal-idp",
		"X-MS-TOKEN-AAD-ACCESS-TOKEN", "X_MS_TOKEN_AAD_ID_TOKEN",
	}
	const spoofValue = "c3Bvb2ZlZA" // base64 of "spoofed", unpadded
	for _, tc := range []struct {
		name   string
		token  string
		status int
	}{
		{"allowed", good, 200},
		{"rogue", mint(t, p, rogueID, testAudience), 403},
		{"no token", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(up.requests())
			req := newReq(t, http.MethodGet, cp.base+"/orders?id=7", tc.token, nil)
			for _, k := range spoofs {
				req.Header[k] = []string{spoofValue}
			}
			resp, body := send(t, req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d (%s)", resp.StatusCode, tc.status, body)
			}
			reqs := up.requests()
			if tc.status != 200 {
				if len(reqs) != before {
					t.Fatalf("a denied request reached the upstream")
				}
				return
			}
			if len(reqs) != before+1 {
				t.Fatalf("upstream saw %d request(s); want 1", len(reqs)-before)
			}
			got := reqs[len(reqs)-1]
			if got.line != "GET /orders?id=7 HTTP/1.1" {
				t.Errorf("request line %q", got.line)
			}
			ids := map[string]string{}
			for _, h := range got.headers {
				norm := strings.ToLower(strings.ReplaceAll(h[0], "_", "-"))
				if h[1] == spoofValue {
					t.Errorf("spoofed %s reached the upstream", h[0])
				}
				if strings.HasPrefix(norm, "x-ms-") {
					if _, dup := ids[norm]; dup {
						t.Errorf("%s arrived twice", norm)
					}
					ids[norm] = h[1]
				}
			}
			if len(ids) != 4 || ids["x-ms-client-principal-id"] != allowedID.ObjectID || ids["x-ms-client-principal-idp"] != "aad" {
				t.Fatalf("identity headers on the wire: %v", keys(ids))
			}
			raw, err := base64.StdEncoding.DecodeString(ids["x-ms-client-principal"])
			if err != nil || !strings.Contains(string(raw), `"typ":"appid","val":"`+allowedID.ClientID+`"`) {
				t.Errorf("X-MS-CLIENT-PRINCIPAL does not carry the verified appid (%v)", err)
			}
		})
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestGatewayProcessUpstreamFailures: the executable starts with its upstream down
// and answers 502; a hanging upstream gets 504 after CALLEE_UPSTREAM_TIMEOUT.
func TestGatewayProcessUpstreamFailures(t *testing.T) {
	t.Parallel()
	exe := buildCallee(t)
	p := startPlatform(t)
	good := mint(t, p, allowedID, testAudience)
	env := func(upstream string) map[string]string {
		return map[string]string{
			"AUTHMW_TENANT_ID": p.TenantID(), "AUTHMW_AUTHORITY_HOST": p.AuthorityURL(), "AUTHMW_AUDIENCES": testAudience,
			"AUTHMW_ALLOWED_APPLICATIONS": allowedID.ClientID, "AUTHMW_REQUIRED_ROLES": testRole,
			"AUTHMW_EXCLUDED_PATHS": HealthzPath, EnvUpstreamURL: upstream, EnvUpstreamTimeout: "1s",
		}
	}
	down := startCalleeProcess(t, exe, env("http://"+closedPort(t)), good)
	resp, body := send(t, newReq(t, http.MethodGet, down.base+"/x", good, nil))
	if resp.StatusCode != http.StatusBadGateway || problemReason(t, resp, body) != ReasonUpstreamUnavailable {
		t.Fatalf("upstream down: %d %s", resp.StatusCode, body)
	}
	resp, body = send(t, newReq(t, http.MethodGet, down.base+HealthzPath, "", nil))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"down"`) {
		t.Fatalf("health, upstream down: %d %s", resp.StatusCode, body)
	}

	up := startRawUpstream(t)
	slow := startCalleeProcess(t, exe, env(up.url()), good)
	resp, body = send(t, newReq(t, http.MethodGet, slow.base+"/hang", good, nil))
	if resp.StatusCode != http.StatusGatewayTimeout || problemReason(t, resp, body) != ReasonUpstreamTimeout {
		t.Fatalf("hanging upstream: %d %s", resp.StatusCode, body)
	}
	// The gateway still serves once the upstream answers again.
	resp, _ = send(t, newReq(t, http.MethodGet, slow.base+"/fine", good, nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the timeout: %d", resp.StatusCode)
	}
}

// TestGatewayProcessBadSettings: a bad gateway setting stops the executable before
// it listens, with a message naming the setting and not echoing a credential.
func TestGatewayProcessBadSettings(t *testing.T) {
	t.Parallel()
	exe := buildCallee(t)
	for _, tc := range []struct {
		name, key, value string
	}{
		{"plain http off loopback", EnvUpstreamURL, "http://192.0.2.10:8080"},
		{"not http", EnvUpstreamURL, "file:///etc/passwd"},
		{"credentials", EnvUpstreamURL, "https://admin:s3cret@app.example"},
		{"timeout", EnvUpstreamTimeout, "forever"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe)
			cmd.Env = []string{"AUTHMW_TENANT_ID=7c3e9f2a-4b1d-4e8a-9f6c-2d5b8a1ef2fa", "AUTHMW_AUDIENCES=" + testAudience, EnvPort + "=0",
				EnvUpstreamURL + "=http://127.0.0.1:8080", tc.key + "=" + tc.value}
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the callee started with %s=%s", tc.key, tc.value)
			}
			if !strings.Contains(string(out), tc.key) || strings.Contains(string(out), "callee: listening") {
				t.Errorf("output does not name %s, or the callee listened:\n%s", tc.key, out)
			}
			if strings.Contains(string(out), "s3cret") {
				t.Errorf("output echoes a credential:\n%s", out)
			}
		})
	}
}
