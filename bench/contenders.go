package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	echojwt "github.com/labstack/echo-jwt/v4"
	"github.com/labstack/echo/v4"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/authmw/echomw"
	"github.com/f2fauth/f2fauth/internal/localidp"
)

// Routes served identically by every contender.
const (
	protectedPath = "/api/ExclusiveFunction"
	excludedPath  = "/api/healthz"
)

// Contender names, in table order.
const (
	nameNoAuth  = "no auth"
	nameAuthmw  = "f2fauth authmw"
	nameGoOIDC  = "go-oidc IDTokenVerifier"
	nameEchoJWT = "echo-jwt + keyfunc"
)

// contenderKeys maps the -contenders flag values to names.
var contenderKeys = map[string]string{
	"noauth":  nameNoAuth,
	"authmw":  nameAuthmw,
	"gooidc":  nameGoOIDC,
	"echojwt": nameEchoJWT,
}

// allContenders is the table order.
var allContenders = []string{nameNoAuth, nameAuthmw, nameGoOIDC, nameEchoJWT}

// benchPolicy is the one policy every authenticating contender enforces.
type benchPolicy struct {
	Issuer      string // v2 issuer of the local identity platform
	Audience    string // the callee's client ID (aud of v2 tokens)
	AllowedApps []string
	Roles       []string // any-of
}

// allows applies the application and role checks the way authmw's policy does:
// the client application (azp for v2, appid for v1) must be allowed and the
// token must carry at least one required role.
func (p benchPolicy) allows(azp, appid string, roles []string) bool {
	app := azp
	if app == "" {
		app = appid
	}
	if !slices.Contains(p.AllowedApps, app) {
		return false
	}
	for _, r := range roles {
		if slices.Contains(p.Roles, r) {
			return true
		}
	}
	return false
}

// contender is one running echo server.
type contender struct {
	name  string
	url   string // base URL, http://127.0.0.1:PORT
	srv   *http.Server
	close func()
	// handler is the server's handler, for in-process benchmarks.
	handler http.Handler
	// hitsFn (authmw only) reports allowed decisions served from the
	// verified-token cache and those that verified a signature.
	hitsFn func() (hits, misses int64)
}

// fnResponse is the small JSON body of the protected route.
type fnResponse struct {
	Message string `json:"message"`
	Caller  string `json:"caller,omitempty"`
}

// newEcho builds an echo instance with the shared routes behind mw.
func newEcho(mw ...echo.MiddlewareFunc) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Use(mw...)
	e.GET(protectedPath, func(c echo.Context) error {
		return c.JSON(http.StatusOK, fnResponse{Message: "exclusive function"})
	})
	e.GET(excludedPath, func(c echo.Context) error {
		return c.JSON(http.StatusOK, fnResponse{Message: "healthy"})
	})
	return e
}

// serve starts h on a loopback listener.
func serve(name string, h http.Handler, cleanup func()) (*contender, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	// Connection goroutines inherit the label, so a CPU profile splits by
	// server: go tool pprof -tagfocus contender=authmw ...
	go pprof.Do(context.Background(), pprof.Labels("contender", labelOf(name)), func(context.Context) { _ = srv.Serve(ln) })
	c := &contender{name: name, url: "http://" + ln.Addr().String(), srv: srv, handler: h}
	c.close = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if cleanup != nil {
			cleanup()
		}
	}
	return c, nil
}

// labelOf is the -contenders key of a contender name ("noauth", "authmw", …).
func labelOf(name string) string {
	for k, v := range contenderKeys {
		if v == name {
			return k
		}
	}
	return name
}

// startNoAuth is the baseline: the same routes without any authentication.
func startNoAuth() (*contender, error) {
	return serve(nameNoAuth, newEcho(), nil)
}

