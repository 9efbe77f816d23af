package callee

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/internal/localidp"
	"github.com/f2fauth/f2fauth/internal/testutil"
)

// TestExclusiveBodyPerCaller alternates two callers' reused tokens, methods and a
// ?pretty query: every answer names the caller whose token it carried and is byte
// for byte what echo's c.JSON writes for that caller.
func TestExclusiveBodyPerCaller(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	second := localidp.Identity{Name: "second", ClientID: "33333333-3333-4333-8333-333333333333", ObjectID: "44444444-4444-4444-8444-444444444444",
		AppRoles: map[string][]string{testAudience: {testRole}}}
	_, base := serve(t, envFor(p, map[string]string{"AUTHMW_ALLOWED_APPLICATIONS": allowedID.ClientID + "," + second.ClientID}))
	tokens := map[string]string{allowedID.ObjectID: mint(t, p, allowedID, testAudience), second.ObjectID: mint(t, p, second, testAudience)}
	client := &http.Client{Timeout: 10 * time.Second}
	steps := []struct {
		oid, method, query string
	}{
		{allowedID.ObjectID, http.MethodGet, ""},
		{second.ObjectID, http.MethodGet, ""},
		{allowedID.ObjectID, http.MethodGet, ""},
		{allowedID.ObjectID, http.MethodPost, ""},
		{second.ObjectID, http.MethodPost, ""},
		{second.ObjectID, http.MethodGet, ""},
		{allowedID.ObjectID, http.MethodGet, "?pretty"},
		{allowedID.ObjectID, http.MethodGet, ""},
	}
	for i, st := range steps {
		req, err := http.NewRequest(st.method, base+FunctionPath+st.query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tokens[st.oid])
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("step %d: %d %s", i, resp.StatusCode, body)
		}
		if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
			t.Errorf("step %d: Content-Type %q, Cache-Control %q", i, ct, cc)
		}
		var got CallerInfo
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("step %d: %v: %s", i, err, body)
		}
		if got.ObjectID != st.oid || got.Method != st.method {
			t.Errorf("step %d: answered objectId %s method %s, want %s %s", i, got.ObjectID, got.Method, st.oid, st.method)
		}
		want, _ := json.Marshal(got)
		if st.query != "" {
			want, _ = json.MarshalIndent(got, "", "  ")
		}
		if string(body) != string(want)+"\n" {
			t.Errorf("step %d: body differs from c.JSON's\n got %s\nwant %s", i, body, want)
		}
	}
}

// TestCallerBodiesSameSlotOtherPrincipal: two principals in the same slot (same
// object ID, as after a token is re-verified) never get each other's body.
func TestCallerBodiesSameSlotOtherPrincipal(t *testing.T) {
	t.Parallel()
	e := echo.New()
	b := newCallerBodies()
	p1 := &authmw.Principal{AppID: "app-one", ObjectID: "same-oid"}
	p2 := &authmw.Principal{AppID: "app-two", ObjectID: "same-oid"}
	for i, p := range []*authmw.Principal{p1, p2, p1, p2, p2} {
		rec := httptest.NewRecorder()
		c := e.NewContext(httptest.NewRequest(http.MethodGet, FunctionPath, nil), rec)
		info := &CallerInfo{Message: "m", AppID: p.AppID, ObjectID: p.ObjectID, Roles: []string{}, Method: http.MethodGet}
		if err := b.write(c, p, info); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(info)
		if got := rec.Body.String(); got != string(want)+"\n" || !strings.Contains(got, p.AppID) {
			t.Errorf("request %d as %s: body %s, want %s", i, p.AppID, got, want)
		}
	}
}

// BenchmarkExclusiveBody is the rendered body of a reused token against c.JSON.
func BenchmarkExclusiveBody(b *testing.B) {
	e := echo.New()
	p := &authmw.Principal{AppID: "11111111-1111-4111-8111-111111111111", ObjectID: "22222222-2222-4222-8222-222222222222",
		TenantID: "7c3e9f2a-4b1d-4e8a-9f6c-2d5b8a1ef2fa", Roles: []string{testRole}, Issuer: "https://sts.windows.net/x/", ExpiresAt: time.Now()}
	info := &CallerInfo{Message: "Hello", AppID: p.AppID, ObjectID: p.ObjectID, TenantID: p.TenantID, Roles: p.Roles, Issuer: p.Issuer, ExpiresAt: p.ExpiresAt, Method: http.MethodGet}
	req := httptest.NewRequest(http.MethodGet, FunctionPath, nil)
	for _, bc := range []struct {
		name  string
		write func(c echo.Context) error
	}{
		{"rendered", func(c echo.Context) error { return newCallerBodiesOnce.write(c, p, info) }},
		{"c.JSON", func(c echo.Context) error { return c.JSON(http.StatusOK, info) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				if err := bc.write(e.NewContext(req, rec)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var newCallerBodiesOnce = newCallerBodies()

// TestReusedTokenLogsOnce: with default settings, repeated allowed calls with one
// token write one allowed record (its verification) and at most one sampled cache
// hit, not a line or two per call; a denial is always logged.
func TestReusedTokenLogsOnce(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	var logs testutil.SyncBuffer
	s, err := NewServer(context.Background(), envFor(p, nil), NewLogger(&logs, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	tok := mint(t, p, allowedID, testAudience)
	h := s.Handler()
	call := func(token string) int {
		req := httptest.NewRequest(http.MethodGet, FunctionPath, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	start := time.Now()
	for i := range 20 {
		if st := call(tok); st != http.StatusOK {
			t.Fatalf("call %d: %d", i, st)
		}
	}
	seconds := int(time.Since(start) / time.Second)
	if st := call(mint(t, p, rogueID, testAudience)); st != http.StatusForbidden {
		t.Fatalf("rogue: %d", st)
	}
	var allowed, denied int
	for _, l := range strings.Split(logs.String(), "\n") {
		switch {
		case strings.Contains(l, "exclusive function called"):
			t.Errorf("per-call line at Info: %s", l)
		case strings.Contains(l, `"outcome":"allowed"`):
			allowed++
		case strings.Contains(l, `"outcome":"denied"`):
			denied++
		}
	}
	// The verification, and at most one sampled cache hit per second started.
	if allowed < 1 || allowed > 2+seconds {
		t.Errorf("%d allowed records for 20 calls with one token in %ds, want 1 to %d:\n%s", allowed, seconds, 2+seconds, logs.String())
	}
	if denied != 1 {
		t.Errorf("%d denied records, want 1", denied)
	}
}
