package azure

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/callee"
	"github.com/f2fauth/f2fauth/caller"
	"github.com/f2fauth/f2fauth/deploy/package/pack"
)

// functionAppType is the resource every function app of this module is declared with.
const functionAppType = "azurerm_function_app_flex_consumption"

// callerApps and calleeApps name the function app resources by role. The rogue caller
// runs the caller's code, so it is held to the caller's settings.
var (
	callerApps = []string{"caller", "rogue"}
	calleeApps = []string{"callee"}
)

// calleeMustSet are the AUTHMW_* settings the deployment must set on the callee besides
// callee.RequiredSettings (issue 5: tenant, required roles, allowed identity, excluded path).
var calleeMustSet = []string{"AUTHMW_TENANT_ID", "AUTHMW_REQUIRED_ROLES", "AUTHMW_ALLOWED_IDENTITIES", "AUTHMW_EXCLUDED_PATHS"}

// isPlatformSetting reports whether an app setting is the platform's, not the code's:
// one of the names listed in platformSettings. There is no prefix rule: a FUNCTIONS_* or
// WEBSITE_* name not listed is reported, and flexForbiddenSettings says why.
func isPlatformSetting(name string) bool {
	_, ok := platformSettings[name]
	return ok
}

// settingsDrift compares the app settings a template sets with what the code reads. It
// returns one message per problem, each naming the setting: a name set but not in
// allowed (the code would never read it), or a name in required that is not set.
func settingsDrift(app string, set map[string]bool, required, allowed []string, allowedFrom string) []string {
	var msgs []string
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if isPlatformSetting(n) {
			continue
		}
		if !slices.Contains(allowed, n) {
			msgs = append(msgs, fmt.Sprintf("%s sets app setting %s, which the code does not read (not in %s): remove it from the template or add it to the code's list", app, n, allowedFrom))
		}
	}
	for _, n := range required {
		if !set[n] {
			msgs = append(msgs, fmt.Sprintf("%s does not set required app setting %s", app, n))
		}
	}
	return msgs
}

func config(t *testing.T) *tfConfig {
	t.Helper()
	c, err := loadConfig(".")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTerraformParses parses every .tf file and checks the module's structure.
func TestTerraformParses(t *testing.T) {
	c := config(t)
	for _, p := range c.problems {
		t.Error(p)
	}
	for _, want := range []string{"main.tf", "variables.tf", "outputs.tf", "versions.tf", "apps.tf", "entra.tf", "deploy.tf"} {
		if c.files[want] == nil {
			t.Errorf("%s is missing", want)
		}
	}
}

// TestTerraformSyntaxErrorsFail proves loadConfig rejects broken HCL.
func TestTerraformSyntaxErrorsFail(t *testing.T) {
	for _, src := range []string{
		`resource "a_b" "c" {`,
		`variable "x" { default = }`,
		`locals { a = "unterminated }`,
		"resource \"a_b\" \"c\" {\n  x = 1\n  x = 2\n}\n",
	} {
		if _, err := parseConfig(map[string][]byte{"bad.tf": []byte(src)}); err == nil {
			t.Errorf("parseConfig(%q) succeeded, want a syntax error", src)
		}
	}
}

// TestTerraformReferencesDeclared checks that every var.X, local.X, resource and data
// reference names something declared, and every variable is used and documented.
func TestTerraformReferencesDeclared(t *testing.T) {
	c := config(t)
	for _, msg := range undeclared(c) {
		t.Error(msg)
	}
	used := map[string]bool{}
	for _, r := range c.references() {
		if r.kind == "var" {
			used[r.name] = true
		}
	}
	for name, v := range c.variables {
		if !used[name] {
			t.Errorf("variable %q is declared but never used", name)
		}
		desc, ok := v.Body.Attributes["description"]
		if !ok || literal(t, desc.Expr).AsString() == "" {
			t.Errorf("variable %q has no description", name)
		}
		if _, ok := v.Body.Attributes["type"]; !ok {
			t.Errorf("variable %q has no type", name)
		}
		typ := c.exprSource(attr(t, v, "type").Expr)
		if (typ == "string" || typ == "number") && len(nested(v, "validation")) == 0 {
			t.Errorf("variable %q (%s) has no validation block", name, typ)
		}
	}
	for name, o := range c.outputs {
		if _, ok := o.Body.Attributes["description"]; !ok {
			t.Errorf("output %q has no description", name)
		}
	}
}

func undeclared(c *tfConfig) []string {
	var msgs []string
	for _, r := range c.references() {
		var ok bool
		switch r.kind {
		case "var":
			_, ok = c.variables[r.name]
		case "local":
			_, ok = c.locals[r.name]
		case "resource":
			_, ok = c.resources[r.name]
		case "data":
			_, ok = c.data[r.name]
		}
		if !ok {
			msgs = append(msgs, fmt.Sprintf("%s: %s.%s is referenced but not declared", r.where, r.kind, r.name))
		}
	}
	return msgs
}

// TestUndeclaredReferencesFail proves the reference check catches typos.
func TestUndeclaredReferencesFail(t *testing.T) {
	c, err := parseConfig(map[string][]byte{"x.tf": []byte(`
variable "declared" {
  type = string
}
locals {
  a = var.declared
  b = var.missing_var
  c = local.missing_local
  d = azurerm_resource_group.missing.name
  e = data.azuread_client_config.missing.tenant_id
}
`)})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(undeclared(c), "\n")
	for _, want := range []string{"var.missing_var", "local.missing_local", "resource.azurerm_resource_group.missing", "data.azuread_client_config.missing"} {
		if !strings.Contains(got, want) {
			t.Errorf("undeclared() = %q, want a message about %s", got, want)
		}
	}
	if strings.Contains(got, "var.declared") {
		t.Errorf("undeclared() reports the declared variable: %q", got)
	}
}

// appSettings returns the app-setting names each function app sets, by resource name.
func appSettings(t *testing.T, c *tfConfig) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	for key, b := range c.resources {
		typ, name, _ := strings.Cut(key, ".")
		if typ != functionAppType && typ != "azurerm_linux_function_app" {
			continue
		}
		a, ok := b.Body.Attributes["app_settings"]
		if !ok {
			t.Errorf("%s has no app_settings", key)
			continue
		}
		keys, err := c.settingKeys(a.Expr)
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		out[name] = keys
	}
	return out
}

