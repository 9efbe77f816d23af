package tokencache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

const scope = "api://callee/.default"

var errBoom = errors.New("identity endpoint unavailable")

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name    string
		cred    azcore.TokenCredential
		opts    *Options
		wantErr []string // substrings; nil = success
	}{
		{name: "nil options are defaults", cred: &fakeCred{}, opts: nil},
		{name: "zero options are defaults", cred: &fakeCred{}, opts: &Options{}},
		{name: "nil credential", cred: nil, opts: nil, wantErr: []string{"credential is nil"}},
		{
			name: "every negative duration is reported",
			cred: nil,
			opts: &Options{SafetyMargin: -1, Timeout: -1, InvalidateInterval: -1, InitialBackoff: -1, MaxBackoff: -1},
			wantErr: []string{"credential is nil", "Options.SafetyMargin", "Options.Timeout",
				"Options.InvalidateInterval", "Options.InitialBackoff", "Options.MaxBackoff"},
		},
		{
			name:    "backoffs and rate limit that would let a storm through",
			cred:    &fakeCred{},
			opts:    &Options{InitialBackoff: time.Nanosecond, MaxBackoff: time.Millisecond, InvalidateInterval: time.Nanosecond},
			wantErr: []string{"Options.InitialBackoff must be at least 100ms", "Options.MaxBackoff must be at least 100ms", "Options.InvalidateInterval must be at least 1s"},
		},
		{
			name:    "initial backoff above max",
			cred:    &fakeCred{},
			opts:    &Options{InitialBackoff: time.Minute, MaxBackoff: time.Second},
			wantErr: []string{"Options.InitialBackoff", "Options.MaxBackoff"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cred, tt.opts)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				_ = c.Close()
				if c.cfg.safetyMargin != DefaultSafetyMargin || c.cfg.timeout != DefaultTimeout ||
					c.cfg.invalidateInterval != DefaultInvalidateInterval || c.cfg.initialBackoff != DefaultInitialBackoff ||
					c.cfg.maxBackoff != DefaultMaxBackoff || c.cfg.now == nil || c.cfg.rand == nil {
					t.Fatalf("defaults not applied: %+v", c.cfg)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: %v, want ErrInvalidConfig", err)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestGetTokenCachesAndCopiesOptions(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(tokenFor(clk, time.Hour))
	c := newTestCache(t, cred, clk, nil)
	ctx := context.Background()

	scopes := []string{scope}
	tok, err := c.GetToken(ctx, policy.TokenRequestOptions{Scopes: scopes})
	if err != nil || tok.Token != "tok-1" {
		t.Fatalf("GetToken = %q, %v", tok.Token, err)
	}
	scopes[0] = "mutated-by-caller"
	for range 100 {
		tok, err = c.GetToken(ctx, opts(scope))
		if err != nil || tok.Token != "tok-1" {
			t.Fatalf("GetToken = %q, %v", tok.Token, err)
		}
	}
	if n := cred.calls.Load(); n != 1 {
		t.Fatalf("credential calls = %d, want 1", n)
	}
	st := c.Stats()
	if st.Hits != 100 || st.Misses != 1 || st.Refreshes != 1 || st.Failures != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if e := entryStats(t, c, scope); e.SecondsUntilExpiry != 3600 || !e.Usable || !e.HasToken {
		t.Fatalf("entry stats = %+v", e)
	}
}

func TestKeyedByScopesTenantClaimsCAE(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(tokenFor(clk, time.Hour))
	c := newTestCache(t, cred, clk, nil)
	variants := []policy.TokenRequestOptions{
		{Scopes: []string{scope}},
		{Scopes: []string{scope}, TenantID: "t1"},
		{Scopes: []string{scope}, TenantID: "t2"},
		{Scopes: []string{scope}, Claims: `{"access_token":{}}`},
		{Scopes: []string{scope}, EnableCAE: true},
		{Scopes: []string{scope, "api://other/.default"}},
		{Scopes: []string{"api://other/.default"}},
	}
	got := map[string]bool{}
	for round := range 3 {
		for i, v := range variants {
			tok, err := c.GetToken(context.Background(), v)
			if err != nil {
				t.Fatalf("variant %d: %v", i, err)
			}
			if round == 0 {
				if got[tok.Token] {
					t.Fatalf("variant %d shares token %s with another key", i, tok.Token)
				}
				got[tok.Token] = true
			}
		}
	}
	if n := cred.calls.Load(); n != int64(len(variants)) {
		t.Fatalf("credential calls = %d, want %d", n, len(variants))
	}
	cred.mu.Lock()
	defer cred.mu.Unlock()
	for i, s := range cred.seen {
		v := variants[i]
		if fmt.Sprint(s.Scopes) != fmt.Sprint(v.Scopes) || s.TenantID != v.TenantID || s.Claims != v.Claims || s.EnableCAE != v.EnableCAE {
			t.Errorf("credential call %d got %+v, want %+v", i, s, v)
		}
	}
}

func TestNoScopes(t *testing.T) {
	c := newTestCache(t, &fakeCred{}, newFakeClock(), nil)
	if _, err := c.GetToken(context.Background(), policy.TokenRequestOptions{}); !errors.Is(err, ErrNoToken) || !errors.Is(err, errNoScopes) {
		t.Fatalf("err = %v, want ErrNoToken for no scopes", err)
	}
}

func TestSingleFlightColdBurst(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	release := make(chan struct{})
	issue := tokenFor(clk, time.Hour)
	cred.set(func(ctx context.Context, n int64, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
		<-release
		return issue(ctx, n, o)
	})
	c := newTestCache(t, cred, clk, nil)

	const N = 50
	var wg sync.WaitGroup
	results := make(chan string, N)
	for range N {
		wg.Go(func() {
			tok, err := c.GetToken(context.Background(), opts(scope))
			if err != nil {
				t.Error(err)
				return
			}
			results <- tok.Token
		})
	}
	eventually(t, "all callers waiting", func() bool { return c.Stats().Misses == N })
	close(release)
	wg.Wait()
	close(results)
	for tok := range results {
		if tok != "tok-1" {
			t.Fatalf("caller got %q, want tok-1", tok)
		}
	}
	if n := cred.calls.Load(); n != 1 {
		t.Fatalf("credential calls = %d, want 1", n)
	}
}

func TestCancelledWaiterReturnsWhileFetchContinues(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	release := make(chan struct{})
	fetchCtxErr := make(chan error, 1)
	issue := tokenFor(clk, time.Hour)
	cred.set(func(ctx context.Context, n int64, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
		<-release
		fetchCtxErr <- ctx.Err()
		return issue(ctx, n, o)
	})
	c := newTestCache(t, cred, clk, nil)

	// The first caller starts the fetch, then gives up.
	ctxA, cancelA := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() {
		_, err := c.GetToken(ctxA, opts(scope))
		errA <- err
	}()
	eventually(t, "fetch started", func() bool { return cred.calls.Load() == 1 })
	type res struct {
		tok string
		err error
	}
	resB := make(chan res, 1)
	go func() {
		tok, err := c.GetToken(context.Background(), opts(scope))
		resB <- res{tok.Token, err}
	}()
	eventually(t, "second caller waiting", func() bool { return c.Stats().Misses == 2 })

	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrNoToken) {
		t.Fatalf("cancelled waiter err = %v, want ErrNoToken and context.Canceled", err)
	}
	select {
	case r := <-resB:
		t.Fatalf("other waiter returned before the fetch finished: %+v", r)
	default:
	}
	close(release)
	if err := <-fetchCtxErr; err != nil {
		t.Fatalf("fetch context was cancelled by a caller: %v", err)
	}
	if r := <-resB; r.err != nil || r.tok != "tok-1" {
		t.Fatalf("other waiter = %+v", r)
	}
	if n := cred.calls.Load(); n != 1 {
		t.Fatalf("credential calls = %d, want 1", n)
	}
}

func TestWaiterBoundedByTimeout(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	release := make(chan struct{})
	cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		<-release // ignores ctx on purpose: the waiter must still return
		return azcore.AccessToken{}, errBoom
	})
	c := newTestCache(t, cred, clk, func(o *Options) { o.Timeout = 20 * time.Millisecond })
	t.Cleanup(func() { close(release) }) // runs before Close (LIFO)
	_, err := c.GetToken(context.Background(), opts(scope))
	if !errors.Is(err, ErrNoToken) || !errors.Is(err, errTimeout) || !strings.Contains(err.Error(), scope) {
		t.Fatalf("err = %v, want ErrNoToken (timeout) naming the scope", err)
	}
}

