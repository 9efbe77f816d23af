package authmwtest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/authmw/authmwtest"
)

// A service tests its own authmw-protected handler: the issuer stands in for
// login.microsoftonline.com, AppToken is what a calling app would send.
func ExampleNewIssuer() {
	idp, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer idp.Close()

	m, err := authmw.New(context.Background(), authmw.Config{Policy: authmw.Policy{
		TenantID:            idp.TenantID(),
		AuthorityHost:       idp.AuthorityURL(),
		Audiences:           []string{"api://my-service"},
		AllowedApplications: []string{"caller-app-id"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := authmw.PrincipalFrom(r.Context())
		fmt.Fprint(w, p.AppID)
	})))
	defer srv.Close()

	for _, app := range []string{"caller-app-id", "stranger-app-id"} {
		tok, err := idp.AppToken(authmwtest.App{AppID: app}, "api://my-service", authmwtest.V2)
		if err != nil {
			log.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		res.Body.Close()
		fmt.Println(app, res.StatusCode)
	}
	// Output:
	// caller-app-id 200
	// stranger-app-id 403
}

// AppClaims plus Mint make any token a test needs: here one that expired an
// hour ago, which authmw refuses.
func ExampleIssuer_Mint() {
	idp, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer idp.Close()
	m, err := authmw.New(context.Background(), authmw.Config{Policy: authmw.Policy{
		TenantID: idp.TenantID(), AuthorityHost: idp.AuthorityURL(), Audiences: []string{"api://my-service"},
		AllowedApplications: []string{"caller-app-id"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}

	c := idp.AppClaims(authmwtest.App{AppID: "caller-app-id"}, "api://my-service", authmwtest.V1)
	c["exp"] = time.Now().Add(-time.Hour).Unix()
	expired, err := idp.Mint(c)
	if err != nil {
		log.Fatal(err)
	}
	_, err = m.Verify(ctx, expired)
	var ae *authmw.Error
	if errors.As(err, &ae) {
		fmt.Println(ae.Status(), ae.Reason)
	}
	// Output: 401 token_expired
}

// Key rollover and emergency removal, as a verifier test drives them.
func ExampleIssuer_RotateKey() {
	idp, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer idp.Close()
	old := idp.CurrentKID()
	cur := idp.RotateKey()
	fmt.Println("published after rollover:", len(idp.PublishedKIDs()))
	idp.RemoveKey(old)
	fmt.Println("published after removal:", len(idp.PublishedKIDs()), idp.PublishedKIDs()[0] == cur)
	// Output:
	// published after rollover: 2
	// published after removal: 1 true
}
