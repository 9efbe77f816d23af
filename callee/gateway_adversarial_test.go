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
