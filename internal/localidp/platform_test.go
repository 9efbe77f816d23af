package localidp

import (
	"context"
	"encoding/base64"
	"errors"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

var testIdentity = Identity{
	Name:     "registered-caller",
	ClientID: "11111111-1111-4111-8111-111111111111",
	ObjectID: "22222222-2222-4222-8222-222222222222",
	AppRoles: map[string][]string{"api://callee": {"Callee.Invoke"}},
}

func TestStartValidation(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		settings []string // settings the error must name; nil = no error
	}{
		{name: "zero value", opts: Options{}},
		{name: "bad tenant", opts: Options{TenantID: "a/b"}, settings: []string{"Options.TenantID"}},
		{name: "negative lifetime", opts: Options{TokenLifetime: -time.Second}, settings: []string{"Options.TokenLifetime"}},
		{name: "empty resource client id", opts: Options{ResourceClientIDs: map[string]string{"api://x": ""}}, settings: []string{"Options.ResourceClientIDs"}},
		{name: "all reported", opts: Options{TenantID: "..", TokenLifetime: -1}, settings: []string{"Options.TenantID", "Options.TokenLifetime"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(tt.opts)
			if tt.settings == nil {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				p.Close()
				return
			}
			if err == nil {
				p.Close()
				t.Fatal("Start succeeded, want error")
			}
			if !errors.Is(err, ErrInvalidOption) {
				t.Errorf("error %v does not wrap ErrInvalidOption", err)
			}
			for _, s := range tt.settings {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %s", err, s)
				}
			}
		})
	}
}

func TestURLs(t *testing.T) {
	p := start(t, Options{TenantID: "my-tenant"})
	if !strings.HasPrefix(p.AuthorityURL(), "http://127.0.0.1:") || strings.HasSuffix(p.AuthorityURL(), "/") {
		t.Errorf("AuthorityURL = %q", p.AuthorityURL())
	}
	port := strings.TrimPrefix(p.AuthorityURL(), "http://127.0.0.1:")
	if want := "http://localhost:" + port + "/my-tenant/"; p.IssuerV1() != want {
		t.Errorf("IssuerV1 = %q, want %q", p.IssuerV1(), want)
	}
	if want := p.AuthorityURL() + "/my-tenant/v2.0"; p.IssuerV2() != want {
		t.Errorf("IssuerV2 = %q, want %q", p.IssuerV2(), want)
	}
	if p.TenantID() != "my-tenant" {
		t.Errorf("TenantID = %q", p.TenantID())
	}
	if d := start(t, Options{}); d.TenantID() != DefaultTenantID {
		t.Errorf("default TenantID = %q", d.TenantID())
	}
}

func TestDiscoveryDocuments(t *testing.T) {
	p := start(t, Options{})
	a, tid := p.AuthorityURL(), p.TenantID()
	tests := []struct {
		name string
		url  string
		want map[string]string
	}{
		{name: "v1", url: p.DiscoveryURLV1(), want: map[string]string{
			"issuer":                 p.IssuerV1(),
			"jwks_uri":               a + "/common/discovery/keys",
			"authorization_endpoint": a + "/" + tid + "/oauth2/authorize",
			"token_endpoint":         a + "/" + tid + "/oauth2/token",
		}},
		{name: "v2", url: p.DiscoveryURLV2(), want: map[string]string{
			"issuer":                 p.IssuerV2(),
			"jwks_uri":               a + "/" + tid + "/discovery/v2.0/keys",
			"authorization_endpoint": a + "/" + tid + "/oauth2/v2.0/authorize",
			"token_endpoint":         a + "/" + tid + "/oauth2/v2.0/token",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(t, tt.url)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			doc := decodeJSON(t, body)
			for k, v := range tt.want {
				if doc[k] != v {
					t.Errorf("%s = %v, want %q", k, doc[k], v)
				}
			}
			if got := strs(doc["id_token_signing_alg_values_supported"]); !slices.Equal(got, []string{"RS256"}) {
				t.Errorf("id_token_signing_alg_values_supported = %v", got)
			}
			if len(strs(doc["response_types_supported"])) == 0 {
				t.Error("response_types_supported missing")
			}
		})
	}
	if got := p.DiscoveryRequests(); got != 2 {
		t.Errorf("DiscoveryRequests = %d, want 2", got)
	}
}

