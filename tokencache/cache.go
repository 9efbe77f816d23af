package tokencache

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/f2fauth/f2fauth/internal/redact"
	"github.com/f2fauth/f2fauth/internal/retry"
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

	// entries maps entry key to *entry; reads take no lock and an insert
	// does not copy the map.
	entries sync.Map
	mu      sync.Mutex // serialises inserts and eviction sweeps
	count   int        // entries in the map, under mu
	swept   time.Time  // last eviction sweep (cache clock), under mu

	closed atomic.Bool
	lifeMu sync.RWMutex // guards closing against wg.Add
	wg     sync.WaitGroup

	refreshes atomic.Uint64
	failures  atomic.Uint64

	claimsAt map[string]time.Time // under mu: scopes key -> last new claims entry (cache clock)

	tel *telemetry // OpenTelemetry instruments (telemetry.go)
}

// tokenState is an immutable snapshot of an entry's token, swapped atomically.
// Times are Unix nanoseconds on the cache's clock.
type tokenState struct {
	tok         azcore.AccessToken
	usableUntil int64 // validUntil, or math.MinInt64 while invalidated
	validUntil  int64 // ExpiresOn (clamped) - SafetyMargin
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
	label string // human-readable scopes (+ tenant) for logs and errors
	opts  policy.TokenRequestOptions

	state   atomic.Pointer[tokenState]
	busy    atomic.Bool // a credential call is in flight
	evicted atomic.Bool // removed from the map; callers make a new entry

	mu         sync.Mutex
	inflight   *call
	failures   int   // consecutive failed credential calls
	lastErr    error // the last failure, answered until retryAt
	retryAt    int64 // no credential call before this (Unix ns, cache clock)
	forced     bool
	lastForced time.Time
	timer      *time.Timer
	usesSeen   uint64 // hits+misses at the last eviction sweep

	hits, misses, refreshes, failed atomic.Uint64
}

// New returns a Cache over cred. A nil opts means defaults. It reports every
// invalid setting at once, each naming its Options field.
func New(cred azcore.TokenCredential, opts *Options) (*Cache, error) {
	cfg, err := opts.resolve()
	if cred == nil {
		err = joinErr(errNilCredential, err)
	}
	if err != nil {
		return nil, err
	}
	c := &Cache{cred: cred, cfg: cfg}
	c.life, c.cancel = context.WithCancel(context.Background())
	c.swept = cfg.now()
	c.tel = newTelemetry(c, opts) // OpenTelemetry (telemetry.go)
	return c, nil
}

// GetToken returns a cached token for opts, fetching one (single-flighted) when
// none is usable. A token is usable while it expires later than the safety
// margin from now. Past the token's refresh point, a background refresh starts
// and the caller still gets the cached token at once. When no usable token is
// cached, the caller waits for the credential, bounded by ctx and
// Options.Timeout; on failure the error wraps [ErrNoToken] (and the
// credential's error, when the credential failed) and names the scope (never the token, nor any other
// secret: the message is redacted). A failure is remembered for the scope
// until its backoff (or the server's Retry-After) has passed: meanwhile every
// caller gets the same error without a new credential call.
func (c *Cache) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if c.closed.Load() {
		return azcore.AccessToken{}, errClosed
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
	var v any
	if plainKey(o) {
		v, _ = c.entries.Load(o.Scopes[0])
	} else {
		var buf [256]byte
		k := appendKey(buf[:0], o)
		if len(k) == 0 {
			return nil
		}
		// The map does not keep the key of a lookup: no copy needed.
		v, _ = c.entries.Load(unsafe.String(&k[0], len(k)))
	}
	e, _ := v.(*entry)
	return e
}

// plainKey reports whether o's entry key is its one scope itself: no tenant,
// claims or CAE, and a scope that does not start with the NUL byte that marks
// every other key.
func plainKey(o *policy.TokenRequestOptions) bool {
	return len(o.Scopes) == 1 && o.TenantID == "" && o.Claims == "" && !o.EnableCAE &&
		(o.Scopes[0] == "" || o.Scopes[0][0] != 0)
}

