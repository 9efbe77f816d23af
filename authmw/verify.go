package authmw

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/f2fauth/f2fauth/internal/jwks"
)

// Verify is the core of the middleware, free of any HTTP framework: it checks
// the raw bearer token (without the "Bearer " prefix) against the issuers' keys
// and the active policy. On success it returns the caller; on denial an [*Error]
// whose Kind is ErrNoToken or ErrInvalidToken (401), ErrForbidden (403) or
// ErrNotReady (503, retry later). The returned Principal may be shared with
// other requests bearing the same token: treat it as read-only.
func (m *Middleware) Verify(ctx context.Context, raw string) (*Principal, error) {
	p, _, err := m.verify(ctx, raw, m.state.Load())
	if err != nil {
		return nil, err
	}
	return p, nil
}

// verify is Verify reporting whether the answer came from the cache, with a typed error.
func (m *Middleware) verify(ctx context.Context, raw string, st *policyState) (*Principal, bool, *Error) {
	if raw == "" {
		return nil, false, errNoToken
	}
	if len(raw) > MaxTokenBytes {
		return nil, false, invalid(ReasonMalformedToken, fmt.Sprintf("token of %d bytes exceeds %d", len(raw), MaxTokenBytes), nil)
	}
	now := m.cfg.Now()
	t0 := m.tel.verifyStart(ctx) // OpenTelemetry (telemetry.go)

	// Fast path: a token verified before, under this policy, still valid, whose
	// key is still published with the same material.
	if p := m.cache.lookup(raw, st.gen, now); p != nil {
		m.tel.verified(ctx, t0, true, nil) // OpenTelemetry
		return p, true, nil
	}

	p, deadline, keys, key, err := m.verifySlow(ctx, raw, st, now)
	m.tel.verified(ctx, t0, false, err) // OpenTelemetry
	if err != nil {
		return nil, false, err
	}
	m.cache.put(raw, &cacheEntry{p: p, deadline: deadline, key: key, keys: keys, gen: st.gen})
	return p, false, nil
}

