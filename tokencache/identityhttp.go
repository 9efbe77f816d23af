package tokencache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/f2fauth/f2fauth/internal/netrule"
)

// maxIdentityBody bounds an identity-endpoint response body (a token response
// is a few KiB).
const maxIdentityBody = 256 << 10

// maxIdentityHeaders bounds an identity-endpoint response's headers (Go's
// default is 10 MB).
const maxIdentityHeaders = 64 << 10

// errIdentityRedirect is returned for any redirect from an identity endpoint:
// following it would send the secret X-IDENTITY-HEADER elsewhere.
var errIdentityRedirect = errors.New("tokencache: the identity endpoint answered with a redirect; redirects are never followed (they would carry X-IDENTITY-HEADER): check IDENTITY_ENDPOINT")

// identityError is a refused identity-endpoint response. It is not retriable
// (azcore's retry policy checks NonRetriable), so a hostile answer costs one
// request, not four.
type identityError struct{ msg string }

func (e *identityError) Error() string { return e.msg }
func (*identityError) NonRetriable()   {}

// newIdentityClient returns the HTTP client of the credentials built here:
// a timeout, no redirects, a transport that sends the identity secret only
// over https or loopback http, and reads each response's headers
// up to maxIdentityHeaders and body up to maxIdentityBody and refuses a token response labelled for another resource
// than the one asked for.
func newIdentityClient() *http.Client {
	return &http.Client{
		Timeout:   credentialHTTPTimeout,
		Transport: identityTransport{next: identityBase()},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return &identityError{msg: errIdentityRedirect.Error()}
		},
	}
}

// identityBase is a clone of http.DefaultTransport that reads at most
// maxIdentityHeaders of response headers.
func identityBase() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxResponseHeaderBytes = maxIdentityHeaders
	return t
}

type identityTransport struct{ next http.RoundTripper }

func (t identityTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-IDENTITY-HEADER") != "" || req.Header.Get("secret") != "" {
		// The secret goes over https, or plain http only to loopback (as
		// App Service's endpoint is); IMDS requests carry no secret.
		if err := netrule.CheckURL(req.URL); err != nil {
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return nil, &identityError{msg: fmt.Sprintf("tokencache: refusing to send the managed identity secret to %s://%s (%v): set IDENTITY_ENDPOINT to a loopback http or an https URL",
				req.URL.Scheme, req.URL.Host, err)}
		}
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		if strings.Contains(err.Error(), "response headers exceeded") {
			// Not retried: the same endpoint would answer the same way.
			return nil, &identityError{msg: fmt.Sprintf("tokencache: identity endpoint %s://%s answered with headers over %d bytes; refused", req.URL.Scheme, req.URL.Host, maxIdentityHeaders)}
		}
		return nil, err
	}
	b, err := netrule.ReadAll(resp.Body, maxIdentityBody)
	_ = resp.Body.Close()
	if err != nil {
		if errors.Is(err, netrule.ErrTooLarge) {
			return nil, &identityError{msg: fmt.Sprintf("tokencache: identity endpoint %s://%s answered with a body over %d bytes; refused", req.URL.Scheme, req.URL.Host, maxIdentityBody)}
		}
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		if asked := req.URL.Query().Get("resource"); asked != "" {
			var body struct {
				Resource *string `json:"resource"`
			}
			if json.Unmarshal(b, &body) == nil && body.Resource != nil && !sameResource(asked, *body.Resource) {
				return nil, &identityError{msg: fmt.Sprintf("tokencache: identity endpoint returned a token for resource %q, asked for %q; refused", netrule.Excerpt([]byte(*body.Resource)), asked)}
			}
		}
	}
	resp.Body = readCloser{bytes.NewReader(b)}
	resp.ContentLength = int64(len(b))
	return resp, nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// sameResource compares resource identifiers as Entra does: case-insensitive,
// a trailing slash ignored.
func sameResource(a, b string) bool {
	return strings.EqualFold(strings.TrimRight(a, "/"), strings.TrimRight(b, "/"))
}

// ScopeFor returns the token scope for an audience (an Application ID URI
// such as "api://callee", or a client ID): the audience with surrounding
// spaces, any trailing slashes and "/.default" removed, then "/.default"
// appended, so "api://callee", "api://callee/" and "api://callee/.default"
// all give "api://callee/.default". It returns "" for an audience that names
// nothing ("", "/.default", ".default", or a bare scheme such as "api://").
// Log its result to say which scope a program will ask for.
func ScopeFor(audience string) string {
	a := strings.TrimSpace(audience)
	for {
		t := strings.TrimRight(strings.TrimSuffix(a, "/.default"), "/")
		if t == a {
			break
		}
		a = t
	}
	if a == "" || a == ".default" || strings.HasSuffix(a, ":") {
		return ""
	}
	return a + "/.default"
}
