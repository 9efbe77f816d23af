// Package jwks is the JSON Web Key Set cache that authmw uses to verify token
// signatures.
//
// A [KeySet] implements go-oidc's [oidc.KeySet] interface (the "KeySet seam")
// and closes the gaps of go-oidc's RemoteKeySet:
//
//   - keys are fetched in the background: [New] never blocks on, and never
//     fails because of, the network; until the first successful load every
//     verification fails with [ErrNotReady] (fail closed), while a background
//     loop retries with jittered exponential backoff;
//   - the set is refreshed periodically (default every 12 h plus up to 1/20
//     jitter, like Microsoft.IdentityModel's ConfigurationManager);
//   - a token with an unknown "kid" triggers at most one refetch per
//     [Options.UnknownKIDInterval] (default 30 s); concurrent misses share one
//     in-flight fetch; a storm of forged kids is therefore never a storm of
//     fetches;
//   - a failed fetch (network error, non-200, non-JSON, zero usable keys)
//     keeps the last good keys, and [KeySet.Err] tells whether the failure
//     is [ErrTransient] or [ErrPermanent];
//   - keys are parsed one by one, so one bad key never discards the others;
//   - every fetch follows internal/netrule: https (plain http only to
//     loopback) on every hop, redirects same-origin at most, bodies bounded;
//   - each key has a [KeyID]: its kid and a digest of its material, so a
//     result cached for a token can be tied to the exact key that verified
//     it ([KeySet.Publishes]); a key replaced under the same kid is a removal.
//
// Keys are selected only by the protected header "kid" against keys from the
// configured JWKS URL. The "jku", "x5u", "x5c" and embedded "jwk" headers are
// ignored: they are never fetched nor used. A published key whose "use" is
// not "sig", or whose "key_ops" does not include "verify", is skipped.
//
// Tokens without a "kid" (never sent by Entra ID, but allowed by RFC 7515 for
// generic issuers) are tried against every published key whose type and
// declared "alg"/"use" fit the token's algorithm, like go-oidc does, unless
// [Options.RequireKID] is set. They never trigger a refetch: such issuers'
// rotated keys are picked up by the periodic refresh.
//
// Verification is lock-free: the current keys live in an immutable map behind
// an atomic pointer, and no lock is ever held across network I/O.
package jwks

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/f2fauth/f2fauth/internal/netrule"
	"github.com/f2fauth/f2fauth/internal/retry"
)

// Sentinel errors. Errors returned by a [KeySet] wrap one of these with %w, so
// callers branch with [errors.Is].
var (
	// ErrNotReady means the key set has not been loaded successfully yet
	// (the JWKS endpoint was unreachable since start). Callers should answer
	// 503 with Retry-After; nothing is ever accepted in this state.
	ErrNotReady = errors.New("jwks: signing keys not loaded yet")
	// ErrUnknownKey means no published key matches the token's "kid" (after
	// an allowed refetch, or without one when the refetch interval has not
	// elapsed yet).
	ErrUnknownKey = errors.New("jwks: signing key not found")
	// ErrInvalidSignature means a published key was selected but the
	// signature does not verify with it (or the key's type or declared
	// algorithm does not fit the token's algorithm).
	ErrInvalidSignature = errors.New("jwks: invalid signature")
	// ErrUnsupportedAlg means the token's "alg" header is not one of
	// [Options.Algorithms].
	ErrUnsupportedAlg = errors.New("jwks: signing algorithm not allowed")
	// ErrMalformed means the token is not a well-formed compact JWS with
	// exactly one signature.
	ErrMalformed = errors.New("jwks: malformed token")
	// ErrClosed is returned by [KeySet.WaitReady] after [KeySet.Close].
	ErrClosed = errors.New("jwks: key set closed")
	// ErrTransient marks a fetch failure that may pass by itself (no
	// connection, timeout, HTTP 408, 429 or 5xx). Fetches are retried.
	ErrTransient = errors.New("temporary failure")
	// ErrPermanent marks a fetch failure that lasts until the issuer or the
	// configuration changes (another HTTP 4xx, a refused redirect or URL, a
	// body too large or not a usable document, an issuer mismatch). Fetches
	// are still retried, at the longest backoff.
	ErrPermanent = errors.New("permanent failure")
)

