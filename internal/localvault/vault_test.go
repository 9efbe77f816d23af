package localvault

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/f2fauth/f2fauth/internal/localidp"
	"github.com/f2fauth/f2fauth/internal/testutil"
)

const secretValue = "s3cr3t-value-never-logged"

var vaultReader = localidp.Identity{Name: "vault-reader", ClientID: "44444444-4444-4444-8444-444444444444", ObjectID: "55555555-5555-4555-8555-555555555555"}

// startVault starts a platform and a vault whose access list holds readers, with
// secret "db-password" in one version.
func startVault(t *testing.T, readers ...string) (*localidp.Platform, *Vault, string) {
	t.Helper()
	p := startPlatform(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := Start(ctx, p, Options{Name: "kv-test", Readers: readers})
	if err != nil {
		t.Fatalf("StartKeyVault: %v", err)
	}
	ver, err := v.SetSecret("db-password", secretValue)
	if err != nil {
		t.Fatalf("SetSecret: %v", err)
	}
	return p, v, ver
}

// vaultClient trusts only the vault's certificate.
func vaultClient(v *Vault) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: v.CertPool()}}}
}

func vaultDo(t *testing.T, v *Vault, method, url string, hdr http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vals := range hdr {
		req.Header[k] = vals
	}
	resp, err := vaultClient(v).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func bearerHeader(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

func TestKeyVaultProtocol(t *testing.T) {
	p, v, v1 := startVault(t, vaultReader.ObjectID)
	v2, _ := v.SetSecret("db-password", "rotated")
	base := strings.TrimSuffix(v.URL(), "/")
	q := "?api-version=" + APIVersion
	mint := func(id localidp.Identity, aud string, version int, edit func(localidp.Claims)) string {
		c := p.AccessTokenClaims(id, aud, version)
		if edit != nil {
			edit(c)
		}
		tok, err := p.Mint(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := mint(vaultReader, Resource, 1, nil)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	kid, _ := p.SigningKey()
	payloadJSON, _ := json.Marshal(p.AccessTokenClaims(vaultReader, Resource, 1))
	forged := testutil.Compact(map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, payloadJSON, testutil.RS256(other))
	rogue := localidp.Identity{ClientID: "66666666-6666-4666-8666-666666666666", ObjectID: "77777777-7777-4777-8777-777777777777"}
	byApp := localidp.Identity{ClientID: "88888888-8888-4888-8888-888888888888", ObjectID: "99999999-9999-4999-8999-999999999999"}
	v.Grant(byApp.ClientID)

	tests := []struct {
		name      string
		method    string
		path      string
		hdr       http.Header
		status    int
		code      string
		inner     string
		challenge bool
		value     string
		version   string
	}{
		{name: "no token: challenge", path: "/secrets/db-password/" + q, status: 401, code: "Unauthorized", challenge: true},
		{name: "basic scheme", path: "/secrets/db-password/" + q, hdr: http.Header{"Authorization": {"Basic eA=="}}, status: 401, code: "Unauthorized", challenge: true},
		{name: "two authorization headers", path: "/secrets/db-password/" + q, hdr: http.Header{"Authorization": {"Bearer " + good, "Bearer " + good}}, status: 401, code: "Unauthorized", challenge: true},
		{name: "forged signature", path: "/secrets/db-password/" + q, hdr: bearerHeader(forged), status: 401, code: "Unauthorized", challenge: true},
		{name: "token for the callee", path: "/secrets/db-password/" + q, hdr: bearerHeader(mint(vaultReader, "api://callee", 1, nil)), status: 401, code: "Unauthorized", challenge: true},
		{name: "expired", path: "/secrets/db-password/" + q, hdr: bearerHeader(mint(vaultReader, Resource, 1, func(c localidp.Claims) {
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		})), status: 401, code: "Unauthorized", challenge: true},
		{name: "foreign issuer", path: "/secrets/db-password/" + q, hdr: bearerHeader(mint(vaultReader, Resource, 1, func(c localidp.Claims) {
			c["iss"] = "https://sts.windows.net/other-tenant/"
		})), status: 401, code: "Unauthorized", challenge: true},
		{name: "garbage token", path: "/secrets/db-password/" + q, hdr: bearerHeader("a.b.c"), status: 401, code: "Unauthorized", challenge: true},
		{name: "not on the access list", path: "/secrets/db-password/" + q, hdr: bearerHeader(mint(rogue, Resource, 1, nil)), status: 403, code: "Forbidden", inner: "AccessDenied"},
		{name: "403 before 404", path: "/secrets/no-such/" + q, hdr: bearerHeader(mint(rogue, Resource, 1, nil)), status: 403, code: "Forbidden", inner: "AccessDenied"},
		{name: "latest (trailing slash)", path: "/secrets/db-password/" + q, hdr: bearerHeader(good), status: 200, value: "rotated", version: v2},
		{name: "latest (no slash)", path: "/secrets/DB-Password" + q, hdr: bearerHeader(good), status: 200, value: "rotated", version: v2},
		{name: "old version", path: "/secrets/db-password/" + v1 + q, hdr: bearerHeader(good), status: 200, value: secretValue, version: v1},
		{name: "v2 token", path: "/secrets/db-password" + q, hdr: bearerHeader(mint(vaultReader, Resource, 2, nil)), status: 200, value: "rotated", version: v2},
		{name: "granted by app id", path: "/secrets/db-password" + q, hdr: bearerHeader(mint(byApp, Resource, 1, nil)), status: 200, value: "rotated", version: v2},
		{name: "unknown secret", path: "/secrets/no-such/" + q, hdr: bearerHeader(good), status: 404, code: "SecretNotFound"},
		{name: "unknown version", path: "/secrets/db-password/" + strings.Repeat("0", 32) + q, hdr: bearerHeader(good), status: 404, code: "SecretNotFound"},
		{name: "bad version", path: "/secrets/db-password/xyz" + q, hdr: bearerHeader(good), status: 400, code: "BadParameter"},
		{name: "no api-version", path: "/secrets/db-password/", hdr: bearerHeader(good), status: 400, code: "BadParameter"},
		{name: "other path", path: "/keys/k" + q, hdr: bearerHeader(good), status: 404, code: "NotFound"},
		{name: "PUT", method: http.MethodPut, path: "/secrets/db-password" + q, hdr: bearerHeader(good), status: 405, code: "BadParameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			status, body := vaultDo(t, v, method, base+tt.path, tt.hdr)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if strings.Contains(string(body), "eyJ") {
				t.Error("body echoes a token")
			}
			doc := decodeJSON(t, body)
			if tt.status == 200 {
				id, _ := doc["id"].(string)
				if doc["value"] != tt.value || id != v.URL()+"secrets/"+strings.Split(strings.TrimPrefix(tt.path, "/secrets/"), "/")[0][:len("db-password")]+"/"+tt.version {
					t.Errorf("bundle value/id = %v / %v, want version %s", doc["value"] == tt.value, id, tt.version)
				}
				attrs, _ := doc["attributes"].(map[string]any)
				if attrs["enabled"] != true {
					t.Errorf("attributes = %v", attrs)
				}
				return
			}
			e, _ := doc["error"].(map[string]any)
			if e["code"] != tt.code {
				t.Errorf("error.code = %v, want %s", e["code"], tt.code)
			}
			if msg, _ := e["message"].(string); msg == "" {
				t.Error("error.message empty")
			}
			if tt.inner != "" {
				inner, _ := e["innererror"].(map[string]any)
				if inner["code"] != tt.inner {
					t.Errorf("innererror = %v, want code %s", e["innererror"], tt.inner)
				}
			}
			if strings.Contains(string(body), "rotated") || strings.Contains(string(body), secretValue) {
				t.Error("a denial carries the secret")
			}
		})
	}
	// The challenge, exactly as azsecrets parses it.
	req, _ := http.NewRequest(http.MethodGet, base+"/secrets/db-password/"+q, nil)
	resp, err := vaultClient(v).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := `Bearer authorization="` + p.AuthorityURL() + "/" + p.TenantID() + `", resource="https://vault.azure.net"`
	if got := resp.Header.Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}
	if s := v.Stats(); s.Forbidden != 2 || s.Served != 5 || s.Challenges < 4 || s.Unauthorized != 5 {
		t.Errorf("stats = %+v", s)
	}
}

func TestKeyVaultRevokeTakesEffectAtOnce(t *testing.T) {
	p, v, _ := startVault(t, vaultReader.ObjectID)
	tok, _ := p.Mint(p.AccessTokenClaims(vaultReader, Resource, 1))
	u := v.URL() + "secrets/db-password?api-version=" + APIVersion
	if status, _ := vaultDo(t, v, http.MethodGet, u, bearerHeader(tok)); status != 200 {
		t.Fatalf("before revoke: %d", status)
	}
	v.Revoke(vaultReader.ObjectID)
	if status, _ := vaultDo(t, v, http.MethodGet, u, bearerHeader(tok)); status != 403 {
		t.Fatalf("after revoke: %d, want 403", status)
	}
}

func TestOptionsAndSecrets(t *testing.T) {
	p := startPlatform(t)
	ctx := context.Background()
	if _, err := Start(ctx, p, Options{Readers: []string{" "}}); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("empty reader: %v", err)
	}
	v, err := Start(ctx, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "a/b", "a b", strings.Repeat("x", 128), "../x"} {
		if _, err := v.SetSecret(name, "x"); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("SetSecret(%q): %v", name, err)
		}
	}
	if _, err := v.SetSecret("big", strings.Repeat("x", maxSecretBytes+1)); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("oversized value: %v", err)
	}
	ver, err := v.SetSecret("ok-Name-1", "x")
	if err != nil || len(ver) != 32 {
		t.Errorf("SetSecret = %q, %v", ver, err)
	}
	for _, s := range []string{v.String(), v.GoString(), v.LogValue().String()} {
		if strings.Contains(s, "x\"") || !strings.Contains(s, v.URL()) {
			t.Errorf("description %q", s)
		}
	}
	if _, err := Start(ctx, nil, Options{}); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("nil platform: %v", err)
	}
	// A platform that is gone: Start gives up when ctx ends instead of hanging.
	p.Close()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := Start(short, p, Options{}); err == nil {
		t.Error("Start against a closed platform succeeded")
	}
}

