package authmw

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Adversarial review 2: work an unauthenticated request can make the
// Middleware do must not grow with what the client sends.

// Behind a trusted proxy, X-Forwarded-For is the client's to fill (the proxy
// appends to it): a header of 100,000 entries was split whole, one string per
// entry, before the walk stopped at maxForwardedHops.
func TestForwardedForWalkBounded(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Policy.AllowedClientCIDRs = []string{"192.0.2.0/24"}
		c.Policy.TrustedProxies = []string{"10.0.0.0/8"}
	})
	h := e.m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("request reached the handler") }))
	req := func(entries int) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/api/x", nil)
		r.RemoteAddr = "10.0.0.1:5000"
		r.Header.Set("X-Forwarded-For", "192.0.2.7"+strings.Repeat(", 10.0.0.2", entries))
		return r
	}
	allocs := func(r *http.Request) float64 {
		return testing.AllocsPerRun(10, func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), string(ReasonClientAddressNotAllowed)) {
				t.Fatalf("status %d %s, want 403 %s", w.Code, w.Body, ReasonClientAddressNotAllowed)
			}
		})
	}
	small, huge := allocs(req(2*maxForwardedHops)), allocs(req(100_000))
	if huge > small+2 {
		t.Fatalf("X-Forwarded-For of 100,000 entries: %.0f allocations per request, %.0f for %d entries: the walk is not bounded", huge, small, 2*maxForwardedHops)
	}
}
