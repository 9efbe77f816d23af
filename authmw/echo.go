package authmw

import (
	"github.com/labstack/echo/v4"
)

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
			}
			return next(c)
		}
	}
}

// EchoPrincipal returns the Principal that [Middleware.Echo] authenticated for c.
// It reads the request's context (not an echo.Context string key, which a handler
// could overwrite and which costs echo a map per request).
func EchoPrincipal(c echo.Context) (*Principal, bool) {
	return PrincipalFrom(c.Request().Context())
}
