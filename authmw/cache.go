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

// tokenCache maps a raw token to its verification result. It is bounded: when
// full, expired entries and then arbitrary ones are evicted. The key is the token
// itself, so a hit can never be another token's result.
type tokenCache struct {
	max int // <= 0: disabled
	mu  sync.RWMutex
	m   map[string]*cacheEntry
}

func newTokenCache(max int) *tokenCache {
	c := &tokenCache{max: max}
	if max > 0 {
		c.m = make(map[string]*cacheEntry, min(max, 1024))
	}
	return c
}

func (c *tokenCache) get(raw string) *cacheEntry {
	if c.max <= 0 {
		return nil
	}
	c.mu.RLock()
	e := c.m[raw]
	c.mu.RUnlock()
	return e
}

func (c *tokenCache) put(raw string, e *cacheEntry, now time.Time) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Evict expired entries, then as many arbitrary ones as needed (map
		// iteration order is randomised) plus a little headroom.
		for k, v := range c.m {
			if !now.Before(v.deadline) {
				delete(c.m, k)
			}
		}
		excess := len(c.m) - c.max + 1 + c.max/16
		for k := range c.m {
			if excess <= 0 {
				break
			}
			delete(c.m, k)
			excess--
		}
	}
	c.m[raw] = e
}

func (c *tokenCache) remove(raw string) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	delete(c.m, raw)
	c.mu.Unlock()
}

// purgeAll empties the cache (policy change).
func (c *tokenCache) purgeAll() {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	clear(c.m)
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
	for k, v := range c.m {
		if _, ok := set[v.kid]; ok {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
