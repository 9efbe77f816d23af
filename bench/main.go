// Command bench compares f2fauth with the alternatives a user would otherwise
// pick, on one machine in one run, and prints the results as Markdown:
//
//   - HTTP: one echo server per contender on loopback (no auth, f2fauth authmw,
//     go-oidc's IDTokenVerifier in a plain middleware, labstack/echo-jwt with
//     MicahParks/keyfunc), all trusting one local Entra-like issuer and
//     enforcing the same policy, driven with keep-alive connections for a fixed
//     time, interleaved and repeated, with one token reused and with a distinct
//     token on every request;
//   - token acquisition: f2fauth tokencache vs azidentity's
//     ManagedIdentityCredential alone against a local App Service
//     managed-identity endpoint.
//
// Run it from bench/ with `go run .` (`go run . -h` lists the flags).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// Config is one run of the tool.
type Config struct {
	Duration time.Duration // per contender per round, reused-token scenario
	// DistinctDuration is per contender per round in the distinct-token
	// scenario, shorter because every request needs a freshly minted token.
	DistinctDuration time.Duration
	Rounds           int
	Conns            int // concurrent workers (= keep-alive connections) per contender
	Tokens           int // distinct-token pool, split evenly across rounds
	Warmup           time.Duration
	Burst            int // concurrent cold GetToken calls
	Sequential       int // sequential GetToken calls
	WarmTime         time.Duration
	Contenders       []string // names; no auth is always included
	Scenarios        []string
	SkipHTTP         bool
	SkipTokens       bool
	SkipGateway      bool
	SkipBinary       bool
	CPUProfile       string
}

func (c Config) has(scenario string) bool { return slices.Contains(c.Scenarios, scenario) }

// defaultConfig is the full run; quickConfig a smoke run of a few seconds.
func defaultConfig() Config {
	return Config{
		Duration: 600 * time.Millisecond, DistinctDuration: 100 * time.Millisecond, Rounds: 15, Conns: 8, Tokens: 30000, Warmup: 500 * time.Millisecond,
		Burst: 100, Sequential: 10000, WarmTime: time.Second,
		Contenders: slices.Clone(allContenders), Scenarios: []string{scenarioReused, scenarioDistinct},
	}
}

func quickConfig() Config {
	c := defaultConfig()
	c.Duration, c.DistinctDuration, c.Rounds, c.Tokens, c.Warmup, c.WarmTime = 300*time.Millisecond, 300*time.Millisecond, 1, 2000, 100*time.Millisecond, 200*time.Millisecond
	return c
}