// appendKey appends the entry key of o to b. The common case (see plainKey)
// uses the scope itself; every other key starts with a NUL byte, then the CAE
// flag, then the tenant, the claims and each scope, each prefixed with its
// length, so distinct options never share a key whatever bytes their
// strings hold (claims come from a resource's challenge).
func appendKey(b []byte, o *policy.TokenRequestOptions) []byte {
	if plainKey(o) {
		return append(b, o.Scopes[0]...)
	}
	b = append(b, 0)
	if o.EnableCAE {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	field := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	field(o.TenantID)
	field(o.Claims)
	b = binary.AppendUvarint(b, uint64(len(o.Scopes)))
	for _, s := range o.Scopes {
		field(s)
	}
	return b
}

// getOrCreate returns the entry for o, creating it if needed. Creating one
// also runs the eviction sweep when it is due.
func (c *Cache) getOrCreate(o *policy.TokenRequestOptions) (*entry, error) {
	key := string(appendKey(nil, o))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, errClosed
	}
	if v, ok := c.entries.Load(key); ok {
		return v.(*entry), nil
	}
	c.sweepLocked(c.cfg.now())
	if c.count >= MaxEntries {
		return nil, fmt.Errorf("%w (%d); scopes %q not cached", errTooManyEntries, MaxEntries, strings.Join(o.Scopes, " "))
	}
	if o.Claims != "" {
		if err := c.admitClaimsLocked(o); err != nil {
			return nil, err
		}
	}
	scopes := slices.Clone(o.Scopes)
	label := strings.Join(scopes, " ")
	if o.TenantID != "" {
		label += " (tenant " + o.TenantID + ")"
	}
	e := &entry{
		label: label,
		opts:  policy.TokenRequestOptions{Scopes: scopes, TenantID: o.TenantID, Claims: o.Claims, EnableCAE: o.EnableCAE},
	}
	c.entries.Store(key, e)
	c.count++
	return e, nil
}

// sweepLocked evicts the entries nobody asked for since the previous sweep,
// at most once per evictionInterval: an unused scope is forgotten (its timer
// stopped, no more background refreshes) between one and two intervals after
// its last use. c.mu must be held.
func (c *Cache) sweepLocked(now time.Time) {
	if now.Sub(c.swept) < evictionInterval {
		return
	}
	c.swept = now
	c.entries.Range(func(k, v any) bool {
		e := v.(*entry)
		uses := e.hits.Load() + e.misses.Load()
		e.mu.Lock()
		if uses == e.usesSeen && e.inflight == nil {
			e.evicted.Store(true)
			if e.timer != nil {
				e.timer.Stop()
			}
			c.entries.Delete(k)
			c.count--
		}
		e.usesSeen = uses
		e.mu.Unlock()
		return true
	})
}

// sweep runs the eviction sweep when due (from background work).
func (c *Cache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed.Load() {
		c.sweepLocked(c.cfg.now())
	}
}

// getSlow waits for a usable token: it joins the in-flight credential call,
// answers a remembered failure, or starts a call.
func (c *Cache) getSlow(ctx context.Context, o *policy.TokenRequestOptions, e *entry) (azcore.AccessToken, error) {
	if len(o.Scopes) == 0 {
		return azcore.AccessToken{}, errNoScopes
	}
	if e == nil || e.evicted.Load() {
		var err error
		if e, err = c.getOrCreate(o); err != nil {
			return azcore.AccessToken{}, err
		}
	}
	e.misses.Add(1)

	e.mu.Lock()
	now := c.cfg.now().UnixNano()
	st := e.state.Load()
	if st != nil && now < st.usableUntil {
		// A call finished between the fast path and here.
		e.mu.Unlock()
		return st.tok, nil
	}
	cl := e.inflight
	if cl == nil {
		if e.lastErr != nil && now < e.retryAt {
			// Backing off: the previous failure is the answer, unless a token
			// that is merely invalidated is still valid.
			err := e.lastErr
			e.mu.Unlock()
			if st != nil && now < st.validUntil {
				return st.tok, nil
			}
			return azcore.AccessToken{}, err
		}
		var err error
		if cl, err = c.start(e, false); err != nil {
			e.mu.Unlock()
			return azcore.AccessToken{}, err
		}
	}
	e.mu.Unlock()

	if err := ctx.Err(); err != nil {
		return azcore.AccessToken{}, fmt.Errorf("%w for scope %q: the caller stopped waiting: %w", ErrNoToken, e.label, err)
	}
	t := time.NewTimer(c.cfg.timeout)
	defer t.Stop()
	select {
	case <-cl.done:
	case <-ctx.Done():
		return azcore.AccessToken{}, fmt.Errorf("%w for scope %q: the caller stopped waiting: %w", ErrNoToken, e.label, ctx.Err())
	case <-t.C:
		return azcore.AccessToken{}, fmt.Errorf("%w for scope %q: %w (%v)", ErrNoToken, e.label, errTimeout, c.cfg.timeout)
	case <-c.life.Done():
		return azcore.AccessToken{}, errClosed
	}
	if cl.err != nil {
		// A failed forced refresh leaves the old token in service.
		if st := e.state.Load(); st != nil && c.cfg.now().UnixNano() < st.usableUntil {
			return st.tok, nil
		}
		return azcore.AccessToken{}, cl.err
	}
	return cl.tok, nil
}

