package localidp

import (
	"encoding/json"
	"net/http"
)

// discoveryDoc mirrors the members of Entra's OpenID configuration documents.
type discoveryDoc struct {
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	HTTPLogoutSupported               bool     `json:"http_logout_supported"`
	FrontchannelLogoutSupported       bool     `json:"frontchannel_logout_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	TenantRegionScope                 any      `json:"tenant_region_scope"`
	CloudInstanceName                 string   `json:"cloud_instance_name"`
}

func (p *Platform) buildDiscovery(version int) ([]byte, error) {
	base := p.authority + "/" + p.tenantID
	d := discoveryDoc{
		TokenEndpointAuthMethodsSupported: []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		ResponseModesSupported:            []string{"query", "fragment", "form_post"},
		SubjectTypesSupported:             []string{"pairwise"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256"},
		HTTPLogoutSupported:               true,
		FrontchannelLogoutSupported:       true,
		CloudInstanceName:                 "localidp.invalid",
	}
	if version == 1 {
		d.TokenEndpoint = base + "/oauth2/token"
		d.JWKSURI = p.JWKSURLV1()
		d.ResponseTypesSupported = []string{"code", "id_token", "code id_token", "token id_token", "token"}
		d.ScopesSupported = []string{"openid"}
		d.Issuer = p.issuerV1
		d.AuthorizationEndpoint = base + "/oauth2/authorize"
		d.ClaimsSupported = []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"}
	} else {
		d.TokenEndpoint = base + "/oauth2/v2.0/token"
		d.JWKSURI = p.JWKSURLV2()
		d.ResponseTypesSupported = []string{"code", "id_token", "code id_token", "id_token token"}
		d.ScopesSupported = []string{"openid", "profile", "email", "offline_access"}
		d.Issuer = p.issuerV2
		d.AuthorizationEndpoint = base + "/oauth2/v2.0/authorize"
		d.ClaimsSupported = []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"}
	}
	return json.Marshal(d)
}

// errorBody is the Entra-style JSON error body. It never carries request
// data, so secrets sent by a client cannot be echoed.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	b, _ := json.Marshal(errorBody{Error: code, ErrorDescription: desc})
	w.Write(b) //nolint:errcheck // client went away
}
