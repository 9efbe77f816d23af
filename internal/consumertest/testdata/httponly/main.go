// Command httponly is a net/http-only consumer of authmw and tokencache: the
// smallest program a service would write. Its module must not need echo.
package main

import (
	"context"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/tokencache"
)

func main() {
	ctx := context.Background()
	m, err := authmw.NewFromEnv(ctx, os.LookupEnv, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	cred, err := tokencache.NewManagedIdentityCredential(os.Getenv("AZURE_CLIENT_ID"))
	if err != nil {
		log.Fatal(err)
	}
	cache, err := tokencache.New(cred, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	upstream := &http.Client{Timeout: 10 * time.Second, Transport: cache.Transport(os.Getenv("UPSTREAM_SCOPE"), nil)}

	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := upstream.Get(os.Getenv("UPSTREAM_URL"))
		if err != nil {
			http.Error(w, "upstream failed", http.StatusBadGateway)
			return
		}
		res.Body.Close()
		w.WriteHeader(res.StatusCode)
	}))
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
