package authmw

import (
	"bytes"
	"encoding/json"
	"errors"
)

// errClaims is returned by decodeClaims for input that is not a JSON object with
// claims of the expected types. It carries no input.
var errClaims = errors.New("claims are not a JSON object of the expected types")

// maxSkipDepth bounds the nesting of claims authmw does not read.
const maxSkipDepth = 64

// decodeClaims is a single-pass decoder for the flat claim sets of access tokens,
// several times cheaper than encoding/json's reflection on the verify path. It
// reads the claims of tokenClaims (exact, case-sensitive names; the last
// duplicate wins, as in encoding/json) and skips the others. Strings with
// escapes or non-ASCII bytes are handed to encoding/json, so their decoding is
// exactly encoding/json's.
func decodeClaims(b []byte, c *tokenClaims) error {
	d := claimDecoder{b: b}
	d.ws()
	if !d.eat('{') {
		return errClaims
	}
	d.ws()
	if d.eat('}') {
		return d.end()
	}
	for {
		d.ws()
		ks, ke, ok := d.stringSpan()
		if !ok {
			return errClaims
		}
		d.ws()
		if !d.eat(':') {
			return errClaims
		}
		d.ws()
		key := b[ks+1 : ke-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			k, err := strValue(b[ks:ke])
			if err != nil {
				return err
			}
			key = []byte(k)
		}
		var err error
		switch string(key) {
		case "iss":
			err = d.str(&c.Issuer)
		case "sub":
			err = d.str(&c.Subject)
		case "aud":
			err = d.strOrList((*[]string)(&c.Audience))
		case "exp":
			err = d.numericDate(&c.Expiry)
		case "nbf":
			err = d.numericDate(&c.NotBefore)
		case "iat":
			err = d.numericDate(&c.IssuedAt)
		case "oid":
			err = d.str(&c.ObjectID)
		case "tid":
			err = d.str(&c.TenantID)
		case "appid":
			err = d.str(&c.AppID)
		case "azp":
			err = d.str(&c.AZP)
		case "idtyp":
			err = d.str(&c.IDType)
		case "ver":
			err = d.str(&c.Version)
		case "roles":
			err = d.list(&c.Roles)
		case "groups":
			err = d.list(&c.Groups)
		case "name":
			err = d.str(&c.Name)
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
		d.ws()
		if d.eat(',') {
			continue
		}
		if d.eat('}') {
			return d.end()
		}
		return errClaims
	}
}

type claimDecoder struct {
	b []byte
	i int
}

func (d *claimDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
		default:
			return
		}
	}
}

func (d *claimDecoder) eat(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *claimDecoder) end() error {
	d.ws()
	if d.i != len(d.b) {
		return errClaims
	}
	return nil
}

// stringSpan consumes a JSON string and returns its span including the quotes,
// and whether it is "simple" (printable ASCII without escapes) is left to the caller.
func (d *claimDecoder) stringSpan() (start, end int, ok bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return 0, 0, false
	}
	start = d.i
	for j := d.i + 1; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '\\':
			j++ // skip the escaped byte; validated by encoding/json if the value is read
		case c == '"':
			d.i = j + 1
			return start, d.i, true
		case c < 0x20:
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// strValue decodes the JSON string at b[s:e] (quotes included).
func strValue(b []byte) (string, error) {
	simple := true
	for _, c := range b[1 : len(b)-1] {
		if c == '\\' || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		return string(b[1 : len(b)-1]), nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", errClaims
	}
	return s, nil
}

func (d *claimDecoder) null() bool {
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

func (d *claimDecoder) str(dst *string) error {
	if d.null() {
		return nil
	}
	s, e, ok := d.stringSpan()
	if !ok {
		return errClaims
	}
	v, err := strValue(d.b[s:e])
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

func (d *claimDecoder) list(dst *[]string) error {
	if d.null() {
		*dst = nil
		return nil
	}
	if !d.eat('[') {
		return errClaims
	}
	out := []string{}
	d.ws()
	if d.eat(']') {
		*dst = out
		return nil
	}
	for {
		d.ws()
		var v string
		s, e, ok := d.stringSpan()
		if !ok {
			return errClaims
		}
		v, err := strValue(d.b[s:e])
		if err != nil {
			return err
		}
		out = append(out, v)
		d.ws()
		if d.eat(',') {
			continue
		}
		if d.eat(']') {
			*dst = out
			return nil
		}
		return errClaims
	}
}

func (d *claimDecoder) strOrList(dst *[]string) error {
	if d.i < len(d.b) && d.b[d.i] == '"' {
		var s string
		if err := d.str(&s); err != nil {
			return err
		}
		*dst = []string{s}
		return nil
	}
	return d.list(dst)
}

func (d *claimDecoder) numericDate(dst *jsonTime) error {
	if d.null() {
		*dst = 0
		return nil
	}
	s := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			d.i++
			continue
		}
		break
	}
	if s == d.i || !validNumber(d.b[s:d.i]) {
		return errClaims
	}
	var t jsonTime
	if err := t.UnmarshalJSON(d.b[s:d.i]); err != nil {
		return errClaims
	}
	*dst = t
	return nil
}

// validNumber reports whether b is a JSON number (RFC 8259 §6).
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i == len(b)
}

// skip consumes one JSON value of a claim authmw does not read. Strings, numbers
// and literals are checked; nested arrays and objects are matched by brackets.
func (d *claimDecoder) skip() error {
	if d.i >= len(d.b) {
		return errClaims
	}
	switch c := d.b[d.i]; {
	case c == '"':
		if _, _, ok := d.stringSpan(); !ok {
			return errClaims
		}
		return nil
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		s := d.i
		for d.i < len(d.b) {
			c := d.b[d.i]
			if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
				d.i++
				continue
			}
			break
		}
		if !validNumber(d.b[s:d.i]) {
			return errClaims
		}
		return nil
	case c == '[' || c == '{':
		depth := 0
		for d.i < len(d.b) {
			switch d.b[d.i] {
			case '"':
				if _, _, ok := d.stringSpan(); !ok {
					return errClaims
				}
				continue
			case '[', '{':
				depth++
				if depth > maxSkipDepth {
					return errClaims
				}
			case ']', '}':
				depth--
				if depth == 0 {
					d.i++
					return nil
				}
			}
			d.i++
		}
		return errClaims
	}
	return errClaims
}

func (d *claimDecoder) literal(lit string) error {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return nil
	}
	return errClaims
}