// TestAppSettingsMatchCode is the no-drift check: the caller apps set exactly the
// caller's required settings plus optional ones it reads; the callee sets only AUTHMW_*
// and callee settings the code reads, and at least the required ones.
func TestAppSettingsMatchCode(t *testing.T) {
	c := config(t)
	apps := appSettings(t, c)
	known := append(slices.Clone(callerApps), calleeApps...)
	for name := range apps {
		if !slices.Contains(known, name) {
			t.Errorf("function app %s.%s is neither a caller nor the callee: add it to callerApps or calleeApps", functionAppType, name)
		}
	}
	for _, name := range callerApps {
		set, ok := apps[name]
		if !ok {
			t.Errorf("%s.%s is not declared", functionAppType, name)
			continue
		}
		for _, msg := range settingsDrift(functionAppType+"."+name, set, caller.RequiredSettings(), caller.Settings(), "caller.Settings") {
			t.Error(msg)
		}
	}
	calleeAllowed := append(authmw.EnvVars(), callee.Settings()...)
	calleeRequired := append(callee.RequiredSettings(), calleeMustSet...)
	for _, name := range calleeApps {
		set, ok := apps[name]
		if !ok {
			t.Errorf("%s.%s is not declared", functionAppType, name)
			continue
		}
		for _, msg := range settingsDrift(functionAppType+"."+name, set, calleeRequired, calleeAllowed, "authmw.EnvVars or callee.Settings") {
			t.Error(msg)
		}
	}
	// Same code, same settings: the rogue caller differs from the caller only by its
	// identity (AZURE_CLIENT_ID belongs to the caller's user-assigned identity).
	if r, ok := apps["rogue"]; ok {
		for n := range apps["caller"] {
			if n != caller.EnvClientID && !r[n] {
				t.Errorf("the rogue caller does not set %s, which the caller sets: it must run with the same settings", n)
			}
		}
		if r[caller.EnvClientID] {
			t.Errorf("the rogue caller sets %s: it must call with its own system-assigned identity", caller.EnvClientID)
		}
	}
}

