package tokencache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/f2fauth/f2fauth/tokencache"
	"github.com/f2fauth/f2fauth/tokencache/tokencachetest"
)

// exampleCredential stands in for a managed identity so the examples run
// anywhere. In Azure use tokencache.NewManagedIdentityCredential.
type exampleCredential struct{}

func (exampleCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "example-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// The Cache is an azcore.TokenCredential: hand it to any Azure SDK client
// (for example azsecrets.NewClient(vaultURL, cache, nil)). Here it feeds
// azcore's bearer-token policy, which every Azure SDK client uses.
func ExampleNew() {
	cache, err := tokencache.New(exampleCredential{}, &tokencache.Options{
		SafetyMargin: time.Minute, // default 30s
	})
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()

	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("service saw:", r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	httpClient := srv.Client()
	httpClient.Timeout = 10 * time.Second

	pl := runtime.NewPipeline("example", "v1.0.0", runtime.PipelineOptions{
		PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(cache, []string{"api://callee/.default"}, nil)},
	}, &policy.ClientOptions{Transport: httpClient})
	req, err := runtime.NewRequest(context.Background(), http.MethodGet, srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := pl.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	_ = resp.Body.Close()
	fmt.Println("status:", resp.StatusCode)
	// Output:
	// service saw: Bearer example-token
	// status: 200
}

// Cache.Transport turns the cache into an authenticated http.Client for one
// scope; the client keeps its own timeout. No CheckRedirect is needed: the
// transport sends the token only to the origin of the request it was given
// (see ExampleCache_Transport_redirect).
func ExampleCache_Transport() {
	cache, err := tokencache.New(exampleCredential{}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()

	callee := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("callee saw:", r.Header.Get("Authorization"))
	}))
	defer callee.Close()

	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: cache.Transport("api://callee/.default", nil), // nil = http.DefaultTransport
	}
	resp, err := client.Get(callee.URL) // plain HTTP is allowed to loopback only
	if err != nil {
		log.Fatal(err)
	}
	_ = resp.Body.Close()

	_, err = client.Get("http://callee.example.com/")
	fmt.Println(err != nil)
	// Output:
	// callee saw: Bearer example-token
	// true
}

// A callee that redirects elsewhere cannot make the client hand its token
// over: the hop to another origin (scheme, host or port) is refused before
// anything is sent there.
func ExampleCache_Transport_redirect() {
	cache, err := tokencache.New(exampleCredential{}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()

	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("other host saw:", r.Header.Get("Authorization"))
	}))
	defer other.Close()
	callee := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("callee saw:", r.Header.Get("Authorization"))
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer callee.Close()

	client := &http.Client{Timeout: 10 * time.Second, Transport: cache.Transport("api://callee/.default", nil)}
	_, err = client.Post(callee.URL, "text/plain", strings.NewReader("payload"))
	fmt.Println("redirect refused:", errors.Is(err, tokencache.ErrInsecureTransport))
	// Output:
	// callee saw: Bearer example-token
	// redirect refused: true
}

// GetToken is what callers use directly; Stats feeds metrics.
func ExampleCache_GetToken() {
	cache, err := tokencache.New(exampleCredential{}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	ctx := context.Background()
	for range 3 {
		if _, err := cache.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"api://callee/.default"}}); err != nil {
			log.Fatal(err)
		}
	}
	st := cache.Stats()
	fmt.Println("hits:", st.Hits, "misses:", st.Misses, "credential calls:", st.Refreshes)
	// Output: hits: 2 misses: 1 credential calls: 1
}

// Production: the managed identity (system-assigned, or user-assigned through
// AZURE_CLIENT_ID), wrapped in a Cache. Here a tokencachetest endpoint plays
// App Service's managed-identity endpoint (IDENTITY_ENDPOINT, IDENTITY_HEADER).
func ExampleNewManagedIdentityCredential() {
	mi, err := tokencachetest.NewEndpoint(tokencachetest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer mi.Close()
	for _, kv := range mi.Env() { // in a test: mi.Setenv(t)
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
		defer os.Unsetenv(k)
	}

	cred, err := tokencache.NewManagedIdentityCredential("") // production: os.Getenv("AZURE_CLIENT_ID")
	if err != nil {
		log.Fatal(err)
	}
	cache, err := tokencache.New(cred, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	for range 3 {
		// Each example and test uses its own scope: MSAL caches per resource, process-wide.
		_, err := cache.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"api://example-mi-credential/.default"}})
		if err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("endpoint requests:", mi.Requests())
	// Output: endpoint requests: 1
}

// The credential kind comes from configuration, never from probing.
func ExampleNewCredential() {
	kind, err := tokencache.ParseCredentialKind("dev") // e.g. os.Getenv("F2F_CREDENTIAL")
	if err != nil {
		log.Fatal(err)
	}
	_, err = tokencache.NewCredential(kind, os.Getenv("AZURE_CLIENT_ID"))
	fmt.Println(err == nil)

	_, err = tokencache.NewCredential("default", "")
	fmt.Println(err)
	// Output:
	// true
	// tokencache: invalid configuration: unknown credential kind "default": want "managedidentity" or "dev"
}

// ScopeFor turns an audience setting into the scope to ask for; log it at
// startup.
func ExampleScopeFor() {
	for _, aud := range []string{"api://callee", "api://callee/", "api://callee/.default"} {
		fmt.Println(tokencache.ScopeFor(aud))
	}
	// Output:
	// api://callee/.default
	// api://callee/.default
	// api://callee/.default
}
