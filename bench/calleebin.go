package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/f2fauth/f2fauth/internal/localidp"
)

// The shipped callee binary as a contestant (issue 10): built from
// callee/functionapp exactly as deployed, started as the Functions host starts a
// custom handler (FUNCTIONS_CUSTOMHANDLER_PORT set, stdout and stderr read from
// pipes by this process and drained), with default settings besides the policy.

// Names of the two routes of the binary comparison.
const (
	nameBinReady = "callee binary: unauthenticated route (GET /)"
	nameBinAuth  = "callee binary: reused token (GET /api/ExclusiveFunction)"

	binReadyPath = "/"
	binAuthPath  = "/api/ExclusiveFunction"
	// binTarget is issue 10's bound: reused-token throughput ≥ 0.90× of the
	// binary's own unauthenticated route.
	binTarget = 0.90
)

// calleePackage is the import path of the shipped callee executable.
const calleePackage = "github.com/f2fauth/f2fauth/callee/functionapp"

// calleeBinary is the built callee executable, shared by every use in one run.
type calleeBinary struct {
	path     string
	dir      string
	prebuilt bool // given with -callee-bin: never removed
}

// calleeSettings are -callee-setting KEY=VALUE: app settings added to (or
// overriding) the binary's, to measure a non-default setting such as
// AUTHMW_AUDIT_ALLOWED=all.
var calleeSettings = map[string]string{}

// settingFlag parses repeated -callee-setting values.
type settingFlag struct{}

func (settingFlag) String() string { return "" }

func (settingFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	calleeSettings[k] = val
	return nil
}

// calleeBinPath is -callee-bin: a callee executable to measure instead of building
// one (a release build, or an older commit's for a before/after comparison).
var calleeBinPath string

var (
	buildOnce sync.Once
	built     *calleeBinary
	buildErr  error
)

// buildCallee builds callee/functionapp once per process (go build, default flags,
// as the deployment builds it) into a temporary directory.
func buildCallee(ctx context.Context) (*calleeBinary, error) {
	buildOnce.Do(func() {
		if calleeBinPath != "" {
			abs, err := filepath.Abs(calleeBinPath)
			if err != nil {
				buildErr = err
				return
			}
			built = &calleeBinary{path: abs, dir: filepath.Dir(abs), prebuilt: true}
			return
		}
		dir, err := os.MkdirTemp("", "f2fauth-bench-callee-")
		if err != nil {
			buildErr = err
			return
		}
		out := filepath.Join(dir, "handler")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, calleePackage)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build %s: %w\n%s", calleePackage, err, b)
			_ = os.RemoveAll(dir)
			return
		}
		built = &calleeBinary{path: out, dir: dir}
	})
	return built, buildErr
}

// removeCallee deletes the built executable; the next buildCallee builds afresh.
func removeCallee() {
	if built != nil && !built.prebuilt {
		_ = os.RemoveAll(built.dir)
	}
	buildOnce, built, buildErr = sync.Once{}, nil, nil
}

// calleeProc is one running callee process.
type calleeProc struct {
	cmd      *exec.Cmd
	url      string // http://127.0.0.1:PORT
	logBytes atomic.Int64
	logLines atomic.Int64
	drained  sync.WaitGroup
	tail     tailBuffer // last bytes of its output, for error messages
}

