package callee

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// BenchmarkGatewayHandler is one authorized request through the gateway's handler
// (authmw with the verified-token cache warm, the reverse proxy's rewrite and
// response copy) to an upstream that answers from memory: the gateway's own work
// without the network (bench/ measures it over loopback).
func BenchmarkGatewayHandler(b *testing.B) {
	p := startPlatform(b)
	s, err := NewServer(context.Background(), envFor(p, map[string]string{EnvUpstreamURL: "http://127.0.0.1:1"}), quietLogger())
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
	s.gw.proxy.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Header.Get("X-Ms-Client-Principal-Id") != allowedID.ObjectID {
			b.Error("upstream did not get the principal")
		}
		return &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Request: r, ContentLength: 11,
			Header: http.Header{"Content-Type": {"application/json"}, "Content-Length": {"11"}},
			Body:   io.NopCloser(strings.NewReader(`{"ok":true}`))}, nil
	})
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, "/api/data", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	b.ReportAllocs()
	for b.Loop() {
		r := req.Clone(context.Background())
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
