package tokencache

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/f2fauth/f2fauth/internal/netrule"
)

// Transport returns an [http.RoundTripper] that sends each request through base
// (nil = [http.DefaultTransport]) with "Authorization: Bearer <token>" for
// scope. It clones the request before setting the header (the caller's
// request is never modified), refuses plain-HTTP requests except to loopback
// hosts (127.0.0.0/8, ::1, localhost) with [ErrInsecureTransport], and when
// the response is a 401 whose WWW-Authenticate carries a Bearer challenge with
// error="invalid_token", it calls [Cache.Invalidate] and, if that took effect
// and the body can be replayed (no body, or req.GetBody set), retries once
// with a fresh token. Use it inside an http.Client that has a Timeout.
//
// The token is bound to the origin (scheme, host, port) of the request the
// client was asked to send: a redirect hop to any other origin is refused
// with [ErrInsecureTransport] before anything (token or body) is sent there,
// whatever the client's CheckRedirect policy, so a plain
// http.Client{Transport: cache.Transport(...)} is safe as written.
func (c *Cache) Transport(scope string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{c: c, scope: scope, scopes: []string{scope}, base: base}
}

type transport struct {
	c      *Cache
	scope  string
	scopes []string
	base   http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkSecure(req); err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.send(req, req.Body)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !isInvalidTokenChallenge(resp.Header.Values("Www-Authenticate")) {
		return resp, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if !replayable || !t.c.Invalidate(t.scope) {
		return resp, nil
	}
	body := req.Body
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		b, gerr := req.GetBody()
		if gerr != nil {
			return resp, nil
		}
		body = b
	}
	// Discard the 401 so its connection can be reused, then retry once.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return t.send(req, body)
}

// send clones req with body and the Authorization header and sends it.
func (t *transport) send(req *http.Request, body io.ReadCloser) (*http.Response, error) {
	tok, err := t.c.GetToken(req.Context(), policy.TokenRequestOptions{Scopes: t.scopes})
	if err != nil {
		if body != nil {
			_ = body.Close()
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := t.base.RoundTrip(r)
	if resp != nil {
		// The response points at the caller's request, not at the clone that
		// carries the token; http.Client's redirect chain (req.Response.Request)
		// then always leads back to the first request.
		resp.Request = req
	}
	return resp, err
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// maxRedirectChain bounds the walk back to the first request of a redirect
// chain (http.Client stops after 10 hops).
const maxRedirectChain = 64

// checkSecure applies netrule's URL rule (https, or http only to loopback; no
// user info) and refuses a redirect hop whose origin differs from the first
// request's: http.Client marks a redirect hop with req.Response, whose
// Request is the previous hop.
func checkSecure(req *http.Request) error {
	if req.URL == nil {
		return fmt.Errorf("%w: request has no URL", ErrInsecureTransport)
	}
	if err := netrule.CheckURL(req.URL); err != nil {
		return fmt.Errorf("%w: host %q: %w", ErrInsecureTransport, req.URL.Host, err)
	}
	first := req
	for i := 0; first.Response != nil; i++ {
		if first.Response.Request == nil || i == maxRedirectChain {
			return fmt.Errorf("%w: redirect to %s://%s whose first request is unknown; the token is sent only to the origin of the first request",
				ErrInsecureTransport, req.URL.Scheme, req.URL.Host)
		}
		first = first.Response.Request
	}
	if first != req && (first.URL == nil || !netrule.SameOrigin(first.URL, req.URL)) {
		from := "?"
		if first.URL != nil {
			from = first.URL.Scheme + "://" + first.URL.Host
		}
		return fmt.Errorf("%w: %s redirected to another origin %s://%s; the token is sent only to the origin of the first request",
			ErrInsecureTransport, from, req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// isInvalidTokenChallenge reports whether any of the WWW-Authenticate header
// values holds a Bearer challenge with error="invalid_token" (RFC 6750
// section 3.1). Scheme and parameter names are case-insensitive; the value may
// be quoted or a bare token. Malformed input yields false.
func isInvalidTokenChallenge(values []string) bool {
	for _, v := range values {
		for _, ch := range parseChallenges(v) {
			if strings.EqualFold(ch.scheme, "Bearer") && ch.params["error"] == "invalid_token" {
				return true
			}
		}
	}
	return false
}

type challenge struct {
	scheme string
	params map[string]string
}

// parseChallenges parses a WWW-Authenticate value (RFC 9110 section 11.6.1):
// challenges separated by commas, each a scheme followed by auth-params
// (name=token or name="quoted-string"). It is lenient and never panics.
func parseChallenges(s string) []challenge {
	var out []challenge
	var cur *challenge
	i := 0
	skipWS := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
			i++
		}
	}
	readToken := func() string {
		start := i
		for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != ',' && s[i] != '=' && s[i] != '"' {
			i++
		}
		return s[start:i]
	}
	for {
		skipWS()
		if i >= len(s) {
			break
		}
		tok := readToken()
		if tok == "" {
			i++ // stray '=' or '"'
			continue
		}
		// Look past spaces for '=' to tell a parameter from a new scheme.
		j := i
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j < len(s) && s[j] == '=' && cur != nil && !isToken68Tail(s, j) {
			i = j + 1
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			var val string
			if i < len(s) && s[i] == '"' {
				i++
				var b strings.Builder
				for i < len(s) && s[i] != '"' {
					if s[i] == '\\' && i+1 < len(s) {
						i++
					}
					b.WriteByte(s[i])
					i++
				}
				if i < len(s) {
					i++ // closing quote
				}
				val = b.String()
			} else {
				val = readToken()
			}
			cur.params[strings.ToLower(tok)] = val
			continue
		}
		if j < len(s) && s[j] == '=' {
			// token68 or parameter without a scheme: skip the '=' run.
			i = j
			for i < len(s) && s[i] == '=' {
				i++
			}
			continue
		}
		out = append(out, challenge{scheme: tok, params: map[string]string{}})
		cur = &out[len(out)-1]
	}
	return out
}

// isToken68Tail reports whether the '=' at s[j] is token68 padding ("==" or
// '=' followed by a separator/end) rather than a parameter's '='.
func isToken68Tail(s string, j int) bool {
	return j+1 < len(s) && s[j+1] == '='
}
