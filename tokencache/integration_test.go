package tokencache

// Integration tests: the REAL azidentity.ManagedIdentityCredential (App Service
// source, api-version 2019-08-01) against the local identity platform's
// managed-identity endpoint on loopback.
//
// MSAL caches managed-identity tokens in a process-global cache keyed by
// resource, so every test requests a resource no other test (or earlier -count
// run) used. Tests set environment variables and therefore never run in
// parallel.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/f2fauth/f2fauth/internal/localidp"
)

const (
	testClientID = "5e29463d-71df-4e0e-8b8d-5d8b2b6a7c01"
	testObjectID = "0b8e6f1c-2a44-4d6e-9c3a-7f5a1b2c3d4e"
)

var resourceSeq atomic.Int64

// uniqueScope returns a scope whose resource MSAL's global cache has never seen.
func uniqueScope(name string) string {
	return fmt.Sprintf("api://tc-%s-%d-%d/.default", name, time.Now().UnixNano(), resourceSeq.Add(1))
}

// startMI starts a platform with one managed identity and points the
// environment at its endpoint, as App Service does.
func startMI(t *testing.T) *localidp.ManagedIdentity {
	t.Helper()
	p, err := localidp.Start(localidp.Options{})
	if err != nil {
		t.Fatalf("localidp.Start: %v", err)
	}
	t.Cleanup(p.Close)
	m, err := p.AddIdentity(localidp.Identity{Name: "caller", ClientID: testClientID, ObjectID: testObjectID})
	if err != nil {
		t.Fatalf("AddIdentity: %v", err)
	}
	for _, k := range []string{"IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
	}
	t.Setenv("IDENTITY_ENDPOINT", m.Endpoint())
	t.Setenv("IDENTITY_HEADER", m.Header())
	return m
}

func TestIntegrationColdBurstOneRequest(t *testing.T) {
	m := startMI(t)
	c := newMICache(t, nil)

	sc := uniqueScope("burst")
	const N = 50
	start := make(chan struct{})
	var wg sync.WaitGroup
	tokens := make([]string, N)
	for i := range N {
		wg.Go(func() {
			<-start
			tok, err := c.GetToken(context.Background(), opts(sc))
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
				return
			}
			tokens[i] = tok.Token
		})
	}
	close(start)
	wg.Wait()
	if n := m.Requests(); n != 1 {
		t.Fatalf("identity endpoint requests = %d, want 1 for %d concurrent cold callers", n, N)
	}
	for i, tok := range tokens {
		if tok == "" || tok != tokens[0] {
			t.Fatalf("caller %d got a different or empty token", i)
		}
	}
}

