package tokencache

// Tests against a hostile identity endpoint: an httptest server speaking the
// App Service managed-identity protocol (api-version 2019-08-01) whose answers
// are the faults, queried by the REAL azidentity.ManagedIdentityCredential
// that NewManagedIdentityCredential builds.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeJWT is token-shaped (three base64url segments) but signs nothing.
const fakeJWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJhcGk6Ly9ob3N0aWxlIiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2lnbmF0dXJlLXRoYXQtaXMtbm90LXJlYWwtYXQtYWxs"

// hostileMI is an App Service-protocol endpoint answering with serve.
type hostileMI struct {
	*httptest.Server
	header   string
	requests atomic.Int64
}

// startHostileMI starts the endpoint, points the environment at it (as App
// Service does) with the given IDENTITY_HEADER secret, and returns it. serve
// gets the requested resource.
func startHostileMI(t *testing.T, header string, serve func(w http.ResponseWriter, r *http.Request, resource string)) *hostileMI {
	t.Helper()
	h := &hostileMI{header: header}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		if r.Header.Get("X-IDENTITY-HEADER") != header {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		serve(w, r, r.URL.Query().Get("resource"))
	}))
	t.Cleanup(h.Close)
	for _, k := range []string{"IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
	}
	t.Setenv("IDENTITY_ENDPOINT", h.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", header)
	return h
}

// tokenJSON writes an App Service success body.
func tokenJSON(w http.ResponseWriter, status int, accessToken, resource string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{
		"access_token": accessToken,
		"expires_on":   strconv.FormatInt(time.Now().Add(24*time.Hour).Unix(), 10),
		"resource":     resource,
		"token_type":   "Bearer",
		"client_id":    testClientID,
	})
}

// TestUnusableTokenIsCredentialFailure: finding 3. An empty access_token, or
// a token labelled for another resource than asked for, is a credential
// failure and never cached.
func TestUnusableTokenIsCredentialFailure(t *testing.T) {
	tests := []struct {
		name  string
		serve func(w http.ResponseWriter, r *http.Request, resource string)
	}{
		{name: "empty access_token", serve: func(w http.ResponseWriter, _ *http.Request, resource string) {
			tokenJSON(w, http.StatusOK, "", resource)
		}},
		{name: "access_token with a header break", serve: func(w http.ResponseWriter, _ *http.Request, resource string) {
			tokenJSON(w, http.StatusOK, "abc\r\nX-Injected: 1", resource)
		}},
		{name: "token for another resource", serve: func(w http.ResponseWriter, _ *http.Request, _ string) {
			tokenJSON(w, http.StatusOK, fakeJWT, "https://management.azure.com/")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := startHostileMI(t, "hdr-"+strconv.Itoa(int(resourceSeq.Add(1))), tt.serve)
			c := newMICache(t, &Options{Timeout: 10 * time.Second})
			sc := uniqueScope("unusable")
			for i := range 3 {
				tok, err := c.GetToken(context.Background(), opts(sc))
				if err == nil || !errors.Is(err, ErrNoToken) {
					t.Fatalf("call %d: a %d-byte token was accepted (err %v), want a credential failure", i, len(tok.Token), err != nil)
				}
			}
			if st := entryStats(t, c, sc); st.HasToken || st.Usable {
				t.Fatalf("an unusable token was cached: %+v", st)
			}
			if n := ep.requests.Load(); n != 1 {
				t.Fatalf("endpoint requests = %d, want 1 (the failure is remembered during its backoff)", n)
			}
		})
	}
}

