package authmwtest

import (
	"fmt"
	"net/http"
)

// Fault is an answer the issuer gives instead of its discovery documents or
// key sets, to test how a verifier reacts to a misconfiguration or an
// outage. Create one with [UnknownTenant], [NoUsableKeys] or as a literal.
type Fault struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Body is sent as is, with Content-Type application/json.
	Body string
	// RetryAfter, if set, is sent as the Retry-After header.
	RetryAfter string
}

// UnknownTenant is Entra's answer for a tenant that does not exist: 400
// invalid_tenant with AADSTS90002 (what login.microsoftonline.com sends for
// the discovery document of an unknown tenant ID).
func UnknownTenant(tenantID string) *Fault {
	return &Fault{Status: http.StatusBadRequest, Body: fmt.Sprintf(
		`{"error":"invalid_tenant","error_description":"AADSTS90002: Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.","error_codes":[90002]}`,
		tenantID)}
}

// NoUsableKeys is a key set that is valid JSON but holds no key.
func NoUsableKeys() *Fault { return &Fault{Body: `{"keys":[]}`} }

// SetDiscoveryFault makes the issuer answer every discovery-document request
// (v1 and v2) with f; nil restores the normal answer. Requests are still
// counted by [Issuer.DiscoveryRequests].
func (i *Issuer) SetDiscoveryFault(f *Fault) { i.discoveryFault.Store(f) }

// SetJWKSFault makes the issuer answer every key-set request with f; nil
// restores the normal answer. Requests are still counted by [Issuer.JWKSRequests].
func (i *Issuer) SetJWKSFault(f *Fault) { i.jwksFault.Store(f) }

// fault returns the fault set for a route kind, if any.
func (i *Issuer) fault(kind routeKind) *Fault {
	if kind == routeJWKS {
		return i.jwksFault.Load()
	}
	return i.discoveryFault.Load()
}

// write sends the fault.
func (f *Fault) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if f.RetryAfter != "" {
		h.Set("Retry-After", f.RetryAfter)
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write([]byte(f.Body)) //nolint:errcheck // client went away
}