func TestGoOIDCv2DiscoveryAndVerify(t *testing.T) {
	p := start(t, Options{})
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, p.IssuerV2())
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	if got, want := provider.Endpoint().TokenURL, p.AuthorityURL()+"/"+p.TenantID()+"/oauth2/v2.0/token"; got != want {
		t.Errorf("TokenURL = %q, want %q", got, want)
	}
	tok, err := p.Mint(p.AccessTokenClaims(testIdentity, "api://callee", 2))
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	idt, err := provider.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if idt.Issuer != p.IssuerV2() || idt.Subject != testIdentity.ObjectID || !slices.Equal(idt.Audience, []string{"api://callee"}) {
		t.Errorf("verified token: iss %q sub %q aud %v", idt.Issuer, idt.Subject, idt.Audience)
	}
	if p.DiscoveryRequests() != 1 || p.JWKSRequests() != 1 {
		t.Errorf("DiscoveryRequests %d, JWKSRequests %d; want 1, 1", p.DiscoveryRequests(), p.JWKSRequests())
	}
	// A v1 token (other issuer) must not verify against the v2 provider.
	tokV1, _ := p.Mint(p.AccessTokenClaims(testIdentity, "api://callee", 1))
	if _, err := provider.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(ctx, tokV1); err == nil {
		t.Error("v1 token verified against the v2 issuer")
	}
}

func TestGoOIDCv1DiscoveryAndVerify(t *testing.T) {
	p := start(t, Options{})
	tenantURL := p.AuthorityURL() + "/" + p.TenantID()
	// Like Entra v1, the document's issuer is on another host than its URL.
	if _, err := oidc.NewProvider(context.Background(), tenantURL); err == nil {
		t.Error("NewProvider accepted the v1 document without InsecureIssuerURLContext; issuer should differ")
	}
	ctx := oidc.InsecureIssuerURLContext(context.Background(), p.IssuerV1())
	provider, err := oidc.NewProvider(ctx, tenantURL)
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	tok, err := p.Mint(p.AccessTokenClaims(testIdentity, "api://callee", 1))
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: "api://callee"}).Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if idt.Issuer != p.IssuerV1() {
		t.Errorf("iss = %q, want %q", idt.Issuer, p.IssuerV1())
	}
	if _, err := provider.Verifier(&oidc.Config{ClientID: "api://other"}).Verify(ctx, tok); err == nil {
		t.Error("token verified for the wrong audience")
	}
}

func TestAuthorityRoutes(t *testing.T) {
	p := start(t, Options{})
	a, tid := p.AuthorityURL(), p.TenantID()
	tests := []struct {
		name      string
		method    string
		path      string
		status    int
		errCode   string // expected "error" member for non-200
		countJWKS bool
	}{
		{"v1 keys", "GET", "/common/discovery/keys", 200, "", true},
		{"v2 keys", "GET", "/" + tid + "/discovery/v2.0/keys", 200, "", true},
		{"tenant v1 keys", "GET", "/" + tid + "/discovery/keys", 200, "", true},
		{"common v2 keys", "GET", "/common/discovery/v2.0/keys", 200, "", true},
		{"keys of unknown tenant", "GET", "/other-tenant/discovery/v2.0/keys", 404, "invalid_tenant", true},
		{"discovery of unknown tenant", "GET", "/other-tenant/v2.0/.well-known/openid-configuration", 404, "invalid_tenant", false},
		{"discovery of common", "GET", "/common/.well-known/openid-configuration", 404, "invalid_tenant", false},
		{"POST keys", "POST", "/common/discovery/keys", 405, "invalid_request", true},
		{"unknown path", "GET", "/" + tid + "/nope", 404, "not_found", false},
		{"root", "GET", "/", 404, "not_found", false},
		{"token endpoint", "POST", "/" + tid + "/oauth2/v2.0/token", 400, "unsupported_grant_type", false},
		{"token endpoint unknown tenant", "POST", "/x/oauth2/token", 404, "invalid_tenant", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.JWKSRequests()
			status, body := do(t, tt.method, a+tt.path, nil)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (%s)", status, tt.status, body)
			}
			if tt.errCode != "" {
				if got := decodeJSON(t, body)["error"]; got != tt.errCode {
					t.Errorf("error = %v, want %q", got, tt.errCode)
				}
			}
			if got := p.JWKSRequests() - before; (got == 1) != tt.countJWKS || got > 1 {
				t.Errorf("JWKSRequests grew by %d, counted=%v", got, tt.countJWKS)
			}
		})
	}
}

