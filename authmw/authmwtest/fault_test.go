package authmwtest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/f2fauth/f2fauth/authmw/authmwtest"
)

func TestFaults(t *testing.T) {
	iss, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	get := func(url string) (int, http.Header, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	const other = "0b9b1d6e-0000-4000-8000-00000000dead"
	iss.SetDiscoveryFault(authmwtest.UnknownTenant(other))
	for _, url := range []string{iss.DiscoveryURLV1(), iss.DiscoveryURLV2(), iss.AuthorityURL() + "/" + other + "/v2.0/.well-known/openid-configuration"} {
		if status, _, body := get(url); status != 400 || !strings.Contains(body, "AADSTS90002") || !strings.Contains(body, other) {
			t.Errorf("%s with UnknownTenant: %d %s", url, status, body)
		}
	}
	if status, _, _ := get(iss.JWKSURLV2()); status != 200 {
		t.Errorf("JWKS affected by a discovery fault: %d", status)
	}
	iss.SetDiscoveryFault(&authmwtest.Fault{Status: 429, Body: `{}`, RetryAfter: "7"})
	if status, h, _ := get(iss.DiscoveryURLV2()); status != 429 || h.Get("Retry-After") != "7" {
		t.Errorf("429 fault: %d, Retry-After %q", status, h.Get("Retry-After"))
	}
	iss.SetDiscoveryFault(nil)
	if status, _, body := get(iss.DiscoveryURLV2()); status != 200 || !strings.Contains(body, iss.IssuerV2()) {
		t.Errorf("after clearing the fault: %d %s", status, body)
	}
	iss.SetJWKSFault(authmwtest.NoUsableKeys())
	if status, _, body := get(iss.JWKSURLV1()); status != 200 || body != `{"keys":[]}` {
		t.Errorf("NoUsableKeys: %d %s", status, body)
	}
	iss.SetJWKSFault(nil)
	if _, _, body := get(iss.JWKSURLV2()); !strings.Contains(body, iss.CurrentKID()) {
		t.Errorf("after clearing the JWKS fault: %s", body)
	}
	if n := iss.DiscoveryRequests(); n != 5 {
		t.Errorf("DiscoveryRequests = %d, want 5 (faulted requests count)", n)
	}
}