// Defaults applied by [New] to zero-valued [Options] fields.
const (
	// DefaultUnknownKIDInterval is the default [Options.UnknownKIDInterval].
	DefaultUnknownKIDInterval = 30 * time.Second
	// DefaultRefreshInterval is the default [Options.RefreshInterval].
	DefaultRefreshInterval = 12 * time.Hour
	// DefaultRetryMin is the default [Options.RetryMin].
	DefaultRetryMin = time.Second
	// DefaultRetryMax is the default [Options.RetryMax].
	DefaultRetryMax = time.Minute
	// DefaultHTTPTimeout is the timeout of the default [Options.Client].
	DefaultHTTPTimeout = 10 * time.Second
	// MaxResponseBytes bounds the size of a JWKS response; a larger response
	// is a failed fetch.
	MaxResponseBytes = 1 << 20
	// MaxKeys bounds the usable keys taken from one key set, in document
	// order (the rest are skipped and logged). A token without kid, or naming
	// a kid published many times, costs one signature check per fitting key:
	// this bounds that cost (1 MiB holds about 2,500 RSA or 7,000 EC keys).
	// Issuers publish a handful of keys.
	MaxKeys = 100
	// MinRSABits is the smallest RSA modulus accepted in a JWKS; smaller RSA
	// keys are skipped.
	MinRSABits = 2048
)

// Options configure a [KeySet]. Zero values mean the documented default.
type Options struct {
	// URL is the JWKS URL (required): https, or plain http to loopback.
	URL string
	// Client performs the JWKS requests. It is used through
	// [netrule.Guard]: its redirect policy is replaced, every hop must pass
	// [netrule.CheckURL], and a zero Timeout becomes 10 s.
	// Default: [netrule.NewClient] with a 10 s timeout.
	Client *http.Client
	// Algorithms lists the accepted JWS algorithms (go-jose names: RS256,
	// RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA).
	// Default: ["RS256"]. "none" and HMAC (HS*) are refused by [New].
	Algorithms []string
	// UnknownKIDInterval is the minimum time between two refetches caused by
	// tokens with an unknown kid. It is also how long an unknown kid is
	// answered from memory (negative cache). Default: 30s.
	UnknownKIDInterval time.Duration
	// RefreshInterval is the period of the background refresh; each wait
	// adds a random jitter of up to RefreshInterval/20. Default: 12h.
	RefreshInterval time.Duration
	// RetryMin and RetryMax bound the jittered exponential backoff of the
	// background retries while the first load fails or a refresh fails.
	// Defaults: 1s and 1min.
	RetryMin, RetryMax time.Duration
	// Now is the clock used for the unknown-kid interval. Default: time.Now.
	Now func() time.Time
	// Logger receives fetch failures, skipped keys and key additions and
	// removals (by kid only). Default: no logging.
	Logger *slog.Logger
	// RequireKID rejects tokens without a "kid" header ([ErrUnknownKey])
	// instead of trying every published key that fits their algorithm.
	// Entra ID always sends kid; set it for Entra issuers so a kid-less
	// forgery costs one lookup, not one signature check per published key.
	// Default: false (kid-less tokens are tried against the fitting keys).
	RequireKID bool
	// OnFetch, if set, is called after every JWKS fetch with its start time and
	// error (nil on success), for metrics and traces. It must be fast.
	OnFetch func(start time.Time, err error)
}

// algInfo describes what key an accepted algorithm needs.
type algInfo struct {
	kind  keyKind
	curve elliptic.Curve // for EC algorithms
}

