package authmw

import (
	"encoding/base64"
	"net/http"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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
// under their mapped claim types. The claims come from the strict decoder, so
// no name appears twice: every entry is a claim the policy saw. -NAME is user
// (Principal.Name from Policy.UserClaim) when set, else the name claim, else app.
func buildEasyAuth(c *tokenClaims, app, user string) *easyAuthHeaders {
	ep := easyAuthPrincipal{AuthTyp: "aad", Claims: []easyAuthClaim{}, NameTyp: easyAuthNameType, RoleTyp: easyAuthRoleType}
	for _, mb := range c.raw {
		typ := mb.name
		if t, ok := easyAuthClaimTypes[typ]; ok {
			typ = t
		}
		var items []jsontext.Value
		if mb.value.Kind() == '[' && json.Unmarshal(mb.value, &items) == nil {
			for _, it := range items {
				ep.Claims = append(ep.Claims, easyAuthClaim{Typ: typ, Val: claimString(it)})
			}
			continue
		}
		ep.Claims = append(ep.Claims, easyAuthClaim{Typ: typ, Val: claimString(mb.value)})
	}
	b, _ := json.Marshal(ep)
	name := headerValue(c.Name)
	if user != "" { // Policy.UserClaim (a Vault role's user_claim) names the principal
		name = headerValue(user)
	}
	if name == "" {
		name = headerValue(app)
	}
	// A claim value that cannot be a header field value (a control character other
	// than tab: CR, LF, NUL, DEL, ...) is left out rather than mangled: net/http
	// refuses to send it, so a forwarding proxy would fail every request of that
	// caller (and take the upstream for down). X-MS-CLIENT-PRINCIPAL, base64 JSON,
	// still carries the claim.
	return &easyAuthHeaders{
		principal: base64.StdEncoding.EncodeToString(b),
		// The identity the policy authorized (AllowedIdentities): oid for Entra,
		// sub for generic issuers, whose oid is just a custom claim.
		id:   headerValue(c.identity()),
		name: name,
		idp:  "aad",
	}
}

// headerValue returns s when it is a valid HTTP field value (RFC 9110 §5.5: no
// control character but HTAB), else "": the header is then left out, never sent
// altered (a cleaned value could be another caller's) nor refused further on (an
// upstream request with it fails).
func headerValue(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return ""
		}
	}
	return s
}
