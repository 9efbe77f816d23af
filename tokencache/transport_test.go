package tokencache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recordingServer answers 401 invalid_token to tokens listed in reject and
// records each request's Authorization and body.
type recordingServer struct {
	*httptest.Server
	mu     sync.Mutex
	auths  []string
	bodies []string
	reject map[string]bool
	hdr    string // WWW-Authenticate on rejection
}

func newRecordingServer(t *testing.T, tlsSrv bool) *recordingServer {
	rs := &recordingServer{reject: map[string]bool{}, hdr: `Bearer realm="api", error="invalid_token", error_description="The token expired"`}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		auth := r.Header.Get("Authorization")
		rs.mu.Lock()
		rs.auths = append(rs.auths, auth)
		rs.bodies = append(rs.bodies, string(b))
		rej := rs.reject[strings.TrimPrefix(auth, "Bearer ")]
		hdr := rs.hdr
		rs.mu.Unlock()
		if rej {
			w.Header().Set("WWW-Authenticate", hdr)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	if tlsSrv {
		rs.Server = httptest.NewTLSServer(h)
	} else {
		rs.Server = httptest.NewServer(h)
	}
	t.Cleanup(rs.Close)
	return rs
}

func (rs *recordingServer) requests() ([]string, []string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]string(nil), rs.auths...), append([]string(nil), rs.bodies...)
}

func transportCache(t *testing.T) (*Cache, *fakeCred, *fakeClock) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(tokenFor(clk, time.Hour))
	return newTestCache(t, cred, clk, nil), cred, clk
}

func TestTransportSetsHeaderWithoutMutatingRequest(t *testing.T) {
	for _, tlsSrv := range []bool{false, true} {
		name := map[bool]string{false: "http loopback", true: "https"}[tlsSrv]
		t.Run(name, func(t *testing.T) {
			c, _, _ := transportCache(t)
			srv := newRecordingServer(t, tlsSrv)
			var base http.RoundTripper
			if tlsSrv {
				base = srv.Client().Transport
			}
			client := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(scope, base)}
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Custom", "kept")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			auths, _ := srv.requests()
			if len(auths) != 1 || auths[0] != "Bearer tok-1" {
				t.Fatalf("server saw Authorization %q, want [Bearer tok-1]", auths)
			}
			if got := req.Header.Get("Authorization"); got != "" {
				t.Fatalf("caller's request was mutated: Authorization = %q", got)
			}
			if len(req.Header) != 1 {
				t.Fatalf("caller's headers changed: %v", req.Header)
			}
		})
	}
}

// closeTracker records whether a body was closed.
type closeTracker struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeTracker) Close() error { c.closed.Store(true); return nil }

