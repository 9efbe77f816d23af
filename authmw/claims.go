package authmw

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
)

// tokenClaims are the claims authmw reads, decoded once per token after its signature
// is verified. Times are Unix seconds; 0 means absent.
type tokenClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud"`
	Expiry    jsonTime `json:"exp"`
	NotBefore jsonTime `json:"nbf"`
	IssuedAt  jsonTime `json:"iat"`
	ObjectID  string   `json:"oid"`
	TenantID  string   `json:"tid"`
	AppID     string   `json:"appid"` // v1 client application
	AZP       string   `json:"azp"`   // v2 client application
	IDType    string   `json:"idtyp"`
	Version   string   `json:"ver"`
	Roles     []string `json:"roles"`
	Groups    []string `json:"groups"`
	Name      string   `json:"name"`

	// raw holds every claim, decoded only when the policy needs it (bound claims,
	// claim mappings, Easy Auth headers) or when a Principal's claims are asked for.
	raw map[string]any
}

// clientApp is the calling application: appid (v1) or azp (v2).
func (c *tokenClaims) clientApp() string {
	if c.AppID != "" {
		return c.AppID
	}
	return c.AZP
}

// appOnly reports whether the token is app-only: idtyp=app, or oid == sub when idtyp is absent.
func (c *tokenClaims) appOnly() bool {
	if c.IDType != "" {
		return c.IDType == "app"
	}
	return c.ObjectID != "" && c.ObjectID == c.Subject
}

// audience is the aud claim: a string or an array of strings (RFC 7519 §4.1.3).
type audience []string

// UnmarshalJSON accepts a JSON string, an array of strings, or null.
func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	if string(b) == "null" {
		*a = nil
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = l
	return nil
}

// jsonTime is a NumericDate in Unix seconds (RFC 7519 §2); fractions are truncated.
type jsonTime int64

// UnmarshalJSON accepts a JSON number, integer or not, or null (absent).
func (t *jsonTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = 0
		return nil
	}
	if i, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*t = jsonTime(i)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > math.MaxInt64/2 || f < math.MinInt64/2 {
		return errors.New("numeric date is not a number")
	}
	*t = jsonTime(int64(f))
	return nil
}

// time converts t to a time.Time; the zero time when t is absent (0).
func (t jsonTime) time() time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(int64(t), 0)
}