func TestIntegrationSequentialOneRequest(t *testing.T) {
	for _, lifetime := range []time.Duration{localidp.DefaultTokenLifetime, 4 * time.Minute} {
		// 4 minutes: MSAL does not cache tokens living 5 minutes or less, so
		// only tokencache stands between the callers and the endpoint.
		t.Run(lifetime.String(), func(t *testing.T) {
			m := startMI(t)
			m.SetTokenLifetime(lifetime)
			c := newMICache(t, nil)
			sc := uniqueScope("seq")
			for i := range 500 {
				if _, err := c.GetToken(context.Background(), opts(sc)); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			if n := m.Requests(); n != 1 {
				t.Fatalf("identity endpoint requests = %d, want 1 for 500 sequential calls", n)
			}
			if st := c.Stats(); st.Hits != 499 || st.Misses != 1 {
				t.Fatalf("stats = %+v, want 499 hits and 1 miss", st)
			}
		})
	}
}

func TestIntegrationUserAssigned(t *testing.T) {
	m := startMI(t)
	sc := uniqueScope("ua")
	good, err := NewManagedIdentityCredential(testClientID)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.GetToken(context.Background(), opts(sc)); err != nil {
		t.Fatalf("user-assigned identity by client ID: %v", err)
	}

	wrong, err := NewManagedIdentityCredential("00000000-0000-0000-0000-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := New(wrong, &Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, err = c2.GetToken(context.Background(), opts(uniqueScope("ua-wrong")))
	if err == nil || !errors.Is(err, ErrNoToken) {
		t.Fatalf("unknown client ID: err = %v, want a credential error", err)
	}
	if strings.Contains(err.Error(), m.Header()) {
		t.Fatal("error contains the IDENTITY_HEADER secret")
	}
}

func TestIntegrationEndpointFailingAfterFirstToken(t *testing.T) {
	m := startMI(t)
	// MSAL does not cache a 4-minute token, so every refresh reaches the
	// endpoint; the fake clock (for tokencache only) walks through its life.
	m.SetTokenLifetime(4 * time.Minute)
	clk := &fakeClock{now: time.Now()}
	c := newMICache(t, &Options{Now: clk.Now, jitter: func() float64 { return 0 }})
	sc := uniqueScope("outage")
	ctx := context.Background()
	first, err := c.GetToken(ctx, opts(sc))
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Requests(); n != 1 {
		t.Fatalf("requests = %d, want 1", n)
	}

	// The endpoint throttles from now on. Retry-After 120 s exceeds azcore's
	// 60 s maximum retry delay, so each credential call is a single request.
	m.SetFailure(429, "120")
	calls := 0
	for clk.Now().Before(first.ExpiresOn.Add(-DefaultSafetyMargin)) {
		tok, err := c.GetToken(ctx, opts(sc))
		if err != nil {
			t.Fatalf("at %v before expiry: GetToken failed while a valid token was cached: %v", first.ExpiresOn.Sub(clk.Now()), err)
		}
		if tok.Token != first.Token {
			t.Fatal("got a different token while the endpoint was failing")
		}
		calls++
		eventually(t, "refresh settled", func() bool { return !entryStats(t, c, sc).Refreshing })
		clk.Advance(5 * time.Second)
	}
	st := entryStats(t, c, sc)
	if st.Failures == 0 || m.Requests() < 2 {
		t.Fatalf("no refresh reached the failing endpoint (failures %d, requests %d)", st.Failures, m.Requests())
	}
	// Retry-After (120 s, from the real AuthenticationFailedError) is honoured:
	// with the default 2 s backoff alone there would be several attempts in
	// the remaining ~105 s of usable life.
	if n := m.Requests(); n != 2 {
		t.Fatalf("endpoint requests = %d, want 2 (first token + one refresh; Retry-After blocks the rest)", n)
	}
	t.Logf("%d calls succeeded during the outage; %d refresh attempts failed; %d endpoint requests", calls, st.Failures, m.Requests())

	// Past the safety margin the caller gets the credential's error.
	_, err = c.GetToken(ctx, opts(sc))
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || !strings.Contains(err.Error(), sc) {
		t.Fatalf("err = %v, want the credential's AuthenticationFailedError naming the scope", err)
	}
	if strings.Contains(err.Error(), first.Token) || strings.Contains(err.Error(), m.Header()) {
		t.Fatal("error leaks a secret")
	}

	// Recovery: the endpoint heals; the fake clock rejoins real time because
	// the endpoint mints tokens on the real clock.
	m.SetFailure(0, "")
	clk.Set(time.Now())
	tok, err := c.GetToken(ctx, opts(sc))
	if err != nil || tok.Token == "" {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestIntegrationRefreshAheadGetsNewToken(t *testing.T) {
	m := startMI(t)
	m.SetTokenLifetime(4 * time.Minute)
	clk := &fakeClock{now: time.Now()}
	c := newMICache(t, &Options{Now: clk.Now, jitter: func() float64 { return 0 }})
	sc := uniqueScope("ahead")
	first, err := c.GetToken(context.Background(), opts(sc))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute) // past the refresh point (~1m45s), token still usable
	tok, err := c.GetToken(context.Background(), opts(sc))
	if err != nil || tok.Token != first.Token {
		t.Fatalf("past the refresh point the cached token must be served at once: %v", err)
	}
	eventually(t, "background refresh finished", func() bool {
		return m.Requests() == 2 && !entryStats(t, c, sc).Refreshing
	})
	tok, err = c.GetToken(context.Background(), opts(sc))
	if err != nil || tok.Token == first.Token {
		t.Fatalf("after the background refresh: same token or error %v", err)
	}
	if st := c.Stats(); st.Misses != 1 {
		t.Fatalf("misses = %d; a caller waited for the refresh", st.Misses)
	}
}

// TestIntegrationAzureSDKPipeline hands the Cache to azcore's own bearer-token
// policy, the way every Azure SDK client (Key Vault, Storage, ...) uses a
// credential, and sends requests to an HTTPS test service.
func TestIntegrationAzureSDKPipeline(t *testing.T) {
	m := startMI(t)
	c := newMICache(t, nil)
	var authorized atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ey") {
			authorized.Add(1)
		}
	}))
	defer srv.Close()
	client := srv.Client()
	client.Timeout = 10 * time.Second

	sc := uniqueScope("sdk")
	pl := runtime.NewPipeline("tokencache-test", "v0.0.0",
		runtime.PipelineOptions{PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(c, []string{sc}, nil)}},
		&policy.ClientOptions{Transport: client})
	for i := range 20 {
		req, err := runtime.NewRequest(context.Background(), http.MethodGet, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := pl.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_ = resp.Body.Close()
	}
	if n := authorized.Load(); n != 20 {
		t.Fatalf("authorized requests = %d, want 20", n)
	}
	if n := m.Requests(); n != 1 {
		t.Fatalf("identity endpoint requests = %d, want 1", n)
	}
}

// TestIntegrationTransport sends requests through Cache.Transport with the real
// credential to a loopback service.
func TestIntegrationTransport(t *testing.T) {
	m := startMI(t)
	c := newMICache(t, nil)
	var authorized atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ey") {
			authorized.Add(1)
		}
	}))
	defer srv.Close()
	client := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(uniqueScope("rt"), nil)}
	for i := range 10 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_ = resp.Body.Close()
	}
	if authorized.Load() != 10 || m.Requests() != 1 {
		t.Fatalf("authorized = %d (want 10), endpoint requests = %d (want 1)", authorized.Load(), m.Requests())
	}
}

// newMICache returns a Cache over the real system-assigned ManagedIdentityCredential
// (the environment points it at the test's local endpoint), closed when t ends.
func newMICache(t *testing.T, o *Options) *Cache {
	t.Helper()
	cred, err := NewManagedIdentityCredential("")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cred, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