func main() {
	if err := mainErr(os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func mainErr(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "smoke run: 1 round of 300 ms, 2000 distinct tokens, 200 ms warm path")
	d := defaultConfig()
	dur := fs.Duration("duration", 0, fmt.Sprintf("duration per contender per round (default %v; quick %v)", d.Duration, quickConfig().Duration))
	ddur := fs.Duration("distinct-duration", 0, fmt.Sprintf("duration per contender per round with distinct tokens (default %v; quick %v)", d.DistinctDuration, quickConfig().DistinctDuration))
	rounds := fs.Int("rounds", 0, fmt.Sprintf("rounds (default %d)", d.Rounds))
	conns := fs.Int("conns", d.Conns, "concurrent workers = keep-alive connections per contender")
	tokens := fs.Int("tokens", 0, fmt.Sprintf("distinct-token pool size, split across rounds; a round ends early when its share runs out (default %d)", d.Tokens))
	warmup := fs.Duration("warmup", 0, fmt.Sprintf("warm-up per contender before timing (default %v)", d.Warmup))
	burst := fs.Int("burst", d.Burst, "concurrent cold GetToken calls")
	seq := fs.Int("sequential", d.Sequential, "sequential GetToken calls")
	warmTime := fs.Duration("warmtime", 0, fmt.Sprintf("time spent measuring the warm GetToken path (default %v)", d.WarmTime))
	only := fs.String("contenders", "", "comma-separated subset of authmw,gooidc,echojwt (no auth always runs)")
	scen := fs.String("scenarios", "reused,distinct", "comma-separated subset of reused,distinct")
	skipHTTP := fs.Bool("skip-http", false, "skip the HTTP comparison")
	skipTokens := fs.Bool("skip-tokens", false, "skip the token-acquisition comparison")
	skipGateway := fs.Bool("skip-gateway", false, "skip the gateway-mode comparison (through the callee gateway vs straight to the upstream)")
	skipBinary := fs.Bool("skip-binary", false, "skip the shipped callee binary (reused token vs its unauthenticated route)")
	fs.Var(settingFlag{}, "callee-setting", "KEY=VALUE app setting for the callee binary (repeatable), e.g. AUTHMW_AUDIT_ALLOWED=all; the tables then no longer show the default settings")
	fs.StringVar(&calleeBinPath, "callee-bin", "", "measure this callee executable instead of building callee/functionapp (e.g. an older commit's, for a before/after comparison)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the timed HTTP rounds to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := d
	if *quick {
		cfg = quickConfig()
	}
	if *dur > 0 {
		cfg.Duration = *dur
	}
	if *ddur > 0 {
		cfg.DistinctDuration = *ddur
	}
	if *rounds > 0 {
		cfg.Rounds = *rounds
	}
	if *tokens > 0 {
		cfg.Tokens = *tokens
	}
	if *warmup > 0 {
		cfg.Warmup = *warmup
	}
	if *warmTime > 0 {
		cfg.WarmTime = *warmTime
	}
	cfg.Conns, cfg.Burst, cfg.Sequential = *conns, *burst, *seq
	cfg.SkipHTTP, cfg.SkipTokens, cfg.SkipGateway, cfg.SkipBinary, cfg.CPUProfile = *skipHTTP, *skipTokens, *skipGateway, *skipBinary, *cpuprofile
	if *only != "" {
		cfg.Contenders = []string{nameNoAuth}
		for k := range strings.SplitSeq(*only, ",") {
			name, ok := contenderKeys[strings.TrimSpace(k)]
			if !ok {
				return fmt.Errorf("-contenders: unknown contender %q (want authmw, gooidc, echojwt)", k)
			}
			if !slices.Contains(cfg.Contenders, name) {
				cfg.Contenders = append(cfg.Contenders, name)
			}
		}
		slices.SortFunc(cfg.Contenders, func(a, b string) int {
			return slices.Index(allContenders, a) - slices.Index(allContenders, b)
		})
	}
	cfg.Scenarios = nil
	for s := range strings.SplitSeq(*scen, ",") {
		switch strings.TrimSpace(s) {
		case "reused":
			cfg.Scenarios = append(cfg.Scenarios, scenarioReused)
		case "distinct":
			cfg.Scenarios = append(cfg.Scenarios, scenarioDistinct)
		default:
			return fmt.Errorf("-scenarios: unknown scenario %q (want reused, distinct)", s)
		}
	}
	if cfg.Conns < 1 || cfg.Rounds < 1 || cfg.Burst < 1 || cfg.Sequential < 1 {
		return fmt.Errorf("-conns, -rounds, -burst and -sequential must be at least 1")
	}
	if cfg.has(scenarioDistinct) && cfg.Tokens < cfg.Rounds*cfg.Conns {
		return fmt.Errorf("-tokens must be at least rounds × conns")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := run(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	writeReport(stdout, res)
	return nil
}

// results is everything one run produced.
type results struct {
	Cfg     Config
	HTTP    *httpResults
	Tokens  *tokenResults
	Gateway *gatewayResults
	Binary  *binResults
	Env     environment
}

func run(ctx context.Context, cfg Config, progress io.Writer) (*results, error) {
	res := &results{Cfg: cfg, Env: describeEnvironment()}
	defer removeCallee()
	var err error
	if !cfg.SkipHTTP {
		if res.HTTP, err = runHTTP(ctx, cfg, progress); err != nil {
			return nil, fmt.Errorf("HTTP comparison: %w", err)
		}
	}
	if !cfg.SkipTokens {
		if res.Tokens, err = runTokens(ctx, cfg, progress); err != nil {
			return nil, fmt.Errorf("token comparison: %w", err)
		}
	}
	if !cfg.SkipBinary {
		if res.Binary, err = runBinary(ctx, cfg, progress); err != nil {
			return nil, fmt.Errorf("callee binary: %w", err)
		}
	}
	if !cfg.SkipGateway {
		if res.Gateway, err = runGateway(ctx, cfg, progress); err != nil {
			return nil, fmt.Errorf("gateway comparison: %w", err)
		}
	}
	return res, nil
}

// startProfile starts a CPU profile when path is set.
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}
