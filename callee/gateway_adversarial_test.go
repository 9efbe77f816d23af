package callee

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/authmw"
)

// rawExchange writes raw to the gateway at base on a fresh connection and reads one
// response. The read deadline is a hang detector (waitFor), not a timing assertion.
func rawExchange(t *testing.T, base, raw string) (*http.Response, []byte, error) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// TestGatewayExcludedPathParametersNeedToken: "/api/public/..;/secret" is clean for
// path.Clean ("..;" is a name), but a servlet-container upstream (Tomcat, Jetty,
// Spring) strips ";" path parameters per segment and serves /api/secret; an upstream
// may likewise read an overlong or fullwidth '.' as '.'. Such a request must not be
// forwarded without a token under an excluded prefix.
func TestGatewayExcludedPathParametersNeedToken(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	_, base := serve(t, gatewayEnv(p, up, map[string]string{"AUTHMW_EXCLUDED_PATHS": "/api/public/*"}))
	host := strings.TrimPrefix(base, "http://")
	for _, target := range []string{
		"/api/public/..;/secret",
		"/api/public/x/..;/..;/secret",
		"/api/public/..;jsessionid=1/secret",
		"/api/public/.;/x",
		"/api/public/%C0%AE%C0%AE/secret",       // overlong UTF-8 '.' (Tomcat CVE-2008-2938)
		"/api/public/%EF%BC%8E%EF%BC%8E/secret", // fullwidth full stops
		"/api/public/..%20/secret",              // Windows drops the trailing space
		"/api/public/.../secret",
	} {
		t.Run(target, func(t *testing.T) {
			before := rc.count.Load()
			resp, body, err := rawExchange(t, base, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d; want 401 (%s)", resp.StatusCode, body)
			}
			if n := rc.count.Load() - before; n != 0 {
				t.Fatalf("the upstream saw %d unauthenticated request(s) for %s", n, target)
			}
		})
	}
	// The excluded prefix itself still passes without a token.
	resp, body, err := rawExchange(t, base, "GET /api/public/logo.png HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("excluded path: %v %v %s", err, resp, body)
	}
}

// TestGatewayDeniedRequestWithUnsentBody: gateway mode has no server ReadTimeout (streams
// may last), so a denied request whose body never comes — "Transfer-Encoding: chunked"
// or a Content-Length, then silence — must still get its 401 at once and lose its
// connection, rather than hold it (and its goroutine) while the server waits to drain a
// body nobody will read: a slowloris without any token. The same holds for the health
// endpoint, which reads no body either.
func TestGatewayDeniedRequestWithUnsentBody(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	_, base := serve(t, gatewayEnv(p, up, map[string]string{"AUTHMW_EXCLUDED_PATHS": HealthzPath}))
	host := strings.TrimPrefix(base, "http://")
	for _, tc := range []struct {
		name, head string
		status     int
	}{
		{"chunked, no token", "POST /api/x HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\n\r\n", 401},
		{"content-length, no token", "POST /api/x HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 1000\r\n\r\n", 401},
		{"chunked, bad token", "PUT /api/x HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer a.b.c\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe", 401},
		{"chunked, excluded health endpoint", "GET " + HealthzPath + " HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\n\r\n", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rc.count.Load()
			resp, body, err := rawExchange(t, base, tc.head)
			if err != nil {
				t.Fatalf("no answer while the body is withheld: %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if !resp.Close {
				t.Error("the connection stays open for a body nobody reads")
			}
			if tc.status != 200 && rc.count.Load() != before {
				t.Error("a denied request reached the upstream")
			}
		})
	}
	// A forwarded request with a body keeps its connection.
	resp, body := send(t, newReq(t, http.MethodPost, base+"/api/x", mint(t, p, allowedID, testAudience), strings.NewReader("hello")))
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("forwarded POST: status %d, close %v (%s)", resp.StatusCode, resp.Close, body)
	}
}

// TestGatewayUpstreamDownWithUnsentBody: on an excluded path (no token) with the
// upstream down, the 502 must not wait for a body the client withholds either.
func TestGatewayUpstreamDownWithUnsentBody(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	_, base := serve(t, gatewayEnv(p, "http://"+closedPort(t), map[string]string{"AUTHMW_EXCLUDED_PATHS": "/api/public/*"}))
	host := strings.TrimPrefix(base, "http://")
	resp, body, err := rawExchange(t, base, "POST /api/public/upload HTTP/1.1\r\nHost: "+host+"\r\nTransfer-Encoding: chunked\r\n\r\n")
	if err != nil {
		t.Fatalf("no answer while the body is withheld: %v", err)
	}
	if resp.StatusCode != http.StatusBadGateway || !resp.Close {
		t.Fatalf("status %d, close %v; want 502 and the connection closed (%s)", resp.StatusCode, resp.Close, body)
	}
}

