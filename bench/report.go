package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// environment describes the machine of a run.
type environment struct {
	CPU        string
	NumCPU     int
	GOMAXPROCS int
	Go         string
	OSArch     string
	When       time.Time
	LoadAvg    string // /proc/loadavg at start: other work on the machine skews results
}

func describeEnvironment() environment {
	env := environment{CPU: "unknown", NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Go: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH, When: time.Now().UTC()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			env.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				env.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return env
}

// thousands formats n with thousands separators.
func thousands(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// writeReport prints the tables as Markdown.
func writeReport(w io.Writer, r *results) {
	e := r.Env
	fmt.Fprintf(w, "Machine: %s, %d logical CPUs (GOMAXPROCS %d), %s, %s, %s", e.CPU, e.NumCPU, e.GOMAXPROCS, e.Go, e.OSArch, e.When.Format("2006-01-02 15:04 MST"))
	if e.LoadAvg != "" {
		fmt.Fprintf(w, ", load average at start %s", e.LoadAvg)
	}
	fmt.Fprintf(w, ".\n\n")
	if h := r.HTTP; h != nil {
		writeHTTP(w, h)
	}
	if t := r.Tokens; t != nil {
		writeTokens(w, r.Cfg, t)
	}
	writeTargets(w, r)
	if b := r.Binary; b != nil {
		writeBinary(w, b)
	}
	if g := r.Gateway; g != nil {
		writeGateway(w, g)
	}
}

func writeHTTP(w io.Writer, h *httpResults) {
	fmt.Fprintf(w, "### HTTP: bearer-token validation on loopback\n\n")
	fmt.Fprintf(w, "%d round(s) × %v (reused token) / %v (distinct tokens) per contender, contenders interleaved (start rotated each round); "+
		"%d workers on %d keep-alive connections per contender; load generator in-process on the same cores; "+
		"v%d access tokens (RS256) from one local issuer; policy: audience + allowed application + required role.",
		h.Rounds, h.Duration, h.DistinctDur, h.Conns, h.Conns, h.TokenVer)
	if h.PoolSize > 0 {
		fmt.Fprintf(w, " Distinct tokens: a pool of %s pre-minted tokens (%v), %s per round; each authenticating server sees each token at most once (no auth cycles through the round's share).",
			thousands(float64(h.PoolSize)), h.MintTime.Round(time.Millisecond), thousands(float64(h.PoolSize/h.Rounds)))
	}
	fmt.Fprintf(w, "\n\n| Scenario | Contender | req/s | vs no auth | p50 | p99 | CPU/req | non-200 | Notes |\n")
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, s := range h.Summaries {
		var notes []string
		if len(s.RoundRPS) > 1 {
			notes = append(notes, fmt.Sprintf("rounds %s–%s req/s", thousands(slices.Min(s.RoundRPS)), thousands(slices.Max(s.RoundRPS))))
		}
		if s.HasCache {
			notes = append(notes, fmt.Sprintf("verified-token cache hits %s of %s", thousands(float64(s.CacheHits)), thousands(float64(s.CacheHits+s.CacheMiss))))
		}
		if s.Exhausted > 0 {
			notes = append(notes, fmt.Sprintf("token budget ran out in %d of %d rounds (%s tokens sent)", s.Exhausted, len(s.RoundRPS), thousands(float64(s.Requests))))
		} else if s.Scenario == scenarioDistinct && s.Contender != nameNoAuth {
			notes = append(notes, fmt.Sprintf("%s distinct tokens sent", thousands(float64(s.Requests))))
		}
		non200 := "0"
		if len(s.Non200) > 0 || s.Errors > 0 {
			var parts []string
			for _, c := range slices.Sorted(maps.Keys(s.Non200)) {
				parts = append(parts, fmt.Sprintf("%d×%d", s.Non200[c], c))
			}
			if s.Errors > 0 {
				parts = append(parts, fmt.Sprintf("%d transport errors", s.Errors))
			}
			non200 = "**" + strings.Join(parts, ", ") + "** ⚠"
		}
		if s.SanityFail != "" {
			notes = append(notes, "⚠ FAILED policy check: "+s.SanityFail)
		}
		ratio := "—"
		if s.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", s.Ratio)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %.1f µs | %s | %s |\n", s.Scenario, s.Contender, thousands(s.RPS), ratio,
			ms(s.P50), ms(s.P99), float64(s.CPUPerReq)/1e3, non200, strings.Join(notes, "; "))
	}
	fmt.Fprintln(w)
	if len(h.SanityNotes) == 0 {
		fmt.Fprintf(w, "Before timing, every contender answered 200 to a valid token and on the excluded path without a token, "+
			"and (except no auth) 4xx to no token, an expired token, a token for another audience, of another application, and without the role.\n\n")
	} else {
		fmt.Fprintf(w, "Policy checks FAILED before timing: %s.\n\n", strings.Join(h.SanityNotes, "; "))
	}
}

func writeTokens(w io.Writer, cfg Config, t *tokenResults) {
	fmt.Fprintf(w, "### Token acquisition: managed identity (App Service protocol, local endpoint)\n\n")
	fmt.Fprintf(w, "| Credential | cold burst of %d concurrent calls: endpoint requests | burst wall time | %s sequential calls: endpoint requests | warm GetToken | allocs/op |\n",
		cfg.Burst, thousands(float64(cfg.Sequential)))
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|\n")
	for _, r := range t.Results {
		errs := ""
		if r.BurstErrors > 0 || r.SeqErrors > 0 {
			errs = fmt.Sprintf(" ⚠ %d burst / %d sequential errors", r.BurstErrors, r.SeqErrors)
		}
		fmt.Fprintf(w, "| %s%s | %d | %s | %d | %.0f ns/op | %.1f |\n", r.Name, errs, r.BurstRequests, ms(r.BurstWall), r.SeqRequests, r.WarmNsOp, r.WarmAllocsOp)
	}
	fmt.Fprintf(w, "\nEach measurement uses its own fresh credential and its own resource (%s), because MSAL caches "+
		"managed-identity tokens process-globally by resource; a shared resource would let one measurement warm the next. "+
		"Warm path: a timed loop of GetToken on the warmed sequential credential; allocs/op from runtime.MemStats.\n\n",
		"`"+strings.Join(t.Scopes, "`, `")+"`")
}

// target is one line of the targets table.
type target struct {
	Name   string
	Result string
	Met    bool
}

// targets evaluates issue 6's targets on r.
func targets(r *results) []target {
	var out []target
	if h := r.HTTP; h != nil {
		for _, scenario := range []string{scenarioReused, scenarioDistinct} {
			var am, base *summary
			var peers []summary
			for i, s := range h.Summaries {
				if s.Scenario != scenario {
					continue
				}
				switch s.Contender {
				case nameAuthmw:
					am = &h.Summaries[i]
				case nameNoAuth:
					base = &h.Summaries[i]
				case nameGoOIDC, nameEchoJWT:
					peers = append(peers, s)
				}
			}
			if am == nil {
				continue
			}
			if scenario == scenarioReused {
				out = append(out, target{
					Name:   "Reused token: authmw ≥ 0.90 of no auth",
					Result: fmt.Sprintf("%.2f (%s vs %s req/s); by CPU per request %s; median of per-round ratios %s", am.Ratio, thousands(am.RPS), thousands(am.RPS/max(am.Ratio, 1e-9)), cpuRatio(base, am), medianRatio(am, base)),
					Met:    am.Ratio >= 0.90 && am.ok(),
				})
			}
			for _, p := range peers {
				out = append(out, target{
					Name:   fmt.Sprintf("%s: authmw ahead of %s", capitalize(scenario), p.Contender),
					Result: fmt.Sprintf("%.2f× (%s vs %s req/s); by CPU per request %s; %s", am.RPS/max(p.RPS, 1e-9), thousands(am.RPS), thousands(p.RPS), cpuRatio(&p, am), roundsWon(am, &p)),
					Met:    am.RPS > p.RPS && am.ok(),
				})
			}
		}
	}
	if t := r.Tokens; t != nil {
		for _, tr := range t.Results {
			if tr.Name == nameTokencache {
				out = append(out, target{
					Name:   fmt.Sprintf("Cold burst of %d: exactly 1 endpoint request with tokencache", tr.BurstCalls),
					Result: fmt.Sprintf("%d request(s), %d errors", tr.BurstRequests, tr.BurstErrors),
					Met:    tr.BurstRequests == 1 && tr.BurstErrors == 0,
				})
			}
		}
	}
	return out
}

// cpuRatio is ref's CPU per request over c's: the throughput ratio c would
// reach against ref if each had the machine to itself (CPU-bound).
func cpuRatio(ref, c *summary) string {
	if ref == nil || c == nil || c.CPUPerReq <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f (%.1f vs %.1f µs)", float64(ref.CPUPerReq)/float64(c.CPUPerReq), float64(c.CPUPerReq)/1e3, float64(ref.CPUPerReq)/1e3)
}

// medianRatio is the median over rounds of c's req/s over ref's in the same
// round: less sensitive to a burst of other work during a few rounds.
func medianRatio(c, ref *summary) string {
	if c == nil || ref == nil || len(c.RoundRPS) == 0 || len(c.RoundRPS) != len(ref.RoundRPS) {
		return "n/a"
	}
	rs := make([]float64, len(c.RoundRPS))
	for i := range rs {
		rs[i] = c.RoundRPS[i] / max(ref.RoundRPS[i], 1e-9)
	}
	slices.Sort(rs)
	m := rs[len(rs)/2]
	if len(rs)%2 == 0 {
		m = (rs[len(rs)/2-1] + m) / 2
	}
	return fmt.Sprintf("%.2f", m)
}

// roundsWon counts the rounds in which c served more req/s than other.
func roundsWon(c, other *summary) string {
	if len(c.RoundRPS) != len(other.RoundRPS) {
		return ""
	}
	won := 0
	for i := range c.RoundRPS {
		if c.RoundRPS[i] > other.RoundRPS[i] {
			won++
		}
	}
	return fmt.Sprintf("ahead in %d of %d rounds (median per-round ratio %s)", won, len(c.RoundRPS), medianRatio(c, other))
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func writeTargets(w io.Writer, r *results) {
	ts := targets(r)
	if len(ts) == 0 {
		return
	}
	fmt.Fprintf(w, "### Targets (issue 6)\n\n| Target | Result | Met |\n|---|---|---|\n")
	for _, t := range ts {
		met := "yes"
		if !t.Met {
			met = "**no**"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.Name, t.Result, met)
	}
	fmt.Fprintln(w)
}
