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
// a timeout, no redirects, and a transport that reads each response body up to
// maxIdentityBody and refuses a token response labelled for another resource
// than the one asked for.
func newIdentityClient() *http.Client {
	return &http.Client{
		Timeout:   credentialHTTPTimeout,
		Transport: identityTransport{next: http.DefaultTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return &identityError{msg: errIdentityRedirect.Error()}
		},
	}
}

type identityTransport struct{ next http.RoundTripper }

func (t identityTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
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
// such as "api://callee", or a client ID): the audience with any trailing
// slashes and "/.default" removed, then "/.default" appended, so
// "api://callee", "api://callee/" and "api://callee/.default" all give
// "api://callee/.default". It returns "" for an audience that names nothing.
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
	if a == "" {
		return ""
	}
	return a + "/.default"
}
