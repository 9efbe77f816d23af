package localvault

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/f2fauth/f2fauth/internal/localidp"
)

var testClient = &http.Client{Timeout: 10 * time.Second}

// startPlatform starts a local identity platform closed when the test ends.
func startPlatform(tb testing.TB) *localidp.Platform {
	tb.Helper()
	p, err := localidp.Start(localidp.Options{})
	if err != nil {
		tb.Fatalf("localidp.Start: %v", err)
	}
	tb.Cleanup(p.Close)
	return p
}

func addIdentity(tb testing.TB, p *localidp.Platform, id localidp.Identity) *localidp.ManagedIdentity {
	tb.Helper()
	m, err := p.AddIdentity(id)
	if err != nil {
		tb.Fatalf("AddIdentity: %v", err)
	}
	return m
}

// useEndpoint points azidentity at m for the rest of the test.
func useEndpoint(t *testing.T, m *localidp.ManagedIdentity) {
	t.Helper()
	t.Setenv("IDENTITY_ENDPOINT", m.Endpoint())
	t.Setenv("IDENTITY_HEADER", m.Header())
	for _, k := range []string{"IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
	}
}

func newCredential(t *testing.T, opts *azidentity.ManagedIdentityCredentialOptions) *azidentity.ManagedIdentityCredential {
	t.Helper()
	cred, err := azidentity.NewManagedIdentityCredential(opts)
	if err != nil {
		t.Fatalf("NewManagedIdentityCredential: %v", err)
	}
	return cred
}

func decodeJSON(tb testing.TB, raw []byte) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("decode JSON %q: %v", raw, err)
	}
	return m
}
