package tokencache

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

var _ azcore.TokenCredential = (*Cache)(nil)

// Cache wraps an [azcore.TokenCredential], caching its tokens per scopes,
// tenant, claims and CAE flag. It implements [azcore.TokenCredential] itself.
// Create it with [New]; it is safe for concurrent use. Call [Cache.Close] to
// stop its background work.
type Cache struct {
	cred azcore.TokenCredential
	cfg  config

	// life is the lifecycle context of all credential calls; Close cancels it.
	life   context.Context
	cancel context.CancelFunc

	// entries is a copy-on-write map from entry key to entry, read without locks.
	entries atomic.Pointer[map[string]*entry]
	mu      sync.Mutex // serialises inserts into entries

	closed atomic.Bool
	lifeMu sync.RWMutex // guards closing against wg.Add
	wg     sync.WaitGroup

	refreshes atomic.Uint64
	failures  atomic.Uint64

	tel *telemetry // OpenTelemetry instruments (telemetry.go)
}

// tokenState is an immutable snapshot of an entry's token, swapped atomically.
// Times are Unix nanoseconds on the cache's clock.
type tokenState struct {
	tok         azcore.AccessToken
	usableUntil int64 // ExpiresOn - SafetyMargin; math.MinInt64 once invalidated
	refreshAt   int64 // background refresh point
	retryAt     int64 // earliest next background attempt after a failure (backoff)
}

// call is one credential call shared by every waiter (single flight).
type call struct {
	done chan struct{}
	tok  azcore.AccessToken
	err  error
}

// entry is the cache slot for one key.
type entry struct {
	key    string
	label  string // human-readable scopes (+ tenant) for logs and errors
	scopes []string
	opts   policy.TokenRequestOptions

	state atomic.Pointer[tokenState]
	busy  atomic.Bool // a credential call is in flight

	mu         sync.Mutex
	inflight   *call
	failures   int // consecutive failed credential calls
	forced     bool
	lastForced time.Time
	timer      *time.Timer

	hits, misses, refreshes, failed atomic.Uint64
}

// New returns a Cache over cred. A nil opts means defaults. It reports every
// invalid setting at once, each naming its Options field.
func New(cred azcore.TokenCredential, opts *Options) (*Cache, error) {
	cfg, err := opts.resolve()
	if cred == nil {
		err = joinErr(ErrNilCredential, err)
	}
	if err != nil {
		return nil, err
	}
	c := &Cache{cred: cred, cfg: cfg}
	c.life, c.cancel = context.WithCancel(context.Background())
	m := map[string]*entry{}
	c.entries.Store(&m)
	c.tel = newTelemetry(c, opts) // OpenTelemetry (telemetry.go)
	return c, nil
}

// GetToken returns a cached token for opts, fetching one (single-flighted) when
// none is usable. A token is usable while it expires later than the safety
// margin from now. Past the token's refresh point, a background refresh starts
// and the caller still gets the cached token at once. When no usable token is
// cached, the caller waits for the credential, bounded by ctx and
// Options.Timeout; on failure the error wraps [ErrCredential] and the
// credential's error and names the scope (never the token).
func (c *Cache) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if c.closed.Load() {
		return azcore.AccessToken{}, ErrClosed
	}
	e := c.lookup(&opts)
	if e != nil {
		if st := e.state.Load(); st != nil {
			now := c.cfg.now().UnixNano()
			if now < st.usableUntil {
				if now >= st.refreshAt && now >= st.retryAt && !e.busy.Load() {
					c.refreshAsync(e)
				}
				e.hits.Add(1)
				return st.tok, nil
			}
		}
	}
	return c.getSlow(ctx, &opts, e)
}

// lookup finds the entry for o without allocating.
func (c *Cache) lookup(o *policy.TokenRequestOptions) *entry {
	m := *c.entries.Load()
	if len(o.Scopes) == 1 && o.TenantID == "" && o.Claims == "" && !o.EnableCAE {
		return m[o.Scopes[0]]
	}
	var buf [256]byte
	k := appendKey(buf[:0], o)
	return m[string(k)]
}

