package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestQuickRun runs the whole tool for a fraction of a second per contender
// and checks that both tables are produced, every contender passed the policy
// checks and answered every timed request with 200, and tokencache coalesced
// the cold burst. It asserts no timing.
func TestQuickRun(t *testing.T) {
	cfg := quickConfig()
	cfg.Duration, cfg.DistinctDuration, cfg.Warmup, cfg.WarmTime = 150*time.Millisecond, 150*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	cfg.Tokens, cfg.Conns, cfg.Burst, cfg.Sequential = 200, 4, 20, 500
	var progress bytes.Buffer
	res, err := run(context.Background(), cfg, &progress)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	if got, want := len(res.HTTP.Summaries), len(allContenders)*2; got != want {
		t.Fatalf("got %d summaries, want %d", got, want)
	}
	if len(res.HTTP.SanityNotes) > 0 {
		t.Errorf("policy checks failed: %v", res.HTTP.SanityNotes)
	}
	for _, s := range res.HTTP.Summaries {
		if !s.ok() {
			t.Errorf("%s/%s: requests=%d non-200=%v transport errors=%d sanity=%q", s.Scenario, s.Contender, s.Requests, s.Non200, s.Errors, s.SanityFail)
		}
		if s.Contender == nameAuthmw && s.Scenario == scenarioDistinct && s.CacheHits != 0 {
			t.Errorf("authmw served %d distinct-token requests from its cache; tokens were reused", s.CacheHits)
		}
	}
	if g := res.Gateway; g == nil || !g.Direct.ok() || !g.Gateway.ok() || !g.Binary.ok() || len(g.SanityNotes) > 0 {
		t.Errorf("gateway comparison: %+v", g)
	}
	// The shipped binary: both routes answered 200 throughout, it refused no token
	// and another application, and its logs reached the drained pipes.
	if b := res.Binary; b == nil || !b.Ready.ok() || !b.Auth.ok() || len(b.SanityNotes) > 0 {
		t.Errorf("callee binary comparison: %+v", b)
	}
	for _, r := range res.Tokens.Results {
		if r.BurstErrors > 0 || r.SeqErrors > 0 {
			t.Errorf("%s: %d burst and %d sequential GetToken errors", r.Name, r.BurstErrors, r.SeqErrors)
		}
		if r.Name == nameTokencache && r.BurstRequests != 1 {
			t.Errorf("tokencache cold burst of %d made %d endpoint requests, want 1", r.BurstCalls, r.BurstRequests)
		}
	}
	var out bytes.Buffer
	writeReport(&out, res)
	for _, want := range []string{
		"### HTTP: bearer-token validation on loopback",
		"| Scenario | Contender | req/s | vs no auth | p50 | p99 | CPU/req | non-200 | Notes |",
		"### Token acquisition",
		"### Targets (issue 6)",
		"### Gateway mode", "| Target (issue 12) |", nameDirect, nameGateway, nameGatewayBin,
		"### The shipped callee binary", "| Target (issue 10) |", nameBinReady, nameBinAuth,
		nameNoAuth, nameAuthmw, nameGoOIDC, nameEchoJWT, nameAzidentity, nameTokencache,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "⚠") {
		t.Errorf("report flags a problem:\n%s", out.String())
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-contenders", "nope"},
		{"-scenarios", "sometimes"},
		{"-conns", "0"},
		{"-tokens", "2", "-rounds", "3"},
	} {
		var out, errOut bytes.Buffer
		if err := mainErr(args, &out, &errOut); err == nil {
			t.Errorf("mainErr(%q) succeeded, want an error", args)
		}
	}
}

func TestPercentile(t *testing.T) {
	v := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		q    float64
		want int64
	}{{0.5, 5}, {0.99, 10}, {0.1, 1}, {0, 1}, {1, 10}} {
		if got := percentile(v, tc.q); got != tc.want {
			t.Errorf("percentile(%v) = %d, want %d", tc.q, got, tc.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %d", got)
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}
