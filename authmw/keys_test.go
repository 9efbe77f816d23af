package authmw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestUnknownKIDStormFetchesAtMostOnce(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.UnknownKeyInterval = time.Hour })
	before := e.idp.JWKSRequests()
	attacker := getAttackerKey()
	for i := 0; i < 120; i++ {
		b := make([]byte, 8)
		rand.Read(b)
		tok := forge(map[string]any{"alg": "RS256", "kid": hex.EncodeToString(b)}, map[string]any(e.claims(1)), rs256(attacker))
		e.remember(tok)
		if r := e.get(tok); r.status != 401 || reasonOf(r) != ReasonUnknownKey {
			t.Fatalf("forged kid %d: %d %q", i, r.status, reasonOf(r))
		}
	}
	if got := e.idp.JWKSRequests() - before; got > 1 {
		t.Fatalf("%d JWKS fetches for 120 forged kids, want at most 1", got)
	}
}

func TestKeyRotationAccepted(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.UnknownKeyInterval = time.Minute })
	if r := e.get(e.mint(e.claims(1))); r.status != 200 {
		t.Fatalf("before rotation: %d", r.status)
	}
	// A forged kid uses up the refetch allowed in this interval.
	forged := forge(map[string]any{"alg": "RS256", "kid": "forged"}, map[string]any(e.claims(1)), rs256(getAttackerKey()))
	e.remember(forged)
	if r := e.get(forged); r.status != 401 || reasonOf(r) != ReasonUnknownKey {
		t.Fatalf("forged kid: %d %q", r.status, reasonOf(r))
	}
	newKID := e.idp.RotateKey()
	tok := e.mint(e.claims(1))
	if r := e.get(tok); r.status != 401 || reasonOf(r) != ReasonUnknownKey {
		t.Fatalf("rotated key within the rate-limited interval: %d %q (want 401 unknown_key)", r.status, reasonOf(r))
	}
	e.clock.Advance(time.Minute) // one UnknownKeyInterval later
	r := e.get(tok)
	if r.status != 200 {
		t.Fatalf("token with rotated key %s after one interval: %d %s", newKID, r.status, r.body)
	}
	if d := e.lastDecision(); d.KeyID != newKID {
		t.Errorf("decision kid = %q, want %q", d.KeyID, newKID)
	}
}

func TestEmergencyKeyRemovalPurgesCache(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.UnknownKeyInterval = time.Millisecond })
	oldKID := e.idp.CurrentKID()
	old := e.mint(e.claims(1))
	for i, wantCached := range []bool{false, true} {
		if r := e.get(old); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
		if d := e.lastDecision(); d.Cached != wantCached {
			t.Fatalf("request %d: cached = %v, want %v", i, d.Cached, wantCached)
		}
	}
	// Emergency rollover: a new key, the old one unpublished.
	e.idp.RotateKey()
	e.idp.RemoveKey(oldKID)
	e.clock.Advance(time.Second) // past the unknown-kid interval (the key set uses Config.Now)
	// A token with the new kid makes the v1 key set refetch and notice the removal.
	if r := e.get(e.mint(e.claims(1))); r.status != 200 {
		t.Fatalf("new-key token: %d %s", r.status, r.body)
	}
	r := e.get(old)
	if r.status != 401 {
		t.Fatalf("token of removed key: %d, want 401 (served from cache?)", r.status)
	}
	if d := e.lastDecision(); d.Cached {
		t.Errorf("decision for removed key came from cache")
	}
}

func TestIssuerDownBeforeNew(t *testing.T) {
	e2 := newEnvDownFirst(t) // the IdP is down before New runs
	tok := e2.mint(e2.claims(2))
	r := e2.get(tok)
	if r.status != 503 || reasonOf(r) != ReasonKeysUnavailable || r.header.Get("Retry-After") != retryAfterSeconds {
		t.Fatalf("while down: %d %q Retry-After=%q", r.status, reasonOf(r), r.header.Get("Retry-After"))
	}
	if e2.m.Ready() {
		t.Fatal("Ready while the issuer is down")
	}
	if r := e2.get(""); r.status != 503 || reasonOf(r) != ReasonKeysUnavailable || r.header.Get("Retry-After") != retryAfterSeconds {
		t.Fatalf("no token while down: %d %q Retry-After=%q", r.status, reasonOf(r), r.header.Get("Retry-After"))
	}
	e2.idp.SetDown(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e2.m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if r := e2.get(tok); r.status != 200 {
		t.Fatalf("after recovery: %d %s", r.status, r.body)
	}
	if r := e2.get(""); r.status != 401 || reasonOf(r) != ReasonMissingToken {
		t.Fatalf("no token after recovery: %d %q", r.status, reasonOf(r))
	}
}

func TestJWKSDownAfterLoadKeepsLastGoodKeys(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.KeyRefreshInterval = 20 * time.Millisecond })
	e.idp.SetDown(true)
	time.Sleep(100 * time.Millisecond) // several failed refreshes
	if r := e.get(e.mint(e.claims(1))); r.status != 200 {
		t.Fatalf("with JWKS down: %d %s", r.status, r.body)
	}
	if r := e.get(e.mint(e.claims(2))); r.status != 200 {
		t.Fatalf("v2 with JWKS down: %d %s", r.status, r.body)
	}
}

