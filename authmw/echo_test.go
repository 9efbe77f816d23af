package authmw

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestEchoAdapter(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy.ExcludedPaths = []string{"/healthz"} })
	ec := echo.New()
	ec.HideBanner = true
	var mu sync.Mutex
	var seenErrs []error
	defaultHandler := ec.HTTPErrorHandler
	ec.HTTPErrorHandler = func(err error, c echo.Context) {
		mu.Lock()
		seenErrs = append(seenErrs, err)
		mu.Unlock()
		defaultHandler(err, c)
	}
	ec.Use(e.m.Echo())
	ec.GET("/api/x", func(c echo.Context) error {
		p, ok := EchoPrincipal(c)
		p2, ok2 := PrincipalFrom(c.Request().Context())
		if !ok || !ok2 || p != p2 {
			return c.String(http.StatusInternalServerError, "no principal")
		}
		return c.JSON(http.StatusOK, map[string]string{"appid": p.AppID, "oid": p.ObjectID, "idp": c.Request().Header.Get("X-MS-CLIENT-PRINCIPAL-IDP")})
	})
	ec.GET("/healthz", func(c echo.Context) error {
		if _, ok := EchoPrincipal(c); ok {
			return c.String(http.StatusInternalServerError, "principal on excluded path")
		}
		return c.String(http.StatusOK, "ok "+c.Request().Header.Get("X-MS-CLIENT-PRINCIPAL-ID"))
	})
	srv := httptest.NewServer(ec)
	defer srv.Close()

	tok := e.mint(e.claims(2))
	tests := []struct {
		name, path, auth string
		status           int
		reason           Reason
		body             string
	}{
		{"valid", "/api/x", "Bearer " + tok, 200, "", `"appid":"` + testClientID + `"`},
		{"no token", "/api/x", "", 401, ReasonMissingToken, ""},
		{"bad token", "/api/x", "Bearer x.y.z", 401, ReasonMalformedToken, ""},
		{"excluded", "/healthz", "", 200, "", "ok "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			seenErrs = nil
			mu.Unlock()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			req.Header.Set("X-MS-CLIENT-PRINCIPAL-ID", "forged")
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, b)
			}
			if strings.Contains(string(b), "forged") {
				t.Errorf("forged header reached the handler")
			}
			if tc.status == 200 {
				if !strings.Contains(string(b), tc.body) {
					t.Errorf("body %s lacks %s", b, tc.body)
				}
				return
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			var p problem
			if err := json.Unmarshal(b, &p); err != nil || p.Reason != tc.reason || p.Status != tc.status {
				t.Errorf("body %s (err %v)", b, err)
			}
			if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), `Bearer realm="callee.test"`) {
				t.Errorf("WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seenErrs) != 1 {
				t.Fatalf("echo's error handler saw %d errors, want 1", len(seenErrs))
			}
			var he *echo.HTTPError
			var ae *Error
			if !errors.As(seenErrs[0], &he) || he.Code != tc.status || !errors.As(seenErrs[0], &ae) || ae.Reason != tc.reason {
				t.Errorf("error handler saw %v", seenErrs[0])
			}
		})
	}
}