func TestFetchUsesTimeoutOnLifecycleContext(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(func(ctx context.Context, _ int64, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
		if _, ok := ctx.Deadline(); !ok {
			return azcore.AccessToken{}, errors.New("fetch context has no deadline")
		}
		<-ctx.Done()
		return azcore.AccessToken{}, ctx.Err()
	})
	c := newTestCache(t, cred, clk, func(o *Options) { o.Timeout = 20 * time.Millisecond })
	_, err := c.GetToken(context.Background(), opts(scope))
	if !errors.Is(err, ErrNoToken) || (!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errTimeout)) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
}

func TestRefreshPoint(t *testing.T) {
	now := t0
	tests := []struct {
		name   string
		tok    azcore.AccessToken
		margin time.Duration
		rand   float64
		want   time.Time
	}{
		{name: "RefreshOn wins", tok: azcore.AccessToken{ExpiresOn: now.Add(24 * time.Hour), RefreshOn: now.Add(3 * time.Hour)}, want: now.Add(3 * time.Hour)},
		{name: "long token: half life", tok: azcore.AccessToken{ExpiresOn: now.Add(24 * time.Hour)}, want: now.Add(12 * time.Hour)},
		{name: "2h token: 5 min before expiry", tok: azcore.AccessToken{ExpiresOn: now.Add(2 * time.Hour)}, want: now.Add(115 * time.Minute)},
		{name: "1h token: 5 min before expiry", tok: azcore.AccessToken{ExpiresOn: now.Add(time.Hour)}, want: now.Add(55 * time.Minute)},
		{name: "4 min token: middle of usable time", tok: azcore.AccessToken{ExpiresOn: now.Add(4 * time.Minute)}, want: now.Add(105 * time.Second)},
		{name: "RefreshOn in the past: middle", tok: azcore.AccessToken{ExpiresOn: now.Add(time.Hour), RefreshOn: now.Add(-time.Minute)}, want: now.Add(1785 * time.Second)},
		{name: "RefreshOn past the margin: middle", tok: azcore.AccessToken{ExpiresOn: now.Add(time.Hour), RefreshOn: now.Add(time.Hour)}, want: now.Add(1785 * time.Second)},
		{name: "jitter moves earlier by up to 5%", tok: azcore.AccessToken{ExpiresOn: now.Add(time.Hour)}, rand: 0.5, want: now.Add(55*time.Minute - 82500*time.Millisecond)},
		{name: "jitter is capped at 5 min", tok: azcore.AccessToken{ExpiresOn: now.Add(48 * time.Hour)}, rand: 0.99, want: now.Add(24*time.Hour - 5*time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(&fakeCred{}, &Options{SafetyMargin: tt.margin, jitter: func() float64 { return tt.rand }})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.refreshPoint(tt.tok.ExpiresOn, tt.tok.RefreshOn, now); !got.Equal(tt.want) {
				t.Fatalf("refreshPoint = %v, want %v", got.Sub(now), tt.want.Sub(now))
			}
		})
	}
}

