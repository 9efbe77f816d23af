package caller

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

func TestKeyVaultSettings(t *testing.T) {
	dir := t.TempDir()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	pemFile := filepath.Join(dir, "ca.pem")
	certPEM := "-----BEGIN CERTIFICATE-----\n" + encodeB64(srv.Certificate().Raw) + "\n-----END CERTIFICATE-----\n"
	if err := os.WriteFile(pemFile, []byte(certPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a cert"), 0o600)
	tests := []struct {
		name    string
		env     map[string]string
		want    []string // substrings of the error; nil = valid
		enabled bool
		scope   string
	}{
		{name: "neither", env: nil},
		{name: "both", env: map[string]string{EnvKeyVaultURL: "https://kv-x.vault.azure.net/", EnvKeyVaultSecret: "api-key"}, enabled: true, scope: "https://vault.azure.net/.default"},
		{name: "no trailing slash", env: map[string]string{EnvKeyVaultURL: "https://kv-x.vault.azure.net", EnvKeyVaultSecret: "api-key"}, enabled: true, scope: "https://vault.azure.net/.default"},
		{name: "china cloud", env: map[string]string{EnvKeyVaultURL: "https://kv-x.vault.azure.cn/", EnvKeyVaultSecret: "api-key"}, enabled: true, scope: "https://vault.azure.cn/.default"},
		{name: "loopback with CA", env: map[string]string{EnvKeyVaultURL: "https://127.0.0.1:8443/", EnvKeyVaultSecret: "api-key", EnvKeyVaultCAFile: pemFile}, enabled: true, scope: "https://vault.azure.net/.default"},
		{name: "url only", env: map[string]string{EnvKeyVaultURL: "https://kv-x.vault.azure.net/"}, want: []string{EnvKeyVaultURL, EnvKeyVaultSecret, "together"}},
		{name: "secret only", env: map[string]string{EnvKeyVaultSecret: "api-key"}, want: []string{EnvKeyVaultURL, EnvKeyVaultSecret}},
		{name: "plain http", env: map[string]string{EnvKeyVaultURL: "http://kv-x.vault.azure.net/", EnvKeyVaultSecret: "a"}, want: []string{EnvKeyVaultURL, "https"}},
		{name: "plain http loopback", env: map[string]string{EnvKeyVaultURL: "http://127.0.0.1:1/", EnvKeyVaultSecret: "a"}, want: []string{EnvKeyVaultURL, "https"}},
		{name: "path", env: map[string]string{EnvKeyVaultURL: "https://kv-x.vault.azure.net/secrets/a", EnvKeyVaultSecret: "a"}, want: []string{EnvKeyVaultURL, "base URL"}},
		{name: "credentials", env: map[string]string{EnvKeyVaultURL: "https://u:p@kv-x.vault.azure.net/", EnvKeyVaultSecret: "a"}, want: []string{EnvKeyVaultURL}},
		{name: "bare host", env: map[string]string{EnvKeyVaultURL: "https://vault/", EnvKeyVaultSecret: "a"}, want: []string{EnvKeyVaultURL}},
		// A token for a cloud's Key Vault goes only to that cloud's vault hosts: any
		// other host (whose parent domain would have become the token's audience)
		// is refused at start.
		{name: "host outside the clouds' vault domains", env: map[string]string{EnvKeyVaultURL: "https://kv.example.com/", EnvKeyVaultSecret: "a"}, want: []string{EnvKeyVaultURL, "vault.azure.net"}},
		{name: "vault domain as a label elsewhere", env: map[string]string{EnvKeyVaultURL: "https://kv.vault.azure.net.example.com/", EnvKeyVaultSecret: "a"}, want: []string{EnvKeyVaultURL}},
		{name: "nested name under the vault domain", env: map[string]string{EnvKeyVaultURL: "https://a.b.vault.azure.net/", EnvKeyVaultSecret: "a"}, want: []string{EnvKeyVaultURL}},
		{name: "secret with version", env: map[string]string{EnvKeyVaultURL: "https://kv-x.vault.azure.net/", EnvKeyVaultSecret: "a/0123"}, want: []string{EnvKeyVaultSecret}},
		{name: "secret too long", env: map[string]string{EnvKeyVaultURL: "https://kv-x.vault.azure.net/", EnvKeyVaultSecret: strings.Repeat("a", 128)}, want: []string{EnvKeyVaultSecret}},
		{name: "CA for a real vault", env: map[string]string{EnvKeyVaultURL: "https://kv-x.vault.azure.net/", EnvKeyVaultSecret: "a", EnvKeyVaultCAFile: pemFile}, want: []string{EnvKeyVaultCAFile, "loopback"}},
		{name: "CA missing", env: map[string]string{EnvKeyVaultURL: "https://127.0.0.1:1/", EnvKeyVaultSecret: "a", EnvKeyVaultCAFile: filepath.Join(dir, "nope")}, want: []string{EnvKeyVaultCAFile}},
		{name: "CA junk", env: map[string]string{EnvKeyVaultURL: "https://127.0.0.1:1/", EnvKeyVaultSecret: "a", EnvKeyVaultCAFile: junk}, want: []string{EnvKeyVaultCAFile, "no PEM"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{EnvCalleeURL: "https://callee.example/api/x", EnvCalleeAudience: "api://callee"}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if cfg.KeyVault.Enabled() != tt.enabled || (tt.enabled && cfg.KeyVault.Scope() != tt.scope) {
					t.Errorf("enabled %v scope %q; want %v %q", cfg.KeyVault.Enabled(), cfg.KeyVault.Scope(), tt.enabled, tt.scope)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v; want ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "Config.") {
				t.Errorf("error names a Go field: %v", err)
			}
		})
	}
}

func TestKeyVaultConfigValidate(t *testing.T) {
	u, _ := url.Parse("https://kv-x.vault.azure.net/")
	cfg := Config{CalleeURL: u, Audience: "api://callee", KeyVault: KeyVaultConfig{URL: u}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), EnvKeyVaultSecret) {
		t.Errorf("URL without secret: %v", err)
	}
	cfg.KeyVault.Secret = "ok"
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid: %v", err)
	}
}

