package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/e2e"
)

// The callers are children re-executing this test binary, as they re-execute the
// deploy/local binary under go run.
func TestMain(m *testing.M) {
	e2e.MaybeRunChild()
	os.Exit(m.Run())
}

func TestOnceRound(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"-once", "-v"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	s := out.String()
	for _, want := range []string{
		"registered-caller -> callee: 200 OK (appId=" + registeredID.ClientID + ", roles=[Exclusive.Invoke]",
		"rogue-caller      -> callee: 403 Forbidden application_not_allowed",
		"no token          -> callee: 401 Unauthorized missing_token",
		"registered-caller -> key vault: 200 secret callee-api-key version ",
		"rogue-caller      -> key vault: 403 Forbidden",
		"key vault: secret callee-api-key rotated: new version ",
		"(new version, no restart)",
		"the new version was seen on the next run without a restart",
		"token requests to the identity endpoints: registered-caller 2 (api://callee 1, https://vault.azure.net 1), rogue-caller 2 (api://callee 1, https://vault.azure.net 1)",
		"PASS",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "eyJ") || strings.Contains(errOut.String(), "eyJ") {
		t.Error("output contains something token-shaped")
	}
	if strings.Contains(s, "local-secret-") || strings.Contains(errOut.String(), "local-secret-") {
		t.Error("output contains a secret value")
	}
}

func TestBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-interval", "0s"}, &out, &errOut); code != 2 {
		t.Errorf("-interval 0s: exit code %d; want 2", code)
	}
	if code := run([]string{"-nope"}, &out, &errOut); code != 2 {
		t.Errorf("unknown flag: exit code %d; want 2", code)
	}
}

// notifyWriter signals once a line containing want has been written.
type notifyWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	once sync.Once
	seen chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// Ctrl-C (here: cancelling the context NotifyContext would cancel) ends the run after
// the current call, stops the callers and still prints the summary.
func TestInterruptStopsCleanly(t *testing.T) {
	out := &notifyWriter{want: "no token          -> callee", seen: make(chan struct{})}
	var errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := runLocal(ctx, options{duration: time.Hour, interval: 50 * time.Millisecond, verbose: true}, out, &errOut)
		done <- result{code, err}
	}()
	select {
	case <-out.seen:
	case r := <-done:
		t.Fatalf("run ended before the first round completed: %+v\n%s", r, out.String())
	}
	cancel()
	r := <-done
	if r.err != nil || r.code != 0 {
		t.Fatalf("interrupted run: code %d err %v\n%s", r.code, r.err, out.String())
	}
	if s := out.String(); !strings.Contains(s, "(interrupted)") || !strings.Contains(s, "PASS") {
		t.Errorf("summary missing after interrupt:\n%s", s)
	}
	if !strings.Contains(errOut.String(), "caller: shutting down") {
		t.Errorf("callers were not shut down gracefully; stderr:\n%s", errOut.String())
	}
}

// TestGatewayOnceRound: with -gateway the same three outcomes, and only the
// registered caller's call reaches the upstream app, which sees its identity.
func TestGatewayOnceRound(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"-once", "-gateway"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	s := out.String()
	for _, want := range []string{
		"upstream app       http://127.0.0.1:",
		"callee (gateway)   http://127.0.0.1:",
		"CALLEE_UPSTREAM_URL=http://127.0.0.1:",
		"registered-caller -> callee: 200 OK (appId=" + registeredID.ClientID + ", roles=[Exclusive.Invoke])",
		"rogue-caller      -> callee: 403 Forbidden application_not_allowed",
		"no token          -> callee: 401 Unauthorized missing_token",
		"upstream app: 2 request(s) reached it, all through the gateway (registered caller's 200s: 2)", // -once: one round plus the run after the secret rotation
		"PASS",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "eyJ") || strings.Contains(errOut.String(), "eyJ") {
		t.Error("output contains something token-shaped")
	}
}

