package caller

import (
	"bytes"
	"errors"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRedact(t *testing.T) {
	t.Setenv("IDENTITY_HEADER", "Xq7Zp3")
	t.Setenv("MSI_SECRET", "")
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl"
	for _, tc := range []struct {
		name, in string
		gone     []string // must not survive
		kept     []string // must survive
	}{
		{"identity header of any length", "header Xq7Zp3 rejected", []string{"Xq7Zp3"}, []string{"header", "rejected"}},
		{"JWT", "token " + jwt + " refused", []string{"eyJ", "c2lnbmF0dXJl"}, []string{"token", "refused"}},
		{"bearer value", "Authorization: Bearer abc.def-ghi", []string{"abc.def-ghi"}, []string{"Bearer"}},
		{"JSON access_token", `{"access_token":"short1","expires_on":"1"}`, []string{"short1"}, []string{"expires_on"}},
		{"query of a quoted URL", `Post "https://callee.example.com/api/x?code=k3y&x=1": dial tcp`, []string{"k3y", "x=1"}, []string{"https://callee.example.com/api/x?[REDACTED]", "dial tcp"}},
		{"long opaque run", "secret " + strings.Repeat("Zm9vYmFy", 8), []string{"Zm9vYmFyZm9v"}, nil},
		{"identifiers stay", "scope api://callee-1f8337d0-9d09-4d94-85d9-37d09d095d94-13/.default client 0f5c2b9e-6a3d-4c1e-9b7a-3e8d2f4a1c01",
			nil, []string{"api://callee-1f8337d0-9d09-4d94-85d9-37d09d095d94-13/.default", "0f5c2b9e-6a3d-4c1e-9b7a-3e8d2f4a1c01"}},
		{"separator lines stay", "----------------------------------------------- RESPONSE 400", nil, []string{"RESPONSE 400"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := redactText(tc.in)
			for _, g := range tc.gone {
				if strings.Contains(got, g) {
					t.Errorf("redactText(%q) = %q keeps %q", tc.in, got, g)
				}
			}
			for _, k := range tc.kept {
				if !strings.Contains(got, k) {
					t.Errorf("redactText(%q) = %q lost %q", tc.in, got, k)
				}
			}
		})
	}
}

func TestSafeURL(t *testing.T) {
	u, _ := url.Parse("https://user:pw@callee.example.com/api/x?code=k3y#frag")
	if got := safeURL(u); got != "https://callee.example.com/api/x?[REDACTED]" {
		t.Errorf("safeURL = %q", got)
	}
	u, _ = url.Parse("http://127.0.0.1:7071/api/x")
	if got := safeURL(u); got != "http://127.0.0.1:7071/api/x" {
		t.Errorf("safeURL = %q", got)
	}
}

// The redacting slog handler covers every record the process writes, whatever its
// source: messages, string, error, group and WithAttrs values.
func TestRedactingHandler(t *testing.T) {
	t.Setenv("IDENTITY_HEADER", "d7f0c2a9-5e1b-4c3d-8a6f-0b9e2d4c1a77")
	var buf bytes.Buffer
	l := slog.New(newRedactingHandler(slog.NewJSONHandler(&buf, nil))).With("hdr", "d7f0c2a9-5e1b-4c3d-8a6f-0b9e2d4c1a77")
	l.Error("refresh failed: d7f0c2a9-5e1b-4c3d-8a6f-0b9e2d4c1a77",
		"error", errors.New("body: {\"access_token\":\"abc\"}"),
		slog.Group("g", "url", "https://x.example/?code=k3y"),
		"list", []string{"Bearer zzz"})
	out := buf.String()
	for _, s := range []string{"d7f0c2a9-5e1b", `"abc"`, "k3y", "zzz"} {
		if strings.Contains(out, s) {
			t.Errorf("log keeps %q: %s", s, out)
		}
	}
}

// jwtRE matches a JWT (or its first two parts) as the fuzz target looks for it.
var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]`)

// FuzzSafeText fuzzes the caller's reporting path, which is internal/redact's
// Line with the environment's secrets (one implementation, two entry points).
func FuzzSafeText(f *testing.F) {
	for _, s := range []string{"a\r\nb", "Bearer eyJa.b.c", `{"access_token":"x"}`, "https://h/?code=1", "\xff\xfe", strings.Repeat("A", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := safeText(s, 128)
		if len(got) > 128+len("…") || strings.ContainsAny(got, "\r\n\x00") || !utf8.ValidString(got) {
			t.Fatalf("safeText(%q) = %q", s, got)
		}
		if jwtRE.MatchString(got) {
			t.Fatalf("safeText(%q) keeps a JWT: %q", s, got)
		}
	})
}
