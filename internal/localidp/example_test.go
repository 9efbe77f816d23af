package localidp_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/f2fauth/f2fauth/internal/localidp"
)

// The real azidentity credential gets an Entra-shaped token from a local
// managed-identity endpoint; a child process would get m.Env() instead.
func ExamplePlatform_AddIdentity() {
	p, err := localidp.Start(localidp.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	m, err := p.AddIdentity(localidp.Identity{
		Name:     "registered-caller",
		ClientID: "11111111-1111-4111-8111-111111111111",
		ObjectID: "22222222-2222-4222-8222-222222222222",
		AppRoles: map[string][]string{"api://example-callee": {"Callee.Invoke"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	os.Setenv("IDENTITY_ENDPOINT", m.Endpoint())
	os.Setenv("IDENTITY_HEADER", m.Header())
	defer os.Unsetenv("IDENTITY_ENDPOINT")
	defer os.Unsetenv("IDENTITY_HEADER")

	cred, err := azidentity.NewManagedIdentityCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"api://example-callee/.default"}})
	if err != nil {
		log.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.Token, ".")[1])
	var c struct {
		Aud   string   `json:"aud"`
		AppID string   `json:"appid"`
		Idtyp string   `json:"idtyp"`
		Roles []string `json:"roles"`
		Ver   string   `json:"ver"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Aud, c.AppID, c.Idtyp, c.Roles, c.Ver)
	fmt.Println("issuer is v1:", strings.Contains(string(raw), p.IssuerV1()))
	fmt.Println("endpoint requests:", m.Requests())
	// Output:
	// api://example-callee 11111111-1111-4111-8111-111111111111 app [Callee.Invoke] 1.0
	// issuer is v1: true
	// endpoint requests: 1
}

// A callee verifies v2 tokens with go-oidc's ordinary discovery.
func ExamplePlatform_Mint() {
	p, err := localidp.Start(localidp.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	caller := localidp.Identity{ClientID: "11111111-1111-4111-8111-111111111111", ObjectID: "22222222-2222-4222-8222-222222222222"}
	tok, err := p.Mint(p.AccessTokenClaims(caller, "api://callee", 2))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, p.IssuerV2())
	if err != nil {
		log.Fatal(err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: "api://callee"}).Verify(ctx, tok)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified; sub =", idt.Subject)
	// Output: verified; sub = 22222222-2222-4222-8222-222222222222
}

// Key rollover and emergency removal, as a verifier test would drive them.
func ExamplePlatform_RotateKey() {
	p, err := localidp.Start(localidp.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	old := p.CurrentKID()
	cur := p.RotateKey()
	fmt.Println("published after rollover:", len(p.PublishedKIDs()))
	p.RemoveKey(old)
	fmt.Println("published after removal:", len(p.PublishedKIDs()), p.PublishedKIDs()[0] == cur)
	// Output:
	// published after rollover: 2
	// published after removal: 1 true
}
