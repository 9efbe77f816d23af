package authmw

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/netrule"
)

// The tests in this file run the real Middleware against generic OIDC issuers
// on loopback (httptest servers serving discovery and JWKS), so each test can
// shape the key source: redirects, oversized documents, keys replaced under a
// kid, failures of each class.

// keySource is an issuer on loopback: discovery at /.well-known/openid-configuration
// naming its own URL as issuer and /keys as jwks_uri, and a JWKS the test sets.
// routes override handlers by path.
type keySource struct {
	*httptest.Server
	mu     sync.Mutex
	keys   []json.RawMessage
	routes map[string]http.HandlerFunc
	hits   atomic.Int64
}

func newKeySource(t *testing.T, tls bool, routes map[string]http.HandlerFunc) *keySource {
	t.Helper()
	s := &keySource{routes: routes}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if h := s.routes[r.URL.Path]; h != nil {
			h(w, r)
			return
		}
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]string{"issuer": s.URL, "jwks_uri": s.URL + "/keys"})
		case "/keys":
			s.mu.Lock()
			defer s.mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
		default:
			http.NotFound(w, r)
		}
	})
	if tls {
		s.Server = httptest.NewTLSServer(h)
	} else {
		s.Server = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s
}

// setKeys publishes the public halves of keys, each under the kid before it:
// setKeys("k1", a, "k1", b) publishes two keys sharing kid k1.
func (s *keySource) setKeys(kidsAndKeys ...any) {
	var set []json.RawMessage
	for i := 0; i < len(kidsAndKeys); i += 2 {
		set = append(set, rsaJWK(kidsAndKeys[i].(string), kidsAndKeys[i+1].(*rsa.PrivateKey)))
	}
	s.mu.Lock()
	s.keys = set
	s.mu.Unlock()
}

func rsaJWK(kid string, k *rsa.PrivateKey) json.RawMessage {
	b64 := base64.RawURLEncoding.EncodeToString
	b, _ := json.Marshal(map[string]string{"kty": "RSA", "use": "sig", "kid": kid,
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
	return b
}

// keySourceEnv is a Middleware trusting one generic issuer, behind an HTTP server.
type keySourceEnv struct {
	*testEnv
	iss string
}

// newKeySourceEnv starts a Middleware trusting iss, fetching with client (nil:
// the default), without waiting for readiness.
func newKeySourceEnv(t *testing.T, iss string, client *http.Client) *keySourceEnv {
	t.Helper()
	e := &testEnv{t: t, clock: newFakeClock(), logs: &logBuffer{}}
	m, err := New(context.Background(), Config{
		Policy: Policy{
			Issuers:             []string{iss},
			Audiences:           []string{testAudience},
			AllowedApplications: []string{testClientID},
		},
		HTTPClient: client,
		Logger:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnDecision: func(d Decision) {
			e.mu.Lock()
			e.decisions = append(e.decisions, d)
			e.mu.Unlock()
		},
		Now: e.clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	e.m = m
	e.srv = httptest.NewServer(m.Handler(http.HandlerFunc(echoPrincipalHandler)))
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.checkNoLeaks)
	return &keySourceEnv{testEnv: e, iss: iss}
}

// token signs a valid v2 token of the allowed application for the issuer.
func (e *keySourceEnv) token(kid string, key *rsa.PrivateKey) string {
	now := e.clock.Now().Unix()
	tok := forge(map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, map[string]any{
		"iss": e.iss, "aud": testAudience, "azp": testClientID, "sub": testObjectID, "oid": testObjectID,
		"ver": "2.0", "iat": now, "nbf": now, "exp": now + 3600,
	}, rs256(key))
	e.remember(tok)
	return tok
}

// issuerError waits for the Middleware to report a failure of its issuer.
func (e *keySourceEnv) issuerError() error {
	e.t.Helper()
	var err error
	waitUntil(e.t, "an issuer error", func() bool {
		for _, v := range e.m.IssuerErrors() {
			err = v
		}
		return err != nil
	})
	return err
}

func newRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Finding 1: no fetch of discovery or keys follows a redirect to another
// scheme or host, whatever the caller's client allows; the attacker's server is
// never contacted and its keys never trusted.
func TestKeySourceRedirectRefused(t *testing.T) {
	attackerKey := getAttackerKey()
	tests := []struct {
		name string
		// routes of the https issuer, given the attacker's plain-http server URL.
		routes func(attacker string) map[string]http.HandlerFunc
	}{
		{"jwks_uri 302 to plain http on another loopback host", func(attacker string) map[string]http.HandlerFunc {
			return map[string]http.HandlerFunc{"/keys": func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, strings.Replace(attacker, "127.0.0.1", "localhost", 1)+"/keys", http.StatusFound)
			}}
		}},
		{"discovery 301 to a plain-http copy", func(attacker string) map[string]http.HandlerFunc {
			return map[string]http.HandlerFunc{"/.well-known/openid-configuration": func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, attacker+"/.well-known/openid-configuration", http.StatusMovedPermanently)
			}}
		}},
		{"jwks_uri 307 to plain http on the same host", func(attacker string) map[string]http.HandlerFunc {
			return map[string]http.HandlerFunc{"/keys": func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, attacker+"/keys", http.StatusTemporaryRedirect)
			}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var issuerURL string
			var attackerHits atomic.Int64
			attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				attackerHits.Add(1)
				if r.URL.Path == "/keys" {
					fmt.Fprintf(w, `{"keys":[%s]}`, rsaJWK("k1", attackerKey))
					return
				}
				// A copy of the issuer's discovery document, pointing at the attacker's keys.
				json.NewEncoder(w).Encode(map[string]string{"issuer": issuerURL, "jwks_uri": "http://" + r.Host + "/keys"})
			}))
			defer attacker.Close()
			src := newKeySource(t, true, tt.routes(attacker.URL))
			issuerURL = src.URL
			src.setKeys("k1", newRSAKey(t))
			// The caller's client trusts the test certificate and follows any redirect.
			client := src.Client()
			client.Timeout = 5 * time.Second
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return nil }
			e := newKeySourceEnv(t, src.URL, client)

			err := e.issuerError()
			if !errors.Is(err, netrule.ErrRedirect) || !errors.Is(err, ErrSourcePermanent) {
				t.Fatalf("issuer error = %v, want a refused redirect (permanent)", err)
			}
			if r := e.get(e.token("k1", attackerKey)); r.status == http.StatusOK {
				t.Fatalf("forged token accepted: %d %s", r.status, r.body)
			}
			if n := attackerHits.Load(); n != 0 {
				t.Fatalf("the attacker's server got %d requests", n)
			}
		})
	}
}

