package authmw_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/f2fauth/f2fauth/authmw"
)

// LoadPolicyFile also reads a Vault/OpenBao JWT auth role: the output of
// `vault read -format=json auth/jwt/role/NAME` (or the body written with `vault write`).
// The issuer comes from the environment, as Vault keeps it on the mount. Fields that
// only shape the token Vault issues (token_policies here) are skipped; the
// Middleware logs them when it loads the file.
func ExampleLoadPolicyFile_vaultRole() {
	dir, _ := os.MkdirTemp("", "authmw-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "role.json")
	_ = os.WriteFile(path, []byte(`{"request_id": "r-1", "lease_id": "", "lease_duration": 0, "renewable": false, "data": {
	  "role_type": "jwt", "bound_audiences": ["api://f2fauth-callee"], "bound_subject": "",
	  "bound_claims_type": "glob",
	  "bound_claims": {"xms_mirid": "/subscriptions/*/resourcegroups/rg-prod/providers/Microsoft.ManagedIdentity/userAssignedIdentities/*"},
	  "claim_mappings": {"oid": "object_id"}, "user_claim": "oid", "token_bound_cidrs": ["10.20.0.0/16"],
	  "token_ttl": 3600, "token_max_ttl": 0, "token_policies": ["kv-read"], "token_type": "default"},
	  "warnings": null}`), 0o600)
	p, err := authmw.LoadPolicyFile(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	p.TenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47" // AUTHMW_TENANT_ID
	fmt.Println("audiences:", p.Audiences)
	fmt.Println("bound claims:", p.BoundClaims)
	fmt.Println("metadata:", p.ClaimMappings, "name from:", p.UserClaim)
	fmt.Println("client CIDRs:", p.AllowedClientCIDRs, "max token age:", p.MaxTokenAge, "clock skew:", p.ClockSkew)
	fmt.Println("valid:", p.Validate() == nil)
	// Output:
	// audiences: [api://f2fauth-callee]
	// bound claims: map[xms_mirid:[/subscriptions/*/resourcegroups/rg-prod/providers/Microsoft.ManagedIdentity/userAssignedIdentities/*]]
	// metadata: map[object_id:oid] name from: oid
	// client CIDRs: [10.20.0.0/16] max token age: 1h0m0s clock skew: 3m30s
	// valid: true
}