func TestJWKSShape(t *testing.T) {
	p := start(t, Options{})
	_, body := get(t, p.JWKSURLV2())
	doc := decodeJSON(t, body)
	keys, _ := doc["keys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("%d keys, want 1", len(keys))
	}
	k := keys[0].(map[string]any)
	if k["kty"] != "RSA" || k["use"] != "sig" || k["kid"] != p.CurrentKID() || k["x5t"] != p.CurrentKID() {
		t.Errorf("key = %v", k)
	}
	if _, ok := k["alg"]; ok {
		t.Error(`JWKS key has an "alg" member; Entra's keys have none`)
	}
	if _, ok := k["d"]; ok {
		t.Fatal("JWKS publishes a private key")
	}
	n, err := base64.RawURLEncoding.DecodeString(k["n"].(string))
	if err != nil || new(big.Int).SetBytes(n).BitLen() != 2048 {
		t.Errorf("n is not a 2048-bit modulus (err %v)", err)
	}
	_, priv := p.SigningKey()
	if new(big.Int).SetBytes(n).Cmp(priv.N) != 0 {
		t.Error("published modulus differs from SigningKey's")
	}
	if _, b1 := get(t, p.JWKSURLV1()); string(b1) != string(body) {
		t.Error("v1 and v2 JWKS differ")
	}
}

func TestSetDown(t *testing.T) {
	p := start(t, Options{})
	p.SetDown(true)
	for _, u := range []string{p.DiscoveryURLV1(), p.DiscoveryURLV2(), p.JWKSURLV1(), p.JWKSURLV2()} {
		status, body := get(t, u)
		if status != http.StatusServiceUnavailable {
			t.Errorf("GET %s while down: status %d, want 503", u, status)
		}
		if got := decodeJSON(t, body)["error"]; got != "temporarily_unavailable" {
			t.Errorf("error = %v", got)
		}
	}
	if _, err := oidc.NewProvider(context.Background(), p.IssuerV2()); err == nil {
		t.Error("go-oidc discovery succeeded while down")
	}
	if p.JWKSRequests() != 2 || p.DiscoveryRequests() != 3 {
		t.Errorf("JWKSRequests %d, DiscoveryRequests %d; want 2, 3", p.JWKSRequests(), p.DiscoveryRequests())
	}
	p.SetDown(false)
	if status, _ := get(t, p.JWKSURLV2()); status != http.StatusOK {
		t.Errorf("status after SetDown(false) = %d", status)
	}
}

func TestKeyRotation(t *testing.T) {
	p := start(t, Options{})
	ctx := context.Background()
	verify := func(tok string) error {
		// A fresh key set each time, so the JWKS is fetched now.
		ks := oidc.NewRemoteKeySet(ctx, p.JWKSURLV2())
		_, err := oidc.NewVerifier(p.IssuerV2(), ks, &oidc.Config{SkipClientIDCheck: true}).Verify(ctx, tok)
		return err
	}
	claims := func() Claims { return p.AccessTokenClaims(testIdentity, "api://callee", 2) }

	k1 := p.CurrentKID()
	old, _ := p.Mint(claims())
	if header(t, old)["kid"] != k1 {
		t.Fatalf("token kid %v, want %q", header(t, old)["kid"], k1)
	}
	k2 := p.RotateKey()
	if k2 == "" || k2 == k1 || p.CurrentKID() != k2 {
		t.Fatalf("RotateKey = %q (old %q, current %q)", k2, k1, p.CurrentKID())
	}
	if got := p.PublishedKIDs(); !slices.Equal(got, []string{k1, k2}) {
		t.Errorf("PublishedKIDs = %v, want [%s %s]", got, k1, k2)
	}
	fresh, _ := p.Mint(claims())
	h := header(t, fresh)
	if h["kid"] != k2 || h["alg"] != "RS256" || h["typ"] != "JWT" {
		t.Errorf("header after rotation = %v", h)
	}
	if err := verify(old); err != nil {
		t.Errorf("old token after rollover: %v", err)
	}
	if err := verify(fresh); err != nil {
		t.Errorf("new token after rollover: %v", err)
	}

	p.RemoveKey(k1)
	p.RemoveKey("no-such-kid")
	if got := p.PublishedKIDs(); !slices.Equal(got, []string{k2}) {
		t.Errorf("PublishedKIDs after RemoveKey = %v", got)
	}
	if err := verify(old); err == nil {
		t.Error("token signed by a removed key still verifies")
	}
	if err := verify(fresh); err != nil {
		t.Errorf("current token after RemoveKey: %v", err)
	}
	// Removing the current key keeps minting with it (unpublished).
	p.RemoveKey(k2)
	orphan, _ := p.Mint(claims())
	if header(t, orphan)["kid"] != k2 {
		t.Error("Mint switched keys after RemoveKey of the current key")
	}
	if err := verify(orphan); err == nil {
		t.Error("token signed by an unpublished key verifies")
	}
}

