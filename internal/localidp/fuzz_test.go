package localidp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzTokenRequest throws arbitrary query strings, header values and paths at
// the managed-identity endpoint: it must never panic or answer 500, must
// always answer JSON, and must never echo the identity header.
func FuzzTokenRequest(f *testing.F) {
	p := start(f, Options{})
	m := addIdentity(f, p, testIdentity)
	f.Add("api-version=2019-08-01&resource=api%3A%2F%2Fcallee", true, "/msi/token")
	f.Add("api-version=2019-08-01&resource=api://callee/.default&client_id=11111111-1111-4111-8111-111111111111", true, "/msi/token")
	f.Add("api-version=2019-08-01&resource=%zz", true, "/msi/token")
	f.Add("resource=&resource=x&mi_res_id=;", false, "/")
	f.Add("api-version=2019-08-01&resource=x&object_id=a&principal_id=b", true, "/msi/token/")
	f.Fuzz(func(t *testing.T, query string, withHeader bool, path string) {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
		req.URL.Path = path
		req.URL.RawQuery = query
		if withHeader {
			req.Header.Set("X-IDENTITY-HEADER", m.Header())
		}
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q", rec.Code, query)
		}
		body := rec.Body.Bytes()
		if !json.Valid(body) {
			t.Fatalf("non-JSON body %q", body)
		}
		if bytes.Contains(body, []byte(m.Header())) {
			t.Fatal("response echoes the identity header")
		}
		if rec.Code == http.StatusOK && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Fatal("200 without application/json")
		}
	})
}

// FuzzAuthorityPath: the authority answers every path with JSON and never 5xx
// (while up).
func FuzzAuthorityPath(f *testing.F) {
	p := start(f, Options{})
	f.Add("/" + p.TenantID() + "/v2.0/.well-known/openid-configuration")
	f.Add("/common/discovery/keys")
	f.Add("//discovery/keys")
	f.Add("/a/b/c/d/e")
	f.Fuzz(func(t *testing.T, path string) {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
		req.URL.Path = path
		rec := httptest.NewRecorder()
		p.serveAuthority(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q", rec.Code, path)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("non-JSON body for %q", path)
		}
	})
}
