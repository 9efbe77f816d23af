package authmw

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// auditRecords returns the audit lines of the text log, by outcome.
func auditRecords(logs string) map[string][]string {
	out := map[string][]string{}
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, `msg="`+auditMsg+`"`) {
			continue
		}
		for _, o := range []Outcome{OutcomeAllowed, OutcomeDenied, OutcomeExcluded, OutcomeAnonymous} {
			if strings.Contains(l, "outcome="+string(o)+" ") {
				out[string(o)] = append(out[string(o)], l)
			}
		}
	}
	return out
}

// TestAuditAllowed sends the same mix of requests under each AuditAllowed mode:
// a new token, three reuses of it, two denials, a reuse one second later, two
// requests to an excluded path. Denials are recorded in every mode; OnDecision sees
// every decision in every mode.
func TestAuditAllowed(t *testing.T) {
	tests := []struct {
		name                       string
		mode                       AuditMode
		allowed, denied, excluded  int
		wantInLast, notInAnyRecord string
	}{
		// Sample: the new token, the first reuse, the reuse a second later (which
		// counts the two reuses left out before it); one excluded record.
		{name: "default is sample", mode: "", allowed: 3, denied: 2, excluded: 1, wantInLast: "suppressed=2"},
		{name: "sample", mode: AuditSample, allowed: 3, denied: 2, excluded: 1, wantInLast: "suppressed=2"},
		{name: "all", mode: AuditAll, allowed: 5, denied: 2, excluded: 2, notInAnyRecord: "suppressed="},
		{name: "none", mode: AuditNone, allowed: 0, denied: 2, excluded: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.AuditAllowed = tt.mode
				c.Policy.ExcludedPaths = []string{"/health"}
			})
			tok := e.mint(e.claims(2))
			for range 4 {
				if r := e.get(tok); r.status != http.StatusOK {
					t.Fatalf("valid token: %d", r.status)
				}
			}
			for range 2 {
				if r := e.get("garbage"); r.status != http.StatusUnauthorized {
					t.Fatalf("garbage token: %d", r.status)
				}
			}
			e.clock.Advance(time.Second)
			if r := e.get(tok); r.status != http.StatusOK {
				t.Fatalf("valid token a second later: %d", r.status)
			}
			for range 2 {
				if r := e.do("/health", nil); r.status != http.StatusOK {
					t.Fatalf("excluded path: %d", r.status)
				}
			}
			recs := auditRecords(e.logs.String())
			if got := len(recs["allowed"]); got != tt.allowed {
				t.Errorf("%d allowed records, want %d:\n%s", got, tt.allowed, strings.Join(recs["allowed"], "\n"))
			}
			if got := len(recs["denied"]); got != tt.denied {
				t.Errorf("%d denied records, want %d", got, tt.denied)
			}
			if got := len(recs["excluded"]); got != tt.excluded {
				t.Errorf("%d excluded records, want %d", got, tt.excluded)
			}
			if a := recs["allowed"]; tt.wantInLast != "" && (len(a) == 0 || !strings.Contains(a[len(a)-1], tt.wantInLast)) {
				t.Errorf("last allowed record lacks %s: %v", tt.wantInLast, a)
			}
			if a := recs["allowed"]; tt.mode != AuditNone && (len(a) == 0 || !strings.Contains(a[0], "cached=false")) {
				t.Errorf("first allowed record is not the verification of the new token: %v", a)
			}
			if tt.notInAnyRecord != "" && strings.Contains(e.logs.String(), tt.notInAnyRecord) {
				t.Errorf("a record has %s:\n%s", tt.notInAnyRecord, e.logs.String())
			}
			e.mu.Lock()
			n := len(e.decisions)
			e.mu.Unlock()
			if n != 9 {
				t.Errorf("OnDecision saw %d decisions, want 9", n)
			}
		})
	}
}

// TestAuditAllowedSampleEveryNewToken: in sample mode every newly verified token
// gets its record, however many arrive within a second.
func TestAuditAllowedSampleEveryNewToken(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		c := e.claims(2)
		c["jti"] = "token-" + string(rune('a'+i))
		if r := e.get(e.mint(c)); r.status != http.StatusOK {
			t.Fatalf("token %d: %d", i, r.status)
		}
	}
	if got := len(auditRecords(e.logs.String())["allowed"]); got != 3 {
		t.Errorf("%d allowed records for 3 new tokens, want 3", got)
	}
}

func TestAuditAllowedSetting(t *testing.T) {
	tests := []struct {
		value string
		want  AuditMode
		err   string
	}{
		{value: "", want: ""},
		{value: "sample", want: AuditSample},
		{value: " ALL ", want: AuditAll},
		{value: "none", want: AuditNone},
		{value: "some", err: "AUTHMW_AUDIT_ALLOWED"},
		{value: "1", err: "sample (default"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			env := minimalEnv()
			env["AUTHMW_AUDIT_ALLOWED"] = tt.value
			c, err := ConfigFromEnv(envFunc(env))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("AUTHMW_AUDIT_ALLOWED=%q: error %v, want one containing %q", tt.value, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.AuditAllowed != tt.want {
				t.Errorf("AuditAllowed = %q, want %q", c.AuditAllowed, tt.want)
			}
		})
	}
	_, err := New(context.Background(), Config{AuditAllowed: "loud", Policy: Policy{Audiences: []string{"x"}, Issuers: []string{"https://issuer.example"}}})
	if err == nil || !strings.Contains(err.Error(), "Config.AuditAllowed") {
		t.Errorf("New with AuditAllowed loud: %v", err)
	}
}
