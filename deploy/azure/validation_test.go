package azure

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// validationFuncs are the Terraform functions the variable validations use, with the
// same semantics (RE2 regular expressions, can()).
var validationFuncs = map[string]function.Function{
	"can":       tryfunc.CanFunc,
	"contains":  stdlib.ContainsFunc,
	"floor":     stdlib.FloorFunc,
	"length":    tfLength,
	"regex":     stdlib.RegexFunc,
	"regexall":  stdlib.RegexAllFunc,
	"trimspace": stdlib.TrimSpaceFunc,
	"try":       tryfunc.TryFunc,
}

// tfLength is Terraform's length: characters of a string, elements of a collection.
var tfLength = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].Type() == cty.String {
			return stdlib.Strlen(args[0])
		}
		return stdlib.Length(args[0])
	},
})

// validate evaluates every validation block of variable name for value and returns the
// error messages of the conditions that do not hold.
func validate(t *testing.T, c *tfConfig, name string, value cty.Value) []string {
	t.Helper()
	failed, err := evalValidation(c, name, value)
	if err != nil {
		t.Fatal(err)
	}
	return failed
}

// evalValidation is validate without a *testing.T, for the template checks: the error
// messages of the validation conditions of variable name that value does not meet.
func evalValidation(c *tfConfig, name string, value cty.Value) ([]string, error) {
	v, ok := c.variables[name]
	if !ok {
		return nil, fmt.Errorf("variable %q is not declared", name)
	}
	ta, ok := v.Body.Attributes["type"]
	if !ok {
		return nil, fmt.Errorf("variable %q has no type", name)
	}
	typ, diags := typeexpr.TypeConstraint(ta.Expr)
	if diags.HasErrors() {
		return nil, fmt.Errorf("variable %q type: %s", name, diags.Error())
	}
	if !value.IsNull() {
		cv, err := convert.Convert(value, typ)
		if err != nil {
			return []string{"type: " + err.Error()}, nil
		}
		value = cv
	} else {
		value = cty.NullVal(typ)
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{name: value})},
		Functions: validationFuncs,
	}
	var failed []string
	for _, vb := range nested(v, "validation") {
		ca, ok := vb.Body.Attributes["condition"]
		if !ok {
			return nil, fmt.Errorf("variable %q: validation without condition", name)
		}
		cond, diags := ca.Expr.Value(ctx)
		if diags.HasErrors() {
			return nil, fmt.Errorf("variable %q: validation condition for %#v: %s", name, value, diags.Error())
		}
		if cond.IsNull() || !cond.IsKnown() || cond.Type() != cty.Bool {
			return nil, fmt.Errorf("variable %q: condition is not a known bool for %#v", name, value)
		}
		if cond.False() {
			msg := "(no error_message)"
			if ma, ok := vb.Body.Attributes["error_message"]; ok {
				if mv, d := ma.Expr.Value(nil); !d.HasErrors() && mv.Type() == cty.String {
					msg = mv.AsString()
				}
			}
			failed = append(failed, msg)
		}
	}
	return failed, nil
}

// TestVariableDefaultsPassValidation evaluates each variable's validation against its
// own default (and null for variables without one).
func TestVariableDefaultsPassValidation(t *testing.T) {
	c := config(t)
	for name, v := range c.variables {
		def := cty.NullVal(cty.DynamicPseudoType)
		if d, ok := v.Body.Attributes["default"]; ok {
			def = literal(t, d.Expr)
		}
		if failed := validate(t, c, name, def); len(failed) != 0 {
			t.Errorf("variable %q default %#v fails its own validation: %q", name, def, failed)
		}
	}
}

