// Package netrule is the one home of f2fauth's outbound network rules, shared by
// authmw (discovery and key fetches), tokencache (the token transport) and the
// apps:
//
//   - a URL is fetched over https, or over plain http only to a loopback host
//     (127.0.0.0/8, ::1, localhost);
//   - a redirect never changes scheme or host (same-origin at most) and the
//     rule above is checked again on every hop;
//   - a response body is read up to a limit, and a body that is longer is an
//     error, never silently truncated data;
//   - a body quoted in a log or an error is a short excerpt of printable text.
package netrule

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrInsecureURL is returned for a URL that breaks the scheme rule: not https,
// and not plain http to a loopback host.
var ErrInsecureURL = errors.New("insecure URL: use https (plain http is allowed only to 127.0.0.0/8, ::1 and localhost)")

// ErrRedirect is returned for a redirect that the rules refuse.
var ErrRedirect = errors.New("redirect refused")

// ErrTooLarge is returned by [ReadAll] for a body longer than its limit.
var ErrTooLarge = errors.New("response body too large")

// MaxRedirects is how many same-origin redirects [CheckRedirect] follows.
const MaxRedirects = 3

// IsLoopback reports whether host (without port) is localhost or a loopback IP
// address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckURL returns nil when u may be fetched: an absolute https URL with a host,
// or a plain http URL whose host is loopback. Userinfo is refused too: a
// credential in a URL ends up in logs.
func CheckURL(u *url.URL) error {
	if u == nil || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: URL has no host", ErrInsecureURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: URL carries user info", ErrInsecureURL)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%w: plain http to %q", ErrInsecureURL, u.Hostname())
	}
	return fmt.Errorf("%w: scheme %q", ErrInsecureURL, u.Scheme)
}

// CheckRawURL parses raw and applies [CheckURL].
func CheckRawURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInsecureURL, err)
	}
	return CheckURL(u)
}

// SameOrigin reports whether a and b have the same scheme, host and port
// (default ports made explicit; host compared case-insensitively).
func SameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// CheckRedirect is an [http.Client] CheckRedirect policy: at most
// [MaxRedirects] hops, each to the origin of the first request, each passing
// [CheckURL].
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrRedirect, MaxRedirects)
	}
	if !SameOrigin(via[0].URL, req.URL) {
		return fmt.Errorf("%w: %s://%s redirected to another origin %s://%s", ErrRedirect,
			via[0].URL.Scheme, via[0].URL.Host, req.URL.Scheme, req.URL.Host)
	}
	if err := CheckURL(req.URL); err != nil {
		return fmt.Errorf("%w: %w", ErrRedirect, err)
	}
	return nil
}

// NewClient returns an http.Client with the given overall timeout, the
// [CheckRedirect] policy, and a transport that refuses any request breaking
// [CheckURL] (so the rule holds on the first hop too, whoever built the
// request).
func NewClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: CheckRedirect,
		Transport:     Transport(http.DefaultTransport),
	}
}

// Transport wraps next so that every request, first hop or redirect, must pass
// [CheckURL].
func Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return checkedTransport{next}
}

type checkedTransport struct{ next http.RoundTripper }

func (t checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := CheckURL(req.URL); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return t.next.RoundTrip(req)
}

// Guard returns a copy of c (or of a zero client when c is nil) whose redirect
// policy and transport enforce the rules, keeping c's timeout, jar and base
// transport. Use it on a caller-supplied client: a caller's own redirect
// policy is replaced, never trusted.
func Guard(c *http.Client, defaultTimeout time.Duration) *http.Client {
	var g http.Client
	if c != nil {
		g = *c
	}
	if g.Timeout <= 0 {
		g.Timeout = defaultTimeout
	}
	if _, ok := g.Transport.(checkedTransport); !ok {
		g.Transport = Transport(g.Transport)
	}
	g.CheckRedirect = CheckRedirect
	return &g
}

// ReadAll reads r up to limit bytes. A longer body is [ErrTooLarge]; the rest
// is not read.
func ReadAll(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}

// ExcerptBytes is the most an [Excerpt] keeps of a body.
const ExcerptBytes = 120

// Excerpt returns a short, single-line, printable excerpt of an untrusted body
// for a log line or an error: at most [ExcerptBytes] bytes, control characters
// and invalid UTF-8 replaced, "…" when cut.
func Excerpt(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if sb.Len()+size > ExcerptBytes {
			sb.WriteString("…")
			break
		}
		b = b[size:]
		switch {
		case r == utf8.RuneError && size <= 1:
			sb.WriteRune('?')
		case unicode.IsControl(r) || !unicode.IsPrint(r) && r != ' ':
			sb.WriteRune(' ')
		default:
			sb.WriteRune(r)
		}
	}
	return strings.TrimSpace(sb.String())
}
