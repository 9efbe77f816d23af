package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/f2fauth/f2fauth/callee"
	"github.com/f2fauth/f2fauth/internal/localidp"
)

// Names of the two paths of the gateway comparison.
const (
	nameDirect     = "straight to the upstream"
	nameGateway    = "through the callee gateway"
	nameGatewayBin = "through the callee binary in gateway mode"

	gatewayPath   = "/api/data"
	gatewayWhoAmI = "/whoami"
	// gatewayTarget is issue 12's bound: the gateway costs at most 1.5× the direct call.
	gatewayTarget = 1.5
)

// gatewayResults is the outcome of the gateway comparison.
type gatewayResults struct {
	Direct, Gateway summary
	// Binary is the shipped callee executable in gateway mode (default settings,
	// logs on pipes drained by this process); zero when -skip-binary.
	Binary      summary
	Rounds      int
	Duration    time.Duration
	Conns       int
	SanityNotes []string
	// UpstreamConns is how many connections the upstream accepted during the timed
	// rounds: 0 when every path reused its keep-alive connections.
	UpstreamConns int64
	// BinaryLogLines is how many log lines the binary wrote to its pipes during
	// its timed rounds.
	BinaryLogLines int64
}

// upstreamConns counts the connections the trivial upstream accepted.
var upstreamConns atomic.Int64

// trivialBody is the upstream's whole answer.
var trivialBody = []byte(`{"ok":true}`)

// gatewayStack is a trivial upstream and the callee in gateway mode in front of it.
type gatewayStack struct {
	upstreamURL, gatewayURL string
	token, rogue            string
	close                   func()
}

// startGatewayStack starts the trivial upstream (net/http, answers trivialBody; on
// gatewayWhoAmI, the X-MS-CLIENT-PRINCIPAL-ID it got) and the callee, configured
// through its real settings, with CALLEE_UPSTREAM_URL pointing at it.
func startGatewayStack(ctx context.Context, p *localidp.Platform) (*gatewayStack, error) {
	caller := localidp.Identity{Name: "bench-caller", ClientID: callerClientID, ObjectID: callerObjectID,
		AppRoles: map[string][]string{calleeResource: {requiredRole}}}
	rogue := caller
	rogue.ClientID = otherClientID
	s := &gatewayStack{}
	var err error
	if s.token, err = p.Mint(p.AccessTokenClaims(caller, calleeResource, 2)); err != nil {
		return nil, err
	}
	if s.rogue, err = p.Mint(p.AccessTokenClaims(rogue, calleeResource, 2)); err != nil {
		return nil, err
	}
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	up := &http.Server{ReadHeaderTimeout: 10 * time.Second, ConnState: func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			upstreamConns.Add(1)
		}
	}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == gatewayWhoAmI {
			io.WriteString(w, r.Header.Get("X-Ms-Client-Principal-Id"))
			return
		}
		w.Write(trivialBody)
	})}
	go pprof.Do(context.Background(), pprof.Labels("contender", "upstream"), func(context.Context) { _ = up.Serve(uln) })
	s.upstreamURL = "http://" + uln.Addr().String()

	env := map[string]string{
		"AUTHMW_TENANT_ID":            p.TenantID(),
		"AUTHMW_AUTHORITY_HOST":       p.AuthorityURL(),
		"AUTHMW_AUDIENCES":            calleeClientID,
		"AUTHMW_ALLOWED_APPLICATIONS": callerClientID,
		"AUTHMW_REQUIRED_ROLES":       requiredRole,
		callee.EnvUpstreamURL:         s.upstreamURL,
	}
	srv, err := callee.NewServer(ctx, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, slog.New(slog.DiscardHandler))
	if err != nil {
		up.Close()
		return nil, err
	}
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		up.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go pprof.Do(context.Background(), pprof.Labels("contender", "gateway"), func(context.Context) { done <- srv.Serve(sctx, gln) })
	s.gatewayURL = "http://" + gln.Addr().String()
	s.close = func() {
		cancel()
		<-done
		srv.Close()
		up.Close()
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := srv.WaitReady(wctx); err != nil {
		s.close()
		return nil, fmt.Errorf("gateway keys not loaded: %w", err)
	}
	return s, nil
}

// gatewaySanity proves the gateway enforces the policy and forwards the identity
// before it is timed.
func gatewaySanity(ctx context.Context, client *http.Client, s *gatewayStack) error {
	get := func(url, token string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return -1, ""
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return -1, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return resp.StatusCode, string(b)
	}
	var errs []error
	if st, body := get(s.gatewayURL+gatewayWhoAmI, s.token); st != 200 || body != callerObjectID {
		errs = append(errs, fmt.Errorf("valid token: %d, upstream saw principal %q", st, body))
	}
	if st, _ := get(s.gatewayURL+gatewayPath, ""); st != http.StatusUnauthorized {
		errs = append(errs, fmt.Errorf("no token got %d", st))
	}
	if st, _ := get(s.gatewayURL+gatewayPath, s.rogue); st != http.StatusForbidden {
		errs = append(errs, fmt.Errorf("token of another application got %d", st))
	}
	if st, body := get(s.upstreamURL+gatewayPath, s.token); st != 200 || body != string(trivialBody) {
		errs = append(errs, fmt.Errorf("direct call got %d", st))
	}
	return errors.Join(errs...)
}

