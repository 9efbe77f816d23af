package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/f2fauth/f2fauth/caller"
	"github.com/f2fauth/f2fauth/internal/localidp"
	"github.com/f2fauth/f2fauth/internal/localvault"
)

// kvSecretName is the secret both callers try to read on every run.
const kvSecretName = "callee-api-key"

// vaultDemo is the Key Vault part of the local run: a local vault whose access list
// holds only the registered caller's object ID (the local counterpart of the role
// assignment "Key Vault Secrets User" for the caller's identity only), a secret that is
// rotated (a new version added) after the first round, and the outcomes per caller.
type vaultDemo struct {
	v        *localvault.Vault
	dir      string // holds the vault's CA certificate for the callers
	versions []string
	counts   map[string]map[int]int
	seen     map[string][]string // who -> versions read, in order, without repeats
	wrong    int
	// readsAfterRotation counts the registered caller's successful reads after the
	// latest rotation (a run interrupted right after rotating has none).
	readsAfterRotation int
}

// kvExpected is the vault status each caller must get every time.
var kvExpected = map[string]int{registeredName: 200, rogueName: 403}

func startVaultDemo(ctx context.Context, p *localidp.Platform, logger *slog.Logger, readerOID string) (*vaultDemo, error) {
	v, err := localvault.Start(ctx, p, localvault.Options{Name: "kv-f2fauth-local", Readers: []string{readerOID}, Logger: logger})
	if err != nil {
		return nil, err
	}
	d := &vaultDemo{v: v, counts: map[string]map[int]int{}, seen: map[string][]string{}}
	if d.dir, err = os.MkdirTemp("", "f2fauth-vault-"); err != nil {
		v.Close()
		return nil, err
	}
	if err := os.WriteFile(d.caFile(), v.CertificatePEM(), 0o600); err != nil {
		d.close()
		return nil, err
	}
	ver, err := v.SetSecret(kvSecretName, randomValue())
	if err != nil {
		d.close()
		return nil, err
	}
	d.versions = append(d.versions, ver)
	return d, nil
}

func (d *vaultDemo) caFile() string { return filepath.Join(d.dir, "vault-ca.pem") }

func (d *vaultDemo) close() {
	d.v.Close()
	os.RemoveAll(d.dir)
}

// env is the callers' Key Vault settings.
func (d *vaultDemo) env() []string {
	return []string{
		caller.EnvKeyVaultURL + "=" + d.v.URL(),
		caller.EnvKeyVaultSecret + "=" + kvSecretName,
		caller.EnvKeyVaultCAFile + "=" + d.caFile(),
	}
}

// describe prints the vault's header lines.
func (d *vaultDemo) describe(w io.Writer) {
	fmt.Fprintf(w, "  key vault          %s (secret %s; access list: %s only)\n", d.v.URL(), kvSecretName, registeredName)
}

// rotate adds a new version of the secret; the callers keep running.
func (d *vaultDemo) rotate(w io.Writer) error {
	ver, err := d.v.SetSecret(kvSecretName, randomValue())
	if err != nil {
		return err
	}
	d.versions = append(d.versions, ver)
	d.readsAfterRotation = 0
	fmt.Fprintf(w, "%s key vault: secret %s rotated: new version %s (callers not restarted)\n", time.Now().Format("15:04:05"), kvSecretName, ver)
	return nil
}

// record counts one read and renders its line.
func (d *vaultDemo) record(now time.Time, who string, rep *caller.SecretReport) string {
	if d.counts[who] == nil {
		d.counts[who] = map[int]int{}
	}
	d.counts[who][rep.Status]++
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-17s -> key vault: ", now.Format("15:04:05"), who)
	switch {
	case rep.OK:
		if who == registeredName {
			d.readsAfterRotation++
		}
		fmt.Fprintf(&b, "200 secret %s version %s", rep.Name, rep.Version)
		if s := d.seen[who]; len(s) == 0 || s[len(s)-1] != rep.Version {
			if len(s) > 0 {
				b.WriteString(" (new version, no restart)")
			}
			d.seen[who] = append(s, rep.Version)
		}
	case rep.Status != 0:
		fmt.Fprintf(&b, "%d %s", rep.Status, rep.Code)
	default:
		b.WriteString("no answer: " + rep.Reason)
	}
	if rep.Status != kvExpected[who] {
		d.wrong++
		b.WriteString("  <-- UNEXPECTED")
	}
	return b.String()
}

// rotationSeen reports whether the registered caller read the latest version after
// having read an earlier one.
func (d *vaultDemo) rotationSeen() bool {
	s := d.seen[registeredName]
	return len(d.versions) > 1 && len(s) > 1 && s[len(s)-1] == d.versions[len(d.versions)-1]
}

// summary prints the vault's summary lines and reports whether everything was as
// expected.
func (d *vaultDemo) summary(w io.Writer, ids map[string]*localidp.ManagedIdentity) bool {
	ok := d.wrong == 0
	for _, who := range []string{registeredName, rogueName} {
		var parts []string
		for _, s := range []int{0, 200, 401, 403, 404} {
			if n := d.counts[who][s]; n > 0 {
				label := fmt.Sprint(s)
				if s == 0 {
					label = "no answer"
				}
				parts = append(parts, fmt.Sprintf("%s x%d", label, n))
			}
		}
		if len(parts) == 0 {
			parts, ok = []string{"no reads"}, false
		}
		fmt.Fprintf(w, "  %-18s %-22s (expected %d from the key vault every time)\n", who, strings.Join(parts, ", "), kvExpected[who])
	}
	if len(d.versions) > 1 {
		switch {
		case d.readsAfterRotation == 0:
			fmt.Fprintf(w, "  secret rotation    the run ended before %s read the secret again\n", registeredName)
		case d.rotationSeen():
			fmt.Fprintf(w, "  secret rotation    %s read versions %s: the new version was seen on the next run without a restart\n", registeredName, strings.Join(d.seen[registeredName], " -> "))
		default:
			fmt.Fprintf(w, "  secret rotation    NOT seen by %s (read %v)\n", registeredName, d.seen[registeredName])
			ok = false
		}
	}
	var parts []string
	for _, who := range []string{registeredName, rogueName} {
		m := ids[who]
		parts = append(parts, fmt.Sprintf("%s %d (%s %d, %s %d)", who, m.Requests(), audience, m.IssuedFor(audience), localvault.Resource, m.IssuedFor(localvault.Resource)))
	}
	fmt.Fprintf(w, "  token requests to the identity endpoints: %s: once per resource, not once per run (one token cache serves the callee and the vault)\n", strings.Join(parts, ", "))
	for _, m := range ids {
		if m.IssuedFor(audience) > 1 || m.IssuedFor(localvault.Resource) > 1 {
			ok = false
		}
	}
	return ok
}

// randomValue is a fresh secret value; it is never printed.
func randomValue() string {
	return "local-secret-" + rand.Text()
}