// TestVariableValidation checks the validations accept and refuse what they say.
func TestVariableValidation(t *testing.T) {
	c := config(t)
	s, n, b := cty.StringVal, cty.NumberIntVal, cty.BoolVal
	tests := []struct {
		variable string
		value    cty.Value
		ok       bool
	}{
		{"caller_schedule", s("0 */5 * * * *"), true},
		{"caller_schedule", s("*/30 0 9-17 * * MON-FRI"), true},
		{"caller_schedule", s("*/5 * * * *"), false},
		{"caller_schedule", s("0 */5 * * * * *"), false},
		{"caller_schedule", s("00:05:00"), false},
		{"caller_schedule", s("0 */5 * * * *; rm -rf /"), false},
		{"name_prefix", s("f2f"), true},
		{"name_prefix", s("my-app-2"), true},
		{"name_prefix", s("Upper"), false},
		{"name_prefix", s("ab"), false},
		{"name_prefix", s("sixteen-chars-xx"), false},
		{"name_prefix", s("ends-"), false},
		{"location", s("eastus2"), true},
		{"location", s("East US"), false},
		{"subscription_id", s("00000000-0000-0000-0000-000000000000"), true},
		{"subscription_id", s("my-subscription"), false},
		{"tenant_id", s("contoso.onmicrosoft.com"), false},
		{"caller_user_assigned_identity_id", s("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/caller-id"), true},
		// The provider parses the ID case-sensitively ("resourceGroups" must be literal).
		{"caller_user_assigned_identity_id", s("/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/caller-id"), false},
		{"caller_user_assigned_identity_id", s("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/microsoft.managedidentity/userassignedidentities/caller-id"), false},
		{"caller_user_assigned_identity_id", s("/subscriptions/ABCDEF00-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/caller-id"), true},
		{"caller_user_assigned_identity_id", s("00000000-0000-0000-0000-000000000000"), false},
		{"caller_user_assigned_identity_id", s("/subscriptions/x/resourceGroups/rg/providers/Microsoft.Web/sites/app"), false},
		{"app_role_value", s("Exclusive.Invoke"), true},
		{"app_role_value", s("Exclusive Invoke"), false},
		{"app_role_value", s("1role"), false},
		{"callee_log_level", s("debug"), true},
		{"callee_log_level", s("trace"), false},
		{"caller_timeout", s("1m30s"), true},
		{"caller_timeout", s("30"), false},
		{"caller_max_retries", n(0), true},
		{"caller_max_retries", n(11), false},
		{"caller_max_retries", cty.NumberFloatVal(1.5), false},
		{"instance_memory_mb", n(4096), true},
		{"instance_memory_mb", n(1024), false},
		{"maximum_instance_count", n(0), false},
		{"maximum_instance_count", n(1), true},
		{"maximum_instance_count", n(1001), false},
		{"maximum_instance_count", n(1000), true},
		{"code_deployment", s("provider"), true},
		{"code_deployment", s("zipdeploy"), false},
		{"package_dir", s("  "), false},
		{"package_dir", s("/tmp/dist"), true},
		{"app_service_dns_suffix", s("chinacloudsites.cn"), true},
		{"app_service_dns_suffix", s("https://azurewebsites.net"), false},
		{"enable_rogue_caller", b(true), true},
	}
	for _, tt := range tests {
		failed := validate(t, c, tt.variable, tt.value)
		if tt.ok && len(failed) != 0 {
			t.Errorf("%s = %#v rejected: %q", tt.variable, tt.value, failed)
		}
		if !tt.ok && len(failed) == 0 {
			t.Errorf("%s = %#v accepted, want a validation error", tt.variable, tt.value)
		}
		for _, msg := range failed {
			if !strings.Contains(msg, tt.variable) {
				t.Errorf("%s: error message %q does not name the variable", tt.variable, msg)
			}
		}
	}
}

// The schedule validation in variables.tf and the NCRONTAB parser agree on field counts.
func TestScheduleValidationMatchesParser(t *testing.T) {
	c := config(t)
	for _, expr := range []string{"0 */5 * * * *", "*/5 * * * *", "0 0 0 * * * *", "1 2 3 4 5 6", "a b c d e f"} {
		_, perr := parseNCRONTAB(expr)
		failed := validate(t, c, "caller_schedule", cty.StringVal(expr))
		if perr == nil && len(failed) != 0 {
			t.Errorf("%q: parser accepts it, variable validation rejects it: %q", expr, failed)
		}
	}
}