// runGateway times the same reused-token request sent straight to a trivial upstream
// and through the callee in gateway mode, interleaved round by round.
func runGateway(ctx context.Context, cfg Config, progress io.Writer) (*gatewayResults, error) {
	p, err := localidp.Start(localidp.Options{ResourceClientIDs: map[string]string{calleeResource: calleeClientID}})
	if err != nil {
		return nil, fmt.Errorf("localidp: %w", err)
	}
	defer p.Close()
	s, err := startGatewayStack(ctx, p)
	if err != nil {
		return nil, err
	}
	defer s.close()
	client := newLoadClient(cfg.Conns)
	defer client.CloseIdleConnections()
	res := &gatewayResults{Rounds: cfg.Rounds, Duration: cfg.Duration, Conns: cfg.Conns}
	if err := gatewaySanity(ctx, client, s); err != nil {
		res.SanityNotes = append(res.SanityNotes, err.Error())
	}
	urls := []string{s.upstreamURL + gatewayPath, s.gatewayURL + gatewayPath}
	names := []string{nameDirect, nameGateway}
	var proc *calleeProc
	if !cfg.SkipBinary {
		// The shipped executable in gateway mode, in front of the same upstream.
		bin, err := buildCallee(ctx)
		if err != nil {
			return nil, err
		}
		settings := binPolicy(p)
		settings["CALLEE_UPSTREAM_URL"] = s.upstreamURL
		if proc, err = startCallee(ctx, bin, settings); err != nil {
			return nil, fmt.Errorf("callee binary in gateway mode: %w", err)
		}
		defer proc.stop()
		if err := proc.waitAllowed(ctx, client, proc.url+gatewayPath, s.token); err != nil {
			return nil, fmt.Errorf("callee binary in gateway mode: %w", err)
		}
		bs := &gatewayStack{upstreamURL: s.upstreamURL, gatewayURL: proc.url, token: s.token, rogue: s.rogue}
		if err := gatewaySanity(ctx, client, bs); err != nil {
			res.SanityNotes = append(res.SanityNotes, "binary: "+err.Error())
		}
		urls = append(urls, proc.url+gatewayPath)
		names = append(names, nameGatewayBin)
		fmt.Fprintf(progress, "callee binary in gateway mode running as pid %d\n", proc.cmd.Process.Pid)
	}
	src := reusedSource(s.token)
	for _, u := range urls {
		drive(ctx, client, u, cfg.Conns, cfg.Warmup, src)
	}
	// Without the HTTP table, -cpuprofile covers these rounds.
	if cfg.SkipHTTP {
		stopProfile, err := startProfile(cfg.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer stopProfile()
	}
	conns0 := upstreamConns.Load()
	rounds := make([][]roundResult, len(urls))
	for r := range cfg.Rounds {
		for k := range urls {
			i := (k + r) % len(urls)
			var c0 time.Duration
			var l0 int64
			if i == 2 {
				c0, l0 = proc.cpu(), proc.logLines.Load()
			}
			rr := drive(ctx, client, urls[i], cfg.Conns, cfg.Duration, src)
			if i == 2 {
				time.Sleep(5 * time.Millisecond) // let the drain catch up
				rr.CPU += proc.cpu() - c0
				res.BinaryLogLines += proc.logLines.Load() - l0
			}
			rounds[i] = append(rounds[i], rr)
			fmt.Fprintf(progress, "round %d/%d gateway %-42s %8.0f req/s\n", r+1, cfg.Rounds, names[i], float64(rr.Requests)/rr.Elapsed.Seconds())
		}
	}
	res.UpstreamConns = upstreamConns.Load() - conns0
	sums := make([]summary, len(urls))
	for i := range urls {
		sums[i] = summarize(names[i], scenarioReused, rounds[i])
		sums[i].SanityFail = strings.Join(res.SanityNotes, "; ")
		if sums[0].RPS > 0 {
			sums[i].Ratio = sums[i].RPS / sums[0].RPS
		}
	}
	res.Direct, res.Gateway = sums[0], sums[1]
	if len(sums) > 2 {
		res.Binary = sums[2]
	}
	return res, nil
}

// gatewayTargets evaluates issue 12's bound: p50 latency and throughput through the
// gateway within gatewayTarget× of the direct call.
func gatewayTargets(g *gatewayResults) []target {
	var out []target
	for _, gw := range []summary{g.Gateway, g.Binary} {
		if gw.Requests == 0 {
			continue
		}
		d := g.Direct
		what := "Gateway"
		if gw.Contender == nameGatewayBin {
			what = "Gateway (shipped binary, logs on a pipe)"
		}
		lat := float64(gw.P50) / max(float64(d.P50), 1)
		thr := d.RPS / max(gw.RPS, 1e-9)
		// CPU per request must agree: on a busy machine the binary, a process of its
		// own, gets its own share of the cores, which can lift its req/s without the
		// request being any cheaper.
		cpu := float64(gw.CPUPerReq) / max(float64(d.CPUPerReq), 1)
		ok := d.ok() && gw.ok()
		out = append(out,
			target{
				Name:   fmt.Sprintf("%s p50 latency ≤ %.1f× direct", what, gatewayTarget),
				Result: fmt.Sprintf("%.2f× (%s vs %s)", lat, ms(gw.P50), ms(d.P50)),
				Met:    ok && lat <= gatewayTarget,
			},
			target{
				Name:   fmt.Sprintf("%s throughput ≥ direct / %.1f", what, gatewayTarget),
				Result: fmt.Sprintf("direct %.2f× the gateway (%s vs %s req/s); per-round median gateway/direct %s; by CPU per request %s", thr, thousands(d.RPS), thousands(gw.RPS), medianRatio(&gw, &d), cpuRatio(&d, &gw)),
				Met:    ok && thr <= gatewayTarget && cpu <= gatewayTarget,
			})
	}
	return out
}

func writeGateway(w io.Writer, g *gatewayResults) {
	fmt.Fprintf(w, "### Gateway mode: a reused-token request through the callee gateway vs straight to the upstream\n\n")
	fmt.Fprintf(w, "%d round(s) × %v per path, paths interleaved (start rotated each round); %d workers on %d keep-alive connections; "+
		"trivial net/http upstream answering %d bytes of JSON; the callee built by callee.NewServer from its settings "+
		"(CALLEE_UPSTREAM_URL, AUTHMW_* as in the HTTP table, logs discarded), v2 token, verified-token cache warm; the shipped binary, when listed, "+
		"is the built callee/functionapp in gateway mode with the same settings, logs on pipes drained by this process (CPU/req includes its process); "+
		"upstream, gateway and load generator share the machine's cores.\n\n",
		g.Rounds, g.Duration, g.Conns, g.Conns, len(trivialBody))
	if g.Binary.Requests > 0 && len(calleeSettings) > 0 {
		fmt.Fprintf(w, "⚠ The binary ran with settings changed by -callee-setting (%d of them), not the defaults.\n\n", len(calleeSettings))
	}
	fmt.Fprintf(w, "| Path | req/s | vs direct | p50 | p99 | CPU/req | non-200 |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range []summary{g.Direct, g.Gateway, g.Binary} {
		if s.Requests == 0 && s.Contender == "" {
			continue
		}
		non200 := "0"
		if len(s.Non200) > 0 || s.Errors > 0 {
			non200 = fmt.Sprintf("**%v, %d transport errors** ⚠", s.Non200, s.Errors)
		}
		fmt.Fprintf(w, "| %s | %s | %.2f | %s | %s | %.1f µs | %s |\n", s.Contender, thousands(s.RPS), s.Ratio, ms(s.P50), ms(s.P99), float64(s.CPUPerReq)/1e3, non200)
	}
	fmt.Fprintln(w)
	if len(g.SanityNotes) > 0 {
		fmt.Fprintf(w, "⚠ Checks FAILED before timing: %s.\n\n", strings.Join(g.SanityNotes, "; "))
	} else {
		fmt.Fprintf(w, "Before timing, the gateway answered 200 to a valid token (and the upstream saw the caller's X-MS-CLIENT-PRINCIPAL-ID), 401 to no token and 403 to another application's token. "+
			"The upstream accepted %d new connections during the timed rounds (keep-alive connections reused).", g.UpstreamConns)
		if g.Binary.Requests > 0 {
			fmt.Fprintf(w, " The binary wrote %d log lines for its %s timed requests.", g.BinaryLogLines, thousands(float64(g.Binary.Requests)))
		}
		fmt.Fprintf(w, "\n\n")
	}
	fmt.Fprintf(w, "| Target (issue 12) | Result | Met |\n|---|---|---|\n")
	for _, t := range gatewayTargets(g) {
		met := "yes"
		if !t.Met {
			met = "**no**"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.Name, t.Result, met)
	}
	fmt.Fprintf(w, "\nA throughput target counts as met only when CPU per request agrees (gateway CPU/req ≤ %.1f× direct): "+
		"on a busy machine a separate process gets its own share of the cores.\n\n", gatewayTarget)
}
