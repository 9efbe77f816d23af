package authmw

import (
	"context"
	"time"
)

// Principal is the authenticated caller, read from a verified token.
type Principal struct {
	AppID     string    // client application: the authoritative claim (docs/security.md)
	ObjectID  string    // the identity AllowedIdentities matches: oid for Entra issuers (the service principal / managed identity object ID), sub for generic issuers (never their custom oid)
	TenantID  string    // tid
	Subject   string    // sub
	Issuer    string    // iss
	Audience  []string  // aud
	Roles     []string  // roles (app roles)
	Groups    []string  // groups
	AppOnly   bool      // app-only token, by the issuer kind's rule (docs/security.md)
	KeyID     string    // kid of the key that signed the token
	Version   string    // ver: "1.0" or "2.0" for Entra tokens
	ExpiresAt time.Time // exp
	// Name is the value of the claim named by Policy.UserClaim; "" when that is not set.
	Name string
	// Metadata holds values copied from claims by Policy.ClaimMappings.
	Metadata map[string]string
	// Claims holds every claim of the token, as decoded JSON (numbers as float64).
	// Treat it as read-only. To keep the verify path fast it is decoded only when
	// the policy reads claims beyond the typed ones (Policy.BoundClaims,
	// Policy.ClaimMappings, Policy.EasyAuthHeaders); otherwise it is nil and
	// RawClaims has the same claims as JSON.
	Claims map[string]any
	// RawClaims is the verified JSON claim set (the token's payload, not the token:
	// it carries no signature and cannot be replayed). Treat it as read-only.
	RawClaims []byte

	// easyAuth holds the precomputed X-MS-CLIENT-PRINCIPAL* values when
	// Policy.EasyAuthHeaders is set.
	easyAuth *easyAuthHeaders
}

type ctxKey struct{}

// withPrincipal returns a copy of ctx carrying p.
func withPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// PrincipalFrom returns the Principal that the middleware put on ctx, if any.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(*Principal)
	return p, ok && p != nil
}