// countingCred counts GetToken calls and answers a fixed opaque token.
type countingCred struct{ calls atomic.Int64 }

func (c *countingCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.calls.Add(1)
	return azcore.AccessToken{Token: "opaque-test-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// Attack: a loopback "vault" (where the resource check is off) names the callee as the
// challenge resource to obtain a token for the callee. The scope pin refuses: the
// credential is never asked and no Authorization header ever reaches the server.
func TestKeyVaultChallengeForAnotherResourceIsRefused(t *testing.T) {
	var withAuth atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			withAuth.Add(1)
		}
		w.Header().Set("WWW-Authenticate", `Bearer authorization="https://login.microsoftonline.com/tenant", resource="api://callee"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/")
	cred := &countingCred{}
	base := srv.Client().Transport
	r, err := NewSecretReader(KeyVaultConfig{URL: u, Secret: "api-key"}, cred, base, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, rep := r.Read(context.Background())
	if rep.OK || !strings.Contains(rep.Reason, "refused") {
		t.Errorf("report %+v; want a refusal", rep)
	}
	if cred.calls.Load() != 0 || withAuth.Load() != 0 {
		t.Errorf("credential asked %d times, %d requests carried a token; want 0, 0", cred.calls.Load(), withAuth.Load())
	}
}

// A vault with a certificate the caller does not trust is never sent a token.
func TestKeyVaultUntrustedCertificate(t *testing.T) {
	var withAuth atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			withAuth.Add(1)
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/")
	cred := &countingCred{}
	r, err := NewSecretReader(KeyVaultConfig{URL: u, Secret: "api-key"}, cred, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, rep := r.Read(ctx)
	if rep.OK || rep.Status != 0 || withAuth.Load() != 0 || cred.calls.Load() != 0 {
		t.Errorf("report %+v, %d authorized requests, %d token requests; want a transport failure and no token", rep, withAuth.Load(), cred.calls.Load())
	}
}

func TestSecretValueRedacts(t *testing.T) {
	v := SecretValue{v: "hunter2"}
	b, _ := v.MarshalJSON()
	for _, s := range []string{v.String(), v.GoString(), v.LogValue().String(), string(b)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("%q reveals the value", s)
		}
	}
	if v.Reveal() != "hunter2" {
		t.Error("Reveal")
	}
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Attack on the logs: a password in the vault URL's user info, or a signature in its
// query or fragment, is refused without being quoted — neither by ConfigFromEnv nor by
// Run (whose redaction catches query strings but not user info or fragments).
func TestKeyVaultURLErrorsQuoteNoCredential(t *testing.T) {
	const secret = "hunter2-kv-secret"
	for _, raw := range []string{
		"https://kvuser:" + secret + "@kv-x.vault.azure.net/",
		"https://" + secret + "@kv-x.vault.azure.net/",
		"https://kvuser:" + secret + "@127.0.0.1:8443/",
		"https://kv-x.vault.azure.net/?sig=" + secret,
		"https://kv-x.vault.azure.net/#" + secret,
		"kv-x.vault.azure.net/?sig=" + secret,
		"https://kv-x.vault.azure.net/secrets/x?sig=" + secret,
		"https://vault/?sig=" + secret,
		"http://kv-x.vault.azure.net/?sig=" + secret,
	} {
		t.Run(raw, func(t *testing.T) {
			env := map[string]string{EnvCalleeURL: "https://callee.example/api/x", EnvCalleeAudience: "api://callee",
				EnvKeyVaultURL: raw, EnvKeyVaultSecret: "api-key"}
			getenv := func(k string) string { return env[k] }
			_, err := ConfigFromEnv(getenv)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), EnvKeyVaultURL) {
				t.Fatalf("err = %v; want a configuration error naming %s", err, EnvKeyVaultURL)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("ConfigFromEnv's error quotes the credential: %v", err)
			}
			if err := Run(context.Background(), getenv, nil); err == nil || strings.Contains(err.Error(), secret) {
				t.Errorf("Run: %v", err)
			}
		})
	}
}

// Attack: a loopback vault answers the authorized read with a redirect to another
// port of the same host. net/http would keep the Authorization header (same host
// name), so only the same-origin rule keeps the vault token from the decoy: the
// decoy sees nothing, and the failed read quotes neither token nor decoy body.
func TestKeyVaultRedirectCarriesNoToken(t *testing.T) {
	var decoyHits, decoyAuth atomic.Int64
	decoy := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		decoyHits.Add(1)
		if r.Header.Get("Authorization") != "" {
			decoyAuth.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"value":"decoy-value","id":"`+"https://"+r.Host+`/secrets/api-key/0123456789abcdef0123456789abcdef"}`)
	}))
	defer decoy.Close()
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			vault := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") == "" {
					w.Header().Set("WWW-Authenticate", `Bearer authorization="https://login.microsoftonline.com/tenant", resource="https://vault.azure.net"`)
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				http.Redirect(w, r, decoy.URL+r.URL.RequestURI(), status)
			}))
			defer vault.Close()
			u, _ := url.Parse(vault.URL + "/")
			r, err := NewSecretReader(KeyVaultConfig{URL: u, Secret: "api-key"}, &countingCred{}, vault.Client().Transport, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			v, rep := r.Read(context.Background())
			if rep.OK || v.Reveal() != "" {
				t.Errorf("report %+v: the redirected read succeeded", rep)
			}
			if decoyHits.Load() != 0 || decoyAuth.Load() != 0 {
				t.Fatalf("the decoy got %d request(s), %d with a token", decoyHits.Load(), decoyAuth.Load())
			}
			if strings.Contains(rep.Reason, "opaque-test-token") || strings.Contains(rep.Reason, "decoy-value") {
				t.Errorf("reason %q quotes the token or a body", rep.Reason)
			}
		})
	}
}

