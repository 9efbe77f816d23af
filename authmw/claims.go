package authmw

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Which claim decides what. Entra issuers are the ones trusted through
// Policy.TenantID; every issuer listed in Policy.Issuers is generic, even when
// its URL is an Entra one.
//
//   - Calling application (AllowedApplications, Principal.AppID). Entra: by
//     token version, "appid" for ver 1.0, "azp" for ver 2.0 or no ver; any
//     other ver is refused, and a token carrying both appid and azp with
//     different values is refused (401 application_claim_conflict). Generic:
//     only the claim named by Policy.ApplicationClaim ("azp" by default, or
//     "client_id" as RFC 9068 names it); no other claim is ever consulted.
//   - Identity (AllowedIdentities): Entra: "oid", the stable object ID ("sub"
//     is pairwise per application). Generic: "sub", the only registered
//     subject claim; a generic issuer's "oid" is just a custom claim.
//   - App-only (Policy.AppOnly): Entra: "idtyp" when present ("app" only);
//     when absent, oid == sub and no "scp" (a delegated token always has scp).
//     Generic: sub equals the application claim and there is no "scp".
//   - Tenant: in Entra mode "tid" must equal the tenant in the issuer URL.
//
// docs/security.md repeats this table for operators.

// tokenClaims are the claims authmw reads, decoded once per token from the
// verified payload by [decodeClaims]. Times are Unix seconds; 0 means absent.
type tokenClaims struct {
	Issuer    string         `json:"iss"`
	Subject   string         `json:"sub"`
	Audience  audience       `json:"aud"`
	Expiry    numericDate    `json:"exp"`
	NotBefore numericDate    `json:"nbf"`
	IssuedAt  numericDate    `json:"iat"`
	ObjectID  string         `json:"oid"`
	TenantID  string         `json:"tid"`
	AppID     string         `json:"appid"`     // Entra v1 client application
	AZP       string         `json:"azp"`       // Entra v2 / OIDC authorized party
	ClientID  string         `json:"client_id"` // RFC 9068 client
	Scope     jsontext.Value `json:"scp"`       // delegated permissions: present means not app-only
	IDType    string         `json:"idtyp"`
	Version   string         `json:"ver"`
	Roles     []string       `json:"roles"`
	Groups    []string       `json:"groups"`
	Name      string         `json:"name"`

	// entra: issued by an Entra issuer (TenantID mode); set by the verifier.
	entra bool
	// raw holds every member in token order; filled only when the policy
	// reads claims beyond the typed ones (bound claims, claim mappings, Easy
	// Auth headers).
	raw []member
}

// member is one top-level claim: its name and its exact JSON text.
type member struct {
	name  string
	value jsontext.Value
}

// errClaims carries no input: claims are the attacker's words.
var errClaims = errors.New("claims are not a strict JSON object of the expected types (no duplicate names, valid UTF-8, NumericDates as integers between 2000 and 9999)")

// decodeClaims is the only decoder of token payloads: strict JSON (RFC 8259)
// with no duplicate member names and valid UTF-8 everywhere, including in
// claims authmw does not read, from go-json-experiment (encoding/json/v2).
// Names match case-sensitively. It never depends on the policy: the same
// bytes are accepted or refused whatever is configured.
func decodeClaims(b []byte, c *tokenClaims) error {
	if jsontext.Value(b).Kind() != '{' {
		return errClaims
	}
	if err := json.Unmarshal(b, c); err != nil {
		return errClaims
	}
	return nil
}

// members lists the top-level claims of a payload that decodeClaims accepted.
func members(b []byte) ([]member, error) {
	d := jsontext.NewDecoder(bytes.NewReader(b))
	if t, err := d.ReadToken(); err != nil || t.Kind() != '{' {
		return nil, errClaims
	}
	var out []member
	for d.PeekKind() != '}' {
		t, err := d.ReadToken()
		if err != nil {
			return nil, errClaims
		}
		name := t.String() // before the next read voids t
		v, err := d.ReadValue()
		if err != nil {
			return nil, errClaims
		}
		out = append(out, member{name: name, value: v.Clone()})
	}
	return out, nil
}

// claim returns the JSON text of the named claim, if present.
func (c *tokenClaims) claim(name string) (jsontext.Value, bool) {
	for i := range c.raw {
		if c.raw[i].name == name {
			return c.raw[i].value, true
		}
	}
	return nil, false
}

// application is the authoritative application claim's value (see the table
// above); appClaim is Policy.ApplicationClaim, used for generic issuers only.
func (c *tokenClaims) application(appClaim string) string {
	switch {
	case !c.entra && appClaim == "client_id":
		return c.ClientID
	case c.entra && c.Version == "1.0":
		return c.AppID
	}
	return c.AZP
}

// checkApplication refuses Entra tokens whose application claims disagree or
// whose version is unknown; it returns a detail for the log, "" when fine.
func (c *tokenClaims) checkApplication() string {
	if !c.entra {
		return ""
	}
	if c.AppID != "" && c.AZP != "" && c.AppID != c.AZP {
		return "token carries both appid and azp with different values"
	}
	if c.Version != "1.0" && c.Version != "2.0" && c.Version != "" {
		return "ver " + strconv.Quote(truncate(c.Version)) + " is neither 1.0 nor 2.0"
	}
	return ""
}

// identity is the claim AllowedIdentities matches: oid (Entra) or sub (generic).
func (c *tokenClaims) identity() string {
	if c.entra {
		return c.ObjectID
	}
	return c.Subject
}

// appOnly reports whether the token is app-only (see the table above).
func (c *tokenClaims) appOnly(appClaim string) bool {
	if c.Scope != nil {
		return false
	}
	if !c.entra {
		return c.Subject != "" && c.Subject == c.application(appClaim)
	}
	if c.IDType != "" {
		return c.IDType == "app"
	}
	return c.ObjectID != "" && c.ObjectID == c.Subject
}

// audience is the aud claim: a string or an array of strings (RFC 7519 §4.1.3).
type audience []string

// UnmarshalJSONFrom accepts a JSON string or an array of strings.
func (a *audience) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	switch d.PeekKind() {
	case '"':
		var s string
		if err := json.UnmarshalDecode(d, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	case '[':
		return json.UnmarshalDecode(d, (*[]string)(a))
	}
	return errors.New("aud is neither a string nor an array of strings")
}

// NumericDate bounds: 2000-01-01T00:00:00Z inclusive to year 10000 exclusive.
const (
	minNumericDate = 946684800
	maxNumericDate = 253402300800
)

// numericDate is a NumericDate in Unix seconds (RFC 7519 §2).
type numericDate int64

// UnmarshalJSONFrom accepts a JSON number written as an integer, optionally
// with a fraction (truncated), without exponent, from the year 2000 up to
// (excluding) the year 10000. Anything else — null, strings, exponents, dates
// out of range — is an error, so the token is refused with 401.
func (t *numericDate) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	v, err := d.ReadValue()
	if err != nil {
		return err
	}
	if v.Kind() != '0' {
		return errors.New("NumericDate is not a number")
	}
	s, _, _ := strings.Cut(string(v), ".")
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strings.ContainsAny(string(v), "eE") || i < minNumericDate || i >= maxNumericDate {
		return errors.New("NumericDate is not an integer between 2000 and 9999")
	}
	*t = numericDate(i)
	return nil
}

// time converts t to a time.Time; the zero time when t is absent (0).
func (t numericDate) time() time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(int64(t), 0)
}