func TestRefreshAheadInBackground(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	release := make(chan struct{})
	issue := tokenFor(clk, time.Hour)
	cred.set(func(ctx context.Context, n int64, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
		if n > 1 {
			<-release
		}
		return issue(ctx, n, o)
	})
	c := newTestCache(t, cred, clk, nil)
	ctx := context.Background()
	if tok, err := c.GetToken(ctx, opts(scope)); err != nil || tok.Token != "tok-1" {
		t.Fatalf("first GetToken = %q, %v", tok.Token, err)
	}

	clk.Advance(55*time.Minute - time.Second) // just before the refresh point
	if tok, _ := c.GetToken(ctx, opts(scope)); tok.Token != "tok-1" || cred.calls.Load() != 1 || entryStats(t, c, scope).Refreshing {
		t.Fatalf("refresh started before the refresh point (token %q, calls %d)", tok.Token, cred.calls.Load())
	}

	clk.Advance(time.Second) // at the refresh point: the refresh blocks in the credential
	for range 10 {
		tok, err := c.GetToken(ctx, opts(scope))
		if err != nil || tok.Token != "tok-1" {
			t.Fatalf("during refresh GetToken = %q, %v; want the cached token at once", tok.Token, err)
		}
	}
	eventually(t, "background refresh started", func() bool { return cred.calls.Load() == 2 })
	if st := c.Stats(); st.Misses != 1 {
		t.Fatalf("a caller waited for the background refresh: misses = %d", st.Misses)
	}
	close(release)
	eventually(t, "new token served", func() bool {
		tok, _ := c.GetToken(ctx, opts(scope))
		return tok.Token == "tok-2"
	})
	if n := cred.calls.Load(); n != 2 {
		t.Fatalf("credential calls = %d, want 2 (one refresh)", n)
	}
}

