// Package localvault is a local Azure Key Vault secrets endpoint on loopback, for local
// development and tests ONLY: it trusts a [localidp.Platform]'s issuer, keeps secrets in
// memory and serves them over https with a self-signed certificate.
//
// It speaks what the Azure SDK's azsecrets client speaks (the bearer challenge, get
// secret by name and version, a versionless name resolving to the latest version, Key
// Vault's error JSON), verifies tokens with authmw (signature against the issuer's
// keys, issuer, audience https://vault.azure.net, expiry) and authorizes by an access
// list of object IDs or app IDs, the local counterpart of the role assignment
// "Key Vault Secrets User". It lives beside localidp rather than in it because authmw's
// own tests import localidp.
package localvault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/internal/localidp"
)

// Resource is Azure Key Vault's resource (the aud of its access tokens);
// clients request the scope [Scope]. The local vault names it in its
// bearer challenge and accepts only tokens for it, like the real service.
const Resource = "https://vault.azure.net"

// Scope is the token scope for Key Vault: Resource + "/.default".
const Scope = Resource + "/.default"

// APIVersion is the api-version azsecrets v1.5.1 sends. The local vault
// accepts any api-version of the form YYYY-MM-DD[-preview] and refuses a request
// without one (400), as Key Vault does.
const APIVersion = "2026-04-01"

// ErrInvalidOption is wrapped by every configuration error of [Start] and
// [Vault.SetSecret]; each names the offending option.
var ErrInvalidOption = errors.New("localvault: invalid option")

// maxSecretBytes bounds a secret value, as Key Vault does (25 KiB).
const maxSecretBytes = 25 << 10

