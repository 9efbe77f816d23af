package authmw

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVerifyCore(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Policy.ClaimMappings = map[string]string{"mi": "xms_mirid"}
	})
	c := e.claims(2)
	c["xms_mirid"] = "/subscriptions/x/caller"
	c["groups"] = []string{"g1", "g2"}
	tok := e.mint(c)
	p, err := e.m.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.AppID != testClientID || p.ObjectID != testObjectID || p.TenantID != e.idp.TenantID() || p.Subject != testObjectID ||
		p.Issuer != e.idp.IssuerV2() || !p.AppOnly || p.Version != "2.0" || p.KeyID != e.idp.CurrentKID() ||
		len(p.Roles) != 1 || p.Roles[0] != "Callee.Invoke" || len(p.Groups) != 2 || p.Metadata["mi"] != "/subscriptions/x/caller" ||
		p.Claims["uti"] == nil || len(p.RawClaims) == 0 || !p.ExpiresAt.Equal(e.clock.Now().Add(time.Hour).Truncate(time.Second)) {
		t.Errorf("principal = %+v", p)
	}
	other := e.mint(e.claims(1))
	tests := []struct {
		raw    string
		kind   error
		reason Reason
		status int
	}{
		{"", ErrNoToken, ReasonMissingToken, 401},
		{"x.y.z", ErrInvalidToken, ReasonMalformedToken, 401},
		{tok[:strings.LastIndexByte(tok, '.')] + other[strings.LastIndexByte(other, '.'):], ErrInvalidToken, ReasonInvalidSignature, 401},
	}
	for _, tc := range tests {
		_, err := e.m.Verify(context.Background(), tc.raw)
		var ae *Error
		if !errors.Is(err, tc.kind) || !errors.As(err, &ae) || ae.Reason != tc.reason || ae.Status() != tc.status {
			t.Errorf("Verify(%.10q) = %v, want %v %s", tc.raw, err, tc.kind, tc.reason)
		}
	}
	// 403-kind from the policy.
	p2 := e.m.Policy()
	p2.AllowedApplications = []string{"someone-else"}
	if err := e.m.SetPolicy(p2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Verify(context.Background(), tok); !errors.Is(err, ErrForbidden) {
		t.Errorf("Verify with disallowed app = %v", err)
	}
}

func TestGenericIssuerMode(t *testing.T) {
	var issuer string
	e := newEnvHook(t, func(e *testEnv) { issuer = e.idp.IssuerV2() }, func(c *Config) {
		c.Policy.TenantID = ""
		c.Policy.AuthorityHost = ""
		c.Policy.Issuers = []string{issuer}
	})
	e.waitReady()
	if r := e.get(e.mint(e.claims(2))); r.status != 200 {
		t.Fatalf("v2 token: %d %s\n%s", r.status, r.body, e.logs.String())
	}
	r := e.get(e.mint(e.claims(1)))
	if r.status != 401 || reasonOf(r) != ReasonIssuerMismatch {
		t.Fatalf("v1 token with only the v2 issuer trusted: %d %q", r.status, reasonOf(r))
	}
	// No Entra hints for a generic issuer.
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="callee.test", error="invalid_token"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
}

func TestGenericIssuerMismatchNeverReady(t *testing.T) {
	// The v1 document declares another issuer than its location: with the
	// normal exact-issuer check, it is never trusted.
	var base string
	e := newEnvHook(t, func(e *testEnv) { base = e.idp.AuthorityURL() + "/" + e.idp.TenantID() }, func(c *Config) {
		c.Policy.TenantID = ""
		c.Policy.AuthorityHost = ""
		c.Policy.Issuers = []string{base}
	})
	time.Sleep(300 * time.Millisecond)
	if e.m.Ready() {
		t.Fatal("Ready with an issuer whose discovery declares another issuer")
	}
	if r := e.get(e.mint(e.claims(1))); r.status != 503 {
		t.Fatalf("status %d, want 503", r.status)
	}
	if !strings.Contains(e.logs.String(), "issuer discovery failed") {
		t.Errorf("discovery failure not logged")
	}
}

