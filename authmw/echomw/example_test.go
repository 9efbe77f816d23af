package echomw_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/authmw/authmwtest"
	"github.com/f2fauth/f2fauth/authmw/echomw"
)

// call sends GET url with the token (if any) and prints the status and either
// the body or the denial's reason code.
func call(url, token string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 400 {
		var p struct {
			Reason string `json:"reason"`
		}
		json.Unmarshal(body, &p)
		fmt.Println(res.StatusCode, p.Reason)
		return
	}
	fmt.Println(res.StatusCode, string(body))
}

func ExampleMiddleware() {
	// An in-process Entra-shaped issuer stands in for login.microsoftonline.com.
	idp, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer idp.Close()

	ctx := context.Background()
	m, err := authmw.New(ctx, authmw.Config{Policy: authmw.Policy{
		TenantID:      idp.TenantID(),
		AuthorityHost: idp.AuthorityURL(), // default https://login.microsoftonline.com
		Audiences:     []string{"api://callee"},
		RequiredRoles: []string{"Callee.Invoke"},
		ExcludedPaths: []string{"/healthz"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.WaitReady(waitCtx); err != nil { // optional: until then, 503
		log.Fatal(err)
	}

	e := echo.New()
	e.HideBanner = true
	e.Use(echomw.Middleware(m))
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.GET("/api/x", func(c echo.Context) error {
		p, _ := authmw.PrincipalFrom(c.Request().Context())
		return c.String(http.StatusOK, "hello "+p.AppID)
	})
	srv := httptest.NewServer(e)
	defer srv.Close()

	invoker, _ := idp.AppToken(authmwtest.App{AppID: "caller-app-id", Roles: []string{"Callee.Invoke"}}, "api://callee", authmwtest.V2)
	other, _ := idp.AppToken(authmwtest.App{AppID: "other-app-id"}, "api://callee", authmwtest.V1)

	call(srv.URL+"/healthz", "")
	call(srv.URL+"/api/x", invoker)
	call(srv.URL+"/api/x", other) // no app role
	call(srv.URL+"/api/x", "")
	// Output:
	// 200 ok
	// 200 hello caller-app-id
	// 403 role_missing
	// 401 missing_token
}