// TestErrorsAndLogsRedactSecrets: finding 6. An endpoint echoing the
// X-IDENTITY-HEADER (whatever its length) or answering 203 with a token
// body must not get either secret into an error or a log line.
func TestErrorsAndLogsRedactSecrets(t *testing.T) {
	tests := []struct {
		name   string
		header string
		serve  func(w http.ResponseWriter, r *http.Request, resource string)
		secret func(header string) []string
	}{
		{name: "400 echoing a short identity header", header: "k9",
			serve: func(w http.ResponseWriter, r *http.Request, _ string) {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":"bad","you sent":%q}`, r.Header.Get("X-IDENTITY-HEADER"))
			}},
		{name: "400 echoing a long identity header in plain text", header: "Zp4u8Kq2vW9xR3tY6bN1mL5hJ7gF0dSa",
			serve: func(w http.ResponseWriter, r *http.Request, _ string) {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, "header was %s\r\nInjected: line", r.Header.Get("X-IDENTITY-HEADER"))
			}},
		{name: "203 carrying a token", header: "h203",
			serve: func(w http.ResponseWriter, _ *http.Request, resource string) {
				tokenJSON(w, http.StatusNonAuthoritativeInfo, fakeJWT, resource)
			}},
		{name: "203 carrying a short opaque token", header: "h203b",
			serve: func(w http.ResponseWriter, _ *http.Request, resource string) {
				tokenJSON(w, http.StatusNonAuthoritativeInfo, "opaque42", resource)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			startHostileMI(t, tt.header, tt.serve)
			var logs syncBuffer
			c := newMICache(t, &Options{Timeout: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			_, err := c.GetToken(context.Background(), opts(uniqueScope("redact")))
			if err == nil {
				t.Fatal("hostile answer accepted")
			}
			for _, where := range []struct{ name, text string }{{"error", err.Error()}, {"log", logs.String()}} {
				for _, s := range []string{tt.header, fakeJWT, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9", "opaque42"} {
					if strings.Contains(where.text, s) {
						t.Errorf("%s contains a secret (%d bytes)", where.name, len(s))
					}
				}
				if where.name == "error" && strings.ContainsAny(where.text, "\r\n") {
					t.Errorf("error spans %d lines", strings.Count(where.text, "\n")+1)
				}
			}
			if !strings.Contains(err.Error(), "api://tc-redact") {
				t.Errorf("error does not name the scope")
			}
		})
	}
}

// TestIdentityEndpointRedirectNotFollowed: finding 7. A redirect from the
// identity endpoint is never followed: the secret header stays home.
func TestIdentityEndpointRedirectNotFollowed(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			var leaked atomic.Int64
			elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-IDENTITY-HEADER") != "" {
					leaked.Add(1)
				}
				tokenJSON(w, http.StatusOK, fakeJWT, r.URL.Query().Get("resource"))
			}))
			defer elsewhere.Close()
			ep := startHostileMI(t, "redirect-secret", func(w http.ResponseWriter, r *http.Request, _ string) {
				http.Redirect(w, r, elsewhere.URL+r.URL.RequestURI(), status)
			})
			c := newMICache(t, &Options{Timeout: 10 * time.Second})
			if _, err := c.GetToken(context.Background(), opts(uniqueScope("redir"))); err == nil {
				t.Fatal("got a token through a redirect")
			}
			if n := leaked.Load(); n != 0 {
				t.Fatalf("X-IDENTITY-HEADER was sent to the redirect target %d time(s)", n)
			}
			if n := ep.requests.Load(); n != 1 {
				t.Fatalf("endpoint requests = %d, want 1 (a refused redirect is not retried)", n)
			}
		})
	}
}

// TestIdentityEndpointBodyBounded: finding 7. A huge body is not read to the
// end: the credential fails once the bound is passed.
func TestIdentityEndpointBodyBounded(t *testing.T) {
	const body = 64 << 20
	var written atomic.Int64
	ep := startHostileMI(t, "big-secret", func(w http.ResponseWriter, _ *http.Request, _ string) {
		w.Header().Set("Content-Type", "application/json")
		chunk := []byte(strings.Repeat(" ", 32<<10))
		for written.Load() < body {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	c := newMICache(t, &Options{Timeout: 20 * time.Second})
	_, err := c.GetToken(context.Background(), opts(uniqueScope("big")))
	if err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("err = %v, want a refusal naming the size bound", err)
	}
	// The server writes into socket buffers until the client closes; far
	// less than the whole body must have gone out.
	if n := written.Load(); n >= body/2 {
		t.Fatalf("the client read %d of %d bytes; the read is not bounded", n, body)
	}
	if n := ep.requests.Load(); n != 1 {
		t.Fatalf("endpoint requests = %d, want 1 (a refused answer is not retried)", n)
	}
}

// TestIdentityEndpointHeadersBounded: an identity endpoint answering with
// megabytes of headers (Go's default limit is 10 MB) is refused like an
// oversized body (adversarial review).
func TestIdentityEndpointHeadersBounded(t *testing.T) {
	ep := startHostileMI(t, "hdr-secret", func(w http.ResponseWriter, _ *http.Request, resource string) {
		for i := range 32 {
			w.Header().Set(fmt.Sprintf("X-Pad-%d", i), strings.Repeat("a", 64<<10))
		}
		tokenJSON(w, http.StatusOK, fakeJWT, resource)
	})
	c := newMICache(t, nil)
	if _, err := c.GetToken(context.Background(), opts(uniqueScope("big-headers"))); err == nil || !strings.Contains(err.Error(), "header") {
		t.Fatalf("err = %v, want a refusal naming the headers", err)
	}
	if n := ep.requests.Load(); n != 1 {
		t.Fatalf("endpoint requests = %d, want 1 (a refused answer is not retried)", n)
	}
}

// TestIdentityHeaderNeverOverPlainHTTPOffLoopback: an IDENTITY_ENDPOINT of
// plain http to a host that is not loopback (0.0.0.0 here, which still
// reaches this machine) never receives the X-IDENTITY-HEADER secret: the
// request is refused before it is sent (adversarial review).
func TestIdentityHeaderNeverOverPlainHTTPOffLoopback(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-IDENTITY-HEADER") != "" {
			got.Add(1)
		}
		tokenJSON(w, http.StatusOK, fakeJWT, r.URL.Query().Get("resource"))
	}))
	defer srv.Close()
	for _, k := range []string{"IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
	}
	t.Setenv("IDENTITY_ENDPOINT", strings.Replace(srv.URL, "127.0.0.1", "0.0.0.0", 1)+"/msi/token")
	t.Setenv("IDENTITY_HEADER", "plain-http-secret")
	c := newMICache(t, nil)
	_, err := c.GetToken(context.Background(), opts(uniqueScope("plain")))
	if err == nil || !strings.Contains(err.Error(), "IDENTITY_ENDPOINT") {
		t.Fatalf("err = %v, want a refusal naming IDENTITY_ENDPOINT", err)
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("the endpoint received X-IDENTITY-HEADER %d time(s) over plain http off loopback", n)
	}
}