// The real azsecrets client, over the real managed-identity credential, against the
// local vault: challenge, token for https://vault.azure.net, read, rotation, 403.
func TestKeyVaultWithAzsecrets(t *testing.T) {
	p, v, v1 := startVault(t)
	// A client ID of its own: MSAL caches managed-identity tokens process-wide.
	b := make([]byte, 4)
	rand.Read(b)
	id := vaultReader
	id.ClientID = "44444444-4444-4444-8444-4444" + hex.EncodeToString(b)
	m := addIdentity(t, p, id)
	useEndpoint(t, m)
	cred := newCredential(t, &azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(id.ClientID)})
	client, err := azsecrets.NewClient(v.URL(), cred, &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Transport: vaultClient(v),
		},
		DisableChallengeResourceVerification: true, // loopback vault only
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err = client.GetSecret(ctx, "db-password", "", nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 403 || re.ErrorCode != "Forbidden" {
		t.Fatalf("not on the access list: err = %v, want a 403 Forbidden", err)
	}
	v.Grant(id.ObjectID)
	resp, err := client.GetSecret(ctx, "db-password", "", nil)
	if err != nil {
		t.Fatalf("GetSecret: %v", err)
	}
	if *resp.Value != secretValue || resp.ID.Name() != "db-password" || resp.ID.Version() != v1 {
		t.Errorf("got %s/%s (value ok: %v)", resp.ID.Name(), resp.ID.Version(), *resp.Value == secretValue)
	}
	v2, _ := v.SetSecret("db-password", "rotated")
	resp, err = client.GetSecret(ctx, "db-password", "", nil)
	if err != nil || *resp.Value != "rotated" || resp.ID.Version() != v2 {
		t.Fatalf("after rotation: %v", err)
	}
	if _, err := client.GetSecret(ctx, "nope", "", nil); !errors.As(err, &re) || re.StatusCode != 404 || re.ErrorCode != "SecretNotFound" {
		t.Errorf("unknown secret: %v", err)
	}
	if got := m.IssuedFor(Resource); got != 1 {
		t.Errorf("tokens issued for the vault = %d, want 1", got)
	}
}

