package authmw

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/testutil"
)

// syncBuffer collects log output from concurrent writers.
type syncBuffer = testutil.SyncBuffer

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func watchedDoc(roles string) string {
	return `{"identityProviders":{"azureActiveDirectory":{"registration":{"clientId":"` + tApp + `"}}},
		"f2fauth":{"requiredRoles":[` + roles + `]}}`
}

// replaceFile writes content atomically, as editors and ConfigMap updates do.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// applyRecorder is a policyTarget that records what it is given; its active policy
// is the last one applied, or initial.
type applyRecorder struct {
	mu       sync.Mutex
	policies []Policy
	fail     error
	initial  Policy
}

// newRecorder returns a recorder whose active policy is doc merged with override.
func newRecorder(t *testing.T, doc string, override Policy) *applyRecorder {
	t.Helper()
	fp, err := parseAuthSettingsV2([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := compilePolicy(mergePolicy(fp, override))
	if err != nil {
		t.Fatal(err)
	}
	return &applyRecorder{initial: cp.Policy}
}

func (a *applyRecorder) Policy() Policy {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.policies) == 0 {
		return a.initial
	}
	return a.policies[len(a.policies)-1]
}

func (a *applyRecorder) SetPolicy(p Policy) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.policies = append(a.policies, p)
	return nil
}

func (a *applyRecorder) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.policies)
}

func (a *applyRecorder) last() Policy {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.policies[len(a.policies)-1]
}

func TestPolicyWatcher(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	writeFile(t, path, watchedDoc(`"A"`))
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	override := Policy{TenantID: tTenant, AllowedTenants: []string{tTenant}}
	rec := newRecorder(t, watchedDoc(`"A"`), override)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	startPolicyWatcher(ctx, path, 10*time.Millisecond, override, rec, logger)

	// A valid change is applied, merged with the override.
	replaceFile(t, path, watchedDoc(`"B"`))
	waitFor(t, "the valid change to be applied", func() bool { return rec.count() == 1 })
	got := rec.last()
	if len(got.RequiredRoles) != 1 || got.RequiredRoles[0] != "B" || got.TenantID != tTenant ||
		len(got.AllowedTenants) != 1 || got.Audiences[0] != tApp {
		t.Errorf("applied policy = %+v, want roles [B] with the override's tenant", got)
	}

	// An in-place rewrite of the same size (mtime may not move) is seen through the hash.
	writeFile(t, path, watchedDoc(`"C"`))
	waitFor(t, "the same-size rewrite to be applied", func() bool { return rec.count() == 2 })
	if r := rec.last().RequiredRoles; r[0] != "C" {
		t.Errorf("roles = %v, want [C]", r)
	}

	// An invalid change (unparseable) is logged at Warn and not applied.
	replaceFile(t, path, `{"identityProviders":`)
	waitFor(t, "the warning about the broken file", func() bool { return strings.Contains(logs.String(), "level=WARN") })
	// A change that parses but is invalid as a whole is also rejected.
	replaceFile(t, path, `{"identityProviders":{"azureActiveDirectory":{"registration":{"clientId":"`+tApp+`"}}},"globalValidation":{"excludedPaths":["relative"]}}`)
	waitFor(t, "the warning about the invalid policy", func() bool {
		return strings.Contains(logs.String(), "AUTHMW_EXCLUDED_PATHS (or globalValidation.excludedPaths in AUTHMW_POLICY_FILE")
	})
	if strings.Contains(logs.String(), "Policy.") {
		t.Errorf("the warning names a Go field, not the setting:\n%s", logs)
	}
	// Then a valid change is applied again: the count proves the invalid ones were not.
	replaceFile(t, path, watchedDoc(`"D"`))
	waitFor(t, "the next valid change", func() bool { return rec.count() == 3 })
	if r := rec.last().RequiredRoles; r[0] != "D" {
		t.Errorf("roles = %v, want [D] (invalid changes must not be applied)", r)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Errorf("%d warnings, want 2 (one per bad content):\n%s", n, logs)
	}

	// A deleted file keeps the policy and warns; restoring it with new content applies it.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the warning about the missing file", func() bool { return strings.Count(logs.String(), "level=WARN") == 3 })
	replaceFile(t, path, watchedDoc(`"E"`))
	waitFor(t, "the restored file", func() bool { return rec.count() == 4 })

}

func TestPolicyWatcherStopsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	writeFile(t, path, watchedDoc(`"A"`))
	rec := newRecorder(t, watchedDoc(`"A"`), Policy{TenantID: tTenant})
	w := newPolicyWatcher(path, Policy{TenantID: tTenant}, rec, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.run(ctx, time.Millisecond); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

func TestPolicyWatcherApplyError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	writeFile(t, path, watchedDoc(`"A"`))
	logs := &syncBuffer{}
	rec := newRecorder(t, watchedDoc(`"A"`), Policy{TenantID: tTenant})
	rec.fail = errors.New("compile refused")
	startPolicyWatcher(t.Context(), path, 10*time.Millisecond, Policy{TenantID: tTenant}, rec,
		slog.New(slog.NewTextHandler(logs, nil)))
	replaceFile(t, path, watchedDoc(`"B"`))
	waitFor(t, "the warning about apply's error", func() bool { return strings.Contains(logs.String(), "compile refused") })
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("apply error not logged at Warn:\n%s", logs)
	}
}

