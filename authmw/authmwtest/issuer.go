package authmwtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTenantID is the tenant ID used when [Options.TenantID] is empty.
const DefaultTenantID = "7c3e9f2a-4b1d-4e8a-9f6c-2d5b8a1ef2fa"

// DefaultTokenLifetime is the lifetime of [Issuer.AppToken] tokens when
// [Options.TokenLifetime] is zero, the default lifetime of Entra access tokens.
const DefaultTokenLifetime = time.Hour

// Options configures an [Issuer]. The zero value is valid.
type Options struct {
	// TenantID is the directory (tenant) ID used in paths, issuers and the tid
	// claim. It may contain only letters, digits, '-', '.' and '_'.
	// Default: [DefaultTenantID].
	TenantID string
	// TokenLifetime is the lifetime of tokens built by [Issuer.AppClaims] and
	// [Issuer.AppToken]. Must not be negative. Default: [DefaultTokenLifetime].
	TokenLifetime time.Duration
	// Now is the clock for iat, nbf and exp in [Issuer.AppClaims] (and for the
	// signing certificates). Default: time.Now.
	Now func() time.Time
}

// Issuer is a running Entra-shaped OIDC issuer on loopback. Create it with
// [NewIssuer] and stop it with [Issuer.Close]. All methods are safe for
// concurrent use.
type Issuer struct {
	tenantID    string
	lifetime    time.Duration
	now         func() time.Time
	authority   string // http://127.0.0.1:PORT
	issuerV1    string
	issuerV2    string
	discoveryV1 []byte
	discoveryV2 []byte
	srv         *httptest.Server
	closeOnce   sync.Once

	down           atomic.Bool
	jwksCount      atomic.Int64
	discoverCount  atomic.Int64
	discoveryFault atomic.Pointer[Fault]
	jwksFault      atomic.Pointer[Fault]

	keys keyring
}

