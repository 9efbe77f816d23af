package tokencache

import (
	"math"
	"slices"
	"strings"
	"time"
)

// Stats is a point-in-time snapshot of a Cache's counters, for metrics
// exporters. Hits are GetToken calls served from the cache without waiting;
// Misses are calls that had to wait for the credential; Refreshes and Failures
// count successful and failed credential calls (foreground and background).
type Stats struct {
	// Hits counts GetToken calls answered from the cache at once.
	Hits uint64
	// Misses counts GetToken calls that waited for a credential call.
	Misses uint64
	// Refreshes counts successful credential calls.
	Refreshes uint64
	// Failures counts failed credential calls (including tokens rejected as
	// too short-lived).
	Failures uint64
	// Entries has one element per cached key, sorted by Scope then TenantID.
	Entries []EntryStats
}

// EntryStats describes one cache entry. It never contains the token.
type EntryStats struct {
	// Scope is the entry's scopes joined by a space.
	Scope string
	// TenantID is the tenant the token was requested for ("" = default).
	TenantID string
	// HasClaims reports that the entry was requested with claims.
	HasClaims bool
	// EnableCAE reports that the entry was requested with CAE enabled.
	EnableCAE bool

	// Hits, Misses, Refreshes and Failures are this entry's share of the
	// Stats counters of the same names.
	Hits, Misses, Refreshes, Failures uint64

	// HasToken reports whether a token is cached (valid or not).
	HasToken bool
	// ExpiresOn is the cached token's expiry (zero without a token).
	ExpiresOn time.Time
	// SecondsUntilExpiry is ExpiresOn minus now on the cache's clock; negative
	// once expired, 0 without a token.
	SecondsUntilExpiry float64
	// Usable reports whether the cached token would be handed out now (valid
	// beyond the safety margin and not invalidated).
	Usable bool
	// Refreshing reports a credential call in flight.
	Refreshing bool
	// ConsecutiveFailures counts credential failures since the last success.
	ConsecutiveFailures int
}

// Stats returns a snapshot of the cache's counters and entries.
func (c *Cache) Stats() Stats {
	now := c.cfg.now()
	s := Stats{Refreshes: c.refreshes.Load(), Failures: c.failures.Load()}
	c.entries.Range(func(_, v any) bool {
		e := v.(*entry)
		es := EntryStats{
			Scope:     strings.Join(e.opts.Scopes, " "),
			TenantID:  e.opts.TenantID,
			HasClaims: e.opts.Claims != "",
			EnableCAE: e.opts.EnableCAE,
			Hits:      e.hits.Load(),
			Misses:    e.misses.Load(),
			Refreshes: e.refreshes.Load(),
			Failures:  e.failed.Load(),
		}
		e.mu.Lock()
		es.Refreshing = e.inflight != nil
		es.ConsecutiveFailures = e.failures
		e.mu.Unlock()
		if st := e.state.Load(); st != nil {
			es.HasToken = true
			es.ExpiresOn = st.tok.ExpiresOn
			es.SecondsUntilExpiry = math.Round(st.tok.ExpiresOn.Sub(now).Seconds()*1000) / 1000
			es.Usable = now.UnixNano() < st.usableUntil
		}
		s.Hits += es.Hits
		s.Misses += es.Misses
		s.Entries = append(s.Entries, es)
		return true
	})
	slices.SortFunc(s.Entries, func(a, b EntryStats) int {
		if c := strings.Compare(a.Scope, b.Scope); c != 0 {
			return c
		}
		return strings.Compare(a.TenantID, b.TenantID)
	})
	return s
}
