package tokencache

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// maxRetryAfter bounds how long a server's Retry-After can postpone a retry.
const maxRetryAfter = time.Hour

// RetryAfter extracts the delay a throttling response asked for from err. It
// looks for an HTTP response exposed by [*azcore.ResponseError] or
// [*azidentity.AuthenticationFailedError] with status 429 or 503 and reads, in
// order, the retry-after-ms, x-ms-retry-after-ms and Retry-After headers
// (Retry-After as seconds or an HTTP date relative to now). Values are capped
// at one hour. It reports false when err exposes no such delay.
func RetryAfter(err error, now time.Time) (time.Duration, bool) {
	resp := responseOf(err)
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0, false
	}
	return parseRetryAfter(resp.Header, now)
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

// parseRetryAfter reads the retry headers azcore honours.
func parseRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if h == nil {
		return 0, false
	}
	for _, name := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms >= 0 {
				return capRetryAfter(time.Duration(min(ms, int64(maxRetryAfter/time.Millisecond))) * time.Millisecond), true
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
		return capRetryAfter(time.Duration(min(s, int64(maxRetryAfter/time.Second))) * time.Second), true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return capRetryAfter(d), true
	}
	return 0, false
}

func capRetryAfter(d time.Duration) time.Duration {
	return min(d, maxRetryAfter)
}
