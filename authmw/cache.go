package authmw

import (
	"sync"
	"time"

	"github.com/f2fauth/f2fauth/internal/jwks"
)

// cacheEntry is one verified, allowed token.
type cacheEntry struct {
	p        *Principal
	deadline time.Time // exp + skew, or iat + MaxTokenAge + skew if earlier
	key      jwks.KeyID
	keys     *jwks.KeySet
	gen      uint64 // policy generation it was verified under
}

// tokenCache maps a raw token to its verification result. It is bounded by two
// generations: entries go into cur; when cur holds half the bound (entries, or
// estimated bytes) it becomes old and the previous old is dropped whole. A lookup
// checks cur, then old. This keeps inserts O(1) with no sweeps or tombstones, and
// holds at most max entries and maxBytes estimated bytes. (A token dropped early is
// simply verified again.) The key is the token itself, so a hit can never be another
// token's result.
//
// Invalidation happens in one place, [tokenCache.lookup]: an entry counts only
// under the policy generation it was verified with ([Middleware.SetPolicy] bumps
// it) and while the exact key that verified it is published ([jwks.KeySet.Publishes]:
// a key removed, or replaced under the same kid, invalidates its tokens). Stale
// entries are never served and age out with their generation.
type tokenCache struct {
	max      int   // <= 0: disabled
	maxBytes int64 // bound on the estimated bytes of both generations
	mu       sync.RWMutex
	cur      map[string]*cacheEntry
	old      map[string]*cacheEntry
	curBytes int64 // estimated bytes of cur
}

// cacheMaxBytes bounds the memory of the verified-token cache: entries alone
// would not, as an entry grows with its token (a 16 KiB token with Easy Auth
// headers holds about 45 KiB), so 10,000 distinct large tokens of an allowed
// caller took some 450 MB. Typical Entra tokens (2-3 KiB) fill the entry bound
// first.
const cacheMaxBytes = 128 << 20

// entryCost estimates the heap an entry for raw holds: the token, its payload,
// the principal's decoded claims and Easy Auth header (measured: about 2.7 times
// the token), and map overhead.
func entryCost(raw string) int64 { return 3*int64(len(raw)) + 512 }

func newTokenCache(max int) *tokenCache {
	c := &tokenCache{max: max, maxBytes: cacheMaxBytes}
	if max > 0 {
		c.cur = make(map[string]*cacheEntry, c.genSize())
	}
	return c
}

// genSize is the capacity of one generation.
func (c *tokenCache) genSize() int { return max(1, c.max/2) }

// lookup returns the principal cached for raw when it was verified under policy
// generation gen, is before its deadline at now, and its key is still published
// with the same material; nil otherwise.
func (c *tokenCache) lookup(raw string, gen uint64, now time.Time) *Principal {
	if c.max <= 0 {
		return nil
	}
	c.mu.RLock()
	e, ok := c.cur[raw]
	if !ok {
		e = c.old[raw]
	}
	c.mu.RUnlock()
	if e == nil || e.gen != gen || !now.Before(e.deadline) || !e.keys.Publishes(e.key) {
		return nil
	}
	return e.p
}

func (c *tokenCache) put(raw string, e *cacheEntry) {
	if c.max <= 0 {
		return
	}
	cost := entryCost(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.genSize() || c.curBytes+cost > c.maxBytes/2 {
		c.old = c.cur
		c.cur = make(map[string]*cacheEntry, c.genSize())
		c.curBytes = 0
	}
	if _, ok := c.cur[raw]; !ok {
		c.curBytes += cost
	}
	c.cur[raw] = e
}