var (
	secretNamePattern    = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)
	secretVersionPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
	apiVersionPattern    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(-preview)?$`)
)

// Options configures a [Vault]. The zero value is valid: a vault
// nobody may read.
type Options struct {
	// Name labels the vault in logs and in the resource named by 403 messages,
	// e.g. "kv-f2fauth". Default: "local-vault".
	Name string
	// Readers lists the identities allowed to get secrets, each an object ID
	// (the token's oid) or an app ID (appid/azp): the local counterpart of the
	// role assignment "Key Vault Secrets User" (or an access policy with secret
	// get permission). Default: none (every verified caller gets 403).
	Readers []string
	// Logger receives one line per request (secret name and version, the
	// caller's appid and oid, the outcome); never secret values or tokens.
	// Default: discard.
	Logger *slog.Logger
}

// Stats counts a vault's answers.
type Stats struct {
	// Requests is every request received.
	Requests int64
	// Challenges is the 401s answered to requests without a token (the first
	// request of every azsecrets client, which then learns the scope and tenant).
	Challenges int64
	// Unauthorized is the 401s answered to requests with an invalid token
	// (bad signature, issuer, audience, expired…).
	Unauthorized int64
	// Forbidden is the 403s: verified callers not on the access list.
	Forbidden int64
	// NotFound is the 404s: unknown secret, version or path.
	NotFound int64
	// Served is the 200s: secrets returned.
	Served int64
}

// Vault is a local Azure Key Vault secrets endpoint on 127.0.0.1 that
// speaks what the Azure SDK's azsecrets client speaks: the bearer challenge
// (a request without a token is answered 401 with
// `WWW-Authenticate: Bearer authorization="{authority}/{tenant}", resource="https://vault.azure.net"`),
// GET /secrets/{name}/{version}?api-version=… (a versionless name resolves to
// the latest version) answering a SecretBundle, Key Vault's error JSON, 404
// for unknown secrets and 403 (innererror AccessDenied) for identities not on
// the access list.
//
// Tokens are verified for real by authmw against the platform's issuer:
// signature against the published keys, issuer (v1 or v2 of the platform's
// tenant), audience [Resource], expiry. Authorization is checked
// before the secret is looked up, so an identity without access cannot learn
// which secrets exist.
//
// It serves HTTPS on 127.0.0.1 with a fresh self-signed certificate
// ([Vault.CertificatePEM]): azsecrets never sends a bearer token over plain
// http (its challenge policy does not honour InsecureAllowCredentialWithHTTP).
// Clients must trust that certificate and skip azsecrets' challenge-resource
// check (127.0.0.1 is not a subdomain of vault.azure.net), which is acceptable
// only because the vault is on loopback (see caller.NewSecretReader). All
// methods are safe for concurrent use.
type Vault struct {
	p    *localidp.Platform
	name string
	log  *slog.Logger
	mw   *authmw.Middleware
	srv  *http.Server
	url  string

	certPEM []byte

	mu      sync.Mutex
	readers map[string]bool
	secrets map[string][]*secretVersion // oldest first

	requests, challenges, unauthorized, forbidden, notFound, served atomic.Int64
	closeOnce                                                       sync.Once
}

type secretVersion struct {
	version string
	value   string
	created time.Time
}

// Start starts a local Key Vault on 127.0.0.1 with a random port, trusting
// p's issuer, and waits (bounded by ctx) until the issuer's keys are loaded.
// Stop it with [Vault.Close] (before or after p.Close).
func Start(ctx context.Context, p *localidp.Platform, opts Options) (*Vault, error) {
	var errs []error
	for _, r := range opts.Readers {
		if strings.TrimSpace(r) == "" {
			errs = append(errs, fmt.Errorf("%w: Options.Readers has an empty entry", ErrInvalidOption))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if p == nil {
		return nil, fmt.Errorf("%w: the platform is nil", ErrInvalidOption)
	}
	name := opts.Name
	if name == "" {
		name = "local-vault"
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("vault", name)
	v := &Vault{
		p:       p,
		name:    name,
		log:     logger,
		readers: make(map[string]bool),
		secrets: make(map[string][]*secretVersion),
	}
	for _, r := range opts.Readers {
		v.readers[strings.ToLower(strings.TrimSpace(r))] = true
	}
	mw, err := authmw.New(ctx, authmw.Config{Policy: authmw.Policy{
		TenantID:      p.TenantID(),
		AuthorityHost: p.AuthorityURL(),
		Audiences:     []string{Resource},
		// authmw proves who the caller is; the vault's own access list (checked
		// after verification, answered in Key Vault's error shape) decides.
		InsecureAllowAnyCaller: true,
	}})
	if err != nil {
		return nil, fmt.Errorf("localvault: token verifier: %w", err)
	}
	if err := mw.WaitReady(ctx); err != nil {
		mw.Close()
		return nil, fmt.Errorf("localvault: the issuer's keys did not load: %w", err)
	}
	v.mw = mw
	cert, certPEM, err := selfSignedLoopbackCert()
	if err != nil {
		mw.Close()
		return nil, fmt.Errorf("localvault: certificate: %w", err)
	}
	v.certPEM = certPEM
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		mw.Close()
		return nil, fmt.Errorf("localvault: listen: %w", err)
	}
	v.url = "https://" + ln.Addr().String() + "/"
	v.srv = &http.Server{
		Handler:           v,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn),
	}
	go func() { _ = v.srv.ServeTLS(ln, "", "") }()

	logger.Info("localvault: started", "url", v.url, "readers", len(v.readers))
	return v, nil
}

// URL returns the vault URL, "https://127.0.0.1:PORT/" (the local counterpart
// of https://NAME.vault.azure.net/).
func (v *Vault) URL() string { return v.url }

// CertificatePEM returns the vault's self-signed TLS certificate (valid for
// 127.0.0.1, ::1 and localhost), PEM-encoded: the root a client must trust to
// reach the vault (caller: CALLER_KEYVAULT_CA_FILE).
func (v *Vault) CertificatePEM() []byte { return slices.Clone(v.certPEM) }

// CertPool returns a pool holding only the vault's certificate.
func (v *Vault) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(v.certPEM)
	return pool
}

// selfSignedLoopbackCert generates a fresh ECDSA P-256 key and a self-signed
// certificate for 127.0.0.1, ::1 and localhost, valid for a day.
func selfSignedLoopbackCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localvault key vault"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certPEM, nil
}

// Name returns the vault's name.
func (v *Vault) Name() string { return v.name }

// SetSecret adds a new version of secret name with value and returns the new
// version ID (32 hex digits). The new version becomes the latest: a
// versionless read returns it from now on, which is how a secret is rotated.
// Names are 1-127 letters, digits and dashes; values at most 25 KiB.
func (v *Vault) SetSecret(name, value string) (version string, err error) {
	if !secretNamePattern.MatchString(name) {
		return "", fmt.Errorf("%w: secret name %q must be 1-127 letters, digits and dashes", ErrInvalidOption, name)
	}
	if len(value) > maxSecretBytes {
		return "", fmt.Errorf("%w: secret value of %d bytes exceeds %d", ErrInvalidOption, len(value), maxSecretBytes)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	sv := &secretVersion{version: hex.EncodeToString(b), value: value, created: time.Now().UTC().Truncate(time.Second)}
	key := strings.ToLower(name) // Key Vault names are case-insensitive
	v.mu.Lock()
	v.secrets[key] = append(v.secrets[key], sv)
	n := len(v.secrets[key])
	v.mu.Unlock()
	v.log.Info("localvault: secret version added", "secret", name, "version", sv.version, "versions", n)
	return sv.version, nil
}

// Grant puts an object ID or app ID on the access list (like assigning the
// role "Key Vault Secrets User"). It takes effect for the next request.
func (v *Vault) Grant(id string) {
	v.mu.Lock()
	v.readers[strings.ToLower(strings.TrimSpace(id))] = true
	v.mu.Unlock()
}

// Revoke removes an object ID or app ID from the access list. It takes effect
// for the next request, whatever tokens the identity holds.
func (v *Vault) Revoke(id string) {
	v.mu.Lock()
	delete(v.readers, strings.ToLower(strings.TrimSpace(id)))
	v.mu.Unlock()
}

// Stats returns the vault's counters.
func (v *Vault) Stats() Stats {
	return Stats{
		Requests:     v.requests.Load(),
		Challenges:   v.challenges.Load(),
		Unauthorized: v.unauthorized.Load(),
		Forbidden:    v.forbidden.Load(),
		NotFound:     v.notFound.Load(),
		Served:       v.served.Load(),
	}
}

// Close stops the vault. It is safe to call more than once.
func (v *Vault) Close() {
	v.closeOnce.Do(func() {
		if v.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = v.srv.Shutdown(ctx)
			cancel()
		}
		if v.mw != nil {
			_ = v.mw.Close()
		}
	})
}

// String describes the vault without its secrets.
func (v *Vault) String() string {
	return fmt.Sprintf("localvault.Vault{name=%q url=%q}", v.name, v.url)
}

// GoString is like String, so %#v does not print secret values.
func (v *Vault) GoString() string { return v.String() }

// LogValue implements slog.LogValuer without secret values.
func (v *Vault) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", v.name), slog.String("url", v.url))
}

// kvError is Key Vault's error body.
type kvError struct {
	Error kvErrorDetail `json:"error"`
}

type kvErrorDetail struct {
	Code       string         `json:"code"`
	Message    string         `json:"message"`
	InnerError *kvErrorDetail `json:"innererror,omitempty"`
}

// secretBundle is Key Vault's SecretBundle, as azsecrets decodes it.
type secretBundle struct {
	Value      string            `json:"value"`
	ID         string            `json:"id"`
	Attributes secretAttributes  `json:"attributes"`
	Tags       map[string]string `json:"tags"`
}

type secretAttributes struct {
	Enabled         bool   `json:"enabled"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays int    `json:"recoverableDays"`
}