// TestGatewaySpoofedIdentityOutsideHeaders: identity headers sent as chunked-body
// trailers (declared or not), on an HTTP/1.0 request, or folded into another header
// line never reach the upstream as identity.
func TestGatewaySpoofedIdentityOutsideHeaders(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // read to the end: the trailers are in r.Trailer now
		for k, v := range r.Trailer {
			w.Header()["Seen-Trailer-"+k] = v
		}
	})
	_, base := serve(t, gatewayEnv(p, up, map[string]string{"AUTHMW_EXCLUDED_PATHS": "/api/public/*"}))
	host := strings.TrimPrefix(base, "http://")
	tok := mint(t, p, allowedID, testAudience)
	for _, tc := range []struct{ name, raw string }{
		{"declared trailers", "POST /api/x HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + tok +
			"\r\nTrailer: X-Ms-Client-Principal-Id, X_MS_CLIENT_PRINCIPAL_NAME, X-Ms-Token-Aad-Access-Token\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
			"3\r\nabc\r\n0\r\nX-Ms-Client-Principal-Id: spoofed\r\nX_MS_CLIENT_PRINCIPAL_NAME: spoofed\r\nX-Ms-Token-Aad-Access-Token: spoofed\r\n\r\n"},
		{"undeclared trailers, no token, excluded path", "POST /api/public/x HTTP/1.1\r\nHost: " + host +
			"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX-Ms-Client-Principal: spoofed\r\nX-Ms-Client-Principal-Id: spoofed\r\n\r\n"},
		{"HTTP/1.0 without Host", "GET /api/public/x HTTP/1.0\r\nX-MS-CLIENT-PRINCIPAL-ID: spoofed\r\nx_ms_client_principal: spoofed\r\n\r\n"},
		{"obs-fold", "GET /api/public/x HTTP/1.1\r\nHost: " + host + "\r\nX-Note: a\r\n X-Ms-Client-Principal-Id: spoofed\r\nConnection: close\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, err := rawExchange(t, base, tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode >= 500 {
				t.Fatalf("status %d (%s)", resp.StatusCode, body)
			}
			for k, v := range resp.Header {
				if strings.HasPrefix(k, "Seen-Trailer-") && slicesContain(v, "spoofed") {
					t.Errorf("the upstream saw trailer %s", strings.TrimPrefix(k, "Seen-Trailer-"))
				}
			}
			if resp.StatusCode != http.StatusOK {
				return // refused (400 for obs-fold is fine): nothing forwarded
			}
			for k, v := range rc.last(t).Header {
				if isIdentityHeader(k) && slicesContain(v, "spoofed") {
					t.Errorf("spoofed %s reached the upstream", k)
				}
				if strings.Contains(strings.Join(v, ","), "X-Ms-Client-Principal-Id: spoofed") && isIdentityHeader(k) {
					t.Errorf("folded identity reached the upstream as %s", k)
				}
			}
		})
	}
}

// TestGatewaySmugglingRefused: a request with both Content-Length and
// Transfer-Encoding, or with two Content-Lengths, or an unknown coding, cannot hide a
// second request from the gateway: whatever follows the first body is parsed by the
// gateway as the next request and authorized on its own.
func TestGatewaySmugglingRefused(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	_, base := serve(t, gatewayEnv(p, up, map[string]string{"AUTHMW_EXCLUDED_PATHS": "/api/public/*"}))
	host := strings.TrimPrefix(base, "http://")
	smuggled := "GET /api/secret HTTP/1.1\r\nHost: " + host + "\r\nX-Ms-Client-Principal-Id: spoofed\r\n\r\n"
	for _, tc := range []struct{ name, raw string }{
		{"CL.TE", "POST /api/public/x HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE.CL", "POST /api/public/x HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\nContent-Length: 90\r\n\r\n0\r\n\r\n" + smuggled},
		{"duplicate Content-Length", "POST /api/public/x HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 0\r\nContent-Length: 90\r\n\r\n" + smuggled},
		{"chunked, identity", "POST /api/public/x HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled},
		{"obfuscated TE", "POST /api/public/x HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + smuggled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(waitFor))
			io.WriteString(conn, tc.raw)
			br := bufio.NewReader(conn)
			for i := 0; i < 2; i++ {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					break // the gateway closed the connection
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if i == 1 && resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("the request after the body got %d; want 401", resp.StatusCode)
				}
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			for _, r := range rc.reqs {
				if r.URL.Path == "/api/secret" {
					t.Fatalf("the smuggled request reached the upstream")
				}
			}
		})
	}
}

