package tokencache

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these (and, for
// credential failures, the credential's own error), so callers can branch with
// errors.Is.
var (
	// ErrClosed is returned by every operation on a Cache after Close.
	ErrClosed = errors.New("tokencache: cache is closed")

	// ErrNilCredential is returned by New when the credential is nil.
	ErrNilCredential = errors.New("tokencache: credential is nil")

	// ErrInvalidOptions is wrapped by New for every invalid Options field.
	ErrInvalidOptions = errors.New("tokencache: invalid options")

	// ErrNoScopes is returned by GetToken when TokenRequestOptions.Scopes is empty.
	ErrNoScopes = errors.New("tokencache: at least one scope is required")

	// ErrCredential wraps a failure of the underlying credential (the
	// credential's error is wrapped as well).
	ErrCredential = errors.New("tokencache: credential failed")

	// ErrCredentialPanic is wrapped when the credential panicked; the panic is
	// recovered so a background refresh cannot crash the process.
	ErrCredentialPanic = errors.New("tokencache: credential panicked")

	// ErrTokenTooShortLived is returned when the credential hands back a token
	// that already expires within the safety margin.
	ErrTokenTooShortLived = errors.New("tokencache: credential returned a token expiring within the safety margin")

	// ErrTimeout is returned when a caller waited Options.Timeout for a token
	// fetch that did not finish.
	ErrTimeout = errors.New("tokencache: timed out waiting for the credential")

	// ErrInsecureTransport is returned by the Transport for a request it will
	// not send the token with: plain HTTP to a host that is not loopback, or
	// a redirect hop to another origin than the first request's.
	ErrInsecureTransport = errors.New("tokencache: refusing to send the bearer token (use https; plain http only to loopback; redirects only within the origin)")

	// ErrClaimsRateLimited is returned by GetToken for a claims value (a
	// resource's claims challenge) not seen before when another new claims
	// value for the same scopes was fetched less than Options.InvalidateInterval
	// ago: a resource asking for new claims on every request would otherwise
	// make every request an identity-endpoint call.
	ErrClaimsRateLimited = errors.New("tokencache: new claims challenges for this scope arrive faster than Options.InvalidateInterval; check the resource that issues them")

	// ErrTooManyEntries is returned by GetToken for a new token request
	// (scopes, tenant, claims, CAE) when the cache already holds MaxEntries:
	// a resource's challenges naming a new tenant on every request must not
	// grow the cache without bound. Unused entries are evicted after an hour.
	ErrTooManyEntries = errors.New("tokencache: too many distinct token requests cached; check what varies the tenant, claims or scopes of each request")

	// ErrUnknownCredentialKind is returned by NewCredential for an unknown kind.
	ErrUnknownCredentialKind = errors.New("tokencache: unknown credential kind")

	// ErrNoCredentialAvailable is returned by NewCredential when no link of the
	// development chain could be constructed.
	ErrNoCredentialAvailable = errors.New("tokencache: no credential could be constructed")
)
