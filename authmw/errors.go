package authmw

import (
	"errors"
	"net/http"
)

// Reason is a stable, machine-readable code saying why a request was denied. It is
// sent in problem+json bodies and audit records; its values never change meaning.
type Reason string

// Reasons for 401 Unauthorized (no valid token).
const (
	ReasonMissingToken     Reason = "missing_token"         // no Authorization header
	ReasonMalformedHeader  Reason = "malformed_header"      // not "Bearer <token>", or several
	ReasonMalformedToken   Reason = "malformed_token"       // not a compact JWS with JSON claims
	ReasonUnsupportedAlg   Reason = "unsupported_algorithm" // alg not in Config.Algorithms
	ReasonUnknownKey       Reason = "unknown_key"           // kid not in the issuer's JWKS
	ReasonInvalidSignature Reason = "invalid_signature"
	ReasonTokenExpired     Reason = "token_expired"
	ReasonTokenNotYetValid Reason = "token_not_yet_valid"
	ReasonTokenTooOld      Reason = "token_too_old" // iat older than Policy.MaxTokenAge
	ReasonMissingClaim     Reason = "missing_claim" // exp (or another required claim) absent
	ReasonIssuerMismatch   Reason = "issuer_mismatch"
	ReasonAudienceMismatch Reason = "audience_mismatch"
	// ReasonApplicationClaimConflict: an Entra token carries appid and azp with
	// different values, or a ver that is neither 1.0 nor 2.0.
	ReasonApplicationClaimConflict Reason = "application_claim_conflict"
	// ReasonTokenLifetime: exp - iat exceeds Policy.MaxTokenLifetime.
	ReasonTokenLifetime Reason = "token_lifetime_too_long"
)

// Reasons for 403 Forbidden (valid token, caller not allowed by the policy).
const (
	ReasonApplicationNotAllowed Reason = "application_not_allowed"
	ReasonIdentityNotAllowed    Reason = "identity_not_allowed" // neither oid nor groups allowed
	ReasonTenantNotAllowed      Reason = "tenant_not_allowed"
	ReasonRoleMissing           Reason = "role_missing"
	ReasonAppOnlyRequired       Reason = "app_only_required"
	ReasonClaimMismatch         Reason = "claim_mismatch"
	ReasonAnonymousForbidden    Reason = "anonymous_forbidden" // no token and UnauthenticatedAction is Return403
)

// ReasonClientAddressNotAllowed (403): the client address is not in Policy.AllowedClientCIDRs.
const ReasonClientAddressNotAllowed Reason = "client_address_not_allowed"

// ReasonKeysUnavailable is the reason for 503: the issuer's keys are not loaded yet.
const ReasonKeysUnavailable Reason = "keys_unavailable"

// Sentinel errors; an [*Error] wraps exactly one of them, so callers can branch with errors.Is.
var (
	// ErrNoToken: the request carried no bearer token.
	ErrNoToken = errors.New("authmw: no bearer token")
	// ErrInvalidToken: the token is malformed, badly signed, expired, or for another issuer or audience.
	ErrInvalidToken = errors.New("authmw: invalid token")
	// ErrForbidden: the token is valid but the policy does not allow the caller.
	ErrForbidden = errors.New("authmw: caller not allowed")
	// ErrNotReady: the issuer's signing keys are not loaded yet; retry later.
	ErrNotReady = errors.New("authmw: signing keys not loaded")
)

// Error is a denial: a sentinel (Kind), a stable Reason and a server-side Detail.
// Detail may quote claims the attacker chose: log it, never send it to the client.
type Error struct {
	Kind   error  // ErrNoToken, ErrInvalidToken, ErrForbidden or ErrNotReady
	Reason Reason // stable code for clients and metrics
	Detail string // for the server log only
	Err    error  // underlying cause, if any
}

func (e *Error) Error() string {
	s := e.Kind.Error() + ": " + string(e.Reason)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// Status is the HTTP status for this denial: 401, 403 or 503.
func (e *Error) Status() int {
	switch e.Kind {
	case ErrForbidden:
		return http.StatusForbidden
	case ErrNotReady:
		return http.StatusServiceUnavailable
	default:
		return http.StatusUnauthorized
	}
}

func invalid(r Reason, detail string, cause error) *Error {
	return &Error{Kind: ErrInvalidToken, Reason: r, Detail: detail, Err: cause}
}

func forbidden(r Reason, detail string) *Error {
	return &Error{Kind: ErrForbidden, Reason: r, Detail: detail}
}

func notReady(detail string, cause error) *Error {
	return &Error{Kind: ErrNotReady, Reason: ReasonKeysUnavailable, Detail: detail, Err: cause}
}

// errNoToken is the (shared, immutable) denial for a request without a token.
var errNoToken = &Error{Kind: ErrNoToken, Reason: ReasonMissingToken}

// problemTypeURI is the "type" of problem+json bodies that carry a reason code:
// it points to the README's table of reason codes.
const problemTypeURI = "https://github.com/f2fauth/f2fauth/blob/main/README.md#reason-codes"

// genericDetail is the client-facing detail for each reason: fixed text, never
// anything taken from the request or the token.
var genericDetail = map[Reason]string{
	ReasonMissingToken:             "The request has no bearer token in the Authorization header.",
	ReasonMalformedHeader:          "The Authorization header is not a single \"Bearer <token>\" value.",
	ReasonMalformedToken:           "The bearer token is not a well-formed signed JWT.",
	ReasonUnsupportedAlg:           "The token is signed with an algorithm that is not accepted.",
	ReasonUnknownKey:               "The token is signed with a key the issuer does not publish.",
	ReasonInvalidSignature:         "The token signature is invalid.",
	ReasonTokenExpired:             "The token has expired.",
	ReasonTokenNotYetValid:         "The token is not valid yet.",
	ReasonTokenTooOld:              "The token was issued too long ago.",
	ReasonMissingClaim:             "The token lacks a required claim.",
	ReasonIssuerMismatch:           "The token was issued by an issuer that is not trusted.",
	ReasonAudienceMismatch:         "The token is not meant for this service (audience).",
	ReasonApplicationClaimConflict: "The token's application claims (appid, azp, ver) are inconsistent.",
	ReasonTokenLifetime:            "The token's lifetime (exp - iat) is longer than accepted.",
	ReasonApplicationNotAllowed:    "The calling application is not allowed.",
	ReasonIdentityNotAllowed:       "The calling identity is not allowed.",
	ReasonTenantNotAllowed:         "The caller's tenant is not allowed.",
	ReasonRoleMissing:              "The token lacks a required app role.",
	ReasonAppOnlyRequired:          "Only app-only (application) tokens are accepted.",
	ReasonClaimMismatch:            "A claim of the token does not match the policy.",
	ReasonAnonymousForbidden:       "Anonymous requests are not allowed.",
	ReasonKeysUnavailable:          "The issuer's signing keys are not available yet; retry later.",
	ReasonClientAddressNotAllowed:  "Requests from this network address are not allowed.",
}
