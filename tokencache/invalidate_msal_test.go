package tokencache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestIntegrationInvalidateGetsNewToken: with the real managed identity
// credential, a 24 h token is held in MSAL's process-wide cache too.
// Invalidate (a callee's 401 invalid_token) must bring a new token from the
// identity endpoint, not the same revoked token back from MSAL's cache.
func TestIntegrationInvalidateGetsNewToken(t *testing.T) {
	m := startMI(t)
	c := newMICache(t, nil)
	sc := uniqueScope("inval-new")
	first, err := c.GetToken(context.Background(), opts(sc))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Invalidate(sc) {
		t.Fatal("Invalidate did not take effect")
	}
	second, err := c.GetToken(context.Background(), opts(sc))
	if err != nil {
		t.Fatal(err)
	}
	if second.Token == first.Token {
		t.Fatalf("after Invalidate the cache returned the same token (identity endpoint requests: %d); the forced refresh was answered from MSAL's cache", m.Requests())
	}
	if n := m.Requests(); n != 2 {
		t.Fatalf("endpoint requests = %d, want 2", n)
	}
}

// TestIntegrationTransportInvalidTokenRetryGetsNewToken: the transport's
// one retry after a 401 invalid_token carries a different token, with the
// real credential.
func TestIntegrationTransportInvalidTokenRetryGetsNewToken(t *testing.T) {
	startMI(t)
	c := newMICache(t, nil)
	sc := uniqueScope("retry-new")
	var mu sync.Mutex
	var seen []string
	callee := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Header.Get("Authorization"))
		if len(seen) == 1 { // the first token is revoked
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer callee.Close()
	client := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(sc, nil)}
	resp, err := client.Get(callee.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if resp.StatusCode != http.StatusOK || len(seen) != 2 || seen[0] == seen[1] {
		t.Fatalf("status %d after %d requests (retry carried the same token: %v)", resp.StatusCode, len(seen), len(seen) == 2 && seen[0] == seen[1])
	}
}