// challenge is the WWW-Authenticate value every 401 carries, in Key Vault's
// format (azsecrets splits it on spaces and '=').
func (v *Vault) challenge() string {
	return fmt.Sprintf(`Bearer authorization="%s/%s", resource="%s"`, v.p.AuthorityURL(), v.p.TenantID(), Resource)
}

// ServeHTTP serves the secrets API: authentication first (401 + challenge),
// then authorization (403), then routing and lookup (400/404/405/200).
func (v *Vault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.requests.Add(1)
	raw, ok := bearer(r.Header.Values("Authorization"))
	if !ok {
		v.challenges.Add(1)
		w.Header().Set("WWW-Authenticate", v.challenge())
		v.writeError(w, http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", "")
		return
	}
	p, err := v.mw.Verify(r.Context(), raw)
	if err != nil {
		var ae *authmw.Error
		reason := "invalid_token"
		if errors.As(err, &ae) {
			reason = string(ae.Reason)
		}
		if errors.Is(err, authmw.ErrNotReady) {
			v.log.Warn("localvault: request refused", "status", 503, "reason", reason)
			v.writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The issuer's signing keys are not loaded yet; retry later.", "")
			return
		}
		v.unauthorized.Add(1)
		// The detail quotes the attacker's claims: server log only.
		v.log.Warn("localvault: request refused", "status", 401, "reason", reason, "detail", err.Error())
		w.Header().Set("WWW-Authenticate", v.challenge())
		v.writeError(w, http.StatusUnauthorized, "Unauthorized", "AKV10032: The bearer token is not valid ("+reason+").", "")
		return
	}
	v.mu.Lock()
	allowed := v.readers[strings.ToLower(p.ObjectID)] || v.readers[strings.ToLower(p.AppID)]
	v.mu.Unlock()
	if !allowed {
		v.forbidden.Add(1)
		v.log.Warn("localvault: request refused", "status", 403, "reason", "not on the access list", "appid", p.AppID, "oid", p.ObjectID, "path", r.URL.Path)
		v.writeError(w, http.StatusForbidden, "Forbidden",
			fmt.Sprintf("The user, group or application 'appid=%s;oid=%s' does not have secrets get permission on key vault '%s'. Assign the role Key Vault Secrets User (or an access policy with secret get permission) to this identity.",
				p.AppID, p.ObjectID, v.name), "AccessDenied")
		return
	}

	name, version, ok := parseSecretPath(r.URL.Path)
	if !ok {
		v.notFound.Add(1)
		v.writeError(w, http.StatusNotFound, "NotFound", "The requested path is not served by this vault: use /secrets/{name}/{version}.", "")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		v.writeError(w, http.StatusMethodNotAllowed, "BadParameter", "Only GET is supported by the local vault.", "")
		return
	}
	if av := r.URL.Query().Get("api-version"); av == "" || !apiVersionPattern.MatchString(av) {
		v.writeError(w, http.StatusBadRequest, "BadParameter", "The 'api-version' query parameter is missing or malformed.", "")
		return
	}
	if !secretNamePattern.MatchString(name) || (version != "" && !secretVersionPattern.MatchString(version)) {
		v.writeError(w, http.StatusBadRequest, "BadParameter", "The secret name or version is not valid.", "")
		return
	}
	sv, displayName := v.lookup(name, version)
	if sv == nil {
		v.notFound.Add(1)
		v.log.Info("localvault: secret not found", "secret", name, "version", version, "appid", p.AppID, "oid", p.ObjectID)
		v.writeError(w, http.StatusNotFound, "SecretNotFound",
			fmt.Sprintf("A secret with (name/id) %s was not found in this key vault.", name), "")
		return
	}
	v.served.Add(1)
	v.log.Info("localvault: secret read", "secret", displayName, "version", sv.version, "versionless", version == "", "appid", p.AppID, "oid", p.ObjectID)
	b := secretBundle{
		Value: sv.value,
		ID:    v.url + "secrets/" + displayName + "/" + sv.version,
		Attributes: secretAttributes{
			Enabled: true, Created: sv.created.Unix(), Updated: sv.created.Unix(),
			RecoveryLevel: "Recoverable+Purgeable", RecoverableDays: 90,
		},
		Tags: map[string]string{},
	}
	writeKVJSON(w, http.StatusOK, b)
}

// lookup returns the requested version (the latest when version is "") and
// the secret's name.
func (v *Vault) lookup(name, version string) (*secretVersion, string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	vs := v.secrets[strings.ToLower(name)]
	if len(vs) == 0 {
		return nil, ""
	}
	if version == "" {
		return vs[len(vs)-1], name
	}
	i := slices.IndexFunc(vs, func(s *secretVersion) bool { return s.version == version })
	if i < 0 {
		return nil, ""
	}
	return vs[i], name
}

// parseSecretPath splits /secrets/{name}, /secrets/{name}/ and
// /secrets/{name}/{version}.
func parseSecretPath(path string) (name, version string, ok bool) {
	rest, found := strings.CutPrefix(path, "/secrets/")
	if !found || rest == "" {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	switch len(parts) {
	case 1:
		return parts[0], "", true
	case 2:
		return parts[0], parts[1], true
	}
	return "", "", false
}

// bearer returns the token of a single "Bearer <token>" Authorization header.
func bearer(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, tok, found := strings.Cut(values[0], " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != "" && !strings.ContainsAny(tok, " \t,")
}

func (v *Vault) writeError(w http.ResponseWriter, status int, code, msg, inner string) {
	e := kvError{Error: kvErrorDetail{Code: code, Message: msg}}
	if inner != "" {
		e.Error.InnerError = &kvErrorDetail{Code: inner}
	}
	writeKVJSON(w, status, e)
}

func writeKVJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"InternalError","message":"encoding failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
