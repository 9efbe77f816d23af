package callee

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/maphash"
	"net/http"
	"sync/atomic"

	"github.com/labstack/echo/v4"

	"github.com/f2fauth/f2fauth/authmw"
)

// callerBodies holds the CallerInfo JSON of recently answered principals, so that a
// reused token (the function-to-function case: one token for an hour) is answered
// without encoding the same JSON again on every request. authmw hands every request
// bearing a cached token the same read-only *Principal, so a slot is valid for
// exactly that pointer; a new token (or a re-verified one) is a new pointer and
// renders afresh. The slots are direct-mapped by the caller's object ID and replaced
// whole, lock-free; a collision only costs an encode.
type callerBodies struct {
	seed  maphash.Seed
	slots [64]atomic.Pointer[callerBody]
}

// callerBody is one rendered CallerInfo, without its last member (method).
type callerBody struct {
	p      *authmw.Principal
	prefix []byte // `{"message":…,"method":` — the JSON object up to the method's value
}

func newCallerBodies() *callerBodies { return &callerBodies{seed: maphash.MakeSeed()} }

// methodSuffix is the method's JSON value, the closing brace and the newline that
// echo's c.JSON (json.Encoder) ends a body with.
var methodSuffix = map[string][]byte{
	http.MethodGet:  []byte(`"GET"}` + "\n"),
	http.MethodPost: []byte(`"POST"}` + "\n"),
}

// write answers 200 with info as JSON, byte for byte what c.JSON(200, info) writes,
// from the rendered body of p when there is one. It falls back to c.JSON for
// anything but GET and POST and for a query string (echo honours ?pretty).
func (b *callerBodies) write(c echo.Context, p *authmw.Principal, info *CallerInfo) error {
	suffix, ok := methodSuffix[info.Method]
	if !ok || c.Request().URL.RawQuery != "" {
		return c.JSON(http.StatusOK, info)
	}
	slot := &b.slots[maphash.String(b.seed, p.ObjectID)%uint64(len(b.slots))]
	cb := slot.Load()
	if cb == nil || cb.p != p {
		prefix, err := renderPrefix(info)
		if err != nil {
			return c.JSON(http.StatusOK, info)
		}
		cb = &callerBody{p: p, prefix: prefix}
		slot.Store(cb)
	}
	resp := c.Response()
	resp.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	resp.WriteHeader(http.StatusOK)
	if _, err := resp.Write(cb.prefix); err != nil {
		return nil //nolint:nilerr // the client went away; nothing more to answer
	}
	_, _ = resp.Write(suffix)
	return nil
}

// renderPrefix encodes info with an empty method and cuts the body before the
// method's value.
func renderPrefix(info *CallerInfo) ([]byte, error) {
	v := *info
	v.Method = ""
	body, err := json.Marshal(&v)
	if err != nil {
		return nil, err
	}
	const tail = `"method":""}`
	if !bytes.HasSuffix(body, []byte(tail)) {
		return nil, errUnexpectedShape
	}
	return body[:len(body)-len(`""}`)], nil
}

var errUnexpectedShape = errors.New("callee: CallerInfo JSON does not end with its method member")
