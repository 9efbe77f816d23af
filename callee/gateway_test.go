package callee

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/internal/localidp"
)

// waitFor bounds a wait on a channel that must be closed when the code under test
// streams; it is a deadlock detector, not a timing assertion.
const waitFor = 30 * time.Second

// recorder is an upstream that records what reached it.
type recorder struct {
	mu    sync.Mutex
	reqs  []*http.Request
	count atomic.Int64
}

func (rc *recorder) record(r *http.Request) {
	rc.count.Add(1)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, r.Clone(context.Background()))
	rc.mu.Unlock()
}

func (rc *recorder) last(t *testing.T) *http.Request {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.reqs) == 0 {
		t.Fatal("nothing reached the upstream")
	}
	return rc.reqs[len(rc.reqs)-1]
}

// startUpstream runs h on a loopback httptest server, recording every request.
func startUpstream(t *testing.T, h http.HandlerFunc) (*recorder, string) {
	t.Helper()
	rc := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.record(r)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return rc, srv.URL
}

// gatewayEnv is the callee's test environment in gateway mode in front of upstream.
func gatewayEnv(p *localidp.Platform, upstream string, extra map[string]string) func(string) (string, bool) {
	m := map[string]string{EnvUpstreamURL: upstream}
	for k, v := range extra {
		m[k] = v
	}
	return envFor(p, m)
}

