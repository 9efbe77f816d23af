package main

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// upstreamApp is the small application -gateway puts behind the callee. It knows
// nothing about tokens: like an app behind Easy Auth, in any language, it reads only
// the X-MS-CLIENT-PRINCIPAL* headers the gateway sets, and answers in the shape of the
// callee's own function so the callers can report who they were seen as.
type upstreamApp struct {
	srv      *http.Server
	URL      string
	requests atomic.Int64
}

func startUpstreamApp() (*upstreamApp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstreamApp{URL: "http://" + ln.Addr().String()}
	u.srv = &http.Server{Handler: http.HandlerFunc(u.serve), ReadHeaderTimeout: 10 * time.Second}
	go u.srv.Serve(ln)
	return u, nil
}

func (u *upstreamApp) close() { u.srv.Close() }

// principal is the decoded X-MS-CLIENT-PRINCIPAL header.
type principal struct {
	AuthTyp string `json:"auth_typ"`
	Claims  []struct {
		Typ string `json:"typ"`
		Val string `json:"val"`
	} `json:"claims"`
}

func (u *upstreamApp) serve(w http.ResponseWriter, r *http.Request) {
	u.requests.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	var p principal
	raw, err := base64.StdEncoding.DecodeString(r.Header.Get("X-Ms-Client-Principal"))
	if err != nil || json.Unmarshal(raw, &p) != nil || p.AuthTyp != "aad" {
		// The gateway lets nothing without an identity through to this route; refuse anyway.
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"reason": "no_principal"})
		return
	}
	out := struct {
		Message  string   `json:"message"`
		AppID    string   `json:"appId"`
		ObjectID string   `json:"objectId"`
		TenantID string   `json:"tenantId"`
		Roles    []string `json:"roles"`
		Method   string   `json:"method"`
	}{Message: "Hello from the upstream app behind the gateway.", ObjectID: r.Header.Get("X-Ms-Client-Principal-Id"), Roles: []string{}, Method: r.Method}
	for _, c := range p.Claims {
		switch c.Typ {
		case "appid", "azp":
			out.AppID = c.Val
		case "http://schemas.microsoft.com/identity/claims/tenantid":
			out.TenantID = c.Val
		case "roles":
			out.Roles = append(out.Roles, c.Val)
		}
	}
	if strings.EqualFold(r.Header.Get("X-Ms-Client-Principal-Idp"), "aad") {
		json.NewEncoder(w).Encode(out)
		return
	}
	w.WriteHeader(http.StatusUnauthorized)
}
