package caller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/f2fauth/f2fauth/internal/netrule"
	"github.com/f2fauth/f2fauth/tokencache"
)

// App settings for the optional Key Vault read: set both or neither.
const (
	// EnvKeyVaultURL is the vault URL, e.g. https://kv-f2fauth.vault.azure.net/. Optional;
	// when set, every timer run reads the latest version of EnvKeyVaultSecret with the
	// caller's managed identity (through the same token cache as the callee call).
	EnvKeyVaultURL = "CALLER_KEYVAULT_URL"
	// EnvKeyVaultSecret is the name of the secret read each run. Required with EnvKeyVaultURL.
	EnvKeyVaultSecret = "CALLER_KEYVAULT_SECRET"
	// EnvKeyVaultCAFile is a PEM file of extra TLS roots trusted for the vault, for the
	// local run's self-signed vault only: it is refused unless EnvKeyVaultURL is loopback.
	EnvKeyVaultCAFile = "CALLER_KEYVAULT_CA_FILE"
)

// KeyVaultResource is the resource (token audience) of Azure Key Vault in the public
// cloud; a loopback vault (the local run) is given tokens for it.
const KeyVaultResource = "https://vault.azure.net"

// keyVaultRetries bounds azcore's retries of one secret read (429/5xx); the invocation's
// timeout bounds them too.
const keyVaultRetries = 2

// KeyVaultConfig says which secret the caller reads on every run. The zero value means
// no Key Vault read.
type KeyVaultConfig struct {
	// URL is the vault URL (CALLER_KEYVAULT_URL), always https: azsecrets never sends a
	// bearer token over plain http. Default: none.
	URL *url.URL
	// Secret is the secret's name (CALLER_KEYVAULT_SECRET): 1-127 letters, digits and
	// dashes. Required when URL is set.
	Secret string
	// RootCAs, when set, replaces the system roots for the vault's TLS certificate
	// (read from CALLER_KEYVAULT_CA_FILE). Only allowed for a loopback URL (the local
	// vault's self-signed certificate). Default: nil, the system roots.
	RootCAs *x509.CertPool
}

// Enabled reports whether a Key Vault read is configured.
func (k KeyVaultConfig) Enabled() bool { return k.URL != nil || k.Secret != "" }

// Loopback reports whether the vault is on a loopback host (the local run): only then
// is azsecrets' challenge-resource check skipped and a private root (RootCAs) allowed.
func (k KeyVaultConfig) Loopback() bool {
	return k.URL != nil && netrule.IsLoopback(k.URL.Hostname())
}

// Scope returns the only token scope the caller requests for the vault: the resource
// of the vault's cloud ("https://vault.azure.net/.default" for *.vault.azure.net and
// for a loopback vault; "https://vault.azure.cn/.default" for *.vault.azure.cn, …).
func (k KeyVaultConfig) Scope() string {
	if k.URL == nil || k.Loopback() {
		return tokencache.ScopeFor(KeyVaultResource)
	}
	return tokencache.ScopeFor(keyVaultResourceOf(k.URL.Hostname()))
}

// keyVaultDNSSuffixes are the vault host suffixes of the Azure clouds, each with
// the resource (token audience) of its Key Vault. A vault host must end in one:
// a token for a cloud's Key Vault must never be sent to a host outside it.
var keyVaultDNSSuffixes = []string{"vault.azure.net", "vault.azure.cn", "vault.usgovcloudapi.net", "vault.microsoftazure.de"}

// keyVaultResourceOf returns the Key Vault resource of host's cloud, or "" when
// host is not under any cloud's vault suffix.
func keyVaultResourceOf(host string) string {
	host = strings.ToLower(host)
	for _, sfx := range keyVaultDNSSuffixes {
		if name, ok := strings.CutSuffix(host, "."+sfx); ok && name != "" && !strings.Contains(name, ".") {
			return "https://" + sfx
		}
	}
	return ""
}

