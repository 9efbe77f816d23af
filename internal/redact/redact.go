// Package redact removes secrets from text that is about to leave the process
// in an error or a log line: known secret values (such as the managed-identity
// IDENTITY_HEADER), the values of token fields and Bearer credentials, and any
// token-shaped string (a JWT-like run of three base64url segments, or a long
// base64 blob), whatever its length.
package redact

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mask replaces every redacted secret.
const Mask = "[REDACTED]"

var (
	// tokenField matches a JSON or form token field and captures its value.
	tokenField = regexp.MustCompile(`(?i)("?(?:access_token|refresh_token|id_token|client_secret|client_assertion|secret|x-identity-header|identity_header|msi_secret)"?\s*[:=]\s*"?)([^"&,\s}]*)`)
	// bearer matches an Authorization credential.
	bearer = regexp.MustCompile(`(?i)\b(bearer|pop)(\s+)[^\s"',;]+`)
	// jwtLike matches three base64url segments separated by dots, the first
	// two long enough that host names and version numbers do not match.
	jwtLike = regexp.MustCompile(`[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)
	// blob matches a run of base64 / base64url characters of 32 or more.
	blob = regexp.MustCompile(`[A-Za-z0-9+/_=-]{32,}`)
)

// String returns s with every occurrence of each non-empty known secret and
// every token-shaped string replaced by [Mask].
func String(s string, known ...string) string {
	for _, k := range known {
		if k != "" {
			s = strings.ReplaceAll(s, k, Mask)
		}
	}
	s = tokenField.ReplaceAllString(s, "${1}"+Mask)
	s = bearer.ReplaceAllString(s, "${1}${2}"+Mask)
	s = jwtLike.ReplaceAllString(s, Mask)
	s = blob.ReplaceAllStringFunc(s, func(m string) string {
		if looksRandom(m) {
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

// looksRandom reports whether a base64-alphabet run mixes upper case, lower
// case and digits, as keys and tokens do (hex digests, GUIDs and words do not).
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

// Line returns [String] of s made into one printable line of at most max
// bytes: control characters become spaces, runs of spaces collapse, and a
// longer text is cut with "…".
func Line(s string, max int, known ...string) string {
	s = String(s, known...)
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		if b.Len()+utf8.RuneLen(r) > max {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimRight(b.String(), " ")
}