func (m *Middleware) verifySlow(ctx context.Context, raw string, st *policyState, now time.Time) (*Principal, time.Time, *jwks.KeySet, jwks.KeyID, *Error) {
	var zero time.Time
	var nokey jwks.KeyID
	// Split the compact JWS; the key set checks the header and signature.
	dot1 := strings.IndexByte(raw, '.')
	if dot1 <= 0 {
		return nil, zero, nil, nokey, invalid(ReasonMalformedToken, "not a compact JWS (header.payload.signature)", nil)
	}
	dot2 := strings.IndexByte(raw[dot1+1:], '.') + dot1 + 1
	if dot2 <= dot1 || strings.IndexByte(raw[dot2+1:], '.') >= 0 {
		return nil, zero, nil, nokey, invalid(ReasonMalformedToken, "not a compact JWS (header.payload.signature)", nil)
	}

	// Decode the claims once, before the signature check, to route by iss. They
	// are the attacker's words until the signature is verified below: nothing but
	// the routing uses them before that.
	payload, err := strictB64.DecodeString(raw[dot1+1 : dot2])
	if err != nil {
		return nil, zero, nil, nokey, invalid(ReasonMalformedToken, "payload is not base64url", nil)
	}
	if i := bytes.IndexFunc(payload, func(r rune) bool { return r != ' ' && r != '\t' && r != '\r' && r != '\n' }); i < 0 || payload[i] != '{' {
		return nil, zero, nil, nokey, invalid(ReasonMalformedToken, "claims are not a JSON object", nil)
	}
	var c tokenClaims
	if err := decodeClaims(payload, &c); err != nil {
		return nil, zero, nil, nokey, invalid(ReasonMalformedToken, "claims are not a JSON object of the expected types", nil)
	}
	rt := m.routes.Load()
	r := rt.byIss[c.Issuer]
	if r == nil {
		if rt.pending > 0 {
			return nil, zero, nil, nokey, notReady("issuer discovery has not completed", nil)
		}
		return nil, zero, nil, nokey, invalid(ReasonIssuerMismatch, fmt.Sprintf("iss %q is not a trusted issuer", truncate(c.Issuer)), nil)
	}
	if !r.keys.Ready() {
		return nil, zero, nil, nokey, notReady("signing keys of "+r.issuer+" not loaded yet", nil)
	}
	verified, key, err := r.keys.VerifyCompact(ctx, raw)
	kid := key.KID
	if err != nil {
		if dot2 == len(raw)-1 && errors.Is(err, jwks.ErrInvalidSignature) {
			return nil, zero, nil, nokey, invalid(ReasonMalformedToken, "empty signature", err)
		}
		return nil, zero, nil, nokey, keyError(err, kid)
	}
	if !bytes.Equal(verified, payload) {
		// Cannot happen (Verify returns the payload it checked); fail closed.
		return nil, zero, nil, nokey, invalid(ReasonInvalidSignature, "verified payload differs", nil)
	}

	skew := st.cp.Policy.ClockSkew
	if c.Expiry == 0 {
		return nil, zero, nil, nokey, invalid(ReasonMissingClaim, "exp is required", nil)
	}
	exp := c.Expiry.time()
	if !now.Before(exp.Add(skew)) {
		return nil, zero, nil, nokey, invalid(ReasonTokenExpired, fmt.Sprintf("expired at %s (skew %s)", exp.UTC().Format(time.RFC3339), skew), nil)
	}
	if c.NotBefore != 0 && now.Add(skew).Before(c.NotBefore.time()) {
		return nil, zero, nil, nokey, invalid(ReasonTokenNotYetValid, fmt.Sprintf("nbf %s (skew %s)", c.NotBefore.time().UTC().Format(time.RFC3339), skew), nil)
	}
	deadline := exp.Add(skew)
	if maxAge := st.cp.Policy.MaxTokenAge; maxAge > 0 {
		if c.IssuedAt == 0 {
			return nil, zero, nil, nokey, invalid(ReasonMissingClaim, "iat is required by Policy.MaxTokenAge", nil)
		}
		oldest := c.IssuedAt.time().Add(maxAge + skew)
		if !now.Before(oldest) {
			return nil, zero, nil, nokey, invalid(ReasonTokenTooOld, fmt.Sprintf("issued at %s, older than %s", c.IssuedAt.time().UTC().Format(time.RFC3339), maxAge), nil)
		}
		if oldest.Before(deadline) {
			deadline = oldest
		}
	}
	if !st.cp.audienceAllowed(c.Audience) {
		return nil, zero, nil, nokey, invalid(ReasonAudienceMismatch, fmt.Sprintf("aud %q not in Policy.Audiences", truncateList(c.Audience)), nil)
	}
	if st.needsClaims {
		if err := json.Unmarshal(payload, &c.raw); err != nil {
			return nil, zero, nil, nokey, invalid(ReasonMalformedToken, "claims are not a JSON object", err)
		}
	}
	if e := st.cp.authorize(&c); e != nil {
		return nil, zero, nil, nokey, e
	}

	p := &Principal{
		AppID:     c.clientApp(),
		ObjectID:  c.ObjectID,
		TenantID:  c.TenantID,
		Subject:   c.Subject,
		Issuer:    c.Issuer,
		Audience:  c.Audience,
		Roles:     c.Roles,
		Groups:    c.Groups,
		AppOnly:   c.appOnly(),
		KeyID:     kid,
		Version:   c.Version,
		ExpiresAt: exp,
		Claims:    c.raw,
		RawClaims: payload,
	}
	if len(st.cp.Policy.ClaimMappings) > 0 {
		p.Metadata = make(map[string]string, len(st.cp.Policy.ClaimMappings))
		for key, claim := range st.cp.Policy.ClaimMappings {
			if v, ok := c.raw[claim]; ok {
				p.Metadata[key] = claimString(v)
			}
		}
	}
	if st.cp.Policy.EasyAuthHeaders {
		p.easyAuth = buildEasyAuth(payload, &c)
	}
	return p, deadline, r.keys, key, nil
}

var strictB64 = base64.RawURLEncoding.Strict()

// keyError maps a key-set error to a denial.
func keyError(err error, kid string) *Error {
	d := "kid " + truncate(kid)
	switch {
	case errors.Is(err, jwks.ErrNotReady):
		return notReady("signing keys not loaded yet", err)
	case errors.Is(err, jwks.ErrUnknownKey):
		return invalid(ReasonUnknownKey, d+" is not published by the issuer", err)
	case errors.Is(err, jwks.ErrUnsupportedAlg):
		return invalid(ReasonUnsupportedAlg, d, err)
	case errors.Is(err, jwks.ErrMalformed):
		return invalid(ReasonMalformedToken, d, err)
	default:
		return invalid(ReasonInvalidSignature, d, err)
	}
}

// truncate bounds attacker-chosen strings quoted in server-side details.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func truncateList(l []string) string {
	return truncate(strings.Join(l, ","))
}

// claimString renders a claim value as a string: strings as is, others as JSON.
func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case json.Number:
		return x.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
