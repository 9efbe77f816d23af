package caller

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/f2fauth/f2fauth/internal/customhandler"
	"github.com/f2fauth/f2fauth/internal/netrule"
	"github.com/f2fauth/f2fauth/tokencache"
)

// Defaults for the optional settings.
const (
	DefaultTimeout    = 30 * time.Second
	DefaultMaxRetries = 3
	// MaxMaxRetries bounds CALLER_MAX_RETRIES.
	MaxMaxRetries = 10
	// MaxTimeout bounds CALLER_TIMEOUT. caller/functionapp/host.json sets the
	// Functions host's functionTimeout to 5 minutes — the Consumption plan's default
	// (its maximum is 10 minutes; Flex Consumption, Premium and Dedicated default to
	// 30 minutes) — so the same limit holds on every plan. A run must answer before
	// the host gives up on it, or the host records a timeout instead of the run's
	// reason, and a timer run that outlives its interval delays the next occurrence
	// (the host never overlaps runs). One minute is left for the host, the answer and
	// a graceful shutdown.
	MaxTimeout = 4 * time.Minute
	// HostFunctionTimeout is the functionTimeout that caller/functionapp/host.json sets.
	HostFunctionTimeout = 5 * time.Minute
)

// Managed-identity settings the platform sets for the handler process; azidentity
// reads them. They are not app settings and are therefore not in [Settings].
const (
	// EnvIdentityEndpoint is the App Service / Functions managed-identity endpoint.
	EnvIdentityEndpoint = "IDENTITY_ENDPOINT"
	// EnvIdentityHeader is the secret the endpoint requires as X-IDENTITY-HEADER.
	EnvIdentityHeader = "IDENTITY_HEADER"
	// envIMDSEndpoint with IDENTITY_ENDPOINT (and no IDENTITY_HEADER) selects Azure Arc.
	envIMDSEndpoint = "IMDS_ENDPOINT"
)

// ErrConfig is wrapped by every configuration error; each names its variable.
var ErrConfig = errors.New("caller: invalid configuration")

// Config is the caller's validated configuration. Build it with [ConfigFromEnv] (or by
// hand, then call [Config.Validate]).
type Config struct {
	// CalleeURL is the callee's function URL (CALLEE_URL), https or loopback http.
	CalleeURL *url.URL
	// Audience is the callee's Application ID URI or client ID (CALLEE_AUDIENCE),
	// without a "/.default" suffix.
	Audience string
	// Credential chooses the credential (CALLER_CREDENTIAL); default tokencache.ManagedIdentity.
	Credential tokencache.CredentialKind
	// ClientID selects a user-assigned managed identity (AZURE_CLIENT_ID); "" = system-assigned.
	ClientID string
	// Timeout bounds one invocation: token wait, the call and its retries (CALLER_TIMEOUT);
	// default DefaultTimeout.
	Timeout time.Duration
	// MaxRetries is the number of retries after a 429 or 5xx answer or a transport error
	// (CALLER_MAX_RETRIES); default DefaultMaxRetries. 0 means a single attempt.
	MaxRetries int
	// Addr is where the handler listens: 127.0.0.1 and FUNCTIONS_CUSTOMHANDLER_PORT, else
	// PORT, else DefaultPort.
	Addr string
	// KeyVault optionally names a secret read on every run (CALLER_KEYVAULT_URL,
	// CALLER_KEYVAULT_SECRET); zero means none. See keyvault.go.
	KeyVault KeyVaultConfig
}

// String describes c for logs and errors: the callee URL without its query
// string (a function key travels as ?code=…), user info or fragment.
func (c Config) String() string {
	return fmt.Sprintf("{CalleeURL:%s Audience:%s Credential:%s ClientID:%s Timeout:%v MaxRetries:%d Addr:%s}",
		safeURL(c.CalleeURL), c.Audience, c.Credential, c.ClientID, c.Timeout, c.MaxRetries, c.Addr)
}

// GoString is [Config.String], so %#v hides the function key too.
func (c Config) GoString() string { return "caller.Config" + c.String() }

// LogValue is c for slog, with the callee URL as [Config.String] shows it.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("callee_url", safeURL(c.CalleeURL)),
		slog.String("audience", c.Audience),
		slog.String("credential", string(c.Credential)),
		slog.String("client_id", c.ClientID),
		slog.Duration("timeout", c.Timeout),
		slog.Int("max_retries", c.MaxRetries),
		slog.String("addr", c.Addr),
	)
}

