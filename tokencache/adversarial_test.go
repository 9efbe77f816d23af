package tokencache

// Adversarial review (issue 14 rerun): attacks on the cache and the transport
// that earlier tests did not cover.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// TestCacheKeyInjective: options that differ must never share an entry, even
// when a scope, tenant or claims value holds the key's separator byte (claims
// come from a resource's challenge): no token for one audience/tenant is
// handed out for another.
func TestCacheKeyInjective(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(func(_ context.Context, n int64, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{Token: fmt.Sprintf("tok-%d", n), ExpiresOn: clk.Now().Add(time.Hour)}, nil
	})
	pairs := []struct {
		name string
		a, b policy.TokenRequestOptions
	}{
		{"claims absorbs a scope", policy.TokenRequestOptions{Scopes: []string{"api://a", "api://b"}, Claims: "c"},
			policy.TokenRequestOptions{Scopes: []string{"api://b"}, Claims: "c\x00api://a"}},
		{"scope splits in two", policy.TokenRequestOptions{Scopes: []string{"api://a", "api://b"}, TenantID: "t"},
			policy.TokenRequestOptions{Scopes: []string{"api://a\x00api://b"}, TenantID: "t"}},
		{"tenant absorbs claims", policy.TokenRequestOptions{Scopes: []string{"api://a"}, TenantID: "t", Claims: "c"},
			policy.TokenRequestOptions{Scopes: []string{"api://a"}, TenantID: "t\x00c"}},
		{"single scope spells a tenant key", policy.TokenRequestOptions{Scopes: []string{"api://a"}, TenantID: "evil"},
			policy.TokenRequestOptions{Scopes: []string{"\x000\x00evil\x00\x00api://a"}}},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			c := newTestCache(t, cred, clk, nil)
			ta, err := c.GetToken(context.Background(), p.a)
			if err != nil {
				t.Fatal(err)
			}
			tb, err := c.GetToken(context.Background(), p.b)
			if err != nil {
				t.Fatal(err)
			}
			if ta.Token == tb.Token {
				t.Fatalf("%+v and %+v share a cache entry (token %s)", p.a, p.b, ta.Token)
			}
		})
	}
}
