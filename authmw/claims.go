package authmw

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

// audience is the aud claim: a string or an array of strings. (TODO(authmw core): UnmarshalJSON)
type audience []string

// jsonTime is a NumericDate in Unix seconds. (TODO(authmw core): UnmarshalJSON accepting numbers)
type jsonTime int64
