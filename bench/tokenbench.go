package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/f2fauth/f2fauth/internal/localidp"
	"github.com/f2fauth/f2fauth/tokencache"
)

// Token-acquisition contender names.
const (
	nameAzidentity = "azidentity.ManagedIdentityCredential"
	nameTokencache = "f2fauth tokencache (over the same credential)"
)

// tokenResult is one token-acquisition contender.
type tokenResult struct {
	Name          string
	BurstCalls    int
	BurstRequests int64
	BurstErrors   int
	BurstWall     time.Duration
	SeqCalls      int
	SeqRequests   int64
	SeqErrors     int
	WarmNsOp      float64
	WarmAllocsOp  float64
	WarmOps       int64
}

// tokenResults is the outcome of the token-acquisition comparison.
type tokenResults struct {
	Results []tokenResult
	Scopes  []string
}

// credFactory builds a fresh credential for one measurement.
type credFactory func() (azcore.TokenCredential, func(), error)

// newAzidentity is azidentity's ManagedIdentityCredential configured like
// tokencache.NewManagedIdentityCredential (30 s HTTP client timeout), without a cache in front.
func newAzidentity() (azcore.TokenCredential, func(), error) {
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: &http.Client{Timeout: 30 * time.Second}},
	})
	return cred, func() {}, err
}

// newTokencache is tokencache over tokencache.NewManagedIdentityCredential.
func newTokencache() (azcore.TokenCredential, func(), error) {
	cred, err := tokencache.NewManagedIdentityCredential("")
	if err != nil {
		return nil, nil, err
	}
	c, err := tokencache.New(cred, nil)
	if err != nil {
		return nil, nil, err
	}
	return c, func() { _ = c.Close() }, nil
}

// runTokens runs the token-acquisition comparison against a managed-identity
// endpoint of a local identity platform. It sets IDENTITY_ENDPOINT and
// IDENTITY_HEADER in the process environment. Every measurement uses its own
// resource, because MSAL caches managed-identity tokens process-globally by
// resource: a shared resource would let one measurement warm the next.
func runTokens(ctx context.Context, cfg Config, progress io.Writer) (*tokenResults, error) {
	p, err := localidp.Start(localidp.Options{})
	if err != nil {
		return nil, fmt.Errorf("localidp: %w", err)
	}
	defer p.Close()
	mi, err := p.AddIdentity(localidp.Identity{Name: "bench-mi", ClientID: callerClientID, ObjectID: callerObjectID})
	if err != nil {
		return nil, err
	}
	for k, v := range map[string]string{"IDENTITY_ENDPOINT": mi.Endpoint(), "IDENTITY_HEADER": mi.Header()} {
		if err := os.Setenv(k, v); err != nil {
			return nil, err
		}
	}
	defer func() { _ = os.Unsetenv("IDENTITY_ENDPOINT"); _ = os.Unsetenv("IDENTITY_HEADER") }()

	out := &tokenResults{}
	for _, tc := range []struct {
		name, key string
		mk        credFactory
	}{
		{nameAzidentity, "azidentity", newAzidentity},
		{nameTokencache, "tokencache", newTokencache},
	} {
		r := tokenResult{Name: tc.name, BurstCalls: cfg.Burst, SeqCalls: cfg.Sequential}

		// Cold burst: cfg.Burst concurrent GetToken calls on a fresh credential.
		burstScope := "api://bench-burst-" + tc.key + "/.default"
		cred, done, err := tc.mk()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tc.name, err)
		}
		before := mi.Requests()
		var wg sync.WaitGroup
		var mu sync.Mutex
		gate := make(chan struct{})
		for range cfg.Burst {
			wg.Go(func() {
				<-gate
				if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{burstScope}}); err != nil {
					mu.Lock()
					r.BurstErrors++
					mu.Unlock()
				}
			})
		}
		t0 := time.Now()
		close(gate)
		wg.Wait()
		r.BurstWall = time.Since(t0)
		r.BurstRequests = mi.Requests() - before
		done()

		// Sequential: cfg.Sequential GetToken calls on another fresh credential.
		seqScope := "api://bench-seq-" + tc.key + "/.default"
		cred, done, err = tc.mk()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tc.name, err)
		}
		opts := policy.TokenRequestOptions{Scopes: []string{seqScope}}
		before = mi.Requests()
		for range cfg.Sequential {
			if _, err := cred.GetToken(ctx, opts); err != nil {
				r.SeqErrors++
			}
		}
		r.SeqRequests = mi.Requests() - before

		// Warm path on the same (now warm) credential.
		r.WarmNsOp, r.WarmAllocsOp, r.WarmOps = warmPath(ctx, cred, opts, cfg.WarmTime)
		done()
		out.Scopes = append(out.Scopes, burstScope, seqScope)
		out.Results = append(out.Results, r)
		fmt.Fprintf(progress, "%s: burst %d calls -> %d requests; %d sequential -> %d requests; warm %.0f ns/op\n",
			tc.name, r.BurstCalls, r.BurstRequests, r.SeqCalls, r.SeqRequests, r.WarmNsOp)
	}
	return out, nil
}

// warmPath times GetToken on a warm credential for about d and returns ns/op
// and allocations/op (from runtime.MemStats, nothing else runs meanwhile).
func warmPath(ctx context.Context, cred azcore.TokenCredential, opts policy.TokenRequestOptions, d time.Duration) (nsOp, allocsOp float64, ops int64) {
	const batch = 1000
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	var elapsed time.Duration
	for elapsed < d {
		for range batch {
			_, _ = cred.GetToken(ctx, opts)
		}
		ops += batch
		elapsed = time.Since(start)
	}
	runtime.ReadMemStats(&ms1)
	return float64(elapsed.Nanoseconds()) / float64(ops), float64(ms1.Mallocs-ms0.Mallocs) / float64(ops), ops
}
