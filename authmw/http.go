package authmw

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Canonical names of the Easy Auth principal headers.
const (
	headerPrincipal     = "X-Ms-Client-Principal"
	headerPrincipalID   = "X-Ms-Client-Principal-Id"
	headerPrincipalName = "X-Ms-Client-Principal-Name"
	headerPrincipalIDP  = "X-Ms-Client-Principal-Idp"
)

// Handler returns net/http middleware: requests with a valid, allowed token
// reach next with the [Principal] on their context ([PrincipalFrom]); others are
// answered 401, 403 or 503 with an application/problem+json body. Incoming
// X-MS-CLIENT-PRINCIPAL* headers are always removed first.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r, err := m.Check(w, r); err == nil {
			next.ServeHTTP(w, r)
		}
	})
}

// Check is the whole decision for r, for adapters to other frameworks (see
// authmw/echomw). When r may proceed it returns the request to pass on, with
// the [Principal] on its context when a token was verified ([PrincipalFrom]),
// and a nil error. Otherwise it has written the denial to w (status,
// WWW-Authenticate or Retry-After, problem+json body, exactly as
// [Middleware.Handler] does) and returns it as an [*Error].
// Incoming X-MS-CLIENT-PRINCIPAL* headers are removed from r either way.
func (m *Middleware) Check(w http.ResponseWriter, r *http.Request) (*http.Request, error) {
	p, err := m.authenticate(r)
	m.recordDecision(r, p, err) // OpenTelemetry (telemetry.go)
	if err != nil {
		m.writeDenial(w, r, err)
		return r, err
	}
	if p != nil {
		r = r.WithContext(withPrincipal(r.Context(), p))
	}
	return r, nil
}

// authenticate runs the whole decision for r: it strips (and, when configured,
// sets) the principal headers, applies excluded paths and the unauthenticated
// action, verifies the token and audits the decision. A nil Principal with a nil
// error means "pass through anonymously".
func (m *Middleware) authenticate(r *http.Request) (*Principal, *Error) {
	var start time.Time
	audit := m.cfg.Logger != nil || m.cfg.OnDecision != nil
	if audit {
		start = time.Now()
	}
	StripIdentityHeaders(r.Header)
	st := m.state.Load()

	if st.cp.excludedURL(r.URL) {
		if audit {
			m.audit(r, start, OutcomeExcluded, 0, nil, nil, false)
		}
		return nil, nil
	}
	if e := st.cp.client.check(r); e != nil {
		if audit {
			m.audit(r, start, OutcomeDenied, e.Status(), nil, e, false)
		}
		return nil, e
	}
	raw, herr := bearerToken(r.Header)
	if herr == errNoToken {
		switch st.cp.Policy.UnauthenticatedAction {
		case AllowAnonymous:
			if audit {
				m.audit(r, start, OutcomeAnonymous, 0, nil, nil, false)
			}
			return nil, nil
		case Return403:
			herr = &Error{Kind: ErrForbidden, Reason: ReasonAnonymousForbidden}
		}
		// Until the keys are loaded a protected route answers 503 for everyone: a
		// client should retry rather than conclude its (absent) token is the problem.
		if !m.Ready() {
			herr = notReady("no token, and the issuers' signing keys are not loaded yet", nil)
		}
	}
	if herr != nil {
		if audit {
			m.audit(r, start, OutcomeDenied, herr.Status(), nil, herr, false)
		}
		return nil, herr
	}
	p, cached, err := m.verify(r.Context(), raw, st)
	if err != nil {
		if audit {
			m.audit(r, start, OutcomeDenied, err.Status(), nil, err, false)
		}
		return nil, err
	}
	if p.easyAuth != nil {
		if r.Header == nil {
			r.Header = http.Header{}
		}
		p.easyAuth.set(r.Header)
	}
	if audit {
		m.audit(r, start, OutcomeAllowed, 0, p, nil, cached)
	}
	return p, nil
}

