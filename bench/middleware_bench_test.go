package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/f2fauth/f2fauth/internal/localidp"
)

// The benchmarks below call each contender's echo handler in-process (no
// sockets, no load generator), so they isolate what each middleware costs per
// request: go test -bench . -benchmem (from bench/).

var (
	benchOnce   sync.Once
	benchP      *localidp.Platform
	benchPol    benchPolicy
	benchCaller localidp.Identity
	benchMu     sync.Mutex
	benchPool   []string // distinct valid tokens, grown on demand
)

func benchSetup(b *testing.B) {
	benchOnce.Do(func() {
		p, err := localidp.Start(localidp.Options{ResourceClientIDs: map[string]string{calleeResource: calleeClientID}})
		if err != nil {
			b.Fatal(err)
		}
		benchP = p
		benchCaller = localidp.Identity{Name: "bench-caller", ClientID: callerClientID, ObjectID: callerObjectID,
			AppRoles: map[string][]string{calleeResource: {requiredRole}}}
		benchPol = benchPolicy{Issuer: p.IssuerV2(), Audience: calleeClientID, AllowedApps: []string{callerClientID}, Roles: []string{requiredRole}}
	})
}

// benchTokens returns at least n distinct tokens (minting is not timed by callers).
func benchTokens(b *testing.B, n int) []string {
	benchMu.Lock()
	defer benchMu.Unlock()
	if len(benchPool) < n {
		more, err := mintPool(benchP, benchCaller, n-len(benchPool))
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range more {
			benchPool = append(benchPool, v[0])
		}
	}
	return benchPool[:n]
}

func benchContender(b *testing.B, name string, distinct bool) {
	benchSetup(b)
	var c *contender
	var err error
	if name == nameAuthmw+" (cache disabled)" {
		c, err = startAuthmw(context.Background(), benchP, benchPol, -1)
	} else {
		c, err = startContender(context.Background(), name, benchP, benchPol)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer c.close()
	tokens := benchTokens(b, 1)
	if distinct {
		b.StopTimer()
		tokens = benchTokens(b, b.N)
		b.StartTimer()
	}
	req := httptest.NewRequest(http.MethodGet, protectedPath, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req.Header["Authorization"] = []string{tokens[i%len(tokens)]}
		w := httptest.NewRecorder()
		c.handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkReused_NoAuth(b *testing.B)   { benchContender(b, nameNoAuth, false) }
func BenchmarkReused_Authmw(b *testing.B)   { benchContender(b, nameAuthmw, false) }
func BenchmarkReused_GoOIDC(b *testing.B)   { benchContender(b, nameGoOIDC, false) }
func BenchmarkReused_EchoJWT(b *testing.B)  { benchContender(b, nameEchoJWT, false) }
func BenchmarkDistinct_Authmw(b *testing.B) { benchContender(b, nameAuthmw, true) }
func BenchmarkDistinct_AuthmwNoCache(b *testing.B) {
	benchContender(b, nameAuthmw+" (cache disabled)", true)
}
func BenchmarkDistinct_GoOIDC(b *testing.B)  { benchContender(b, nameGoOIDC, true) }
func BenchmarkDistinct_EchoJWT(b *testing.B) { benchContender(b, nameEchoJWT, true) }
