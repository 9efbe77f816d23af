package tokencache

// Adversarial review (issue 14 rerun): attacks on the cache and the transport
// that earlier tests did not cover.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// TestCacheKeyInjective: options that differ must never share an entry, even
// when a scope, tenant or claims value holds the key's separator byte (claims
// come from a resource's challenge): no token for one audience/tenant is
// handed out for another.
func TestCacheKeyInjective(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(func(_ context.Context, n int64, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{Token: fmt.Sprintf("tok-%d", n), ExpiresOn: clk.Now().Add(time.Hour)}, nil
	})
	pairs := []struct {
		name string
		a, b policy.TokenRequestOptions
	}{
		{"claims absorbs a scope", policy.TokenRequestOptions{Scopes: []string{"api://a", "api://b"}, Claims: "c"},
			policy.TokenRequestOptions{Scopes: []string{"api://b"}, Claims: "c\x00api://a"}},
		{"scope splits in two", policy.TokenRequestOptions{Scopes: []string{"api://a", "api://b"}, TenantID: "t"},
			policy.TokenRequestOptions{Scopes: []string{"api://a\x00api://b"}, TenantID: "t"}},
		{"tenant absorbs claims", policy.TokenRequestOptions{Scopes: []string{"api://a"}, TenantID: "t", Claims: "c"},
			policy.TokenRequestOptions{Scopes: []string{"api://a"}, TenantID: "t\x00c"}},
		{"single scope spells a tenant key", policy.TokenRequestOptions{Scopes: []string{"api://a"}, TenantID: "evil"},
			policy.TokenRequestOptions{Scopes: []string{"\x000\x00evil\x00\x00api://a"}}},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			c := newTestCache(t, cred, clk, nil)
			ta, err := c.GetToken(context.Background(), p.a)
			if err != nil {
				t.Fatal(err)
			}
			tb, err := c.GetToken(context.Background(), p.b)
			if err != nil {
				t.Fatal(err)
			}
			if ta.Token == tb.Token {
				t.Fatalf("%+v and %+v share a cache entry (token %s)", p.a, p.b, ta.Token)
			}
		})
	}
}

// TestIntegrationExpiresOnMillisecondsNotTrusted: an identity endpoint that
// reports expires_on in milliseconds (year 58000 to MSAL) must not keep a
// one-hour token in service for weeks, nor hand azcore's bearer policy an
// expiry that makes it cache the token for ever: the token's own exp wins.
func TestIntegrationExpiresOnMillisecondsNotTrusted(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	payload, _ := json.Marshal(map[string]any{"aud": "api://x", "exp": exp.Unix()})
	tok := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + ".c2lnbmF0dXJlc2lnbmF0dXJl"
	for _, tc := range []struct{ name, expiresOn string }{
		{"milliseconds", strconv.FormatInt(exp.UnixMilli(), 10)},
		{"a day later than the token", strconv.FormatInt(exp.Add(24*time.Hour).Unix(), 10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			startHostileMI(t, "hdr-exp-"+strconv.Itoa(int(resourceSeq.Add(1))), func(w http.ResponseWriter, _ *http.Request, resource string) {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]string{
					"access_token": tok, "expires_on": tc.expiresOn, "resource": resource, "token_type": "Bearer",
				})
			})
			c := newMICache(t, nil)
			got, err := c.GetToken(context.Background(), opts(uniqueScope("exp")))
			if err != nil {
				t.Fatal(err)
			}
			if !got.ExpiresOn.Equal(exp) {
				t.Fatalf("ExpiresOn = %v; want the token's exp %v", got.ExpiresOn, exp)
			}
			if es := c.Stats().Entries[0]; !es.ExpiresOn.Equal(exp) {
				t.Fatalf("Stats ExpiresOn = %v; want %v", es.ExpiresOn, exp)
			}
		})
	}
}

