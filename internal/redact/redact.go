// Package redact removes secrets from text that is about to leave the process
// in an error, a log line or a response: known secret values (such as the
// managed-identity IDENTITY_HEADER), URL query strings (function keys travel
// as ?code=…), the values of secret-named fields, Authorization credentials
// (Bearer, Basic, PoP), JWT-like strings and long opaque runs, whatever their
// length. It is the one redaction path of the module: tokencache and the
// caller binary both use it.
package redact

import (
	"os"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mask replaces every redacted secret.
const Mask = "[REDACTED]"

// secretEnv lists the environment variables whose values are secrets wherever
// they appear (the managed-identity header under its current and legacy names).
var secretEnv = []string{"IDENTITY_HEADER", "MSI_SECRET"}

// EnvSecrets returns the values of the environment's secret variables
// (IDENTITY_HEADER, MSI_SECRET), which an identity endpoint may echo back; pass
// them to [String] or [Line] as known secrets.
func EnvSecrets() []string {
	out := make([]string, 0, len(secretEnv))
	for _, name := range secretEnv {
		if v := os.Getenv(name); v != "" {
			out = append(out, v)
		}
	}
	return out
}

var (
	// urlQuery matches a URL's query string (after the scheme and path).
	urlQuery = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://[^\s"'<>?#]*)\?[^\s"'<>#]*`)
	// secretField matches a JSON, form or header field whose name carries a
	// secret (snake, kebab or camel case; quoted with " or ', escaped or not)
	// and captures its value (possibly empty).
	secretField = regexp.MustCompile(`(?i)((?:\\?["'])?\b(?:access[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret|client[_-]?assertion|x-identity-header|identity[_-]?header|msi[_-]?secret|secret|password)(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?)([^\s"'&,;}\\]*)`)
	// authValue matches an Authorization credential.
	authValue = regexp.MustCompile(`(?i)\b(bearer|basic|pop)(\s+)([^\s"',;]+)`)
	// prose lists the words that follow "bearer" or "basic" in messages.
	prose = map[string]bool{"token": true, "tokens": true, "auth": true, "authentication": true, "credential": true, "credentials": true, "scheme": true}
	// jwt matches a JWS or JWE (a base64url JSON header starts "eyJ"),
	// whatever the number of its dot-separated parts.
	jwt = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){1,4}`)
	// jwtLike matches three base64url segments separated by dots, the first
	// two long enough that version numbers do not match; host names are kept
	// by requiring the mix of [looksRandom].
	jwtLike = regexp.MustCompile(`[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)
	// blob matches a run of base64 / base64url / hex characters.
	blob = regexp.MustCompile(`[A-Za-z0-9+/_=-]{32,}`)
)

// String returns s with every occurrence of each non-empty known secret, every
// URL query string and every token-shaped string replaced by [Mask].
func String(s string, known ...string) string {
	for _, k := range known {
		if k != "" {
			s = strings.ReplaceAll(s, k, Mask)
		}
	}
	s = urlQuery.ReplaceAllString(s, "${1}?"+Mask)
	s = secretField.ReplaceAllString(s, "${1}"+Mask)
	s = authValue.ReplaceAllStringFunc(s, func(m string) string {
		sub := authValue.FindStringSubmatch(m)
		if prose[strings.ToLower(strings.TrimRight(sub[3], ".:)"))] {
			return m // "the bearer token", "basic auth": words, not credentials
		}
		return sub[1] + sub[2] + Mask
	})
	s = jwt.ReplaceAllString(s, Mask)
	s = jwtLike.ReplaceAllStringFunc(s, func(m string) string {
		if looksRandom(m) {
			return Mask
		}
		return m
	})
	s = blob.ReplaceAllStringFunc(s, func(m string) string {
		if looksRandom(m) || (len(m) >= 40 && opaque(m)) {
			return Mask
		}
		return m
	})
	for _, k := range known { // masks placed above must not rebuild a secret
		if k != "" && !strings.Contains(Mask, k) {
			s = strings.ReplaceAll(s, k, Mask)
		}
	}
	return s
}

// looksRandom reports whether a run mixes upper case, lower case and digits,
// as keys and tokens do (hex digests, GUIDs, host names and words do not).
func looksRandom(s string) bool {
	var up, low, digit bool
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'A' && c <= 'Z':
			up = true
		case c >= 'a' && c <= 'z':
			low = true
		case c >= '0' && c <= '9':
			digit = true
		}
	}
	return up && low && digit
}

// opaque reports whether a long run looks like a secret rather than an
// identifier: identifiers built from GUIDs, names and paths
// ("callee-<guid>-1", "api/x") have short parts between '-' and '/'; a
// secret in one case (a long hex key, a lower-case token) has a long one.
func opaque(m string) bool {
	for _, part := range strings.FieldsFunc(m, func(r rune) bool { return r == '-' || r == '/' }) {
		if len(part) >= 24 && strings.Trim(part, "=_+") != "" {
			return true
		}
	}
	return false
}

// Line returns [String] of s made into one printable line by [OneLine].
// Redaction comes first, so a cut can never leave part of a secret behind.
func Line(s string, maxBytes int, known ...string) string {
	return OneLine(String(s, known...), maxBytes)
}

// OneLine makes untrusted text safe for a log line: control characters and
// line separators become spaces, invalid UTF-8 becomes '?', runs of spaces
// collapse, and the result is at most maxBytes bytes (cut on a rune boundary,
// "…" appended when cut). It does not redact; see [Line].
func OneLine(s string, maxBytes int) string {
	var b strings.Builder
	space := false
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				r = '?'
			}
		}
		if unicode.IsSpace(r) || unicode.IsControl(r) || !unicode.IsPrint(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			if b.Len()+1 > maxBytes {
				b.WriteString("…")
				return b.String()
			}
			b.WriteByte(' ')
			space = false
		}
		if b.Len()+utf8.RuneLen(r) > maxBytes {
			b.WriteString("…")
			return b.String()
		}
		b.WriteRune(r)
	}
	return b.String()
}