// keyVaultFromEnv reads CALLER_KEYVAULT_URL and CALLER_KEYVAULT_SECRET (both or neither).
func keyVaultFromEnv(getenv func(string) string) (KeyVaultConfig, []error) {
	var k KeyVaultConfig
	rawURL, name := strings.TrimSpace(getenv(EnvKeyVaultURL)), strings.TrimSpace(getenv(EnvKeyVaultSecret))
	if rawURL == "" && name == "" {
		return k, nil
	}
	var errs []error
	if rawURL == "" || name == "" {
		return k, []error{fmt.Errorf("%w: %s and %s must be set together (the vault URL and the name of the secret to read each run), or both left unset", ErrConfig, EnvKeyVaultURL, EnvKeyVaultSecret)}
	}
	u, err := parseVaultURL(rawURL)
	if err != nil {
		errs = append(errs, fmt.Errorf("%w: %s %v", ErrConfig, EnvKeyVaultURL, err))
	}
	k.URL = u
	k.Secret = name
	errs = append(errs, k.checkSecret()...)
	if caFile := strings.TrimSpace(getenv(EnvKeyVaultCAFile)); caFile != "" {
		pem, err := os.ReadFile(caFile)
		pool := x509.NewCertPool()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%w: %s: cannot read %q (%v)", ErrConfig, EnvKeyVaultCAFile, caFile, errors.Unwrap(err)))
		case !pool.AppendCertsFromPEM(pem):
			errs = append(errs, fmt.Errorf("%w: %s: %q holds no PEM certificate", ErrConfig, EnvKeyVaultCAFile, caFile))
		default:
			k.RootCAs = pool
		}
		if u != nil && !k.Loopback() {
			errs = append(errs, fmt.Errorf("%w: %s is only for a loopback vault (the local run); unset it for %s=%s", ErrConfig, EnvKeyVaultCAFile, EnvKeyVaultURL, u))
		}
	}
	return k, errs
}

// validate checks a hand-built KeyVaultConfig the way keyVaultFromEnv does.
func (k KeyVaultConfig) validate() []error {
	if !k.Enabled() {
		return nil
	}
	if k.URL == nil || k.Secret == "" {
		return []error{fmt.Errorf("%w: Config.KeyVault needs both URL (%s) and Secret (%s)", ErrConfig, EnvKeyVaultURL, EnvKeyVaultSecret)}
	}
	var errs []error
	if _, err := parseVaultURL(k.URL.String()); err != nil {
		errs = append(errs, fmt.Errorf("%w: Config.KeyVault.URL (%s) %v", ErrConfig, EnvKeyVaultURL, err))
	}
	if k.RootCAs != nil && !k.Loopback() {
		errs = append(errs, fmt.Errorf("%w: Config.KeyVault.RootCAs (%s) is only for a loopback vault", ErrConfig, EnvKeyVaultCAFile))
	}
	return append(errs, k.checkSecret()...)
}

func (k KeyVaultConfig) checkSecret() []error {
	if len(k.Secret) > 127 || strings.IndexFunc(k.Secret, func(r rune) bool {
		return !(r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	}) >= 0 {
		return []error{fmt.Errorf("%w: %s must be a secret name of 1-127 letters, digits and dashes (no version, no URL), got %q", ErrConfig, EnvKeyVaultSecret, k.Secret)}
	}
	return nil
}

// parseVaultURL accepts the vault's base URL: https (also on loopback: azsecrets never
// sends a token over http), no credentials, query, fragment or path beyond "/".
// Errors quote the URL without its user info, query or fragment (safeURL): a
// password or a signature someone pasted there must not reach a log.
func parseVaultURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("is not a valid URL (%s)", redactText(stripURLErr(err).Error()))
	}
	if u.User != nil {
		return nil, fmt.Errorf("must not contain user credentials (Key Vault authenticates with the managed identity), got %q", safeURL(u))
	}
	if !u.IsAbs() {
		return nil, fmt.Errorf("must be the vault URL, e.g. https://kv-name.vault.azure.net/, got %q", safeURL(u))
	}
	if err := netrule.CheckURL(u); err != nil || !strings.EqualFold(u.Scheme, "https") {
		return nil, fmt.Errorf("must be an https vault URL such as https://kv-name.vault.azure.net/ (Key Vault is https only, and azsecrets never sends a token over http), got %q", safeURL(u))
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("must be the vault's base URL without a path, query or fragment (e.g. https://kv-name.vault.azure.net/), got %q", safeURL(u))
	}
	if !netrule.IsLoopback(u.Hostname()) && keyVaultResourceOf(u.Hostname()) == "" {
		return nil, fmt.Errorf("must name a vault of an Azure cloud, <name>.%s, got %q", strings.Join(keyVaultDNSSuffixes, " or <name>."), safeURL(u))
	}
	u.Path = "/"
	return u, nil
}

