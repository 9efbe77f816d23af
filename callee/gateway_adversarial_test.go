package callee

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
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
// Spring) strips ";" path parameters per segment and serves /api/secret. Such a
// request must not be forwarded without a token under an excluded prefix.
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