// A same-origin https redirect is followed (key hosting may move paths).
func TestKeySourceSameOriginRedirectFollowed(t *testing.T) {
	key := newRSAKey(t)
	var src *keySource
	src = newKeySource(t, true, map[string]http.HandlerFunc{
		"/keys": func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/keys/v2", http.StatusFound) },
		"/keys/v2": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"keys":[%s]}`, rsaJWK("k1", key))
		},
	})
	client := src.Client()
	client.Timeout = 5 * time.Second
	e := newKeySourceEnv(t, src.URL, client)
	e.waitReady()
	if r := e.get(e.token("k1", key)); r.status != http.StatusOK {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
}

// Finding 1: the discovery document is read with a limit: an oversized one is
// an error (not 908 MB of resident memory), and the issuer never becomes ready.
func TestKeySourceOversizedDiscoveryRefused(t *testing.T) {
	key := newRSAKey(t)
	var src *keySource
	src = newKeySource(t, false, map[string]http.HandlerFunc{
		"/.well-known/openid-configuration": func(w http.ResponseWriter, r *http.Request) {
			// A valid document, padded past the limit.
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"pad":"`, src.URL, src.URL+"/keys")
			pad := strings.Repeat("a", 64<<10)
			for range 64 { // 4 MiB
				if _, err := w.Write([]byte(pad)); err != nil {
					return
				}
			}
			w.Write([]byte(`"}`))
		},
	})
	src.setKeys("k1", key)
	e := newKeySourceEnv(t, src.URL, nil)
	err := e.issuerError()
	if !errors.Is(err, netrule.ErrTooLarge) || !errors.Is(err, ErrSourcePermanent) {
		t.Fatalf("issuer error = %v, want ErrTooLarge (permanent)", err)
	}
	if r := e.get(e.token("k1", key)); r.status != http.StatusServiceUnavailable || reasonOf(r) != ReasonKeysUnavailable {
		t.Fatalf("token with an oversized discovery document: %d %q", r.status, reasonOf(r))
	}
}

// Finding 1: an error body reaches logs and errors only as a short excerpt.
func TestKeySourceErrorBodyExcerpted(t *testing.T) {
	const secret = "SECRET-AFTER-THE-EXCERPT"
	src := newKeySource(t, false, map[string]http.HandlerFunc{
		"/.well-known/openid-configuration": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, "not here\r\nforged-log-line level=ERROR "+strings.Repeat("x", 200)+secret)
		},
	})
	e := newKeySourceEnv(t, src.URL, nil)
	err := e.issuerError()
	if !errors.Is(err, ErrSourcePermanent) {
		t.Fatalf("issuer error = %v, want permanent", err)
	}
	waitUntil(t, "the failure logged", func() bool { return strings.Contains(e.logs.String(), "issuer discovery failed") })
	for _, out := range []string{err.Error(), e.logs.String()} {
		if strings.Contains(out, secret) || strings.Contains(out, "\nforged-log-line") {
			t.Fatalf("error body copied beyond an excerpt: %s", out)
		}
	}
}