// SecretReport is the outcome of one secret read; it is part of the run's [Report]. It
// never holds the secret's value.
type SecretReport struct {
	// OK is true when the vault returned the secret.
	OK bool `json:"ok"`
	// Name is the secret's name.
	Name string `json:"name"`
	// Version is the version read (the latest at the time of the read).
	Version string `json:"version,omitempty"`
	// Status is the vault's HTTP status; 0 when it never answered.
	Status int `json:"status"`
	// Code is Key Vault's error code on failure (e.g. Forbidden, SecretNotFound).
	Code string `json:"code,omitempty"`
	// Reason says why the read failed, in one line.
	Reason string `json:"reason,omitempty"`
}

// Summary is a one-line description of r for logs.
func (r *SecretReport) Summary() string {
	if r.OK {
		return fmt.Sprintf("key vault answered %d: secret %s version %s", r.Status, r.Name, r.Version)
	}
	if r.Status != 0 {
		return fmt.Sprintf("key vault answered %d %s for secret %s: %s", r.Status, r.Code, r.Name, r.Reason)
	}
	return fmt.Sprintf("key vault read of secret %s failed: %s", r.Name, r.Reason)
}

// SecretValue holds a secret's value. It prints, logs and marshals as REDACTED; only
// [SecretValue.Reveal] returns the value.
type SecretValue struct{ v string }

// Reveal returns the secret's value. Never log it.
func (s SecretValue) Reveal() string { return s.v }

// String returns "REDACTED".
func (s SecretValue) String() string { return "REDACTED" }

// GoString returns "REDACTED".
func (s SecretValue) GoString() string { return "REDACTED" }

// LogValue implements slog.LogValuer as "REDACTED".
func (s SecretValue) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalJSON marshals as "REDACTED".
func (s SecretValue) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }

// SecretReader reads the latest version of one secret with the Azure SDK's azsecrets
// client, authenticating with a token credential (the caller passes its
// tokencache.Cache, so the vault token is cached next to the callee's, each under its
// own scope). Nothing is cached here: each Read asks the vault, so a rotated secret is
// seen on the next read. It is safe for concurrent use.
type SecretReader struct {
	client *azsecrets.Client
	name   string
}

// NewSecretReader builds the azsecrets client for cfg over cred. base is the HTTP
// transport (nil: a clone of http.DefaultTransport); timeout bounds each HTTP request.
//
// cred is wrapped so that it is only ever asked for cfg.Scope(): whatever resource a
// vault names in its challenge, the caller's identity never hands it a token for
// another audience (such as the callee's).
//
// For a loopback vault URL only (the local run), azsecrets' challenge-resource check is
// switched off (DisableChallengeResourceVerification): the challenge's resource
// https://vault.azure.net is not a parent domain of 127.0.0.1. Any other vault URL keeps
// it, and the scope pin holds either way. Plain http is never allowed: azsecrets' own
// bearer policy refuses it (InsecureAllowCredentialWithHTTP in the client options does
// not reach it), so the local vault serves https with a certificate trusted through
// cfg.RootCAs, itself allowed only for loopback.
func NewSecretReader(cfg KeyVaultConfig, cred azcore.TokenCredential, base http.RoundTripper, timeout time.Duration) (*SecretReader, error) {
	if errs := cfg.validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if !cfg.Enabled() {
		return nil, fmt.Errorf("%w: %s and %s are not set", ErrConfig, EnvKeyVaultURL, EnvKeyVaultSecret)
	}
	if cred == nil {
		return nil, errors.New("caller: NewSecretReader: credential is nil")
	}
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if cfg.RootCAs != nil {
		t, ok := base.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("%w: %s needs an *http.Transport as the base transport", ErrConfig, EnvKeyVaultCAFile)
		}
		t = t.Clone()
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		t.TLSClientConfig.RootCAs = cfg.RootCAs
		base = t
	}
	loopback := cfg.Loopback()
	opts := &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Transport: netrule.Guard(&http.Client{Transport: base}, timeout),
			Retry:     policy.RetryOptions{MaxRetries: keyVaultRetries},
		},
		// Loopback only: 127.0.0.1 is not a subdomain of vault.azure.net. The scope pin
		// below still keeps the token to the Key Vault audience.
		DisableChallengeResourceVerification: loopback,
	}
	client, err := azsecrets.NewClient(cfg.URL.String(), &scopePinned{cred: cred, scope: cfg.Scope()}, opts)
	if err != nil {
		return nil, fmt.Errorf("caller: key vault client for %s: %w", EnvKeyVaultURL, err)
	}
	return &SecretReader{client: client, name: cfg.Secret}, nil
}

