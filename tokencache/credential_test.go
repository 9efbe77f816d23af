package tokencache

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// unsetenv removes k for the duration of the test (azidentity's workload
// identity uses os.LookupEnv, so set-but-empty would count as set).
func unsetenv(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		t.Setenv(k, "")
		_ = os.Unsetenv(k)
	}
}

func TestNewCredentialUnknownKind(t *testing.T) {
	for _, kind := range []CredentialKind{"", "Managedidentity", "default", "azurecli"} {
		_, err := NewCredential(kind, "")
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), `"`+string(kind)+`"`) {
			t.Fatalf("NewCredential(%q) err = %v, want ErrInvalidConfig naming the value", kind, err)
		}
		if _, err := ParseCredentialKind(string(kind)); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("ParseCredentialKind(%q) err = %v", kind, err)
		}
	}
	for _, kind := range []CredentialKind{ManagedIdentity, DevChain} {
		if k, err := ParseCredentialKind(string(kind)); err != nil || k != kind {
			t.Fatalf("ParseCredentialKind(%q) = %q, %v", kind, k, err)
		}
	}
}

func TestNewCredentialManagedIdentity(t *testing.T) {
	t.Setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token")
	t.Setenv("IDENTITY_HEADER", "h")
	for _, id := range []string{"", testClientID} {
		cred, err := NewCredential(ManagedIdentity, id)
		if err != nil {
			t.Fatalf("NewCredential(managedidentity, %q): %v", id, err)
		}
		if mi, ok := cred.(managedIdentity); !ok || mi.cred == nil {
			t.Fatalf("got %T, want the wrapped *azidentity.ManagedIdentityCredential", cred)
		}
	}
}

func TestDevChainLinks(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("assertion"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      map[string]string
		clientID string
		want     []string
	}{
		{
			name: "workstation: CLI only",
			want: []string{"AzureCLICredential"},
		},
		{
			name: "local identity platform: MI then CLI",
			env:  map[string]string{"IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi/token", "IDENTITY_HEADER": "h"},
			want: []string{"ManagedIdentityCredential", "AzureCLICredential"},
		},
		{
			name:     "workload identity env complete",
			env:      map[string]string{"AZURE_TENANT_ID": "t", "AZURE_FEDERATED_TOKEN_FILE": tokenFile},
			clientID: testClientID,
			want:     []string{"WorkloadIdentityCredential", "AzureCLICredential"},
		},
		{
			name: "all three in order",
			env: map[string]string{"IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi/token", "IDENTITY_HEADER": "h",
				"AZURE_CLIENT_ID": testClientID, "AZURE_TENANT_ID": "t", "AZURE_FEDERATED_TOKEN_FILE": tokenFile},
			want: []string{"ManagedIdentityCredential", "WorkloadIdentityCredential", "AzureCLICredential"},
		},
		{
			name: "workload identity without token file is skipped",
			env:  map[string]string{"AZURE_CLIENT_ID": testClientID, "AZURE_TENANT_ID": "t"},
			want: []string{"AzureCLICredential"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unsetenv(t, "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET",
				"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, names, err := devChainLinks(tt.clientID)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names, tt.want) {
				t.Fatalf("links = %v, want %v", names, tt.want)
			}
			cred, err := NewCredential(DevChain, tt.clientID)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := cred.(*azidentity.ChainedTokenCredential); !ok {
				t.Fatalf("got %T, want *azidentity.ChainedTokenCredential", cred)
			}
		})
	}
}