// TestJWTExpiryCapsLifetime: the unverified exp of a JWT only ever shortens
// a token's life in the cache; malformed payloads are ignored.
func TestJWTExpiryCapsLifetime(t *testing.T) {
	clk := newFakeClock()
	seg := func(v string) string { return base64.RawURLEncoding.EncodeToString([]byte(v)) }
	hdr := seg(`{"alg":"RS256"}`)
	for _, tc := range []struct {
		name, tok string
		want      time.Time
	}{
		{"exp earlier", hdr + "." + seg(fmt.Sprintf(`{"exp":%d}`, t0.Add(time.Hour).Unix())) + ".sig", t0.Add(time.Hour)},
		{"exp later is ignored", hdr + "." + seg(fmt.Sprintf(`{"exp":%d}`, t0.Add(48*time.Hour).Unix())) + ".sig", t0.Add(2 * time.Hour)},
		{"exp not a number", hdr + "." + seg(`{"exp":"soon"}`) + ".sig", t0.Add(2 * time.Hour)},
		{"exp huge", hdr + "." + seg(`{"exp":1e300}`) + ".sig", t0.Add(2 * time.Hour)},
		{"not base64", hdr + ".a.sig", t0.Add(2 * time.Hour)},
		{"opaque token", "opaque-token-value", t0.Add(2 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cred := &fakeCred{}
			cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
				return azcore.AccessToken{Token: tc.tok, ExpiresOn: t0.Add(2 * time.Hour)}, nil
			})
			c := newTestCache(t, cred, clk, nil)
			got, err := c.GetToken(context.Background(), opts("api://jwt-exp"))
			if err != nil {
				t.Fatal(err)
			}
			if !got.ExpiresOn.Equal(tc.want) {
				t.Fatalf("ExpiresOn = %v; want %v", got.ExpiresOn, tc.want)
			}
		})
	}
}

// TestIntegrationClaimsChallengeStormBounded: a resource answering every
// request with a new claims challenge (azcore's bearer policy passes it to
// GetToken) must not make every request an identity-endpoint call through
// the real credential, nor grow the cache by one entry per request.
func TestIntegrationClaimsChallengeStormBounded(t *testing.T) {
	m := startMI(t)
	clk := newFakeClock()
	clk.Set(time.Now())
	c := newMICache(t, &Options{Now: clk.Now})
	sc := uniqueScope("claims-storm")
	claims := func(i int) policy.TokenRequestOptions {
		return policy.TokenRequestOptions{Scopes: []string{sc}, Claims: fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, i)}
	}
	first, err := c.GetToken(context.Background(), claims(0))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 50; i++ {
		if _, err := c.GetToken(context.Background(), claims(i)); !errors.Is(err, errClaimsRateLimited) {
			t.Fatalf("claims %d: err = %v, want errClaimsRateLimited", i, err)
		}
	}
	if again, err := c.GetToken(context.Background(), claims(0)); err != nil || again.Token != first.Token {
		t.Fatalf("the admitted claims value is no longer served from the cache: %v", err)
	}
	if n, e := m.Requests(), len(c.Stats().Entries); n != 1 || e != 1 {
		t.Fatalf("endpoint requests = %d, entries = %d; want 1 and 1", n, e)
	}
	clk.Advance(DefaultInvalidateInterval)
	if _, err := c.GetToken(context.Background(), claims(51)); err != nil {
		t.Fatalf("a new claims value after the interval: %v", err)
	}
	if n := m.Requests(); n != 2 {
		t.Fatalf("endpoint requests = %d, want 2", n)
	}
}

// TestClaimsConcurrentSameValueJoins: concurrent callers with the same new
// claims value share one credential call; none is refused by the claims
// rate limit.
func TestClaimsConcurrentSameValueJoins(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	release := make(chan struct{})
	cred.set(func(_ context.Context, n int64, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
		<-release
		return azcore.AccessToken{Token: fmt.Sprintf("tok-%d", n), ExpiresOn: clk.Now().Add(time.Hour)}, nil
	})
	c := newTestCache(t, cred, clk, nil)
	o := policy.TokenRequestOptions{Scopes: []string{"api://claims-join"}, Claims: `{"x":1}`}
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			_, err := c.GetToken(context.Background(), o)
			errs <- err
		}()
	}
	eventually(t, "the credential call", func() bool { return cred.calls.Load() == 1 })
	close(release)
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := cred.calls.Load(); n != 1 {
		t.Fatalf("credential calls = %d, want 1", n)
	}
}

