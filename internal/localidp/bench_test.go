package localidp

import (
	"io"
	"net/http"
	"testing"
)

func BenchmarkMint(b *testing.B) {
	p := start(b, Options{})
	c := p.AccessTokenClaims(testIdentity, "api://callee", 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Mint(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenEndpoint measures one full managed-identity token request over
// loopback HTTP (claims, RS256 signature, JSON).
func BenchmarkTokenEndpoint(b *testing.B) {
	p := start(b, Options{})
	m := addIdentity(b, p, testIdentity)
	req, _ := http.NewRequest(http.MethodGet, m.Endpoint()+"?api-version=2019-08-01&resource=api%3A%2F%2Fcallee", nil)
	req.Header.Set("X-IDENTITY-HEADER", m.Header())
	b.ReportAllocs()
	for b.Loop() {
		resp, err := testClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkJWKS measures serving the key set over loopback HTTP.
func BenchmarkJWKS(b *testing.B) {
	p := start(b, Options{})
	p.RotateKey()
	u := p.JWKSURLV2()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := testClient.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
