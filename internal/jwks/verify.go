package jwks

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// MaxTokenBytes bounds the compact tokens [KeySet.VerifyCompact] and
// [KeySet.VerifySignature] accept; longer input is [ErrMalformed].
const MaxTokenBytes = 64 << 10

// VerifySignature implements [oidc.KeySet]: it parses jwt as a compact JWS
// whose "alg" is one of [Options.Algorithms] (go-jose), verifies its signature
// with the published key named by its protected "kid" header and returns the
// payload. It does not validate claims. Errors wrap [ErrMalformed],
// [ErrUnsupportedAlg], [ErrNotReady], [ErrUnknownKey] or
// [ErrInvalidSignature].
func (k *KeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := k.Parse(jwt)
	if err != nil {
		return nil, err
	}
	payload, _, err := k.Verify(ctx, jws)
	return payload, err
}

// Parse parses a compact JWS with go-jose, accepting only
// [Options.Algorithms]. It does not verify anything; pass the result to
// [KeySet.Verify]. Errors wrap [ErrUnsupportedAlg] or [ErrMalformed].
func (k *KeySet) Parse(jwt string) (*jose.JSONWebSignature, error) {
	if len(jwt) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: token longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	jws, err := jose.ParseSignedCompact(jwt, k.joseAlgs)
	if err != nil {
		if _, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return nil, fmt.Errorf("%w: %w", ErrUnsupportedAlg, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return jws, nil
}

// Verify verifies a parsed JWS (from [KeySet.Parse] or go-jose) and returns
// its payload and the kid of the key that verified it. The key lookup is
// lock-free; the signature check is go-jose's.
//
// The key is chosen only by the protected "kid" header among the keys from
// [Options.URL]; "jku", "x5u", "x5c" and embedded "jwk" headers are ignored.
// An unknown kid may trigger one refetch per [Options.UnknownKIDInterval]
// (waiting for it honours ctx); within the interval it fails at once with
// [ErrUnknownKey]. A token without kid is tried against every published key
// that fits its algorithm, without refetch (or refused, with
// [Options.RequireKID]). Critical header extensions
// ("crit") are not supported and rejected.
func (k *KeySet) Verify(ctx context.Context, jws *jose.JSONWebSignature) (payload []byte, kid string, err error) {
	if jws == nil || len(jws.Signatures) != 1 {
		return nil, "", fmt.Errorf("%w: expected exactly one signature", ErrMalformed)
	}
	sig := &jws.Signatures[0]
	if sig.Unprotected.Algorithm != "" || sig.Unprotected.KeyID != "" || sig.Unprotected.JSONWebKey != nil {
		return nil, "", fmt.Errorf("%w: alg, kid and jwk must not be in an unprotected header", ErrMalformed)
	}
	if _, ok := sig.Protected.ExtraHeaders["crit"]; ok {
		return nil, "", fmt.Errorf("%w: critical header extensions are not supported", ErrMalformed)
	}
	alg := sig.Protected.Algorithm
	info, ok := k.allowed(alg)
	if !ok {
		return nil, "", fmt.Errorf("%w: %q", ErrUnsupportedAlg, truncate(alg))
	}
	id, err := k.selectAndCheck(ctx, sig.Protected.KeyID, alg, info, func(key *key) bool {
		p, err := jws.Verify(key.pub)
		if err != nil {
			return false
		}
		payload = p
		return true
	})
	if err != nil {
		return nil, id.KID, err
	}
	return payload, id.KID, nil
}

// VerifyCompact verifies a compact JWS and returns its payload and the
// [KeyID] of the key that verified it (on error, only its KID may be set), with the same key selection and errors as
// [KeySet.Verify]. It is the lean path for callers that have the raw token:
// it decodes only "alg", "kid" and "crit" from the protected header and
// hashes the signing input exactly as received, so its cost is close to the
// bare signature check. It is stricter than go-jose: base64url must be
// canonical and unpadded, and any "crit" header is rejected.
func (k *KeySet) VerifyCompact(ctx context.Context, token string) (payload []byte, id KeyID, err error) {
	var kid string
	if len(token) > MaxTokenBytes {
		return nil, id, fmt.Errorf("%w: token longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	dot1 := strings.IndexByte(token, '.')
	if dot1 < 0 {
		return nil, id, fmt.Errorf("%w: compact JWS must have three parts", ErrMalformed)
	}
	dot2 := strings.IndexByte(token[dot1+1:], '.')
	if dot2 < 0 {
		return nil, id, fmt.Errorf("%w: compact JWS must have three parts", ErrMalformed)
	}
	dot2 += dot1 + 1
	if strings.IndexByte(token[dot2+1:], '.') >= 0 {
		return nil, id, fmt.Errorf("%w: compact JWS must have three parts", ErrMalformed)
	}
	hdr, err := strictB64.DecodeString(token[:dot1])
	if err != nil {
		return nil, id, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &h); err != nil || h == nil {
		return nil, id, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	if _, ok := h["crit"]; ok {
		return nil, id, fmt.Errorf("%w: critical header extensions are not supported", ErrMalformed)
	}
	var alg string
	if raw, ok := h["alg"]; !ok || json.Unmarshal(raw, &alg) != nil {
		return nil, id, fmt.Errorf("%w: header has no alg string", ErrMalformed)
	}
	if raw, ok := h["kid"]; ok && json.Unmarshal(raw, &kid) != nil {
		return nil, id, fmt.Errorf("%w: kid is not a string", ErrMalformed)
	}
	info, ok := k.allowed(alg)
	if !ok {
		return nil, id, fmt.Errorf("%w: %q", ErrUnsupportedAlg, truncate(alg))
	}
	sig, err := strictB64.DecodeString(token[dot2+1:])
	if err != nil {
		return nil, id, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	payload, err = strictB64.DecodeString(token[dot1+1 : dot2])
	if err != nil {
		return nil, id, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}

	var buf [sha512.Size]byte
	input := token[:dot2]
	digest := hashInput(&buf, alg, input)
	id, err = k.selectAndCheck(ctx, kid, alg, info, func(key *key) bool {
		return checkSig(key, alg, input, digest, sig)
	})
	if err != nil {
		return nil, id, err
	}
	return payload, id, nil
}

var strictB64 = base64.RawURLEncoding.Strict()

func (k *KeySet) allowed(alg string) (algInfo, bool) {
	for i := range k.algs {
		if k.algs[i].name == alg {
			return k.algs[i].info, true
		}
	}
	return algInfo{}, false
}

// selectAndCheck finds the published keys for kid (refetching within the
// unknown-kid limits), and runs check on each that fits alg until one
// succeeds. It returns the id of the key that verified (on error, only the kid).
func (k *KeySet) selectAndCheck(ctx context.Context, kid, alg string, info algInfo, check func(*key) bool) (KeyID, error) {
	m := k.keys.Load()
	if m == nil {
		return KeyID{KID: kid}, ErrNotReady
	}
	if kid == "" {
		if k.requireKID {
			return KeyID{}, fmt.Errorf("%w: token has no kid", ErrUnknownKey)
		}
		fitting := false
		for _, key := range m.all {
			if !key.fits(alg, info) {
				continue
			}
			fitting = true
			if check(key) {
				return key.id, nil
			}
		}
		if !fitting {
			return KeyID{}, fmt.Errorf("%w: token has no kid and no published key fits alg %q", ErrUnknownKey, alg)
		}
		return KeyID{}, fmt.Errorf("%w: token has no kid and no published key verifies it", ErrInvalidSignature)
	}

	keys := m.byKID[kid]
	if len(keys) == 0 {
		rerr := k.refreshUnknown(ctx)
		m = k.keys.Load()
		keys = m.byKID[kid]
		if len(keys) == 0 {
			if rerr != nil {
				return KeyID{KID: kid}, fmt.Errorf("%w: kid %q (%w)", ErrUnknownKey, truncate(kid), rerr)
			}
			return KeyID{KID: kid}, fmt.Errorf("%w: kid %q", ErrUnknownKey, truncate(kid))
		}
	}
	fitting := false
	for _, key := range keys {
		if !key.fits(alg, info) {
			continue
		}
		fitting = true
		if check(key) {
			return key.id, nil
		}
	}
	if !fitting {
		return KeyID{KID: kid}, fmt.Errorf("%w: key %q does not fit alg %q", ErrInvalidSignature, truncate(kid), alg)
	}
	return KeyID{KID: kid}, fmt.Errorf("%w: kid %q", ErrInvalidSignature, truncate(kid))
}

// hashInput hashes the signing input with the hash of alg into buf.
func hashInput(buf *[sha512.Size]byte, alg, input string) []byte {
	switch alg {
	case "RS256", "PS256", "ES256":
		d := sha256.Sum256([]byte(input))
		return append(buf[:0], d[:]...)
	case "RS384", "PS384", "ES384":
		d := sha512.Sum384([]byte(input))
		return append(buf[:0], d[:]...)
	case "RS512", "PS512", "ES512":
		d := sha512.Sum512([]byte(input))
		return append(buf[:0], d[:]...)
	}
	return nil // EdDSA signs the input itself
}

func hashOf(alg string) crypto.Hash {
	switch alg[2:] {
	case "256":
		return crypto.SHA256
	case "384":
		return crypto.SHA384
	default:
		return crypto.SHA512
	}
}

// checkSig verifies sig over digest (or the input itself, for EdDSA) with
// key. The key has already been checked to fit alg; the type switches here
// check again (defence in depth).
func checkSig(key *key, alg, input string, digest, sig []byte) bool {
	switch pub := key.pub.(type) {
	case ed25519.PublicKey:
		return alg == "EdDSA" && ed25519.Verify(pub, []byte(input), sig)
	case *rsa.PublicKey:
		switch alg[:2] {
		case "RS":
			return rsa.VerifyPKCS1v15(pub, hashOf(alg), digest, sig) == nil
		case "PS":
			return rsa.VerifyPSS(pub, hashOf(alg), digest, sig, nil) == nil
		}
	case *ecdsa.PublicKey:
		if alg[:2] != "ES" {
			return false
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(pub, digest, r, s)
	}
	return false
}