func TestNoNearExpiredTokenEverReturned(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	rng := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex
	cred.set(func(_ context.Context, n int64, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
		mu.Lock()
		life := time.Duration(31+rng.IntN(4*3600)) * time.Second
		fail := rng.IntN(4) == 0
		mu.Unlock()
		if fail {
			return azcore.AccessToken{}, errBoom
		}
		return azcore.AccessToken{Token: fmt.Sprintf("tok-%d", n), ExpiresOn: clk.Now().Add(life)}, nil
	})
	const margin = 30 * time.Second
	c := newTestCache(t, cred, clk, func(o *Options) { o.SafetyMargin = margin })
	ctx := context.Background()
	for i := range 3000 {
		clk.Advance(time.Duration(rng.IntN(600)) * time.Second)
		now := clk.Now()
		tok, err := c.GetToken(ctx, opts(scope))
		if err != nil {
			if !errors.Is(err, errBoom) {
				t.Fatalf("step %d: unexpected error %v", i, err)
			}
			continue
		}
		if left := tok.ExpiresOn.Sub(now); left <= margin {
			t.Fatalf("step %d: returned %s with %v left (margin %v)", i, tok.Token, left, margin)
		}
		// Let any background refresh finish so the next step sees its result.
		eventually(t, "refresh settled", func() bool { return !entryStats(t, c, scope).Refreshing })
	}
}

func TestNearExpiryCallerWaitsForFreshToken(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(tokenFor(clk, 10*time.Minute))
	c := newTestCache(t, cred, clk, nil)
	ctx := context.Background()
	if _, err := c.GetToken(ctx, opts(scope)); err != nil {
		t.Fatal(err)
	}
	// Stop the credential's background refresh from succeeding so the cached
	// token ages into the safety margin.
	cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{}, errBoom
	})
	clk.Advance(10*time.Minute - 30*time.Second) // exactly at the margin
	_, err := c.GetToken(ctx, opts(scope))
	if !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want the credential's error instead of the near-expired token", err)
	}
	// The failure is remembered until its backoff has passed.
	if _, err := c.GetToken(ctx, opts(scope)); !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want the remembered failure during the backoff", err)
	}
	cred.set(tokenFor(clk, time.Hour))
	clk.Advance(DefaultMaxBackoff)
	tok, err := c.GetToken(ctx, opts(scope))
	if err != nil || tok.ExpiresOn.Sub(clk.Now()) != time.Hour {
		t.Fatalf("GetToken = %+v, %v; want a fresh token", tok.ExpiresOn, err)
	}
}

func TestCredentialReturnsTooShortToken(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(tokenFor(clk, 20*time.Second))
	c := newTestCache(t, cred, clk, nil)
	_, err := c.GetToken(context.Background(), opts(scope))
	if !errors.Is(err, errTokenTooShortLived) || !errors.Is(err, ErrNoToken) {
		t.Fatalf("err = %v, want ErrNoToken (too short-lived)", err)
	}
}

