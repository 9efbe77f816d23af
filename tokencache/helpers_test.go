package tokencache

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/testutil"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// fakeClock is a manually advanced clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *fakeClock) Set(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

// fakeCred is a controllable credential: fn decides each result; calls counts
// invocations atomically.
type fakeCred struct {
	calls atomic.Int64
	mu    sync.Mutex
	fn    func(ctx context.Context, n int64, opts policy.TokenRequestOptions) (azcore.AccessToken, error)
	seen  []policy.TokenRequestOptions
}

func (f *fakeCred) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	n := f.calls.Add(1)
	f.mu.Lock()
	f.seen = append(f.seen, opts)
	fn := f.fn
	f.mu.Unlock()
	return fn(ctx, n, opts)
}

func (f *fakeCred) set(fn func(ctx context.Context, n int64, opts policy.TokenRequestOptions) (azcore.AccessToken, error)) {
	f.mu.Lock()
	f.fn = fn
	f.mu.Unlock()
}

// tokenFor returns a credential function issuing "tok-<n>" valid for lifetime
// from the clock's now.
func tokenFor(clk *fakeClock, lifetime time.Duration) func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return func(_ context.Context, n int64, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{Token: fmt.Sprintf("tok-%d", n), ExpiresOn: clk.Now().Add(lifetime)}, nil
	}
}

func opts(scope string) policy.TokenRequestOptions {
	return policy.TokenRequestOptions{Scopes: []string{scope}}
}

// newTestCache returns a cache with a fake clock, zero jitter (Rand = 0) and
// the given option tweaks; it is closed at cleanup.
func newTestCache(t testing.TB, cred azcore.TokenCredential, clk *fakeClock, tweak func(*Options)) *Cache {
	t.Helper()
	o := &Options{Now: clk.Now, jitter: func() float64 { return 0 }}
	if tweak != nil {
		tweak(o)
	}
	c, err := New(cred, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// eventually polls cond until it holds or the (generous) deadline passes.
// It is a synchronisation helper, not a timing assertion.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// entryStats returns the stats of the only entry for scope.
func entryStats(t testing.TB, c *Cache, scope string) EntryStats {
	t.Helper()
	for _, e := range c.Stats().Entries {
		if e.Scope == scope {
			return e
		}
	}
	t.Fatalf("no entry for scope %q", scope)
	return EntryStats{}
}

// syncBuffer collects log output from concurrent writers.
type syncBuffer = testutil.SyncBuffer

type (
	policyOpts  = policy.TokenRequestOptions
	accessToken = azcore.AccessToken
)
