package tokencache

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// thief records every request that reaches it: the place a hostile callee
// redirects to.
type thief struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // "METHOD auth=<Authorization> body=<body>"
}

func newThief(t *testing.T) *thief {
	th := &thief{}
	th.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		th.mu.Lock()
		th.seen = append(th.seen, r.Method+" auth="+r.Header.Get("Authorization")+" body="+string(b))
		th.mu.Unlock()
	}))
	t.Cleanup(th.Close)
	return th
}

func (th *thief) requests() []string {
	th.mu.Lock()
	defer th.mu.Unlock()
	return append([]string(nil), th.seen...)
}

// TestTransportRedirectToOtherOriginCarriesNoToken: finding 1. With the client
// the README shows (no CheckRedirect), a callee answering 30x to another
// origin must not hand that origin the token (nor, on 307/308, the body).
func TestTransportRedirectToOtherOriginCarriesNoToken(t *testing.T) {
	tests := []struct {
		name   string
		status int
		method string
		// target builds the Location from the thief's loopback URL.
		target func(thiefURL string) string
	}{
		{name: "302 GET to another loopback port", status: http.StatusFound, method: http.MethodGet, target: func(u string) string { return u + "/steal" }},
		{name: "307 POST to another loopback port", status: http.StatusTemporaryRedirect, method: http.MethodPost, target: func(u string) string { return u + "/steal" }},
		{name: "308 POST to another loopback port", status: http.StatusPermanentRedirect, method: http.MethodPost, target: func(u string) string { return u + "/steal" }},
		{name: "301 to localhost (other host name, same port)", status: http.StatusMovedPermanently, method: http.MethodGet, target: func(u string) string {
			return strings.Replace(u, "127.0.0.1", "localhost", 1) + "/steal"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, _ := transportCache(t)
			th := newThief(t)
			var calleeAuth []string
			var mu sync.Mutex
			callee := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				calleeAuth = append(calleeAuth, r.Header.Get("Authorization"))
				mu.Unlock()
				if r.URL.Path == "/same" {
					return
				}
				if r.URL.Path == "/hop" { // a same-origin hop first, then away
					http.Redirect(w, r, tt.target(th.URL), tt.status)
					return
				}
				http.Redirect(w, r, "/hop", tt.status)
			}))
			defer callee.Close()
			if strings.Contains(tt.name, "localhost") {
				// The thief must share the callee's port but differ in host name:
				// redirect to the callee's own port under "localhost".
				tt.target = func(string) string { return strings.Replace(callee.URL, "127.0.0.1", "localhost", 1) + "/same" }
			}
			client := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(scope, nil)} // as the README shows
			req, err := http.NewRequest(tt.method, callee.URL+"/start", strings.NewReader("secret-body"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err == nil {
				_ = resp.Body.Close()
				t.Fatalf("redirect to another origin was followed (status %d)", resp.StatusCode)
			}
			if !errors.Is(err, ErrInsecureTransport) {
				t.Fatalf("err = %v, want ErrInsecureTransport", err)
			}
			if seen := th.requests(); len(seen) != 0 {
				t.Fatalf("the other origin received %d request(s), with the token: %v", len(seen), strings.Contains(strings.Join(seen, " "), "auth=Bearer "))
			}
			mu.Lock()
			defer mu.Unlock()
			if len(calleeAuth) != 2 || calleeAuth[0] != "Bearer tok-1" || calleeAuth[1] != "Bearer tok-1" {
				t.Fatalf("callee saw %q; want the token on the first request and the same-origin hop", calleeAuth)
			}
		})
	}
}

// TestTransportRedirectRefusedBeforeDial: a redirect to a non-loopback host
// (https://attacker.example) is refused by the transport itself: nothing is
// sent to the base transport.
func TestTransportRedirectRefusedBeforeDial(t *testing.T) {
	c, _, _ := transportCache(t)
	var mu sync.Mutex
	var sent []string
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		sent = append(sent, r.URL.Host+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Host == "callee.example" {
			return &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {"https://attacker.example/steal"}},
				Body: http.NoBody, Request: r}, nil
		}
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(scope, base)}
	_, err := client.Get("https://callee.example/api")
	if !errors.Is(err, ErrInsecureTransport) {
		t.Fatalf("err = %v, want ErrInsecureTransport", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 1 || !strings.HasPrefix(sent[0], "callee.example ") {
		t.Fatalf("sent = %q; want only the request to callee.example", sent)
	}
}

// TestTransportSameOriginRedirectKeepsToken: a redirect within the origin
// still works, with the token.
func TestTransportSameOriginRedirectKeepsToken(t *testing.T) {
	c, _, _ := transportCache(t)
	rs := newRecordingServer(t, false)
	redirector := http.NewServeMux()
	redirector.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/new", http.StatusFound) })
	redirector.Handle("/new", rs.Config.Handler)
	rs.Config.Handler = redirector
	client := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(scope, nil)}
	resp, err := client.Get(rs.URL + "/old")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if auths, _ := rs.requests(); len(auths) != 1 || auths[0] != "Bearer tok-1" {
		t.Fatalf("target saw %q", auths)
	}
}

