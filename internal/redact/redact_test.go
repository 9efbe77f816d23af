package redact

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJhcGk6Ly9jYWxsZWUifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
	tests := []struct {
		name, in string
		known    []string
		gone     []string
		kept     []string
	}{
		{name: "jwt", in: "token " + jwt + " here", gone: []string{"eyJhbGciOiJSUzI1NiJ9", "c2lnbmF0dXJl"}, kept: []string{"token", "here"}},
		{name: "unsigned jwt", in: "x eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0. y", gone: []string{"eyJzdWIiOiJ4In0"}},
		{name: "access_token field, any length", in: `{"access_token":"abc","expires_on":"1"}`, gone: []string{`"abc"`}, kept: []string{"expires_on"}},
		{name: "form field", in: `client_secret=s3&x=1`, gone: []string{"s3"}, kept: []string{"x=1"}},
		{name: "bearer", in: "Authorization: Bearer a.b", gone: []string{"a.b"}, kept: []string{"Authorization: Bearer"}},
		{name: "known secret, short", in: "echo: X-IDENTITY-HEADER=qz and qz again", known: []string{"qz"}, gone: []string{"qz"}},
		{name: "identity header echo in JSON", in: `{"X-IDENTITY-HEADER":"9f3b"}`, gone: []string{"9f3b"}},
		{name: "long base64 blob", in: "key QmFzZTY0U2VjcmV0S2V5VmFsdWUxMjM0NTY3ODkw= end", gone: []string{"QmFzZTY0"}, kept: []string{"key", "end"}},
		{name: "hosts, GUIDs, hex and paths kept", in: "GET http://127.0.0.1:8080/msi/token login.microsoftonline.com 5e29463d-71df-4e0e-8b8d-5d8b2b6a7c01 0123456789abcdef0123456789abcdef v1.2.3",
			kept: []string{"127.0.0.1:8080/msi/token", "login.microsoftonline.com", "5e29463d-71df-4e0e-8b8d-5d8b2b6a7c01", "0123456789abcdef0123456789abcdef", "v1.2.3"}},
		{name: "empty known ignored", in: "plain text", known: []string{""}, kept: []string{"plain text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := String(tt.in, tt.known...)
			for _, g := range tt.gone {
				if strings.Contains(got, g) {
					t.Errorf("String(%q) = %q still contains %q", tt.in, got, g)
				}
			}
			for _, k := range tt.kept {
				if !strings.Contains(got, k) {
					t.Errorf("String(%q) = %q lost %q", tt.in, got, k)
				}
			}
		})
	}
}

func TestLine(t *testing.T) {
	got := Line("a\r\nInjected: yes\t\x00"+strings.Repeat("x", 100), 20)
	if strings.ContainsAny(got, "\r\n\t\x00") || len(got) > 20+len("…") {
		t.Fatalf("Line = %q", got)
	}
	if !strings.HasPrefix(got, "a Injected: yes") {
		t.Fatalf("Line = %q", got)
	}
}

func FuzzString(f *testing.F) {
	f.Add("Bearer eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJhcGkifQ.sig", "secret")
	f.Add(`{"access_token":"x"}`, "")
	f.Fuzz(func(t *testing.T, s, known string) {
		got := String(s, known)
		if len(known) >= 1 && !strings.Contains(Mask, known) && strings.Contains(got, known) && !strings.Contains(s, Mask) {
			// A known secret may only survive when it is part of the mask itself.
			t.Fatalf("String(%q, %q) = %q keeps the secret", s, known, got)
		}
		_ = Line(s, 64, known)
	})
}
