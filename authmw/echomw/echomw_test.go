package echomw_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/authmw/authmwtest"
	"github.com/f2fauth/f2fauth/authmw/echomw"
)

const (
	audience = "api://callee"
	clientID = "11111111-2222-3333-4444-555555555555"
)

// newServer starts an issuer, a Middleware trusting it (waiting for its keys
// unless the issuer is down) and an echo server protected by echomw, whose
// error handler records what it sees.
func newServer(t *testing.T, down bool) (*authmwtest.Issuer, *httptest.Server, func() []error) {
	t.Helper()
	iss, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iss.Close)
	iss.SetDown(down)
	m, err := authmw.New(context.Background(), authmw.Config{
		Policy: authmw.Policy{
			TenantID:      iss.TenantID(),
			AuthorityHost: iss.AuthorityURL(),
			Audiences:     []string{audience},
			RequiredRoles: []string{"Callee.Invoke"},
			ExcludedPaths: []string{"/healthz"},
		},
		Realm: "callee.test",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if !down {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}

	ec := echo.New()
	ec.HideBanner = true
	var mu sync.Mutex
	var seen []error
	defaultHandler := ec.HTTPErrorHandler
	ec.HTTPErrorHandler = func(err error, c echo.Context) {
		mu.Lock()
		seen = append(seen, err)
		mu.Unlock()
		defaultHandler(err, c)
	}
	ec.Use(echomw.Middleware(m))
	ec.GET("/api/x", func(c echo.Context) error {
		p, ok := authmw.PrincipalFrom(c.Request().Context())
		if !ok {
			return c.String(http.StatusInternalServerError, "no principal")
		}
		return c.JSON(http.StatusOK, map[string]string{"appid": p.AppID, "idp": c.Request().Header.Get("X-MS-CLIENT-PRINCIPAL-IDP")})
	})
	ec.GET("/healthz", func(c echo.Context) error {
		if _, ok := authmw.PrincipalFrom(c.Request().Context()); ok {
			return c.String(http.StatusInternalServerError, "principal on excluded path")
		}
		return c.String(http.StatusOK, "ok "+c.Request().Header.Get("X-MS-CLIENT-PRINCIPAL-ID"))
	})
	srv := httptest.NewServer(ec)
	t.Cleanup(srv.Close)
	return iss, srv, func() []error {
		mu.Lock()
		defer mu.Unlock()
		out := seen
		seen = nil
		return out
	}
}

func TestMiddleware(t *testing.T) {
	iss, srv, seen := newServer(t, false)
	token := func(roles ...string) string {
		tok, err := iss.AppToken(authmwtest.App{AppID: clientID, Roles: roles}, audience, authmwtest.V2)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name, path, auth string
		status           int
		reason           authmw.Reason
		body             string
	}{
		{"valid", "/api/x", "Bearer " + token("Callee.Invoke"), 200, "", `"appid":"` + clientID + `"`},
		{"no token", "/api/x", "", 401, authmw.ReasonMissingToken, ""},
		{"bad token", "/api/x", "Bearer x.y.z", 401, authmw.ReasonMalformedToken, ""},
		{"no role", "/api/x", "Bearer " + token(), 403, authmw.ReasonRoleMissing, ""},
		{"excluded", "/healthz", "", 200, "", "ok "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen()
			checkResponse(t, srv, tc.path, tc.auth, tc.status, tc.reason, tc.body)
			errs := seen()
			if tc.status == 200 {
				if len(errs) != 0 {
					t.Errorf("echo's error handler saw %v on success", errs)
				}
				return
			}
			checkSeen(t, errs, tc.status, tc.reason)
		})
	}
}

// Until the keys load, a protected route answers 503 with Retry-After, and
// echo's error handler sees a 503.
func TestMiddlewareNotReady(t *testing.T) {
	iss, srv, seen := newServer(t, true)
	tok, err := iss.AppToken(authmwtest.App{AppID: clientID, Roles: []string{"Callee.Invoke"}}, audience, authmwtest.V1)
	if err != nil {
		t.Fatal(err)
	}
	checkResponse(t, srv, "/api/x", "Bearer "+tok, 503, authmw.ReasonKeysUnavailable, "")
	checkSeen(t, seen(), 503, authmw.ReasonKeysUnavailable)
}

func checkResponse(t *testing.T, srv *httptest.Server, path, auth string, status int, reason authmw.Reason, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("X-MS-CLIENT-PRINCIPAL-ID", "forged")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, b)
	}
	if strings.Contains(string(b), "forged") {
		t.Errorf("forged header reached the handler")
	}
	if status == 200 {
		if !strings.Contains(string(b), body) {
			t.Errorf("body %s lacks %s", b, body)
		}
		return
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q", ct)
	}
	var p struct {
		Status int           `json:"status"`
		Reason authmw.Reason `json:"reason"`
	}
	if err := json.Unmarshal(b, &p); err != nil || p.Reason != reason || p.Status != status {
		t.Errorf("body %s (err %v)", b, err)
	}
	switch status {
	case 503:
		if res.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	default:
		if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), `Bearer realm="callee.test"`) {
			t.Errorf("WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
		}
	}
}

// checkSeen: echo's error handler saw exactly one *echo.HTTPError with the
// denial's status, wrapping the *authmw.Error.
func checkSeen(t *testing.T, errs []error, status int, reason authmw.Reason) {
	t.Helper()
	if len(errs) != 1 {
		t.Fatalf("echo's error handler saw %d errors, want 1", len(errs))
	}
	var he *echo.HTTPError
	var ae *authmw.Error
	if !errors.As(errs[0], &he) || he.Code != status || !errors.As(errs[0], &ae) || ae.Reason != reason {
		t.Errorf("error handler saw %v", errs[0])
	}
}
