package authmw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
)

// Claim types of Easy Auth's default claims mapping (X-MS-CLIENT-PRINCIPAL).
const (
	easyAuthNameType = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
	easyAuthRoleType = "roles"
)

var easyAuthClaimTypes = map[string]string{
	"oid": "http://schemas.microsoft.com/identity/claims/objectidentifier",
	"tid": "http://schemas.microsoft.com/identity/claims/tenantid",
	"sub": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
}

// easyAuthHeaders are the X-MS-CLIENT-PRINCIPAL* values for one Principal,
// computed once when its token is verified.
type easyAuthHeaders struct {
	principal, id, name, idp string
}

func (e *easyAuthHeaders) set(h http.Header) {
	h[headerPrincipal] = []string{e.principal}
	if e.id != "" {
		h[headerPrincipalID] = []string{e.id}
	}
	if e.name != "" {
		h[headerPrincipalName] = []string{e.name}
	}
	h[headerPrincipalIDP] = []string{e.idp}
}

type easyAuthClaim struct {
	Typ string `json:"typ"`
	Val string `json:"val"`
}

type easyAuthPrincipal struct {
	AuthTyp string          `json:"auth_typ"`
	Claims  []easyAuthClaim `json:"claims"`
	NameTyp string          `json:"name_typ"`
	RoleTyp string          `json:"role_typ"`
}

// buildEasyAuth renders the verified claims in Easy Auth's shape: claims in token
// order, every value a string, list values as repeated entries, oid/tid/sub
// under their mapped claim types.
func buildEasyAuth(payload []byte, c *tokenClaims) *easyAuthHeaders {
	ep := easyAuthPrincipal{AuthTyp: "aad", Claims: []easyAuthClaim{}, NameTyp: easyAuthNameType, RoleTyp: easyAuthRoleType}
	var obj []struct {
		k string
		v json.RawMessage
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if t, err := dec.Token(); err == nil && t == json.Delim('{') {
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				break
			}
			k, _ := kt.(string)
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				break
			}
			obj = append(obj, struct {
				k string
				v json.RawMessage
			}{k, v})
		}
	}
	for _, kv := range obj {
		typ := kv.k
		if t, ok := easyAuthClaimTypes[typ]; ok {
			typ = t
		}
		if len(kv.v) > 0 && kv.v[0] == '[' {
			var items []json.RawMessage
			if json.Unmarshal(kv.v, &items) == nil {
				for _, it := range items {
					ep.Claims = append(ep.Claims, easyAuthClaim{Typ: typ, Val: rawString(it)})
				}
				continue
			}
		}
		ep.Claims = append(ep.Claims, easyAuthClaim{Typ: typ, Val: rawString(kv.v)})
	}
	b, _ := json.Marshal(ep)
	name := c.Name
	if name == "" {
		name = c.clientApp()
	}
	return &easyAuthHeaders{
		principal: base64.StdEncoding.EncodeToString(b),
		id:        c.ObjectID,
		name:      name,
		idp:       "aad",
	}
}

// rawString stringifies a JSON value: strings unquoted, others as their JSON text.
func rawString(v json.RawMessage) string {
	if len(v) > 0 && v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	if string(v) == "null" {
		return ""
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) == nil {
		return buf.String()
	}
	return strconv.Quote(string(v))
}