// startAuthmw is f2fauth's echo middleware, configured the way the callee is:
// by tenant ID against the (local) authority, which trusts both token versions.
func startAuthmw(ctx context.Context, p *localidp.Platform, pol benchPolicy, cacheSize int) (*contender, error) {
	var hits, misses atomic.Int64
	m, err := authmw.New(ctx, authmw.Config{
		Policy: authmw.Policy{
			TenantID:            p.TenantID(),
			AuthorityHost:       p.AuthorityURL(),
			Audiences:           []string{pol.Audience},
			AllowedApplications: pol.AllowedApps,
			RequiredRoles:       pol.Roles,
			ExcludedPaths:       []string{excludedPath},
		},
		CacheSize: cacheSize, // 0: authmw's default

		// Counts cache hits so the distinct-token scenario can prove that no
		// request was answered from the verified-token cache.
		OnDecision: func(d authmw.Decision) {
			if d.Outcome != authmw.OutcomeAllowed {
				return
			}
			if d.Cached {
				hits.Add(1)
			} else {
				misses.Add(1)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("authmw: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.WaitReady(wctx); err != nil || !m.Ready() {
		_ = m.Close()
		return nil, fmt.Errorf("authmw: keys not loaded: %v", err)
	}
	c, err := serve(nameAuthmw, newEcho(echomw.Middleware(m)), func() { _ = m.Close() })
	if err != nil {
		_ = m.Close()
		return nil, err
	}
	c.hitsFn = func() (int64, int64) { return hits.Load(), misses.Load() }
	return c, nil
}

// bearer extracts the token from an Authorization header value.
func bearer(h string) (string, bool) {
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return h[len(prefix):], true
}

// entraClaims are the claims the peers decode for the policy checks.
type entraClaims struct {
	AppID string   `json:"appid"`
	Azp   string   `json:"azp"`
	Roles []string `json:"roles"`
	jwt.RegisteredClaims
}

// startGoOIDC is what a user writes with go-oidc directly: discovery of the v2
// issuer, provider.Verifier with ClientID = audience (IDTokenVerifier checks
// signature, iss, aud, exp, nbf), then the application and role checks by hand.
func startGoOIDC(ctx context.Context, p *localidp.Platform, pol benchPolicy) (*contender, error) {
	provider, err := oidc.NewProvider(ctx, pol.Issuer)
	if err != nil {
		return nil, fmt.Errorf("go-oidc: discovery: %w", err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: pol.Audience})
	mw := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.URL.Path == excludedPath {
				return next(c)
			}
			raw, ok := bearer(r.Header.Get("Authorization"))
			if !ok {
				return echo.NewHTTPError(http.StatusUnauthorized, "missing bearer token")
			}
			tok, err := verifier.Verify(r.Context(), raw)
			if err != nil {
				return echo.NewHTTPError(http.StatusUnauthorized, "invalid token")
			}
			var cl entraClaims
			if err := tok.Claims(&cl); err != nil {
				return echo.NewHTTPError(http.StatusUnauthorized, "invalid claims")
			}
			if !pol.allows(cl.Azp, cl.AppID, cl.Roles) {
				return echo.NewHTTPError(http.StatusForbidden, "caller not allowed")
			}
			c.Set("claims", &cl)
			return next(c)
		}
	}
	return serve(nameGoOIDC, newEcho(mw), nil)
}

// startEchoJWT is labstack/echo-jwt with MicahParks/keyfunc on the v2 JWKS URL,
// a golang-jwt parser restricted to RS256 with issuer, audience and exp
// required, then the application and role checks in a follow-up middleware.
func startEchoJWT(ctx context.Context, p *localidp.Platform, pol benchPolicy) (*contender, error) {
	kctx, cancel := context.WithCancel(ctx)
	k, err := keyfunc.NewDefaultCtx(kctx, []string{p.JWKSURLV2()})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("keyfunc: %w", err)
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(pol.Issuer),
		jwt.WithAudience(pol.Audience),
		jwt.WithExpirationRequired(),
	)
	jwtmw := echojwt.WithConfig(echojwt.Config{
		Skipper: func(c echo.Context) bool { return c.Request().URL.Path == excludedPath },
		ParseTokenFunc: func(c echo.Context, auth string) (any, error) {
			cl := &entraClaims{}
			tok, err := parser.ParseWithClaims(auth, cl, k.Keyfunc)
			if err != nil {
				return nil, err
			}
			return tok, nil
		},
	})
	policy := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Request().URL.Path == excludedPath {
				return next(c)
			}
			tok, ok := c.Get("user").(*jwt.Token)
			if !ok {
				return echo.NewHTTPError(http.StatusUnauthorized, "invalid token")
			}
			cl, ok := tok.Claims.(*entraClaims)
			if !ok || !pol.allows(cl.Azp, cl.AppID, cl.Roles) {
				return echo.NewHTTPError(http.StatusForbidden, "caller not allowed")
			}
			return next(c)
		}
	}
	return serve(nameEchoJWT, newEcho(jwtmw, policy), cancel)
}

// startContender starts the named contender.
func startContender(ctx context.Context, name string, p *localidp.Platform, pol benchPolicy) (*contender, error) {
	switch name {
	case nameNoAuth:
		return startNoAuth()
	case nameAuthmw:
		return startAuthmw(ctx, p, pol, 0)
	case nameGoOIDC:
		return startGoOIDC(ctx, p, pol)
	case nameEchoJWT:
		return startEchoJWT(ctx, p, pol)
	}
	return nil, errors.New("unknown contender " + name)
}
