package tokencache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/f2fauth/f2fauth/internal/retry"
)

// maxAttempts is how many credential calls the cache's backoff allows within
// elapsed: the first at once, each next one no earlier than the smallest
// jittered delay after the previous.
func maxAttempts(b retry.Backoff, elapsed time.Duration) int {
	n, at := 1, time.Duration(0)
	for {
		at += b.Delay(n, 0) // Rand = 0: the shortest delay
		if at > elapsed {
			return n
		}
		n++
	}
}

// TestIntegrationNoStormWhileNoTokenCached: finding 4. The real credential
// against an endpoint answering 400; 20 goroutines call GetToken for 1 s.
// Failures are remembered per scope and shared, with or without an older
// (expired) token.
func TestIntegrationNoStormWhileNoTokenCached(t *testing.T) {
	for _, withOld := range []bool{false, true} {
		t.Run(map[bool]string{false: "no token yet", true: "expired token cached"}[withOld], func(t *testing.T) {
			m := startMI(t)
			m.SetTokenLifetime(4 * time.Minute) // not cached by MSAL
			var offset atomic.Int64
			now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
			bo := retry.Backoff{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond}
			c := newMICache(t, &Options{Now: now, jitter: func() float64 { return 0 }, InitialBackoff: bo.Initial, MaxBackoff: bo.Max})
			sc := uniqueScope("storm")
			base := int64(0)
			if withOld {
				if _, err := c.GetToken(context.Background(), opts(sc)); err != nil {
					t.Fatal(err)
				}
				offset.Store(int64(5 * time.Minute)) // the token has expired
				base = m.Requests()
			}
			m.SetFailure(400, "")
			var calls, failures atomic.Int64
			start := time.Now()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						_, err := c.GetToken(context.Background(), opts(sc))
						calls.Add(1)
						if err != nil {
							failures.Add(1)
						}
					}
				})
			}
			time.Sleep(time.Second)
			close(stop)
			wg.Wait()
			elapsed := time.Since(start)
			got := m.Requests() - base
			bound := int64(maxAttempts(bo, elapsed))
			t.Logf("%d GetToken calls in %v, %d failed; %d endpoint requests (bound %d)", calls.Load(), elapsed, failures.Load(), got, bound)
			if failures.Load() != calls.Load() {
				t.Fatalf("%d calls succeeded against a failing endpoint", calls.Load()-failures.Load())
			}
			if got > bound {
				t.Fatalf("endpoint requests = %d, want at most %d (backoff %v..%v over %v)", got, bound, bo.Initial, bo.Max, elapsed)
			}
		})
	}
}

// TestIntegrationInvalidateDuringOutage: finding 11 with the real credential.
// One 401 invalid_token during an outage must not throw away a token that is
// still valid.
func TestIntegrationInvalidateDuringOutage(t *testing.T) {
	m := startMI(t)
	m.SetTokenLifetime(4 * time.Minute) // MSAL does not cache it: the refresh reaches the endpoint
	c := newMICache(t, nil)
	sc := uniqueScope("inval")
	first, err := c.GetToken(context.Background(), opts(sc))
	if err != nil {
		t.Fatal(err)
	}
	m.SetFailure(400, "")
	if !c.Invalidate(sc) {
		t.Fatal("Invalidate did not take effect")
	}
	for i := range 5 {
		tok, err := c.GetToken(context.Background(), opts(sc))
		if err != nil || tok.Token != first.Token {
			t.Fatalf("call %d during the outage: err %v; want the old, still valid token", i, err)
		}
	}
	if n := m.Requests(); n != 2 {
		t.Fatalf("endpoint requests = %d, want 2 (first token + one forced refresh)", n)
	}
}

// TestWedgedCredentialAbandoned: finding 5. A credential that ignores its
// context must not hold its scope past Options.Timeout, and Close returns.
func TestWedgedCredentialAbandoned(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	release := make(chan struct{})
	defer close(release)
	cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		<-release // ignores ctx
		return azcore.AccessToken{}, errBoom
	})
	c, err := New(cred, &Options{Now: clk.Now, jitter: func() float64 { return 0 }, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetToken(context.Background(), opts(scope)); !errors.Is(err, ErrNoToken) || !errors.Is(err, errTimeout) {
		t.Fatalf("err = %v, want ErrNoToken (timeout)", err)
	}
	eventually(t, "wedged call abandoned", func() bool { return !entryStats(t, c, scope).Refreshing })

	cred.set(tokenFor(clk, time.Hour))
	clk.Advance(DefaultMaxBackoff) // past the backoff of the timeout
	if _, err := c.GetToken(context.Background(), opts(scope)); err != nil {
		t.Fatalf("next caller after the timeout: %v; want a new credential call", err)
	}

	// A second wedge in flight at Close.
	cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		<-release
		return azcore.AccessToken{}, errBoom
	})
	go func() { _, _ = c.GetToken(context.Background(), opts("api://wedged/.default")) }()
	eventually(t, "second wedge started", func() bool { return cred.calls.Load() == 3 })
	closed := make(chan struct{})
	go func() { _ = c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second): // a hang, not a timing target
		t.Fatal("Close did not return while a credential ignored its context")
	}
}