func TestStaleWhileErrorThenErrorNamingScope(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	secret := "secret-token-value-123"
	cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{Token: secret, ExpiresOn: clk.Now().Add(time.Hour)}, nil
	})
	var logs syncBuffer
	c := newTestCache(t, cred, clk, func(o *Options) {
		o.InitialBackoff = 10 * time.Second
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := context.Background()
	if _, err := c.GetToken(ctx, opts(scope)); err != nil {
		t.Fatal(err)
	}
	cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{}, errBoom
	})

	// Past the refresh point, refreshes fail; the cached token is still served.
	clk.Advance(55 * time.Minute)
	for i := 0; clk.Now().Before(t0.Add(time.Hour - 30*time.Second)); i++ {
		tok, err := c.GetToken(ctx, opts(scope))
		if err != nil || tok.Token != secret {
			t.Fatalf("step %d at %v: GetToken = %v; want the cached token", i, clk.Now().Sub(t0), err)
		}
		eventually(t, "refresh settled", func() bool { return !entryStats(t, c, scope).Refreshing })
		clk.Advance(5 * time.Second)
	}
	st := c.Stats()
	if st.Failures == 0 || st.Misses != 1 {
		t.Fatalf("stats = %+v; want failed background refreshes and no waiting caller", st)
	}
	// Now within the margin: the caller gets the credential's error, wrapped.
	_, err := c.GetToken(ctx, opts(scope))
	if !errors.Is(err, errBoom) || !errors.Is(err, ErrNoToken) {
		t.Fatalf("err = %v, want ErrNoToken wrapping the credential's error", err)
	}
	if !strings.Contains(err.Error(), scope) || strings.Contains(err.Error(), secret) {
		t.Fatalf("error %q must name the scope and not contain the token", err)
	}
	out := logs.String()
	for _, want := range []string{"refresh started", "refresh succeeded", "refresh failed", scope, "attempt=", "expires_on="} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, secret) {
		t.Fatalf("logs contain the token:\n%s", out)
	}
}

// failingAfterFirst returns a cache whose credential issues one 1h token and
// then fails with err; the clock is past the refresh point.
func failingAfterFirst(t *testing.T, err error, tweak func(*Options)) (*Cache, *fakeCred, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(tokenFor(clk, time.Hour))
	c := newTestCache(t, cred, clk, tweak)
	if _, err := c.GetToken(context.Background(), opts(scope)); err != nil {
		t.Fatal(err)
	}
	cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{}, err
	})
	clk.Advance(55 * time.Minute)
	return c, cred, clk
}

// attemptAfter drives one background attempt: it advances the clock by d,
// calls GetToken and reports whether that started a credential call (and
// waits for it to finish).
func attemptAfter(t *testing.T, c *Cache, cred *fakeCred, clk *fakeClock, d time.Duration) bool {
	t.Helper()
	clk.Advance(d)
	before := cred.calls.Load()
	if _, err := c.GetToken(context.Background(), opts(scope)); err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	started := entryStats(t, c, scope).Refreshing || cred.calls.Load() != before
	eventually(t, "refresh settled", func() bool { return !entryStats(t, c, scope).Refreshing })
	return started
}

func TestBackoffGrowth(t *testing.T) {
	c, cred, clk := failingAfterFirst(t, errBoom, func(o *Options) {
		o.InitialBackoff = time.Second
		o.MaxBackoff = 8 * time.Second
		o.jitter = func() float64 { return 0.5 } // nominal delays, nominal refresh jitter
	})
	// The first refresh attempt (refresh point already passed with jitter).
	if !attemptAfter(t, c, cred, clk, 0) {
		t.Fatal("no refresh at the refresh point")
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		if attemptAfter(t, c, cred, clk, want-time.Millisecond) {
			t.Fatalf("retry %d started before its backoff of %v", i+1, want)
		}
		if !attemptAfter(t, c, cred, clk, time.Millisecond) {
			t.Fatalf("retry %d did not start after its backoff of %v", i+1, want)
		}
		if got := entryStats(t, c, scope).ConsecutiveFailures; got != i+2 {
			t.Fatalf("consecutive failures = %d, want %d", got, i+2)
		}
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	for _, r := range []float64{0, 0.25, 0.5, 0.999, 1.5, -1} {
		c, err := New(&fakeCred{}, &Options{InitialBackoff: 4 * time.Second, MaxBackoff: time.Minute, jitter: func() float64 { return r }})
		if err != nil {
			t.Fatal(err)
		}
		for failures := 1; failures <= 10; failures++ {
			nominal := min(4*time.Second<<(failures-1), time.Minute)
			d := c.backoff(failures, throttleHeader(errBoom), t0)
			if d < nominal*3/4 || d > min(nominal*5/4, time.Minute) {
				t.Fatalf("rand %v failures %d: backoff %v outside [%v, %v]", r, failures, d, nominal*3/4, nominal*5/4)
			}
		}
		_ = c.Close()
	}
}

func throttled(status int, header http.Header) *http.Response {
	return &http.Response{StatusCode: status, Header: header, Request: &http.Request{Method: http.MethodGet}}
}

func TestRetryAfterHonoured(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{name: "azcore.ResponseError 429", err: &azcore.ResponseError{StatusCode: 429, RawResponse: throttled(429, http.Header{"Retry-After": {"120"}})}},
		{name: "azidentity.AuthenticationFailedError 429", err: fmt.Errorf("wrapped: %w", &azidentity.AuthenticationFailedError{RawResponse: throttled(429, http.Header{"Retry-After": {"120"}})})},
		{name: "retry-after-ms", err: &azcore.ResponseError{StatusCode: 503, RawResponse: throttled(503, http.Header{"Retry-After-Ms": {"120000"}})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, cred, clk := failingAfterFirst(t, tt.err, func(o *Options) {
				o.InitialBackoff = time.Second
				o.jitter = func() float64 { return 0.5 }
			})
			if !attemptAfter(t, c, cred, clk, 0) {
				t.Fatal("no refresh at the refresh point")
			}
			if attemptAfter(t, c, cred, clk, 119*time.Second) {
				t.Fatal("retried before Retry-After (120s) elapsed")
			}
			if !attemptAfter(t, c, cred, clk, time.Second) {
				t.Fatal("did not retry once Retry-After elapsed")
			}
		})
	}
}

