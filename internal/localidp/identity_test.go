package localidp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/testutil"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/coreos/go-oidc/v3/oidc"
)

// useEndpoint points azidentity at m for the rest of the test.
func useEndpoint(t *testing.T, m *ManagedIdentity) {
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

func getToken(cred azcore.TokenCredential, scope string) (azcore.AccessToken, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
}

func TestAzidentityV1Token(t *testing.T) {
	p := start(t, Options{})
	resource := uniqueResource("api://callee")
	id := testIdentity
	id.AppRoles = map[string][]string{resource: {"Callee.Invoke"}}
	m := addIdentity(t, p, id)
	useEndpoint(t, m)
	cred := newCredential(t, nil)

	at, err := getToken(cred, resource+"/.default")
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	c := payload(t, at.Token)
	want := map[string]string{
		"aud": resource, "iss": p.IssuerV1(), "appid": id.ClientID, "oid": id.ObjectID, "sub": id.ObjectID,
		"tid": p.TenantID(), "idtyp": "app", "ver": "1.0", "appidacr": "2",
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %q", k, c[k], v)
		}
	}
	if got := strs(c["roles"]); !slices.Equal(got, []string{"Callee.Invoke"}) {
		t.Errorf("roles = %v, want [Callee.Invoke]", got)
	}
	exp, _ := strconv.ParseInt(c["exp"].(jsonNumber).String(), 10, 64)
	if !at.ExpiresOn.Equal(time.Unix(exp, 0)) {
		t.Errorf("ExpiresOn %v, exp claim %d", at.ExpiresOn, exp)
	}
	if h := header(t, at.Token); h["kid"] != p.CurrentKID() || h["alg"] != "RS256" {
		t.Errorf("header = %v", h)
	}

	// The token verifies against the v1 discovery document and keys.
	ctx := oidc.InsecureIssuerURLContext(context.Background(), p.IssuerV1())
	provider, err := oidc.NewProvider(ctx, p.AuthorityURL()+"/"+p.TenantID())
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	if _, err := provider.Verifier(&oidc.Config{ClientID: resource}).Verify(ctx, at.Token); err != nil {
		t.Errorf("Verify: %v", err)
	}

	// MSAL caches the 24 h token: a second credential reuses it.
	if _, err := getToken(newCredential(t, nil), resource+"/.default"); err != nil {
		t.Fatalf("second GetToken: %v", err)
	}
	if m.Requests() != 1 || m.Issued() != 1 {
		t.Errorf("Requests %d, Issued %d; want 1, 1", m.Requests(), m.Issued())
	}
}

// jsonNumber is what payload() decodes numbers to.
type jsonNumber = interface{ String() string }