// MaxEntries bounds the number of distinct token requests (scopes, tenant,
// claims, CAE) a Cache holds at once; a request that would add one more is
// refused with [errTooManyEntries] until unused entries are evicted.
const MaxEntries = 4096

// maxClaimsGates bounds the claims rate-limit table before stale rows are
// dropped.
const maxClaimsGates = 256

// admitClaimsLocked lets a new claims entry for o's scopes (tenant, CAE) be created
// at most once per Options.InvalidateInterval: each new claims value costs a
// credential call that skips every token cache, so a resource answering every
// request with a new claims challenge must not turn each request into an
// identity-endpoint call (nor grow the cache without bound). c.mu must be
// held (it serialises entry creation, so callers with the same new claims
// join one entry).
func (c *Cache) admitClaimsLocked(o *policy.TokenRequestOptions) error {
	base := string(appendKey(nil, &policy.TokenRequestOptions{Scopes: o.Scopes, TenantID: o.TenantID, EnableCAE: o.EnableCAE}))
	now := c.cfg.now()
	if last, ok := c.claimsAt[base]; ok && now.Sub(last) < c.cfg.invalidateInterval && !now.Before(last) {
		return fmt.Errorf("%w (scope %q, next in %v)", errClaimsRateLimited, strings.Join(o.Scopes, " "),
			c.cfg.invalidateInterval-now.Sub(last))
	}
	if c.claimsAt == nil {
		c.claimsAt = make(map[string]time.Time)
	}
	if len(c.claimsAt) >= maxClaimsGates {
		for k, t := range c.claimsAt {
			if now.Sub(t) >= c.cfg.invalidateInterval {
				delete(c.claimsAt, k)
			}
		}
	}
	c.claimsAt[base] = now
	return nil
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
	if now < st.refreshAt || now < st.retryAt || now < e.retryAt || now >= st.usableUntil {
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
		return nil, errClosed
	}
	cl := &call{done: make(chan struct{})}
	e.inflight = cl
	e.busy.Store(true)
	st := e.state.Load()
	forced := st != nil && st.usableUntil == math.MinInt64 // Invalidate took effect
	go c.fetch(e, cl, e.failures+1, background, forced)
	return cl, nil
}

// result is what a credential call returned.
type result struct {
	tok azcore.AccessToken
	err error
}

