// Package echomw adapts an [authmw.Middleware] to echo (v4). It lives apart
// from authmw so that services using only net/http do not depend on echo.
package echomw

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/f2fauth/f2fauth/authmw"
)

// Middleware returns native echo middleware over the same core as
// [authmw.Middleware.Handler].
//
// On success the [authmw.Principal] is put on the request's context: handlers
// read it with authmw.PrincipalFrom(c.Request().Context()), as net/http
// handlers do.
//
// On denial the middleware writes the response itself (status,
// WWW-Authenticate / Retry-After, application/problem+json body, exactly as
// Handler does) and then returns an *echo.HTTPError with the same status whose
// Internal error is the [*authmw.Error]: echo's error handler and logging
// middleware see the denial, and echo's default error handler leaves the
// already-committed response alone. A custom error handler should check
// c.Response().Committed.
func Middleware(m *authmw.Middleware) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r, err := m.Check(c.Response(), c.Request())
			if err != nil {
				status := http.StatusUnauthorized
				var ae *authmw.Error
				if errors.As(err, &ae) {
					status = ae.Status()
				}
				return echo.NewHTTPError(status).SetInternal(err)
			}
			c.SetRequest(r)
			return next(c)
		}
	}
}