type keyKind uint8

const (
	kindRSA keyKind = iota + 1
	kindEC
	kindEd25519
)

// knownAlgs are the asymmetric JWS algorithms a KeySet can verify.
var knownAlgs = map[string]algInfo{
	string(jose.RS256): {kind: kindRSA},
	string(jose.RS384): {kind: kindRSA},
	string(jose.RS512): {kind: kindRSA},
	string(jose.PS256): {kind: kindRSA},
	string(jose.PS384): {kind: kindRSA},
	string(jose.PS512): {kind: kindRSA},
	string(jose.ES256): {kind: kindEC, curve: elliptic.P256()},
	string(jose.ES384): {kind: kindEC, curve: elliptic.P384()},
	string(jose.ES512): {kind: kindEC, curve: elliptic.P521()},
	string(jose.EdDSA): {kind: kindEd25519},
}

// allowedAlg is one entry of the small allow list scanned by Verify.
type allowedAlg struct {
	name string
	info algInfo
}

// KeyID identifies one published key: its kid, and a SHA-256 over its RFC
// 7638 thumbprint and declared alg. Keys with the same kid but other
// material have different KeyIDs. The zero KeyID is never published.
type KeyID struct {
	KID    string
	digest [sha256.Size]byte
}

// key is one usable published key. Immutable after load.
type key struct {
	id   KeyID
	kind keyKind
	pub  any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	alg  string // the JWK's "alg" member; "" when absent (Entra)
	// curve is the EC curve, nil for other kinds.
	curve elliptic.Curve
}

// fits reports whether k may verify a token signed with alg.
func (k *key) fits(alg string, info algInfo) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	if k.kind != info.kind {
		return false
	}
	return info.kind != kindEC || k.curve == info.curve
}

// keyMap is an immutable snapshot of the published keys.
type keyMap struct {
	byKID map[string][]*key
	all   []*key
}

// inflight is one JWKS fetch that several goroutines may wait for.
type inflight struct {
	done chan struct{}
	err  error // valid after done is closed
}

// KeySet is a cached, self-refreshing JWKS. It is safe for concurrent use.
// Create it with [New] and release it with [KeySet.Close].
type KeySet struct {
	url          string
	client       *http.Client
	algs         []allowedAlg
	unknownEvery time.Duration
	refreshEvery time.Duration
	retryMin     time.Duration
	retryMax     time.Duration
	now          func() time.Time
	log          *slog.Logger
	requireKID   bool
	onFetch      func(time.Time, error)

	keys     atomic.Pointer[keyMap]
	fetches  atomic.Int64
	loadedAt atomic.Int64 // UnixNano of the last successful load; 0 before
	// failingSince is the UnixNano of the first of the current run of failed
	// fetches of the background loop; 0 when the last one succeeded.
	failingSince atomic.Int64
	ready        chan struct{} // closed on the first successful load

	ctx    context.Context // background lifecycle, cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex // guards the fields below; never held across I/O
	cur         *inflight  // the fetch in flight, if any
	lastUnknown time.Time  // start of the last unknown-kid refetch
	lastErr     error      // of the last fetch; nil after a success
	closed      bool
	closeOnce   sync.Once
}

var _ oidc.KeySet = (*KeySet)(nil)

