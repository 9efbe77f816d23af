package main

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/f2fauth/f2fauth/internal/localidp"
)

// BenchmarkGateway sends the same reused-token GET over loopback keep-alive
// connections straight to a trivial upstream ("direct") and through the callee in
// gateway mode ("gateway"); compare their ns/op (issue 12: gateway ≤ 1.5× direct).
// Run: go test -run '^$' -bench Gateway -benchmem (from bench/).
func BenchmarkGateway(b *testing.B) {
	p, err := localidp.Start(localidp.Options{ResourceClientIDs: map[string]string{calleeResource: calleeClientID}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	s, err := startGatewayStack(context.Background(), p)
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	client := newLoadClient(8)
	defer client.CloseIdleConnections()
	if err := gatewaySanity(context.Background(), client, s); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, url string }{
		{"direct", s.upstreamURL + gatewayPath},
		{"gateway", s.gatewayURL + gatewayPath},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, err := http.NewRequest(http.MethodGet, bc.url, nil)
				if err != nil {
					b.Error(err)
					return
				}
				req.Header.Set("Authorization", "Bearer "+s.token)
				for pb.Next() {
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