// Attack on the logs: a vault answering 200 with a body the client cannot decode (the
// value in the wrong type, garbage after it, a bad sibling field) fails the read; the
// report — what the run logs and returns — never quotes the value.
func TestKeyVaultMalformedAnswerQuotesNoValue(t *testing.T) {
	const value = "s3cr3t-kv-value"
	for _, body := range []string{
		`{"value":"` + value + `"}garbage`,
		`{"value":"` + value + `","attributes":"x","id":"{ID}"}`,
		`{"value":"` + value + `","id":"{ID}","tags":{"a":5}}`,
		`{"value":["` + value + `"],"id":"{ID}"}`,
		`{"value":"` + value + `","id":"{ID}","contentType":{"` + value + `":1}}`,
		`{"value":"` + value + `","id":"{ID}"`,
	} {
		t.Run(body, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") == "" {
					w.Header().Set("WWW-Authenticate", `Bearer authorization="https://login.microsoftonline.com/tenant", resource="https://vault.azure.net"`)
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, strings.ReplaceAll(body, "{ID}", "https://"+r.Host+"/secrets/api-key/0123456789abcdef0123456789abcdef"))
			}))
			defer srv.Close()
			u, _ := url.Parse(srv.URL + "/")
			r, err := NewSecretReader(KeyVaultConfig{URL: u, Secret: "api-key"}, &countingCred{}, srv.Client().Transport, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			v, rep := r.Read(context.Background())
			if rep.OK || v.Reveal() != "" {
				t.Fatalf("a malformed answer was read: %+v", rep)
			}
			if s := rep.Summary() + rep.Code + rep.Reason; strings.Contains(s, value) {
				t.Errorf("the report quotes the value: %s", s)
			}
		})
	}
}