func TestInvalidateRateLimited(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(tokenFor(clk, time.Hour))
	c := newTestCache(t, cred, clk, func(o *Options) { o.InvalidateInterval = 30 * time.Second })
	ctx := context.Background()
	get := func() string {
		t.Helper()
		tok, err := c.GetToken(ctx, opts(scope))
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}
	if c.Invalidate(scope) {
		t.Fatal("Invalidate took effect with nothing cached")
	}
	if get() != "tok-1" {
		t.Fatal("want tok-1")
	}
	if !c.Invalidate(scope) {
		t.Fatal("first Invalidate did not take effect")
	}
	if got := get(); got != "tok-2" {
		t.Fatalf("after Invalidate got %s, want a fresh tok-2", got)
	}
	clk.Advance(29 * time.Second)
	for range 20 {
		if c.Invalidate(scope) {
			t.Fatal("Invalidate within InvalidateInterval took effect")
		}
		if got := get(); got != "tok-2" {
			t.Fatalf("rate-limited Invalidate caused a fetch: %s", got)
		}
	}
	clk.Advance(time.Second)
	if !c.Invalidate(scope) {
		t.Fatal("Invalidate after InvalidateInterval did not take effect")
	}
	if got := get(); got != "tok-3" {
		t.Fatalf("got %s, want tok-3", got)
	}
	if n := cred.calls.Load(); n != 3 {
		t.Fatalf("credential calls = %d, want 3", n)
	}
	if c.Invalidate("api://unknown/.default") {
		t.Fatal("Invalidate of an unknown scope took effect")
	}
}

func TestInvalidateSingleFlight(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	release := make(chan struct{})
	issue := tokenFor(clk, time.Hour)
	cred.set(func(ctx context.Context, n int64, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
		if n > 1 {
			<-release
		}
		return issue(ctx, n, o)
	})
	c := newTestCache(t, cred, clk, nil)
	if _, err := c.GetToken(context.Background(), opts(scope)); err != nil {
		t.Fatal(err)
	}
	c.Invalidate(scope)
	const N = 20
	var wg sync.WaitGroup
	for range N {
		wg.Go(func() {
			tok, err := c.GetToken(context.Background(), opts(scope))
			if err != nil || tok.Token != "tok-2" {
				t.Errorf("GetToken after Invalidate = %q, %v; want tok-2", tok.Token, err)
			}
		})
	}
	eventually(t, "waiters", func() bool { return c.Stats().Misses == N+1 })
	close(release)
	wg.Wait()
	if n := cred.calls.Load(); n != 2 {
		t.Fatalf("credential calls = %d, want 2", n)
	}
}

