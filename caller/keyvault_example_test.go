package caller_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"

	"github.com/f2fauth/f2fauth/caller"
	"github.com/f2fauth/f2fauth/internal/localidp"
	"github.com/f2fauth/f2fauth/internal/localvault"
	"github.com/f2fauth/f2fauth/tokencache"
)

// One token cache serves the callee and Key Vault: the secret is read with the real
// azsecrets client and managed-identity credential against the local vault, and a
// rotated secret is seen on the next read.
func ExampleNewSecretReader() {
	ctx := context.Background()
	p, err := localidp.Start(localidp.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	id := localidp.Identity{Name: "example-reader", ClientID: "e0000000-0000-4000-8000-00000000e0e0", ObjectID: "e1111111-1111-4111-8111-11111111e1e1"}
	m, err := p.AddIdentity(id)
	if err != nil {
		log.Fatal(err)
	}
	vault, err := localvault.Start(ctx, p, localvault.Options{Readers: []string{id.ObjectID}})
	if err != nil {
		log.Fatal(err)
	}
	v1, _ := vault.SetSecret("callee-api-key", "first")
	os.Setenv("IDENTITY_ENDPOINT", m.Endpoint())
	os.Setenv("IDENTITY_HEADER", m.Header())
	defer os.Unsetenv("IDENTITY_ENDPOINT")
	defer os.Unsetenv("IDENTITY_HEADER")

	cred, err := tokencache.NewManagedIdentityCredential(id.ClientID)
	if err != nil {
		log.Fatal(err)
	}
	cache, err := tokencache.New(cred, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	u, _ := url.Parse(vault.URL())
	base := http.DefaultTransport.(*http.Transport).Clone()
	r, err := caller.NewSecretReader(caller.KeyVaultConfig{URL: u, Secret: "callee-api-key", RootCAs: vault.CertPool()}, cache, base, 0)
	if err != nil {
		log.Fatal(err)
	}
	value, rep := r.Read(ctx)
	fmt.Println(rep.Status, rep.Version == v1, value, value.Reveal() == "first") // the value prints as REDACTED
	v2, _ := vault.SetSecret("callee-api-key", "second")
	_, rep = r.Read(ctx)
	fmt.Println(rep.Status, rep.Version == v2)
	fmt.Println("vault tokens issued:", m.IssuedFor(localvault.Resource))
	// Output:
	// 200 true REDACTED true
	// 200 true
	// vault tokens issued: 1
}
