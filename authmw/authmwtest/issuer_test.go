package authmwtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

func newIssuer(tb testing.TB, opts Options) *Issuer {
	tb.Helper()
	i, err := NewIssuer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(i.Close)
	return i
}

var client = &http.Client{Timeout: 10 * time.Second}

func get(tb testing.TB, method, url string) (int, map[string]any) {
	tb.Helper()
	req, _ := http.NewRequest(method, url, nil)
	res, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var doc map[string]any
	if method != http.MethodHead {
		if err := json.Unmarshal(b, &doc); err != nil {
			tb.Fatalf("%s %s: non-JSON body %q", method, url, b)
		}
	}
	return res.StatusCode, doc
}

func payload(tb testing.TB, tok string) map[string]any {
	tb.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestNewIssuerOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []string // options the error names; nil = valid
	}{
		{name: "zero value"},
		{name: "custom tenant", opts: Options{TenantID: "my-tenant.1_x"}},
		{name: "tenant with slash", opts: Options{TenantID: "a/b"}, want: []string{"Options.TenantID"}},
		{name: "dot-dot tenant", opts: Options{TenantID: ".."}, want: []string{"Options.TenantID"}},
		{name: "negative lifetime", opts: Options{TokenLifetime: -time.Second}, want: []string{"Options.TokenLifetime"}},
		{name: "all reported", opts: Options{TenantID: "?", TokenLifetime: -1}, want: []string{"Options.TenantID", "Options.TokenLifetime"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, err := NewIssuer(tt.opts)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				i.Close()
				i.Close() // idempotent
				return
			}
			if err == nil {
				i.Close()
				t.Fatal("NewIssuer succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	i := newIssuer(t, Options{TenantID: "tenant-1"})
	tests := []struct {
		method, path string
		status       int
		errCode      string
		jwks, disc   int64 // counter increments
	}{
		{"GET", "/tenant-1/.well-known/openid-configuration", 200, "", 0, 1},
		{"GET", "/tenant-1/v2.0/.well-known/openid-configuration", 200, "", 0, 1},
		{"HEAD", "/tenant-1/v2.0/.well-known/openid-configuration", 200, "", 0, 1},
		{"GET", "/common/discovery/keys", 200, "", 1, 0},
		{"GET", "/common/discovery/v2.0/keys", 200, "", 1, 0},
		{"GET", "/tenant-1/discovery/keys", 200, "", 1, 0},
		{"GET", "/tenant-1/discovery/v2.0/keys", 200, "", 1, 0},
		{"GET", "/other/discovery/v2.0/keys", 404, "invalid_tenant", 1, 0},
		{"GET", "/common/.well-known/openid-configuration", 404, "invalid_tenant", 0, 1},
		{"POST", "/common/discovery/keys", 405, "invalid_request", 1, 0},
		{"POST", "/tenant-1/oauth2/v2.0/token", 400, "unsupported_grant_type", 0, 0},
		{"POST", "/other/oauth2/token", 404, "invalid_tenant", 0, 0},
		{"GET", "/", 404, "not_found", 0, 0},
		{"GET", "/tenant-1/nope", 404, "not_found", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			j0, d0 := i.JWKSRequests(), i.DiscoveryRequests()
			status, doc := get(t, tt.method, i.AuthorityURL()+tt.path)
			if status != tt.status {
				t.Fatalf("status %d, want %d", status, tt.status)
			}
			if tt.errCode != "" && doc["error"] != tt.errCode {
				t.Errorf("error = %v, want %s", doc["error"], tt.errCode)
			}
			if i.JWKSRequests()-j0 != tt.jwks || i.DiscoveryRequests()-d0 != tt.disc {
				t.Errorf("counters grew by %d/%d, want %d/%d", i.JWKSRequests()-j0, i.DiscoveryRequests()-d0, tt.jwks, tt.disc)
			}
		})
	}
}

// Both discovery documents work with go-oidc, each with its own issuer, and
// AppToken tokens of each version verify only against their own issuer.
func TestGoOIDC(t *testing.T) {
	i := newIssuer(t, Options{})
	app := App{AppID: "app-1", Roles: []string{"R"}}
	tests := []struct {
		name     string
		v        Version
		issuer   string
		discover string
		ctx      context.Context
	}{
		{"v1", V1, i.IssuerV1(), i.AuthorityURL() + "/" + i.TenantID(), oidc.InsecureIssuerURLContext(context.Background(), i.IssuerV1())},
		{"v2", V2, i.IssuerV2(), i.IssuerV2(), context.Background()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := oidc.NewProvider(tt.ctx, tt.discover)
			if err != nil {
				t.Fatal(err)
			}
			v := p.Verifier(&oidc.Config{ClientID: "api://svc"})
			tok, err := i.AppToken(app, "api://svc", tt.v)
			if err != nil {
				t.Fatal(err)
			}
			idt, err := v.Verify(tt.ctx, tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if idt.Issuer != tt.issuer || idt.Subject != "app-1" {
				t.Errorf("iss %q sub %q", idt.Issuer, idt.Subject)
			}
			other := V1 + V2 - tt.v
			tokOther, _ := i.AppToken(app, "api://svc", other)
			if _, err := v.Verify(tt.ctx, tokOther); err == nil {
				t.Error("a token of the other version verified")
			}
		})
	}
}

func TestAppClaims(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	i := newIssuer(t, Options{Now: func() time.Time { return now }, TokenLifetime: 2 * time.Hour})
	roles := []string{"A", "B"}
	app := App{AppID: "app-1", ObjectID: "oid-1", Roles: roles, ResourceID: "/subscriptions/s/x"}
	tests := []struct {
		name   string
		v      Version
		want   map[string]any
		absent []string
	}{
		{"v1", V1, map[string]any{"iss": i.IssuerV1(), "idp": i.IssuerV1(), "appid": "app-1", "appidacr": "2", "ver": "1.0"}, []string{"azp", "azpacr"}},
		{"v2", V2, map[string]any{"iss": i.IssuerV2(), "azp": "app-1", "azpacr": "2", "ver": "2.0"}, []string{"appid", "appidacr", "idp"}},
		{"other means v1", Version(7), map[string]any{"iss": i.IssuerV1(), "ver": "1.0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := i.AppClaims(app, "api://svc", tt.v)
			common := map[string]any{"aud": "api://svc", "oid": "oid-1", "sub": "oid-1", "tid": i.TenantID(), "idtyp": "app",
				"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(2 * time.Hour).Unix(), "xms_mirid": "/subscriptions/s/x"}
			for _, m := range []map[string]any{common, tt.want} {
				for k, v := range m {
					if c[k] != v {
						t.Errorf("%s = %v, want %v", k, c[k], v)
					}
				}
			}
			for _, k := range tt.absent {
				if _, ok := c[k]; ok {
					t.Errorf("claim %s present", k)
				}
			}
			if !slices.Equal(c["roles"].([]string), roles) {
				t.Errorf("roles = %v", c["roles"])
			}
		})
	}
	c0 := i.AppClaims(app, "x", V1)
	roles[0] = "changed"
	if c0["roles"].([]string)[0] != "A" {
		t.Error("claims share the caller's Roles slice")
	}
	c := i.AppClaims(App{AppID: "only-app"}, "x", V2)
	if c["oid"] != "only-app" || c["sub"] != "only-app" {
		t.Errorf("default ObjectID: oid %v sub %v", c["oid"], c["sub"])
	}
	for _, k := range []string{"roles", "xms_mirid"} {
		if _, ok := c[k]; ok {
			t.Errorf("claim %s present without a value", k)
		}
	}
	if a, b := i.AppClaims(app, "x", V1), i.AppClaims(app, "x", V1); a["uti"] == b["uti"] {
		t.Error("uti not random")
	}
}

func TestMint(t *testing.T) {
	i := newIssuer(t, Options{})
	tok, err := i.Mint(Claims{"iss": "anything", "n": 1})
	if err != nil {
		t.Fatal(err)
	}
	if c := payload(t, tok); c["iss"] != "anything" || len(c) != 2 {
		t.Errorf("claims = %v", c)
	}
	if _, err := i.Mint(Claims{"bad": make(chan int)}); err == nil {
		t.Error("Mint of an unmarshalable claim succeeded")
	}
}

func TestSetDown(t *testing.T) {
	i := newIssuer(t, Options{})
	i.SetDown(true)
	for _, u := range []string{i.DiscoveryURLV1(), i.DiscoveryURLV2(), i.JWKSURLV1(), i.JWKSURLV2()} {
		if status, doc := get(t, "GET", u); status != 503 || doc["error"] != "temporarily_unavailable" {
			t.Errorf("GET %s while down: %d %v", u, status, doc)
		}
	}
	i.SetDown(false)
	if status, _ := get(t, "GET", i.JWKSURLV2()); status != 200 {
		t.Errorf("status after SetDown(false) = %d", status)
	}
	if i.JWKSRequests() != 3 || i.DiscoveryRequests() != 2 {
		t.Errorf("JWKSRequests %d DiscoveryRequests %d, want 3 2", i.JWKSRequests(), i.DiscoveryRequests())
	}
}

func TestKeys(t *testing.T) {
	i := newIssuer(t, Options{})
	ctx := context.Background()
	verify := func(tok string) error {
		ks := oidc.NewRemoteKeySet(ctx, i.JWKSURLV2()) // fetched now
		_, err := oidc.NewVerifier(i.IssuerV2(), ks, &oidc.Config{SkipClientIDCheck: true}).Verify(ctx, tok)
		return err
	}
	mint := func() string {
		tok, err := i.AppToken(App{AppID: "a"}, "x", V2)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	k1 := i.CurrentKID()
	old := mint()
	k2 := i.RotateKey()
	if k2 == "" || k2 == k1 || !slices.Equal(i.PublishedKIDs(), []string{k1, k2}) {
		t.Fatalf("after rotation: current %q published %v", k2, i.PublishedKIDs())
	}
	if err := verify(old); err != nil {
		t.Errorf("old token after rollover: %v", err)
	}
	if !i.RemoveKey(k1) || i.RemoveKey("no-such-kid") {
		t.Error("RemoveKey results wrong")
	}
	if err := verify(old); err == nil {
		t.Error("token of a removed key verifies")
	}
	if err := verify(mint()); err != nil {
		t.Errorf("current token: %v", err)
	}
	i.RemoveKey(k2)
	if kid, _ := i.SigningKey(); kid != k2 {
		t.Error("removing the current key switched keys")
	}
	if err := verify(mint()); err == nil {
		t.Error("token of an unpublished key verifies")
	}
	_, key := i.SigningKey()
	out := i.String() + i.GoString() + i.LogValue().String()
	if strings.Contains(out, key.D.String()) || !strings.Contains(out, i.AuthorityURL()) {
		t.Errorf("formatting: %s", out)
	}
}

// TestConcurrentUse: serving, minting and rotating together are race-free.
func TestConcurrentUse(t *testing.T) {
	i := newIssuer(t, Options{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if status, _ := get(t, "GET", i.JWKSURLV1()); status != 200 {
					t.Errorf("JWKS status %d", status)
				}
				if _, err := i.AppToken(App{AppID: "a"}, "x", V1); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 2 {
			i.RemoveKey(i.RotateKey())
		}
	})
	wg.Wait()
	if i.JWKSRequests() != 20 {
		t.Errorf("JWKSRequests %d, want 20", i.JWKSRequests())
	}
}

// FuzzServeHTTP: every path gets a JSON answer, never a 5xx (while up).
func FuzzServeHTTP(f *testing.F) {
	i := newIssuer(f, Options{})
	f.Add("/" + i.TenantID() + "/v2.0/.well-known/openid-configuration")
	f.Add("/common/discovery/keys")
	f.Add("//discovery/keys")
	f.Add("/a/b/c/d/e")
	f.Fuzz(func(t *testing.T, path string) {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
		req.URL.Path = path
		rec := httptest.NewRecorder()
		i.ServeHTTP(rec, req)
		if rec.Code >= 500 || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%q: status %d body %q", path, rec.Code, rec.Body.Bytes())
		}
	})
}