// bearerToken extracts the token of the single "Authorization: Bearer <token>"
// header. Only the header is read, never the query string or a form.
func bearerToken(h http.Header) (string, *Error) {
	vals := h["Authorization"]
	switch len(vals) {
	case 0:
		return "", errNoToken
	case 1:
	default:
		return "", invalid(ReasonMalformedHeader, "several Authorization headers", nil)
	}
	v := vals[0]
	if len(v) < 7 || !strings.EqualFold(v[:6], "Bearer") || v[6] != ' ' {
		if strings.TrimSpace(v) == "" {
			return "", invalid(ReasonMalformedHeader, "empty Authorization header", nil)
		}
		return "", invalid(ReasonMalformedHeader, "Authorization scheme is not Bearer", nil)
	}
	tok := strings.Trim(v[7:], " \t")
	if tok == "" {
		return "", invalid(ReasonMalformedHeader, "Bearer without a token", nil)
	}
	if strings.IndexByte(tok, ' ') >= 0 || strings.IndexByte(tok, '\t') >= 0 {
		return "", invalid(ReasonMalformedHeader, "more than one token after Bearer", nil)
	}
	if len(tok) > maxTokenBytes {
		return "", invalid(ReasonMalformedToken, "token of "+strconv.Itoa(len(tok))+" bytes exceeds "+strconv.Itoa(maxTokenBytes), nil)
	}
	return tok, nil
}

// problem is an RFC 9457 problem details body.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Reason Reason `json:"reason,omitempty"`
}

func newProblem(e *Error) problem {
	status := e.Status()
	return problem{
		Type:   problemTypeURI,
		Title:  http.StatusText(status),
		Status: status,
		Detail: genericDetail[e.Reason],
		Reason: e.Reason,
	}
}

// denialHeaders sets WWW-Authenticate and Retry-After for e on h.
func (m *Middleware) denialHeaders(h http.Header, r *http.Request, e *Error) {
	st := m.state.Load()
	realm := m.cfg.Realm
	if realm == "" {
		realm = r.Host
	}
	switch e.Kind {
	case ErrNotReady:
		h.Set("Retry-After", retryAfterSeconds)
	case ErrForbidden:
		var b strings.Builder
		b.WriteString(`Bearer realm="`)
		b.WriteString(quoteSafe(realm))
		b.WriteString(`"`)
		if e.Reason != ReasonAnonymousForbidden && e.Reason != ReasonClientAddressNotAllowed {
			b.WriteString(`, error="insufficient_scope"`)
		}
		h.Set("WWW-Authenticate", b.String())
	default:
		if st.cp.Policy.DisableWWWAuthenticate {
			return
		}
		var b strings.Builder
		b.WriteString(`Bearer realm="`)
		b.WriteString(quoteSafe(realm))
		b.WriteString(`"`)
		if e.Kind != ErrNoToken {
			b.WriteString(`, error="invalid_token"`)
		}
		if st.authorizationURI != "" {
			b.WriteString(`, authorization_uri="`)
			b.WriteString(quoteSafe(st.authorizationURI))
			b.WriteString(`"`)
		}
		if st.resourceID != "" {
			b.WriteString(`, resource_id="`)
			b.WriteString(quoteSafe(st.resourceID))
			b.WriteString(`"`)
		}
		h.Set("WWW-Authenticate", b.String())
	}
}

// writeDenial writes e as a problem+json response.
func (m *Middleware) writeDenial(w http.ResponseWriter, r *http.Request, e *Error) {
	h := w.Header()
	m.denialHeaders(h, r, e)
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	body, _ := json.Marshal(newProblem(e))
	w.WriteHeader(e.Status())
	w.Write(body) //nolint:errcheck // client went away
}

// quoteSafe makes s safe inside a quoted-string: drops quotes, backslashes and
// control characters (the realm may come from the request's Host).
func quoteSafe(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' || c < 0x20 || c == 0x7f {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '"' || c == '\\' || c < 0x20 || c == 0x7f) {
			b.WriteByte(c)
		}
	}
	return b.String()
}
