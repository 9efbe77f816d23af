package authmw

import (
	"github.com/labstack/echo/v4"
)

// echoPrincipalKey is the echo.Context key under which Echo also stores the Principal.
const echoPrincipalKey = "authmw.principal"

// Echo returns native echo middleware over the same core as [Middleware.Handler].
//
// On success the [Principal] is put on the request's context (so [PrincipalFrom]
// works in echo handlers too) and is available through [EchoPrincipal].
//
// On denial the middleware writes the response itself (status,
// WWW-Authenticate / Retry-After, application/problem+json body, exactly as
// Handler does) and then returns an *echo.HTTPError with the same status whose
// Internal error is the [*Error]: echo's error handler and logging middleware
// see the denial, and echo's default error handler leaves the already-committed
// response alone. A custom error handler should check c.Response().Committed.
func (m *Middleware) Echo() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			p, err := m.authenticate(r)
			if err != nil {
				m.writeDenial(c.Response(), r, err)
				return echo.NewHTTPError(err.Status()).SetInternal(err)
			}
			if p != nil {
				c.SetRequest(r.WithContext(WithPrincipal(r.Context(), p)))
				c.Set(echoPrincipalKey, p)
			}
			return next(c)
		}
	}
}

// EchoPrincipal returns the Principal that [Middleware.Echo] authenticated for c.
func EchoPrincipal(c echo.Context) (*Principal, bool) {
	if p, ok := c.Get(echoPrincipalKey).(*Principal); ok && p != nil {
		return p, true
	}
	return PrincipalFrom(c.Request().Context())
}
