package tokencache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// CredentialKind selects the credential [NewCredential] builds.
type CredentialKind string

const (
	// ManagedIdentity is the production credential: azidentity's
	// ManagedIdentityCredential (system-assigned, or user-assigned by client ID).
	ManagedIdentity CredentialKind = "managedidentity"
	// DevChain is the local-development credential: an explicit chain of
	// managed identity, workload identity and Azure CLI.
	DevChain CredentialKind = "dev"
)

// credentialHTTPTimeout bounds each HTTP request a credential built here sends.
const credentialHTTPTimeout = 30 * time.Second

// NewManagedIdentityCredential returns azidentity's ManagedIdentityCredential.
// clientID "" selects the system-assigned identity; otherwise the user-assigned
// identity with that client ID (callers pass os.Getenv("AZURE_CLIENT_ID")).
// Its HTTP client has a 30 s timeout, never follows a redirect (it would carry
// the secret X-IDENTITY-HEADER), reads at most 256 KiB of a response and
// refuses a token labelled for another resource than the one asked for; a
// refresh forced by [Cache.Invalidate] skips MSAL's in-process token cache; the
// identity endpoint comes from the environment (IDENTITY_ENDPOINT and IDENTITY_HEADER on App Service and
// Functions, IMDS on virtual machines).
func NewManagedIdentityCredential(clientID string) (azcore.TokenCredential, error) {
	return newManagedIdentityCredential(clientID, nil)
}

// newManagedIdentityCredential is NewManagedIdentityCredential with optional
// retry settings (tests disable azcore's retries to stay fast).
func newManagedIdentityCredential(clientID string, retry *azcore.ClientOptions) (azcore.TokenCredential, error) {
	o := &azidentity.ManagedIdentityCredentialOptions{}
	if retry != nil {
		o.ClientOptions = *retry
	}
	if o.Transport == nil {
		o.Transport = newIdentityClient()
	}
	if clientID != "" {
		o.ID = azidentity.ClientID(clientID)
	}
	cred, err := azidentity.NewManagedIdentityCredential(o)
	if err != nil {
		which := "system-assigned"
		if clientID != "" {
			which = fmt.Sprintf("user-assigned (AZURE_CLIENT_ID %q)", clientID)
		}
		return nil, fmt.Errorf("%w: creating the %s managed identity credential: %w", ErrInvalidConfig, which, err)
	}
	return managedIdentity{cred}, nil
}

// managedIdentity is azidentity's ManagedIdentityCredential with one change:
// a refresh the [Cache] forces (after [Cache.Invalidate]) skips MSAL's
// process-wide token cache, which would otherwise answer with the very token
// the resource just rejected (a managed-identity token lives 24 h there).
// MSAL skips its cache when claims are given; for managed identity it does
// not send them to the endpoint.
type managedIdentity struct {
	cred *azidentity.ManagedIdentityCredential
}

// bypassClaims is the claims value that makes MSAL skip its cache: an empty
// JSON object, which asks for no claim.
const bypassClaims = "{}"

func (m managedIdentity) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if opts.Claims == "" && isForcedRefresh(ctx) {
		opts.Claims = bypassClaims
	}
	return m.cred.GetToken(ctx, opts)
}

// forcedRefreshKey marks the context of a credential call forced by Invalidate.
type forcedRefreshKey struct{}

func withForcedRefresh(ctx context.Context) context.Context {
	return context.WithValue(ctx, forcedRefreshKey{}, true)
}

func isForcedRefresh(ctx context.Context) bool {
	v, _ := ctx.Value(forcedRefreshKey{}).(bool)
	return v
}

// NewCredential builds the credential for kind. [ManagedIdentity] is
// [NewManagedIdentityCredential]. [DevChain] is an explicit
// azidentity.ChainedTokenCredential (never DefaultAzureCredential) of, in
// order: managed identity, only when the environment names a managed-identity
// endpoint (IDENTITY_ENDPOINT+IDENTITY_HEADER or MSI_ENDPOINT, e.g. the local
// identity platform; on a workstation the IMDS fallback would only time out);
// workload identity, when AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE (and
// a client ID) are set; and the Azure CLI. Links that cannot be constructed are
// skipped. clientID selects a user-assigned identity / the workload identity's
// app ("" = system-assigned / AZURE_CLIENT_ID). An unknown kind yields an
// error wrapping [ErrInvalidConfig] that names the value.
func NewCredential(kind CredentialKind, clientID string) (azcore.TokenCredential, error) {
	switch kind {
	case ManagedIdentity:
		return NewManagedIdentityCredential(clientID)
	case DevChain:
		links, _, err := devChainLinks(clientID)
		if err != nil {
			return nil, err
		}
		return azidentity.NewChainedTokenCredential(links, nil)
	default:
		return nil, fmt.Errorf("%w: unknown credential kind %q: want %q or %q", ErrInvalidConfig, string(kind), ManagedIdentity, DevChain)
	}
}

// ParseCredentialKind converts a configuration value into a CredentialKind,
// naming the value when it is unknown. "" is an error too: production must
// choose explicitly.
func ParseCredentialKind(s string) (CredentialKind, error) {
	switch k := CredentialKind(s); k {
	case ManagedIdentity, DevChain:
		return k, nil
	default:
		return "", fmt.Errorf("%w: unknown credential kind %q: want %q or %q", ErrInvalidConfig, s, ManagedIdentity, DevChain)
	}
}

// devChainLinks builds the development chain, returning the links, their
// names (for tests and diagnostics) and an error when none could be built.
func devChainLinks(clientID string) ([]azcore.TokenCredential, []string, error) {
	var (
		links   []azcore.TokenCredential
		names   []string
		skipped []error
	)
	hasMI := (os.Getenv("IDENTITY_ENDPOINT") != "" && os.Getenv("IDENTITY_HEADER") != "") || os.Getenv("MSI_ENDPOINT") != ""
	if hasMI {
		if mi, err := NewManagedIdentityCredential(clientID); err == nil {
			links, names = append(links, mi), append(names, "ManagedIdentityCredential")
		} else {
			skipped = append(skipped, err)
		}
	} else {
		skipped = append(skipped, errors.New("managed identity skipped: neither IDENTITY_ENDPOINT+IDENTITY_HEADER nor MSI_ENDPOINT is set"))
	}
	wo := &azidentity.WorkloadIdentityCredentialOptions{ClientID: clientID}
	wo.Transport = &http.Client{Timeout: credentialHTTPTimeout}
	if wi, err := azidentity.NewWorkloadIdentityCredential(wo); err == nil {
		links, names = append(links, wi), append(names, "WorkloadIdentityCredential")
	} else {
		skipped = append(skipped, fmt.Errorf("workload identity skipped: %w", err))
	}
	if cli, err := azidentity.NewAzureCLICredential(nil); err == nil {
		links, names = append(links, cli), append(names, "AzureCLICredential")
	} else {
		skipped = append(skipped, fmt.Errorf("azure cli skipped: %w", err))
	}
	if len(links) == 0 {
		return nil, nil, fmt.Errorf("%w: no credential could be constructed for kind %q: %w", ErrInvalidConfig, DevChain, errors.Join(skipped...))
	}
	return links, names, nil
}
