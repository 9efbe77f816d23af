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
	kid      string
	keys     *jwks.KeySet
	gen      uint64 // policy generation it was verified under
}

// tokenCache maps a raw token to its verification result. It is bounded by two
// generations: entries go into cur; when cur holds half the bound it becomes old
// and the previous old is dropped whole. A lookup checks cur, then old. This keeps
// inserts O(1) with no sweeps or tombstones, and holds at most max entries. (A
// token dropped early is simply verified again.) The key is the token itself, so a
// hit can never be another token's result.
type tokenCache struct {
	max int // <= 0: disabled
	mu  sync.RWMutex
	cur map[string]*cacheEntry
	old map[string]*cacheEntry
}

func newTokenCache(max int) *tokenCache {
	c := &tokenCache{max: max}
	if max > 0 {
		c.cur = make(map[string]*cacheEntry, c.genSize())
	}
	return c
}

// genSize is the capacity of one generation.
func (c *tokenCache) genSize() int { return max(1, c.max/2) }

func (c *tokenCache) get(raw string) *cacheEntry {
	if c.max <= 0 {
		return nil
	}
	c.mu.RLock()
	e, ok := c.cur[raw]
	if !ok {
		e = c.old[raw]
	}
	c.mu.RUnlock()
	return e
}

func (c *tokenCache) put(raw string, e *cacheEntry) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.genSize() {
		c.old = c.cur
		c.cur = make(map[string]*cacheEntry, c.genSize())
	}
	c.cur[raw] = e
}

func (c *tokenCache) remove(raw string) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	delete(c.cur, raw)
	delete(c.old, raw)
	c.mu.Unlock()
}

// purgeAll empties the cache (policy change).
func (c *tokenCache) purgeAll() {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	clear(c.cur)
	c.old = nil
	c.mu.Unlock()
}

// purgeKIDs drops every entry signed by one of kids (the keys left the JWKS).
func (c *tokenCache) purgeKIDs(kids []string) {
	if c.max <= 0 || len(kids) == 0 {
		return
	}
	set := make(map[string]struct{}, len(kids))
	for _, k := range kids {
		set[k] = struct{}{}
	}
	c.mu.Lock()
	for _, m := range []map[string]*cacheEntry{c.cur, c.old} {
		for k, v := range m {
			if _, ok := set[v.kid]; ok {
				delete(m, k)
			}
		}
	}
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.old)
}
