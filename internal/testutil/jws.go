package testutil

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
)

// Compact builds a compact JWS by hand from any header and payload, signed by sign
// (nil: an empty signature). Tests use it to craft the tokens an attacker would:
// alg none, HMAC with a public key, embedded keys, tampered parts.
func Compact(header map[string]any, payload []byte, sign func(signingInput []byte) []byte) string {
	h, err := json.Marshal(header)
	if err != nil {
		panic(err)
	}
	return CompactRaw(h, payload, sign)
}

// CompactRaw is Compact with the header given as raw bytes, for headers
// encoding/json cannot produce: duplicate names, invalid UTF-8, invalid JSON.
func CompactRaw(h, payload []byte, sign func(signingInput []byte) []byte) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(payload)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(in))
	}
	return in + "." + enc.EncodeToString(sig)
}

// RS256 signs with RSASSA-PKCS1-v1_5 over SHA-256.
func RS256(key *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		sum := sha256.Sum256(in)
		s, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			panic(err)
		}
		return s
	}
}

// HS256 signs with HMAC-SHA-256 (what an attacker does with a public key as the secret).
func HS256(secret []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}
