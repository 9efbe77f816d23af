package authmw

import "net/http"

// This file is the hook a reverse proxy (the callee's gateway mode) needs to hand an
// upstream the identity authmw verified, in Easy Auth's shape, and nothing else.

// SetEasyAuthHeaders sets X-MS-CLIENT-PRINCIPAL, -ID, -NAME and -IDP on h from the
// verified token p was built from (the values [Middleware.Handler] sets on the request
// when Policy.EasyAuthHeaders is on). It reports false, leaving h alone, when p has no
// such values: p is nil or its policy did not have Policy.EasyAuthHeaders set. Call
// [StripIdentityHeaders] on h first so that nothing the client sent survives.
func (p *Principal) SetEasyAuthHeaders(h http.Header) bool {
	if p == nil || p.easyAuth == nil || h == nil {
		return false
	}
	p.easyAuth.set(h)
	return true
}

// identityHeaderPrefixes are the headers only Easy Auth (or this gateway) may set,
// compared case-insensitively with any byte other than a letter or digit read as '-'.
var identityHeaderPrefixes = []string{"x-ms-client-principal", "x-ms-token-"}

// StripIdentityHeaders deletes from h every header an upstream could take for an
// Easy Auth identity: every name starting with X-MS-CLIENT-PRINCIPAL or X-MS-TOKEN-,
// in any case and with any other separator than '-' (X_MS_CLIENT_PRINCIPAL,
// x-ms_client-principal-id, X.MS.CLIENT.PRINCIPAL, ...). Go servers canonicalise
// names but keep the separators, while CGI, PHP, WSGI and Rack map '-' and '_' —
// and some gateways every byte other than a letter or digit — to the same variable,
// so such a spelling would reach the upstream as the real header. It is the one
// strip: [Middleware.Handler] applies it to every incoming request, the callee's
// gateway to every forwarded one.
func StripIdentityHeaders(h http.Header) {
	for k := range h {
		if isIdentityHeader(k) {
			delete(h, k)
		}
	}
}

// isIdentityHeader reports whether a header named name is one that
// [StripIdentityHeaders] removes.
func isIdentityHeader(name string) bool {
	for _, p := range identityHeaderPrefixes {
		if len(name) < len(p) {
			continue
		}
		match := true
		for i := 0; i < len(p); i++ {
			if fold(name[i]) != p[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// fold lower-cases an ASCII letter and maps every byte other than a letter or a
// digit to '-'.
func fold(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return c
	}
	return '-'
}