// appendKey appends the entry key of o to b. The common case (one scope, no
// tenant, claims or CAE) uses the scope itself; every other key starts with a
// NUL byte so the two forms never collide.
func appendKey(b []byte, o *policy.TokenRequestOptions) []byte {
	if len(o.Scopes) == 1 && o.TenantID == "" && o.Claims == "" && !o.EnableCAE {
		return append(b, o.Scopes[0]...)
	}
	b = append(b, 0)
	if o.EnableCAE {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	b = append(b, 0)
	b = append(b, o.TenantID...)
	b = append(b, 0)
	b = append(b, o.Claims...)
	for _, s := range o.Scopes {
		b = append(b, 0)
		b = append(b, s...)
	}
	return b
}

// getOrCreate returns the entry for o, creating it if needed.
func (c *Cache) getOrCreate(o *policy.TokenRequestOptions) (*entry, error) {
	key := string(appendKey(nil, o))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	old := *c.entries.Load()
	if e, ok := old[key]; ok {
		return e, nil
	}
	scopes := slices.Clone(o.Scopes)
	label := strings.Join(scopes, " ")
	if o.TenantID != "" {
		label += " (tenant " + o.TenantID + ")"
	}
	e := &entry{
		key:    key,
		label:  label,
		scopes: scopes,
		opts:   policy.TokenRequestOptions{Scopes: scopes, TenantID: o.TenantID, Claims: o.Claims, EnableCAE: o.EnableCAE},
	}
	m := make(map[string]*entry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[key] = e
	c.entries.Store(&m)
	return e, nil
}

// getSlow waits for a usable token: it joins the in-flight credential call or
// starts one.
func (c *Cache) getSlow(ctx context.Context, o *policy.TokenRequestOptions, e *entry) (azcore.AccessToken, error) {
	if len(o.Scopes) == 0 {
		return azcore.AccessToken{}, ErrNoScopes
	}
	if e == nil {
		var err error
		if e, err = c.getOrCreate(o); err != nil {
			return azcore.AccessToken{}, err
		}
	}
	e.misses.Add(1)

	e.mu.Lock()
	if st := e.state.Load(); st != nil && c.cfg.now().UnixNano() < st.usableUntil {
		// A call finished between the fast path and here.
		e.mu.Unlock()
		return st.tok, nil
	}
	cl := e.inflight
	if cl == nil {
		var err error
		if cl, err = c.start(e, false); err != nil {
			e.mu.Unlock()
			return azcore.AccessToken{}, err
		}
	}
	e.mu.Unlock()

	if err := ctx.Err(); err != nil {
		return azcore.AccessToken{}, fmt.Errorf("tokencache: waiting for a token for scope %q: %w", e.label, err)
	}
	t := time.NewTimer(c.cfg.timeout)
	defer t.Stop()
	select {
	case <-cl.done:
	case <-ctx.Done():
		return azcore.AccessToken{}, fmt.Errorf("tokencache: waiting for a token for scope %q: %w", e.label, ctx.Err())
	case <-t.C:
		return azcore.AccessToken{}, fmt.Errorf("%w (%v) for scope %q", ErrTimeout, c.cfg.timeout, e.label)
	case <-c.life.Done():
		return azcore.AccessToken{}, ErrClosed
	}
	if cl.err != nil {
		return azcore.AccessToken{}, cl.err
	}
	return cl.tok, nil
}

// refreshAsync starts a background refresh of e unless one is running or the
// entry is locked (the hot path never blocks).
func (c *Cache) refreshAsync(e *entry) {
	if !e.mu.TryLock() {
		return
	}
	defer e.mu.Unlock()
	if e.inflight != nil {
		return
	}
	st := e.state.Load()
	if st == nil {
		return
	}
	now := c.cfg.now().UnixNano()
	if now < st.refreshAt || now < st.retryAt || now >= st.usableUntil {
		return
	}
	_, _ = c.start(e, true)
}

// enter registers a goroutine with the cache unless it is closed.
func (c *Cache) enter() bool {
	c.lifeMu.RLock()
	defer c.lifeMu.RUnlock()
	if c.closed.Load() {
		return false
	}
	c.wg.Add(1)
	return true
}

// start launches a credential call for e. e.mu must be held.
func (c *Cache) start(e *entry, background bool) (*call, error) {
	if !c.enter() {
		return nil, ErrClosed
	}
	cl := &call{done: make(chan struct{})}
	e.inflight = cl
	e.busy.Store(true)
	go c.fetch(e, cl, e.failures+1, background)
	return cl, nil
}

// fetch performs one credential call on the cache's lifecycle context, bounded
// by Options.Timeout, and publishes the result.
func (c *Cache) fetch(e *entry, cl *call, attempt int, background bool) {
	defer c.wg.Done()
	log := c.cfg.logger
	if log != nil {
		log.LogAttrs(c.life, slog.LevelDebug, "tokencache: refresh started",
			slog.String("scope", e.label), slog.Int("attempt", attempt), slog.Bool("background", background))
	}
	started := time.Now() // OpenTelemetry: the credential call's start
	ctx, cancel := context.WithTimeout(c.life, c.cfg.timeout)
	opts := e.opts
	opts.Scopes = slices.Clone(e.scopes) // the credential may not keep or alter ours
	tok, err := c.callCredential(ctx, opts)
	cancel()

	now := c.cfg.now()
	var next *tokenState
	if err == nil {
		next, err = c.newState(tok, now)
	}
	c.fetched(e, background, attempt, started, err) // OpenTelemetry (telemetry.go)

	e.mu.Lock()
	var delay time.Duration
	if err == nil {
		e.failures = 0
		e.state.Store(next)
		c.refreshes.Add(1)
		e.refreshes.Add(1)
		c.arm(e, time.Unix(0, next.refreshAt).Sub(now))
		cl.tok = tok
	} else {
		e.failures++
		c.failures.Add(1)
		e.failed.Add(1)
		delay = c.backoff(e.failures, err, now)
		if old := e.state.Load(); old != nil {
			ns := *old
			ns.retryAt = now.Add(delay).UnixNano()
			e.state.Store(&ns)
			if now.UnixNano() < ns.usableUntil {
				c.arm(e, delay)
			}
		}
		cl.err = fmt.Errorf("%w for scope %q: %w", ErrCredential, e.label, err)
	}
	e.inflight = nil
	e.busy.Store(false)
	cached := e.state.Load()
	e.mu.Unlock()
	// Waiters are released after logging, so a returned GetToken implies the
	// outcome was logged.
	defer close(cl.done)

	if log != nil {
		if err == nil {
			log.LogAttrs(c.life, slog.LevelInfo, "tokencache: refresh succeeded",
				slog.String("scope", e.label), slog.Int("attempt", attempt),
				slog.Time("expires_on", tok.ExpiresOn), slog.Time("refresh_at", time.Unix(0, next.refreshAt).UTC()))
		} else {
			attrs := []slog.Attr{slog.String("scope", e.label), slog.Int("attempt", attempt),
				slog.Duration("retry_in", delay), slog.String("error", err.Error())}
			if cached != nil {
				attrs = append(attrs, slog.Time("cached_expires_on", cached.tok.ExpiresOn))
			}
			log.LogAttrs(c.life, slog.LevelWarn, "tokencache: refresh failed", attrs...)
		}
	}
}

// callCredential calls the credential, turning a panic into an error so a
// faulty credential cannot crash the process from a background goroutine.
func (c *Cache) callCredential(ctx context.Context, opts policy.TokenRequestOptions) (tok azcore.AccessToken, err error) {
	defer func() {
		if r := recover(); r != nil {
			tok, err = azcore.AccessToken{}, fmt.Errorf("%w: credential panicked: %v", ErrCredentialPanic, r)
		}
	}()
	return c.cred.GetToken(ctx, opts)
}

// newState validates tok and computes its usable window and refresh point.
func (c *Cache) newState(tok azcore.AccessToken, now time.Time) (*tokenState, error) {
	usable := tok.ExpiresOn.Add(-c.cfg.safetyMargin)
	if !usable.After(now) {
		return nil, fmt.Errorf("%w (expires on %s, safety margin %v)", ErrTokenTooShortLived, tok.ExpiresOn.UTC().Format(time.RFC3339), c.cfg.safetyMargin)
	}
	return &tokenState{
		tok:         tok,
		usableUntil: usable.UnixNano(),
		refreshAt:   c.refreshPoint(tok, now).UnixNano(),
		retryAt:     math.MinInt64,
	}, nil
}

// refreshPoint returns when a background refresh of tok should start: its
// RefreshOn when reported, else half its lifetime when it lives longer than
// 2h, else 5 minutes before expiry; a point outside (now, expiry-margin) is
// replaced by the middle of the remaining usable time. The result is moved
// earlier by a jitter of up to 5% of the interval (at most 5 minutes).
func (c *Cache) refreshPoint(tok azcore.AccessToken, now time.Time) time.Time {
	usable := tok.ExpiresOn.Add(-c.cfg.safetyMargin)
	lifetime := tok.ExpiresOn.Sub(now)
	var nominal time.Time
	switch {
	case !tok.RefreshOn.IsZero():
		nominal = tok.RefreshOn
	case lifetime > longLivedThreshold:
		nominal = now.Add(lifetime / 2)
	default:
		nominal = tok.ExpiresOn.Add(-shortLivedLead)
	}
	if !nominal.After(now) || !nominal.Before(usable) {
		nominal = now.Add(usable.Sub(now) / 2)
	}
	jitter := time.Duration(float64(nominal.Sub(now)) * refreshJitterFraction * c.rand())
	if jitter > maxRefreshJitter {
		jitter = maxRefreshJitter
	}
	return nominal.Add(-jitter)
}

// rand returns the jitter source's value clamped to [0, 1).
func (c *Cache) rand() float64 {
	r := c.cfg.rand()
	if r < 0 || r != r {
		return 0
	}
	if r >= 1 {
		return math.Nextafter(1, 0)
	}
	return r
}

// backoff returns the delay before the next background attempt after the
// given number of consecutive failures: InitialBackoff doubled per failure,
// capped at MaxBackoff, scaled by a jitter factor in [0.75, 1.25) (and capped
// again); a longer Retry-After from a 429/503 response wins.
func (c *Cache) backoff(failures int, err error, now time.Time) time.Duration {
	d := c.cfg.initialBackoff
	for i := 1; i < failures && d < c.cfg.maxBackoff; i++ {
		d *= 2
	}
	if d > c.cfg.maxBackoff {
		d = c.cfg.maxBackoff
	}
	d = time.Duration(float64(d) * (0.75 + 0.5*c.rand()))
	if d > c.cfg.maxBackoff {
		d = c.cfg.maxBackoff
	}
	if ra, ok := RetryAfter(err, now); ok && ra > d {
		d = ra
	}
	return d
}

// arm (re)schedules e's background timer to fire after d. e.mu must be held.
func (c *Cache) arm(e *entry, d time.Duration) {
	if c.closed.Load() {
		return
	}
	if d < 0 {
		d = 0
	}
	if e.timer == nil {
		e.timer = time.AfterFunc(d, func() { c.onTimer(e) })
		return
	}
	e.timer.Reset(d)
}

// onTimer starts a due background refresh, or re-arms the timer when the
// cache's clock says the refresh is not yet due. It does nothing once the
// token is no longer usable: callers then drive fetches themselves.
func (c *Cache) onTimer(e *entry) {
	if !c.enter() {
		return
	}
	defer c.wg.Done()
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.state.Load()
	if st == nil || e.inflight != nil {
		return
	}
	now := c.cfg.now().UnixNano()
	if now >= st.usableUntil {
		return
	}
	due := max(st.refreshAt, st.retryAt)
	if now < due {
		c.arm(e, time.Duration(due-now))
		return
	}
	_, _ = c.start(e, true)
}

// Invalidate marks every cached entry whose scopes include scope for one forced
// refresh: the next GetToken waits for a fresh token (single-flighted) instead
// of returning the cached one. Forced refreshes are rate-limited per entry by
// Options.InvalidateInterval. It reports whether at least one entry was
// invalidated (false when nothing is cached for scope, every matching entry was
// invalidated too recently, or the cache is closed).
func (c *Cache) Invalidate(scope string) bool {
	if c.closed.Load() {
		return false
	}
	now := c.cfg.now()
	took := false
	for _, e := range *c.entries.Load() {
		if !slices.Contains(e.scopes, scope) {
			continue
		}
		e.mu.Lock()
		st := e.state.Load()
		if st != nil && (!e.forced || now.Sub(e.lastForced) >= c.cfg.invalidateInterval) {
			e.forced = true
			e.lastForced = now
			ns := *st
			ns.usableUntil = math.MinInt64
			e.state.Store(&ns)
			took = true
			if log := c.cfg.logger; log != nil {
				log.LogAttrs(c.life, slog.LevelInfo, "tokencache: token invalidated", slog.String("scope", e.label))
			}
		}
		e.mu.Unlock()
	}
	return took
}

// Close stops the cache's background work: it cancels in-flight credential
// calls, stops refresh timers and waits for every goroutine the cache started.
// Later calls to GetToken return [ErrClosed]. Close is idempotent and always
// returns nil.
func (c *Cache) Close() error {
	c.lifeMu.Lock()
	already := c.closed.Swap(true)
	c.lifeMu.Unlock()
	if already {
		c.wg.Wait()
		return nil
	}
	c.cancel()
	c.mu.Lock()
	m := *c.entries.Load()
	c.mu.Unlock()
	for _, e := range m {
		e.mu.Lock()
		if e.timer != nil {
			e.timer.Stop()
		}
		e.mu.Unlock()
	}
	c.wg.Wait()
	c.tel.close() // OpenTelemetry
	return nil
}

func joinErr(a, b error) error {
	if b == nil {
		return a
	}
	return fmt.Errorf("%w\n%w", a, b)
}
