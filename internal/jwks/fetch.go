package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	jose "github.com/go-jose/go-jose/v4"
)

// errFetch marks a failed JWKS fetch; the last good keys stay in use.
var errFetch = errors.New("jwks: fetching key set failed")

// fetch GETs and parses the JWKS. Each key is parsed on its own: a bad key is
// logged (by kid) and skipped. A response that is not 200, not a JSON object
// with a "keys" array, too large, or that holds no usable key, is an error.
func (k *KeySet) fetch(ctx context.Context, noCache bool) (*keyMap, error) {
	k.fetches.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	if noCache {
		req.Header.Set("Cache-Control", "no-cache")
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading response: %w", errFetch, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: HTTP status %d", errFetch, resp.StatusCode)
	}
	if len(body) > MaxResponseBytes {
		return nil, fmt.Errorf("%w: response larger than %d bytes", errFetch, MaxResponseBytes)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: response is not a JSON key set: %w", errFetch, err)
	}
	m := &keyMap{byKID: make(map[string][]*key, len(raw.Keys))}
	for i, rk := range raw.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(rk); err != nil {
			k.log.LogAttrs(ctx, slog.LevelWarn, "jwks: skipping unparsable key",
				slog.String("url", k.url), slog.Int("index", i), slog.String("kid", peekKID(rk)), slog.Any("error", err))
			continue
		}
		key, err := keyFromJWK(&jwk, k.algs)
		if err != nil {
			k.log.LogAttrs(ctx, slog.LevelWarn, "jwks: skipping unusable key",
				slog.String("url", k.url), slog.Int("index", i), slog.String("kid", jwk.KeyID), slog.String("reason", err.Error()))
			continue
		}
		m.byKID[key.kid] = append(m.byKID[key.kid], key)
		m.all = append(m.all, key)
	}
	if len(m.all) == 0 {
		return nil, fmt.Errorf("%w: no usable key among %d published", errFetch, len(raw.Keys))
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

// truncate bounds attacker- or server-controlled strings put in logs and
// errors.
func truncate(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		return s[:maxLen] + "…"
	}
	return s
}