// fetch performs one credential call on the cache's lifecycle context, bounded
// by Options.Timeout, and publishes the result. A credential that ignores its
// context is abandoned when the timeout passes: its goroutine is left to
// finish on its own, its result discarded, and the scope is free for the next
// call.
//
// A forced fetch (after Invalidate) carries a context mark that the
// credentials built here read to skip MSAL's in-process token cache, which
// would otherwise hand back the token just rejected.
func (c *Cache) fetch(e *entry, cl *call, attempt int, background, forced bool) {
	defer c.wg.Done()
	log := c.cfg.logger
	if log != nil {
		log.LogAttrs(c.life, slog.LevelDebug, "tokencache: refresh started",
			slog.String("scope", e.label), slog.Int("attempt", attempt), slog.Bool("background", background))
	}
	started := time.Now() // OpenTelemetry: the credential call's start
	ctx, cancel := context.WithTimeout(c.life, c.cfg.timeout)
	if forced {
		ctx = withForcedRefresh(ctx)
	}
	opts := e.opts
	opts.Scopes = slices.Clone(e.opts.Scopes) // the credential may not keep or alter ours
	res := make(chan result, 1)
	go func() {
		tok, err := c.callCredential(ctx, opts)
		res <- result{tok, err}
	}()
	var tok azcore.AccessToken
	var err error
	select {
	case r := <-res:
		tok, err = r.tok, r.err
	case <-ctx.Done():
		// On Close, give a credential that honours its context a moment to
		// return; one that ignores it is abandoned, so Close stays bounded.
		if c.life.Err() != nil {
			t := time.NewTimer(closeGrace)
			select {
			case r := <-res:
				tok, err = r.tok, r.err
			case <-t.C:
				err = errAbandonedOnClose
			}
			t.Stop()
			break
		}
		select {
		case r := <-res:
			tok, err = r.tok, r.err
		default:
			err = fmt.Errorf("%w: the credential did not return within %v and was abandoned", errTimeout, c.cfg.timeout)
		}
	}
	cancel()

	now := c.cfg.now()
	var next *tokenState
	if err == nil {
		next, err = c.newState(tok, now)
	}
	// The error is read (message, Retry-After) before taking e.mu and
	// within a bound: an error whose methods block must not wedge the scope.
	var ce *credError
	var throttle http.Header
	if err != nil {
		ce, throttle = describeError(e.label, err)
	}
	c.fetched(e, background, attempt, started, err, ce) // OpenTelemetry (telemetry.go)

	e.mu.Lock()
	var delay time.Duration
	var msg string
	if err == nil {
		e.failures = 0
		e.lastErr = nil
		e.retryAt = 0
		e.state.Store(next)
		c.refreshes.Add(1)
		e.refreshes.Add(1)
		c.arm(e, time.Unix(0, next.refreshAt).Sub(now))
		cl.tok = next.tok
		tok = next.tok
	} else {
		e.failures++
		c.failures.Add(1)
		e.failed.Add(1)
		delay = c.backoff(e.failures, throttle, now)
		retryAt := unixNano(now.Add(delay))
		msg = ce.msg
		cl.err = ce
		e.lastErr = ce
		e.retryAt = retryAt
		if old := e.state.Load(); old != nil {
			ns := *old
			ns.retryAt = retryAt
			if now.UnixNano() < ns.validUntil {
				// Keep a valid token until a new one is in hand, even one
				// that was invalidated.
				ns.usableUntil = ns.validUntil
			}
			e.state.Store(&ns)
			if now.UnixNano() < ns.usableUntil {
				c.arm(e, delay)
			}
		}
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
				slog.Int64("retry_in_ms", delay.Milliseconds()), slog.String("error", msg)}
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
			tok, err = azcore.AccessToken{}, fmt.Errorf("%w: %v", errCredentialPanic, r)
		}
	}()
	return c.cred.GetToken(ctx, opts)
}

// closeGrace is how long Close waits for an in-flight credential call after
// cancelling its context before abandoning it.
const closeGrace = time.Second

// maxErrorBytes bounds the message of an error the cache returns.
const maxErrorBytes = 2048

// credError is a credential failure as the cache returns it: the message
// names the scope and carries the credential's error redacted (no known
// secret, no token-shaped string) on one bounded line; errors.Is and
// errors.As still reach [ErrNoToken] and the credential's error.
type credError struct {
	msg   string
	cause error
}

func newCredError(label string, err error) *credError {
	detail := redact.Line(errorText(err), maxErrorBytes, redact.EnvSecrets()...)
	return &credError{msg: fmt.Sprintf("%v for scope %q: %s", ErrNoToken, label, detail), cause: err}
}

// errorText returns err.Error(), or a placeholder when that panics (an
// azcore.ResponseError built without a request does).
func errorText(err error) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = fmt.Sprintf("%T (its message could not be formatted)", err)
		}
	}()
	return err.Error()
}

func (e *credError) Error() string   { return e.msg }
func (e *credError) Unwrap() []error { return []error{ErrNoToken, e.cause} }

// errUnusableToken is wrapped when the credential returns a token that cannot
// be sent: empty, or with characters outside RFC 6750's b64token.
var errUnusableToken = errors.New("the credential returned an unusable access token (empty or malformed); check the identity endpoint")

