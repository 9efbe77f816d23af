package authmw

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/testutil"

	"github.com/f2fauth/f2fauth/internal/localidp"
)

const (
	testAudience = "api://callee"
	testClientID = "11111111-2222-3333-4444-555555555555"
	testObjectID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
)

// fakeClock is an injectable clock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// logBuffer is a goroutine-safe log sink.
type logBuffer = testutil.SyncBuffer

// testEnv is a local identity platform, a Middleware trusting its tenant and an
// HTTP server protected by the Middleware.
type testEnv struct {
	t         testing.TB
	idp       *localidp.Platform
	clock     *fakeClock
	m         *Middleware
	srv       *httptest.Server
	logs      *logBuffer
	mu        sync.Mutex
	decisions []Decision
	tokens    []string // every token minted, to check they never leak
}

type envOption func(*Config)

func newEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	e := newEnvNoWait(t, opts...)
	e.waitReady()
	return e
}

func (e *testEnv) waitReady() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.m.WaitReady(ctx); err != nil {
		e.t.Fatalf("WaitReady: %v", err)
	}
}

func newEnvNoWait(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	return newEnvHook(t, nil, opts...)
}

// newEnvHook is newEnvNoWait with a hook run on the started IdP before New.
func newEnvHook(t testing.TB, hook func(*testEnv), opts ...envOption) *testEnv {
	t.Helper()
	e := &testEnv{t: t, clock: newFakeClock(), logs: &logBuffer{}}
	idp, err := localidp.Start(localidp.Options{Now: e.clock.Now, TokenLifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	e.idp = idp
	if hook != nil {
		hook(e)
	}
	cfg := Config{
		shortIntervals: true,
		Policy: Policy{
			TenantID:      idp.TenantID(),
			AuthorityHost: idp.AuthorityURL(),
			Audiences:     []string{testAudience},
			// Most tests add the rule they exercise; the base admits any caller.
			InsecureAllowAnyCaller: true,
		},
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnDecision: func(d Decision) {
			e.mu.Lock()
			e.decisions = append(e.decisions, d)
			e.mu.Unlock()
		},
		Now:   e.clock.Now,
		Realm: "callee.test",
	}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	e.m = m
	e.srv = httptest.NewServer(m.Handler(http.HandlerFunc(echoPrincipalHandler)))
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.checkNoLeaks)
	return e
}

// echoPrincipalHandler answers 200 with the principal (or "anonymous") and the
// X-MS-CLIENT-PRINCIPAL* headers it received.
func echoPrincipalHandler(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{}
	if p, ok := PrincipalFrom(r.Context()); ok {
		out["appid"], out["oid"], out["tid"], out["roles"], out["app_only"], out["ver"] = p.AppID, p.ObjectID, p.TenantID, p.Roles, p.AppOnly, p.Version
	} else {
		out["anonymous"] = true
	}
	hdr := map[string]string{}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-ms-client-principal") {
			hdr[k] = strings.Join(v, ",")
		}
	}
	out["headers"] = hdr
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (e *testEnv) identity() localidp.Identity {
	return localidp.Identity{ClientID: testClientID, ObjectID: testObjectID, AppRoles: map[string][]string{testAudience: {"Callee.Invoke"}}}
}

// claims returns valid claims of the given token version.
func (e *testEnv) claims(version int) localidp.Claims {
	return e.idp.AccessTokenClaims(e.identity(), testAudience, version)
}

func (e *testEnv) mint(c localidp.Claims) string {
	e.t.Helper()
	tok, err := e.idp.Mint(c)
	if err != nil {
		e.t.Fatal(err)
	}
	e.remember(tok)
	return tok
}

func (e *testEnv) remember(tok string) {
	e.mu.Lock()
	e.tokens = append(e.tokens, tok)
	e.mu.Unlock()
}

type testResponse struct {
	status int
	header http.Header
	body   string
}

func (e *testEnv) do(path string, hdr http.Header) testResponse {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := testResponse{status: res.StatusCode, header: res.Header, body: string(b)}
	e.checkBody(r)
	return r
}

func (e *testEnv) get(tok string) testResponse {
	e.t.Helper()
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	return e.do("/api/x", h)
}

