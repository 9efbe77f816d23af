package tokencachetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func newEndpoint(tb testing.TB, opts Options) *Endpoint {
	tb.Helper()
	e, err := NewEndpoint(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.Close)
	return e
}

// uniqueResource: MSAL caches per resource for the whole process, so every
// test (and every -count run) needs its own.
func uniqueResource(base string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return base + "-" + hex.EncodeToString(b)
}

var client = &http.Client{Timeout: 10 * time.Second}

func do(tb testing.TB, method, u string, hdr http.Header) (int, http.Header, map[string]any) {
	tb.Helper()
	req, _ := http.NewRequest(method, u, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var doc map[string]any
	json.Unmarshal(b, &doc)
	return res.StatusCode, res.Header, doc
}

func getToken(cred azcore.TokenCredential, resource string) (azcore.AccessToken, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{resource + "/.default"}})
}

func TestNewEndpointOptions(t *testing.T) {
	if _, err := NewEndpoint(Options{TokenLifetime: -time.Second}); err == nil || !strings.Contains(err.Error(), "Options.TokenLifetime") {
		t.Errorf("negative lifetime: err = %v", err)
	}
	a, b := newEndpoint(t, Options{}), newEndpoint(t, Options{})
	if a.URL() == b.URL() || a.Header() == b.Header() || a.ClientID() == b.ClientID() || a.ObjectID() == b.ObjectID() {
		t.Error("two endpoints share an address, header or default identity")
	}
	if !strings.HasPrefix(a.URL(), "http://127.0.0.1:") || !strings.HasSuffix(a.URL(), TokenPath) {
		t.Errorf("URL = %q", a.URL())
	}
	if env := a.Env(); len(env) != 2 || env[0] != "IDENTITY_ENDPOINT="+a.URL() || env[1] != "IDENTITY_HEADER="+a.Header() {
		t.Errorf("Env = %v", env)
	}
	a.Close()
	a.Close() // idempotent
	if res, err := client.Get(a.URL()); err == nil {
		res.Body.Close()
		t.Error("GET after Close succeeded")
	}
}