func TestPolicyWatcherPoll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	writeFile(t, path, watchedDoc(`"A"`))
	logs := &syncBuffer{}
	rec := newRecorder(t, watchedDoc(`"A"`), Policy{TenantID: tTenant})
	w := newPolicyWatcher(path, Policy{TenantID: tTenant}, rec, slog.New(slog.NewTextHandler(logs, nil)))

	w.poll() // the content in force is not a change
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	w.poll() // touched, same content: not a change
	if n := rec.count(); n != 0 {
		t.Fatalf("apply called %d times for an unchanged file", n)
	}
	writeFile(t, path, watchedDoc(`"B"`))
	w.poll()
	w.poll()
	if n := rec.count(); n != 1 || rec.last().RequiredRoles[0] != "B" {
		t.Fatalf("apply called %d times; want once with [B]", n)
	}
	writeFile(t, path, `{not json}`)
	w.poll()
	w.poll() // the same bad content is reported once
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || rec.count() != 1 {
		t.Errorf("%d warnings and %d applies for one bad change, want 1 and 1:\n%s", n, rec.count(), logs)
	}
	if !strings.Contains(logs.String(), "line 1, column") || strings.Contains(logs.String(), "not json") {
		t.Errorf("warning should carry the parse error but not the file's content:\n%s", logs)
	}
	writeFile(t, path, watchedDoc(`"A"`)) // back to the first content: a change again
	w.poll()
	if n := rec.count(); n != 2 || rec.last().RequiredRoles[0] != "A" {
		t.Errorf("apply called %d times; want a second time with [A]", n)
	}
}

func TestPolicyWatcherMissingAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	rec := &applyRecorder{}
	w := newPolicyWatcher(path, Policy{TenantID: tTenant}, rec, nil)
	w.poll()
	writeFile(t, path, watchedDoc(`"A"`))
	w.poll()
	if rec.count() != 1 {
		t.Errorf("a file created after start was not applied")
	}
}

// Finding 3: a reload may narrow or change a check, never remove one.
func TestChecksTurnedOff(t *testing.T) {
	full := basePolicy()
	full.AllowedApplications = []string{tApp}
	full.AllowedIdentities = []string{tOID}
	full.AllowedTenants = []string{tTenant}
	full.RequiredRoles = []string{"r"}
	full.AppOnly = true
	full.MaxTokenAge = time.Hour
	full.BoundClaims = map[string][]string{"ver": {"2.0"}, "appidacr": {"2"}}
	full.UnauthenticatedAction = Return401
	full.ExcludedPaths = []string{"/health", "/public/*"}
	tests := []struct {
		name   string
		change func(*Policy)
		want   string // "" = allowed
	}{
		{"unchanged", func(*Policy) {}, ""},
		{"list emptied (nobody)", func(p *Policy) { p.AllowedApplications = []string{} }, ""},
		{"list changed", func(p *Policy) { p.RequiredRoles = []string{"other"} }, ""},
		{"identities swapped for groups", func(p *Policy) { p.AllowedIdentities, p.AllowedGroups = nil, []string{tGroup} }, ""},
		{"bound claim pattern changed", func(p *Policy) { p.BoundClaims = map[string][]string{"ver": {"1.0"}, "appidacr": {"1"}} }, ""},
		{"applications removed", func(p *Policy) { p.AllowedApplications = nil }, "AUTHMW_ALLOWED_APPLICATIONS"},
		{"principals removed", func(p *Policy) { p.AllowedIdentities = nil }, "AUTHMW_ALLOWED_IDENTITIES"},
		{"tenants removed", func(p *Policy) { p.AllowedTenants = nil }, "AUTHMW_ALLOWED_TENANTS"},
		{"roles removed", func(p *Policy) { p.RequiredRoles = nil }, "AUTHMW_REQUIRED_ROLES"},
		{"app-only off", func(p *Policy) { p.AppOnly = false }, "f2fauth.appOnly"},
		{"token age off", func(p *Policy) { p.MaxTokenAge = 0 }, "AUTHMW_MAX_TOKEN_AGE"},
		{"one bound claim removed", func(p *Policy) { delete(p.BoundClaims, "appidacr") }, `AUTHMW_BOUND_CLAIMS) "appidacr"`},
		{"anonymous allowed", func(p *Policy) { p.UnauthenticatedAction = AllowAnonymous }, "AUTHMW_UNAUTHENTICATED_ACTION"},
		{"everything excluded", func(p *Policy) { p.ExcludedPaths = []string{"/*"} }, "AUTHMW_EXCLUDED_PATHS"},
		// adversarial review: a reload excluding a protected path turned authentication off for it
		{"exclusions dropped", func(p *Policy) { p.ExcludedPaths = nil }, ""},
		{"exact path under an excluded prefix", func(p *Policy) { p.ExcludedPaths = []string{"/health", "/public/x", "/public/a/*"} }, ""},
		{"protected prefix excluded", func(p *Policy) { p.ExcludedPaths = append(p.ExcludedPaths, "/api/*") }, `AUTHMW_EXCLUDED_PATHS) "/api/*"`},
		{"protected path excluded", func(p *Policy) { p.ExcludedPaths = append(p.ExcludedPaths, "/api/ExclusiveFunction") }, `"/api/ExclusiveFunction"`},
		{"exact exclusion widened to a prefix", func(p *Policy) { p.ExcludedPaths = []string{"/health/*", "/public/*"} }, `"/health/*"`},
		{"sibling of an excluded prefix", func(p *Policy) { p.ExcludedPaths = []string{"/health", "/publicity"} }, `"/publicity"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := clonePolicy(full)
			tt.change(&next)
			off := strings.Join(checksTurnedOff(full, next, formatAuthSettingsV2), "; ")
			if (tt.want == "") != (off == "") || !strings.Contains(off, tt.want) {
				t.Errorf("checksTurnedOff = %q, want %q", off, tt.want)
			}
		})
	}
}