// New validates opts, fills in defaults and starts loading the keys in the
// background. It never blocks on the network and never fails because the JWKS
// endpoint is unreachable; use [KeySet.WaitReady] to wait for the first load.
// All configuration problems are reported together, each naming the field.
//
// Background work runs on a context derived from ctx's values only
// (context.WithoutCancel): cancelling ctx does not stop it, [KeySet.Close]
// does.
func New(ctx context.Context, opts Options) (*KeySet, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("jwks: Options.%s: %s", field, fmt.Sprintf(format, args...)))
	}

	if opts.URL == "" {
		bad("URL", "required: set it to the issuer's jwks_uri")
	} else if err := netrule.CheckRawURL(opts.URL); err != nil {
		bad("URL", "%v", err)
	}

	algNames := opts.Algorithms
	if len(algNames) == 0 {
		algNames = []string{string(jose.RS256)}
	}
	k := &KeySet{
		url:          opts.URL,
		unknownEvery: opts.UnknownKIDInterval,
		refreshEvery: opts.RefreshInterval,
		retryMin:     opts.RetryMin,
		retryMax:     opts.RetryMax,
		now:          opts.Now,
		log:          cmp.Or(opts.Logger, slog.New(slog.DiscardHandler)),
		requireKID:   opts.RequireKID,
		onFetch:      opts.OnFetch,
		ready:        make(chan struct{}),
	}
	for _, name := range algNames {
		info, ok := knownAlgs[name]
		switch {
		case ok:
		case name == "none" || name == "" || len(name) > 1 && (name[:2] == "HS" || name[:2] == "hs"):
			bad("Algorithms", "%q is not allowed: only asymmetric signature algorithms (RS256, PS256, ES256, …) are accepted", name)
			continue
		default:
			bad("Algorithms", "%q is not a supported signature algorithm (use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA)", name)
			continue
		}
		if slices.ContainsFunc(k.algs, func(a allowedAlg) bool { return a.name == name }) {
			continue
		}
		k.algs = append(k.algs, allowedAlg{name: name, info: info})
	}

	durations := []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{
		{"UnknownKIDInterval", &k.unknownEvery, DefaultUnknownKIDInterval},
		{"RefreshInterval", &k.refreshEvery, DefaultRefreshInterval},
		{"RetryMin", &k.retryMin, DefaultRetryMin},
		{"RetryMax", &k.retryMax, DefaultRetryMax},
	}
	for _, d := range durations {
		switch {
		case *d.v < 0:
			bad(d.field, "must not be negative (got %s)", *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if k.retryMin > 0 && k.retryMax > 0 && k.retryMin > k.retryMax {
		bad("RetryMax", "must not be smaller than RetryMin (%s > %s)", k.retryMin, k.retryMax)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	k.client = netrule.Guard(opts.Client, DefaultHTTPTimeout)
	if k.now == nil {
		k.now = time.Now
	}
	if ctx == nil {
		ctx = context.Background()
	}
	k.ctx, k.cancel = context.WithCancel(context.WithoutCancel(ctx))

	k.wg.Add(1)
	go k.run()
	return k, nil
}

// Ready reports whether the keys have been loaded successfully at least once.
func (k *KeySet) Ready() bool { return k.keys.Load() != nil }

// WaitReady blocks until the keys have been loaded once (nil), ctx is done
// (an error wrapping [ErrNotReady] and ctx's error) or the key set is closed
// before any load ([ErrClosed]).
func (k *KeySet) WaitReady(ctx context.Context) error {
	select {
	case <-k.ready:
		return nil
	default:
	}
	select {
	case <-k.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotReady, ctx.Err())
	case <-k.ctx.Done():
		return ErrClosed
	}
}

// Publishes reports whether the key id is still published with the same
// material (and declared alg). It is the check behind a cached verification:
// a key removed, or replaced under the same kid, is no longer published.
func (k *KeySet) Publishes(id KeyID) bool {
	if m := k.keys.Load(); m != nil {
		for _, key := range m.byKID[id.KID] {
			if key.id == id {
				return true
			}
		}
	}
	return false
}

// Err returns the error of the last fetch, nil if it succeeded (or none
// ended yet). It wraps [ErrTransient] or [ErrPermanent].
func (k *KeySet) Err() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastErr
}

// Close stops the background refresh, cancels a fetch in flight and waits
// for the background goroutines to exit. It is idempotent. Keys already
// loaded stay usable, but are no longer refreshed.
func (k *KeySet) Close() {
	k.closeOnce.Do(func() {
		k.mu.Lock()
		k.closed = true
		k.mu.Unlock()
		k.cancel()
		k.wg.Wait()
	})
}

// run is the background loop: load, then refresh periodically; on failure
// retry with the shared backoff.
func (k *KeySet) run() {
	defer k.wg.Done()
	backoff := retry.Backoff{Initial: k.retryMin, Max: k.retryMax}
	failures := 0
	for {
		err := k.fetchShared(false)
		if k.ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err != nil {
			failures++
			if failures == 1 {
				k.failingSince.Store(time.Now().UnixNano())
			}
			wait = RetryDelay(backoff, failures, err)
			level := slog.LevelWarn
			if time.Since(time.Unix(0, k.failingSince.Load())) >= ErrorLogAfter {
				level = slog.LevelError
			}
			k.log.LogAttrs(k.ctx, level, "jwks: fetch failed; will retry",
				slog.String("url", k.url), slog.String("error", err.Error()), slog.Int("attempt", failures),
				slog.Int64("retry_in_ms", wait.Milliseconds()))
		} else {
			failures = 0
			k.failingSince.Store(0)
			wait = k.refreshEvery + time.Duration(rand.Float64()*float64(k.refreshEvery/20))
		}
		if !retry.Sleep(k.ctx, wait) {
			return
		}
	}
}

// fetchShared performs one fetch, or joins the one in flight, and waits for
// it. It is used by the background loop, whose context is k.ctx.
func (k *KeySet) fetchShared(noCache bool) error {
	k.mu.Lock()
	f := k.cur
	if f == nil {
		f = &inflight{done: make(chan struct{})}
		k.cur = f
		k.mu.Unlock()
		k.doFetch(f, noCache)
	} else {
		k.mu.Unlock()
	}
	select {
	case <-f.done:
		return f.err
	case <-k.ctx.Done():
		return k.ctx.Err()
	}
}

// refreshUnknown is called when a token's kid is not published. It starts a
// refetch if none is in flight and the unknown-kid interval has elapsed,
// joins the fetch in flight if there is one, and otherwise returns
// errRateLimited at once. It waits honouring ctx.
func (k *KeySet) refreshUnknown(ctx context.Context) error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return ErrClosed
	}
	f := k.cur
	if f == nil {
		now := k.now()
		if !k.lastUnknown.IsZero() && now.Sub(k.lastUnknown) < k.unknownEvery {
			k.mu.Unlock()
			return errRateLimited
		}
		k.lastUnknown = now
		f = &inflight{done: make(chan struct{})}
		k.cur = f
		// The fetch runs on the key set's own context so that a caller
		// giving up does not cancel it for the others.
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			k.doFetch(f, true)
		}()
	}
	k.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errRateLimited = errors.New("refetch skipped: unknown-kid interval not elapsed")