func TestProtocol(t *testing.T) {
	const rid = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/caller"
	e := newEndpoint(t, Options{ClientID: "cid-1", ObjectID: "oid-1", ResourceID: rid})
	good := http.Header{"X-Identity-Header": {e.Header()}}
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return "?" + v.Encode()
	}
	with := func(kv ...string) string {
		return q(append([]string{"api-version", APIVersion, "resource", "api://r"}, kv...)...)
	}
	base := strings.TrimSuffix(e.URL(), TokenPath)
	tests := []struct {
		name, method, path, query string
		hdr                       http.Header
		status                    int
	}{
		{"system assigned", "GET", TokenPath, with(), good, 200},
		{"strips .default", "GET", TokenPath, q("api-version", APIVersion, "resource", "api://r/.default"), good, 200},
		{"client_id (any case)", "GET", TokenPath, with("client_id", "CID-1"), good, 200},
		{"object_id", "GET", TokenPath, with("object_id", "oid-1"), good, 200},
		{"principal_id", "GET", TokenPath, with("principal_id", "oid-1"), good, 200},
		{"mi_res_id (any case)", "GET", TokenPath, with("mi_res_id", strings.ToLower(rid)), good, 200},
		{"client_id mismatch", "GET", TokenPath, with("client_id", "x"), good, 400},
		{"object_id mismatch", "GET", TokenPath, with("object_id", "x"), good, 400},
		{"principal_id mismatch", "GET", TokenPath, with("principal_id", "x"), good, 400},
		{"mi_res_id mismatch", "GET", TokenPath, with("mi_res_id", "x"), good, 400},
		{"two selectors", "GET", TokenPath, with("client_id", "cid-1", "object_id", "oid-1"), good, 400},
		{"no api-version", "GET", TokenPath, q("resource", "api://r"), good, 400},
		{"old api-version", "GET", TokenPath, q("api-version", "2017-09-01", "resource", "api://r"), good, 400},
		{"no resource", "GET", TokenPath, q("api-version", APIVersion), good, 400},
		{"only .default", "GET", TokenPath, q("api-version", APIVersion, "resource", "/.default"), good, 400},
		{"resource twice", "GET", TokenPath, with("resource", "api://other"), good, 400},
		{"malformed query", "GET", TokenPath, "?api-version=" + APIVersion + "&resource=%zz", good, 400},
		{"no header", "GET", TokenPath, with(), nil, 401},
		{"wrong header", "GET", TokenPath, with(), http.Header{"X-Identity-Header": {e.Header() + "x"}}, 401},
		{"header twice", "GET", TokenPath, with(), http.Header{"X-Identity-Header": {e.Header(), e.Header()}}, 401},
		{"legacy secret header", "GET", TokenPath, with(), http.Header{"Secret": {e.Header()}}, 401},
		{"POST", "POST", TokenPath, with(), good, 405},
		{"IMDS path", "GET", "/metadata/identity/oauth2/token", with(), good, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs, issued := e.Requests(), e.Issued()
			status, _, doc := do(t, tt.method, base+tt.path+tt.query, tt.hdr)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %v", status, tt.status, doc)
			}
			if e.Requests() != reqs+1 {
				t.Errorf("Requests grew by %d", e.Requests()-reqs)
			}
			if status != 200 {
				if doc["error"] == nil || doc["error_description"] == nil || e.Issued() != issued {
					t.Errorf("rejection: body %v, issued grew by %d", doc, e.Issued()-issued)
				}
				return
			}
			if e.Issued() != issued+1 || doc["resource"] != "api://r" || doc["token_type"] != "Bearer" || doc["client_id"] != "cid-1" {
				t.Errorf("success: %v", doc)
			}
			if tok, _ := doc["access_token"].(string); !strings.HasPrefix(tok, "tokencachetest-") {
				t.Errorf("default token %q", tok)
			}
			if _, ok := doc["refresh_in"]; ok {
				t.Error("refresh_in present by default")
			}
		})
	}
}

// jwt builds an unsigned JWT-shaped string with the given payload.
func jwt(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(payload)) + ".sig"
}

func TestExpiry(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		tok           Token
		lifetime      time.Duration
		wantExp       int64
		wantNbf       int64
		wantRefreshIn float64
	}{
		{"opaque: default lifetime", Token{AccessToken: "opaque"}, 0, now.Add(DefaultTokenLifetime).Unix(), now.Unix(), 0},
		{"opaque: Options.TokenLifetime", Token{AccessToken: "opaque"}, time.Hour, now.Add(time.Hour).Unix(), now.Unix(), 0},
		{"JWT claims", Token{AccessToken: jwt(`{"exp":1900000000,"nbf":1800000000}`)}, 0, 1900000000, 1800000000, 0},
		{"JWT without exp", Token{AccessToken: jwt(`{"sub":"x"}`)}, 0, now.Add(DefaultTokenLifetime).Unix(), now.Unix(), 0},
		{"JWT with string exp", Token{AccessToken: jwt(`{"exp":"soon"}`)}, 0, now.Add(DefaultTokenLifetime).Unix(), now.Unix(), 0},
		{"explicit wins", Token{AccessToken: jwt(`{"exp":1900000000}`), ExpiresOn: time.Unix(1700000000, 0), NotBefore: time.Unix(1600000000, 0), RefreshIn: 90 * time.Minute}, 0, 1700000000, 1600000000, 5400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEndpoint(t, Options{TokenLifetime: tt.lifetime, Now: func() time.Time { return now },
				Mint: func(string) (Token, error) { return tt.tok, nil }})
			status, _, doc := do(t, "GET", e.URL()+"?api-version="+APIVersion+"&resource=r", http.Header{"X-Identity-Header": {e.Header()}})
			if status != 200 {
				t.Fatalf("status %d: %v", status, doc)
			}
			if doc["expires_on"] != fmt.Sprint(tt.wantExp) || doc["not_before"] != fmt.Sprint(tt.wantNbf) {
				t.Errorf("expires_on %v not_before %v, want %d %d", doc["expires_on"], doc["not_before"], tt.wantExp, tt.wantNbf)
			}
			if got, _ := doc["refresh_in"].(float64); got != tt.wantRefreshIn {
				t.Errorf("refresh_in %v, want %v", doc["refresh_in"], tt.wantRefreshIn)
			}
		})
	}
}

