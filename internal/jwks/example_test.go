package jwks_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/f2fauth/f2fauth/internal/jwks"
)

// ExampleNew starts a key set against a JWKS endpoint, waits for the first
// load and verifies a token signed by the issuer.
func ExampleNew() {
	// A stand-in issuer: one RSA key, published without "alg" like Entra ID.
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwk := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "key-1", Use: "sig"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	}))
	defer srv.Close()

	ks, err := jwks.New(context.Background(), jwks.Options{URL: srv.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ks.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ks.WaitReady(ctx); err != nil {
		fmt.Println(err)
		return
	}

	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: priv},
		(&jose.SignerOptions{}).WithHeader("kid", "key-1"))
	obj, _ := signer.Sign([]byte(`{"sub":"example"}`))
	token, _ := obj.CompactSerialize()

	payload, err := ks.VerifySignature(ctx, token)
	fmt.Println(string(payload), err)

	// A token naming a key the issuer never published is refused.
	forger, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: priv},
		(&jose.SignerOptions{}).WithHeader("kid", "forged"))
	obj, _ = forger.Sign([]byte(`{"sub":"admin"}`))
	forged, _ := obj.CompactSerialize()
	_, err = ks.VerifySignature(ctx, forged)
	fmt.Println(errors.Is(err, jwks.ErrUnknownKey))
	// Output:
	// {"sub":"example"} <nil>
	// true
}

// ExampleNew_invalidOptions shows that every configuration problem is
// reported, each naming its field.
func ExampleNew_invalidOptions() {
	_, err := jwks.New(context.Background(), jwks.Options{
		URL:        "ftp://idp.example/keys",
		Algorithms: []string{"RS256", "HS256"},
	})
	fmt.Println(err)
	// Output:
	// jwks: Options.URL: insecure URL: use https (plain http is allowed only to 127.0.0.0/8, ::1 and localhost): scheme "ftp"
	// jwks: Options.Algorithms: "HS256" is not allowed: only asymmetric signature algorithms (RS256, PS256, ES256, …) are accepted
}
