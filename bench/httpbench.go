package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/f2fauth/f2fauth/internal/localidp"
)

// Scenario names.
const (
	scenarioReused   = "reused token"
	scenarioDistinct = "distinct tokens"
)

// Identities and policy values of the HTTP comparison.
const (
	calleeResource = "api://f2fauth-bench-callee"
	calleeClientID = "5d6b0c1e-3f2a-4b8c-9d7e-1a2b3c4d5e6f"
	callerClientID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
	callerObjectID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	otherClientID  = "11111111-2222-4333-8444-555555555555"
	requiredRole   = "Functions.Invoke"
)

// httpResults is the outcome of the HTTP comparison.
type httpResults struct {
	Summaries   []summary // scenario-major, table order
	PoolSize    int
	MintTime    time.Duration
	TokenVer    int
	Contenders  []string
	Rounds      int
	Duration    time.Duration
	DistinctDur time.Duration
	Conns       int
	Warmup      time.Duration
	SanityNotes []string
}

// mintPool mints n distinct valid tokens in parallel.
func mintPool(p *localidp.Platform, id localidp.Identity, n int) ([][]string, error) {
	pool := make([][]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				tok, err := p.Mint(p.AccessTokenClaims(id, calleeResource, 2))
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				pool[i] = []string{"Bearer " + tok}
			}
		})
	}
	wg.Wait()
	return pool, firstErr
}

