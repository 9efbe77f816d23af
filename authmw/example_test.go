package authmw_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/authmw/authmwtest"
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

// An in-process Entra-shaped issuer (authmwtest) stands in for
// login.microsoftonline.com; token is an app-only v2 access token for api://callee.
func startIdP() (*authmwtest.Issuer, string) {
	idp, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	caller := authmwtest.App{AppID: "caller-app-id", ObjectID: "caller-object-id"}
	token, err := idp.AppToken(caller, "api://callee", authmwtest.V2)
	if err != nil {
		log.Fatal(err)
	}
	return idp, token
}

func ExampleMiddleware_Handler() {
	idp, token := startIdP()
	defer idp.Close()

	ctx := context.Background()
	m, err := authmw.New(ctx, authmw.Config{Policy: authmw.Policy{
		TenantID:            idp.TenantID(),
		AuthorityHost:       idp.AuthorityURL(), // default https://login.microsoftonline.com
		Audiences:           []string{"api://callee"},
		AllowedApplications: []string{"caller-app-id"},
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

	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := authmw.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello %s", p.AppID)
	})
	srv := httptest.NewServer(m.Handler(hello))
	defer srv.Close()

	call(srv.URL, token)
	call(srv.URL, "")
	call(srv.URL, "not-a-token")
	// Output:
	// 200 hello caller-app-id
	// 401 missing_token
	// 401 malformed_token
}

// NewFromEnv is what a service's main does: AUTHMW_* settings from the
// environment (nil, meaning os.LookupEnv, in production; a map here).
func ExampleNewFromEnv() {
	idp, token := startIdP()
	defer idp.Close()

	env := map[string]string{
		"AUTHMW_TENANT_ID":              idp.TenantID(),
		"AUTHMW_AUTHORITY_HOST":         idp.AuthorityURL(),
		"AUTHMW_AUDIENCES":              "api://callee",
		"AUTHMW_ALLOWED_APPLICATIONS":   "caller-app-id",
		"AUTHMW_UNAUTHENTICATED_ACTION": "Return401",
	}
	m, err := authmw.NewFromEnv(context.Background(), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	waitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.WaitReady(waitCtx); err != nil {
		log.Fatal(err)
	}
	p, err := m.Verify(context.Background(), token)
	fmt.Println(p.AppID, p.AppOnly, err)

	_, err = authmw.NewFromEnv(context.Background(), func(string) (string, bool) { return "", false }, nil)
	fmt.Println(err != nil)
	// Output:
	// caller-app-id true <nil>
	// true
}
