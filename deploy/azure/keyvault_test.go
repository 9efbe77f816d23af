package azure

import (
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/f2fauth/f2fauth/caller"
)

// The optional Key Vault part (keyvault.tf): off by default, RBAC authorization, the
// reader role for the caller's identity only, and the caller settings the code reads.
func TestKeyVaultPart(t *testing.T) {
	c := config(t)
	if v := literal(t, attr(t, c.variables["enable_key_vault"], "default").Expr); !v.False() {
		t.Errorf("enable_key_vault defaults to %#v; the Key Vault part must be off by default", v)
	}
	want := []string{"azurerm_key_vault.main", "azurerm_key_vault_secret.caller", "azurerm_role_assignment.key_vault_caller", "azurerm_role_assignment.key_vault_deployer"}
	for _, key := range want {
		b, ok := c.resources[key]
		if !ok {
			t.Errorf("%s is not declared", key)
			continue
		}
		if src := c.exprSource(attr(t, b, "count").Expr); !strings.HasPrefix(src, "var.enable_key_vault") {
			t.Errorf("%s: count = %s; want it behind var.enable_key_vault", key, src)
		}
	}
	kv := c.resources["azurerm_key_vault.main"]
	if v := literal(t, attr(t, kv, "rbac_authorization_enabled").Expr); !v.True() {
		t.Error("the vault must use RBAC authorization")
	}
	if len(nested(kv, "access_policy")) > 0 || kv.Body.Attributes["access_policy"] != nil {
		t.Error("the vault must not carry access policies (RBAC only)")
	}

	// Exactly one role grants reading secrets, to the caller's identity; no assignment
	// names the rogue caller.
	readers := 0
	for key, b := range c.resources {
		if !strings.HasPrefix(key, "azurerm_role_assignment.") {
			continue
		}
		role := c.exprSource(attr(t, b, "role_definition_name").Expr)
		principal := c.exprSource(attr(t, b, "principal_id").Expr)
		if strings.Contains(principal, "rogue") && strings.Contains(c.exprSource(attr(t, b, "scope").Expr), "key_vault") {
			t.Errorf("%s gives the rogue caller access to the vault", key)
		}
		if strings.Contains(role, "Key Vault Secrets User") {
			readers++
			if principal != "local.caller_principal_id" {
				t.Errorf("%s: Key Vault Secrets User goes to %s; want local.caller_principal_id only", key, principal)
			}
			if scope := c.exprSource(attr(t, b, "scope").Expr); scope != "azurerm_key_vault.main[0].id" {
				t.Errorf("%s: scope %s; want the vault only", key, scope)
			}
		}
	}
	if readers != 1 {
		t.Errorf("%d Key Vault Secrets User assignments; want exactly 1", readers)
	}

	// The settings: both or neither, the names the code reads.
	vals, err := c.settingValues(attr(t, c.resources["azurerm_function_app_flex_consumption.caller"], "app_settings").Expr)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{caller.EnvKeyVaultURL, caller.EnvKeyVaultSecret} {
		if len(vals[n]) == 0 {
			t.Fatalf("the caller does not get %s with enable_key_vault", n)
		}
	}
	if len(vals[caller.EnvKeyVaultCAFile]) > 0 {
		t.Errorf("%s is for the local run only; Terraform must not set it", caller.EnvKeyVaultCAFile)
	}
	if src := c.exprSource(vals[caller.EnvKeyVaultURL][0]); src != "azurerm_key_vault.main[0].vault_uri" {
		t.Errorf("%s = %s; want the vault's vault_uri", caller.EnvKeyVaultURL, src)
	}
	sec := c.resources["azurerm_key_vault_secret.caller"]
	if lc := nested(sec, "lifecycle"); len(lc) != 1 || !strings.Contains(c.exprSource(attr(t, lc[0], "ignore_changes").Expr), "value") {
		t.Error("the secret must ignore value changes so rotation outside Terraform sticks")
	}
	if dep, ok := sec.Body.Attributes["depends_on"]; !ok || !strings.Contains(c.exprSource(dep.Expr), "key_vault_deployer") {
		t.Error("the secret must depend on the deployer's role assignment")
	}
}

func TestKeyVaultVariableValidation(t *testing.T) {
	c := config(t)
	tests := []struct {
		variable string
		value    cty.Value
		ok       bool
	}{
		{"key_vault_secret_name", cty.StringVal("callee-api-key"), true},
		{"key_vault_secret_name", cty.StringVal("a/b"), false},
		{"key_vault_secret_name", cty.StringVal(""), false},
		{"key_vault_secret_name", cty.StringVal(strings.Repeat("a", 128)), false},
		{"key_vault_secret_value", cty.NullVal(cty.String), true},
		{"key_vault_secret_value", cty.StringVal("s"), true},
		{"key_vault_secret_value", cty.StringVal(""), false},
		{"key_vault_secret_value", cty.StringVal(strings.Repeat("a", 25601)), false},
	}
	for _, tt := range tests {
		failed, err := evalValidation(c, tt.variable, tt.value)
		if err != nil {
			t.Errorf("%s: %v", tt.variable, err)
			continue
		}
		if ok := len(failed) == 0; ok != tt.ok {
			t.Errorf("%s = %#v: valid %v, want %v (%v)", tt.variable, tt.value, ok, tt.ok, failed)
		}
	}
}
