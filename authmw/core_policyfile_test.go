package authmw

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func coreWritePolicyFile(t *testing.T, path, apps string) {
	t.Helper()
	body := `{"properties": {"identityProviders": {"azureActiveDirectory": {"validation": {
	  "defaultAuthorizationPolicy": {"allowedApplications": [` + apps + `]}}}}}}`
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestPolicyFileHotReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authsettings.json")
	coreWritePolicyFile(t, path, `"`+testClientID+`"`)
	e := newEnv(t, func(c *Config) {
		c.PolicyFile = path
		c.PolicyFileInterval = 10 * time.Millisecond
	})
	tok := e.mint(e.claims(1))
	if r := e.get(tok); r.status != 200 {
		t.Fatalf("allowed by the file: %d %s", r.status, r.body)
	}
	if got := e.m.Policy().AllowedApplications; len(got) != 1 || got[0] != testClientID {
		t.Fatalf("AllowedApplications = %v", got)
	}
	time.Sleep(20 * time.Millisecond) // a different mtime
	coreWritePolicyFile(t, path, `"someone-else"`)
	coreWaitUntil(t, "file change applied", func() bool { return e.get(tok).status == 403 })
	// An invalid file is ignored: the last good policy stays.
	time.Sleep(20 * time.Millisecond)
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if r := e.get(tok); r.status != 403 || reasonOf(r) != ReasonApplicationNotAllowed {
		t.Fatalf("after invalid file: %d %q", r.status, reasonOf(r))
	}
}

func coreWaitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
