package authmw

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/localidp"
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

// rogueClientID is a caller application that no policy in these tests allows.
const rogueClientID = "66666666-7777-8888-9999-000000000000"

// rogueToken is a valid token of the same issuer and audience, carrying the role
// the policies require, but from rogueClientID.
func (e *testEnv) rogueToken() string {
	id := localidp.Identity{ClientID: rogueClientID, ObjectID: "bbbbbbbb-cccc-dddd-eeee-ffffffffffff",
		AppRoles: map[string][]string{testAudience: {"Callee.Invoke"}}}
	return e.mint(e.idp.AccessTokenClaims(id, testAudience, 2))
}

// policyFileEnv starts the real Middleware against a real issuer on loopback, with
// a policy file holding aadValidation (the azureActiveDirectory "validation" object)
// and f2fauth, watched every 10 ms. The environment adds no rule of its own.
func policyFileEnv(t *testing.T, aadValidation, f2fauth string) (*testEnv, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "authsettings.json")
	writePolicyDoc(t, path, aadValidation, f2fauth)
	e := newEnv(t, func(c *Config) {
		c.Policy.InsecureAllowAnyCaller = false
		c.PolicyFile = path
		c.PolicyFileInterval = 10 * time.Millisecond
	})
	return e, path
}

func writePolicyDoc(t *testing.T, path, aadValidation, f2fauth string) {
	t.Helper()
	writeRawPolicyDoc(t, path, `{"properties": {"identityProviders": {"azureActiveDirectory": {"validation": `+aadValidation+`}},
	  "f2fauth": `+f2fauth+`}}`)
}

// writeRawPolicyDoc replaces the file at path with body, atomically.
func writeRawPolicyDoc(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// wantStatus checks one request's status and reason.
func (e *testEnv) wantStatus(what, tok string, status int, reason Reason) {
	e.t.Helper()
	if r := e.get(tok); r.status != status || reasonOf(r) != reason {
		e.t.Errorf("%s: %d %q, want %d %q", what, r.status, reasonOf(r), status, reason)
	}
}

const (
	appsLegit = `{"defaultAuthorizationPolicy": {"allowedApplications": ["` + testClientID + `"]}}`
	noF2F     = `{}`
)

// Finding 3: "allowedApplications": [] (the README's way to revoke the last caller)
// means nobody; it used to switch the check off, letting every application in.
func TestPolicyFileEmptiedAllowListMeansNobody(t *testing.T) {
	e, path := policyFileEnv(t, appsLegit, noF2F)
	legit, rogue := e.mint(e.claims(2)), e.rogueToken()
	e.wantStatus("legit caller before", legit, 200, "")
	e.wantStatus("rogue caller before", rogue, 403, ReasonApplicationNotAllowed)

	writePolicyDoc(t, path, `{"defaultAuthorizationPolicy": {"allowedApplications": []}}`, noF2F)
	coreWaitUntil(t, "the emptied list to revoke the legit caller (cached token too)", func() bool { return e.get(legit).status == 403 })
	e.wantStatus("rogue caller after", rogue, 403, ReasonApplicationNotAllowed)
	if got := e.m.Policy().AllowedApplications; got == nil || len(got) != 0 {
		t.Errorf("AllowedApplications = %#v, want empty and non-nil", got)
	}
}

// Finding 3: a reload the strict parser or the turn-off rule refuses keeps the old
// policy, and the warning names the key; the rogue caller stays out.
func TestPolicyFileReloadRefused(t *testing.T) {
	tests := []struct {
		name       string
		validation string
		f2fauth    string
		logWant    string
	}{
		{"misspelt key", `{"defaultAuthorizationPolicy": {"allowedApplication": ["` + rogueClientID + `"]}}`, noF2F,
			`unknown key \"properties.identityProviders.azureActiveDirectory.validation.defaultAuthorizationPolicy.allowedApplication\"`},
		{"case-variant duplicate after the real key", `{"defaultAuthorizationPolicy": {"allowedApplications": ["` + testClientID + `"],
			"ALLOWEDAPPLICATIONS": []}}`, noF2F, `ALLOWEDAPPLICATIONS\" is given twice`},
		{"check removed, another rule kept", `{}`, `{"requiredRoles": ["Callee.Invoke"]}`,
			`turn off the check of validation.defaultAuthorizationPolicy.allowedApplications (AUTHMW_ALLOWED_APPLICATIONS)`},
		{"protected path excluded (adversarial review)", "", noF2F,
			`turn off the check of globalValidation.excludedPaths (AUTHMW_EXCLUDED_PATHS) \"/api/*\"`},
		{"unknown f2fauth key", `{"defaultAuthorizationPolicy": {"allowedApplications": ["` + testClientID + `"]}}`,
			`{"requiredRoles": ["Callee.Invoke"], "allowedApps": ["` + rogueClientID + `"]}`, `unknown key \"properties.f2fauth.allowedApps\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, path := policyFileEnv(t, appsLegit, noF2F)
			legit, rogue := e.mint(e.claims(2)), e.rogueToken()
			e.wantStatus("rogue caller before", rogue, 403, ReasonApplicationNotAllowed)

			if tt.validation == "" { // the legit policy, with the API excluded
				writeRawPolicyDoc(t, path, `{"properties": {"globalValidation": {"excludedPaths": ["/api/*"]},
				  "identityProviders": {"azureActiveDirectory": {"validation": `+appsLegit+`}}}}`)
			} else {
				writePolicyDoc(t, path, tt.validation, tt.f2fauth)
			}
			coreWaitUntil(t, "the refusal to be logged", func() bool { return strings.Contains(e.logs.String(), tt.logWant) })
			if !strings.Contains(e.logs.String(), "level=WARN") {
				t.Errorf("refusal not logged at WARN:\n%s", e.logs)
			}
			e.wantStatus("rogue caller after", rogue, 403, ReasonApplicationNotAllowed)
			e.wantStatus("legit caller after", legit, 200, "")
			e.wantStatus("no token after", "", 401, ReasonMissingToken)
		})
	}
}

// Finding 3: at startup, a policy with no authorization rule is refused, unless the
// insecure setting says any caller with a token for the audience may pass.
func TestPolicyFileWithoutRuleRefusedAtStartup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authsettings.json")
	writePolicyDoc(t, path, `{"defaultAuthorizationPolicy": {}}`, noF2F)
	idp, err := localidp.Start(localidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	pol := Policy{TenantID: idp.TenantID(), AuthorityHost: idp.AuthorityURL(), Audiences: []string{testAudience}}
	m, err := New(t.Context(), Config{Policy: pol, PolicyFile: path})
	if err == nil {
		m.Close()
		t.Fatal("New accepted a policy without any authorization rule")
	}
	if !strings.Contains(err.Error(), "no authorization rule") || !strings.Contains(err.Error(), "InsecureAllowAnyCaller") ||
		strings.Count(err.Error(), "authmw:") != 1 {
		t.Errorf("error = %v, want one prefix and the rule named", err)
	}
	pol.InsecureAllowAnyCaller = true
	m, err = New(t.Context(), Config{Policy: pol, PolicyFile: path})
	if err != nil {
		t.Fatalf("New with InsecureAllowAnyCaller: %v", err)
	}
	m.Close()
}