// FuzzKeyVaultRequest throws arbitrary paths, queries and Authorization headers at the
// vault (with and without a valid token): never 5xx, always Key Vault's JSON, and the
// secret only in a 200.
func FuzzKeyVaultRequest(f *testing.F) {
	p := startPlatform(f)
	v, err := Start(context.Background(), p, Options{Readers: []string{vaultReader.ObjectID}})
	if err != nil {
		f.Fatal(err)
	}
	ver, _ := v.SetSecret("db-password", secretValue)
	good, _ := p.Mint(p.AccessTokenClaims(vaultReader, Resource, 1))
	f.Add("/secrets/db-password/", "api-version="+APIVersion, "", true)
	f.Add("/secrets/db-password/"+ver, "api-version="+APIVersion, "", true)
	f.Add("/secrets//", "api-version=x", "Bearer a.b.c", false)
	f.Add("/secrets/a/b/c", "", "bearer  ", false)
	f.Add("/secrets/%2e%2e/x", "api-version=2025-07-01&api-version=1", "Bearer x y", true)
	f.Fuzz(func(t *testing.T, path, query, authz string, useGood bool) {
		req := httptest.NewRequest(http.MethodGet, "https://127.0.0.1/", nil)
		req.URL.Path = path
		req.URL.RawQuery = query
		if useGood {
			req.Header.Set("Authorization", "Bearer "+good)
		} else if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		rec := httptest.NewRecorder()
		v.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d", rec.Code)
		}
		body := rec.Body.String()
		if !json.Valid([]byte(body)) {
			t.Fatalf("non-JSON body %q", body)
		}
		if rec.Code != http.StatusOK && strings.Contains(body, secretValue) {
			t.Fatal("a non-200 answer carries the secret")
		}
		if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
			t.Fatal("401 without a challenge")
		}
	})
}
