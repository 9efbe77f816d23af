package caller

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/f2fauth/f2fauth/internal/redact"
)

// The caller's redaction boundary. Everything the caller reports — Logs,
// ReturnValue.reason, its own log records (including those the token cache and
// the HTTP server write through its logger) and the error Run returns — passes
// through redactText, which is internal/redact (the module's one redaction path,
// also used by the token cache for its own errors) with the environment's
// secrets (IDENTITY_HEADER, MSI_SECRET) as known values.

// redactText removes every known secret from s: the values of IDENTITY_HEADER and
// MSI_SECRET (whatever their length), URL query strings, secret-named fields,
// Authorization values, JWTs and any other token-shaped run of characters.
func redactText(s string) string { return redact.String(s, redact.EnvSecrets()...) }

// safeURL is u for logs: no user info, no fragment, and the query string (which may
// hold a function key) replaced by [redact.Mask].
func safeURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	v := *u
	v.User = nil
	v.Fragment, v.RawFragment = "", ""
	if v.RawQuery != "" || v.ForceQuery {
		v.RawQuery, v.ForceQuery = redact.Mask, false
	}
	return v.String()
}

// oneLine makes untrusted text safe for a log line (see [redact.OneLine]).
func oneLine(s string, maxBytes int) string { return redact.OneLine(s, maxBytes) }

// safeText is redactText then oneLine: what the caller does to any text it reports.
// Redaction comes first, so a cut can never leave part of a secret behind.
func safeText(s string, maxBytes int) string {
	return redact.Line(s, maxBytes, redact.EnvSecrets()...)
}

// redactedError is an error whose message is redacted; errors.Is/As still see
// the original chain.
type redactedError struct{ err error }

func (e redactedError) Error() string { return redactText(e.err.Error()) }
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
	out := slog.NewRecord(r.Time, r.Level, redactText(r.Message), r.PC)
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
		return slog.String(a.Key, redactText(v.String()))
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
			return slog.String(a.Key, redactText(x.Error()))
		case []byte: // fmt would print decimal numbers no pattern recognises
			return slog.String(a.Key, redactText(string(x)))
		case []string:
			red := make([]string, len(x))
			for i, s := range x {
				red[i] = redactText(s)
			}
			return slog.Any(a.Key, red)
		default:
			return slog.String(a.Key, redactText(fmt.Sprint(x)))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