// Readiness taxonomy: the last failure of each issuer says whether it is
// transient or permanent.
func TestIssuerErrorClasses(t *testing.T) {
	key := newRSAKey(t)
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
	}
	tests := []struct {
		name   string
		routes map[string]http.HandlerFunc
		want   error
	}{
		{"discovery 404", map[string]http.HandlerFunc{"/.well-known/openid-configuration": status(404)}, ErrSourcePermanent},
		{"discovery 503", map[string]http.HandlerFunc{"/.well-known/openid-configuration": status(503)}, ErrSourceTransient},
		{"discovery 429", map[string]http.HandlerFunc{"/.well-known/openid-configuration": status(429)}, ErrSourceTransient},
		{"issuer mismatch", map[string]http.HandlerFunc{"/.well-known/openid-configuration": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"issuer":"https://other.example","jwks_uri":"https://other.example/keys"}`)
		}}, ErrSourcePermanent},
		{"discovery not JSON", map[string]http.HandlerFunc{"/.well-known/openid-configuration": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `<html>`)
		}}, ErrSourcePermanent},
		{"JWKS without a usable key", map[string]http.HandlerFunc{"/keys": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)
		}}, ErrSourcePermanent},
		{"JWKS 500", map[string]http.HandlerFunc{"/keys": status(500)}, ErrSourceTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newKeySource(t, false, tt.routes)
			src.setKeys("k1", key)
			e := newKeySourceEnv(t, src.URL, nil)
			if err := e.issuerError(); !errors.Is(err, tt.want) {
				t.Fatalf("issuer error = %v, want %v", err, tt.want)
			}
			if e.m.Ready() {
				t.Fatal("Ready despite the failure")
			}
		})
	}
	// A connection refused is transient.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	e := newKeySourceEnv(t, url, nil)
	if err := e.issuerError(); !errors.Is(err, ErrSourceTransient) {
		t.Fatalf("connection refused: %v, want transient", err)
	}
}

// Finding 4: a cached token is served only while the exact key that verified
// it is published: a key replaced under the same kid, or the verifying one of
// two keys sharing a kid removed, is a removal.
func TestCachedTokenBoundToVerifyingKey(t *testing.T) {
	a, b := newRSAKey(t), newRSAKey(t)
	tests := []struct {
		name     string
		before   []any
		after    []any
		wantCode int
	}{
		{"key replaced under the same kid", []any{"k1", a}, []any{"k1", b}, http.StatusUnauthorized},
		{"verifying one of two keys sharing a kid removed", []any{"k1", a, "k1", b}, []any{"k1", b}, http.StatusUnauthorized},
		{"the other of two keys sharing a kid removed", []any{"k1", a, "k1", b}, []any{"k1", a}, http.StatusOK},
		{"key removed, kid reused by nobody", []any{"k1", a, "k2", b}, []any{"k2", b}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newKeySource(t, false, nil)
			src.setKeys(tt.before...)
			e := newKeySourceEnv(t, src.URL, nil)
			e.waitReady()
			tok := e.token("k1", a)
			for i, wantCached := range []bool{false, true} {
				if r := e.get(tok); r.status != http.StatusOK || e.lastDecision().Cached != wantCached {
					t.Fatalf("request %d: %d cached=%v", i, r.status, e.lastDecision().Cached)
				}
			}
			src.setKeys(tt.after...)
			// An unknown kid, past the unknown-kid interval, makes the key set refetch.
			e.clock.Advance(time.Minute)
			if r := e.get(e.token("nudge", getAttackerKey())); r.status != http.StatusUnauthorized {
				t.Fatalf("nudge: %d", r.status)
			}
			r := e.get(tok)
			if r.status != tt.wantCode {
				t.Fatalf("after the key change: %d %s, want %d", r.status, r.body, tt.wantCode)
			}
			if tt.wantCode != http.StatusOK && e.lastDecision().Cached {
				t.Fatal("refused from the cache?")
			}
		})
	}
}

// WaitReady waits on signals: it returns when the Middleware is closed while
// the issuer is unreachable, and as soon as keys load.
func TestWaitReadySignals(t *testing.T) {
	src := newKeySource(t, false, map[string]http.HandlerFunc{"/keys": func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}})
	e := newKeySourceEnv(t, src.URL, nil)
	done := make(chan error, 1)
	go func() { done <- e.m.WaitReady(context.Background()) }()
	e.issuerError() // discovered; keys failing
	e.m.Close()
	if err := <-done; !errors.Is(err, ErrNotReady) {
		t.Fatalf("WaitReady after Close = %v, want ErrNotReady", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.m.WaitReady(ctx); !errors.Is(err, ErrNotReady) {
		t.Fatalf("WaitReady(cancelled) = %v", err)
	}
}

// waitUntil polls cond until it is true, failing after 10 s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
