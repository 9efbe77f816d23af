package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/caller"
	"github.com/f2fauth/f2fauth/internal/e2e"
	"github.com/f2fauth/f2fauth/internal/localvault"
)

// The Key Vault identities are allowed by the callee too (TestMain reads registeredNames).
func init() {
	registeredNames = append(registeredNames, "kv-reader", "kv-unlisted")
}

const kvSecretName = "callee-api-key"

// startVault starts a local vault on the shared platform whose access list holds
// readers (object IDs), with one version of kvSecretName, and returns the caller
// settings that read it.
func startVault(t *testing.T, value string, readers ...string) (*localvault.Vault, string, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := localvault.Start(ctx, platform, localvault.Options{Name: "kv-e2e", Readers: readers})
	if err != nil {
		t.Fatalf("localvault.Start: %v", err)
	}
	t.Cleanup(v.Close)
	ver, err := v.SetSecret(kvSecretName, value)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "vault-ca.pem")
	if err := os.WriteFile(ca, v.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return v, ver, []string{
		caller.EnvKeyVaultURL + "=" + v.URL(),
		caller.EnvKeyVaultSecret + "=" + kvSecretName,
		caller.EnvKeyVaultCAFile + "=" + ca,
	}
}

func wantNoSecretValue(t *testing.T, res *e2e.Result, values ...string) {
	t.Helper()
	b, _ := json.Marshal(res.Response)
	for _, v := range values {
		if strings.Contains(string(b), v) {
			t.Errorf("invocation response contains the secret value")
		}
	}
}

// The real azsecrets client and the real managed-identity credential, in a caller child:
// it reads the secret through the same token cache as the callee call, sees a rotated
// version on the next run without a restart, and asks the identity endpoint once per
// resource. A caller not on the vault's access list gets 403 from the vault.
func TestKeyVaultReadThroughSharedCache(t *testing.T) {
	t.Parallel()
	const first, second = "first-value-5b1f", "rotated-value-9c2e"
	reader := newIdentity(t, "kv-reader", true)
	rogue := newIdentity(t, "kv-rogue", false)
	v, v1, env := startVault(t, first, reader.Identity().ObjectID)

	p := startCaller(t, reader, env...)
	check := func(wantVersion string) {
		t.Helper()
		res := invoke(t, p, false)
		wantRun200(t, res, reader)
		wantNoSecretValue(t, res, first, second)
		kv := res.Report().KeyVault
		if kv == nil || !kv.OK || kv.Status != http.StatusOK || kv.Name != kvSecretName || kv.Version != wantVersion {
			t.Fatalf("key vault report %+v; want 200 for %s version %s", kv, kvSecretName, wantVersion)
		}
		if !strings.Contains(strings.Join(res.Response.Logs, "\n"), "key vault answered 200: secret "+kvSecretName+" version "+wantVersion) {
			t.Errorf("invocation logs %q lack the key vault line", res.Response.Logs)
		}
	}
	check(v1)
	check(v1)
	v2, err := v.SetSecret(kvSecretName, second) // rotation: a new version
	if err != nil {
		t.Fatal(err)
	}
	check(v2) // seen on the next run, same process
	check(v2)

	// Once per resource, not once per run.
	if got := reader.IssuedFor(audience); got != 1 {
		t.Errorf("tokens issued for the callee = %d; want 1", got)
	}
	if got := reader.IssuedFor(localvault.Resource); got != 1 {
		t.Errorf("tokens issued for the vault = %d; want 1", got)
	}
	if got := reader.Requests(); got != 2 {
		t.Errorf("identity endpoint requests = %d; want 2 (one per resource)", got)
	}
	if s := v.Stats(); s.Served != 4 || s.Challenges != 1 {
		t.Errorf("vault stats %+v; want 4 served after a single challenge", s)
	}

	// The rogue caller: its own identity, not on the access list.
	rp := startCaller(t, rogue, env...)
	res := invoke(t, rp, false)
	wantNoSecretValue(t, res, first, second)
	kv := res.Report().KeyVault
	if res.Status != http.StatusBadGateway || kv == nil || kv.OK || kv.Status != http.StatusForbidden || kv.Code != "Forbidden" {
		t.Fatalf("rogue: status %d, key vault %+v; want a failed run with the vault's 403 Forbidden", res.Status, kv)
	}
	if got := rogue.IssuedFor(localvault.Resource); got != 1 {
		t.Errorf("rogue tokens issued for the vault = %d; want 1", got)
	}
}

// A caller the callee admits but the vault does not: the run fails (502) even though the
// callee answered 200, and the logs say why.
func TestKeyVaultDenialFailsTheRun(t *testing.T) {
	t.Parallel()
	m := newIdentity(t, "kv-unlisted", true)
	_, _, env := startVault(t, "unlisted-value-77aa")
	p := startCaller(t, m, env...)
	res := invoke(t, p, false)
	rep := res.Report()
	if res.Status != http.StatusBadGateway || !rep.OK || rep.KeyVault == nil || rep.KeyVault.Status != http.StatusForbidden {
		t.Fatalf("status %d, report %+v, key vault %+v; want 502 with callee 200 and vault 403", res.Status, rep, rep.KeyVault)
	}
	if !strings.Contains(strings.Join(res.Response.Logs, "\n"), "Key Vault Secrets User") {
		t.Errorf("logs %q do not say what to do", res.Response.Logs)
	}
}