// NewIssuer validates opts, generates the first signing key and starts the
// issuer on 127.0.0.1 with a random port. Every problem with opts is reported
// in one error naming the option. It panics, like httptest.NewServer, when it
// cannot listen on loopback.
func NewIssuer(opts Options) (*Issuer, error) {
	var errs []error
	tid := opts.TenantID
	if tid == "" {
		tid = DefaultTenantID
	}
	if !validPathSegment(tid) {
		errs = append(errs, fmt.Errorf("authmwtest: Options.TenantID must contain only letters, digits, '-', '.' and '_' (got %q)", tid))
	}
	if opts.TokenLifetime < 0 {
		errs = append(errs, fmt.Errorf("authmwtest: Options.TokenLifetime must not be negative (got %s)", opts.TokenLifetime))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	i := &Issuer{tenantID: tid, lifetime: opts.TokenLifetime, now: opts.Now}
	if i.lifetime == 0 {
		i.lifetime = DefaultTokenLifetime
	}
	if i.now == nil {
		i.now = time.Now
	}
	if _, err := i.keys.rotate(i.now()); err != nil {
		return nil, fmt.Errorf("authmwtest: generate signing key: %w", err)
	}
	i.srv = httptest.NewUnstartedServer(i)
	i.srv.Config.ReadHeaderTimeout = 10 * time.Second
	i.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	// Everything ServeHTTP reads is set before the server starts: a request may
	// come from another process, with no happens-before edge to this goroutine.
	i.authority = "http://" + i.srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(i.srv.Listener.Addr().String())
	i.issuerV1 = "http://localhost:" + port + "/" + tid + "/"
	i.issuerV2 = i.authority + "/" + tid + "/v2.0"
	i.discoveryV1 = i.buildDiscovery(V1)
	i.discoveryV2 = i.buildDiscovery(V2)
	i.srv.Start()
	return i, nil
}

// Close stops the issuer. It is safe to call more than once.
func (i *Issuer) Close() {
	i.closeOnce.Do(i.srv.Close)
}

// AuthorityURL returns the authority, e.g. "http://127.0.0.1:PORT" (no
// trailing slash): the value for authmw's Policy.AuthorityHost, the local
// counterpart of https://login.microsoftonline.com.
func (i *Issuer) AuthorityURL() string { return i.authority }

// TenantID returns the tenant (directory) ID: the value for authmw's Policy.TenantID.
func (i *Issuer) TenantID() string { return i.tenantID }

// IssuerV1 returns the issuer of v1 tokens and of the v1 discovery document,
// "http://localhost:PORT/{tid}/". Like https://sts.windows.net/{tid}/ it is on
// a different host string than [Issuer.AuthorityURL].
func (i *Issuer) IssuerV1() string { return i.issuerV1 }

// IssuerV2 returns the issuer of v2 tokens and of the v2 discovery document,
// "http://127.0.0.1:PORT/{tid}/v2.0"; go-oidc's NewProvider accepts it directly.
func (i *Issuer) IssuerV2() string { return i.issuerV2 }

// DiscoveryURLV1 returns the URL of the v1 OpenID configuration document,
// "{authority}/{tid}/.well-known/openid-configuration".
func (i *Issuer) DiscoveryURLV1() string {
	return i.authority + "/" + i.tenantID + "/.well-known/openid-configuration"
}

// DiscoveryURLV2 returns the URL of the v2 OpenID configuration document,
// "{authority}/{tid}/v2.0/.well-known/openid-configuration".
func (i *Issuer) DiscoveryURLV2() string {
	return i.issuerV2 + "/.well-known/openid-configuration"
}

// JWKSURLV1 returns the jwks_uri of the v1 document, "{authority}/common/discovery/keys".
func (i *Issuer) JWKSURLV1() string { return i.authority + "/common/discovery/keys" }

// JWKSURLV2 returns the jwks_uri of the v2 document, "{authority}/{tid}/discovery/v2.0/keys".
func (i *Issuer) JWKSURLV2() string {
	return i.authority + "/" + i.tenantID + "/discovery/v2.0/keys"
}

// JWKSRequests returns how many JWKS requests the issuer received on any JWKS
// path, including those answered 503 by [Issuer.SetDown].
func (i *Issuer) JWKSRequests() int64 { return i.jwksCount.Load() }

// DiscoveryRequests returns how many discovery-document requests (v1 and v2)
// the issuer received, including those answered 503 by [Issuer.SetDown].
func (i *Issuer) DiscoveryRequests() int64 { return i.discoverCount.Load() }

// SetDown injects an outage: while down, discovery documents and JWKS answer
// 503 with an Entra-style JSON error body.
func (i *Issuer) SetDown(down bool) { i.down.Store(down) }

// RotateKey generates a new RSA-2048 signing key and makes it current; tokens
// minted from now on carry its kid. Previously published keys stay published,
// as in a normal Entra key rollover. It returns the new kid, or "" if key
// generation failed (it does not in practice).
func (i *Issuer) RotateKey() (newKID string) {
	kid, err := i.keys.rotate(i.now())
	if err != nil {
		return ""
	}
	return kid
}

// RemoveKey stops publishing the key with the given kid (an emergency
// revocation) and reports whether it was published; tokens signed with it no
// longer verify for a verifier that refetches the JWKS. Removing the current
// key does not select another one: minting keeps using the removed key
// (useful to test tokens signed with an unpublished key) until
// [Issuer.RotateKey] is called.
func (i *Issuer) RemoveKey(kid string) bool { return i.keys.remove(kid) }

// CurrentKID returns the kid of the key used for minting.
func (i *Issuer) CurrentKID() string { return i.keys.current().kid }

// PublishedKIDs returns the kids currently published in the JWKS, oldest first.
func (i *Issuer) PublishedKIDs() []string { return i.keys.publishedKIDs() }

// String describes the issuer without its keys.
func (i *Issuer) String() string {
	return fmt.Sprintf("authmwtest.Issuer{authority=%q tenant=%q kid=%q}", i.authority, i.tenantID, i.CurrentKID())
}

// GoString is like String, so %#v does not print private keys.
func (i *Issuer) GoString() string { return i.String() }

// LogValue implements slog.LogValuer without private keys.
func (i *Issuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("authority", i.authority), slog.String("tenant", i.tenantID), slog.String("kid", i.CurrentKID()))
}

