package tokencache

import (
	"errors"
	"fmt"
)

// Errors a caller branches on with errors.Is. The detail (which scope, what the
// credential said, how long the caller waited) is in the error's text, which is
// redacted and kept to one bounded line.
var (
	// ErrNoToken answers "could the cache get a token?" with no: every error
	// GetToken returns wraps it, and so does every error Transport returns
	// because it had no token to send. The cause is in the text: the credential
	// failed or panicked, returned an unusable token or one expiring within
	// Options.SafetyMargin, did not answer within Options.Timeout, the caller's
	// context ended, no scope was asked for, or the cache is closed. A credential
	// failure also wraps the credential's own error (errors.As reaches azidentity's
	// error types), and an ended context the context's error.
	ErrNoToken = errors.New("tokencache: no token")

	// ErrInsecureTransport is returned by the Transport for a request it will
	// not send the token with: plain HTTP to a host that is not loopback, or
	// a redirect hop to another origin than the first request's.
	ErrInsecureTransport = errors.New("tokencache: refusing to send the bearer token (use https; plain http only to loopback; redirects only within the origin)")

	// ErrInvalidConfig is wrapped by every error of New (a nil credential, an
	// invalid Options field), NewCredential, NewManagedIdentityCredential and
	// ParseCredentialKind (an unknown credential kind, a development chain none of
	// whose links could be built): fix the configuration the text names.
	ErrInvalidConfig = errors.New("tokencache: invalid configuration")
)

// Causes of ErrNoToken, kept in the error text (and told apart by this package's
// tests). The exported errors wrap them.
var (
	// errClosed: GetToken on a closed cache.
	errClosed = fmt.Errorf("%w: the cache is closed", ErrNoToken)
	// errNoScopes: GetToken without a scope.
	errNoScopes = fmt.Errorf("%w: at least one scope is required", ErrNoToken)
	// errAbandonedOnClose: Close ended a credential call that ignored its context.
	errAbandonedOnClose = errors.New("the cache was closed during the credential call")
	// errTimeout: a caller waited Options.Timeout, or the credential call outlived it.
	errTimeout = errors.New("timed out waiting for the credential")
	// errCredentialPanic: the credential panicked; the panic is recovered so a
	// background refresh cannot crash the process.
	errCredentialPanic = errors.New("the credential panicked")
	// errTokenTooShortLived: the credential returned a token that already expires
	// within the safety margin.
	errTokenTooShortLived = errors.New("the credential returned a token expiring within the safety margin")
	// errClaimsRateLimited: a claims value (a resource's claims challenge) not
	// seen before, when another new claims value for the same scopes was fetched
	// less than Options.InvalidateInterval ago: a resource asking for new claims
	// on every request would otherwise make every request an identity-endpoint call.
	errClaimsRateLimited = fmt.Errorf("%w: new claims challenges for this scope arrive faster than Options.InvalidateInterval; check the resource that issues them", ErrNoToken)
	// errTooManyEntries: a new token request (scopes, tenant, claims, CAE) when
	// the cache already holds Options.MaxEntries: challenges naming a new tenant
	// on every request must not grow the cache without bound. Unused entries are
	// evicted after an hour.
	errTooManyEntries = fmt.Errorf("%w: too many distinct token requests cached; check what varies the tenant, claims or scopes of each request", ErrNoToken)
	// errNilCredential: New without a credential.
	errNilCredential = fmt.Errorf("%w: the credential is nil", ErrInvalidConfig)
)