// tailBuffer keeps the last few KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) add(p []byte) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if n := len(t.buf); n > 4<<10 {
		t.buf = append(t.buf[:0], t.buf[n-4<<10:]...)
	}
	t.mu.Unlock()
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startCallee starts the callee binary with settings on top of this process's
// environment (less any AUTHMW_* / CALLEE_* variable it has), on a free port given in
// FUNCTIONS_CUSTOMHANDLER_PORT, with stdout and stderr on pipes that are drained
// (counted and discarded) as the Functions host drains them. It returns once GET /
// gets an HTTP answer.
func startCallee(ctx context.Context, bin *calleeBinary, settings map[string]string) (*calleeProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AUTHMW_") || strings.HasPrefix(kv, "CALLEE_") ||
			strings.HasPrefix(kv, "FUNCTIONS_CUSTOMHANDLER_PORT=") || strings.HasPrefix(kv, "PORT=") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range settings {
		if _, over := calleeSettings[k]; !over {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range calleeSettings {
		env = append(env, k+"="+v)
	}
	env = append(env, "FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(port))
	cmd := exec.Command(bin.path)
	cmd.Env = env
	cmd.Dir = bin.dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &calleeProc{cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port)}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start callee: %w", err)
	}
	for _, r := range []io.Reader{stdout, stderr} {
		p.drained.Go(func() {
			pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("contender", "drain")))
			buf := make([]byte, 64<<10)
			for {
				n, err := r.Read(buf)
				if n > 0 {
					p.logBytes.Add(int64(n))
					p.logLines.Add(int64(bytes.Count(buf[:n], []byte{'\n'})))
					p.tail.add(buf[:n])
				}
				if err != nil {
					return
				}
			}
		})
	}
	exited := make(chan struct{})
	go func() { p.drained.Wait(); close(exited) }()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			_ = cmd.Wait()
			return nil, fmt.Errorf("callee exited before it was ready (%v): %s", cmd.ProcessState, p.tail.String())
		default:
		}
		if st := statusOf(ctx, client, p.url+binReadyPath, ""); st > 0 { // listening (gateway mode protects / too)
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("callee not listening after 30 s: %s", p.tail.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitAllowed polls url with token until it answers 200 (the issuer's keys are
// loaded), for at most 30 s.
func (p *calleeProc) waitAllowed(ctx context.Context, client *http.Client, url, token string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := statusOf(ctx, client, url, token)
		if st == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("a valid token still got %d after 30 s: %s", st, p.tail.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cpu is the callee process's CPU time so far (user+system, from /proc).
func (p *calleeProc) cpu() time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which is in parentheses and may hold spaces).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck
}

// stop sends SIGTERM (as the host does), waits up to 10 s, then kills.
func (p *calleeProc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.drained.Wait(); _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// binResults is the outcome of the binary comparison.
type binResults struct {
	Ready, Auth   summary
	Rounds        int
	Duration      time.Duration
	Conns         int
	LogBytesReady float64 // log bytes per request on each route
	LogBytesAuth  float64
	LogLinesAuth  float64
	Pid           int
	SanityNotes   []string
	// Settings are the -callee-setting overrides; empty: default settings.
	Settings []string
}

// binPolicy is the callee's policy in the binary comparison: the HTTP table's.
func binPolicy(p *localidp.Platform) map[string]string {
	return map[string]string{
		"AUTHMW_TENANT_ID":            p.TenantID(),
		"AUTHMW_AUTHORITY_HOST":       p.AuthorityURL(),
		"AUTHMW_AUDIENCES":            calleeClientID,
		"AUTHMW_ALLOWED_APPLICATIONS": callerClientID,
		"AUTHMW_REQUIRED_ROLES":       requiredRole,
	}
}

// runBinary times the shipped callee binary's reused-token route against its own
// unauthenticated route (the host's readiness probe), interleaved round by round,
// with the same token on both (the unauthenticated route ignores it).
func runBinary(ctx context.Context, cfg Config, progress io.Writer) (*binResults, error) {
	bin, err := buildCallee(ctx)
	if err != nil {
		return nil, err
	}
	p, err := localidp.Start(localidp.Options{ResourceClientIDs: map[string]string{calleeResource: calleeClientID}})
	if err != nil {
		return nil, fmt.Errorf("localidp: %w", err)
	}
	defer p.Close()
	caller := localidp.Identity{Name: "bench-caller", ClientID: callerClientID, ObjectID: callerObjectID,
		AppRoles: map[string][]string{calleeResource: {requiredRole}}}
	token, err := p.Mint(p.AccessTokenClaims(caller, calleeResource, 2))
	if err != nil {
		return nil, err
	}
	rogue := caller
	rogue.ClientID = otherClientID
	rogueTok, err := p.Mint(p.AccessTokenClaims(rogue, calleeResource, 2))
	if err != nil {
		return nil, err
	}
	proc, err := startCallee(ctx, bin, binPolicy(p))
	if err != nil {
		return nil, err
	}
	defer proc.stop()
	client := newLoadClient(cfg.Conns)
	defer client.CloseIdleConnections()
	res := &binResults{Rounds: cfg.Rounds, Duration: cfg.Duration, Conns: cfg.Conns, Pid: proc.cmd.Process.Pid}
	for k, v := range calleeSettings {
		res.Settings = append(res.Settings, k+"="+v)
	}
	slices.Sort(res.Settings)
	if err := proc.waitAllowed(ctx, client, proc.url+binAuthPath, token); err != nil {
		return nil, err
	}
	var notes []string
	if st := statusOf(ctx, client, proc.url+binAuthPath, ""); st != http.StatusUnauthorized {
		notes = append(notes, fmt.Sprintf("no token got %d", st))
	}
	if st := statusOf(ctx, client, proc.url+binAuthPath, rogueTok); st != http.StatusForbidden {
		notes = append(notes, fmt.Sprintf("token of another application got %d", st))
	}
	res.SanityNotes = notes
	fmt.Fprintf(progress, "callee binary %s running as pid %d (profile it with: perf record -g -p %d)\n", bin.path, res.Pid, res.Pid)

	urls := []string{proc.url + binReadyPath, proc.url + binAuthPath}
	names := []string{nameBinReady, nameBinAuth}
	src := reusedSource(token)
	for _, u := range urls {
		drive(ctx, client, u, cfg.Conns, cfg.Warmup, src)
	}
	rounds := make([][]roundResult, 2)
	var logBytes, reqs [2]int64
	var logLines int64
	for r := range cfg.Rounds {
		for k := range 2 {
			i := (k + r) % 2
			b0, l0, c0 := proc.logBytes.Load(), proc.logLines.Load(), proc.cpu()
			rr := drive(ctx, client, urls[i], cfg.Conns, cfg.Duration, src)
			// Let the drain catch up with what the round wrote before counting it.
			time.Sleep(5 * time.Millisecond)
			rr.CPU += proc.cpu() - c0
			logBytes[i] += proc.logBytes.Load() - b0
			reqs[i] += rr.Requests
			if i == 1 {
				logLines += proc.logLines.Load() - l0
			}
			rounds[i] = append(rounds[i], rr)
			fmt.Fprintf(progress, "round %d/%d binary %-58s %8.0f req/s\n", r+1, cfg.Rounds, names[i], float64(rr.Requests)/rr.Elapsed.Seconds())
		}
	}
	res.Ready = summarize(nameBinReady, scenarioReused, rounds[0])
	res.Auth = summarize(nameBinAuth, scenarioReused, rounds[1])
	res.Ready.SanityFail = strings.Join(notes, "; ")
	res.Auth.SanityFail = res.Ready.SanityFail
	if reqs[0] > 0 {
		res.LogBytesReady = float64(logBytes[0]) / float64(reqs[0])
	}
	if reqs[1] > 0 {
		res.LogBytesAuth = float64(logBytes[1]) / float64(reqs[1])
		res.LogLinesAuth = float64(logLines) / float64(reqs[1])
	}
	if res.Ready.RPS > 0 {
		res.Ready.Ratio = 1
		res.Auth.Ratio = res.Auth.RPS / res.Ready.RPS
	}
	return res, nil
}

// binTargets evaluates issue 10's bound on the shipped binary.
func binTargets(b *binResults) []target {
	ok := b.Ready.ok() && b.Auth.ok()
	settings := "default settings"
	if len(b.Settings) > 0 {
		settings = "NOT the defaults: " + strings.Join(b.Settings, " ")
	}
	return []target{{
		Name: fmt.Sprintf("Shipped callee binary, %s: reused token ≥ %.2f× its unauthenticated route", settings, binTarget),
		Result: fmt.Sprintf("%.2f (%s vs %s req/s); per-round median %s; by CPU per request %s",
			b.Auth.Ratio, thousands(b.Auth.RPS), thousands(b.Ready.RPS), medianRatio(&b.Auth, &b.Ready), cpuRatio(&b.Ready, &b.Auth)),
		Met: ok && b.Auth.Ratio >= binTarget,
	}}
}

func writeBinary(w io.Writer, b *binResults) {
	fmt.Fprintf(w, "### The shipped callee binary (issue 10)\n\n")
	fmt.Fprintf(w, "%d round(s) × %v per route, routes interleaved (start rotated each round); %d workers on %d keep-alive connections; "+
		"`go build %s` started as the Functions host starts it (FUNCTIONS_CUSTOMHANDLER_PORT, default settings besides the AUTHMW_* policy of the HTTP table), "+
		"its stdout and stderr read from pipes and drained by this process; the same v2 token on both routes. CPU/req counts this process (load generator, drain) and the callee's.\n\n",
		b.Rounds, b.Duration, b.Conns, b.Conns, calleePackage)
	if len(b.Settings) > 0 {
		fmt.Fprintf(w, "⚠ Settings changed with -callee-setting: `%s`.\n\n", strings.Join(b.Settings, "`, `"))
	}
	fmt.Fprintf(w, "| Route | req/s | vs unauthenticated | p50 | p99 | CPU/req | log bytes/req | non-200 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range []struct {
		s   summary
		log float64
	}{{b.Ready, b.LogBytesReady}, {b.Auth, b.LogBytesAuth}} {
		s := x.s
		non200 := "0"
		if len(s.Non200) > 0 || s.Errors > 0 {
			non200 = fmt.Sprintf("**%v, %d transport errors** ⚠", s.Non200, s.Errors)
		}
		fmt.Fprintf(w, "| %s | %s | %.2f | %s | %s | %.1f µs | %.1f | %s |\n", s.Contender, thousands(s.RPS), s.Ratio, ms(s.P50), ms(s.P99), float64(s.CPUPerReq)/1e3, x.log, non200)
	}
	fmt.Fprintln(w)
	if len(b.SanityNotes) > 0 {
		fmt.Fprintf(w, "⚠ Checks FAILED before timing: %s.\n\n", strings.Join(b.SanityNotes, "; "))
	} else {
		fmt.Fprintf(w, "Before timing, the binary answered 200 to the valid token, 401 to no token and 403 to another application's token; "+
			"%.3f log lines per allowed request reached the pipe.\n\n", b.LogLinesAuth)
	}
	fmt.Fprintf(w, "| Target (issue 10) | Result | Met |\n|---|---|---|\n")
	for _, t := range binTargets(b) {
		met := "yes"
		if !t.Met {
			met = "**no**"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.Name, t.Result, met)
	}
	fmt.Fprintln(w)
}