// Scope returns the token scope for the callee: Audience + "/.default"
// ([tokencache.ScopeFor]).
func (c Config) Scope() string { return tokencache.ScopeFor(c.Audience) }

// NormalizeAudience returns the callee's audience as the token scope's prefix: spaces,
// trailing slashes and a "/.default" suffix removed, so "api://callee/",
// "api://callee/.default" and "api://callee" all give the scope
// "api://callee/.default" (never "api://callee//.default"). It returns "" when
// nothing but those is left. It is [tokencache.ScopeFor] without the suffix.
func NormalizeAudience(aud string) string {
	return strings.TrimSuffix(tokencache.ScopeFor(aud), "/.default")
}

// ConfigFromEnv reads the caller's settings with getenv and validates them, reporting
// every problem together (joined), each naming its variable and saying what to set.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		return Config{}, fmt.Errorf("%w: getenv is nil (pass os.Getenv)", ErrConfig)
	}
	var (
		cfg  Config
		errs []error
	)
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}

	switch raw := strings.TrimSpace(getenv(EnvCalleeURL)); {
	case raw == "":
		bad("%s is required: set it to the callee's function URL, e.g. https://callee.azurewebsites.net/api/ExclusiveFunction", EnvCalleeURL)
	default:
		u, err := parseCalleeURL(raw)
		if err != nil {
			bad("%s %v", EnvCalleeURL, err)
		} else {
			cfg.CalleeURL = u
		}
	}

	switch aud := strings.TrimSpace(getenv(EnvCalleeAudience)); {
	case aud == "":
		bad("%s is required: set it to the callee's Application ID URI (e.g. api://<tenant>/callee) or client ID", EnvCalleeAudience)
	case strings.ContainsAny(aud, " \t\r\n,"):
		bad("%s must be a single Application ID URI or client ID without spaces or commas, got %q", EnvCalleeAudience, aud)
	default:
		if n := NormalizeAudience(aud); n == "" {
			bad("%s must name the callee (e.g. api://<tenant>/callee), not only \"/.default\" or a scheme, got %q", EnvCalleeAudience, aud)
		} else {
			cfg.Audience = n
		}
	}

	cfg.Credential = tokencache.ManagedIdentity
	if v := strings.TrimSpace(getenv(EnvCredential)); v != "" {
		k, err := tokencache.ParseCredentialKind(strings.ToLower(v))
		if err != nil {
			bad("%s must be %q or %q, got %q", EnvCredential, tokencache.ManagedIdentity, tokencache.DevChain, v)
		} else {
			cfg.Credential = k
		}
	}

	if v := getenv(EnvClientID); v != "" {
		if t := strings.TrimSpace(v); t == "" || strings.ContainsAny(t, " \t\r\n,") {
			bad("%s must be the client ID of a user-assigned managed identity (or unset for system-assigned), got %q", EnvClientID, v)
		} else {
			cfg.ClientID = t
		}
	}

	cfg.Timeout = DefaultTimeout
	if v := strings.TrimSpace(getenv(EnvTimeout)); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil || d <= 0:
			bad("%s must be a positive Go duration such as 30s or 1m, got %q", EnvTimeout, v)
		case d > MaxTimeout:
			bad("%s must be at most %s (the Functions host stops waiting for a run after functionTimeout, %s in host.json), got %q", EnvTimeout, MaxTimeout, HostFunctionTimeout, v)
		default:
			cfg.Timeout = d
		}
	}

	cfg.MaxRetries = DefaultMaxRetries
	if v := strings.TrimSpace(getenv(EnvMaxRetries)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxMaxRetries {
			bad("%s must be a whole number from 0 to %d, got %q", EnvMaxRetries, MaxMaxRetries, v)
		} else {
			cfg.MaxRetries = n
		}
	}

	addr, err := ListenAddr(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Addr = addr

	if err := CheckIdentityEnv(getenv); err != nil {
		errs = append(errs, err)
	}
	kv, kvErrs := keyVaultFromEnv(getenv)
	cfg.KeyVault, errs = kv, append(errs, kvErrs...)

	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// Validate checks a hand-built Config the way ConfigFromEnv does and fills defaults
// (Credential, Timeout, Addr). MaxRetries is taken as given (0 = one attempt).
func (c *Config) Validate() error {
	var errs []error
	if c.CalleeURL == nil {
		errs = append(errs, fmt.Errorf("%w: Config.CalleeURL (%s) is required", ErrConfig, EnvCalleeURL))
	} else if _, err := parseCalleeURL(c.CalleeURL.String()); err != nil {
		errs = append(errs, fmt.Errorf("%w: Config.CalleeURL (%s) %v", ErrConfig, EnvCalleeURL, err))
	}
	c.Audience = NormalizeAudience(c.Audience)
	if c.Audience == "" {
		errs = append(errs, fmt.Errorf("%w: Config.Audience (%s) is required: the callee's Application ID URI or client ID", ErrConfig, EnvCalleeAudience))
	}
	if c.Credential == "" {
		c.Credential = tokencache.ManagedIdentity
	} else if _, err := tokencache.ParseCredentialKind(string(c.Credential)); err != nil {
		errs = append(errs, fmt.Errorf("%w: Config.Credential (%s): %w", ErrConfig, EnvCredential, err))
	}
	switch {
	case c.Timeout < 0:
		errs = append(errs, fmt.Errorf("%w: Config.Timeout (%s) must not be negative", ErrConfig, EnvTimeout))
	case c.Timeout > MaxTimeout:
		errs = append(errs, fmt.Errorf("%w: Config.Timeout (%s) must be at most %s (functionTimeout is %s in host.json)", ErrConfig, EnvTimeout, MaxTimeout, HostFunctionTimeout))
	case c.Timeout == 0:
		c.Timeout = DefaultTimeout
	}
	if c.MaxRetries < 0 || c.MaxRetries > MaxMaxRetries {
		errs = append(errs, fmt.Errorf("%w: Config.MaxRetries (%s) must be from 0 to %d", ErrConfig, EnvMaxRetries, MaxMaxRetries))
	}
	if c.Addr == "" {
		c.Addr = net.JoinHostPort(listenHost, strconv.Itoa(DefaultPort))
	}
	errs = append(errs, c.KeyVault.validate()...)
	return errors.Join(errs...)
}

// parseCalleeURL accepts an absolute https URL, or http only to a loopback host (a
// bearer token never travels in clear text off the machine): the rule of
// internal/netrule. Errors never quote the query string (it may hold a function key).
func parseCalleeURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("is not a valid URL (%s)", redactText(stripURLErr(err).Error()))
	}
	if !u.IsAbs() || u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("must be an absolute URL such as https://callee.azurewebsites.net/api/ExclusiveFunction, got %q", safeURL(u))
	}
	if u.User != nil {
		return nil, errors.New("must not contain user credentials")
	}
	if u.Fragment != "" {
		return nil, errors.New("must not contain a fragment (#...)")
	}
	if err := netrule.CheckURL(u); err != nil {
		return nil, fmt.Errorf("is refused: %w", err)
	}
	return u, nil
}

func stripURLErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// CheckIdentityEnv refuses a half-set App Service managed identity: IDENTITY_ENDPOINT
// and IDENTITY_HEADER come together (the platform sets both). With only one of them
// azidentity silently falls back to IMDS and every run fails with a misleading
// error. IDENTITY_ENDPOINT with IMDS_ENDPOINT (Azure Arc) is left alone. The error
// names both settings and never quotes their values.
func CheckIdentityEnv(getenv func(string) string) error {
	ep := strings.TrimSpace(getenv(EnvIdentityEndpoint)) != ""
	hdr := getenv(EnvIdentityHeader) != ""
	switch {
	case ep == hdr:
		return nil
	case ep && strings.TrimSpace(getenv(envIMDSEndpoint)) != "":
		return nil // Azure Arc: IDENTITY_ENDPOINT + IMDS_ENDPOINT
	case ep:
		return fmt.Errorf("%w: %s is set but %s is not: set both (the Functions platform sets both when a managed identity is enabled) or neither", ErrConfig, EnvIdentityEndpoint, EnvIdentityHeader)
	default:
		return fmt.Errorf("%w: %s is set but %s is not: set both (the Functions platform sets both when a managed identity is enabled) or neither", ErrConfig, EnvIdentityHeader, EnvIdentityEndpoint)
	}
}

const listenHost = "127.0.0.1"

// ListenAddr returns 127.0.0.1:<port> with the port from FUNCTIONS_CUSTOMHANDLER_PORT,
// else PORT, else DefaultPort. A value that is not a port number (0–65535) is an error
// naming the variable.
func ListenAddr(getenv func(string) string) (string, error) {
	port, err := customhandler.Port(getenv)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return net.JoinHostPort(listenHost, strconv.Itoa(port)), nil
}
