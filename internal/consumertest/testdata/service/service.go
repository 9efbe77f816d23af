// Package service is a consumer's service: an authmw-protected net/http
// handler that calls an upstream with a managed-identity token from tokencache.
package service

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/tokencache"
)

// NewHandler protects a handler that greets the calling application.
func NewHandler(ctx context.Context, policy authmw.Policy) (http.Handler, func(), error) {
	m, err := authmw.New(ctx, authmw.Config{Policy: policy})
	if err != nil {
		return nil, nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.WaitReady(wctx); err != nil {
		m.Close()
		return nil, nil, err
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := authmw.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello %s", p.AppID)
	}))
	return h, func() { m.Close() }, nil
}

// Client calls upstreams with the service's managed-identity token for scope.
type Client struct {
	cache *tokencache.Cache
	http  *http.Client
}

// NewClient uses the managed identity the environment describes
// (IDENTITY_ENDPOINT and IDENTITY_HEADER on App Service).
func NewClient(scope string) (*Client, error) {
	cred, err := tokencache.NewManagedIdentityCredential("")
	if err != nil {
		return nil, err
	}
	cache, err := tokencache.New(cred, nil)
	if err != nil {
		return nil, err
	}
	return &Client{cache: cache, http: &http.Client{Timeout: 10 * time.Second, Transport: cache.Transport(scope, nil)}}, nil
}

// Get returns the status and body of GET url.
func (c *Client) Get(url string) (int, string, error) {
	res, err := c.http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, string(b), err
}

// Close stops the token cache.
func (c *Client) Close() error { return c.cache.Close() }