func TestTransportRefusesPlainHTTPOffLoopback(t *testing.T) {
	c, cred, _ := transportCache(t)
	called := false
	base := roundTripFunc(func(*http.Request) (*http.Response, error) {
		called = true
		return nil, errors.New("must not be reached")
	})
	rt := c.Transport(scope, base)
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://example.com/x", false},
		{"http://10.0.0.1/x", false},
		{"http://127.0.0.1.example.com/x", false},
		{"http://localhost.evil.test/x", false},
		{"ftp://127.0.0.1/x", false},
		{"http://127.0.0.1:8080/x", true},
		{"http://127.1.2.3/x", true},
		{"http://[::1]:9/x", true},
		{"http://LOCALHOST/x", true},
		{"https://example.com/x", true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			called = false
			body := &closeTracker{Reader: strings.NewReader("payload")}
			req, err := http.NewRequest(http.MethodPost, tt.url, body)
			if err != nil {
				t.Fatal(err)
			}
			_, err = rt.RoundTrip(req)
			if tt.ok {
				if !called {
					t.Fatalf("request to %s was refused: %v", tt.url, err)
				}
				return
			}
			if !errors.Is(err, ErrInsecureTransport) || called {
				t.Fatalf("err = %v (sent %v), want ErrInsecureTransport and nothing sent", err, called)
			}
			if !strings.Contains(err.Error(), req.URL.Host) {
				t.Fatalf("error %q does not name the host", err)
			}
			if !body.closed.Load() {
				t.Fatal("request body not closed on refusal")
			}
		})
	}
	if n := cred.calls.Load(); n != 1 { // only the allowed requests fetched (once)
		t.Fatalf("credential calls = %d, want 1", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransportRetriesOnceOnInvalidToken(t *testing.T) {
	tests := []struct {
		name        string
		body        func() (io.Reader, bool) // reader, replayable
		header      string
		rejectAll   bool
		wantStatus  int
		wantAuths   []string
		wantBodies  []string
		wantInvalid bool
	}{
		{
			name:       "replayable body: invalidate and retry once",
			body:       func() (io.Reader, bool) { return strings.NewReader("payload"), true },
			wantStatus: 200, wantAuths: []string{"Bearer tok-1", "Bearer tok-2"}, wantBodies: []string{"payload", "payload"},
		},
		{
			name:       "no body: retry",
			body:       func() (io.Reader, bool) { return nil, true },
			wantStatus: 200, wantAuths: []string{"Bearer tok-1", "Bearer tok-2"}, wantBodies: []string{"", ""},
		},
		{
			name:       "body without GetBody: no retry",
			body:       func() (io.Reader, bool) { return io.MultiReader(strings.NewReader("payload")), false },
			wantStatus: 401, wantAuths: []string{"Bearer tok-1"}, wantBodies: []string{"payload"},
		},
		{
			name:       "still rejected: only one retry",
			body:       func() (io.Reader, bool) { return bytes.NewReader([]byte("payload")), true },
			rejectAll:  true,
			wantStatus: 401, wantAuths: []string{"Bearer tok-1", "Bearer tok-2"}, wantBodies: []string{"payload", "payload"},
		},
		{
			name:       "401 without invalid_token: no retry",
			body:       func() (io.Reader, bool) { return nil, true },
			header:     `Bearer realm="api"`,
			wantStatus: 401, wantAuths: []string{"Bearer tok-1"}, wantBodies: []string{""},
		},
		{
			name:       "insufficient_scope: no retry",
			body:       func() (io.Reader, bool) { return nil, true },
			header:     `Bearer error="insufficient_scope"`,
			wantStatus: 401, wantAuths: []string{"Bearer tok-1"}, wantBodies: []string{""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, _ := transportCache(t)
			srv := newRecordingServer(t, false)
			srv.reject["tok-1"] = true
			if tt.rejectAll {
				srv.reject["tok-2"] = true
				srv.reject["tok-3"] = true
			}
			if tt.header != "" {
				srv.hdr = tt.header
			}
			client := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(scope, nil)}
			r, replayable := tt.body()
			req, err := http.NewRequest(http.MethodPost, srv.URL, r)
			if err != nil {
				t.Fatal(err)
			}
			if replayable != (req.GetBody != nil || req.Body == nil || req.Body == http.NoBody) {
				t.Fatalf("test setup: replayable = %v but GetBody = %v", replayable, req.GetBody != nil)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			auths, bodies := srv.requests()
			if strings.Join(auths, "|") != strings.Join(tt.wantAuths, "|") || strings.Join(bodies, "|") != strings.Join(tt.wantBodies, "|") {
				t.Fatalf("server saw auths %q bodies %q; want %q %q", auths, bodies, tt.wantAuths, tt.wantBodies)
			}
		})
	}
}

func TestTransportRetryRateLimitedByInvalidate(t *testing.T) {
	c, cred, _ := transportCache(t)
	srv := newRecordingServer(t, false)
	srv.reject["tok-1"], srv.reject["tok-2"] = true, true
	client := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(scope, nil)}
	for range 5 { // a misbehaving resource rejecting every token
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	}
	if n := cred.calls.Load(); n != 2 {
		t.Fatalf("credential calls = %d, want 2 (one forced refresh per InvalidateInterval)", n)
	}
	auths, _ := srv.requests()
	if len(auths) != 6 {
		t.Fatalf("server requests = %d, want 6 (one retry in total)", len(auths))
	}
}

func TestTransportTokenError(t *testing.T) {
	clk := newFakeClock()
	cred := &fakeCred{}
	cred.set(func(context.Context, int64, policyOpts) (tok accessToken, err error) { return tok, errBoom })
	c := newTestCache(t, cred, clk, nil)
	srv := newRecordingServer(t, false)
	client := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(scope, nil)}
	_, err := client.Post(srv.URL, "text/plain", strings.NewReader("x"))
	if !errors.Is(err, errBoom) || !errors.Is(err, ErrNoToken) || errors.Is(err, ErrInsecureTransport) {
		t.Fatalf("err = %v, want ErrNoToken wrapping the credential error", err)
	}
	if auths, _ := srv.requests(); len(auths) != 0 {
		t.Fatal("request sent without a token")
	}
}

func TestIsInvalidTokenChallenge(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   bool
	}{
		{"rfc6750 example", []string{`Bearer realm="example", error="invalid_token", error_description="The access token expired"`}, true},
		{"easy auth style", []string{`Bearer error="invalid_token"`}, true},
		{"lower-case scheme, bare value", []string{`bearer error=invalid_token`}, true},
		{"spaces around equals", []string{`Bearer error = "invalid_token"`}, true},
		{"second challenge", []string{`Basic realm="x", Bearer error="invalid_token"`}, true},
		{"second header value", []string{`Basic realm="x"`, `Bearer error="invalid_token"`}, true},
		{"escaped quote elsewhere", []string{`Bearer realm="a\"b", error="invalid_token"`}, true},
		{"other error", []string{`Bearer error="insufficient_scope"`}, false},
		{"no error", []string{`Bearer realm="x"`}, false},
		{"basic challenge", []string{`Basic error="invalid_token"`}, false},
		{"value case differs", []string{`Bearer error="INVALID_TOKEN"`}, false},
		{"error in description only", []string{`Bearer error_description="invalid_token"`}, false},
		{"token68 then param", []string{`Negotiate abc==, Bearer error="invalid_token"`}, true},
		{"empty", nil, false},
		{"garbage", []string{`=== "" ,,, =`}, false},
		{"unterminated quote", []string{`Bearer error="invalid_token`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isInvalidTokenChallenge(tt.values); got != tt.want {
				t.Fatalf("isInvalidTokenChallenge(%q) = %v, want %v", tt.values, got, tt.want)
			}
		})
	}
}

func FuzzIsInvalidTokenChallenge(f *testing.F) {
	for _, s := range []string{
		`Bearer error="invalid_token"`, `Bearer realm="a\"b", error=invalid_token`, `Basic realm="x", Bearer`,
		`Negotiate abc==`, `"`, `=`, `Bearer error=`, `Bearer error="`, "\x00\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := isInvalidTokenChallenge([]string{s})
		// Anything accepted must contain the literal value and a Bearer scheme.
		if got && (!strings.Contains(s, "invalid_token") || !strings.Contains(strings.ToLower(s), "bearer")) {
			t.Fatalf("accepted %q", s)
		}
	})
}