// checkBody asserts denials are well-formed problem+json without token text.
func (e *testEnv) checkBody(r testResponse) {
	e.t.Helper()
	if r.status >= 500 && r.status != http.StatusServiceUnavailable {
		e.t.Fatalf("status %d: %s", r.status, r.body)
	}
	if r.status < 400 {
		return
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		e.t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(r.body), &p); err != nil {
		e.t.Fatalf("body is not JSON: %v: %s", err, r.body)
	}
	for _, k := range []string{"type", "title", "status", "detail", "reason"} {
		if _, ok := p[k]; !ok {
			e.t.Errorf("problem body lacks %q: %s", k, r.body)
		}
	}
	if int(p["status"].(float64)) != r.status {
		e.t.Errorf("problem status %v != %d", p["status"], r.status)
	}
}

func reasonOf(r testResponse) Reason {
	var p struct {
		Reason Reason `json:"reason"`
	}
	json.Unmarshal([]byte(r.body), &p)
	return p.Reason
}

// checkNoLeaks asserts that no minted token, nor its signature or payload,
// appears in any log line.
func (e *testEnv) checkNoLeaks() {
	logs := e.logs.String()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, tok := range e.tokens {
		parts := strings.Split(tok, ".")
		for _, s := range append(parts, tok) {
			if len(s) >= 16 && strings.Contains(logs, s) {
				e.t.Errorf("log output contains token material %.12q…", s)
			}
		}
	}
}

func (e *testEnv) lastDecision() Decision {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.decisions) == 0 {
		e.t.Fatal("no decision recorded")
	}
	return e.decisions[len(e.decisions)-1]
}

// forge builds a compact JWS from header and claims, signed by sign (nil: no signature).
func forge(header, claims map[string]any, sign func(signingInput []byte) []byte) string {
	c, _ := json.Marshal(claims)
	return testutil.Compact(header, c, sign)
}

var (
	rs256 = testutil.RS256
	hs256 = testutil.HS256
)

var (
	attackerKeyOnce sync.Once
	attackerKey     *rsa.PrivateKey
)

func getAttackerKey() *rsa.PrivateKey {
	attackerKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		attackerKey = k
	})
	return attackerKey
}

// checkEasyAuthPrincipal asserts X-MS-CLIENT-PRINCIPAL* in h have Easy Auth's
// exact shape for the claims c.
func checkEasyAuthPrincipal(t *testing.T, h http.Header, c localidp.Claims) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(h.Get("X-MS-CLIENT-PRINCIPAL"))
	if err != nil {
		t.Fatalf("X-MS-CLIENT-PRINCIPAL is not base64: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var p struct {
		AuthTyp string `json:"auth_typ"`
		Claims  []struct {
			Typ string `json:"typ"`
			Val string `json:"val"`
		} `json:"claims"`
		NameTyp string `json:"name_typ"`
		RoleTyp string `json:"role_typ"`
	}
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("X-MS-CLIENT-PRINCIPAL JSON: %v: %s", err, raw)
	}
	if p.AuthTyp != "aad" || p.NameTyp != "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name" || p.RoleTyp != "roles" {
		t.Errorf("principal = %+v", p)
	}
	got := map[string][]string{}
	for _, cl := range p.Claims {
		got[cl.Typ] = append(got[cl.Typ], cl.Val)
	}
	want := map[string][]string{}
	for k, v := range c {
		switch k {
		case "oid":
			k = "http://schemas.microsoft.com/identity/claims/objectidentifier"
		case "tid":
			k = "http://schemas.microsoft.com/identity/claims/tenantid"
		case "sub":
			k = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"
		}
		switch x := v.(type) {
		case []string:
			want[k] = x
		case string:
			want[k] = []string{x}
		default:
			b, _ := json.Marshal(x)
			want[k] = []string{string(b)}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("claims = %v\nwant %v", got, want)
	}
	if h.Get("X-MS-CLIENT-PRINCIPAL-ID") != c["oid"] || h.Get("X-MS-CLIENT-PRINCIPAL-IDP") != "aad" {
		t.Errorf("-ID %q -IDP %q", h.Get("X-MS-CLIENT-PRINCIPAL-ID"), h.Get("X-MS-CLIENT-PRINCIPAL-IDP"))
	}
	wantName, _ := c["name"].(string)
	if wantName == "" {
		wantName, _ = c["appid"].(string)
	}
	if h.Get("X-MS-CLIENT-PRINCIPAL-NAME") != wantName {
		t.Errorf("-NAME %q, want %q", h.Get("X-MS-CLIENT-PRINCIPAL-NAME"), wantName)
	}
}

func slogDiscardJSON() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }
