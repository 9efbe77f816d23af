package localvault_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"time"

	"github.com/f2fauth/f2fauth/internal/localidp"
	"github.com/f2fauth/f2fauth/internal/localvault"
)

// A local vault answers a request without a token with Key Vault's bearer challenge.
func ExampleStart() {
	p, err := localidp.Start(localidp.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	vault, err := localvault.Start(context.Background(), p, localvault.Options{Name: "kv-example"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := vault.SetSecret("db-password", "hunter2"); err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsTrusting(vault)}}
	resp, err := client.Get(vault.URL() + "secrets/db-password?api-version=" + localvault.APIVersion)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate") != "")
	fmt.Println(string(body))
	// Output:
	// 401 true
	// {"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}
}

func tlsTrusting(v *localvault.Vault) *tls.Config { return &tls.Config{RootCAs: v.CertPool()} }