func TestMintFailure(t *testing.T) {
	tests := []struct {
		name string
		mint func(string) (Token, error)
	}{
		{"error", func(string) (Token, error) { return Token{}, errors.New("secret-detail") }},
		{"empty token", func(string) (Token, error) { return Token{}, nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEndpoint(t, Options{Mint: tt.mint})
			status, _, doc := do(t, "GET", e.URL()+"?api-version="+APIVersion+"&resource=r", http.Header{"X-Identity-Header": {e.Header()}})
			if status != 500 || doc["error"] != "server_error" || strings.Contains(fmt.Sprint(doc), "secret-detail") || e.Issued() != 0 {
				t.Errorf("status %d body %v issued %d", status, doc, e.Issued())
			}
		})
	}
}

func TestFaults(t *testing.T) {
	e := newEndpoint(t, Options{})
	u := e.URL() + "?api-version=" + APIVersion + "&resource=r"
	good := http.Header{"X-Identity-Header": {e.Header()}}

	// Every request, even an invalid one, until cleared.
	e.SetFault(Fault{Status: 429, RetryAfter: "7"})
	for _, method := range []string{"POST", "GET"} {
		if status, h, doc := do(t, method, u, nil); status != 429 || h.Get("Retry-After") != "7" || doc["error"] == nil {
			t.Errorf("%s: status %d Retry-After %q body %v", method, status, h.Get("Retry-After"), doc)
		}
	}
	// The next 2 requests, then healthy.
	e.SetFault(Fault{Status: 502, Times: 2})
	var got []int
	for range 3 {
		status, h, _ := do(t, "GET", u, good)
		if h.Get("Retry-After") != "" {
			t.Error("Retry-After without RetryAfter")
		}
		got = append(got, status)
	}
	if fmt.Sprint(got) != "[502 502 200]" {
		t.Errorf("statuses %v, want [502 502 200]", got)
	}
	// A malformed success.
	e.SetFault(Fault{Status: 200, Body: "not json", Times: 1})
	req, _ := http.NewRequest("GET", u, nil)
	req.Header = good
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "not json" {
		t.Errorf("malformed success: %d %q", res.StatusCode, b)
	}
	if e.Requests() != 6 || e.Issued() != 1 {
		t.Errorf("Requests %d Issued %d, want 6 1", e.Requests(), e.Issued())
	}
}