// statusOf sends one GET with an optional token and returns the status.
func statusOf(ctx context.Context, client *http.Client, url, token string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return -1
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return -1
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// sanity proves a contender enforces the shared policy before it is timed: a
// fast server that lets everyone in would otherwise win.
func sanity(ctx context.Context, client *http.Client, c *contender, good string, bad map[string]string) string {
	if s := statusOf(ctx, client, c.url+protectedPath, good); s != http.StatusOK {
		return fmt.Sprintf("valid token got %d", s)
	}
	if s := statusOf(ctx, client, c.url+excludedPath, ""); s != http.StatusOK {
		return fmt.Sprintf("excluded path without token got %d", s)
	}
	if c.name == nameNoAuth {
		return ""
	}
	if s := statusOf(ctx, client, c.url+protectedPath, ""); s < 400 || s > 499 {
		return fmt.Sprintf("no token got %d", s)
	}
	for what, tok := range bad {
		if s := statusOf(ctx, client, c.url+protectedPath, tok); s < 400 || s > 499 {
			return fmt.Sprintf("%s got %d", what, s)
		}
	}
	return ""
}

// runHTTP runs the HTTP comparison.
func runHTTP(ctx context.Context, cfg Config, progress io.Writer) (*httpResults, error) {
	p, err := localidp.Start(localidp.Options{
		ResourceClientIDs: map[string]string{calleeResource: calleeClientID},
	})
	if err != nil {
		return nil, fmt.Errorf("localidp: %w", err)
	}
	defer p.Close()
	caller := localidp.Identity{
		Name: "bench-caller", ClientID: callerClientID, ObjectID: callerObjectID,
		AppRoles: map[string][]string{calleeResource: {requiredRole}},
	}
	pol := benchPolicy{
		Issuer:      p.IssuerV2(),
		Audience:    calleeClientID,
		AllowedApps: []string{callerClientID},
		Roles:       []string{requiredRole},
	}

	reused, err := p.Mint(p.AccessTokenClaims(caller, calleeResource, 2))
	if err != nil {
		return nil, err
	}
	bad := map[string]string{}
	other := caller
	other.ClientID = otherClientID
	if bad["token of another application"], err = p.Mint(p.AccessTokenClaims(other, calleeResource, 2)); err != nil {
		return nil, err
	}
	noRole := caller
	noRole.AppRoles = nil
	if bad["token without the role"], err = p.Mint(p.AccessTokenClaims(noRole, calleeResource, 2)); err != nil {
		return nil, err
	}
	if bad["token for another audience"], err = p.Mint(p.AccessTokenClaims(caller, "api://someone-else", 2)); err != nil {
		return nil, err
	}
	expired := p.AccessTokenClaims(caller, calleeResource, 2)
	past := time.Now().Add(-2 * time.Hour).Unix()
	expired["iat"], expired["nbf"], expired["exp"] = past-3600, past-3600, past
	if bad["expired token"], err = p.Mint(expired); err != nil {
		return nil, err
	}

	res := &httpResults{TokenVer: 2, Contenders: cfg.Contenders, Rounds: cfg.Rounds,
		Duration: cfg.Duration, DistinctDur: cfg.DistinctDuration, Conns: cfg.Conns, Warmup: cfg.Warmup}
	var pool [][]string
	if cfg.has(scenarioDistinct) {
		t0 := time.Now()
		fmt.Fprintf(progress, "minting %d distinct RS256 tokens...\n", cfg.Tokens)
		if pool, err = mintPool(p, caller, cfg.Tokens); err != nil {
			return nil, err
		}
		res.PoolSize, res.MintTime = len(pool), time.Since(t0)
		fmt.Fprintf(progress, "minted in %v\n", res.MintTime.Round(time.Millisecond))
	}

	client := newLoadClient(cfg.Conns)
	defer client.CloseIdleConnections()
	cs := make([]*contender, 0, len(cfg.Contenders))
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	sanityFail := map[string]string{}
	for _, name := range cfg.Contenders {
		c, err := startContender(ctx, name, p, pol)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
		if msg := sanity(ctx, client, c, reused, bad); msg != "" {
			sanityFail[name] = msg
			res.SanityNotes = append(res.SanityNotes, fmt.Sprintf("%s: %s", name, msg))
		}
		// Warm up: connections, JWKS, JIT-free but allocator and caches warm.
		drive(ctx, client, c.url+protectedPath, cfg.Conns, cfg.Warmup, reusedSource(reused))
	}

	stopProfile, err := startProfile(cfg.CPUProfile)
	if err != nil {
		return nil, err
	}
	defer stopProfile()

	for _, scenario := range []string{scenarioReused, scenarioDistinct} {
		if !cfg.has(scenario) {
			continue
		}
		rounds := make([][]roundResult, len(cs))
		hits0 := make([][2]int64, len(cs))
		for i, c := range cs {
			if c.hitsFn != nil {
				h, m := c.hitsFn()
				hits0[i] = [2]int64{h, m}
			}
		}
		for r := range cfg.Rounds {
			var seg [][]string
			if scenario == scenarioDistinct {
				per := len(pool) / cfg.Rounds
				seg = pool[r*per : (r+1)*per]
			}
			// Interleave: rotate the starting contender each round.
			for k := range cs {
				i := (k + r) % len(cs)
				c := cs[i]
				src, d := reusedSource(reused), cfg.Duration
				if scenario == scenarioDistinct {
					src, d = poolSource(seg), cfg.DistinctDuration
					if c.name == nameNoAuth {
						src = cyclicSource(seg)
					}
				}
				rr := drive(ctx, client, c.url+protectedPath, cfg.Conns, d, src)
				rounds[i] = append(rounds[i], rr)
				fmt.Fprintf(progress, "round %d/%d %-15s %-24s %8.0f req/s%s\n", r+1, cfg.Rounds, scenario, c.name,
					float64(rr.Requests)/rr.Elapsed.Seconds(), map[bool]string{true: " (token budget exhausted)"}[rr.Exhausted])
			}
		}
		var base float64
		for i, c := range cs {
			s := summarize(c.name, scenario, rounds[i])
			s.SanityFail = sanityFail[c.name]
			if c.hitsFn != nil {
				h, m := c.hitsFn()
				s.HasCache, s.CacheHits, s.CacheMiss = true, h-hits0[i][0], m-hits0[i][1]
			}
			if c.name == nameNoAuth {
				base = s.RPS
			}
			res.Summaries = append(res.Summaries, s)
		}
		for i := range res.Summaries {
			if res.Summaries[i].Scenario == scenario && base > 0 {
				res.Summaries[i].Ratio = res.Summaries[i].RPS / base
			}
		}
	}
	return res, nil
}
