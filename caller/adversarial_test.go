package caller

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestConfigFormattingHidesFunctionKey: a function key in CALLEE_URL
// (?code=…) never shows when a Config (Caller.Config()) is printed or logged,
// whatever the verb or handler.
func TestConfigFormattingHidesFunctionKey(t *testing.T) {
	const key = "fUnCt10nK3ySecretValue0123456789abcdefXYZ=="
	cfg, err := ConfigFromEnv(func(name string) string {
		switch name {
		case EnvCalleeURL:
			return "https://callee.example.com/api/Exclusive?code=" + key + "&clientId=default"
		case EnvCalleeAudience:
			return "api://callee"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		outs = append(outs, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg))
	}
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(h(&b)).Info("start", "config", cfg, "ptr", &cfg)
		outs = append(outs, b.String())
	}
	for _, out := range outs {
		if strings.Contains(out, "fUnCt10nK3y") || strings.Contains(out, "clientId=default") {
			t.Fatalf("the function key leaks: %s", out)
		}
		if !strings.Contains(out, "callee.example.com/api/Exclusive") {
			t.Fatalf("the URL is gone altogether: %s", out)
		}
	}
}

// TestCalleeHugeHeadersFailTheRun: a callee answering with megabytes of
// headers (Go's default limit is 10 MB per response, per concurrent run) is
// a failed run, not a success read into memory.
func TestCalleeHugeHeadersFailTheRun(t *testing.T) {
	var hits atomic.Int64
	callee := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		for i := range 32 {
			w.Header().Set(fmt.Sprintf("X-Pad-%d", i), strings.Repeat("a", 64<<10))
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"appId":"x"}`)
	}))
	defer callee.Close()
	f := newFixture(t, callee.URL+"/api/ExclusiveFunction", func(c *Config) { c.MaxRetries = 0 })
	r := f.invoke(t, payload(false))
	if rep := r.report(); rep.OK || !strings.Contains(rep.Reason, "header") {
		t.Fatalf("a 2 MB header answer: ok=%v reason=%q; want a failed run naming the headers", rep.OK, rep.Reason)
	}
}

// TestInvalidTokenStormDoesNotStormTheIdentityEndpoint: a callee answering
// every request 401 invalid_token makes each run invalidate the token and
// retry once; over many back-to-back runs the identity endpoint sees one
// forced refresh per InvalidateInterval, not one per run.
func TestInvalidTokenStormDoesNotStormTheIdentityEndpoint(t *testing.T) {
	var hits atomic.Int64
	callee := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer callee.Close()
	f := newFixture(t, callee.URL+"/api/ExclusiveFunction", func(c *Config) { c.MaxRetries = 0 })
	for i := range 20 {
		if rep := f.invoke(t, payload(false)).report(); rep.OK || rep.CalleeStatus != http.StatusUnauthorized {
			t.Fatalf("run %d: ok=%v status=%d", i, rep.OK, rep.CalleeStatus)
		}
	}
	// One token, then one forced refresh (the first 401): both reach the
	// endpoint (the forced one skips MSAL's cache); later 401s are within
	// the interval.
	if n := f.mi.Requests(); n != 2 {
		t.Fatalf("identity endpoint requests = %d over 20 runs, want 2", n)
	}
	if n := hits.Load(); n != 21 {
		t.Fatalf("callee requests = %d, want 21 (one retry, on the first run only)", n)
	}
}

// TestRedactingHandlerBytesAndNested: byte slices and values nested in
// slices or maps are redacted like strings (fmt would print a []byte as
// decimal numbers that no pattern recognises).
func TestRedactingHandlerBytesAndNested(t *testing.T) {
	t.Setenv("IDENTITY_HEADER", "Xq7Zp3-identity-secret")
	var buf bytes.Buffer
	l := slog.New(newRedactingHandler(slog.NewJSONHandler(&buf, nil)))
	l.Info("m",
		"bytes", []byte("header Xq7Zp3-identity-secret"),
		"any", []any{"Bearer zzz-token-value"},
		"map", map[string]string{"h": "Xq7Zp3-identity-secret"})
	out := buf.String()
	if strings.Contains(out, "Xq7Zp3") || strings.Contains(out, "zzz-token-value") || strings.Contains(out, "88 113 55") {
		t.Fatalf("log keeps a secret: %s", out)
	}
}

// TestCalleeRedirectsNeverFollowed: whatever the redirect status and
// Location form, the caller's run stops at the 3xx: no other loopback
// server (nor the callee itself under another name) receives a request.
func TestCalleeRedirectsNeverFollowed(t *testing.T) {
	var thiefHits atomic.Int64
	thief := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { thiefHits.Add(1) }))
	defer thief.Close()
	thiefURL := thief.URL + "/steal"
	for _, tc := range []struct {
		name     string
		status   int
		location func(calleeHost string) string
	}{
		{"307 to another loopback port", http.StatusTemporaryRedirect, func(string) string { return thiefURL }},
		{"308 scheme-relative", http.StatusPermanentRedirect, func(string) string { return "//" + strings.TrimPrefix(thief.URL, "http://") + "/steal" }},
		{"303 to localhost", http.StatusSeeOther, func(string) string { return strings.Replace(thiefURL, "127.0.0.1", "localhost", 1) }},
		{"307 to [::1]", http.StatusTemporaryRedirect, func(string) string { return strings.Replace(thiefURL, "127.0.0.1", "[::1]", 1) }},
		{"301 same origin", http.StatusMovedPermanently, func(h string) string { return "http://" + h + "/other" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calleeHits atomic.Int64
			callee := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calleeHits.Add(1)
				w.Header().Set("Location", tc.location(r.Host))
				w.WriteHeader(tc.status)
			}))
			defer callee.Close()
			f := newFixture(t, callee.URL+"/api/ExclusiveFunction", func(c *Config) { c.MaxRetries = 0 })
			rep := f.invoke(t, payload(false)).report()
			if rep.OK || rep.CalleeStatus != tc.status {
				t.Fatalf("ok=%v status=%d, want a failed run with %d", rep.OK, rep.CalleeStatus, tc.status)
			}
			if n, m := thiefHits.Load(), calleeHits.Load(); n != 0 || m != 1 {
				t.Fatalf("thief requests = %d, callee requests = %d; want 0 and 1", n, m)
			}
		})
	}
}
