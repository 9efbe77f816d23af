package localidp

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// start starts a Platform that is closed when the test ends.
func start(tb testing.TB, opts Options) *Platform {
	tb.Helper()
	p, err := Start(opts)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(p.Close)
	return p
}

// addIdentity adds an identity and fails the test on error.
func addIdentity(tb testing.TB, p *Platform, id Identity) *ManagedIdentity {
	tb.Helper()
	m, err := p.AddIdentity(id)
	if err != nil {
		tb.Fatalf("AddIdentity: %v", err)
	}
	return m
}

// uniqueResource returns base plus a random suffix. MSAL caches managed-identity
// tokens process-wide per resource, so every test (and every -count run) needs
// its own resource to reach the endpoint.
func uniqueResource(base string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return base + "-" + hex.EncodeToString(b)
}

// payload decodes a JWT's payload without verifying it (tests only).
func payload(tb testing.TB, tok string) map[string]any {
	tb.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatalf("decode payload: %v", err)
	}
	return decodeJSON(tb, raw)
}

// header decodes a JWT's header (tests only).
func header(tb testing.TB, tok string) map[string]any {
	tb.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		tb.Fatalf("decode header: %v", err)
	}
	return decodeJSON(tb, raw)
}

func decodeJSON(tb testing.TB, raw []byte) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("decode JSON %q: %v", raw, err)
	}
	return m
}

var testClient = &http.Client{Timeout: 10 * time.Second}

// get performs a GET and returns status and body.
func get(tb testing.TB, url string) (int, []byte) {
	tb.Helper()
	return do(tb, http.MethodGet, url, nil)
}

func do(tb testing.TB, method, url string, hdr http.Header) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		tb.Fatalf("NewRequest: %v", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := testClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, body
}

// strs converts a decoded JSON array to []string.
func strs(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
