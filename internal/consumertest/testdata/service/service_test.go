package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/authmw/authmwtest"
	"github.com/f2fauth/f2fauth/tokencache/tokencachetest"
)

// The handler, tested with an in-process issuer instead of Entra.
func TestHandler(t *testing.T) {
	iss, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	h, stop, err := NewHandler(context.Background(), authmw.Policy{
		TenantID: iss.TenantID(), AuthorityHost: iss.AuthorityURL(),
		Audiences: []string{"api://service"}, RequiredRoles: []string{"Service.Call"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	srv := httptest.NewServer(h)
	defer srv.Close()

	withRole, _ := iss.AppToken(authmwtest.App{AppID: "caller", Roles: []string{"Service.Call"}}, "api://service", authmwtest.V2)
	noRole, _ := iss.AppToken(authmwtest.App{AppID: "caller"}, "api://service", authmwtest.V1)
	otherAud, _ := iss.AppToken(authmwtest.App{AppID: "caller", Roles: []string{"Service.Call"}}, "api://other", authmwtest.V2)
	tests := []struct {
		name, token string
		status      int
	}{
		{"allowed", withRole, 200},
		{"no role", noRole, 403},
		{"other audience", otherAud, 401},
		{"no token", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Errorf("status %d, want %d", res.StatusCode, tt.status)
			}
		})
	}
}

// The outgoing client, tested with a local managed-identity endpoint: the real
// azidentity credential fetches one token and tokencache reuses it.
func TestClient(t *testing.T) {
	ep, err := tokencachetest.NewEndpoint(tokencachetest.Options{
		Mint: func(resource string) (tokencachetest.Token, error) {
			return tokencachetest.Token{AccessToken: tokenFor(resource)}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	ep.Setenv(t)
	resource := uniqueResource("api://upstream")
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Header.Get("Authorization")))
	}))
	defer upstream.Close()

	c, err := NewClient(resource + "/.default")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		status, body, err := c.Get(upstream.URL)
		if err != nil || status != 200 || body != "Bearer "+tokenFor(resource) {
			t.Fatalf("Get: %d %q %v", status, body, err)
		}
	}
	if ep.Requests() != 1 {
		t.Errorf("endpoint requests %d, want 1", ep.Requests())
	}
}

// tokenFor is an opaque token naming resource, in RFC 6750's b64token
// characters as a Bearer credential must be.
func tokenFor(resource string) string {
	return "token-for-" + base64.RawURLEncoding.EncodeToString([]byte(resource))
}

// Both together: the client's managed identity gets tokens minted by the
// issuer the handler trusts, and the handler accepts them.
func TestClientCallsHandler(t *testing.T) {
	iss, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	ep, err := tokencachetest.NewEndpoint(tokencachetest.Options{
		Mint: func(resource string) (tokencachetest.Token, error) {
			tok, err := iss.AppToken(authmwtest.App{AppID: "my-identity", Roles: []string{"Service.Call"}}, resource, authmwtest.V1)
			return tokencachetest.Token{AccessToken: tok}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	ep.Setenv(t)
	resource := uniqueResource("api://service")

	h, stop, err := NewHandler(context.Background(), authmw.Policy{
		TenantID: iss.TenantID(), AuthorityHost: iss.AuthorityURL(),
		Audiences: []string{resource}, RequiredRoles: []string{"Service.Call"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	srv := httptest.NewServer(h)
	defer srv.Close()

	c, err := NewClient(resource + "/.default")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	status, body, err := c.Get(srv.URL)
	if err != nil || status != 200 || body != "hello my-identity" {
		t.Fatalf("Get: %d %q %v", status, body, err)
	}
}

// uniqueResource: MSAL caches managed-identity tokens per resource for the
// whole process, so every test needs its own.
func uniqueResource(base string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return base + "-" + hex.EncodeToString(b)
}
