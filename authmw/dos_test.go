package authmw

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Adversarial review 2: work an unauthenticated request can make the
// Middleware do must not grow with what the client sends.

// Behind a trusted proxy, X-Forwarded-For is the client's to fill (the proxy
// appends to it): a header of 100,000 entries was split whole, one string per
// entry, before the walk stopped at maxForwardedHops.
func TestForwardedForWalkBounded(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Policy.AllowedClientCIDRs = []string{"192.0.2.0/24"}
		c.Policy.TrustedProxies = []string{"10.0.0.0/8"}
	})
	h := e.m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("request reached the handler") }))
	req := func(entries int) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/api/x", nil)
		r.RemoteAddr = "10.0.0.1:5000"
		r.Header.Set("X-Forwarded-For", "192.0.2.7"+strings.Repeat(", 10.0.0.2", entries))
		return r
	}
	allocs := func(r *http.Request) float64 {
		return testing.AllocsPerRun(20, func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), string(ReasonClientAddressNotAllowed)) {
				t.Fatalf("status %d %s, want 403 %s", w.Code, w.Body, ReasonClientAddressNotAllowed)
			}
		})
	}
	// Splitting the whole header costs ~40 more allocations (slice growth);
	// the margin absorbs other goroutines' allocations counted meanwhile.
	small, huge := allocs(req(2*maxForwardedHops)), allocs(req(100_000))
	if huge > small+15 {
		t.Fatalf("X-Forwarded-For of 100,000 entries: %.0f allocations per request, %.0f for %d entries: the walk is not bounded", huge, small, 2*maxForwardedHops)
	}
}

// Requests, policy replacements and key rotations at once (run with -race):
// a forged token is never allowed, and once SetPolicy returns no request
// is answered from a result cached under the previous policy.
func TestConcurrentRequestsReloadsAndRotations(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.UnknownKeyInterval = time.Millisecond })
	allow := e.m.Policy()
	deny := allow
	deny.InsecureAllowAnyCaller = false
	deny.RequiredRoles = []string{"Nobody.Has.This"}
	attacker := getAttackerKey()
	forged := forge(map[string]any{"alg": "RS256", "kid": e.idp.CurrentKID()}, map[string]any(e.claims(2)), rs256(attacker))
	e.remember(forged)
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	serve := func(tok string) int {
		r := httptest.NewRequest(http.MethodGet, "/api/x", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	var toks sync.Map // kid -> token, minted as keys rotate
	toks.Store(0, e.mint(e.claims(2)))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				if serve(forged) == http.StatusOK {
					t.Error("forged token allowed")
					return
				}
				var tok string
				toks.Range(func(_, v any) bool { tok = v.(string); return (i+j)%2 == 0 })
				if c := serve(tok); c != http.StatusOK && c != http.StatusForbidden && c != http.StatusUnauthorized {
					t.Errorf("status %d", c)
					return
				}
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 40 {
			p := allow
			if i%2 == 0 {
				p = deny
			}
			if err := e.m.SetPolicy(p); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 8 {
			old := e.idp.CurrentKID()
			e.idp.RotateKey()
			if i%2 == 1 {
				e.idp.RemoveKey(old)
			}
			tok := e.mint(e.claims(2))
			toks.Store(i+1, tok)
			e.clock.Advance(10 * time.Millisecond)
			serve(tok) // the new kid makes the key set refetch
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	// After the storm: the last policy denies every token, cached or not.
	if err := e.m.SetPolicy(deny); err != nil {
		t.Fatal(err)
	}
	toks.Range(func(_, v any) bool {
		if c := serve(v.(string)); c == http.StatusOK {
			t.Errorf("token allowed after SetPolicy(deny) returned: %d", c)
		}
		return true
	})
}

// The verified-token cache was bounded in entries only, and an entry grows with
// its token: an allowed caller presenting many distinct large tokens (16 KiB,
// Easy Auth headers on: ~45 KiB an entry) filled 10,000 entries with ~450 MB.
// It is bounded in estimated bytes too (cacheMaxBytes; lowered here so the
// test mints hundreds of tokens, not thousands).
func TestTokenCacheBoundedInBytes(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy.EasyAuthHeaders = true })
	const budget = 2 << 20
	e.m.cache.maxBytes = budget
	held := func() (n int, bytes int64) {
		e.m.cache.mu.RLock()
		defer e.m.cache.mu.RUnlock()
		for _, g := range []map[string]*cacheEntry{e.m.cache.cur, e.m.cache.old} {
			for raw := range g {
				n++
				bytes += entryCost(raw)
			}
		}
		return n, bytes
	}
	var last string
	for i := range 150 {
		c := e.claims(2)
		c["pad"] = strings.Repeat("x", 10_000+i) // distinct large tokens
		last = e.mint(c)
		if r := e.get(last); r.status != http.StatusOK {
			t.Fatalf("token %d: %d", i, r.status)
		}
	}
	if n, bytes := held(); bytes > budget {
		t.Fatalf("cache holds %d entries, ~%d bytes: more than its %d-byte budget", n, bytes, budget)
	}
	if r := e.get(last); r.status != http.StatusOK || !e.lastDecision().Cached {
		t.Fatal("the newest token is not served from the cache")
	}
}
