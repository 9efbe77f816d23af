// Package retry is f2fauth's one backoff: a capped exponential delay with
// jitter, and the server's Retry-After (in the forms azcore honours) when it
// asks for longer.
package retry

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter bounds how long a server's Retry-After can postpone a retry.
const MaxRetryAfter = time.Hour

// Backoff is a capped exponential delay: Initial after the first failure,
// doubled per further failure, at most Max, scaled by a jitter factor in
// [0.75, 1.25) and capped at Max again.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// Delay returns the delay after failures consecutive failures (1 for the
// first). jitter is a number in [0, 1), e.g. from math/rand/v2's Float64;
// 0.5 gives the unjittered delay.
func (b Backoff) Delay(failures int, jitter float64) time.Duration {
	d := b.Initial
	if d <= 0 {
		d = time.Second
	}
	maxD := b.Max
	if maxD < d {
		maxD = d
	}
	for i := 1; i < failures && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	if jitter < 0 || jitter >= 1 {
		jitter = 0.5
	}
	d = time.Duration(float64(d) * (0.75 + 0.5*jitter))
	return min(d, maxD)
}

// After returns the larger of [Backoff.Delay] and the Retry-After read from h
// (see [RetryAfter]).
func (b Backoff) After(failures int, jitter float64, h http.Header, now time.Time) time.Duration {
	d := b.Delay(failures, jitter)
	if ra, ok := RetryAfter(h, now); ok && ra > d {
		d = ra
	}
	return d
}

// RetryAfter reads the delay a response asked for, in the order azcore honours:
// retry-after-ms, x-ms-retry-after-ms, then Retry-After as seconds or an HTTP
// date relative to now. The result is capped at [MaxRetryAfter]; false when h
// holds no valid value.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if h == nil {
		return 0, false
	}
	for _, name := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms >= 0 {
				return min(time.Duration(min(ms, int64(MaxRetryAfter/time.Millisecond)))*time.Millisecond, MaxRetryAfter), true
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return min(time.Duration(min(s, int64(MaxRetryAfter/time.Second)))*time.Second, MaxRetryAfter), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), MaxRetryAfter), true
	}
	return 0, false
}

// Sleep waits for d or until ctx is done, and reports whether d elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