// TestTimeClampAndMinRefreshInterval: finding 12.
func TestTimeClampAndMinRefreshInterval(t *testing.T) {
	t.Run("expiry after 2262 is a hit", func(t *testing.T) {
		for _, exp := range []time.Time{
			time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Unix(math.MaxInt64/2, 0),
		} {
			clk := newFakeClock()
			cred := &fakeCred{}
			cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
				return azcore.AccessToken{Token: "t", ExpiresOn: exp, RefreshOn: exp}, nil
			})
			c := newTestCache(t, cred, clk, nil)
			for range 10 {
				if _, err := c.GetToken(context.Background(), opts(scope)); err != nil {
					t.Fatal(err)
				}
			}
			if n := cred.calls.Load(); n != 1 {
				t.Fatalf("expiry %v: credential calls = %d, want 1", exp.Year(), n)
			}
			if st := entryStats(t, c, scope); !st.Usable || st.Hits != 9 {
				t.Fatalf("expiry %v: stats %+v", exp.Year(), st)
			}
		}
	})
	// Real clock and real timers: with no traffic at all, a token must not
	// trigger refreshes faster than minRefreshInterval.
	for _, tt := range []struct {
		name string
		tok  func(now time.Time) azcore.AccessToken
	}{
		{"token just above the margin", func(now time.Time) azcore.AccessToken {
			return azcore.AccessToken{Token: "t", ExpiresOn: now.Add(DefaultSafetyMargin + 20*time.Millisecond)}
		}},
		{"RefreshOn right away", func(now time.Time) azcore.AccessToken {
			return azcore.AccessToken{Token: "t", ExpiresOn: now.Add(time.Hour), RefreshOn: now.Add(time.Millisecond)}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cred := &fakeCred{}
			cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
				return tt.tok(time.Now()), nil
			})
			c, err := New(cred, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			_, _ = c.GetToken(context.Background(), opts(scope))
			time.Sleep(time.Second)
			elapsed := time.Since(start)
			bound := 1 + int64(elapsed/minRefreshInterval)
			if n := cred.calls.Load(); n > bound {
				t.Fatalf("%d credential calls in %v without traffic, want at most %d", n, elapsed, bound)
			}
		})
	}
}

// TestUnusedEntriesEvicted: entries nobody asks for any more are dropped.
func TestUnusedEntriesEvicted(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(tokenFor(clk, 24*time.Hour))
	c := newTestCache(t, cred, clk, nil)
	get := func(s string) {
		t.Helper()
		if _, err := c.GetToken(context.Background(), opts(s)); err != nil {
			t.Fatal(err)
		}
	}
	get("api://a/.default")
	get("api://b/.default")
	clk.Advance(evictionInterval)
	get("api://c/.default") // sweep 1: a and b used since the start
	get("api://a/.default")
	clk.Advance(evictionInterval)
	get("api://d/.default") // sweep 2: b unused since sweep 1
	var scopes []string
	for _, e := range c.Stats().Entries {
		scopes = append(scopes, e.Scope)
	}
	if fmt.Sprint(scopes) != "[api://a/.default api://c/.default api://d/.default]" {
		t.Fatalf("entries = %q, want b evicted", scopes)
	}
	// An evicted scope asked for again simply gets a new entry.
	get("api://b/.default")
	if n := len(c.Stats().Entries); n != 4 {
		t.Fatalf("entries = %d, want 4", n)
	}
}

func TestScopeFor(t *testing.T) {
	tests := []struct{ in, want string }{
		{"api://callee", "api://callee/.default"},
		{"api://callee/", "api://callee/.default"},
		{"api://callee/.default", "api://callee/.default"},
		{" api://callee//.default ", "api://callee/.default"},
		{"api://callee/.default/.default", "api://callee/.default"},
		{"5e29463d-71df-4e0e-8b8d-5d8b2b6a7c01", "5e29463d-71df-4e0e-8b8d-5d8b2b6a7c01/.default"},
		{"https://management.azure.com/", "https://management.azure.com/.default"},
		{"/.default", ""},
		{".default", ""},
		{"api://", ""},
		{"api:/", ""},
		{"//", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := ScopeFor(tt.in); got != tt.want {
				t.Fatalf("ScopeFor(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzScopeFor(f *testing.F) {
	for _, s := range []string{"api://callee", "api://callee/", "api://callee//.default", "/.default", " ", "a/.default/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, aud string) {
		got := ScopeFor(aud)
		if got == "" {
			return
		}
		if !strings.HasSuffix(got, "/.default") || strings.HasSuffix(got, "//.default") || ScopeFor(got) != got {
			t.Fatalf("ScopeFor(%q) = %q: not a normalised, idempotent scope", aud, got)
		}
	})
}
