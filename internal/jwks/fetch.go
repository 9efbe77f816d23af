package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	neturl "net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/f2fauth/f2fauth/internal/netrule"
	"github.com/f2fauth/f2fauth/internal/retry"
)

// fetchError is a failed [Get]: err wraps [ErrTransient] or [ErrPermanent]
// and the cause; msg is bounded (what the server chose, body or Location,
// appears only as an excerpt); retryAfter is the delay the server asked for.
type fetchError struct {
	msg        string
	err        error
	retryAfter time.Duration
}

func (e *fetchError) Error() string { return e.msg }
func (e *fetchError) Unwrap() error { return e.err }

// Get fetches url with client (nil: a default one), used through
// [netrule.Guard] (https or loopback http on every hop, same-origin redirects
// at most, a 10 s timeout unless client has one), and returns the
// body of a 200 response, at most [MaxResponseBytes] long. It is the one
// fetch of discovery documents and key sets. Errors wrap [ErrTransient] or
// [ErrPermanent]; an error body is quoted only as a [netrule.Excerpt].
func Get(ctx context.Context, client *http.Client, url, accept string, noCache bool) ([]byte, error) {
	fail := func(class, cause error, text string) *fetchError {
		return &fetchError{msg: fmt.Sprintf("GET %s: %v: %s", url, class, text), err: fmt.Errorf("%w: %w", class, cause)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fail(ErrPermanent, err, err.Error())
	}
	req.Header.Set("Accept", accept)
	if noCache {
		req.Header.Set("Cache-Control", "no-cache")
	}
	resp, err := netrule.Guard(client, DefaultHTTPTimeout).Do(req)
	if err != nil {
		class, cause := ErrTransient, err
		if errors.Is(err, netrule.ErrRedirect) || errors.Is(err, netrule.ErrInsecureURL) {
			class = ErrPermanent
		}
		if ue, ok := errors.AsType[*neturl.Error](err); ok {
			cause = ue.Err // without the URL, which may be a redirect's Location
		}
		return nil, fail(class, err, netrule.Excerpt([]byte(cause.Error())))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, netrule.ExcerptBytes+1))
		class := ErrPermanent
		if s := resp.StatusCode; s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500 {
			class = ErrTransient
		}
		fe := fail(class, fmt.Errorf("HTTP status %d", resp.StatusCode), fmt.Sprintf("HTTP status %d: %q", resp.StatusCode, netrule.Excerpt(excerpt)))
		fe.retryAfter, _ = retry.RetryAfter(resp.Header, time.Now())
		return nil, fe
	}
	body, err := netrule.ReadAll(resp.Body, MaxResponseBytes)
	if errors.Is(err, netrule.ErrTooLarge) {
		return nil, fail(ErrPermanent, err, err.Error())
	} else if err != nil {
		return nil, fail(ErrTransient, err, netrule.Excerpt([]byte(err.Error())))
	}
	return body, nil
}

// RetryDelay is how long to wait after failures consecutive failures, the
// last one err: b's jittered delay, or the Retry-After the server sent with
// err when longer, at most b.Max.
func RetryDelay(b retry.Backoff, failures int, err error) time.Duration {
	d := b.Delay(failures, rand.Float64())
	if fe, ok := errors.AsType[*fetchError](err); ok && fe.retryAfter > d {
		d = min(fe.retryAfter, max(b.Max, b.Initial))
	}
	return d
}

// fetch GETs and parses the JWKS. Each key is parsed on its own: a bad key is
// logged (by kid) and skipped. A response that is not 200, not a JSON object
// with a "keys" array, too large, or that holds no usable key, is an error.
func (k *KeySet) fetch(ctx context.Context, noCache bool) (*keyMap, error) {
	k.fetches.Add(1)
	body, err := Get(ctx, k.client, k.url, "application/jwk-set+json, application/json", noCache)
	if err != nil {
		return nil, err
	}
	return k.parse(ctx, body)
}

// parse reads a JWKS document into a key map (see fetch).
func (k *KeySet) parse(ctx context.Context, body []byte) (*keyMap, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("GET %s: %w: not a JSON key set: %v", k.url, ErrPermanent, err)
	}
	m := &keyMap{byKID: make(map[string][]*key, len(raw.Keys))}
	for i, rk := range raw.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(rk); err != nil {
			k.log.LogAttrs(ctx, slog.LevelWarn, "jwks: skipping unparsable key",
				slog.String("url", k.url), slog.Int("index", i), slog.String("kid", peekKID(rk)), slog.Any("error", err))
			continue
		}
		if len(m.all) == MaxKeys {
			k.log.LogAttrs(ctx, slog.LevelWarn, "jwks: skipping keys beyond the limit",
				slog.String("url", k.url), slog.Int("from_index", i), slog.Int("limit", MaxKeys))
			break
		}
		key, err := keyFromJWK(&jwk, rk, k.algs)
		if err != nil {
			k.log.LogAttrs(ctx, slog.LevelWarn, "jwks: skipping unusable key",
				slog.String("url", k.url), slog.Int("index", i), slog.String("kid", truncate(jwk.KeyID)), slog.String("reason", err.Error()))
			continue
		}
		m.byKID[key.id.KID] = append(m.byKID[key.id.KID], key)
		m.all = append(m.all, key)
	}
	if len(m.all) == 0 {
		return nil, fmt.Errorf("GET %s: %w: no usable key among %d published", k.url, ErrPermanent, len(raw.Keys))
	}
	return m, nil
}

// peekKID extracts the kid of a key that go-jose could not parse, for logs.
func peekKID(raw json.RawMessage) string {
	var v struct {
		KID string `json:"kid"`
	}
	_ = json.Unmarshal(raw, &v)
	return truncate(v.KID)
}

// truncate bounds attacker- or server-controlled strings (kids, algs) put in
// logs and errors, and keeps them printable.
func truncate(s string) string { return netrule.Excerpt([]byte(s)) }
