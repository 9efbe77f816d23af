package caller

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The caller's one redaction boundary. Everything the caller reports — Logs,
// ReturnValue.reason, its own log records (including those the token cache and
// the HTTP server write through its logger) and the error Run returns — passes
// through redact. The token cache redacts its own errors too; this is defence
// in depth at the edge of the process.

const redacted = "REDACTED"

// secretEnv lists the environment variables whose values are secrets wherever
// they appear (the managed-identity header under its current and legacy names).
var secretEnv = []string{"IDENTITY_HEADER", "MSI_SECRET"}

var (
	// A URL's query string (function keys travel as ?code=…).
	urlQueryRE = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://[^\s"'<>?#]*)\?[^\s"'<>#]*`)
	// name=value / "name":"value" for names that carry secrets.
	secretFieldRE = regexp.MustCompile(`(?i)("?\b(?:access_token|refresh_token|id_token|client_secret|client_assertion|x-identity-header|identity_header|msi_secret|secret|password)"?\s*[:=]\s*"?)([^\s"'&,;}]+)`)
	// An Authorization value.
	bearerRE = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+`)
	// A JWT/JWS/JWE (base64url JSON header starting "eyJ", dot-separated parts).
	jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){1,4}`)
	// Any long opaque run (base64/base64url/hex): no identifier or message word is that long.
	opaqueRE = regexp.MustCompile(`[A-Za-z0-9+_=-]{40,}`)
)

// redact removes every known secret from s: the values of IDENTITY_HEADER and
// MSI_SECRET (whatever their length), URL query strings, secret-named fields,
// Authorization values, JWTs and any other token-shaped run of characters.
func redact(s string) string {
	for _, name := range secretEnv {
		if v := os.Getenv(name); v != "" {
			s = strings.ReplaceAll(s, v, redacted)
		}
	}
	s = urlQueryRE.ReplaceAllString(s, "${1}?"+redacted)
	s = secretFieldRE.ReplaceAllString(s, "${1}"+redacted)
	s = bearerRE.ReplaceAllString(s, "${1} "+redacted)
	s = jwtRE.ReplaceAllString(s, redacted)
	s = opaqueRE.ReplaceAllStringFunc(s, func(m string) string {
		if !opaque(m) {
			return m
		}
		return redacted
	})
	return s
}

// opaque reports whether a long run of token characters looks like a secret rather
// than an identifier: identifiers built from GUIDs and names ("callee-<guid>-1")
// have short hyphen-separated parts; a random token has a long one.
func opaque(m string) bool {
	for _, part := range strings.Split(m, "-") {
		if len(part) >= 24 && strings.Trim(part, "=_") != "" {
			return true
		}
	}
	return false
}

// safeURL is u for logs: no user info, no fragment, and the query string (which may
// hold a function key) replaced by REDACTED.
func safeURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	v := *u
	v.User = nil
	v.Fragment, v.RawFragment = "", ""
	if v.RawQuery != "" || v.ForceQuery {
		v.RawQuery, v.ForceQuery = redacted, false
	}
	return v.String()
}

// oneLine makes untrusted text safe for a log line: control characters and
// invalid UTF-8 become spaces, runs of spaces collapse, and the result is at most
// maxBytes bytes (cut on a rune boundary, "…" appended when cut).
func oneLine(s string, maxBytes int) string {
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

// safeText is redact then oneLine: what the caller does to any text it reports.
// Redaction comes first, so a cut can never leave part of a secret behind.
func safeText(s string, maxBytes int) string { return oneLine(redact(s), maxBytes) }

// redactedError is an error whose message is redacted; errors.Is/As still see
// the original chain.
type redactedError struct{ err error }

func (e redactedError) Error() string { return redact(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

// redactErr wraps err so that its message is redacted (nil stays nil).
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	return redactedError{err}
}

// redactingHandler is a slog.Handler that redacts the message and every attribute
// value before passing the record on.
type redactingHandler struct{ next slog.Handler }

// newRedactingHandler wraps h (unless it already is one).
func newRedactingHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(redactingHandler); ok {
		return h
	}
	return redactingHandler{h}
}

func (h redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return redactingHandler{h.next.WithAttrs(red)}
}

func (h redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{h.next.WithGroup(name)}
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]slog.Attr, len(g))
		for i, ga := range g {
			red[i] = redactAttr(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, redact(x.Error()))
		case []string:
			red := make([]string, len(x))
			for i, s := range x {
				red[i] = redact(s)
			}
			return slog.Any(a.Key, red)
		default:
			return slog.String(a.Key, redact(fmt.Sprint(x)))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