// ServeHTTP serves the issuer's routes. Every answer, including 404 and 405,
// is an Entra-style JSON body; the token endpoints exist (tokens come only
// from [Issuer.Mint]) and answer 400 unsupported_grant_type.
func (i *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	kind, tenant := route(segs)
	switch kind {
	case routeNone:
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint on the test issuer")
		return
	case routeToken:
		if tenant != i.tenantID {
			writeError(w, http.StatusNotFound, "invalid_tenant", "tenant not found on the test issuer")
			return
		}
		writeError(w, http.StatusBadRequest, "unsupported_grant_type", "the test issuer has no token endpoint; tokens come from Issuer.Mint")
		return
	}
	// Discovery or JWKS.
	if kind == routeJWKS {
		i.jwksCount.Add(1)
	} else {
		i.discoverCount.Add(1)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "method not allowed")
		return
	}
	if f := i.fault(kind); f != nil {
		f.write(w)
		return
	}
	if tenant != i.tenantID && !(kind == routeJWKS && tenant == "common") {
		writeError(w, http.StatusNotFound, "invalid_tenant", "tenant not found on the test issuer")
		return
	}
	if i.down.Load() {
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the test issuer is down (Issuer.SetDown)")
		return
	}
	var body []byte
	switch kind {
	case routeDiscoveryV1:
		body = i.discoveryV1
	case routeDiscoveryV2:
		body = i.discoveryV2
	case routeJWKS:
		body = i.keys.jwks()
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "max-age=86400, private")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body) //nolint:errcheck // client went away
	}
}

type routeKind int

const (
	routeNone routeKind = iota
	routeDiscoveryV1
	routeDiscoveryV2
	routeJWKS
	routeToken
)

// route classifies a split path; tenant is the first segment.
func route(segs []string) (routeKind, string) {
	if len(segs) < 2 {
		return routeNone, ""
	}
	tenant, rest := segs[0], strings.Join(segs[1:], "/")
	switch rest {
	case ".well-known/openid-configuration":
		return routeDiscoveryV1, tenant
	case "v2.0/.well-known/openid-configuration":
		return routeDiscoveryV2, tenant
	case "discovery/keys", "discovery/v2.0/keys":
		return routeJWKS, tenant
	case "oauth2/token", "oauth2/v2.0/token", "oauth2/authorize", "oauth2/v2.0/authorize":
		return routeToken, tenant
	}
	return routeNone, ""
}

// validPathSegment reports whether s is safe to embed in URL paths unescaped.
func validPathSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
		default:
			return false
		}
	}
	return true
}

// discoveryDoc mirrors the members of Entra's OpenID configuration documents.
type discoveryDoc struct {
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	HTTPLogoutSupported               bool     `json:"http_logout_supported"`
	FrontchannelLogoutSupported       bool     `json:"frontchannel_logout_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	TenantRegionScope                 any      `json:"tenant_region_scope"`
	CloudInstanceName                 string   `json:"cloud_instance_name"`
}

func (i *Issuer) buildDiscovery(v Version) []byte {
	base := i.authority + "/" + i.tenantID
	d := discoveryDoc{
		TokenEndpointAuthMethodsSupported: []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		ResponseModesSupported:            []string{"query", "fragment", "form_post"},
		SubjectTypesSupported:             []string{"pairwise"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256"},
		HTTPLogoutSupported:               true,
		FrontchannelLogoutSupported:       true,
		CloudInstanceName:                 "authmwtest.invalid",
	}
	if v == V1 {
		d.TokenEndpoint = base + "/oauth2/token"
		d.JWKSURI = i.JWKSURLV1()
		d.ResponseTypesSupported = []string{"code", "id_token", "code id_token", "token id_token", "token"}
		d.ScopesSupported = []string{"openid"}
		d.Issuer = i.issuerV1
		d.AuthorizationEndpoint = base + "/oauth2/authorize"
		d.ClaimsSupported = []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"}
	} else {
		d.TokenEndpoint = base + "/oauth2/v2.0/token"
		d.JWKSURI = i.JWKSURLV2()
		d.ResponseTypesSupported = []string{"code", "id_token", "code id_token", "id_token token"}
		d.ScopesSupported = []string{"openid", "profile", "email", "offline_access"}
		d.Issuer = i.issuerV2
		d.AuthorizationEndpoint = base + "/oauth2/v2.0/authorize"
		d.ClaimsSupported = []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"}
	}
	b, err := json.Marshal(d)
	if err != nil { // cannot happen: only strings and bools
		panic("authmwtest: marshal discovery document: " + err.Error())
	}
	return b
}

// writeError writes an Entra-style JSON error body. It never carries request
// data.
func writeError(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}{code, desc})
	w.Write(b) //nolint:errcheck // client went away
}