func TestAzidentityV2Token(t *testing.T) {
	resource := uniqueResource("api://callee")
	const calleeAppID = "33333333-3333-4333-8333-333333333333"
	p := start(t, Options{ResourceClientIDs: map[string]string{resource: calleeAppID}})
	id := testIdentity
	id.AppRoles = map[string][]string{resource: {"Callee.Invoke"}}
	m := addIdentity(t, p, id)
	m.SetTokenVersion(2)
	useEndpoint(t, m)

	at, err := getToken(newCredential(t, nil), resource+"/.default")
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	provider, err := oidc.NewProvider(context.Background(), p.IssuerV2())
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: calleeAppID}).Verify(context.Background(), at.Token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var c struct {
		Azp   string   `json:"azp"`
		Ver   string   `json:"ver"`
		Roles []string `json:"roles"`
		Appid *string  `json:"appid"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Azp != id.ClientID || c.Ver != "2.0" || !slices.Equal(c.Roles, []string{"Callee.Invoke"}) || c.Appid != nil {
		t.Errorf("v2 claims = %+v", c)
	}
}

func TestAzidentityUserAssignedSelectors(t *testing.T) {
	p := start(t, Options{})
	m := addIdentity(t, p, testIdentity)
	useEndpoint(t, m)
	tests := []struct {
		name string
		id   azidentity.ManagedIDKind
		ok   bool
	}{
		{"client id", azidentity.ClientID(testIdentity.ClientID), true},
		{"object id", azidentity.ObjectID(testIdentity.ObjectID), true},
		{"wrong client id", azidentity.ClientID("99999999-9999-4999-8999-999999999999"), false},
		{"resource id unknown", azidentity.ResourceID("/subscriptions/x/rg/y"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := m.Issued()
			_, err := getToken(newCredential(t, &azidentity.ManagedIdentityCredentialOptions{ID: tt.id}), uniqueResource("api://sel"))
			if (err == nil) != tt.ok {
				t.Fatalf("GetToken err = %v, want ok=%v", err, tt.ok)
			}
			if got := m.Issued() - before; got != map[bool]int64{true: 1, false: 0}[tt.ok] {
				t.Errorf("issued %d tokens", got)
			}
		})
	}
}

func TestAzidentityWrongHeader(t *testing.T) {
	p := start(t, Options{})
	m := addIdentity(t, p, testIdentity)
	t.Setenv("IDENTITY_ENDPOINT", m.Endpoint())
	t.Setenv("IDENTITY_HEADER", "not-the-secret")
	_, err := getToken(newCredential(t, nil), uniqueResource("api://callee")+"/.default")
	if err == nil {
		t.Fatal("GetToken succeeded with a wrong IDENTITY_HEADER")
	}
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil || afe.RawResponse.StatusCode != http.StatusUnauthorized {
		t.Errorf("error = %v, want AuthenticationFailedError with status 401", err)
	}
	if strings.Contains(err.Error(), m.Header()) {
		t.Error("error reveals the identity header")
	}
	if m.Requests() != 1 || m.Issued() != 0 {
		t.Errorf("Requests %d, Issued %d; want 1, 0", m.Requests(), m.Issued())
	}
}

func TestAzidentitySetFailure(t *testing.T) {
	p := start(t, Options{})
	m := addIdentity(t, p, testIdentity)
	useEndpoint(t, m)
	resource := uniqueResource("api://callee") + "/.default"
	cred := newCredential(t, nil)

	// Retry-After beyond azcore's 60 s MaxRetryDelay: it gives up at once.
	m.SetFailure(http.StatusServiceUnavailable, "3600")
	_, err := getToken(cred, resource)
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil || afe.RawResponse.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("error = %v, want AuthenticationFailedError with status 503", err)
	}
	if got := afe.RawResponse.Header.Get("Retry-After"); got != "3600" {
		t.Errorf("Retry-After = %q", got)
	}
	if m.Requests() != 1 || m.Issued() != 0 {
		t.Errorf("Requests %d, Issued %d; want 1, 0", m.Requests(), m.Issued())
	}

	// Healthy again: the same credential gets a token (errors are not cached).
	m.SetFailure(0, "")
	if _, err := getToken(cred, resource); err != nil {
		t.Fatalf("GetToken after recovery: %v", err)
	}
	if m.Requests() != 2 || m.Issued() != 1 {
		t.Errorf("Requests %d, Issued %d; want 2, 1", m.Requests(), m.Issued())
	}
}

func TestAzidentityRetriesAreCounted(t *testing.T) {
	p := start(t, Options{})
	m := addIdentity(t, p, testIdentity)
	useEndpoint(t, m)
	m.SetFailure(http.StatusInternalServerError, "")
	cred := newCredential(t, &azidentity.ManagedIdentityCredentialOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: 3, RetryDelay: time.Millisecond, MaxRetryDelay: 2 * time.Millisecond},
	}})
	if _, err := getToken(cred, uniqueResource("api://callee")); err == nil {
		t.Fatal("GetToken succeeded against a failing endpoint")
	}
	if m.Requests() != 4 || m.Issued() != 0 {
		t.Errorf("Requests %d, Issued %d; want 4 (1 + 3 retries), 0", m.Requests(), m.Issued())
	}
}

func TestAzidentityRefreshInAndShortLifetime(t *testing.T) {
	p := start(t, Options{})
	m := addIdentity(t, p, testIdentity)
	useEndpoint(t, m)
	cred := newCredential(t, nil)

	m.SetRefreshIn(time.Hour)
	at, err := getToken(cred, uniqueResource("api://refresh"))
	if err != nil {
		t.Fatal(err)
	}
	if at.RefreshOn.IsZero() || !at.RefreshOn.Before(at.ExpiresOn) {
		t.Errorf("RefreshOn %v, ExpiresOn %v: want non-zero RefreshOn before ExpiresOn", at.RefreshOn, at.ExpiresOn)
	}

	// MSAL does not cache tokens living 5 minutes or less.
	m.SetRefreshIn(0)
	m.SetTokenLifetime(4 * time.Minute)
	short := uniqueResource("api://short")
	before := m.Requests()
	for range 2 {
		if _, err := getToken(cred, short); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Requests() - before; got != 2 {
		t.Errorf("%d requests for 2 GetToken calls with 4-minute tokens, want 2", got)
	}
}

func TestTokenEndpointProtocol(t *testing.T) {
	p := start(t, Options{})
	id := testIdentity
	id.ResourceID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/caller"
	m := addIdentity(t, p, id)
	good := http.Header{"X-Identity-Header": {m.Header()}}
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return "?" + v.Encode()
	}
	base := []string{"api-version", "2019-08-01", "resource", "api://callee"}
	with := func(kv ...string) string { return q(append(slices.Clone(base), kv...)...) }
	tests := []struct {
		name     string
		method   string
		path     string
		query    string
		hdr      http.Header
		status   int
		resource string // expected resource in a 200 response
	}{
		{"system assigned", "GET", TokenPath, with(), good, 200, "api://callee"},
		{"strips .default", "GET", TokenPath, q("api-version", "2019-08-01", "resource", "api://callee/.default"), good, 200, "api://callee"},
		{"client_id match (case-insensitive)", "GET", TokenPath, with("client_id", strings.ToUpper(id.ClientID)), good, 200, "api://callee"},
		{"object_id match", "GET", TokenPath, with("object_id", id.ObjectID), good, 200, "api://callee"},
		{"principal_id match", "GET", TokenPath, with("principal_id", id.ObjectID), good, 200, "api://callee"},
		{"mi_res_id match", "GET", TokenPath, with("mi_res_id", strings.ToLower(id.ResourceID)), good, 200, "api://callee"},
		{"client_id mismatch", "GET", TokenPath, with("client_id", "x"), good, 400, ""},
		{"object_id mismatch", "GET", TokenPath, with("object_id", "x"), good, 400, ""},
		{"principal_id mismatch", "GET", TokenPath, with("principal_id", "x"), good, 400, ""},
		{"mi_res_id mismatch", "GET", TokenPath, with("mi_res_id", "x"), good, 400, ""},
		{"two selectors", "GET", TokenPath, with("client_id", id.ClientID, "object_id", id.ObjectID), good, 400, ""},
		{"missing api-version", "GET", TokenPath, q("resource", "api://callee"), good, 400, ""},
		{"old api-version", "GET", TokenPath, q("api-version", "2017-09-01", "resource", "api://callee"), good, 400, ""},
		{"missing resource", "GET", TokenPath, q("api-version", "2019-08-01"), good, 400, ""},
		{"only .default", "GET", TokenPath, q("api-version", "2019-08-01", "resource", "/.default"), good, 400, ""},
		{"resource twice", "GET", TokenPath, with("resource", "api://other"), good, 400, ""},
		{"malformed query", "GET", TokenPath, "?api-version=2019-08-01&resource=%zz", good, 400, ""},
		{"missing header", "GET", TokenPath, with(), nil, 401, ""},
		{"wrong header", "GET", TokenPath, with(), http.Header{"X-Identity-Header": {m.Header() + "x"}}, 401, ""},
		{"header twice", "GET", TokenPath, with(), http.Header{"X-Identity-Header": {m.Header(), m.Header()}}, 401, ""},
		{"legacy secret header", "GET", TokenPath, with(), http.Header{"Secret": {m.Header()}}, 401, ""},
		{"POST", "POST", TokenPath, with(), good, 405, ""},
		{"wrong path", "GET", "/metadata/identity/oauth2/token", with(), good, 404, ""},
	}
	base0 := strings.TrimSuffix(m.Endpoint(), TokenPath)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs, issued := m.Requests(), m.Issued()
			status, body := do(t, tt.method, base0+tt.path+tt.query, tt.hdr)
			if status != tt.status {
				t.Fatalf("status = %d, want %d: %s", status, tt.status, body)
			}
			if bytes.Contains(body, []byte(m.Header())) {
				t.Fatal("response echoes the identity header")
			}
			if m.Requests() != reqs+1 {
				t.Errorf("Requests grew by %d, want 1", m.Requests()-reqs)
			}
			doc := decodeJSON(t, body)
			if status != 200 {
				if doc["error"] == nil || doc["error_description"] == nil {
					t.Errorf("error body = %s", body)
				}
				if m.Issued() != issued {
					t.Error("Issued grew on a rejected request")
				}
				return
			}
			if m.Issued() != issued+1 {
				t.Error("Issued did not grow")
			}
			tok, _ := doc["access_token"].(string)
			c := payload(t, tok)
			if doc["token_type"] != "Bearer" || doc["resource"] != tt.resource || doc["client_id"] != id.ClientID ||
				c["aud"] != tt.resource {
				t.Errorf("response = %v, aud %v", doc, c["aud"])
			}
			if e, ok := doc["expires_on"].(string); !ok || e != c["exp"].(jsonNumber).String() {
				t.Errorf("expires_on = %#v, exp = %v", doc["expires_on"], c["exp"])
			}
			if nb, ok := doc["not_before"].(string); !ok || nb != c["nbf"].(jsonNumber).String() {
				t.Errorf("not_before = %#v, nbf = %v", doc["not_before"], c["nbf"])
			}
			if _, ok := doc["refresh_in"]; ok {
				t.Error("refresh_in present by default")
			}
		})
	}
}

func TestFailureAnswersEveryRequest(t *testing.T) {
	p := start(t, Options{})
	m := addIdentity(t, p, testIdentity)
	m.SetFailure(http.StatusTooManyRequests, "7")
	req, _ := http.NewRequest(http.MethodPost, m.Endpoint(), nil) // even an invalid request
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("status %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	m.SetFailure(http.StatusBadGateway, "")
	resp, err = testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Retry-After") != "" {
		t.Errorf("status %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if m.Requests() != 2 || m.Issued() != 0 {
		t.Errorf("Requests %d Issued %d", m.Requests(), m.Issued())
	}
}

func TestAddIdentityValidation(t *testing.T) {
	p := start(t, Options{})
	_, err := p.AddIdentity(Identity{Name: "x"})
	if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "Identity.ClientID") || !strings.Contains(err.Error(), "Identity.ObjectID") {
		t.Errorf("AddIdentity error = %v, want both Identity.ClientID and Identity.ObjectID named", err)
	}
	m := addIdentity(t, p, Identity{ClientID: "c", ObjectID: "o"})
	if m.Identity().Name != "c" {
		t.Errorf("default Name = %q, want the client ID", m.Identity().Name)
	}
	other := addIdentity(t, p, Identity{ClientID: "c2", ObjectID: "o2"})
	if other.Header() == m.Header() || other.Endpoint() == m.Endpoint() {
		t.Error("two endpoints share a header or an address")
	}
	if env := m.Env(); !slices.Equal(env, []string{"IDENTITY_ENDPOINT=" + m.Endpoint(), "IDENTITY_HEADER=" + m.Header()}) {
		t.Errorf("Env = %v", env)
	}
	if !strings.HasPrefix(m.Endpoint(), "http://127.0.0.1:") || !strings.HasSuffix(m.Endpoint(), "/msi/token") {
		t.Errorf("Endpoint = %q", m.Endpoint())
	}
}

func TestIdentityIsCopied(t *testing.T) {
	p := start(t, Options{})
	roles := []string{"A"}
	in := Identity{ClientID: "c", ObjectID: "o", AppRoles: map[string][]string{"api://r": roles}}
	m := addIdentity(t, p, in)
	roles[0] = "changed"
	in.AppRoles["api://r2"] = []string{"B"}
	got := m.Identity()
	if !slices.Equal(got.AppRoles["api://r"], []string{"A"}) || len(got.AppRoles) != 1 {
		t.Errorf("identity changed through the caller's map: %v", got.AppRoles)
	}
	got.AppRoles["api://r"][0] = "mutated"
	if m.Identity().AppRoles["api://r"][0] != "A" {
		t.Error("Identity() returned shared state")
	}
	m.SetAppRoles("api://r", nil)
	m.SetAppRoles("api://new", []string{"N"})
	if got := m.Identity().AppRoles; len(got) != 1 || got["api://new"][0] != "N" {
		t.Errorf("after SetAppRoles: %v", got)
	}
}

func TestClose(t *testing.T) {
	p, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := addIdentity(t, p, testIdentity)
	p.Close()
	p.Close() // idempotent
	for _, u := range []string{p.JWKSURLV2(), m.Endpoint()} {
		if resp, err := testClient.Get(u); err == nil {
			resp.Body.Close()
			t.Errorf("GET %s after Close succeeded", u)
		}
	}
	if _, err := p.AddIdentity(testIdentity); err == nil {
		t.Error("AddIdentity after Close succeeded")
	}
}

// syncBuffer collects log output from concurrent writers.
type syncBuffer = testutil.SyncBuffer

func TestLogsCarryNoSecrets(t *testing.T) {
	var buf syncBuffer
	p := start(t, Options{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	m := addIdentity(t, p, testIdentity)
	u := m.Endpoint() + "?api-version=2019-08-01&resource=api%3A%2F%2Fcallee"
	_, ok := do(t, "GET", u, http.Header{"X-Identity-Header": {m.Header()}})
	tok, _ := decodeJSON(t, ok)["access_token"].(string)
	do(t, "GET", u, http.Header{"X-Identity-Header": {"guess"}})
	p.RotateKey()
	logs := buf.String()
	if !strings.Contains(logs, "token issued") || !strings.Contains(logs, "token request rejected") || !strings.Contains(logs, testIdentity.ClientID) {
		t.Errorf("expected issue/reject lines with the appid, got:\n%s", logs)
	}
	if tok == "" || strings.Contains(logs, tok) || strings.Contains(logs, strings.Split(tok, ".")[2]) {
		t.Error("logs contain the token")
	}
	if strings.Contains(logs, m.Header()) || strings.Contains(logs, "guess") {
		t.Error("logs contain an identity header value")
	}
}

func TestFormattingHidesSecrets(t *testing.T) {
	p := start(t, Options{})
	m := addIdentity(t, p, testIdentity)
	_, key := p.SigningKey()
	var buf syncBuffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "mi", m, "p", p)
	out := fmt.Sprintf("%v %+v %#v %s %v %+v %#v", m, m, m, m, p, p, p) + buf.String()
	if strings.Contains(out, m.Header()) {
		t.Error("formatting a ManagedIdentity reveals its header")
	}
	if strings.Contains(out, key.D.String()) || strings.Contains(out, key.Primes[0].String()) {
		t.Error("formatting a Platform reveals its private key")
	}
	if !strings.Contains(out, m.Endpoint()) || !strings.Contains(out, p.AuthorityURL()) {
		t.Errorf("formatting lost the useful parts: %s", out)
	}
}

// TestConcurrentUse hammers endpoints, JWKS and key rotation together; run
// with -race it proves the platform's state is properly synchronised.
func TestConcurrentUse(t *testing.T) {
	p := start(t, Options{})
	m := addIdentity(t, p, testIdentity)
	u := m.Endpoint() + "?api-version=2019-08-01&resource=api%3A%2F%2Fcallee"
	hdr := http.Header{"X-Identity-Header": {m.Header()}}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if status, body := do(t, "GET", u, hdr); status != http.StatusOK {
					t.Errorf("token status %d: %s", status, body)
				}
				if status, _ := get(t, p.JWKSURLV1()); status != http.StatusOK {
					t.Errorf("JWKS status %d", status)
				}
			}
		})
	}
	wg.Go(func() {
		for range 2 {
			k := p.RotateKey()
			m.SetAppRoles("api://callee", []string{"R"})
			m.SetTokenVersion(2)
			m.SetTokenVersion(1)
			_ = m.Identity()
			p.RemoveKey(k)
		}
	})
	wg.Wait()
	if m.Issued() != 20 || p.JWKSRequests() != 20 {
		t.Errorf("Issued %d, JWKSRequests %d; want 20, 20", m.Issued(), p.JWKSRequests())
	}
}
