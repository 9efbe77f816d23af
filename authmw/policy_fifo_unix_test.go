//go:build unix

package authmw

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPolicyFileSwappedForPipe (adversarial review): a policy file replaced by a
// symbolic link to a named pipe blocked the watcher in open(2) for good, so every
// later change — a revocation included — was silently never applied; at start it
// hung New. A file that is not regular is now refused before it is opened.
func TestPolicyFileSwappedForPipe(t *testing.T) {
	e, path := policyFileEnv(t, appsLegit, noF2F)
	legit := e.mint(e.claims(2))
	e.wantStatus("legit caller before", legit, 200, "")

	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	link := path + ".link"
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link, path); err != nil {
		t.Fatal(err)
	}
	coreWaitUntil(t, "the pipe to be refused", func() bool { return strings.Contains(e.logs.String(), "not a regular file") })

	writePolicyDoc(t, path, `{"defaultAuthorizationPolicy": {"allowedApplications": []}}`, noF2F)
	coreWaitUntil(t, "the revocation to apply after the pipe", func() bool { return e.get(legit).status == 403 })

	// At start, the same file is a configuration error, not a hang.
	done := make(chan error, 1)
	go func() {
		m, err := New(t.Context(), Config{Policy: Policy{TenantID: tTenant, Audiences: []string{testAudience}, InsecureAllowAnyCaller: true}, PolicyFile: fifo})
		if m != nil {
			m.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("New with a pipe as policy file: %v", err)
		}
	case <-time.After(30 * time.Second): // a deadlock detector, not a timing assertion
		t.Fatal("New blocked on a pipe as policy file")
	}
}