// TestIntegrationTransportRedirect: the same attack with the real managed
// identity credential and a real token.
func TestIntegrationTransportRedirect(t *testing.T) {
	startMI(t)
	c := newMICache(t, nil)
	th := newThief(t)
	callee := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, th.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer callee.Close()
	client := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(uniqueScope("redirect"), nil)}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, callee.URL, strings.NewReader("payload"))
	if resp, err := client.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatal("cross-origin redirect followed")
	}
	if seen := th.requests(); len(seen) != 0 {
		t.Fatalf("the other origin received %d request(s), with the token: %v", len(seen), strings.Contains(strings.Join(seen, " "), "auth=Bearer "))
	}
}

// TestTransportRedirectChainUnknownRefused: a redirect hop whose chain does
// not lead back to a first request (a base transport that drops
// Response.Request) fails closed, and responses never expose the clone that
// carries the token.
func TestTransportRedirectChainUnknownRefused(t *testing.T) {
	c, _, _ := transportCache(t)
	hop := &http.Request{Method: http.MethodGet, URL: mustURL(t, "https://elsewhere.example/x"), Header: http.Header{},
		Response: &http.Response{StatusCode: http.StatusFound}}
	hop = hop.WithContext(context.Background())
	if _, err := c.Transport(scope, roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Fatal("request sent")
		return nil, nil
	})).RoundTrip(hop); !errors.Is(err, ErrInsecureTransport) {
		t.Fatalf("err = %v, want ErrInsecureTransport", err)
	}

	rs := newRecordingServer(t, false)
	client := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(scope, nil)}
	resp, err := client.Get(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.Request.Header.Get("Authorization") != "" {
		t.Fatal("resp.Request carries the token")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestTransportRedirectOriginForms: the origin check on every spelling a
// hostile Location can take (adversarial review). Another host name or
// address for the same loopback machine is another origin; user info is
// refused; only a same-origin hop (relative or absolute) carries the token.
func TestTransportRedirectOriginForms(t *testing.T) {
	tests := []struct {
		name     string
		location func(callee *url.URL) string
		followed bool
	}{
		{"relative path", func(*url.URL) string { return "/same" }, true},
		{"absolute, same origin", func(u *url.URL) string { return u.String() + "/same" }, true},
		{"scheme-relative, same origin", func(u *url.URL) string { return "//" + u.Host + "/same" }, true},
		{"scheme-relative, localhost", func(u *url.URL) string { return "//localhost:" + u.Port() + "/same" }, false},
		{"IPv6 loopback for 127.0.0.1", func(u *url.URL) string { return "http://[::1]:" + u.Port() + "/same" }, false},
		{"127.0.0.2", func(u *url.URL) string { return "http://127.0.0.2:" + u.Port() + "/same" }, false},
		{"user info, same host", func(u *url.URL) string { return "http://user:pw@" + u.Host + "/same" }, false},
		{"host smuggled as user info", func(u *url.URL) string { return "http://" + u.Host + "@localhost:" + u.Port() + "/same" }, false},
		{"https on the same host and port", func(u *url.URL) string { return "https://" + u.Host + "/same" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, _ := transportCache(t)
			var mu sync.Mutex
			var sameAuth []string
			// The other-origin targets reuse this server's port under other names.
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/same" {
					mu.Lock()
					sameAuth = append(sameAuth, r.Header.Get("Authorization"))
					mu.Unlock()
					return
				}
				w.Header().Set("Location", tt.location(mustURL(t, "http://"+r.Host)))
				w.WriteHeader(http.StatusTemporaryRedirect)
			}))
			defer srv.Close()
			client := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(scope, nil)}
			resp, err := client.Post(srv.URL+"/start", "text/plain", strings.NewReader("body"))
			if resp != nil {
				_ = resp.Body.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.followed {
				if err != nil || len(sameAuth) != 1 || sameAuth[0] != "Bearer tok-1" {
					t.Fatalf("same-origin hop: err %v, auth %q", err, sameAuth)
				}
				return
			}
			if !errors.Is(err, ErrInsecureTransport) || len(sameAuth) != 0 {
				t.Fatalf("err = %v (want ErrInsecureTransport); the target saw %d request(s)", err, len(sameAuth))
			}
		})
	}
}

// TestTransportInvalidTokenOnRedirectHop: a 401 invalid_token on a
// same-origin redirect hop is retried once with a new token, body replayed,
// and still never leaves the origin.
func TestTransportInvalidTokenOnRedirectHop(t *testing.T) {
	c, _, _ := transportCache(t)
	var mu sync.Mutex
	var hop []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hop" {
			http.Redirect(w, r, "/hop", http.StatusPermanentRedirect)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		hop = append(hop, r.Header.Get("Authorization")+" "+string(b))
		if len(hop) == 1 {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	client := &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(scope, nil)}
	resp, err := client.Post(srv.URL+"/start", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if resp.StatusCode != http.StatusOK || len(hop) != 2 || hop[0] != "Bearer tok-1 payload" || hop[1] != "Bearer tok-2 payload" {
		t.Fatalf("status %d, hop saw %q", resp.StatusCode, hop)
	}
}