// TestAppSettingsDriftIsReported proves the drift check fails, naming the setting, for
// a template that sets a name the code does not read or misses a required one.
func TestAppSettingsDriftIsReported(t *testing.T) {
	c, err := parseConfig(map[string][]byte{"x.tf": []byte(`
locals {
  common = {
    CALLEE_URL      = "https://x/api/ExclusiveFunction"
    CALLEE_AUDIENCE = "api://x"
  }
}
resource "azurerm_function_app_flex_consumption" "caller" {
  app_settings = merge(
    local.common,
    { "CALLER_SCHEDULE" = "0 */5 * * * *", AzureWebJobsStorage__accountName = "st" },
    var.x ? { CALLEE_TIMEOUT = "30s" } : {},
  )
}
resource "azurerm_function_app_flex_consumption" "callee" {
  app_settings = { AUTHMW_AUDIENCES = "x", AUTHMW_AUDIENCE = "typo" }
}
`)})
	if err != nil {
		t.Fatal(err)
	}
	apps := appSettings(t, c)
	want := map[string]bool{"CALLEE_URL": true, "CALLEE_AUDIENCE": true, "CALLER_SCHEDULE": true, "AzureWebJobsStorage__accountName": true, "CALLEE_TIMEOUT": true}
	if fmt.Sprint(apps["caller"]) != fmt.Sprint(want) {
		t.Errorf("caller keys = %v, want %v", apps["caller"], want)
	}
	msgs := settingsDrift("caller", apps["caller"], caller.RequiredSettings(), caller.Settings(), "caller.Settings")
	if len(msgs) != 1 || !strings.Contains(msgs[0], "CALLEE_TIMEOUT") {
		t.Errorf("caller drift = %q, want one message naming CALLEE_TIMEOUT", msgs)
	}
	calleeAllowed := append(authmw.EnvVars(), callee.Settings()...)
	msgs = settingsDrift("callee", apps["callee"], append(callee.RequiredSettings(), calleeMustSet...), calleeAllowed, "authmw.EnvVars")
	joined := strings.Join(msgs, "\n")
	for _, want := range append([]string{"AUTHMW_AUDIENCE,"}, calleeMustSet...) {
		if !strings.Contains(joined, want) {
			t.Errorf("callee drift %q does not mention %s", joined, want)
		}
	}

	// Settings whose names cannot be known statically are refused, not ignored.
	for _, src := range []string{
		`resource "azurerm_function_app_flex_consumption" "caller" { app_settings = var.settings }`,
		`resource "azurerm_function_app_flex_consumption" "caller" { app_settings = { (var.name) = "x" } }`,
		`resource "azurerm_function_app_flex_consumption" "caller" { app_settings = zipmap(["A"], ["b"]) }`,
		`resource "azurerm_function_app_flex_consumption" "caller" { app_settings = local.nope }`,
	} {
		c, err := parseConfig(map[string][]byte{"y.tf": []byte(src)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.settingKeys(c.resources[functionAppType+".caller"].Body.Attributes["app_settings"].Expr); err == nil {
			t.Errorf("settingKeys(%s) succeeded, want an error", src)
		}
	}
}

// TestCodeSettingLists checks the lists the templates are compared with are sane.
func TestCodeSettingLists(t *testing.T) {
	for _, r := range caller.RequiredSettings() {
		if !slices.Contains(caller.Settings(), r) {
			t.Errorf("caller.RequiredSettings has %s, which is not in caller.Settings", r)
		}
	}
	if !slices.Contains(caller.Settings(), caller.EnvClientID) {
		t.Errorf("caller.Settings lacks %s", caller.EnvClientID)
	}
	for _, r := range append(callee.RequiredSettings(), calleeMustSet...) {
		if !slices.Contains(authmw.EnvVars(), r) && !slices.Contains(callee.Settings(), r) {
			t.Errorf("callee requirement %s is in neither authmw.EnvVars nor callee.Settings", r)
		}
	}
}

// TestFunctionApps checks each function app's runtime, identity and storage wiring.
func TestFunctionApps(t *testing.T) {
	c := config(t)
	for _, name := range append(slices.Clone(callerApps), calleeApps...) {
		b, ok := c.resources[functionAppType+"."+name]
		if !ok {
			t.Errorf("%s.%s missing", functionAppType, name)
			continue
		}
		for attrName, want := range map[string]string{
			"runtime_name":                "custom",
			"runtime_version":             "1.0",
			"storage_authentication_type": "SystemAssignedIdentity",
			"storage_container_type":      "blobContainer",
		} {
			if got := literal(t, attr(t, b, attrName).Expr).AsString(); got != want {
				t.Errorf("%s: %s = %q, want %q", name, attrName, got, want)
			}
		}
		if got := literal(t, attr(t, b, "https_only").Expr); !got.True() {
			t.Errorf("%s: https_only is not true", name)
		}
		for _, easyAuth := range []string{"auth_settings", "auth_settings_v2"} {
			if len(nested(b, easyAuth)) != 0 {
				t.Errorf("%s configures %s: Easy Auth must stay off (authmw replaces it)", name, easyAuth)
			}
		}
		ids := nested(b, "identity")
		if len(ids) != 1 || !strings.Contains(c.exprSource(attr(t, ids[0], "type").Expr), "SystemAssigned") {
			t.Errorf("%s: want an identity block with a SystemAssigned identity", name)
		}
		if len(nested(b, "site_config")) != 1 {
			t.Errorf("%s: want one site_config block (required by the provider)", name)
		}
	}
	for _, ra := range []string{"azurerm_role_assignment.storage_blob_data_owner"} {
		b, ok := c.resources[ra]
		if !ok {
			t.Fatalf("%s missing", ra)
		}
		if got := literal(t, attr(t, b, "role_definition_name").Expr).AsString(); got != "Storage Blob Data Owner" {
			t.Errorf("%s role = %q", ra, got)
		}
	}
}

// TestEntraApplication checks the callee registration: identifier URI, app role, token
// version, assignment requirement and the caller's assignment.
func TestEntraApplication(t *testing.T) {
	c := config(t)
	app, ok := c.resources["azuread_application.callee"]
	if !ok {
		t.Fatal("azuread_application.callee missing")
	}
	apis := nested(app, "api")
	if len(apis) != 1 {
		t.Fatal("azuread_application.callee: want one api block")
	}
	version := literal(t, attr(t, apis[0], "requested_access_token_version").Expr)
	roles := nested(app, "app_role")
	if len(roles) != 1 {
		t.Fatalf("want one app_role, got %d", len(roles))
	}
	mt := literal(t, attr(t, roles[0], "allowed_member_types").Expr)
	if !mt.Type().IsTupleType() || mt.LengthInt() != 1 || mt.Index(cty.NumberIntVal(0)).AsString() != "Application" {
		t.Errorf("allowed_member_types = %#v, want [\"Application\"]", mt)
	}
	if got := c.exprSource(attr(t, roles[0], "value").Expr); got != "var.app_role_value" {
		t.Errorf("app_role value = %s, want var.app_role_value (the same value is AUTHMW_REQUIRED_ROLES)", got)
	}
	if def := literal(t, attr(t, c.variables["app_role_value"], "default").Expr).AsString(); def != "Exclusive.Invoke" {
		t.Errorf("app_role_value default = %q, want Exclusive.Invoke", def)
	}
	if got := c.exprSource(attr(t, roles[0], "id").Expr); !strings.HasPrefix(got, "random_uuid.") {
		t.Errorf("app_role id = %s, want a random_uuid", got)
	}

	uri, ok := c.resources["azuread_application_identifier_uri.callee"]
	if !ok {
		t.Fatal("azuread_application_identifier_uri.callee missing")
	}
	if got := c.exprSource(attr(t, uri, "identifier_uri").Expr); got != `"api://${azuread_application.callee.client_id}"` {
		t.Errorf("identifier_uri = %s, want api://<client id>", got)
	}

	// The audience the callee accepts must be what the token version puts in aud.
	accepted := c.exprSource(c.locals["callee_audience_accepted"].Expr)
	requested := c.exprSource(c.locals["callee_audience_requested"].Expr)
	if requested != `"api://${azuread_application.callee.client_id}"` {
		t.Errorf("callee_audience_requested = %s, want the Application ID URI", requested)
	}
	switch v, _ := version.AsBigFloat().Int64(); v {
	case 2:
		if accepted != "azuread_application.callee.client_id" {
			t.Errorf("v2 tokens carry aud = client ID, but callee_audience_accepted = %s", accepted)
		}
	case 1:
		if !strings.Contains(accepted, "api://") {
			t.Errorf("v1 tokens carry aud = the requested URI, but callee_audience_accepted = %s", accepted)
		}
	default:
		t.Errorf("requested_access_token_version = %d, want 1 or 2", v)
	}

	sp, ok := c.resources["azuread_service_principal.callee"]
	if !ok {
		t.Fatal("azuread_service_principal.callee missing")
	}
	req := c.exprSource(attr(t, sp, "app_role_assignment_required").Expr)
	if req != "true" {
		v, ok := c.variables[strings.TrimPrefix(req, "var.")]
		if !ok || !literal(t, attr(t, v, "default").Expr).True() {
			t.Errorf("app_role_assignment_required = %s, want true (or a variable defaulting to true)", req)
		}
	}
	as, ok := c.resources["azuread_app_role_assignment.caller"]
	if !ok {
		t.Fatal("azuread_app_role_assignment.caller missing")
	}
	if got := c.exprSource(attr(t, as, "principal_object_id").Expr); got != "local.caller_principal_id" {
		t.Errorf("assignment principal = %s, want local.caller_principal_id", got)
	}
	settings := c.exprSource(c.locals["callee_settings"].Expr)
	for _, want := range []string{"local.caller_principal_id", "local.callee_audience_accepted", "var.app_role_value", "local.tenant_id", `"/api/healthz"`} {
		if !strings.Contains(settings, want) {
			t.Errorf("callee_settings does not use %s", want)
		}
	}
	callerSettings := c.exprSource(c.locals["caller_settings"].Expr)
	for _, want := range []string{"local.callee_url", "local.callee_audience_requested", "var.caller_schedule"} {
		if !strings.Contains(callerSettings, want) {
			t.Errorf("caller_settings does not use %s", want)
		}
	}
}

// TestAllowedIdentitiesFailClosed checks every value AUTHMW_ALLOWED_IDENTITIES can take:
// the caller's principal ID, or a non-empty placeholder - never "", which authmw reads
// as "identities not checked".
func TestAllowedIdentitiesFailClosed(t *testing.T) {
	c := config(t)
	var leaves []string
	var walk func(e hclsyntax.Expression)
	walk = func(e hclsyntax.Expression) {
		switch e := e.(type) {
		case *hclsyntax.ConditionalExpr:
			walk(e.TrueResult)
			walk(e.FalseResult)
		case *hclsyntax.ParenthesesExpr:
			walk(e.Expression)
		case *hclsyntax.ScopeTraversalExpr:
			name := c.exprSource(e)
			if l, ok := c.locals[strings.TrimPrefix(name, "local.")]; ok && name != "local.caller_principal_id" {
				walk(l.Expr)
				return
			}
			leaves = append(leaves, name)
		default:
			v, diags := e.Value(nil)
			if diags.HasErrors() || v.Type() != cty.String {
				t.Errorf("AUTHMW_ALLOWED_IDENTITIES can be %s, which cannot be checked", c.exprSource(e))
				return
			}
			if strings.TrimSpace(strings.ReplaceAll(v.AsString(), ",", "")) == "" {
				t.Errorf("AUTHMW_ALLOWED_IDENTITIES can be %q: an empty list disables the identity check", v.AsString())
			}
			leaves = append(leaves, v.AsString())
		}
	}
	walk(c.resourceLocal(t, "callee_settings", "AUTHMW_ALLOWED_IDENTITIES"))
	if !slices.Contains(leaves, "local.caller_principal_id") {
		t.Errorf("AUTHMW_ALLOWED_IDENTITIES values %q do not include local.caller_principal_id", leaves)
	}
}

// TestOutputs checks the outputs issue 5 names.
func TestOutputs(t *testing.T) {
	c := config(t)
	for _, name := range []string{"caller_url", "callee_url", "callee_client_id", "caller_principal_id", "caller_logs_command"} {
		if _, ok := c.outputs[name]; !ok {
			t.Errorf("output %q missing", name)
		}
	}
}

// TestPackagePathsMatch checks the zips Terraform deploys are the ones deploy/package writes.
func TestPackagePathsMatch(t *testing.T) {
	c := config(t)
	for _, a := range pack.Apps {
		l, ok := c.locals[a.Name+"_zip"]
		if !ok {
			t.Errorf("local %s_zip missing", a.Name)
			continue
		}
		if got, want := c.exprSource(l.Expr), `"${local.package_dir}/`+a.ZipName()+`"`; got != want {
			t.Errorf("local.%s_zip = %s, want %s", a.Name, got, want)
		}
	}
	if got := c.exprSource(c.locals["package_dir"].Expr); !strings.Contains(got, `"${path.module}/dist"`) {
		t.Errorf("local.package_dir = %s, want the default ${path.module}/dist", got)
	}
	abs, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(filepath.ToSlash(abs)+"/dist", "/"+pack.DefaultOutDir) {
		t.Errorf("pack.DefaultOutDir = %s, but this module's dist is %s/dist", pack.DefaultOutDir, abs)
	}
}

// TestTerraformFmt runs `terraform fmt -check` when terraform is installed (offline).
func TestTerraformFmt(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform not on PATH")
	}
	cmd := exec.Command(tf, "fmt", "-check", "-list=true", ".")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Errorf("terraform fmt -check: %v; unformatted files:\n%s(run `terraform fmt` in deploy/azure)", err, out.String())
	}
}
