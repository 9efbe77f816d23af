// Command local runs the whole of f2fauth on one machine, with nothing but Go: a local
// identity platform (OIDC issuer + managed-identity endpoints), the callee (in this
// process, on 127.0.0.1), and two callers running the same caller code as child
// processes — one registered (allowed application, assigned the app role) and one
// rogue (its own identity, not allowed) — each triggered on a timer the way the Azure
// Functions host triggers it, plus an unauthenticated probe.
//
//	go run ./deploy/local             # a round every 5 s while the next one starts within 30 s: 6 rounds
//	go run ./deploy/local -once       # one round, then exit
//	go run ./deploy/local -v          # also show the processes' JSON logs
//	go run ./deploy/local -gateway    # the callee as a gateway (CALLEE_UPSTREAM_URL) in front of a small app
//	go run ./deploy/local -keep-logs  # keep the JSON log files and print where they are
//
// With -gateway the callee runs in gateway mode in front of a small upstream app that
// reads only the X-MS-CLIENT-PRINCIPAL* headers: the same three outcomes, and the
// summary shows that only the registered caller's calls reached the app.
// Each caller also reads a secret from a local Key Vault with its managed identity, over
// the same token cache (only the registered caller is on the vault's access list), and
// the secret is rotated after the first round.
//
// It prints one line per call and a summary; the exit code is 0 only if the registered
// caller always got 200 (from the callee and the vault), the rogue caller 403 (from
// both), the probe 401, the rotated secret was seen without a restart and each identity
// endpoint was asked at most once per resource. Without -v the components' logs go to a
// temporary directory that is removed at exit unless -keep-logs is given.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/f2fauth/f2fauth/callee"
	"github.com/f2fauth/f2fauth/caller"
	"github.com/f2fauth/f2fauth/internal/e2e"
	"github.com/f2fauth/f2fauth/internal/localidp"
)

// The local run's fixed names: the callee's Application ID URI and app role, and the
// two callers' managed identities.
const (
	audience = "api://callee"
	appRole  = "Exclusive.Invoke"

	registeredName = "registered-caller"
	rogueName      = "rogue-caller"
	probeName      = "no token"
)

var (
	registeredID = localidp.Identity{
		Name:     registeredName,
		ClientID: "3f2a1c9e-5b7d-4e61-9a0c-1d2e3f4a5b01",
		ObjectID: "8c7b6a59-4d3e-4f21-8e0d-9c8b7a6f5e01",
		AppRoles: map[string][]string{audience: {appRole}},
	}
	rogueID = localidp.Identity{
		Name:     rogueName,
		ClientID: "d00dfeed-0bad-4bad-8bad-c0ffee000666",
		ObjectID: "0ddba11c-afe0-4bad-9bad-f00d00000666",
	}
)

func main() {
	e2e.MaybeRunChild() // child processes run the caller and never return
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	duration time.Duration
	interval time.Duration
	once     bool
	verbose  bool
	gateway  bool
	keepLogs bool
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to run before printing the summary")
	fs.DurationVar(&o.interval, "interval", 5*time.Second, "timer interval between rounds")
	fs.BoolVar(&o.once, "once", false, "run one round, then exit")
	fs.BoolVar(&o.verbose, "v", false, "show the identity platform's, callee's and callers' JSON logs on stderr")
	fs.BoolVar(&o.gateway, "gateway", false, "run the callee in gateway mode (CALLEE_UPSTREAM_URL) in front of a small app that reads only the X-MS-CLIENT-PRINCIPAL* headers")
	fs.BoolVar(&o.keepLogs, "keep-logs", false, "keep the components' JSON log files (without -v) and print their directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.interval <= 0 || o.duration <= 0 {
		fmt.Fprintln(stderr, "local: -interval and -duration must be positive")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := runLocal(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "local:", err)
		return 1
	}
	return code
}

// logSinks gives each component a writer for its JSON logs: prefixed lines on stderr
// with -v, else one file per component in a temporary directory.
type logSinks struct {
	verbose bool
	stderr  io.Writer
	dir     string
	mu      sync.Mutex
	files   []*os.File
}