// localDirs lists the run's log directories in dir.
func localDirs(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "f2fauth-local-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A run without -v removes its log directory at exit; with -keep-logs it keeps it,
// prints where it is, and the files hold the components' logs but nothing token-shaped.
func TestLogDirectoryRemovedUnlessKept(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // os.MkdirTemp("", …) creates the log directory here

	var out, errOut bytes.Buffer
	if code := run([]string{"-once"}, &out, &errOut); code != 0 {
		t.Fatalf("-once: exit code %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	if left := localDirs(t, tmp); len(left) != 0 {
		t.Errorf("-once left %v behind", left)
	}
	if !strings.Contains(out.String(), "removed at exit (-keep-logs keeps them") {
		t.Errorf("output does not say the logs are removed:\n%s", out.String())
	}

	out.Reset()
	errOut.Reset()
	if code := run([]string{"-once", "-keep-logs"}, &out, &errOut); code != 0 {
		t.Fatalf("-once -keep-logs: exit code %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	kept := localDirs(t, tmp)
	if len(kept) != 1 {
		t.Fatalf("-keep-logs: want one log directory in %s, got %v", tmp, kept)
	}
	if !strings.Contains(out.String(), "logs kept in "+kept[0]+"\n") {
		t.Errorf("output does not print the kept directory %s:\n%s", kept[0], out.String())
	}
	for _, name := range []string{"localidp.log", "callee.log", "registered-caller.log", "rogue-caller.log"} {
		b, err := os.ReadFile(filepath.Join(kept[0], name))
		if err != nil {
			t.Errorf("kept logs: %v", err)
			continue
		}
		if name == "callee.log" && !bytes.Contains(b, []byte(`"authmw decision"`)) {
			t.Errorf("%s has no audit record:\n%s", name, b)
		}
		if bytes.Contains(b, []byte("eyJ")) {
			t.Errorf("%s contains something token-shaped", name)
		}
	}
}

// flagDefaults runs -h and returns each flag's default as printed by the flag package
// ("" for flags without one, such as booleans that default to false).
func flagDefaults(t *testing.T) map[string]string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run([]string{"-h"}, &out, &errOut); code != 2 {
		t.Fatalf("-h: exit code %d; want 2", code)
	}
	defaults := map[string]string{}
	flagLine := regexp.MustCompile(`(?m)^  -([\w-]+)(?: \w+)?(?:\t|\n\s+)([^\n]*)$`)
	defaultOf := regexp.MustCompile(`\(default (\S+)\)$`)
	for _, m := range flagLine.FindAllStringSubmatch(errOut.String(), -1) {
		def := ""
		if d := defaultOf.FindStringSubmatch(m[2]); d != nil {
			def = d[1]
		}
		defaults[m[1]] = def
	}
	if len(defaults) == 0 {
		t.Fatalf("no flags in -h output:\n%s", errOut.String())
	}
	return defaults
}

// With the default flags a run has six rounds, the last starting 25 s after the first:
// the figures docs/local-run.md states. Ticks arrive just after each multiple of the
// interval (the ticker starts after the run's start time is taken).
func TestDefaultScheduleIsSixRoundsOver25s(t *testing.T) {
	d := flagDefaults(t)
	interval, err := time.ParseDuration(d["interval"])
	if err != nil {
		t.Fatalf("-interval default %q: %v", d["interval"], err)
	}
	duration, err := time.ParseDuration(d["duration"])
	if err != nil {
		t.Fatalf("-duration default %q: %v", d["duration"], err)
	}
	rounds, last := 0, time.Duration(0)
	for k := time.Duration(0); rounds < 100; k++ {
		rounds++
		last = k * interval
		if lastRound(last+time.Millisecond, interval, duration) {
			break
		}
	}
	if rounds != 6 || last != 25*time.Second {
		t.Errorf("defaults -interval %s -duration %s: %d rounds, the last at %s; docs/local-run.md says 6 rounds, the last at 25 s", interval, duration, rounds, last)
	}
}

// docs/local-run.md documents every flag with its default, and the default schedule.
func TestLocalRunDocMatchesFlags(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "local-run.md"))
	if err != nil {
		t.Fatalf("read docs/local-run.md: %v", err)
	}
	doc := string(b)
	for name, def := range flagDefaults(t) {
		row := regexp.MustCompile("(?m)^\\| `-" + regexp.QuoteMeta(name) + "[` ][^\n]*$").FindString(doc)
		if row == "" {
			t.Errorf("docs/local-run.md has no table row for -%s", name)
			continue
		}
		if def != "" && !strings.Contains(row, "`"+def+"`") {
			t.Errorf("docs/local-run.md's row for -%s does not give its default `%s`: %s", name, def, row)
		}
	}
	for _, want := range []string{"6 rounds", "25 s"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/local-run.md does not state %q", want)
		}
	}
}