func TestCacheHitsAndSetPolicyPurge(t *testing.T) {
	e := newEnv(t)
	tok := e.mint(e.claims(1))
	for i, wantCached := range []bool{false, true, true} {
		if r := e.get(tok); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
		if d := e.lastDecision(); d.Cached != wantCached {
			t.Fatalf("request %d: cached %v, want %v", i, d.Cached, wantCached)
		}
	}
	p := e.m.Policy()
	p.RequiredRoles = []string{"Admin"}
	if err := e.m.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	if r := e.get(tok); r.status != 403 || reasonOf(r) != ReasonRoleMissing {
		t.Fatalf("after SetPolicy: %d %q", r.status, reasonOf(r))
	}
	// An invalid policy is refused and the old one stays.
	bad := p
	bad.Audiences = nil
	if err := e.m.SetPolicy(bad); err == nil {
		t.Fatal("SetPolicy accepted a policy without audiences")
	}
	if r := e.get(tok); r.status != 403 {
		t.Fatalf("after refused SetPolicy: %d", r.status)
	}
	p.RequiredRoles = nil
	if err := e.m.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	if r := e.get(tok); r.status != 200 || e.lastDecision().Cached {
		t.Fatalf("after relaxing: %d cached=%v", r.status, e.lastDecision().Cached)
	}
	// Issuer settings cannot change at run time.
	p.TenantID = "other"
	if err := e.m.SetPolicy(p); err == nil {
		t.Fatal("SetPolicy changed the tenant")
	}
}

func TestCachedTokenExpires(t *testing.T) {
	e := newEnv(t)
	tok := e.mint(e.claims(1)) // 1 h lifetime
	if r := e.get(tok); r.status != 200 {
		t.Fatal(r.status)
	}
	e.clock.Advance(time.Hour + 4*time.Minute)
	if r := e.get(tok); r.status != 200 || !e.lastDecision().Cached {
		t.Fatalf("within skew: %d cached=%v", r.status, e.lastDecision().Cached)
	}
	e.clock.Advance(2 * time.Minute)
	if r := e.get(tok); r.status != 401 || reasonOf(r) != ReasonTokenExpired {
		t.Fatalf("after exp+skew: %d %q", r.status, reasonOf(r))
	}
}

func TestPrincipalHeadersStrippedAndEasyAuth(t *testing.T) {
	forgedHeaders := http.Header{
		"X-Ms-Client-Principal":      {"Zm9yZ2Vk"},
		"X-Ms-Client-Principal-Id":   {"forged"},
		"x-ms-client-principal-name": {"forged"},
		"X-MS-CLIENT-PRINCIPAL-IDP":  {"forged"},
	}
	for _, easy := range []bool{false, true} {
		for _, path := range []string{"/healthz", "/api/x"} {
			t.Run(path+map[bool]string{true: " easyauth", false: ""}[easy], func(t *testing.T) {
				e := newEnv(t, func(c *Config) {
					c.Policy.ExcludedPaths = []string{"/healthz"}
					c.Policy.EasyAuthHeaders = easy
					c.Policy.UnauthenticatedAction = AllowAnonymous
				})
				for _, withToken := range []bool{false, true} {
					h := forgedHeaders.Clone()
					if withToken {
						h.Set("Authorization", "Bearer "+e.mint(e.claims(1)))
					}
					r := e.do(path, h)
					if r.status != 200 {
						t.Fatalf("status %d", r.status)
					}
					if strings.Contains(r.body, "forged") || strings.Contains(r.body, "Zm9yZ2Vk") {
						t.Fatalf("forged principal header reached the handler: %s", r.body)
					}
					wantSet := easy && withToken && path == "/api/x"
					if got := strings.Contains(r.body, "X-Ms-Client-Principal-Idp"); got != wantSet {
						t.Fatalf("principal headers set = %v, want %v: %s", got, wantSet, r.body)
					}
				}
			})
		}
	}
}

func TestEasyAuthHeaderShape(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy.EasyAuthHeaders = true })
	c := e.claims(1)
	c["roles"] = []string{"A", "B"}
	c["name"] = "caller"
	c["n"] = 12.5
	tok := e.mint(c)
	var got http.Header
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got == nil {
		t.Fatal("handler not called")
	}
	checkEasyAuthPrincipal(t, got, c)
}

func newEnvDownFirst(t *testing.T) *testEnv {
	t.Helper()
	return newEnvHook(t, func(e *testEnv) { e.idp.SetDown(true) })
}

func TestCacheBounded(t *testing.T) {
	c := newTokenCache(10)
	has := func(raw string) bool {
		_, inCur := c.cur[raw]
		_, inOld := c.old[raw]
		return inCur || inOld
	}
	for i := 0; i < 100; i++ {
		c.put(strings.Repeat("t", i+1), &cacheEntry{})
		if n := len(c.cur) + len(c.old); n > 10 {
			t.Fatalf("cache holds %d entries, max 10", n)
		}
		// The newest entries are always found.
		if !has(strings.Repeat("t", i+1)) {
			t.Fatalf("entry %d missing right after put", i)
		}
		if i > 0 && !has(strings.Repeat("t", i)) {
			t.Fatalf("entry %d evicted by the very next put", i-1)
		}
	}
	off := newTokenCache(-1)
	off.put("x", &cacheEntry{})
	if off.lookup("x", 0, time.Time{}) != nil || off.cur != nil {
		t.Fatal("disabled cache stored an entry")
	}
}