func client() *http.Client {
	return &http.Client{Timeout: waitFor, Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
}

func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func newReq(t *testing.T, method, url, token string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func problemReason(t *testing.T, resp *http.Response, body []byte) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("Content-Type %q; want application/problem+json", ct)
	}
	var pb struct {
		Reason string `json:"reason"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(body, &pb); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	if pb.Status != resp.StatusCode {
		t.Errorf("problem status %d; HTTP status %d", pb.Status, resp.StatusCode)
	}
	return pb.Reason
}

// TestGatewayForwardsRequestAndResponse: method, path, query, body, status and
// headers pass both ways; the upstream's base path prefixes the request's.
func TestGatewayForwardsRequestAndResponse(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Upstream", "yes")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.Path, r.URL.RawQuery, b)
	})
	_, base := serve(t, gatewayEnv(p, up+"/base", nil))
	tok := mint(t, p, allowedID, testAudience)
	for _, method := range []string{http.MethodPut, http.MethodPatch, http.MethodDelete, "PURGE"} {
		req := newReq(t, method, base+"/items/42?x=1&y=%2F", tok, strings.NewReader("payload"))
		req.Header.Set("X-Custom", "v")
		resp, body := send(t, req)
		if resp.StatusCode != http.StatusCreated || string(body) != method+" /base/items/42 x=1&y=%2F payload" {
			t.Fatalf("%s: %d %q", method, resp.StatusCode, body)
		}
		if resp.Header.Get("X-Upstream") != "yes" || len(resp.Header.Values("Set-Cookie")) != 2 {
			t.Errorf("%s: response headers %v", method, headerNames(resp.Header))
		}
		if got := rc.last(t).Header.Get("X-Custom"); got != "v" {
			t.Errorf("%s: X-Custom reached the upstream as %q", method, got)
		}
	}
}

// TestGatewayIdentityHeaders: an allowed call carries the Easy Auth headers of the
// verified token; a denied one never reaches the upstream; an excluded path is
// forwarded without a token and without any identity header.
func TestGatewayIdentityHeaders(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	_, base := serve(t, gatewayEnv(p, up, map[string]string{"AUTHMW_EXCLUDED_PATHS": "/public/*"}))
	good := mint(t, p, allowedID, testAudience)
	rogue := mint(t, p, rogueID, testAudience)
	spoof := map[string]string{
		"X-MS-CLIENT-PRINCIPAL":       base64.StdEncoding.EncodeToString([]byte(`{"auth_typ":"aad","claims":[{"typ":"roles","val":"Admin"}]}`)),
		"X-MS-CLIENT-PRINCIPAL-ID":    rogueID.ObjectID,
		"X_MS_CLIENT_PRINCIPAL_NAME":  "spoofed",
		"x-ms-token-aad-access-token": "spoofed",
		"X.MS.CLIENT.PRINCIPAL.NAME":  "spoofed", // adversarial review: CGI reads it as HTTP_X_MS_CLIENT_PRINCIPAL_NAME
	}
	for _, tc := range []struct {
		name, path, token string
		status            int
		reaches           bool
		identity          bool
	}{
		{"allowed", "/api/thing", good, 200, true, true},
		{"rogue application", "/api/thing", rogue, 403, false, false},
		{"no token", "/api/thing", "", 401, false, false},
		{"garbage token", "/api/thing", "not.a.jwt", 401, false, false},
		{"excluded path, no token", "/public/logo.png", "", 200, true, false},
		{"excluded path traversal is not excluded", "/public/../api/thing", "", 401, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rc.count.Load()
			req := newReq(t, http.MethodGet, base+tc.path, tc.token, nil)
			for k, v := range spoof {
				req.Header[k] = []string{v} // verbatim spelling on the wire
			}
			resp, body := send(t, req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if got := rc.count.Load() - before; (got == 1) != tc.reaches {
				t.Fatalf("upstream saw %d request(s); want reached=%v", got, tc.reaches)
			}
			if !tc.reaches {
				return
			}
			h := rc.last(t).Header
			for k, v := range h {
				if slicesContain(v, "spoofed") || slicesContain(v, rogueID.ObjectID) || slicesContain(v, spoof["X-MS-CLIENT-PRINCIPAL"]) {
					t.Errorf("spoofed %s reached the upstream", k)
				}
				if isIdentityHeader(k) && !tc.identity {
					t.Errorf("%s reached the upstream on an unauthenticated request", k)
				}
			}
			if tc.identity {
				checkPrincipal(t, h, p)
			}
		})
	}
}

// isIdentityHeader reports whether authmw.StripIdentityHeaders removes a header named name.
func isIdentityHeader(name string) bool {
	h := http.Header{name: nil}
	authmw.StripIdentityHeaders(h)
	return len(h) == 0
}

// headerNames lists h's names only: values may be tokens.
func headerNames(h http.Header) []string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func slicesContain(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

// checkPrincipal checks the Easy Auth headers for allowedID.
func checkPrincipal(t *testing.T, h http.Header, p *localidp.Platform) {
	t.Helper()
	var n int
	for k := range h {
		if isIdentityHeader(k) {
			n++
			if len(h[k]) != 1 {
				t.Errorf("%s has %d values", k, len(h[k]))
			}
		}
	}
	if n != 4 {
		t.Errorf("%d identity headers; want X-MS-CLIENT-PRINCIPAL, -ID, -NAME, -IDP: %v", n, headerNames(h))
	}
	if h.Get("X-Ms-Client-Principal-Id") != allowedID.ObjectID || h.Get("X-Ms-Client-Principal-Idp") != "aad" || h.Get("X-Ms-Client-Principal-Name") == "" {
		t.Errorf("principal headers: -ID %q, -IDP %q, -NAME %q", h.Get("X-Ms-Client-Principal-Id"), h.Get("X-Ms-Client-Principal-Idp"), h.Get("X-Ms-Client-Principal-Name"))
	}
	raw, err := base64.StdEncoding.DecodeString(h.Get("X-Ms-Client-Principal"))
	if err != nil {
		t.Fatalf("X-MS-CLIENT-PRINCIPAL is not base64: %v", err)
	}
	var ep struct {
		AuthTyp string `json:"auth_typ"`
		Claims  []struct {
			Typ, Val string
		} `json:"claims"`
	}
	if err := json.Unmarshal(raw, &ep); err != nil {
		t.Fatalf("X-MS-CLIENT-PRINCIPAL is not JSON: %v", err)
	}
	got := map[string]string{}
	for _, c := range ep.Claims {
		got[c.Typ] = c.Val
	}
	if ep.AuthTyp != "aad" || got["appid"] != allowedID.ClientID || got["roles"] != testRole ||
		got["http://schemas.microsoft.com/identity/claims/tenantid"] != p.TenantID() {
		t.Errorf("X-MS-CLIENT-PRINCIPAL = %s", raw)
	}
}

// TestGatewayHopByHop: hop-by-hop headers (RFC 9110 §7.6.1), including those a
// Connection header names, stop at the gateway both ways; naming the identity
// headers in Connection does not remove the ones the gateway sets.
func TestGatewayHopByHop(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Upstream-Hop")
		w.Header().Set("X-Upstream-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Upstream-End", "1")
	})
	_, base := serve(t, gatewayEnv(p, up, nil))
	req := newReq(t, http.MethodGet, base+"/x", mint(t, p, allowedID, testAudience), nil)
	req.Header.Set("Connection", "X-Client-Hop, X-Ms-Client-Principal, X-Ms-Client-Principal-Id")
	req.Header.Set("X-Client-Hop", "1")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("X-Client-End", "1")
	resp, _ := send(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := rc.last(t).Header
	for _, k := range []string{"X-Client-Hop", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization"} {
		if h.Get(k) != "" {
			t.Errorf("hop-by-hop %s reached the upstream", k)
		}
	}
	if h.Get("X-Client-End") != "1" {
		t.Error("end-to-end header X-Client-End was dropped")
	}
	checkPrincipal(t, h, p)
	if resp.Header.Get("X-Upstream-Hop") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers reached the client: %v", headerNames(resp.Header))
	}
	if resp.Header.Get("X-Upstream-End") != "1" {
		t.Error("end-to-end response header was dropped")
	}
}

// TestGatewayForwardedHeaders: X-Forwarded-For/-Host/-Proto are set by the gateway;
// the client's are replaced unless CALLEE_TRUST_FORWARDED_HEADERS=true.
func TestGatewayForwardedHeaders(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	_, base := serve(t, gatewayEnv(p, up, nil))
	_, trusting := serve(t, gatewayEnv(p, up, map[string]string{EnvTrustForwardedHeaders: "true"}))
	tok := mint(t, p, allowedID, testAudience)
	for _, tc := range []struct {
		name, base, xff, host, proto string
	}{
		{"default: client's values replaced", base, "127.0.0.1", strings.TrimPrefix(base, "http://"), "http"},
		{"trusted: appended and kept", trusting, "203.0.113.7, 127.0.0.1", "app.example.com", "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newReq(t, http.MethodGet, tc.base+"/x", tok, nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			req.Header.Set("X-Forwarded-Host", "app.example.com")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("Forwarded", "for=203.0.113.9")
			if resp, _ := send(t, req); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			h := rc.last(t).Header
			if got := strings.Join(h.Values("X-Forwarded-For"), ", "); got != tc.xff {
				t.Errorf("X-Forwarded-For %q; want %q", got, tc.xff)
			}
			if h.Get("X-Forwarded-Host") != tc.host || h.Get("X-Forwarded-Proto") != tc.proto {
				t.Errorf("X-Forwarded-Host %q, -Proto %q; want %q, %q", h.Get("X-Forwarded-Host"), h.Get("X-Forwarded-Proto"), tc.host, tc.proto)
			}
			if h.Get("Forwarded") != "" {
				t.Error("the client's Forwarded header reached the upstream")
			}
		})
	}
}

// TestGatewayAuthorizationSetting: the Authorization header is passed on by default
// and removed with CALLEE_UPSTREAM_PASS_AUTHORIZATION=false.
func TestGatewayAuthorizationSetting(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	tok := mint(t, p, allowedID, testAudience)
	for _, tc := range []struct {
		setting string
		want    string
	}{{"", "Bearer " + tok}, {"true", "Bearer " + tok}, {"false", ""}} {
		_, base := serve(t, gatewayEnv(p, up, map[string]string{EnvUpstreamPassAuthorization: tc.setting}))
		if resp, _ := send(t, newReq(t, http.MethodGet, base+"/x", tok, nil)); resp.StatusCode != 200 {
			t.Fatalf("%q: status %d", tc.setting, resp.StatusCode)
		}
		h := rc.last(t).Header
		if h.Get("Authorization") != tc.want {
			t.Errorf("%s=%q: upstream Authorization present=%v; want present=%v", EnvUpstreamPassAuthorization, tc.setting, h.Get("Authorization") != "", tc.want != "")
		}
		checkPrincipal(t, h, p)
	}
}

// countingReader counts bytes and signals after the first read.
type chunkedBody struct {
	first   []byte
	gate    <-chan struct{} // closed by the upstream once it has the first bytes
	rest    int64
	sent    atomic.Int64
	stalled atomic.Bool
	state   int
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	switch b.state {
	case 0:
		b.state = 1
		n := copy(p, b.first)
		b.sent.Add(int64(n))
		return n, nil
	case 1:
		select {
		case <-b.gate:
		case <-time.After(waitFor):
			b.stalled.Store(true)
			return 0, errors.New("the upstream never saw the first bytes: the gateway buffers request bodies")
		}
		b.state = 2
		fallthrough
	default:
		if b.rest == 0 {
			return 0, io.EOF
		}
		n := int64(len(p))
		if n > b.rest {
			n = b.rest
		}
		for i := range p[:n] {
			p[i] = byte(i)
		}
		b.rest -= n
		b.sent.Add(n)
		return int(n), nil
	}
}

// TestGatewayStreamsUpload: a 50 MB upload reaches the upstream as it is sent: the
// upstream reads the first bytes before the client has sent the rest (the client
// waits for that), so the gateway cannot be holding the body.
func TestGatewayStreamsUpload(t *testing.T) {
	t.Parallel()
	const size = 50 << 20
	p := startPlatform(t)
	gotFirst := make(chan struct{})
	_, up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		hash := sha256.New()
		buf := make([]byte, 1024)
		n, err := io.ReadFull(r.Body, buf)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		hash.Write(buf[:n])
		close(gotFirst)
		m, err := io.Copy(hash, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		fmt.Fprintf(w, "%d %x", int64(n)+m, hash.Sum(nil))
	})
	_, base := serve(t, gatewayEnv(p, up, nil))
	first := bytes.Repeat([]byte("f"), 1024)
	body := &chunkedBody{first: first, gate: gotFirst, rest: size - int64(len(first))}
	req := newReq(t, http.MethodPost, base+"/upload", mint(t, p, allowedID, testAudience), body)
	req.ContentLength = size
	resp, out := send(t, req)
	if body.stalled.Load() {
		t.Fatal("the upstream never saw the first bytes before the client sent the rest: the gateway buffers request bodies")
	}
	want := sha256.New()
	want.Write(first)
	rest := make([]byte, 32<<10)
	for left := int64(size - len(first)); left > 0; {
		n := min(int64(len(rest)), left)
		for i := range rest[:n] {
			rest[i] = byte(i)
		}
		want.Write(rest[:n])
		left -= n
	}
	if resp.StatusCode != 200 || string(out) != strconv.Itoa(size)+" "+hex.EncodeToString(want.Sum(nil)) {
		t.Fatalf("status %d body %q", resp.StatusCode, out)
	}
}

// TestGatewayStreamsResponse: the client gets the first chunk while the upstream is
// still waiting to send the rest (it waits for the client to have it).
func TestGatewayStreamsResponse(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	clientGotFirst := make(chan struct{})
	stalled := make(chan struct{})
	_, up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		io.WriteString(w, "first chunk\n")
		http.NewResponseController(w).Flush()
		select {
		case <-clientGotFirst:
		case <-time.After(waitFor):
			close(stalled)
			return
		}
		for range 100 {
			w.Write(bytes.Repeat([]byte("x"), 64<<10))
		}
		io.WriteString(w, "\nlast chunk\n")
	})
	_, base := serve(t, gatewayEnv(p, up, nil))
	resp, err := client().Do(newReq(t, http.MethodGet, base+"/stream", mint(t, p, allowedID, testAudience), nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first chunk\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(clientGotFirst)
	rest, err := io.ReadAll(br)
	select {
	case <-stalled:
		t.Fatal("the upstream finished before the client had the first chunk: the gateway buffers responses")
	default:
	}
	if err != nil || !bytes.HasSuffix(rest, []byte("\nlast chunk\n")) || len(rest) != 100*64<<10+len("\nlast chunk\n") {
		t.Fatalf("rest: %d bytes, %v", len(rest), err)
	}
}

// TestGatewayServerSentEvents: each event reaches the client before the upstream
// writes the next one (the upstream waits for the client's acknowledgement).
func TestGatewayServerSentEvents(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	ack := make(chan int)
	var upstreamErr atomic.Value
	_, up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		rc := http.NewResponseController(w)
		for i := range 3 {
			fmt.Fprintf(w, "id: %d\nevent: tick\ndata: {\"n\":%d}\n\n", i, i)
			rc.Flush()
			select {
			case got := <-ack:
				if got != i {
					upstreamErr.Store(fmt.Sprintf("ack %d for event %d", got, i))
				}
			case <-time.After(waitFor):
				upstreamErr.Store(fmt.Sprintf("event %d never reached the client: the gateway buffers event streams", i))
				return
			}
		}
	})
	_, base := serve(t, gatewayEnv(p, up, nil))
	req := newReq(t, http.MethodGet, base+"/events", mint(t, p, allowedID, testAudience), nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		var ev []string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("event %d: %v (upstream: %v)", i, err, upstreamErr.Load())
			}
			if line == "\n" {
				break
			}
			ev = append(ev, strings.TrimSuffix(line, "\n"))
		}
		if want := []string{"id: " + strconv.Itoa(i), "event: tick", fmt.Sprintf(`data: {"n":%d}`, i)}; strings.Join(ev, "|") != strings.Join(want, "|") {
			t.Fatalf("event %d = %q; want %q", i, ev, want)
		}
		ack <- i
	}
	if e := upstreamErr.Load(); e != nil {
		t.Fatal(e)
	}
}

// TestGatewayWebSocket: an upgrade is forwarded only once authorized; without a
// token the upstream never sees it; with one, bytes flow both ways after the 101.
func TestGatewayWebSocket(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("X-Ms-Client-Principal-Id") != allowedID.ObjectID {
			http.Error(w, "not an authorized upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo " + line)
		brw.Flush()
	})
	_, base := serve(t, gatewayEnv(p, up, nil))
	addr := strings.TrimPrefix(base, "http://")
	upgrade := func(token string) (*http.Response, *bufio.Reader, net.Conn) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.SetDeadline(time.Now().Add(waitFor))
		var b strings.Builder
		b.WriteString("GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
		b.WriteString("X-MS-CLIENT-PRINCIPAL-ID: " + rogueID.ObjectID + "\r\n")
		if token != "" {
			b.WriteString("Authorization: Bearer " + token + "\r\n")
		}
		b.WriteString("\r\n")
		if _, err := io.WriteString(conn, b.String()); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp, br, conn
	}
	resp, _, _ := upgrade("")
	if resp.StatusCode != http.StatusUnauthorized || rc.count.Load() != 0 {
		t.Fatalf("upgrade without token: %d, upstream saw %d request(s); want 401 and none", resp.StatusCode, rc.count.Load())
	}
	resp, _, _ = upgrade(mint(t, p, rogueID, testAudience))
	if resp.StatusCode != http.StatusForbidden || rc.count.Load() != 0 {
		t.Fatalf("upgrade with a rogue token: %d, upstream saw %d request(s); want 403 and none", resp.StatusCode, rc.count.Load())
	}
	resp, br, conn := upgrade(mint(t, p, allowedID, testAudience))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("authorized upgrade: %d", resp.StatusCode)
	}
	io.WriteString(conn, "hello\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo hello\n" {
		t.Fatalf("after the upgrade: %q, %v", line, err)
	}
}

// TestGatewayUpstreamFailures: connection refused is 502, a slow upstream 504 once
// CALLEE_UPSTREAM_TIMEOUT has passed; both problem+json, and the health endpoint
// reports the upstream down.
func TestGatewayUpstreamFailures(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	tok := mint(t, p, allowedID, testAudience)

	down := closedPort(t)
	_, base := serve(t, gatewayEnv(p, "http://"+down, map[string]string{"AUTHMW_EXCLUDED_PATHS": HealthzPath}))
	resp, body := send(t, newReq(t, http.MethodGet, base+"/x", tok, nil))
	if resp.StatusCode != http.StatusBadGateway || problemReason(t, resp, body) != ReasonUpstreamUnavailable {
		t.Fatalf("upstream down: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), down) {
		t.Error("the 502 body names the upstream's address")
	}
	resp, body = send(t, newReq(t, http.MethodGet, base+HealthzPath, "", nil))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"upstream":{"status":"down"}`) {
		t.Fatalf("health with the upstream down: %d %s", resp.StatusCode, body)
	}

	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	_, slow := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	_, base = serve(t, gatewayEnv(p, slow, map[string]string{EnvUpstreamTimeout: "1s"}))
	resp, body = send(t, newReq(t, http.MethodGet, base+"/x", tok, nil))
	if resp.StatusCode != http.StatusGatewayTimeout || problemReason(t, resp, body) != ReasonUpstreamTimeout {
		t.Fatalf("slow upstream: %d %s", resp.StatusCode, body)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestGatewayHealth: the gateway starts with its upstream down, says so, and
// reports it up once it answers; with CALLEE_UPSTREAM_HEALTH_PATH it probes that path.
func TestGatewayHealth(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	addr := closedPort(t)
	_, base := serve(t, gatewayEnv(p, "http://"+addr, map[string]string{"AUTHMW_EXCLUDED_PATHS": HealthzPath, EnvUpstreamHealthPath: "/ready"}))
	resp, body := send(t, newReq(t, http.MethodGet, base+HealthzPath, "", nil))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"status":"degraded"`) {
		t.Fatalf("before the upstream starts: %d %s", resp.StatusCode, body)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	var probes atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ready" && r.Header.Get("Authorization") == "" && r.Header.Get("X-Ms-Client-Principal") == "" {
			probes.Add(1)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	deadline := time.Now().Add(waitFor)
	for {
		resp, body = send(t, newReq(t, http.MethodGet, base+HealthzPath, "", nil))
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never reported the upstream up: %d %s", resp.StatusCode, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(string(body), `"upstream":{"status":"up"}`) || probes.Load() == 0 {
		t.Fatalf("health: %s, %d probe(s) of /ready", body, probes.Load())
	}
	// Without the exclusion, the health endpoint needs a token like everything else.
	_, base = serve(t, gatewayEnv(p, "http://"+addr, nil))
	if resp, _ := send(t, newReq(t, http.MethodGet, base+HealthzPath, "", nil)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("health without a token, not excluded: %d; want 401", resp.StatusCode)
	}
}

// TestGatewayConnectRefused: CONNECT is never tunnelled, token or not.
func TestGatewayConnectRefused(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	_, base := serve(t, gatewayEnv(p, up, nil))
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nAuthorization: Bearer %s\r\n\r\n", mint(t, p, allowedID, testAudience))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusMethodNotAllowed || rc.count.Load() != 0 {
		t.Fatalf("CONNECT: %d, upstream saw %d", resp.StatusCode, rc.count.Load())
	}
}

// TestGatewayFailsClosedWithoutIdentity: a Principal whose Easy Auth values are
// missing is never forwarded (as if the policy lost EasyAuthHeaders): here authmw
// verified the token under a policy without them.
func TestGatewayFailsClosedWithoutIdentity(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	cfg, err := GatewayConfigFromEnv(func(k string) string { return map[string]string{EnvUpstreamURL: up}[k] })
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(*cfg, quietLogger())
	defer g.close()
	m, err := authmw.New(t.Context(), authmw.Config{Policy: authmw.Policy{TenantID: p.TenantID(), AuthorityHost: p.AuthorityURL(),
		Audiences: []string{testAudience}, AllowedApplications: []string{allowedID.ClientID}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header.Set("Authorization", "Bearer "+mint(t, p, allowedID, testAudience))
	w := httptest.NewRecorder()
	m.Handler(g.proxy).ServeHTTP(w, req)
	if w.Code != http.StatusInternalServerError || rc.count.Load() != 0 {
		t.Fatalf("status %d, upstream saw %d; want 500 and nothing", w.Code, rc.count.Load())
	}
}

// TestGatewayConfig: every bad gateway setting stops startup with its name, and no
// value that may hold a credential is echoed.
func TestGatewayConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr []string
		check   func(*testing.T, *GatewayConfig)
	}{
		{"unset", nil, nil, func(t *testing.T, c *GatewayConfig) {
			if c != nil {
				t.Errorf("config %+v; want nil", c)
			}
		}},
		{"defaults", map[string]string{EnvUpstreamURL: "http://127.0.0.1:8080"}, nil, func(t *testing.T, c *GatewayConfig) {
			if c.Timeout != DefaultUpstreamTimeout || !c.PassAuthorization || c.TrustForwarded || c.HealthPath != "" {
				t.Errorf("config %+v", c)
			}
		}},
		{"localhost and https", map[string]string{EnvUpstreamURL: "http://localhost:3000/app"}, nil, nil},
		{"https off loopback", map[string]string{EnvUpstreamURL: "https://app.internal.example"}, nil, nil},
		{"http off loopback with insecure", map[string]string{EnvUpstreamURL: "http://10.0.0.5:8080", EnvUpstreamInsecureHTTP: "true"}, nil, nil},
		{"http off loopback", map[string]string{EnvUpstreamURL: "http://10.0.0.5:8080"}, []string{EnvUpstreamURL, EnvUpstreamInsecureHTTP}, nil},
		{"scheme", map[string]string{EnvUpstreamURL: "ftp://127.0.0.1"}, []string{EnvUpstreamURL}, nil},
		{"unix socket scheme", map[string]string{EnvUpstreamURL: "unix:///run/app.sock"}, []string{EnvUpstreamURL}, nil},
		{"relative", map[string]string{EnvUpstreamURL: "127.0.0.1:8080"}, []string{EnvUpstreamURL}, nil},
		{"no host", map[string]string{EnvUpstreamURL: "http:///path"}, []string{EnvUpstreamURL}, nil},
		{"credentials", map[string]string{EnvUpstreamURL: "http://user:s3cret@127.0.0.1:8080"}, []string{EnvUpstreamURL}, nil},
		{"unparsable", map[string]string{EnvUpstreamURL: "http://127.0.0.1:80%zz/s3cret"}, []string{EnvUpstreamURL}, nil},
		{"query", map[string]string{EnvUpstreamURL: "http://127.0.0.1:8080/?key=s3cret"}, []string{EnvUpstreamURL}, nil},
		{"bad port", map[string]string{EnvUpstreamURL: "http://127.0.0.1:0"}, []string{EnvUpstreamURL}, nil},
		{"timeout", map[string]string{EnvUpstreamURL: "http://127.0.0.1:8080", EnvUpstreamTimeout: "5s"}, nil, func(t *testing.T, c *GatewayConfig) {
			if c.Timeout != 5*time.Second {
				t.Errorf("timeout %v", c.Timeout)
			}
		}},
		{"timeout unbounded", map[string]string{EnvUpstreamURL: "http://127.0.0.1:8080", EnvUpstreamTimeout: "0s"}, []string{EnvUpstreamTimeout}, nil},
		{"timeout too long", map[string]string{EnvUpstreamURL: "http://127.0.0.1:8080", EnvUpstreamTimeout: "1h"}, []string{EnvUpstreamTimeout}, nil},
		{"timeout not a duration", map[string]string{EnvUpstreamURL: "http://127.0.0.1:8080", EnvUpstreamTimeout: "30"}, []string{EnvUpstreamTimeout}, nil},
		{"booleans", map[string]string{EnvUpstreamURL: "http://127.0.0.1:8080", EnvUpstreamPassAuthorization: "no way", EnvTrustForwardedHeaders: "yes", EnvUpstreamInsecureHTTP: "maybe"},
			[]string{EnvUpstreamPassAuthorization, EnvTrustForwardedHeaders, EnvUpstreamInsecureHTTP}, nil},
		{"health path", map[string]string{EnvUpstreamURL: "http://127.0.0.1:8080", EnvUpstreamHealthPath: "healthz"}, []string{EnvUpstreamHealthPath}, nil},
		{"health path to another host", map[string]string{EnvUpstreamURL: "http://127.0.0.1:8080", EnvUpstreamHealthPath: "//evil.example/x"}, []string{EnvUpstreamHealthPath}, nil},
		{"gateway settings without URL", map[string]string{EnvUpstreamTimeout: "5s", EnvUpstreamPassAuthorization: "false"}, []string{EnvUpstreamTimeout, EnvUpstreamPassAuthorization, EnvUpstreamURL}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := GatewayConfigFromEnv(func(k string) string { return tc.env[k] })
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("accepted %v", tc.env)
				}
				for _, name := range tc.wantErr {
					if !strings.Contains(err.Error(), name) {
						t.Errorf("error does not name %s: %v", name, err)
					}
				}
				if !errors.Is(err, ErrConfig) {
					t.Errorf("error does not wrap ErrConfig: %v", err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error echoes a credential: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GatewayConfigFromEnv: %v", err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// TestGatewayRefusesNonWebSocketUpgrades: an h2c (or any non-WebSocket) upgrade offer
// is not forwarded, so no tunnel can carry requests the gateway never authorizes.
func TestGatewayRefusesNonWebSocketUpgrades(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	_, base := serve(t, gatewayEnv(p, up, nil))
	for _, proto := range []string{"h2c", "H2C", "tls/1.3", "websocket2"} {
		req := newReq(t, http.MethodGet, base+"/x", mint(t, p, allowedID, testAudience), nil)
		req.Header.Set("Connection", "Upgrade, HTTP2-Settings")
		req.Header.Set("Upgrade", proto)
		req.Header.Set("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")
		resp, _ := send(t, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", proto, resp.StatusCode)
		}
		h := rc.last(t).Header
		if h.Get("Upgrade") != "" || h.Get("Http2-Settings") != "" || strings.Contains(strings.ToLower(h.Get("Connection")), "upgrade") {
			t.Errorf("Upgrade: %s reached the upstream (Upgrade %q, Connection %q)", proto, h.Get("Upgrade"), h.Get("Connection"))
		}
		checkPrincipal(t, h, p)
	}
}

// TestGatewayAbsoluteFormTarget: a request line naming another host
// ("GET http://elsewhere/ HTTP/1.1") still goes to the upstream only.
func TestGatewayAbsoluteFormTarget(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	_, base := serve(t, gatewayEnv(p, up, nil))
	decoy := startDecoy(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET http://%s/steal?x=1 HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", decoy.addr, decoy.addr, mint(t, p, allowedID, testAudience))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || decoy.count.Load() != 0 {
		t.Fatalf("status %d, decoy saw %d request(s)", resp.StatusCode, decoy.count.Load())
	}
	if got := rc.last(t).URL.RequestURI(); got != "/steal?x=1" {
		t.Errorf("upstream got %q", got)
	}
}

type decoy struct {
	addr  string
	count atomic.Int64
}

func startDecoy(t *testing.T) *decoy {
	d := &decoy{}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { d.count.Add(1) }))
	t.Cleanup(srv.Close)
	d.addr = strings.TrimPrefix(srv.URL, "http://")
	return d
}

// rawStatus sends "GET target" verbatim (no client-side normalisation) to base and
// returns the response's status code.
func rawStatus(t *testing.T, base, target string) int {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestGatewayExcludedPathTraversalForUpstream (adversarial review): a request
// under an excluded prefix whose path an upstream framework resolves out of that
// prefix ("..;" in Tomcat and Spring, ".. " and "..." on Windows, fullwidth dots
// under NFKC, overlong UTF-8) needs a token: it used to reach the upstream
// without one.
func TestGatewayExcludedPathTraversalForUpstream(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	_, base := serve(t, gatewayEnv(p, up, map[string]string{"AUTHMW_EXCLUDED_PATHS": "/public/*"}))
	if got := rawStatus(t, base, "/public/logo.png"); got != http.StatusOK {
		t.Fatalf("excluded path: status %d, want 200", got)
	}
	for _, target := range []string{
		"/public/..;/api/thing",
		"/public/..;jsessionid=1/api/thing",
		"/public/x/..;/..;/api/thing",
		"/public/..%20/api/thing",
		"/public/...;/api/thing",
		"/public/%EF%BC%8E%EF%BC%8E/api/thing",
		"/public/%C0%AE%C0%AE/api/thing",
		"/public/..%09/api/thing",
	} {
		before := rc.count.Load()
		if got := rawStatus(t, base, target); got != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", target, got)
		}
		if rc.count.Load() != before {
			t.Errorf("%s reached the upstream without a token", target)
		}
	}
}

// TestGatewayUnverifiedAuthorizationNotForwarded (adversarial review): on an
// excluded path authmw checks no token, so a forged one the client sends must
// not reach the upstream, which would take any Authorization header it gets
// from the gateway for a verified one. It used to be passed on verbatim.
func TestGatewayUnverifiedAuthorizationNotForwarded(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	_, base := serve(t, gatewayEnv(p, up, map[string]string{"AUTHMW_EXCLUDED_PATHS": "/public/*"}))
	good := mint(t, p, allowedID, testAudience)
	for _, tc := range []struct {
		name, path, token string
		want              string
	}{
		{"excluded path, forged token", "/public/x", "forged.not-verified.token", ""},
		{"excluded path, valid token (not verified there)", "/public/x", good, ""},
		{"protected path, verified token", "/api/thing", good, "Bearer " + good},
	} {
		resp, body := send(t, newReq(t, http.MethodGet, base+tc.path, tc.token, nil))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d (%s)", tc.name, resp.StatusCode, body)
		}
		if got := rc.last(t).Header.Get("Authorization"); got != tc.want {
			t.Errorf("%s: upstream Authorization present=%v; want present=%v", tc.name, got != "", tc.want != "")
		}
	}
}

// TestGatewayClaimThatIsNoHeaderValue (adversarial review): a verified token
// whose name claim holds control characters is forwarded without that header;
// it used to fail the upstream request (502) and mark the upstream down.
func TestGatewayClaimThatIsNoHeaderValue(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	_, base := serve(t, gatewayEnv(p, up, nil))
	c := p.AccessTokenClaims(allowedID, testAudience, 2)
	c["name"] = "Alice\r\nX-Injected: 1"
	tok, err := p.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := send(t, newReq(t, http.MethodGet, base+"/api/thing", tok, nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d (%s)", resp.StatusCode, body)
	}
	h := rc.last(t).Header
	if got := h.Get("X-MS-CLIENT-PRINCIPAL-NAME"); got != allowedID.ClientID || h.Get("X-Injected") != "" {
		t.Errorf("X-MS-CLIENT-PRINCIPAL-NAME = %q, want the application ID", got)
	}
}

// TestGatewayRoutingOverrideHeadersDropped: frameworks that route by
// X-Original-URL / X-Rewrite-URL (IIS URL Rewrite, Symfony) would serve the
// path a client names there instead of the excluded one authmw let through.
func TestGatewayRoutingOverrideHeadersDropped(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	_, base := serve(t, gatewayEnv(p, up, map[string]string{"AUTHMW_EXCLUDED_PATHS": "/public/*"}))
	for _, tok := range []string{"", mint(t, p, allowedID, testAudience)} {
		req, err := http.NewRequest(http.MethodGet, base+"/public/logo.png", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"X-Original-URL", "X-Rewrite-URL", "X-Original-URI"} {
			req.Header.Set(k, "/api/thing")
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
		for k, v := range rc.last(t).Header {
			if slicesContain(v, "/api/thing") {
				t.Errorf("token %v: %s: %q reached the upstream", tok != "", k, v)
			}
		}
	}
}