func (l *logSinks) writer(name string) (io.Writer, error) {
	if l.verbose {
		return &prefixWriter{prefix: fmt.Sprintf("[%s] ", name), w: l.stderr, mu: &l.mu}, nil
	}
	f, err := os.Create(filepath.Join(l.dir, strings.ReplaceAll(name, " ", "-")+".log"))
	if err != nil {
		return nil, err
	}
	l.files = append(l.files, f)
	return f, nil
}

func (l *logSinks) close() {
	for _, f := range l.files {
		f.Close()
	}
}

// prefixWriter writes whole lines with a prefix, serialised across writers.
type prefixWriter struct {
	prefix string
	w      io.Writer
	mu     *sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// outcome is one call's result, as printed and counted.
type outcome struct {
	who    string
	status int    // the callee's HTTP status; 0 when it never answered
	reason string // problem reason or why there was no answer
	appID  string
	roles  []string
	keyID  string
	run    string               // how the Functions host would record the timer run
	kv     *caller.SecretReport // the run's Key Vault read; nil when none
}

func runLocal(ctx context.Context, o options, stdout, stderr io.Writer) (int, error) {
	sinks := &logSinks{verbose: o.verbose, stderr: stderr}
	if !o.verbose {
		dir, err := os.MkdirTemp("", "f2fauth-local-")
		if err != nil {
			return 1, err
		}
		sinks.dir = dir
		// Registered first, so it runs last: after the callers have stopped writing.
		defer func() {
			if o.keepLogs {
				fmt.Fprintf(stdout, "logs kept in %s\n", dir)
			} else {
				os.RemoveAll(dir)
			}
		}()
	}
	defer sinks.close()

	idpLog, err := sinks.writer("localidp")
	if err != nil {
		return 1, err
	}
	p, err := localidp.Start(localidp.Options{Logger: slog.New(slog.NewJSONHandler(idpLog, nil))})
	if err != nil {
		return 1, err
	}
	defer p.Close()
	reg, err := p.AddIdentity(registeredID)
	if err != nil {
		return 1, err
	}
	rogue, err := p.AddIdentity(rogueID)
	if err != nil {
		return 1, err
	}

	calleeLog, err := sinks.writer("callee")
	if err != nil {
		return 1, err
	}
	settings := e2e.CalleeSettings(p, audience, appRole, registeredID.ClientID)
	var app *upstreamApp
	if o.gateway {
		if app, err = startUpstreamApp(); err != nil {
			return 1, fmt.Errorf("start upstream app: %w", err)
		}
		defer app.close()
		settings[callee.EnvUpstreamURL] = app.URL
	}
	startCtx, cancelStart := context.WithTimeout(ctx, 30*time.Second)
	defer cancelStart()
	c, err := e2e.StartCallee(startCtx, settings, slog.New(slog.NewJSONHandler(calleeLog, nil)))
	if err != nil {
		return 1, fmt.Errorf("start callee: %w", err)
	}
	defer c.Stop()

	vault, err := startVaultDemo(startCtx, p, slog.New(slog.NewJSONHandler(idpLog, nil)), registeredID.ObjectID)
	if err != nil {
		return 1, fmt.Errorf("start key vault: %w", err)
	}
	defer vault.close()

	fmt.Fprintf(stdout, "f2fauth local run: identity platform, callee and two callers, all on 127.0.0.1\n")
	fmt.Fprintf(stdout, "  identity platform  %s (tenant %s)\n", p.AuthorityURL(), p.TenantID())
	if app != nil {
		fmt.Fprintf(stdout, "  upstream app       %s (reads only the X-MS-CLIENT-PRINCIPAL* headers; knows nothing about tokens)\n", app.URL)
		fmt.Fprintf(stdout, "  callee (gateway)   %s\n", c.URL)
		fmt.Fprintf(stdout, "    %s=%s\n", callee.EnvUpstreamURL, app.URL)
	} else {
		fmt.Fprintf(stdout, "  callee             %s\n", c.URL)
	}
	fmt.Fprintf(stdout, "    AUTHMW_AUDIENCES=%s AUTHMW_ALLOWED_APPLICATIONS=%s AUTHMW_REQUIRED_ROLES=%s\n",
		settings["AUTHMW_AUDIENCES"], settings["AUTHMW_ALLOWED_APPLICATIONS"], settings["AUTHMW_REQUIRED_ROLES"])
	vault.describe(stdout)

	type callerProc struct {
		name string
		mi   *localidp.ManagedIdentity
		proc *e2e.CallerProcess
	}
	callers := []*callerProc{{name: registeredName, mi: reg}, {name: rogueName, mi: rogue}}
	for _, cp := range callers {
		w, err := sinks.writer(cp.name)
		if err != nil {
			return 1, err
		}
		proc, err := e2e.StartCaller(startCtx, e2e.CallerSpec{
			Name:        cp.name,
			IdentityEnv: cp.mi.Env(),
			CalleeURL:   c.URL,
			Audience:    audience,
			Env:         append([]string{"CALLER_TIMEOUT=20s"}, vault.env()...),
			Stderr:      w,
		})
		if err != nil {
			return 1, fmt.Errorf("start %s: %w", cp.name, err)
		}
		defer proc.Stop()
		cp.proc = proc
		id := cp.mi.Identity()
		fmt.Fprintf(stdout, "  %-18s %s (pid %d, appId %s, roles on %s: [%s])\n", cp.name, proc.URL, proc.PID(), id.ClientID, audience, strings.Join(id.AppRoles[audience], ","))
	}
	switch {
	case sinks.dir != "" && o.keepLogs:
		fmt.Fprintf(stdout, "  logs               %s (kept after the run)\n", sinks.dir)
	case sinks.dir != "":
		fmt.Fprintf(stdout, "  logs               removed at exit (-keep-logs keeps them, -v shows them)\n")
	}
	fmt.Fprintln(stdout)

	expected := map[string]int{registeredName: 200, rogueName: 403, probeName: 401}
	counts := map[string]map[int]int{}
	mismatches, rounds := 0, 0
	record := func(oc outcome) {
		if counts[oc.who] == nil {
			counts[oc.who] = map[int]int{}
		}
		counts[oc.who][oc.status]++
		ok := oc.status == expected[oc.who]
		if !ok {
			mismatches++
		}
		fmt.Fprintln(stdout, formatLine(time.Now(), oc, ok))
		if oc.kv != nil {
			fmt.Fprintln(stdout, vault.record(time.Now(), oc.who, oc.kv))
		}
	}

	start := time.Now()
	ticker := time.NewTicker(o.interval)
	defer ticker.Stop()
	probeClient := &http.Client{Timeout: 10 * time.Second}
loop:
	for {
		rounds++
		for _, cp := range callers {
			oc, err := invoke(ctx, cp.proc)
			if err != nil {
				// A terminal's Ctrl-C reaches the children too: give this process's own
				// signal a moment before counting the error as a failure.
				waitInterrupt(ctx)
			}
			if ctx.Err() != nil {
				rounds--
				break loop
			}
			if err != nil {
				oc = outcome{who: cp.name, reason: err.Error(), run: "error"}
			}
			record(oc)
		}
		oc := probe(ctx, probeClient, c.URL)
		if ctx.Err() != nil {
			break loop
		}
		record(oc)
		if rounds == 1 {
			if err := vault.rotate(stdout); err != nil {
				return 1, err
			}
			if o.once { // show the rotation with one more run of the registered caller
				oc, err := invoke(ctx, callers[0].proc)
				if ctx.Err() != nil {
					break loop
				}
				if err != nil {
					oc = outcome{who: callers[0].name, reason: err.Error(), run: "error"}
				}
				record(oc)
			}
		}
		if o.once || lastRound(time.Since(start), o.interval, o.duration) {
			break
		}
		select {
		case <-ctx.Done():
			break loop
		case <-ticker.C:
		}
	}
	interrupted := ctx.Err() != nil

	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "summary: %d round(s) in %s%s\n", rounds, time.Since(start).Round(time.Second), map[bool]string{true: " (interrupted)", false: ""}[interrupted])
	for _, who := range []string{registeredName, rogueName, probeName} {
		var parts []string
		statuses := make([]int, 0, len(counts[who]))
		for s := range counts[who] {
			statuses = append(statuses, s)
		}
		sort.Ints(statuses)
		for _, s := range statuses {
			label := fmt.Sprint(s)
			if s == 0 {
				label = "no answer"
			}
			parts = append(parts, fmt.Sprintf("%s x%d", label, counts[who][s]))
		}
		if len(parts) == 0 {
			parts = []string{"no calls"}
		}
		fmt.Fprintf(stdout, "  %-18s %-22s (expected %d every time)\n", who, strings.Join(parts, ", "), expected[who])
	}
	if app != nil {
		reached := app.requests.Load()
		fmt.Fprintf(stdout, "  upstream app: %d request(s) reached it, all through the gateway (registered caller's 200s: %d)\n", reached, counts[registeredName][200])
		if reached != int64(counts[registeredName][200]) {
			fmt.Fprintln(stdout, "FAIL: the upstream app saw requests the gateway should have refused")
			return 1, nil
		}
	}
	vaultOK := vault.summary(stdout, map[string]*localidp.ManagedIdentity{registeredName: reg, rogueName: rogue})
	if mismatches == 0 && rounds > 0 && vaultOK {
		fmt.Fprintln(stdout, "PASS: only the registered caller got in, to the callee and to the vault; the code and the URL alone are not enough.")
		return 0, nil
	}
	fmt.Fprintf(stdout, "FAIL: %d call(s) did not get the expected status (key vault as expected: %v)\n", mismatches, vaultOK)
	return 1, nil
}