// doFetch runs the fetch f (owned by the caller), installs the result and
// signals the waiters. The fetch is marked over before anyone is told (f.done,
// ready): a miss from then on starts a fetch of its own instead of joining
// this finished one, whose keys may predate the kid.
func (k *KeySet) doFetch(f *inflight, noCache bool) {
	start := time.Now()
	m, err := k.fetch(k.ctx, noCache)
	if k.onFetch != nil {
		k.onFetch(start, err)
	}
	first := false
	if err == nil {
		first = k.install(m)
	}
	k.mu.Lock()
	k.cur, k.lastErr = nil, err
	k.mu.Unlock()
	f.err = err
	close(f.done) // waiters proceed with the new keys
	if first {
		close(k.ready)
	}
}

// install publishes m and logs the keys added, and removed or replaced
// (other material under the same kid). Cached verifications need no
// notice: they check [KeySet.Publishes]. Only one fetch runs at a time, so
// installs never race. It reports whether this was the first load.
func (k *KeySet) install(m *keyMap) (first bool) {
	old := k.keys.Swap(m)
	k.loadedAt.Store(time.Now().UnixNano())
	if old == nil {
		k.log.LogAttrs(k.ctx, slog.LevelInfo, "jwks: keys loaded", slog.String("url", k.url), slog.Any("kids", kidsNotIn(m, nil)))
		return true
	}
	if added := kidsNotIn(m, old); len(added) > 0 {
		k.log.LogAttrs(k.ctx, slog.LevelInfo, "jwks: keys added", slog.String("url", k.url), slog.Any("kids", added))
	}
	if removed := kidsNotIn(old, m); len(removed) > 0 {
		k.log.LogAttrs(k.ctx, slog.LevelWarn, "jwks: keys removed or replaced", slog.String("url", k.url), slog.Any("kids", removed))
	}
	return false
}