// checkToken reports whether s can be sent as a Bearer credential.
func checkToken(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty", errUnusableToken)
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '+' || ch == '/' || ch == '=':
		default:
			return errUnusableToken
		}
	}
	return nil
}

// Time bounds: Unix nanoseconds cover 1678–2262 only.
var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64-1)
)

// unixNano is t.UnixNano clamped to the representable range.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64 + 1
	case t.After(maxTime):
		return math.MaxInt64 - 1
	}
	return t.UnixNano()
}

// newState validates tok and computes its usable window and refresh point.
// The expiry is the earlier of the credential's ExpiresOn and the token's own
// exp claim when the token is a JWT (an identity endpoint reporting
// expires_on in milliseconds, or any later time than the token's, must not
// keep a dead token in service), and at most maxTokenLifetime away; the
// token handed out carries that expiry, so a cache above this one (azcore's
// bearer policy) does not keep it longer either. A token whose usable window
// (expiry minus SafetyMargin) is shorter than minRefreshInterval is refused,
// so it is never cached and cannot cause a refresh storm.
func (c *Cache) newState(tok azcore.AccessToken, now time.Time) (*tokenState, error) {
	if err := checkToken(tok.Token); err != nil {
		return nil, err
	}
	exp := tok.ExpiresOn
	if jexp, ok := jwtExpiry(tok.Token); ok && jexp.Before(exp) {
		exp = jexp
	}
	if limit := now.Add(maxTokenLifetime); exp.After(limit) {
		exp = limit
	}
	tok.ExpiresOn = exp
	usable := exp.Add(-c.cfg.safetyMargin)
	if usable.Sub(now) < minRefreshInterval {
		return nil, fmt.Errorf("%w (expires on %s, safety margin %v, minimum usable time %v)", errTokenTooShortLived,
			tok.ExpiresOn.UTC().Format(time.RFC3339), c.cfg.safetyMargin, minRefreshInterval)
	}
	refresh := c.refreshPoint(exp, tok.RefreshOn, now)
	if earliest := now.Add(minRefreshInterval); refresh.Before(earliest) {
		refresh = earliest
	}
	return &tokenState{
		tok:         tok,
		usableUntil: unixNano(usable),
		validUntil:  unixNano(usable),
		refreshAt:   unixNano(refresh),
		retryAt:     math.MinInt64,
	}, nil
}