// A hanging endpoint holds the request until its client gives up, and Close
// releases hanging requests instead of waiting for them.
func TestHang(t *testing.T) {
	e := newEndpoint(t, Options{})
	e.SetFault(Fault{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL(), nil)
	if res, err := client.Do(req); err == nil {
		res.Body.Close()
		t.Fatal("a hanging endpoint answered")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the client's deadline", err)
	}

	// No client timeout: if Close waited for the hanging request, or answered
	// it, this test would hang or fail.
	done := make(chan error, 1)
	go func() {
		res, err := (&http.Client{}).Get(e.URL())
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	for e.Requests() < 2 {
		time.Sleep(time.Millisecond)
	}
	e.Close()
	if err := <-done; err == nil {
		t.Error("a hanging request got an answer when the endpoint closed")
	}
}

// The real azidentity credential, pointed at the endpoint with Setenv.
func TestAzidentity(t *testing.T) {
	e := newEndpoint(t, Options{ClientID: "cid-1", Mint: func(resource string) (Token, error) {
		return Token{AccessToken: "tok-" + resource, RefreshIn: time.Hour}, nil
	}})
	e.Setenv(t)
	cred, err := azidentity.NewManagedIdentityCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := uniqueResource("api://azid")
	at, err := getToken(cred, r)
	if err != nil {
		t.Fatal(err)
	}
	if at.Token != "tok-"+r || at.RefreshOn.IsZero() || !at.RefreshOn.Before(at.ExpiresOn) {
		t.Errorf("token %q RefreshOn %v ExpiresOn %v", at.Token, at.RefreshOn, at.ExpiresOn)
	}

	// A wrong header is a 401 the credential reports, without the header.
	t.Setenv("IDENTITY_HEADER", "not-the-secret")
	_, err = getToken(cred, uniqueResource("api://azid"))
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse.StatusCode != 401 || strings.Contains(err.Error(), e.Header()) {
		t.Errorf("wrong header: %v", err)
	}
	e.Setenv(t)

	// Retries count as requests.
	e.SetFault(Fault{Status: 500})
	retrying, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: 2, RetryDelay: time.Millisecond, MaxRetryDelay: 2 * time.Millisecond},
	}})
	if err != nil {
		t.Fatal(err)
	}
	before := e.Requests()
	if _, err := getToken(retrying, uniqueResource("api://azid")); err == nil {
		t.Fatal("GetToken succeeded against a failing endpoint")
	}
	if got := e.Requests() - before; got != 3 {
		t.Errorf("%d requests, want 3 (1 + 2 retries)", got)
	}
}

func TestNoSecretsInLogsOrFormatting(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) })
	e := newEndpoint(t, Options{Logger: slog.New(slog.NewTextHandler(w, nil))})
	u := e.URL() + "?api-version=" + APIVersion + "&resource=r"
	_, _, doc := do(t, "GET", u, http.Header{"X-Identity-Header": {e.Header()}})
	do(t, "GET", u, http.Header{"X-Identity-Header": {"guess-value"}})
	tok, _ := doc["access_token"].(string)
	var jbuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&jbuf, nil)).Info("x", "ep", e)
	mu.Lock()
	out := buf.String() + jbuf.String() + fmt.Sprintf("%v %+v %#v %s", e, e, e, e)
	mu.Unlock()
	if !strings.Contains(out, "token issued") || !strings.Contains(out, "token request rejected") || !strings.Contains(out, e.URL()) {
		t.Errorf("expected issue/reject lines and the URL:\n%s", out)
	}
	for _, secret := range []string{tok, e.Header(), "guess-value"} {
		if secret == "" || strings.Contains(out, secret) {
			t.Errorf("output reveals a secret (%d chars)", len(secret))
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// FuzzServeHTTP: arbitrary queries, headers and paths never panic, never get
// a 5xx, always get JSON and never see the identity header echoed.
func FuzzServeHTTP(f *testing.F) {
	e := newEndpoint(f, Options{ClientID: "cid"})
	f.Add("api-version=2019-08-01&resource=api%3A%2F%2Fcallee", true, "/msi/token")
	f.Add("api-version=2019-08-01&resource=api://callee/.default&client_id=cid", true, "/msi/token")
	f.Add("api-version=2019-08-01&resource=%zz", true, "/msi/token")
	f.Add("resource=&resource=x&mi_res_id=;", false, "/")
	f.Fuzz(func(t *testing.T, query string, withHeader bool, path string) {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
		req.URL.Path, req.URL.RawQuery = path, query
		if withHeader {
			req.Header.Set("X-IDENTITY-HEADER", e.Header())
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if rec.Code >= 500 || !json.Valid(body) || bytes.Contains(body, []byte(e.Header())) {
			t.Fatalf("status %d body %q", rec.Code, body)
		}
	})
}