// Read gets the latest version of the secret. The report is always non-nil and never
// holds the value; the value is zero unless report.OK.
func (r *SecretReader) Read(ctx context.Context) (SecretValue, *SecretReport) {
	rep := &SecretReport{Name: r.name}
	resp, err := r.client.GetSecret(ctx, r.name, "", nil)
	if err != nil {
		var re *azcore.ResponseError
		switch {
		case errors.As(err, &re):
			rep.Status, rep.Code = re.StatusCode, sanitizeReason(re.ErrorCode)
			rep.Reason = vaultReason(re.StatusCode)
		case errors.Is(err, errScope):
			rep.Reason = "refused: " + condense(err)
		case isTokenError(err):
			rep.Reason = "no token: " + condense(err)
		case ctx.Err() != nil || isTimeout(err):
			rep.Reason = "timeout: no answer from the vault"
		default:
			rep.Reason = "transport: " + condense(err)
		}
		return SecretValue{}, rep
	}
	rep.OK, rep.Status = true, http.StatusOK
	if resp.ID != nil {
		rep.Version = resp.ID.Version()
	}
	var v SecretValue
	if resp.Value != nil {
		v.v = *resp.Value
	}
	return v, rep
}

// vaultReason says what to do about a vault's error status.
func vaultReason(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "the vault rejected the token (wrong tenant or audience?)"
	case http.StatusForbidden:
		return "this identity has no access: assign it the role Key Vault Secrets User on the vault (or an access policy with secret get)"
	case http.StatusNotFound:
		return "no such secret: check " + EnvKeyVaultSecret
	case http.StatusTooManyRequests:
		return "throttled by the vault"
	}
	return http.StatusText(status)
}

// errScope is returned when a vault's challenge asks for a token for another resource.
var errScope = errors.New("caller: the vault asked for a token for another resource")

// scopePinned is a credential that only ever requests one scope.
type scopePinned struct {
	cred  azcore.TokenCredential
	scope string
}

// GetToken passes the request on only when it asks for exactly the pinned scope.
func (s *scopePinned) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(opts.Scopes) != 1 || opts.Scopes[0] != s.scope {
		return azcore.AccessToken{}, fmt.Errorf("%w: got %q, want %q; check %s", errScope, strings.Join(opts.Scopes, " "), s.scope, EnvKeyVaultURL)
	}
	return s.cred.GetToken(ctx, opts)
}

// newVault builds the Caller's SecretReader over its token cache; nil when no Key Vault
// read is configured.
func newVault(cfg Config, cache azcore.TokenCredential, base http.RoundTripper) (*SecretReader, error) {
	if !cfg.KeyVault.Enabled() {
		return nil, nil
	}
	return NewSecretReader(cfg.KeyVault, cache, base, cfg.Timeout)
}

// readSecret reads the configured secret (nil report when none is configured) and logs
// its name and version, never its value. The value itself is not kept: the next run
// reads the latest version again.
func (c *Caller) readSecret(ctx context.Context) *SecretReport {
	if c.vault == nil {
		return nil
	}
	_, rep := c.vault.Read(ctx)
	level := slog.LevelInfo
	if !rep.OK {
		level = slog.LevelError
	}
	c.logger.Log(ctx, level, "caller: key vault read", "secret", rep.Name, "version", rep.Version,
		"ok", rep.OK, "status", rep.Status, "code", rep.Code, "reason", rep.Reason)
	return rep
}