// TestInvalidateKeepsTokenDuringOutage: finding 11. A 401 invalid_token
// during an identity-endpoint outage must not throw away a token with hours
// of validity left: the old token stays until a new one is in hand.
func TestInvalidateKeepsTokenDuringOutage(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(tokenFor(clk, time.Hour))
	c := newTestCache(t, cred, clk, nil)
	first, err := c.GetToken(context.Background(), opts(scope))
	if err != nil {
		t.Fatal(err)
	}
	cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{}, errBoom
	})
	if !c.Invalidate(scope) {
		t.Fatal("Invalidate did not take effect")
	}
	for i := range 3 {
		tok, err := c.GetToken(context.Background(), opts(scope))
		if err != nil || tok.Token != first.Token {
			t.Fatalf("call %d after Invalidate during an outage: token %v, err %v; want the old, still valid token", i, tok.Token == first.Token, err)
		}
	}
	if n := cred.calls.Load(); n != 2 {
		t.Fatalf("credential calls = %d, want 2 (first token + one forced refresh)", n)
	}
	// Once the endpoint heals, the next forced refresh replaces the token.
	cred.set(tokenFor(clk, time.Hour))
	clk.Advance(DefaultInvalidateInterval + DefaultMaxBackoff)
	if !c.Invalidate(scope) {
		t.Fatal("second Invalidate did not take effect")
	}
	if tok, err := c.GetToken(context.Background(), opts(scope)); err != nil || tok.Token == first.Token {
		t.Fatalf("after recovery: same token or err %v", err)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	clk := newFakeClock()
	cred := &fakeCred{}
	issue := tokenFor(clk, time.Hour)
	fetchErr := make(chan error, 1)
	cred.set(func(ctx context.Context, n int64, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
		if len(o.Scopes) == 1 && o.Scopes[0] == "api://blocked/.default" {
			<-ctx.Done() // a fetch in flight at Close
			fetchErr <- ctx.Err()
			return azcore.AccessToken{}, ctx.Err()
		}
		return issue(ctx, n, o)
	})
	c, err := New(cred, &Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 { // entries with armed refresh timers
		if _, err := c.GetToken(context.Background(), opts(fmt.Sprintf("api://s%d/.default", i))); err != nil {
			t.Fatal(err)
		}
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := c.GetToken(context.Background(), opts("api://blocked/.default"))
		blocked <- err
	}()
	eventually(t, "blocked fetch started", func() bool { return cred.calls.Load() == 6 })

	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-blocked; !errors.Is(err, ErrNoToken) {
		t.Fatalf("waiter on a closed cache got %v, want ErrNoToken", err)
	}
	select {
	case err := <-fetchErr:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("in-flight fetch ended with %v, want context.Canceled by Close", err)
		}
	default:
		t.Fatal("Close returned while a credential call was still running")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.GetToken(context.Background(), opts("api://s0/.default")); !errors.Is(err, ErrNoToken) || !errors.Is(err, errClosed) {
		t.Fatalf("GetToken after Close = %v, want ErrNoToken (closed)", err)
	}
	if _, err := c.GetToken(context.Background(), opts("api://new/.default")); !errors.Is(err, ErrNoToken) || !errors.Is(err, errClosed) {
		t.Fatalf("GetToken after Close = %v, want ErrNoToken (closed)", err)
	}
	if c.Invalidate("api://s0/.default") {
		t.Fatal("Invalidate after Close took effect")
	}
	eventually(t, fmt.Sprintf("goroutines back to %d", before), func() bool { return runtime.NumGoroutine() <= before })
}

func TestWarmGetTokenDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are checked in full runs")
	}
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(tokenFor(clk, time.Hour))
	c := newTestCache(t, cred, clk, nil)
	for _, o := range []policy.TokenRequestOptions{
		opts(scope),
		{Scopes: []string{scope}, TenantID: "t1", Claims: "c", EnableCAE: true},
		{Scopes: []string{scope, "api://b/.default"}},
	} {
		if _, err := c.GetToken(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(200, func() { _, _ = c.GetToken(context.Background(), o) }); n != 0 {
			t.Fatalf("warm GetToken(%+v) allocates %v times", o, n)
		}
	}
}

func TestCredentialPanicBecomesError(t *testing.T) {
	cred := &fakeCred{}
	cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		panic("boom")
	})
	c := newTestCache(t, cred, newFakeClock(), nil)
	if _, err := c.GetToken(context.Background(), opts(scope)); !errors.Is(err, ErrNoToken) || !errors.Is(err, errCredentialPanic) {
		t.Fatalf("err = %v, want ErrNoToken (panic)", err)
	}
}
