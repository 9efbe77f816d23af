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
	"fmt"
	"math/big"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxTokenBytes bounds the compact tokens [ParseCompact] accepts;
// longer input is [ErrMalformed].
const MaxTokenBytes = 64 << 10

// Token is a parsed compact JWS. Nothing in it is verified: pass it to
// [KeySet.Verify]. Callers may read the payload before that only to decide
// which key set to verify with (for example by "iss").
type Token struct {
	// KID and Alg are the protected header's "kid" and "alg".
	KID, Alg string
	// Payload is the base64url-decoded payload exactly as signed; the caller
	// decodes it once, strictly.
	Payload []byte

	input string // the signing input: header "." payload, as received
	sig   []byte
}

// header is the protected JOSE header, decoded strictly: invalid JSON,
// invalid UTF-8 and duplicate member names are errors (RFC 7515 §4).
type header struct {
	Alg  string         `json:"alg"`
	KID  string         `json:"kid"`
	Crit jsontext.Value `json:"crit"`
}

// ParseCompact parses a compact JWS: three parts of canonical unpadded
// base64url and a protected header that is a strict
// JSON object with string "alg" and "kid" and no "crit". Errors wrap
// [ErrMalformed].
func ParseCompact(token string) (*Token, error) {
	if len(token) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: token longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	h64, rest, ok1 := strings.Cut(token, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(s64, '.') >= 0 {
		return nil, fmt.Errorf("%w: compact JWS must have three parts", ErrMalformed)
	}
	hdr, err := strictB64.DecodeString(h64)
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var h header
	if err := json.Unmarshal(hdr, &h); err != nil || jsontext.Value(hdr).Kind() != '{' {
		return nil, fmt.Errorf("%w: header is not a strict JSON object (no duplicate members, valid UTF-8) with string alg and kid", ErrMalformed)
	}
	if h.Crit != nil {
		return nil, fmt.Errorf("%w: critical header extensions are not supported", ErrMalformed)
	}
	t := &Token{KID: h.KID, Alg: h.Alg, input: token[:len(h64)+1+len(p64)]}
	if t.sig, err = strictB64.DecodeString(s64); err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	if t.Payload, err = strictB64.DecodeString(p64); err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	return t, nil
}

// VerifySignature implements [oidc.KeySet]: [ParseCompact] then
// [KeySet.Verify]; it returns the verified payload. It does not validate
// claims.
func (k *KeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	t, err := ParseCompact(jwt)
	if err != nil {
		return nil, err
	}
	if _, err := k.Verify(ctx, t); err != nil {
		return nil, err
	}
	return t.Payload, nil
}

// Verify is the one signature check: it accepts t only if its "alg" is one
// of [Options.Algorithms] and a published key selected by its "kid" verifies
// the signature over the signing input exactly as received. It returns the
// [KeyID] of the key that verified (on error, at most the token's kid), which a
// cache of verified tokens checks with [KeySet.Publishes] before each reuse.
//
// The key is chosen only by the protected "kid" among the keys from
// [Options.URL]; "jku", "x5u", "x5c" and embedded "jwk" headers are ignored.
// An unknown kid may trigger one refetch per [Options.UnknownKIDInterval]
// (waiting for it honours ctx); within the interval it fails at once with
// [ErrUnknownKey]. A token without kid is refused before any signature work
// with [Options.RequireKID]; otherwise it is tried against every published key
// that fits its algorithm, without refetch. Errors wrap [ErrUnsupportedAlg],
// [ErrMalformed] (empty signature), [ErrNotReady], [ErrUnknownKey] or
// [ErrInvalidSignature].
func (k *KeySet) Verify(ctx context.Context, t *Token) (KeyID, error) {
	info, ok := k.allowed(t.Alg)
	if !ok {
		return KeyID{KID: t.KID}, fmt.Errorf("%w: %q", ErrUnsupportedAlg, truncate(t.Alg))
	}
	if len(t.sig) == 0 {
		return KeyID{KID: t.KID}, fmt.Errorf("%w: empty signature", ErrMalformed)
	}
	if t.KID == "" && k.requireKID {
		return KeyID{}, fmt.Errorf("%w: token has no kid", ErrUnknownKey)
	}
	var buf [sha512.Size]byte
	digest := hashInput(&buf, t.Alg, t.input)
	return k.selectAndCheck(ctx, t.KID, t.Alg, info, func(key *key) bool {
		return checkSig(key, t.Alg, t.input, digest, t.sig)
	})
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