// refreshPoint returns when a background refresh of a token expiring at exp
// should start: refreshOn when reported, else half its lifetime when it lives
// longer than 2h, else 5 minutes before expiry; a point outside (now,
// expiry-margin) is replaced by the middle of the remaining usable time. The
// result is moved earlier by a jitter of up to 5% of the interval (at most 5
// minutes).
func (c *Cache) refreshPoint(exp, refreshOn, now time.Time) time.Time {
	usable := exp.Add(-c.cfg.safetyMargin)
	lifetime := exp.Sub(now)
	var nominal time.Time
	switch {
	case !refreshOn.IsZero():
		nominal = refreshOn
	case lifetime > longLivedThreshold:
		nominal = now.Add(lifetime / 2)
	default:
		nominal = exp.Add(-shortLivedLead)
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

// backoff returns the delay before the next attempt after the given number of
// consecutive failures: the capped exponential backoff of internal/retry, or
// a longer Retry-After from a 429/503 response.
func (c *Cache) backoff(failures int, throttle http.Header, now time.Time) time.Duration {
	return retry.Backoff{Initial: c.cfg.initialBackoff, Max: c.cfg.maxBackoff}.After(failures, c.rand(), throttle, now)
}

// throttleHeader returns the headers of a 429/503 response carried by err
// (their Retry-After lengthens the backoff), else nil.
func throttleHeader(err error) http.Header {
	if resp := responseOf(err); resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		return resp.Header
	}
	return nil
}

// describeTimeout bounds how long a credential's error may take to describe
// itself.
const describeTimeout = time.Second

// describeError returns the cache's error for a credential failure and the
// throttling headers it carries, reading err (Error, Unwrap, As) in its own
// goroutine: an error whose methods block or panic yields a placeholder
// message instead of wedging the scope; the goroutine is abandoned.
func describeError(label string, err error) (*credError, http.Header) {
	type described struct {
		ce *credError
		h  http.Header
	}
	out := make(chan described, 1)
	go func() {
		defer func() {
			if recover() != nil {
				out <- described{ce: placeholderError(label, err)}
			}
		}()
		ce := newCredError(label, err)
		out <- described{ce, throttleHeader(err)}
	}()
	t := time.NewTimer(describeTimeout)
	defer t.Stop()
	select {
	case d := <-out:
		return d.ce, d.h
	case <-t.C:
		return placeholderError(label, err), nil
	}
}

// placeholderError is the cache's error for a credential error that could not
// be read.
func placeholderError(label string, err error) *credError {
	return &credError{msg: fmt.Sprintf("%v for scope %q: %T (its message could not be read)", ErrNoToken, label, err), cause: err}
}

// responseOf returns the HTTP response carried by err, if any.
func responseOf(err error) *http.Response {
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.RawResponse != nil {
		return re.RawResponse
	}
	var ae *azidentity.AuthenticationFailedError
	if errors.As(err, &ae) && ae.RawResponse != nil {
		return ae.RawResponse
	}
	return nil
}

// arm (re)schedules e's background timer to fire after d. e.mu must be held.
func (c *Cache) arm(e *entry, d time.Duration) {
	if c.closed.Load() || e.evicted.Load() {
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
// token is no longer usable: callers then drive fetches themselves. It runs
// the eviction sweep first, so an entry nobody uses is dropped instead of
// refreshed forever.
func (c *Cache) onTimer(e *entry) {
	if !c.enter() {
		return
	}
	defer c.wg.Done()
	c.sweep()
	if e.evicted.Load() {
		return
	}
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
	due := max(st.refreshAt, st.retryAt, e.retryAt)
	if now < due {
		c.arm(e, time.Duration(due-now))
		return
	}
	_, _ = c.start(e, true)
}

// Invalidate marks every cached entry whose scopes include scope for one forced
// refresh: the next GetToken waits for a fresh token (single-flighted) instead
// of returning the cached one; with the credentials built by this package the
// forced refresh skips MSAL's in-process cache too, so it reaches the identity
// endpoint. The old token is kept: when the refresh fails it stays in service
// for as long as it is valid. Forced refreshes are
// rate-limited per entry by Options.InvalidateInterval, and a scope that is
// backing off after a failure is not asked again before its backoff ends. It
// reports whether at least one entry was invalidated (false when nothing is
// cached for scope, every matching entry was invalidated too recently, or the
// cache is closed).
func (c *Cache) Invalidate(scope string) bool {
	if c.closed.Load() {
		return false
	}
	now := c.cfg.now()
	took := false
	c.entries.Range(func(_, v any) bool {
		e := v.(*entry)
		if !slices.Contains(e.opts.Scopes, scope) {
			return true
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
		return true
	})
	return took
}

// Close stops the cache's background work: it cancels in-flight credential
// calls, stops refresh timers and waits for every goroutine the cache started
// except a credential call that ignores its context, which is abandoned (so
// Close returns promptly). Later calls to GetToken return an error wrapping [ErrNoToken]. Close
// is idempotent and always returns nil.
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
	c.entries.Range(func(_, v any) bool {
		e := v.(*entry)
		e.mu.Lock()
		if e.timer != nil {
			e.timer.Stop()
		}
		e.mu.Unlock()
		return true
	})
	c.mu.Unlock()
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

// maxJWTPayload bounds the JWT payload jwtExpiry decodes.
const maxJWTPayload = 16 << 10

// jwtExpiry returns the exp claim of a JWT-shaped token (read, not verified:
// it is only used to shorten the token's life in the cache).
func jwtExpiry(tok string) (time.Time, bool) {
	_, rest, ok := strings.Cut(tok, ".")
	if !ok {
		return time.Time{}, false
	}
	payload, _, ok := strings.Cut(rest, ".")
	if !ok || len(payload) > maxJWTPayload {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(payload, "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp == nil || *claims.Exp <= 0 || *claims.Exp > float64(maxTime.Unix()) {
		return time.Time{}, false
	}
	return time.Unix(int64(*claims.Exp), 0), true
}
