package main

import (
	"bytes"
	"context"
	"os"
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
