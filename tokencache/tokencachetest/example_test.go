package tokencachetest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/f2fauth/f2fauth/tokencache/tokencachetest"
)

// setenv points azidentity at ep, as ep.Setenv(t) does in a test.
func setenv(ep *tokencachetest.Endpoint) (restore func()) {
	os.Setenv("IDENTITY_ENDPOINT", ep.URL())
	os.Setenv("IDENTITY_HEADER", ep.Header())
	return func() {
		os.Unsetenv("IDENTITY_ENDPOINT")
		os.Unsetenv("IDENTITY_HEADER")
	}
}

// The real azidentity credential gets its token from the endpoint; MSAL then
// serves the same resource from its process-wide cache.
func ExampleNewEndpoint() {
	ep, err := tokencachetest.NewEndpoint(tokencachetest.Options{
		Mint: func(resource string) (tokencachetest.Token, error) {
			return tokencachetest.Token{AccessToken: "token-for-" + resource, ExpiresOn: time.Now().Add(time.Hour)}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ep.Close()
	defer setenv(ep)()

	cred, err := azidentity.NewManagedIdentityCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	for range 2 {
		tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"api://example-new-endpoint/.default"}})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(tok.Token)
	}
	fmt.Println("requests:", ep.Requests(), "issued:", ep.Issued())
	// Output:
	// token-for-api://example-new-endpoint
	// token-for-api://example-new-endpoint
	// requests: 1 issued: 1
}

// A throttled endpoint: with a Retry-After beyond azidentity's 60 s maximum
// retry delay the credential fails after one request; once healthy it works.
func ExampleEndpoint_SetFault() {
	ep, err := tokencachetest.NewEndpoint(tokencachetest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer ep.Close()
	defer setenv(ep)()
	cred, err := azidentity.NewManagedIdentityCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	scope := policy.TokenRequestOptions{Scopes: []string{"api://example-set-fault/.default"}}

	ep.SetFault(tokencachetest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3600"})
	_, err = cred.GetToken(context.Background(), scope)
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		fmt.Println("failed:", afe.RawResponse.StatusCode, afe.RawResponse.Header.Get("Retry-After"))
	}

	ep.SetFault(tokencachetest.Fault{})
	_, err = cred.GetToken(context.Background(), scope)
	fmt.Println("after recovery:", err, "requests:", ep.Requests(), "issued:", ep.Issued())
	// Output:
	// failed: 429 3600
	// after recovery: <nil> requests: 2 issued: 1
}

// A user-assigned identity is chosen by its client ID; a request for another
// identity is refused.
func ExampleOptions_userAssigned() {
	ep, err := tokencachetest.NewEndpoint(tokencachetest.Options{ClientID: "11111111-1111-4111-8111-111111111111"})
	if err != nil {
		log.Fatal(err)
	}
	defer ep.Close()
	defer setenv(ep)()
	for _, id := range []string{"11111111-1111-4111-8111-111111111111", "99999999-9999-4999-8999-999999999999"} {
		cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(id)})
		if err != nil {
			log.Fatal(err)
		}
		_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"api://example-user-assigned-" + id[:2]}})
		fmt.Println(id[:8], err == nil)
	}
	// Output:
	// 11111111 true
	// 99999999 false
}
