package tokencache

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

func warmCache(b *testing.B, o policy.TokenRequestOptions) *Cache {
	b.Helper()
	cred := &fakeCred{}
	cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{Token: "t", ExpiresOn: time.Now().Add(24 * time.Hour)}, nil
	})
	c, err := New(cred, nil) // real clock: measures time.Now too
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	if _, err := c.GetToken(context.Background(), o); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkGetTokenWarm measures a cache hit for the common single-scope case.
func BenchmarkGetTokenWarm(b *testing.B) {
	o := opts("api://bench/.default")
	c := warmCache(b, o)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetToken(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetTokenWarmParallel measures cache hits from all Ps at once.
func BenchmarkGetTokenWarmParallel(b *testing.B) {
	o := opts("api://bench/.default")
	c := warmCache(b, o)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetToken(ctx, o); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetTokenWarmTenant measures a hit on the general key path (tenant set).
func BenchmarkGetTokenWarmTenant(b *testing.B) {
	o := policy.TokenRequestOptions{Scopes: []string{"api://bench/.default"}, TenantID: "tenant-1"}
	c := warmCache(b, o)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetToken(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetTokenWarmFixedClock isolates the cache's own hit cost from
// time.Now (which costs ~70 ns on a kvm-clock VM).
func BenchmarkGetTokenWarmFixedClock(b *testing.B) {
	o := opts("api://bench/.default")
	now := time.Now()
	cred := &fakeCred{}
	cred.set(func(context.Context, int64, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{Token: "t", ExpiresOn: now.Add(24 * time.Hour)}, nil
	})
	c, err := New(cred, &Options{Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.GetToken(ctx, o); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetToken(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
}
