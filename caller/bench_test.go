package caller

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func BenchmarkParseInvocation(b *testing.B) {
	body := []byte(hostPayload)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseInvocation(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvocation is one warm timer run: parse, cached token, call a loopback
// callee, answer the host.
func BenchmarkInvocation(b *testing.B) {
	var hits atomic.Int64
	f := newFixture(b, okCallee(b, &hits).URL, nil)
	h := f.c.Handler()
	body := payload(false)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/"+FunctionName, strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	}
}