// lastRound reports whether the round that started elapsed after the first one is the
// last: the next would start after duration. With the defaults (5 s, 30 s) rounds start
// at 0, 5, …, 25 s: six rounds.
func lastRound(elapsed, interval, duration time.Duration) bool {
	return elapsed+interval > duration
}

// waitInterrupt waits up to half a second for ctx to end.
func waitInterrupt(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(500 * time.Millisecond):
	}
}

// invoke sends one timer invocation to a caller, like the host on a schedule occurrence.
func invoke(ctx context.Context, p *e2e.CallerProcess) (outcome, error) {
	res, err := p.Invoke(ctx, false)
	if err != nil {
		return outcome{}, err
	}
	rep := res.Report()
	oc := outcome{who: p.Name, status: rep.CalleeStatus, reason: rep.Reason, appID: rep.AppID, roles: rep.Roles, keyID: rep.KeyID, kv: rep.KeyVault}
	if res.Status >= 200 && res.Status < 300 {
		oc.run = "timer run succeeded"
	} else {
		oc.run = fmt.Sprintf("timer run failed: handler answered %d", res.Status)
	}
	return oc, nil
}

// probe calls the callee with no token at all.
func probe(ctx context.Context, client *http.Client, url string) outcome {
	oc := outcome{who: probeName}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		oc.reason = err.Error()
		return oc
	}
	resp, err := client.Do(req)
	if err != nil {
		oc.reason = err.Error()
		return oc
	}
	defer resp.Body.Close()
	oc.status = resp.StatusCode
	var body struct {
		Reason string `json:"reason"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	oc.reason = body.Reason
	return oc
}

// formatLine renders one call, e.g.
// "12:01:05 registered-caller -> callee: 200 OK (appId=…, roles=[Exclusive.Invoke])".
func formatLine(now time.Time, oc outcome, ok bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-17s -> callee: ", now.Format("15:04:05"), oc.who)
	if oc.status == 0 {
		b.WriteString("no answer")
	} else {
		fmt.Fprintf(&b, "%d %s", oc.status, http.StatusText(oc.status))
	}
	switch {
	case oc.status >= 200 && oc.status < 300 && oc.keyID == "":
		fmt.Fprintf(&b, " (appId=%s, roles=[%s])", oc.appID, strings.Join(oc.roles, ","))
	case oc.status >= 200 && oc.status < 300:
		fmt.Fprintf(&b, " (appId=%s, roles=[%s], kid=%s)", oc.appID, strings.Join(oc.roles, ","), oc.keyID)
	case oc.reason != "":
		fmt.Fprintf(&b, " %s", oc.reason)
	}
	if oc.run != "" {
		fmt.Fprintf(&b, "  [%s]", oc.run)
	}
	if !ok {
		b.WriteString("  <-- UNEXPECTED")
	}
	return b.String()
}
