package callee

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkExclusiveFunction is one authorized call through echo, authmw (verified-token
// cache warm) and the handler, without the network.
func BenchmarkExclusiveFunction(b *testing.B) {
	p := startPlatform(b)
	s, err := NewServer(context.Background(), envFor(p, nil), quietLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	tok, err := p.Mint(p.AccessTokenClaims(allowedID, testAudience, 1))
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, FunctionPath, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