// TestGatewayExpectContinueDenied: "Expect: 100-continue" without a token gets the
// 401 instead of a 100 (the client never sends the body) and reaches nobody.
func TestGatewayExpectContinueDenied(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	_, base := serve(t, gatewayEnv(p, up, nil))
	host := strings.TrimPrefix(base, "http://")
	resp, body, err := rawExchange(t, base, "PUT /api/x HTTP/1.1\r\nHost: "+host+"\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized || rc.count.Load() != 0 {
		t.Fatalf("status %d, upstream saw %d; want the 401 first and nothing forwarded (%s)", resp.StatusCode, rc.count.Load(), body)
	}
}

// TestGatewayDoesNotFollowUpstreamRedirects: an upstream's redirect goes back to the
// client as is; the gateway never follows it (it would carry the caller's token and
// identity headers to wherever the upstream points).
func TestGatewayDoesNotFollowUpstreamRedirects(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	decoy := startDecoy(t)
	_, up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		for _, status := range []int{301, 302, 303, 307, 308} {
			if r.URL.Path == "/r"+strconv.Itoa(status) {
				http.Redirect(w, r, "http://"+decoy.addr+"/steal", status)
			}
		}
	})
	_, base := serve(t, gatewayEnv(p, up, nil))
	tok := mint(t, p, allowedID, testAudience)
	noFollow := client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, status := range []int{301, 302, 303, 307, 308} {
		resp, err := noFollow.Do(newReq(t, http.MethodPost, base+"/r"+strconv.Itoa(status), tok, strings.NewReader("x")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status || !strings.Contains(resp.Header.Get("Location"), decoy.addr) {
			t.Errorf("%d: client got %d Location %q", status, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if n := decoy.count.Load(); n != 0 {
		t.Fatalf("the gateway followed the upstream's redirect %d time(s)", n)
	}
}

// TestGatewayVaultRoleClientAddress: gateway mode with a Vault JWT role as the policy
// file. bound_cidrs is checked against the connection's address; X-Forwarded-For
// (forged leftmost entries, IPv4-mapped spellings, ports) from a peer that is not a
// configured proxy changes nothing, and a refused request never reaches the upstream.
func TestGatewayVaultRoleClientAddress(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	role := `{"role_type": "jwt", "user_claim": "oid", "bound_audiences": ["` + testAudience + `"],
		"bound_claims": {"oid": "` + allowedID.ObjectID + `"}, "bound_cidrs": ["127.0.0.2/32"]}`
	path := t.TempDir() + "/role.json"
	if err := os.WriteFile(path, []byte(role), 0o600); err != nil {
		t.Fatal(err)
	}
	_, base := serve(t, gatewayEnv(p, up, map[string]string{"AUTHMW_POLICY_FILE": path}))
	tok := mint(t, p, allowedID, testAudience)
	from := func(src string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		return &http.Client{Timeout: waitFor, Transport: &http.Transport{Proxy: nil, DialContext: d.DialContext}}
	}
	for _, tc := range []struct {
		name, src string
		xff       []string
		status    int
	}{
		{"allowed address", "127.0.0.2", nil, 200},
		{"other address", "127.0.0.1", nil, 403},
		{"other address, forged X-Forwarded-For", "127.0.0.1", []string{"127.0.0.2"}, 403},
		{"other address, forged IPv4-mapped entry with port", "127.0.0.1", []string{"[::ffff:127.0.0.2]:443"}, 403},
		{"other address, forged chain", "127.0.0.1", []string{"127.0.0.2, 127.0.0.2", "127.0.0.2"}, 403},
		{"allowed address, X-Forwarded-For naming another is ignored", "127.0.0.2", []string{"203.0.113.9"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rc.count.Load()
			req := newReq(t, http.MethodGet, base+"/api/x", tok, nil)
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			resp, err := from(tc.src).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d (%s)", resp.StatusCode, tc.status, body)
			}
			reached := rc.count.Load() - before
			if tc.status != 200 {
				if reached != 0 || problemReason(t, resp, body) != string(authmw.ReasonClientAddressNotAllowed) {
					t.Fatalf("refused request: upstream saw %d, body %s", reached, body)
				}
				return
			}
			if reached != 1 {
				t.Fatalf("upstream saw %d", reached)
			}
			h := rc.last(t).Header
			checkPrincipal(t, h, p)
			if xff := h.Get("X-Forwarded-For"); xff != tc.src {
				t.Errorf("upstream X-Forwarded-For %q; want the connection's address %s only", xff, tc.src)
			}
		})
	}
}

// TestGatewayIdentityValueNotAHeaderValue: a valid token whose name (or oid, or
// client application) holds a control character used to make the identity headers
// unsendable: the forward failed as a 502 and marked the upstream down, so one caller
// could keep the replica out of rotation. The header with such a value is left out
// (X-MS-CLIENT-PRINCIPAL still carries every claim, base64-encoded), the request is
// forwarded and the upstream stays up.
func TestGatewayIdentityValueNotAHeaderValue(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	rc, up := startUpstream(t, nil)
	_, base := serve(t, gatewayEnv(p, up, map[string]string{"AUTHMW_EXCLUDED_PATHS": HealthzPath}))
	for _, tc := range []struct{ claim, value, header string }{
		{"name", "bad\x01name", "X-Ms-Client-Principal-Name"},
		{"name", "two\r\nX-Injected: 1", "X-Ms-Client-Principal-Name"},
		{"name", "del\x7f", "X-Ms-Client-Principal-Name"},
		{"oid", "22222222-2222-4222-8222-22222222222\x00", "X-Ms-Client-Principal-Id"},
	} {
		t.Run(fmt.Sprintf("%s %q", tc.claim, tc.value), func(t *testing.T) {
			c := p.AccessTokenClaims(allowedID, testAudience, 1)
			c[tc.claim] = tc.value
			tok, err := p.Mint(c)
			if err != nil {
				t.Fatal(err)
			}
			before := rc.count.Load()
			resp, body := send(t, newReq(t, http.MethodGet, base+"/api/x", tok, nil))
			if resp.StatusCode != http.StatusOK || rc.count.Load()-before != 1 {
				t.Fatalf("status %d, upstream saw %d; want 200 and the request forwarded (%s)", resp.StatusCode, rc.count.Load()-before, body)
			}
			h := rc.last(t).Header
			if h.Get("X-Ms-Client-Principal") == "" || h.Get("X-Ms-Client-Principal-Idp") != "aad" {
				t.Errorf("principal headers missing: %v", headerNames(h))
			}
			for _, v := range h.Values(tc.header) {
				if v == tc.value || strings.ContainsAny(v, "\r\n\x00\x01\x7f") {
					t.Errorf("%s reached the upstream as %q", tc.header, v)
				}
			}
			if h.Get("X-Injected") != "" {
				t.Error("a header was injected through the name claim")
			}
			hr, hb := send(t, newReq(t, http.MethodGet, base+HealthzPath, "", nil))
			if hr.StatusCode != http.StatusOK {
				t.Fatalf("health %d after the request: %s", hr.StatusCode, hb)
			}
		})
	}
}

// TestGatewayBadClientBodyIsNotUpstreamDown: a request body the gateway cannot read
// (malformed chunked encoding) failed the forward, and every forward failure but a
// timeout marked the upstream down: with no token at all, on an excluded path, a
// client could keep the replica out of rotation through the readiness probe. The
// client's fault is its own 400 and the upstream stays up.
func TestGatewayBadClientBodyIsNotUpstreamDown(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	_, up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	_, base := serve(t, gatewayEnv(p, up, map[string]string{"AUTHMW_EXCLUDED_PATHS": HealthzPath + ",/api/public/*"}))
	host := strings.TrimPrefix(base, "http://")
	tok := mint(t, p, allowedID, testAudience)
	for _, tc := range []struct{ name, raw string }{
		{"bad chunk size, no token, excluded path", "POST /api/public/x HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n\r\n"},
		{"bad chunk terminator, with token", "PUT /api/x HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + tok + "\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, err := rawExchange(t, base, tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadRequest || problemReason(t, resp, body) != ReasonBadRequestBody {
				t.Errorf("status %d %s; want 400 %s", resp.StatusCode, body, ReasonBadRequestBody)
			}
			hr, hb := send(t, newReq(t, http.MethodGet, base+HealthzPath, "", nil))
			if hr.StatusCode != http.StatusOK {
				t.Fatalf("health %d after a client's bad body: %s", hr.StatusCode, hb)
			}
		})
	}
}

// TestGatewayHealthNamesNoUpstream: the health endpoint (often excluded, so anonymous)
// says "up" or "down" for the upstream and nothing else: not its address, not the
// probe's error; and a request to it is never forwarded.
func TestGatewayHealthNamesNoUpstream(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	down := closedPort(t)
	_, base := serve(t, gatewayEnv(p, "http://"+down+"/base", map[string]string{"AUTHMW_EXCLUDED_PATHS": HealthzPath, EnvUpstreamHealthPath: "/ready"}))
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		resp, body := send(t, newReq(t, method, base+HealthzPath, "", nil))
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s: status %d", method, resp.StatusCode)
		}
		for _, leak := range []string{down, "/base", "/ready", "refused", "dial"} {
			if strings.Contains(string(body), leak) || strings.Contains(fmt.Sprint(resp.Header), leak) {
				t.Errorf("%s: the health answer mentions %q: %s", method, leak, body)
			}
		}
	}
}