func TestNewValidation(t *testing.T) {
	_, err := New(context.Background(), Config{
		Algorithms:         []string{"HS256", "none"},
		KeyRefreshInterval: -1,
		UnknownKeyInterval: -1,
		CacheSize:          1 << 40, // adversarial review: allocating it crashed the process
		HTTPClient:         &http.Client{},
		Policy:             Policy{AuthorityHost: "http://login.example.com"},
	})
	if err == nil {
		t.Fatal("New accepted an invalid config")
	}
	for _, want := range []string{"Config.Algorithms", `"HS256"`, `"none"`, "Config.KeyRefreshInterval", "Config.UnknownKeyInterval", "Config.CacheSize", "Config.HTTPClient", "Policy.Audiences", "Policy.TenantID"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

func TestNewFromEnv(t *testing.T) {
	idp := newEnv(t).idp
	env := map[string]string{
		"AUTHMW_TENANT_ID":      idp.TenantID(),
		"AUTHMW_AUTHORITY_HOST": idp.AuthorityURL(),
		"AUTHMW_AUDIENCES":      testAudience,
		"AUTHMW_REQUIRED_ROLES": "Callee.Invoke",
	}
	m, err := NewFromEnv(context.Background(), envFunc(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.Policy(); got.TenantID != idp.TenantID() || got.ClockSkew != DefaultClockSkew || got.UnauthenticatedAction != Return401 {
		t.Errorf("policy = %+v", got)
	}
	if _, err := NewFromEnv(context.Background(), envFunc(nil), nil); err == nil || !strings.Contains(err.Error(), "AUTHMW_AUDIENCES") {
		t.Errorf("missing env: %v", err)
	}
}

func TestAuditRecord(t *testing.T) {
	e := newEnv(t)
	tok := e.mint(e.claims(1))
	e.get(tok)
	e.get(tok)
	e.get("garbage")
	logs := e.logs.String()
	var allowed, denied string
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, `msg="authmw decision"`) {
			continue
		}
		if strings.Contains(l, "outcome=allowed") && strings.Contains(l, "cached=true") {
			allowed = l
		}
		if strings.Contains(l, "outcome=denied") {
			denied = l
		}
	}
	for _, want := range []string{"level=INFO", "appid=" + testClientID, "oid=" + testObjectID, "tid=" + e.idp.TenantID(), "kid=" + e.idp.CurrentKID(), "client_ip=127.0.0.1", "method=GET", "path=/api/x", "duration_ms="} {
		if !strings.Contains(allowed, want) {
			t.Errorf("allowed record lacks %s: %s", want, allowed)
		}
	}
	for _, want := range []string{"level=WARN", "status=401", "reason=malformed_token", "detail="} {
		if !strings.Contains(denied, want) {
			t.Errorf("denied record lacks %s: %s", want, denied)
		}
	}
	d := e.lastDecision()
	if d.Outcome != OutcomeDenied || d.Status != 401 || d.Reason != ReasonMalformedToken || d.ClientIP != "127.0.0.1" || d.Path != "/api/x" {
		t.Errorf("decision = %+v", d)
	}
}

func TestConcurrentRequests(t *testing.T) {
	e := newEnv(t)
	toks := []string{e.mint(e.claims(1)), e.mint(e.claims(2)), "bad.token.x"}
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				tok := toks[(i+j)%len(toks)]
				if _, err := e.m.Verify(context.Background(), tok); (err == nil) != (tok != "bad.token.x") {
					errs <- "unexpected result"
				}
				if j == 5 && i == 0 {
					e.m.SetPolicy(e.m.Policy())
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Fatal(s)
	}
}

func TestClaimsDecoding(t *testing.T) {
	tests := []struct {
		in      string
		aud     []string
		exp     int64
		wantErr bool
	}{
		{`{"aud":"a","exp":1700000000}`, []string{"a"}, 1700000000, false},
		{`{"aud":["a","b"],"exp":1700000000.9}`, []string{"a", "b"}, 1700000000, false},
		{`{}`, nil, 0, false},
		{`{"aud":null}`, nil, 0, true},
		{`{"exp":null}`, nil, 0, true},
		{`{"aud":1}`, nil, 0, true},
		{`{"aud":["a",1]}`, nil, 0, true},
		{`{"exp":"1700000000"}`, nil, 0, true},
		{`{"exp":1e400}`, nil, 0, true},
		{`{"exp":1.7e9}`, nil, 0, true},
		{`{"exp":10}`, nil, 0, true},                       // before 2000
		{`{"exp":253402300800}`, nil, 0, true},             // year 10000
		{`{"exp":253402300799}`, nil, 253402300799, false}, // last second of 9999
		{`{"exp":-1}`, nil, 0, true},
		{`{"exp":1700000000,"exp":1700000001}`, nil, 0, true},
		{`null`, nil, 0, true},
		{`[]`, nil, 0, true},
	}
	for _, tc := range tests {
		var c tokenClaims
		err := decodeClaims([]byte(tc.in), &c)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v", tc.in, err)
			continue
		}
		if err == nil && (int64(c.Expiry) != tc.exp || strings.Join(c.Audience, ",") != strings.Join(tc.aud, ",")) {
			t.Errorf("%s: aud %v exp %d", tc.in, c.Audience, c.Expiry)
		}
	}
}
