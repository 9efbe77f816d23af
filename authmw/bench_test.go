package authmw

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// Run: go test -run '^$' -bench . -benchmem ./authmw
//
// Targets (issue 9): BenchmarkHandlerCached <= 2 µs/op and <= 10 allocs/op;
// BenchmarkVerifyUncached within 1.15x of BenchmarkRSAVerifyBare (read
// x_bare_cpu of BenchmarkVerifyUncachedVsBare on a shared machine).

// discardWriter is a minimal ResponseWriter for benchmarks.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchEnv(b *testing.B, opts ...envOption) (*testEnv, string) {
	b.Helper()
	opts = append([]envOption{func(c *Config) { c.Logger = nil; c.OnDecision = nil }}, opts...)
	e := newEnv(b, opts...)
	return e, e.mint(e.claims(1))
}

// BenchmarkRSAVerifyBare is the floor: SHA-256 of the signing input plus one
// RSA-2048 PKCS#1 v1.5 verification, nothing else.
func BenchmarkRSAVerifyBare(b *testing.B) {
	e, tok := benchEnv(b)
	_, key := e.idp.SigningKey()
	pub := &key.PublicKey
	i := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:i])
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		sum := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUncached is the whole core on a cache miss: parse, route by
// iss, signature, claims and policy checks, Principal.
func BenchmarkVerifyUncached(b *testing.B) {
	e, tok := benchEnv(b, func(c *Config) { c.CacheSize = -1 })
	ctx := context.Background()
	if _, err := e.m.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.m.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandlerCached is a request with an already-verified token through
// the net/http adapter, up to the next handler.
func BenchmarkHandlerCached(b *testing.B) {
	e, tok := benchEnv(b)
	called := 0
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := PrincipalFrom(r.Context()); ok {
			called++
		}
	}))
	req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, req)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
	b.StopTimer()
	if called != b.N+1 {
		b.Fatalf("next called %d times, want %d", called, b.N+1)
	}
}

// BenchmarkHandlerCachedAudited is BenchmarkHandlerCached with the audit log
// (JSON to io.Discard) and OnDecision on, for reference.
func BenchmarkHandlerCachedAudited(b *testing.B) {
	e, tok := benchEnv(b)
	e.m.cfg.Logger = slogDiscardJSON()
	e.m.cfg.OnDecision = func(Decision) {}
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, req)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// BenchmarkVerifyUncachedVsBare interleaves the uncached core and the bare RSA
// check in the same loop, so both see the same machine load, and reports their
// ratio as "x_bare" (wall time) and, on Linux, "x_bare_cpu" (CPU time of the
// benchmark's thread, which other processes on a shared machine do not
// inflate) and "x_bare_cpu_median" (the median of the per-iteration ratios,
// which GC pauses and preemptions do not skew either). Target (issue 9):
// <= 1.15. ns/op is the sum of both.
func BenchmarkVerifyUncachedVsBare(b *testing.B) {
	e, tok := benchEnv(b, func(c *Config) { c.CacheSize = -1 })
	_, key := e.idp.SigningKey()
	pub := &key.PublicKey
	i := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:i])
	sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
	ctx := context.Background()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var full, bare, fullCPU, bareCPU time.Duration
	var ratios []float64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c0, _ := threadCPU()
		t0 := time.Now()
		if _, err := e.m.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		c1, _ := threadCPU()
		sum := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		c2, _ := threadCPU()
		full += t1.Sub(t0)
		bare += t2.Sub(t1)
		fullCPU += c1 - c0
		bareCPU += c2 - c1
		if c2 > c1 {
			ratios = append(ratios, float64(c1-c0)/float64(c2-c1))
		}
	}
	b.ReportMetric(float64(full)/float64(bare), "x_bare")
	if bareCPU > 0 {
		b.ReportMetric(float64(fullCPU)/float64(bareCPU), "x_bare_cpu")
		slices.Sort(ratios)
		b.ReportMetric(ratios[len(ratios)/2], "x_bare_cpu_median")
	}
	b.ReportMetric(float64(full.Nanoseconds())/float64(b.N), "verify-ns/op")
	b.ReportMetric(float64(bare.Nanoseconds())/float64(b.N), "bare-ns/op")
}

// BenchmarkDecodeClaims is the strict decode of a real token's claims: the
// part of the uncached path that is not the signature check.
func BenchmarkDecodeClaims(b *testing.B) {
	e, tok := benchEnv(b)
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		b.Fatal(err)
	}
	_ = e
	b.ReportAllocs()
	for b.Loop() {
		var c tokenClaims
		if err := decodeClaims(payload, &c); err != nil {
			b.Fatal(err)
		}
	}
}
