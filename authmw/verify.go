package authmw

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/f2fauth/f2fauth/internal/jwks"
	"github.com/f2fauth/f2fauth/internal/netrule"
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
	if len(raw) > maxTokenBytes {
		return nil, false, invalid(ReasonMalformedToken, fmt.Sprintf("token of %d bytes exceeds %d", len(raw), maxTokenBytes), nil)
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
	// Route by iss: the token is parsed and its claims decoded strictly (the
	// one decoder) before the signature check, but nothing except the routing
	// uses them until the signature over these exact bytes is verified below.
	tok, err := jwks.ParseCompact(raw)
	if err != nil {
		return nil, zero, nil, nokey, invalid(ReasonMalformedToken, err.Error(), nil)
	}
	payload := tok.Payload
	var c tokenClaims
	if err := decodeClaims(payload, &c); err != nil {
		return nil, zero, nil, nokey, invalid(ReasonMalformedToken, err.Error(), nil)
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
	key, err := r.keys.Verify(ctx, tok)
	kid := key.KID
	if err != nil {
		return nil, zero, nil, nokey, keyError(err, kid)
	}

	// From here on the claims are the issuer's words.
	if r.entra && !strings.EqualFold(c.TenantID, issuerTenant(r.issuer)) {
		return nil, zero, nil, nokey, invalid(ReasonIssuerMismatch, fmt.Sprintf("tid %q is not the tenant of issuer %s", truncate(c.TenantID), r.issuer), nil)
	}
	c.entra = r.entra
	if d := c.checkApplication(); d != "" {
		return nil, zero, nil, nokey, invalid(ReasonApplicationClaimConflict, d, nil)
	}
	deadline, e := checkTimes(&c, &st.cp.Policy, now)
	if e != nil {
		return nil, zero, nil, nokey, e
	}
	if !st.cp.audienceAllowed(c.Audience) {
		return nil, zero, nil, nokey, invalid(ReasonAudienceMismatch, fmt.Sprintf("aud %q not in Policy.Audiences", truncateList(c.Audience)), nil)
	}
	if st.needsClaims {
		if c.raw, err = members(payload); err != nil {
			return nil, zero, nil, nokey, invalid(ReasonMalformedToken, err.Error(), nil)
		}
	}
	if e := st.cp.authorize(&c); e != nil {
		return nil, zero, nil, nokey, e
	}

	p := &Principal{
		AppID:     c.application(st.cp.Policy.ApplicationClaim),
		ObjectID:  c.identity(),
		TenantID:  c.TenantID,
		Subject:   c.Subject,
		Issuer:    c.Issuer,
		Audience:  c.Audience,
		Roles:     c.Roles,
		Groups:    c.Groups,
		AppOnly:   c.appOnly(st.cp.Policy.ApplicationClaim),
		KeyID:     kid,
		Version:   c.Version,
		ExpiresAt: c.Expiry.time(),
		RawClaims: payload,
	}
	if len(c.raw) > 0 {
		p.Claims = make(map[string]any, len(c.raw))
		for _, mb := range c.raw {
			var x any
			json.Unmarshal(mb.value, &x) //nolint:errcheck // validated by decodeClaims
			p.Claims[mb.name] = x
		}
	}
	if len(st.cp.Policy.ClaimMappings) > 0 {
		p.Metadata = make(map[string]string, len(st.cp.Policy.ClaimMappings))
		for key, claim := range st.cp.Policy.ClaimMappings {
			if v, ok := c.claim(claim); ok {
				p.Metadata[key] = claimString(v)
			}
		}
	}
	if e := setPrincipalName(p, &st.cp.Policy, &c); e != nil {
		return nil, zero, nil, nokey, e
	}
	if st.cp.Policy.EasyAuthHeaders {
		p.easyAuth = buildEasyAuth(&c, p.AppID, p.Name)
	}
	return p, deadline, r.keys, key, nil
}

// checkTimes applies exp, nbf, iat and the lifetime and age limits, and
// returns until when the verified token may be answered from the cache.
// NumericDates are already known to lie between 2000 and 9999.
func checkTimes(c *tokenClaims, p *Policy, now time.Time) (time.Time, *Error) {
	var zero time.Time
	skew := p.ClockSkew
	if c.Expiry == 0 {
		return zero, invalid(ReasonMissingClaim, "exp is required", nil)
	}
	if c.IssuedAt == 0 {
		return zero, invalid(ReasonMissingClaim, "iat is required (Policy.MaxTokenLifetime)", nil)
	}
	exp, iat := c.Expiry.time(), c.IssuedAt.time()
	switch {
	case !now.Before(exp.Add(skew)):
		return zero, invalid(ReasonTokenExpired, fmt.Sprintf("expired at %s (skew %s)", exp.UTC().Format(time.RFC3339), skew), nil)
	case c.NotBefore != 0 && now.Add(skew).Before(c.NotBefore.time()):
		return zero, invalid(ReasonTokenNotYetValid, fmt.Sprintf("nbf %s (skew %s)", c.NotBefore.time().UTC().Format(time.RFC3339), skew), nil)
	case now.Add(skew).Before(iat):
		return zero, invalid(ReasonTokenNotYetValid, fmt.Sprintf("iat %s is in the future (skew %s)", iat.UTC().Format(time.RFC3339), skew), nil)
	case exp.Sub(iat) > p.MaxTokenLifetime:
		return zero, invalid(ReasonTokenLifetime, fmt.Sprintf("lifetime exp - iat = %s exceeds Policy.MaxTokenLifetime %s", exp.Sub(iat), p.MaxTokenLifetime), nil)
	}
	deadline := exp.Add(skew)
	if maxAge := p.MaxTokenAge; maxAge > 0 {
		oldest := iat.Add(maxAge + skew)
		if !now.Before(oldest) {
			return zero, invalid(ReasonTokenTooOld, fmt.Sprintf("issued at %s, older than %s", iat.UTC().Format(time.RFC3339), maxAge), nil)
		}
		if oldest.Before(deadline) {
			deadline = oldest
		}
	}
	return deadline, nil
}

// issuerTenant is the tenant of an Entra issuer: the first path segment of
// https://login.microsoftonline.com/{tid}/v2.0 and https://sts.windows.net/{tid}/.
func issuerTenant(iss string) string {
	_, rest, _ := strings.Cut(iss, "://")
	_, path, _ := strings.Cut(rest, "/")
	t, _, _ := strings.Cut(path, "/")
	return t
}

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
func truncate(s string) string { return netrule.Excerpt([]byte(s)) }

func truncateList(l []string) string {
	return truncate(strings.Join(l, ","))
}

// claimString renders a claim's JSON text as a string: strings decoded, null
// empty, others as their exact JSON text.
func claimString(v jsontext.Value) string {
	switch v.Kind() {
	case '"':
		var s string
		json.Unmarshal(v, &s) //nolint:errcheck // validated by decodeClaims
		return s
	case 'n':
		return ""
	}
	return string(v)
}