func TestAccessTokenClaims(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	p := start(t, Options{
		TokenLifetime:     time.Hour,
		Now:               func() time.Time { return now },
		ResourceClientIDs: map[string]string{"api://callee": "33333333-3333-4333-8333-333333333333"},
	})
	id := testIdentity
	id.AppRoles = map[string][]string{"api://callee": {"Callee.Invoke", "Other"}, "https://slash.example/": {"Slash"}}
	id.ResourceID = "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/caller"
	tests := []struct {
		name     string
		resource string
		version  int
		want     map[string]any
		absent   []string
	}{
		{name: "v1", resource: "api://callee", version: 1, want: map[string]any{
			"aud": "api://callee", "iss": p.IssuerV1(), "appid": id.ClientID, "appidacr": "2", "ver": "1.0",
			"idp": p.IssuerV1(), "xms_mirid": id.ResourceID,
		}, absent: []string{"azp", "azpacr"}},
		{name: "v2 maps aud to client id", resource: "api://callee", version: 2, want: map[string]any{
			"aud": "33333333-3333-4333-8333-333333333333", "iss": p.IssuerV2(), "azp": id.ClientID, "azpacr": "2", "ver": "2.0",
		}, absent: []string{"appid", "appidacr", "idp"}},
		{name: "v2 unmapped resource", resource: "https://slash.example", version: 2, want: map[string]any{"aud": "https://slash.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := p.AccessTokenClaims(id, tt.resource, tt.version)
			common := map[string]any{
				"oid": id.ObjectID, "sub": id.ObjectID, "tid": p.TenantID(), "idtyp": "app",
				"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			}
			for k, v := range common {
				if c[k] != v {
					t.Errorf("%s = %v, want %v", k, c[k], v)
				}
			}
			for k, v := range tt.want {
				if c[k] != v {
					t.Errorf("%s = %v, want %v", k, c[k], v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := c[k]; ok {
					t.Errorf("claim %s present", k)
				}
			}
			if s, _ := c["uti"].(string); s == "" {
				t.Error("uti missing")
			}
		})
	}
	if got := p.AccessTokenClaims(id, "api://callee", 1)["roles"]; !slices.Equal(got.([]string), []string{"Callee.Invoke", "Other"}) {
		t.Errorf("roles = %v", got)
	}
	if got := p.AccessTokenClaims(id, "https://slash.example", 1)["roles"]; !slices.Equal(got.([]string), []string{"Slash"}) {
		t.Errorf("roles without trailing slash = %v", got)
	}
	if _, ok := p.AccessTokenClaims(id, "api://unassigned", 1)["roles"]; ok {
		t.Error("roles present for an unassigned resource")
	}
	a, b := p.AccessTokenClaims(id, "api://callee", 1), p.AccessTokenClaims(id, "api://callee", 1)
	if a["uti"] == b["uti"] {
		t.Error("uti not random")
	}
}

func TestMintArbitraryClaims(t *testing.T) {
	p := start(t, Options{})
	tok, err := p.Mint(Claims{"iss": "attacker", "n": 1})
	if err != nil {
		t.Fatal(err)
	}
	c := payload(t, tok)
	if c["iss"] != "attacker" || len(c) != 2 {
		t.Errorf("claims = %v", c)
	}
	if _, err := p.Mint(Claims{"bad": make(chan int)}); err == nil {
		t.Error("Mint of an unmarshalable claim succeeded")
	}
}