// kidsNotIn returns, sorted, the kids of a's keys that b does not publish
// with the same material (all of a's kids when b is nil).
func kidsNotIn(a, b *keyMap) []string {
	var kids []string
	for _, k := range a.all {
		if (b == nil || !slices.ContainsFunc(b.byKID[k.id.KID], func(o *key) bool { return o.id == k.id })) && !slices.Contains(kids, k.id.KID) {
			kids = append(kids, k.id.KID)
		}
	}
	slices.Sort(kids)
	return kids
}

// keyFromJWK turns a parsed JWK (raw: its JSON) into a usable key, or
// explains why it is skipped.
func keyFromJWK(jwk *jose.JSONWebKey, raw []byte, allowed []allowedAlg) (*key, error) {
	if jwk.Use != "" && jwk.Use != "sig" {
		return nil, fmt.Errorf("use %q is not \"sig\"", jwk.Use)
	}
	// "key_ops" is the other way a JWK restricts its use (RFC 7517 §4.3), and
	// go-jose does not read it: a key published for encryption or key wrapping
	// only never verifies a token.
	var ops struct {
		KeyOps json.RawMessage `json:"key_ops"`
	}
	if err := json.Unmarshal(raw, &ops); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if ops.KeyOps != nil {
		var list []string
		if err := json.Unmarshal(ops.KeyOps, &list); err != nil || list != nil && !slices.Contains(list, "verify") {
			return nil, fmt.Errorf("key_ops %s does not include \"verify\"", truncate(string(ops.KeyOps)))
		}
	}
	if jwk.Algorithm != "" && !slices.ContainsFunc(allowed, func(a allowedAlg) bool { return a.name == jwk.Algorithm }) {
		return nil, fmt.Errorf("alg %q is not an accepted algorithm", jwk.Algorithm)
	}
	k := &key{alg: jwk.Algorithm}
	switch pub := jwk.Key.(type) {
	case *rsa.PublicKey:
		if pub.N == nil || pub.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("RSA key smaller than %d bits", MinRSABits)
		}
		k.kind, k.pub = kindRSA, pub
	case *ecdsa.PublicKey:
		if pub.Curve == nil || pub.X == nil || pub.Y == nil {
			return nil, errors.New("incomplete EC key")
		}
		k.kind, k.pub, k.curve = kindEC, pub, pub.Curve
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key size")
		}
		k.kind, k.pub = kindEd25519, pub
	case nil:
		return nil, errors.New("unsupported key type")
	default:
		if !jwk.IsPublic() {
			return nil, errors.New("not a public key (symmetric or private key material published)")
		}
		return nil, fmt.Errorf("unsupported key type %T", jwk.Key)
	}
	// A key whose alg is absent must fit at least one accepted algorithm to
	// be usable at all.
	if !slices.ContainsFunc(allowed, func(a allowedAlg) bool { return k.fits(a.name, a.info) }) {
		return nil, errors.New("key type fits none of the accepted algorithms")
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("no thumbprint: %w", err)
	}
	k.id = KeyID{KID: jwk.KeyID, digest: sha256.Sum256(append(append(tp, 0), k.alg...))}
	return k, nil
}
