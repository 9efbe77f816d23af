package echomw_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/authmw/authmwtest"
	"github.com/f2fauth/f2fauth/authmw/echomw"
)

// observe answers what reached the application: the path, the principal and
// every identity or Authorization header, in a stable form.
func observe(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"path": r.URL.Path}
	if p, ok := authmw.PrincipalFrom(r.Context()); ok {
		out["appid"], out["roles"] = p.AppID, p.Roles
	}
	var hdrs []string
	for k, v := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-ms") || strings.HasPrefix(lk, "x_ms") || lk == "authorization" {
			hdrs = append(hdrs, k+"="+strings.Join(v, "|"))
		}
	}
	slices.Sort(hdrs)
	out["headers"] = hdrs
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// rawResponse is what a client sees, reduced to what authmw decides.
type rawResponse struct {
	Status                          int
	WWWAuthenticate, RetryAfter, CT string
	CacheControl                    string
	Body                            string
}

// rawGet sends a request line exactly as written (paths a client library
// would normalise) and reads the answer.
func rawGet(t *testing.T, srv *httptest.Server, method, target string, hdr []string) rawResponse {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: callee.test\r\nConnection: close\r\n", method, target)
	for _, h := range hdr {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	// Bodies are compared by digest: they hold the token, never printed.
	sum := sha256.Sum256(b)
	body := hex.EncodeToString(sum[:8])
	if strings.Contains(string(b), `"appid"`) {
		body += " principal"
	}
	if strings.Contains(string(b), "forged") {
		body += " forged"
	}
	if r := reasonIn(b); r != "" {
		body += " reason=" + r
	}
	return rawResponse{Status: res.StatusCode, WWWAuthenticate: res.Header.Get("WWW-Authenticate"),
		RetryAfter: res.Header.Get("Retry-After"), CT: res.Header.Get("Content-Type"),
		CacheControl: res.Header.Get("Cache-Control"), Body: body}
}

func reasonIn(b []byte) string {
	var p struct {
		Reason string `json:"reason"`
	}
	json.Unmarshal(b, &p)
	return p.Reason
}

// The echo adapter and Handler run one core: for the same request they must
// give the same status, denial headers and body, and pass on the same
// principal and identity headers (forged ones stripped, Easy Auth ones set).
func TestEchoAndNetHTTPDecideAlike(t *testing.T) {
	iss, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iss.Close)
	m, err := authmw.New(context.Background(), authmw.Config{
		Policy: authmw.Policy{
			TenantID:        iss.TenantID(),
			AuthorityHost:   iss.AuthorityURL(),
			Audiences:       []string{audience},
			RequiredRoles:   []string{"Callee.Invoke"},
			ExcludedPaths:   []string{"/healthz", "/public/*"},
			EasyAuthHeaders: true,
		},
		Realm: "callee.test",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	std := httptest.NewServer(m.Handler(http.HandlerFunc(observe)))
	t.Cleanup(std.Close)
	newEcho := func(setup func(*echo.Echo)) *httptest.Server {
		e := echo.New()
		e.HideBanner = true
		setup(e)
		srv := httptest.NewServer(e)
		t.Cleanup(srv.Close)
		return srv
	}
	servers := map[string]*httptest.Server{
		"echo Use": newEcho(func(e *echo.Echo) {
			e.Use(echomw.Middleware(m))
			e.Any("/*", echo.WrapHandler(http.HandlerFunc(observe)))
		}),
		"echo Pre": newEcho(func(e *echo.Echo) {
			e.Pre(echomw.Middleware(m))
			e.Any("/*", echo.WrapHandler(http.HandlerFunc(observe)))
		}),
		"echo route-level": newEcho(func(e *echo.Echo) {
			e.Any("/*", echo.WrapHandler(http.HandlerFunc(observe)), echomw.Middleware(m))
		}),
		"echo group": newEcho(func(e *echo.Echo) {
			g := e.Group("", echomw.Middleware(m))
			g.Any("/", echo.WrapHandler(http.HandlerFunc(observe)))
			g.Any("/*", echo.WrapHandler(http.HandlerFunc(observe)))
		}),
	}
	// Pre(RemoveTrailingSlash) runs before authmw, so it sees another path;
	// the decision must still be the one for that path.
	trailing := newEcho(func(e *echo.Echo) {
		e.Pre(middleware.RemoveTrailingSlash())
		e.Use(echomw.Middleware(m))
		e.Any("/*", echo.WrapHandler(http.HandlerFunc(observe)))
	})

	mint := func(roles ...string) string {
		tok, err := iss.AppToken(authmwtest.App{AppID: clientID, Roles: roles}, audience, authmwtest.V2)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good, norole := mint("Callee.Invoke"), mint()
	auths := map[string][]string{
		"none":           nil,
		"valid":          {"Authorization: Bearer " + good},
		"valid, bearer":  {"Authorization: bearer " + good},
		"no role":        {"Authorization: Bearer " + norole},
		"garbage":        {"Authorization: Bearer x.y.z"},
		"two headers":    {"Authorization: Bearer " + good, "Authorization: Bearer " + good},
		"basic":          {"Authorization: Basic dTpw"},
		"valid + forged": {"Authorization: Bearer " + good, "X-MS-CLIENT-PRINCIPAL-ID: forged", "X_MS_CLIENT_PRINCIPAL_NAME: forged", "X-MS-TOKEN-AAD-ACCESS-TOKEN: forged"},
		"forged only":    {"X-MS-CLIENT-PRINCIPAL: e30=", "X-Ms-Client-Principal-Idp: aad", "x-ms-client-principal-id: forged"},
	}
	paths := []string{
		"/api/x", "/api/x/", "/", "/healthz", "/healthz/", "/HEALTHZ", "/healthz;x", "/healthz?x=1",
		"/healthz/../api/x", "/healthz/%2e%2e/api/x", "/%2Fhealthz", "/healthz%2F", "/heal%74hz",
		"/public", "/public/", "/public/a", "/public/../api/x", "/public%2F..%2Fapi", "/public/a%2Fb",
		"//healthz", "/./healthz", "/public/..;/api/x", "/api/x?access_token=" + good,
	}
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodOptions}
	n := 0
	for _, path := range paths {
		for an, hdr := range auths {
			for _, method := range methods {
				want := rawGet(t, std, method, path, hdr)
				if want.Status == http.StatusOK && strings.Contains(want.Body, "forged") {
					t.Errorf("%s %s (%s): forged identity header reached net/http handler: %s", method, path, an, want.Body)
				}
				for name, srv := range servers {
					n++
					if got := rawGet(t, srv, method, path, hdr); got != want {
						t.Errorf("%s %s (%s): %s differs from net/http:\n got %+v\nwant %+v", method, path, an, name, got, want)
					}
				}
				got := rawGet(t, trailing, method, path, hdr)
				if got.Status == http.StatusOK && strings.Contains(got.Body, "forged") {
					t.Errorf("%s %s (%s): forged identity header reached the handler behind RemoveTrailingSlash", method, path, an)
				}
				if got.Status == http.StatusOK && method != http.MethodHead && !strings.Contains(got.Body, "principal") && !excludedAfterTrim(path) {
					t.Errorf("%s %s (%s): anonymous 200 behind RemoveTrailingSlash on a protected path", method, path, an)
				}
			}
		}
	}
	t.Logf("%d request shapes compared", n)
}

// excludedAfterTrim reports whether net/http would exclude the path once
// RemoveTrailingSlash has trimmed it (only the plain spellings are excluded).
func excludedAfterTrim(target string) bool {
	p, _, _ := strings.Cut(target, "?")
	p = strings.TrimSuffix(p, "/")
	return p == "/healthz" || p == "/public" || strings.HasPrefix(p, "/public/") && !strings.ContainsAny(p, "%;") && !strings.Contains(p, "..")
}
