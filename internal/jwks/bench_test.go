package jwks

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"
	"time"
)

// benchToken is an Entra-sized RS256 access token payload.
const benchPayload = `{"aud":"api://f2fauth-callee","iss":"https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",` +
	`"iat":1763900000,"nbf":1763900000,"exp":1763986700,"aio":"k2BgYGg5tP3q","appid":"5f1c7d2e-1111-2222-3333-444455556666",` +
	`"appidacr":"2","idp":"https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/","idtyp":"app",` +
	`"oid":"0a1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff","rh":"0.AAAA","roles":["Callee.Invoke"],` +
	`"sub":"0a1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff","tid":"72f988bf-86f1-41af-91ab-2d7cd011db47","uti":"abc","ver":"1.0"}`

func benchSetup(b *testing.B) (*KeySet, string) {
	b.Helper()
	keys := keysOnce()
	srv := newJWKSServer(b, jwksJSON(b, pubJWK(b, keys.k2, "other", nil), pubJWK(b, keys.k1, "k1", nil)))
	clock := newFakeClock()
	ks := newTestKeySet(b, srv, Options{Now: clock.Now, UnknownKIDInterval: time.Hour})
	tok := craft(b, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "k1", "x5t": "k1"}, benchPayload, rs256(keys.k1))
	return ks, tok
}

// BenchmarkRSAVerifyBare is the floor: SHA-256 of the signing input plus
// rsa.VerifyPKCS1v15, nothing else.
func BenchmarkRSAVerifyBare(b *testing.B) {
	_, tok := benchSetup(b)
	i := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:i])
	sig, err := b64.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &keysOnce().k1.PublicKey
	b.ReportAllocs()
	for b.Loop() {
		d := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifySignature is the oidc.KeySet path: parse plus verify.
func BenchmarkVerifySignature(b *testing.B) {
	ks, tok := benchSetup(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.VerifySignature(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCompact is the one verification path (ParseCompact, Verify):
// what authmw's uncached path costs here.
func BenchmarkVerifyCompact(b *testing.B) {
	ks, tok := benchSetup(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.verifyCompact(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel checks that the lock-free lookup scales.
func BenchmarkVerifyParallel(b *testing.B) {
	ks, tok := benchSetup(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ks.verifyCompact(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkUnknownKIDRateLimited is the cost of rejecting a forged kid once
// the refetch interval is used up (a kid storm).
func BenchmarkUnknownKIDRateLimited(b *testing.B) {
	ks, _ := benchSetup(b)
	forged := token(b, keysOnce().attacker, "forged")
	ctx := context.Background()
	_, _ = ks.verifyCompact(ctx, forged) // uses up the interval
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.verifyCompact(ctx, forged); err == nil {
			b.Fatal("forged kid accepted")
		}
	}
}

// BenchmarkPublishes is the lookup authmw does on each verified-token cache hit.
func BenchmarkPublishes(b *testing.B) {
	ks, tok := benchSetup(b)
	v, err := ks.verifyCompact(context.Background(), tok)
	id := v.ID
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ks.Publishes(id) {
			b.Fatal("k1 missing")
		}
	}
}

// BenchmarkVerifyOverhead interleaves the bare RSA check and the one path in
// one loop and reports their cost ratio, which stays meaningful on a noisy
// machine where separate benchmarks drift.
// Target (issue 2): the uncached path within 1.5x of the bare verification.
func BenchmarkVerifyOverhead(b *testing.B) {
	ks, tok := benchSetup(b)
	i := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:i])
	sig, err := b64.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &keysOnce().k1.PublicKey
	ctx := context.Background()
	var bare, compact time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		d := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := ks.verifyCompact(ctx, tok); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		bare += t1.Sub(t0)
		compact += t2.Sub(t1)
	}
	b.ReportMetric(float64(compact)/float64(bare), "compact/bare")
	b.ReportMetric(float64(bare.Nanoseconds())/float64(b.N), "bare-ns/op")
}
