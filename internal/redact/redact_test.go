package redact

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	const jwtTok = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJhcGk6Ly9jYWxsZWUifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
	tests := []struct {
		name, in string
		known    []string
		gone     []string
		kept     []string
	}{
		{name: "jwt", in: "token " + jwtTok + " here", gone: []string{"eyJhbGciOiJSUzI1NiJ9", "c2lnbmF0dXJl"}, kept: []string{"token", "here"}},
		{name: "unsigned jwt", in: "x eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0. y", gone: []string{"eyJzdWIiOiJ4In0"}},
		{name: "two-part jwt prefix", in: "cut eyJhbGciOiJSUzI1NiJ9.eyJhdWQi", gone: []string{"eyJhbGciOiJSUzI1NiJ9", "eyJhdWQi"}, kept: []string{"cut"}},
		{name: "jwe, five parts", in: "jwe eyJhbGciOiJSU0EifQ.a2V5.aXY.Y2lwaGVy.dGFn end", gone: []string{"a2V5", "Y2lwaGVy", "dGFn"}, kept: []string{"jwe", "end"}},
		{name: "opaque three-segment token", in: "tok Ab3dEf7hIj.Kl9nOp1rSt.Uv5xYz end", gone: []string{"Ab3dEf7hIj", "Uv5xYz"}, kept: []string{"tok", "end"}},
		{name: "access_token field, any length", in: `{"access_token":"abc","expires_on":"1"}`, gone: []string{`"abc"`}, kept: []string{"expires_on"}},
		{name: "access_token field, short", in: `{"access_token":"short1","expires_on":"1"}`, gone: []string{"short1"}, kept: []string{"expires_on"}},
		{name: "escaped JSON field", in: `{\"access_token\":\"short1\",\"expires_on\":\"1\"}`, gone: []string{"short1"}, kept: []string{"expires_on"}},
		{name: "single-quoted field", in: `access_token='short2' next`, gone: []string{"short2"}, kept: []string{"next"}},
		{name: "camel-case field", in: `{"accessToken":"short3","tokenType":"Bearer"}`, gone: []string{"short3"}, kept: []string{"tokenType"}},
		{name: "form field", in: `client_secret=s3&x=1`, gone: []string{"s3"}, kept: []string{"x=1"}},
		{name: "password field", in: `password=hunter2; user=bob`, gone: []string{"hunter2"}, kept: []string{"user=bob"}},
		{name: "bearer", in: "Authorization: Bearer a.b", gone: []string{"a.b"}, kept: []string{"Authorization: Bearer"}},
		{name: "bearer value with dash", in: "Authorization: Bearer abc.def-ghi", gone: []string{"abc.def-ghi"}, kept: []string{"Bearer"}},
		{name: "basic", in: "Authorization: Basic dXNlcjpwdw==", gone: []string{"dXNlcjpwdw"}, kept: []string{"Basic"}},
		{name: "pop", in: "Authorization: PoP eyJ0eXAiOiJwb3Ai", gone: []string{"eyJ0eXAi"}, kept: []string{"PoP"}},
		{name: "known secret, short", in: "echo: X-IDENTITY-HEADER=qz and qz again", known: []string{"qz"}, gone: []string{"qz"}},
		{name: "known secret, in a word", in: "header Xq7Zp3 rejected", known: []string{"Xq7Zp3"}, gone: []string{"Xq7Zp3"}, kept: []string{"header", "rejected"}},
		{name: "identity header echo in JSON", in: `{"X-IDENTITY-HEADER":"9f3b"}`, gone: []string{"9f3b"}},
		{name: "long base64 blob", in: "key QmFzZTY0U2VjcmV0S2V5VmFsdWUxMjM0NTY3ODkw= end", gone: []string{"QmFzZTY0"}, kept: []string{"key", "end"}},
		{name: "base64 blob with slashes", in: "key Qm/FzZTY0U2V+jcmV0S2V5/VmFsdWUxMjM0NTY3ODkw end", gone: []string{"FzZTY0U2V", "VmFsdWUx"}, kept: []string{"key", "end"}},
		{name: "long opaque run, one case", in: "secret " + strings.Repeat("zm9vymfy", 8), gone: []string{"zm9vymfyzm9v"}},
		{name: "long hex key", in: "key " + strings.Repeat("0123456789abcdef", 4) + " end", gone: []string{"0123456789abcdef0123"}, kept: []string{"key", "end"}},
		{name: "query of a quoted URL", in: `Post "https://callee.example.com/api/x?code=k3y&x=1": dial tcp`, gone: []string{"k3y", "x=1"}, kept: []string{"https://callee.example.com/api/x?" + Mask, "dial tcp"}},
		{name: "query of a bare URL", in: `GET http://127.0.0.1:8080/msi/token?api-version=2019-08-01&resource=api://x failed`, gone: []string{"api-version", "resource="}, kept: []string{"http://127.0.0.1:8080/msi/token?" + Mask, "failed"}},
		{name: "hosts, GUIDs, hex and paths kept", in: "GET http://127.0.0.1:8080/msi/token login.microsoftonline.com 5e29463d-71df-4e0e-8b8d-5d8b2b6a7c01 0123456789abcdef0123456789abcdef v1.2.3",
			kept: []string{"127.0.0.1:8080/msi/token", "login.microsoftonline.com", "5e29463d-71df-4e0e-8b8d-5d8b2b6a7c01", "0123456789abcdef0123456789abcdef", "v1.2.3"}},
		{name: "long host names kept", in: "dial tcp: lookup f2fauth-callee-prod.azurewebsites.net: no such host",
			kept: []string{"f2fauth-callee-prod.azurewebsites.net"}},
		{name: "identifiers kept", in: "scope api://callee-1f8337d0-9d09-4d94-85d9-37d09d095d94-13/.default client 0f5c2b9e-6a3d-4c1e-9b7a-3e8d2f4a1c01",
			kept: []string{"api://callee-1f8337d0-9d09-4d94-85d9-37d09d095d94-13/.default", "0f5c2b9e-6a3d-4c1e-9b7a-3e8d2f4a1c01"}},
		{name: "reason prefixes kept", in: "no token: tokencache: credential failed", kept: []string{"no token: tokencache: credential failed"}},
		{name: "prose after bearer kept", in: "refusing to send the bearer token (use https); basic auth is off", kept: []string{"bearer token (use", "basic auth is"}},
		{name: "token-like value after bearer", in: "Bearer token123abc", gone: []string{"token123abc"}},
		{name: "separator lines kept", in: "----------------------------------------------- RESPONSE 400", kept: []string{"RESPONSE 400"}},
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

func TestEnvSecrets(t *testing.T) {
	t.Setenv("IDENTITY_HEADER", "Xq7Zp3")
	t.Setenv("MSI_SECRET", "")
	got := EnvSecrets()
	if len(got) != 1 || got[0] != "Xq7Zp3" {
		t.Fatalf("EnvSecrets() = %q; want the one set value", got)
	}
	if s := Line("header Xq7Zp3 rejected", 64, got...); strings.Contains(s, "Xq7Zp3") {
		t.Fatalf("Line kept the identity header: %q", s)
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
	// Redaction before the cut: no prefix of a secret survives.
	if got := Line("t "+strings.Repeat("Ab1", 30), 12); strings.Contains(got, "Ab1") {
		t.Fatalf("Line cut before redacting: %q", got)
	}
}

func TestOneLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"a\r\nb", 10, "a b"},
		{"  a \x00\x1b b  ", 10, "a b"},
		{"héllo wörld", 5, "héll…"},
		{"abc\xffdef", 10, "abc?def"},
		{"line\u2028sep\u0085x", 20, "line sep x"},
	} {
		if got := OneLine(tc.in, tc.max); got != tc.want {
			t.Errorf("OneLine(%q, %d) = %q; want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// FuzzString is the fuzz target of the module's one redaction path (the
// caller's FuzzSafeText runs the same code through its wrapper).
func FuzzString(f *testing.F) {
	f.Add("Bearer eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJhcGkifQ.sig", "secret")
	f.Add(`{"access_token":"x"}`, "")
	f.Add("https://h/?code=1", "")
	f.Add("\xff\xfe", "")
	f.Add(strings.Repeat("A", 300), "")
	f.Fuzz(func(t *testing.T, s, known string) {
		check(t, s, known)
	})
}

// check asserts the properties every redacted text has; the fuzz targets
// of this package and of the caller share it.
func check(t *testing.T, s, known string) {
	t.Helper()
	got := String(s, known)
	if len(known) >= 1 && !strings.Contains(Mask, known) && strings.Contains(got, known) && !strings.Contains(s, Mask) {
		// A known secret may only survive when it is part of the mask itself.
		t.Fatalf("String(%q, %q) = %q keeps the secret", s, known, got)
	}
	if m := jwt.FindString(got); m != "" && strings.Contains(m, ".") {
		t.Fatalf("String(%q) = %q keeps a JWT %q", s, got, m)
	}
	line := Line(s, 128, known)
	if len(line) > 128+len("…") || strings.ContainsAny(line, "\r\n\x00") || !utf8.ValidString(line) {
		t.Fatalf("Line(%q) = %q", s, line)
	}
}