// blockingError is a credential error whose Error blocks until released.
type blockingError struct{ release chan struct{} }

func (b blockingError) Error() string { <-b.release; return "released" }

// panickingUnwrap is a credential error whose Unwrap panics.
type panickingUnwrap struct{}

func (panickingUnwrap) Error() string { return "unwrap panics" }
func (panickingUnwrap) Unwrap() error { panic("hostile Unwrap") }

// TestHostileCredentialErrorCannotWedgeScope: a credential error whose
// methods block or panic must not wedge the scope: later callers return
// within their context, the next attempt starts, and Close returns.
func TestHostileCredentialErrorCannotWedgeScope(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func(release chan struct{}) error
	}{
		{"Error blocks", func(r chan struct{}) error { return blockingError{r} }},
		{"Unwrap panics", func(chan struct{}) error { return panickingUnwrap{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			release := make(chan struct{})
			defer close(release)
			cred := &fakeCred{}
			cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
				return azcore.AccessToken{}, tc.err(release)
			})
			c, err := New(cred, &Options{Now: clk.Now, jitter: func() float64 { return 0 }, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				done := make(chan error, 1)
				go func() {
					_, err := c.GetToken(context.Background(), opts("api://hostile-error"))
					done <- err
				}()
				if err := <-done; !errors.Is(err, ErrNoToken) {
					t.Fatalf("call %d: err = %v, want ErrNoToken", i, err)
				}
				clk.Advance(time.Hour) // past the backoff
			}
			if n := cred.calls.Load(); n != 2 {
				t.Fatalf("credential calls = %d, want 2 (the scope is wedged)", n)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestInvalidateScopeVariantsDoNotBypassRateLimit: scopes are exact strings
// in GetToken, Transport and Invalidate alike. A variant (trailing slash,
// other case, no /.default) names no cached entry, so it can neither force a
// refresh nor reset the rate limit of the real one.
func TestInvalidateScopeVariantsDoNotBypassRateLimit(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(tokenFor(clk, time.Hour))
	c := newTestCache(t, cred, clk, nil)
	const sc = "api://callee/.default"
	if _, err := c.GetToken(context.Background(), opts(sc)); err != nil {
		t.Fatal(err)
	}
	if !c.Invalidate(sc) {
		t.Fatal("Invalidate of the exact scope did not take effect")
	}
	if _, err := c.GetToken(context.Background(), opts(sc)); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{sc, "api://callee/.default/", "API://callee/.default", "api://callee", "api://callee/", " api://callee/.default"} {
		if c.Invalidate(v) {
			t.Fatalf("Invalidate(%q) took effect within the interval", v)
		}
		if _, err := c.GetToken(context.Background(), opts(sc)); err != nil {
			t.Fatal(err)
		}
	}
	if n := cred.calls.Load(); n != 2 {
		t.Fatalf("credential calls = %d, want 2", n)
	}
}

// TestCloseRacesWithCallers: Close while callers fetch, invalidate, send
// through the transport and ask with claims: nothing panics, every call
// returns (a token or errClosed), and after Close the transport sends
// nothing.
func TestCloseRacesWithCallers(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(func(ctx context.Context, n int64, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
		if n%3 == 0 {
			<-ctx.Done() // some calls are in flight at Close
			return azcore.AccessToken{}, ctx.Err()
		}
		return azcore.AccessToken{Token: fmt.Sprintf("tok-%d", n), ExpiresOn: clk.Now().Add(time.Hour)}, nil
	})
	c, err := New(cred, &Options{Now: clk.Now, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	rt := c.Transport("api://race/.default", roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	}))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var loops atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				loops.Add(1)
				o := opts(fmt.Sprintf("api://race-%d/.default", (g+i)%4))
				if i%5 == 0 {
					o.Claims = fmt.Sprintf(`{"n":%d}`, i)
				}
				_, err := c.GetToken(context.Background(), o)
				if err != nil && !errors.Is(err, errClosed) && !errors.Is(err, ErrNoToken) && !errors.Is(err, errClaimsRateLimited) && !errors.Is(err, errTimeout) {
					t.Errorf("GetToken: %v", err)
				}
				c.Invalidate(o.Scopes[0])
				req, _ := http.NewRequest(http.MethodGet, "https://callee.example/api", nil)
				if resp, err := rt.RoundTrip(req); err == nil {
					_ = resp.Body.Close()
				}
				_ = c.Stats()
			}
		}()
	}
	eventually(t, "traffic", func() bool { return loops.Load() > 200 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	before := sent.Load()
	req, _ := http.NewRequest(http.MethodGet, "https://callee.example/api", nil)
	if _, err := rt.RoundTrip(req); !errors.Is(err, errClosed) {
		t.Fatalf("transport after Close: %v, want errClosed", err)
	}
	if sent.Load() != before {
		t.Fatal("the transport sent a request after Close")
	}
}

// TestEntriesBounded: a resource whose challenges name a new tenant on every
// request (an SDK bearer policy passes it on as TenantID) must not grow the
// cache without bound: past MaxEntries new requests are refused, cached ones
// are still served, and room comes back once unused entries are evicted.
func TestEntriesBounded(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(tokenFor(clk, 24*time.Hour))
	c := newTestCache(t, cred, clk, nil)
	tenant := func(i int) policy.TokenRequestOptions {
		return policy.TokenRequestOptions{Scopes: []string{"api://bounded/.default"}, TenantID: fmt.Sprintf("tenant-%d", i)}
	}
	for i := range MaxEntries {
		if _, err := c.GetToken(context.Background(), tenant(i)); err != nil {
			t.Fatalf("tenant %d: %v", i, err)
		}
	}
	if _, err := c.GetToken(context.Background(), tenant(MaxEntries)); !errors.Is(err, errTooManyEntries) {
		t.Fatalf("entry %d: err = %v, want errTooManyEntries", MaxEntries+1, err)
	}
	if _, err := c.GetToken(context.Background(), tenant(0)); err != nil {
		t.Fatalf("a cached entry is no longer served: %v", err)
	}
	if n := len(c.Stats().Entries); n != MaxEntries {
		t.Fatalf("entries = %d, want %d", n, MaxEntries)
	}
	clk.Advance(evictionInterval)
	_, _ = c.GetToken(context.Background(), tenant(MaxEntries)) // the sweep notes who is in use
	clk.Advance(evictionInterval)
	if _, err := c.GetToken(context.Background(), tenant(MaxEntries)); err != nil {
		t.Fatalf("after unused entries were evicted: %v", err)
	}
}

// TestCredentialPanicMessageRedacted: a credential panicking with a token in
// its message does not put the token in the error or the log.
func TestCredentialPanicMessageRedacted(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl"
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		panic("oops access_token=s3cr3t, Bearer abc.def " + jwt)
	})
	var buf syncBuffer
	c := newTestCache(t, cred, clk, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&buf, nil)) })
	_, err := c.GetToken(context.Background(), opts("api://panic"))
	if !errors.Is(err, errCredentialPanic) {
		t.Fatalf("err = %v, want errCredentialPanic", err)
	}
	for _, s := range []string{"s3cr3t", "abc.def", "eyJhbGci"} {
		if strings.Contains(err.Error(), s) || strings.Contains(buf.String(), s) {
			t.Fatalf("%q leaks: err %q log %q", s, err, buf.String())
		}
	}
}
