package azure

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// The template checks. Each is a function over a parsed template directory that returns
// one message per problem, naming it; TestTemplateMutationsAreCaught runs the same
// functions over mutated copies of the templates.

// templateCheck is one named check.
type templateCheck struct {
	name string
	run  func(c *tfConfig, dir string) []string
}

// templateChecks are run by the tests below and by the mutation test.
var templateChecks = []templateCheck{
	{"provider schema", func(c *tfConfig, _ string) []string { return schemaProblems(c, mustSchema()) }},
	{"references to resource attributes", func(c *tfConfig, _ string) []string { return attributeReferenceProblems(c, mustSchema()) }},
	{"Flex Consumption app settings", func(c *tfConfig, _ string) []string { return flexSettingsProblems(c) }},
	{"app role assignment", func(c *tfConfig, _ string) []string { return roleAssignmentProblems(c) }},
	{"deployment containers", func(c *tfConfig, _ string) []string { return deploymentContainerProblems(c) }},
	{"version floor", func(c *tfConfig, _ string) []string { return versionFloorProblems(c, mustSchema()) }},
	{"lock file", lockFileProblems},
	{"code deployment step", func(c *tfConfig, _ string) []string { return deployStepProblems(c) }},
	{"AzureWebJobsStorage on re-apply", func(c *tfConfig, _ string) []string { return hostStorageProblems(c) }},
	{"tenant precondition", func(c *tfConfig, _ string) []string { return tenantPreconditionProblems(c) }},
	{"identity ID validation", func(c *tfConfig, _ string) []string { return identityIDValidationProblems(c) }},
}

// templateProblems parses the .tf files in dir and runs every check.
func templateProblems(dir string) ([]string, error) {
	c, err := loadConfig(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ch := range templateChecks {
		for _, p := range ch.run(c, dir) {
			out = append(out, ch.name+": "+p)
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------------
// Flex Consumption app settings.

// platformSettings are the platform's app settings a template may set, with the value
// each must have ("" in want means any value is fine unless mustEqual is set).
var platformSettings = map[string]struct {
	mustEqual bool
	want      string
}{
	"AzureWebJobsStorage":                       {true, ""},
	"AzureWebJobsStorage__accountName":          {},
	"AzureWebJobsStorage__credential":           {true, "managedidentity"},
	"APPLICATIONINSIGHTS_CONNECTION_STRING":     {},
	"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": {},
	"AzureFunctionsWebHost__hostid":             {},
}

// flexRequiredSettings must be set on every function app, each for the reason given.
var flexRequiredSettings = map[string]string{
	"AzureWebJobsStorage":              `empty, so the provider does not write its own keyless connection string and the host uses AzureWebJobsStorage__accountName (azurerm #29149)`,
	"AzureWebJobsStorage__accountName": `host storage (timer locks, schedule monitor) through the app's identity`,
	"AzureWebJobsStorage__credential":  `"managedidentity" pins host storage to the system-assigned identity, whatever AZURE_CLIENT_ID says`,
}

// flexForbiddenSettings are app settings the Flex Consumption plan does not accept
// (Microsoft's "App settings reference": settings removed or not supported in Flex
// Consumption), with what replaces each.
var flexForbiddenSettings = map[string]string{
	"FUNCTIONS_EXTENSION_VERSION":                  "the runtime is always 4.x",
	"FUNCTIONS_WORKER_RUNTIME":                     "the runtime comes from runtime_name/runtime_version",
	"FUNCTIONS_WORKER_RUNTIME_VERSION":             "the runtime comes from runtime_name/runtime_version",
	"FUNCTIONS_MAX_HTTP_CONCURRENCY":               "use http_concurrency",
	"FUNCTIONS_WORKER_PROCESS_COUNT":               "not supported",
	"FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED": "not supported",
	"ENABLE_ORYX_BUILD":                            "remote build is a deployment option",
	"SCM_DO_BUILD_DURING_DEPLOYMENT":               "remote build is a deployment option",
	"WEBSITE_CONTENTAZUREFILECONNECTIONSTRING":     "Flex Consumption has no content share",
	"WEBSITE_CONTENTOVERVNET":                      "Flex Consumption has no content share",
	"WEBSITE_CONTENTSHARE":                         "Flex Consumption has no content share",
	"WEBSITE_DNS_SERVER":                           "not supported",
	"WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT":    "use maximum_instance_count",
	"WEBSITE_NODE_DEFAULT_VERSION":                 "not supported",
	"WEBSITE_RUN_FROM_PACKAGE":                     "the package comes from the deployment container (storage_container_endpoint)",
	"WEBSITE_SKIP_CONTENTSHARE_VALIDATION":         "Flex Consumption has no content share",
	"WEBSITE_VNET_ROUTE_ALL":                       "use vnet_application_traffic_enabled",
}

// functionApps returns the function app resources by resource name.
func functionApps(c *tfConfig) map[string]*hclsyntax.Block {
	out := map[string]*hclsyntax.Block{}
	for key, b := range c.resources {
		if typ, name, _ := strings.Cut(key, "."); typ == functionAppType {
			out[name] = b
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// flexSettingsProblems checks each function app's app settings against the explicit
// required, forbidden and platform lists.
func flexSettingsProblems(c *tfConfig) []string {
	var msgs []string
	apps := functionApps(c)
	if len(apps) == 0 {
		return []string{"no " + functionAppType + " resource"}
	}
	for _, name := range sortedKeys(apps) {
		where := functionAppType + "." + name
		a, ok := apps[name].Body.Attributes["app_settings"]
		if !ok {
			msgs = append(msgs, where+" has no app_settings")
			continue
		}
		vals, err := c.settingValues(a.Expr)
		if err != nil {
			msgs = append(msgs, fmt.Sprintf("%s: %v", where, err))
			continue
		}
		for _, req := range sortedKeys(flexRequiredSettings) {
			if _, ok := vals[req]; !ok {
				msgs = append(msgs, fmt.Sprintf("%s does not set required app setting %s: %s", where, req, flexRequiredSettings[req]))
			}
		}
		for _, k := range sortedKeys(vals) {
			if why, bad := flexForbiddenSettings[k]; bad {
				msgs = append(msgs, fmt.Sprintf("%s sets app setting %s, which Flex Consumption does not accept: %s", where, k, why))
				continue
			}
			ps, ok := platformSettings[k]
			if !ok || !ps.mustEqual {
				continue
			}
			for _, e := range vals[k] {
				v, diags := e.Value(nil)
				if diags.HasErrors() || v.Type() != cty.String || v.AsString() != ps.want {
					msgs = append(msgs, fmt.Sprintf("%s sets %s = %s, want %q", where, k, c.exprSource(e), ps.want))
				}
			}
		}
	}
	return msgs
}

// ---------------------------------------------------------------------------------
// The app role assignment.

// traversalOf returns the traversal of e when it is a plain reference.
func traversalOf(e hclsyntax.Expression) (hcl.Traversal, bool) {
	switch e := e.(type) {
	case *hclsyntax.ScopeTraversalExpr:
		return e.Traversal, true
	case *hclsyntax.RelativeTraversalExpr:
		src, ok := traversalOf(e.Source)
		if !ok {
			return nil, false
		}
		return append(slices.Clone(src), e.Traversal...), true
	case *hclsyntax.IndexExpr:
		src, ok := traversalOf(e.Collection)
		if !ok {
			return nil, false
		}
		return append(slices.Clone(src), hcl.TraverseIndex{}), true
	}
	return nil, false
}

// roleAssignmentProblems checks azuread_app_role_assignment.caller's three IDs: the
// callee's service principal (not its application), the callee's own app role, and the
// caller's identity.
func roleAssignmentProblems(c *tfConfig) []string {
	const key = "azuread_app_role_assignment.caller"
	as, ok := c.resources[key]
	if !ok {
		return []string{key + " is not declared"}
	}
	get := func(n string) hclsyntax.Expression {
		if a, ok := as.Body.Attributes[n]; ok {
			return a.Expr
		}
		return nil
	}
	var msgs []string

	// The service principal whose client_id is the callee application's.
	var calleeSPs []string
	for k, b := range c.resources {
		if t, n, _ := strings.Cut(k, "."); t == "azuread_service_principal" {
			if a, ok := b.Body.Attributes["client_id"]; ok && c.exprSource(a.Expr) == "azuread_application.callee.client_id" {
				calleeSPs = append(calleeSPs, n)
			}
		}
	}
	if len(calleeSPs) != 1 {
		msgs = append(msgs, fmt.Sprintf("want exactly one azuread_service_principal with client_id = azuread_application.callee.client_id, found %d", len(calleeSPs)))
		return msgs
	}
	sp := "azuread_service_principal." + calleeSPs[0]

	if e := get("resource_object_id"); e == nil {
		msgs = append(msgs, key+" has no resource_object_id")
	} else if got := c.exprSource(e); got != sp+".object_id" {
		msgs = append(msgs, fmt.Sprintf("%s: resource_object_id = %s, want %s.object_id: the resource is the callee's service principal (enterprise application), not its application object", key, got, sp))
	}

	if e := get("app_role_id"); e == nil {
		msgs = append(msgs, key+" has no app_role_id")
	} else {
		got := c.exprSource(e)
		var roleValue, roleID string
		if app, ok := c.resources["azuread_application.callee"]; ok {
			if roles := nested(app, "app_role"); len(roles) == 1 {
				if a, ok := roles[0].Body.Attributes["value"]; ok {
					roleValue = c.exprSource(a.Expr)
				}
				if a, ok := roles[0].Body.Attributes["id"]; ok {
					roleID = c.exprSource(a.Expr)
				}
			}
		}
		viaSP := roleValue != "" && got == sp+".app_role_ids["+roleValue+"]"
		viaID := roleID != "" && got == roleID
		if !viaSP && !viaID {
			msgs = append(msgs, fmt.Sprintf("%s: app_role_id = %s, want %s.app_role_ids[%s] (or the app role's id, %s): the ID of the callee's own app role", key, got, sp, roleValue, roleID))
		}
	}

	if e := get("principal_object_id"); e == nil {
		msgs = append(msgs, key+" has no principal_object_id")
	} else if got := c.exprSource(e); got != "local.caller_principal_id" {
		msgs = append(msgs, fmt.Sprintf("%s: principal_object_id = %s, want local.caller_principal_id (the caller identity that is also in AUTHMW_ALLOWED_IDENTITIES)", key, got))
	}
	if l, ok := c.locals["caller_principal_id"]; !ok {
		msgs = append(msgs, "local.caller_principal_id is not declared")
	} else {
		src := c.exprSource(l.Expr)
		if !strings.Contains(src, functionAppType+".caller.identity[0].principal_id") {
			msgs = append(msgs, fmt.Sprintf("local.caller_principal_id = %s does not use the caller's system-assigned identity (%s.caller.identity[0].principal_id)", src, functionAppType))
		}
	}
	return msgs
}

// ---------------------------------------------------------------------------------
// Each app's own deployment container.

// deploymentContainerProblems checks that every function app deploys from the storage
// container named like itself, and that no two containers share a name.
func deploymentContainerProblems(c *tfConfig) []string {
	var msgs []string
	apps := functionApps(c)
	for _, name := range sortedKeys(apps) {
		where := functionAppType + "." + name
		a, ok := apps[name].Body.Attributes["storage_container_endpoint"]
		if !ok {
			msgs = append(msgs, where+" has no storage_container_endpoint")
			continue
		}
		var containers []string
		for _, tr := range a.Expr.Variables() {
			if tr.RootName() == "azurerm_storage_container" && len(tr) > 1 {
				if at, ok := tr[1].(hcl.TraverseAttr); ok {
					containers = append(containers, at.Name)
				}
			}
		}
		if len(containers) != 1 || containers[0] != name {
			msgs = append(msgs, fmt.Sprintf("%s deploys from deployment container(s) %q, want its own azurerm_storage_container.%s: apps sharing a container overwrite each other's package", where, containers, name))
		}
		if _, ok := c.resources["azurerm_storage_container."+name]; !ok {
			msgs = append(msgs, fmt.Sprintf("%s: azurerm_storage_container.%s (its deployment container) is not declared", where, name))
		}
	}
	seen := map[string]string{}
	for _, key := range sortedKeys(c.resources) {
		if !strings.HasPrefix(key, "azurerm_storage_container.") {
			continue
		}
		a, ok := c.resources[key].Body.Attributes["name"]
		if !ok {
			continue
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() || v.Type() != cty.String {
			msgs = append(msgs, fmt.Sprintf("%s: name is not a literal", key))
			continue
		}
		if other, dup := seen[v.AsString()]; dup {
			msgs = append(msgs, fmt.Sprintf("%s and %s are both named %q: each app needs its own deployment container", other, key, v.AsString()))
		}
		seen[v.AsString()] = key
	}
	return msgs
}

// ---------------------------------------------------------------------------------
// The code deployment step.

// configZipFlags are the flags `az functionapp deployment source config-zip` takes
// (its own and the CLI's global ones).
var configZipFlags = []string{
	"--src", "--ids", "--subscription", "--resource-group", "-g", "--name", "-n", "--slot", "-s",
	"--build-remote", "--timeout", "--only-show-errors", "--output", "-o", "--query", "--debug", "--verbose",
}

// localExecCommand returns the source of a resource's local-exec command with local.X
// interpolations replaced by the locals' sources, and its environment expression.
func (c *tfConfig) localExecCommand(b *hclsyntax.Block) (string, *hclsyntax.Attribute, bool) {
	for _, p := range nested(b, "provisioner") {
		if len(p.Labels) != 1 || p.Labels[0] != "local-exec" {
			continue
		}
		cmd, ok := p.Body.Attributes["command"]
		if !ok {
			return "", nil, false
		}
		return c.expandLocals(c.exprSource(cmd.Expr), 0), p.Body.Attributes["environment"], true
	}
	return "", nil, false
}

// expandLocals replaces "${local.x}" (and a source that is just "local.x") with the
// source of local.x, repeatedly, for the locals the text refers to.
func (c *tfConfig) expandLocals(src string, depth int) string {
	if depth > 5 {
		return src
	}
	if strings.HasPrefix(src, "local.") {
		if l, ok := c.locals[strings.TrimPrefix(src, "local.")]; ok {
			return c.expandLocals(c.exprSource(l.Expr), depth+1)
		}
	}
	for name, l := range c.locals {
		ref := "${local." + name + "}"
		if strings.Contains(src, ref) {
			src = strings.ReplaceAll(src, ref, c.expandLocals(c.exprSource(l.Expr), depth+1))
		}
	}
	return src
}

// commandLine returns the logical shell line (backslash continuations joined) holding
// needle, or "".
func commandLine(script, needle string) string {
	joined := strings.ReplaceAll(script, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		if strings.Contains(line, needle) {
			return line
		}
	}
	return ""
}

// deployStepProblems checks terraform_data.code: config-zip with --src and --ids (the
// app's resource ID, so the subscription Terraform used is the one deployed to), no
// unknown flags, and each attempt bounded by timeout.
func deployStepProblems(c *tfConfig) []string {
	const key = "terraform_data.code"
	b, ok := c.resources[key]
	if !ok {
		return []string{key + " is not declared"}
	}
	script, env, ok := c.localExecCommand(b)
	if !ok {
		return []string{key + " has no local-exec command"}
	}
	line := commandLine(script, "config-zip")
	if line == "" {
		return []string{key + ": the command does not run az functionapp deployment source config-zip"}
	}
	var msgs []string
	fields := strings.Fields(line)
	var flags []string
	for i, f := range fields {
		if f == "config-zip" {
			for _, g := range fields[i+1:] {
				if strings.HasPrefix(g, "-") {
					flags = append(flags, strings.SplitN(g, "=", 2)[0])
				}
			}
			break
		}
	}
	for _, f := range flags {
		if !slices.Contains(configZipFlags, f) {
			msgs = append(msgs, fmt.Sprintf("%s: config-zip has no %s flag (the package is passed with --src)", key, f))
		}
	}
	if !slices.Contains(flags, "--src") {
		msgs = append(msgs, fmt.Sprintf("%s: config-zip is run without --src (the zip to deploy)", key))
	}
	if !slices.Contains(flags, "--ids") {
		msgs = append(msgs, fmt.Sprintf("%s: config-zip is run without --ids <app resource ID>: by name it deploys into the CLI's default subscription, not necessarily the one Terraform used", key))
	}
	for _, f := range []string{"--resource-group", "-g", "--name", "-n", "--subscription"} {
		if slices.Contains(flags, f) {
			msgs = append(msgs, fmt.Sprintf("%s: config-zip gets %s; name the app by --ids alone (its resource ID carries subscription, group and name)", key, f))
		}
	}
	if before, _, _ := strings.Cut(line, " az "); !strings.Contains(before, `"$bound"`) {
		msgs = append(msgs, fmt.Sprintf("%s: config-zip is not run under the timeout (\"$bound\" -k 30 \"$ATTEMPT_TIMEOUT\" az ...): the CLI can poll the host forever", key))
	}
	if !strings.Contains(script, "bound=timeout") || !strings.Contains(script, "2.60") {
		msgs = append(msgs, fmt.Sprintf("%s: the command does not check for timeout and Azure CLI 2.60.0 or later", key))
	}
	envSrc := ""
	if env != nil {
		envSrc = c.exprSource(env.Expr)
	}
	if !strings.Contains(envSrc, "APP_ID") || !strings.Contains(envSrc, "each.value.id") || !strings.Contains(line, `"$APP_ID"`) {
		msgs = append(msgs, fmt.Sprintf("%s: --ids must be \"$APP_ID\" with APP_ID = each.value.id in environment", key))
	}
	if l, ok := c.locals["code_packages"]; ok {
		src := c.exprSource(l.Expr)
		for _, app := range sortedKeys(functionApps(c)) {
			if !strings.Contains(src, functionAppType+"."+app) || !regexpIDFor(src, app) {
				msgs = append(msgs, fmt.Sprintf("local.code_packages: the %s entry's id is not %s.%s.id", app, functionAppType, app))
			}
		}
	} else {
		msgs = append(msgs, "local.code_packages is not declared")
	}
	return msgs
}

// regexpIDFor reports whether src has "id = <app resource>[...].id" for app.
func regexpIDFor(src, app string) bool {
	for _, want := range []string{
		"id = " + functionAppType + "." + app + ".id",
		"id = " + functionAppType + "." + app + "[0].id",
	} {
		if strings.Contains(src, want) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------------
// AzureWebJobsStorage on re-apply.

// ignoredSettingKeys returns the app_settings keys a resource's lifecycle.ignore_changes
// lists, and whether it ignores app_settings as a whole.
func ignoredSettingKeys(b *hclsyntax.Block) (keys map[string]bool, whole bool) {
	keys = map[string]bool{}
	for _, lc := range nested(b, "lifecycle") {
		a, ok := lc.Body.Attributes["ignore_changes"]
		if !ok {
			continue
		}
		tup, ok := a.Expr.(*hclsyntax.TupleConsExpr)
		if !ok {
			continue
		}
		for _, e := range tup.Exprs {
			tr, ok := traversalOf(e)
			if !ok || tr.RootName() != "app_settings" {
				continue
			}
			if len(tr) == 1 {
				whole = true
				continue
			}
			if ix, ok := tr[1].(hcl.TraverseIndex); ok && ix.Key.Type() == cty.String {
				keys[ix.Key.AsString()] = true
			}
		}
	}
	return keys, whole
}

// planAppSettings emulates Terraform's plan for a map attribute under ignore_changes:
// the planned map is the configuration with each ignored key taken from the prior
// state (and dropped when the prior state has no such key), or the prior map when the
// whole attribute is ignored. It reports the keys whose planned value differs from
// the prior state.
func planAppSettings(config, prior map[string]string, ignored map[string]bool, whole bool) []string {
	planned := map[string]string{}
	if whole {
		planned = prior
	} else {
		for k, v := range config {
			planned[k] = v
		}
		for k := range ignored {
			if pv, ok := prior[k]; ok {
				planned[k] = pv
			} else {
				delete(planned, k)
			}
		}
	}
	var diff []string
	for k, v := range planned {
		if pv, ok := prior[k]; !ok || pv != v {
			diff = append(diff, k)
		}
	}
	for k := range prior {
		if _, ok := planned[k]; !ok {
			diff = append(diff, k)
		}
	}
	sort.Strings(diff)
	return diff
}

// providerReadDrops are the app settings azurerm's flex consumption Read removes from
// state (unpackFunctionAppFlexConsumptionSettings): AzureWebJobsStorage is parsed into
// storage_access_key, DEPLOYMENT_STORAGE_CONNECTION_STRING is filtered out.
var providerReadDrops = []string{"AzureWebJobsStorage", "DEPLOYMENT_STORAGE_CONNECTION_STRING"}

// hostStorageProblems proves, as far as offline tools allow, that a second plan of an
// unchanged configuration is a no-op for every function app's app_settings, and that an
// in-place update is followed by a step that sets AzureWebJobsStorage back to "".
func hostStorageProblems(c *tfConfig) []string {
	var msgs []string
	apps := functionApps(c)
	for _, name := range sortedKeys(apps) {
		where := functionAppType + "." + name
		a, ok := apps[name].Body.Attributes["app_settings"]
		if !ok {
			continue // reported by flexSettingsProblems
		}
		vals, err := c.settingValues(a.Expr)
		if err != nil {
			continue // reported by flexSettingsProblems
		}
		// State after apply, as the provider reads it back: the configuration (values
		// stand for themselves) without the keys its Read drops.
		config, prior := map[string]string{}, map[string]string{}
		for k, es := range vals {
			config[k] = c.exprSource(es[0])
			if !slices.Contains(providerReadDrops, k) {
				prior[k] = config[k]
			}
		}
		ignored, whole := ignoredSettingKeys(apps[name])
		if whole {
			msgs = append(msgs, where+": ignore_changes lists all of app_settings; ignore only app_settings[\"AzureWebJobsStorage\"] so that setting changes still apply")
		}
		if diff := planAppSettings(config, prior, ignored, whole); len(diff) > 0 {
			msgs = append(msgs, fmt.Sprintf("%s: every plan would change app_settings %q (the provider drops them from state on read) and every apply would restart the app: add lifecycle { ignore_changes = [app_settings[\"AzureWebJobsStorage\"]] }", where, diff))
		}
		if !ignored["AzureWebJobsStorage"] {
			continue
		}
		// An in-place update writes the provider's own AzureWebJobsStorage, so some
		// step replaced whenever this app changes must set it back to "".
		reset := false
		for key, b := range c.resources {
			if !strings.HasPrefix(key, "terraform_data.") {
				continue
			}
			triggered := false
			for _, lc := range nested(b, "lifecycle") {
				if r, ok := lc.Body.Attributes["replace_triggered_by"]; ok {
					for _, tr := range r.Expr.Variables() {
						if tr.RootName() == functionAppType && len(tr) > 1 {
							if at, ok := tr[1].(hcl.TraverseAttr); ok && at.Name == name {
								triggered = true
							}
						}
					}
				}
			}
			script, env, ok := c.localExecCommand(b)
			envSrc := ""
			if env != nil {
				envSrc = c.exprSource(env.Expr)
			}
			if triggered && ok && strings.Contains(script, `"AzureWebJobsStorage="`) && strings.Contains(envSrc, functionAppType+"."+name) {
				reset = true
			}
		}
		if !reset {
			msgs = append(msgs, fmt.Sprintf("%s: ignore_changes keeps the provider's keyless AzureWebJobsStorage after an in-place update; a terraform_data with replace_triggered_by = [%s] must set it back to \"\"", where, where))
		}
	}
	return msgs
}

// ---------------------------------------------------------------------------------
// Tenant precondition and the identity ID variable.

// tenantPreconditionProblems checks that the callee app and the role assignment each have a
// precondition comparing the azuread tenant with the managed identities' tenant.
func tenantPreconditionProblems(c *tfConfig) []string {
	var msgs []string
	for _, key := range []string{functionAppType + ".callee", "azuread_app_role_assignment.caller"} {
		b, ok := c.resources[key]
		if !ok {
			continue
		}
		found := false
		for _, lc := range nested(b, "lifecycle") {
			for _, pc := range nested(lc, "precondition") {
				if a, ok := pc.Body.Attributes["condition"]; ok {
					src := c.exprSource(a.Expr)
					if strings.Contains(src, "identity[0].tenant_id") && strings.Contains(src, "local.tenant_id") && strings.Contains(src, "==") {
						found = true
					}
				}
			}
		}
		if !found {
			msgs = append(msgs, fmt.Sprintf("%s has no precondition that the azuread tenant (local.tenant_id) equals the managed identity's tenant (identity[0].tenant_id)", key))
		}
	}
	return msgs
}

// identityIDValidationProblems checks caller_user_assigned_identity_id's validation the
// way the provider parses the ID: case-sensitively.
func identityIDValidationProblems(c *tfConfig) []string {
	const name = "caller_user_assigned_identity_id"
	good := "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id"
	var msgs []string
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{good, true},
		{strings.Replace(good, "resourceGroups", "resourcegroups", 1), false},
		{strings.Replace(good, "Microsoft.ManagedIdentity", "microsoft.managedidentity", 1), false},
		{strings.Replace(good, "userAssignedIdentities", "userassignedidentities", 1), false},
		{strings.Replace(good, "/subscriptions/", "/Subscriptions/", 1), false},
	} {
		failed, err := evalValidation(c, name, cty.StringVal(tc.value))
		if err != nil {
			return []string{err.Error()}
		}
		if tc.ok && len(failed) > 0 {
			msgs = append(msgs, fmt.Sprintf("variable %s rejects %s: %q", name, tc.value, failed))
		}
		if !tc.ok && len(failed) == 0 {
			msgs = append(msgs, fmt.Sprintf("variable %s accepts %s, which the provider rejects (it parses resource IDs case-sensitively)", name, tc.value))
		}
	}
	return msgs
}

// ---------------------------------------------------------------------------------
// Version floor and lock file.

// semver is a provider version, major.minor.patch.
type semver [3]int

func parseSemver(s string) (semver, error) {
	var v semver
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) == 0 || len(parts) > 3 {
		return v, fmt.Errorf("version %q is not major[.minor[.patch]]", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, fmt.Errorf("version %q is not major[.minor[.patch]]", s)
		}
		v[i] = n
	}
	return v, nil
}

func (v semver) less(w semver) bool {
	for i := range v {
		if v[i] != w[i] {
			return v[i] < w[i]
		}
	}
	return false
}

func (v semver) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

// constraintLowerBound returns the lowest version a Terraform version constraint allows
// ("~> 4.58", ">= 4.58.0, < 5.0.0", "4.58.0", "= 4.58.0").
func constraintLowerBound(constraint string) (semver, error) {
	var low semver
	found := false
	for _, part := range strings.Split(constraint, ",") {
		part = strings.TrimSpace(part)
		op := ""
		for _, o := range []string{"~>", ">=", "<=", "!=", ">", "<", "="} {
			if strings.HasPrefix(part, o) {
				op = o
				break
			}
		}
		v, err := parseSemver(strings.TrimSpace(strings.TrimPrefix(part, op)))
		if err != nil {
			return low, fmt.Errorf("constraint %q: %v", constraint, err)
		}
		switch op {
		case "~>", ">=", "=", "":
		case ">":
			v[2]++
		default:
			continue // upper bounds and exclusions do not raise the floor
		}
		if !found || low.less(v) {
			low, found = v, true
		}
	}
	if !found {
		return low, fmt.Errorf("constraint %q has no lower bound", constraint)
	}
	return low, nil
}

// versionFloor is one fact: the first provider release in which an argument, used as
// the templates use it, works.
type versionFloor struct {
	provider, resource, argument string
	version                      string
	why                          string
	// applies reports whether the templates use the argument in the way that needs
	// version; nil means "whenever the argument is set".
	applies func(c *tfConfig, e hclsyntax.Expression) bool
}

// versionFloors are the facts from the providers' sources (testdata/README.md).
var versionFloors = []versionFloor{
	{provider: "azurerm", resource: functionAppType, argument: "https_only", version: "4.31.0",
		why: "the argument first exists in 4.31.0"},
	{provider: "azurerm", resource: functionAppType, argument: "maximum_instance_count", version: "4.39.0",
		why: "4.39.0 fixed updates of it not being applied"},
	{provider: "azurerm", resource: functionAppType, argument: "maximum_instance_count", version: "4.58.0",
		why: "values below 40 are accepted from 4.58.0, and the value used can be below 40",
		applies: func(c *tfConfig, e hclsyntax.Expression) bool {
			if v, diags := e.Value(nil); !diags.HasErrors() && v.Type() == cty.Number {
				return v.LessThan(cty.NumberIntVal(40)).True()
			}
			if tr, ok := traversalOf(e); ok && tr.RootName() == "var" && len(tr) == 2 {
				failed, err := evalValidation(c, tr[1].(hcl.TraverseAttr).Name, cty.NumberIntVal(39))
				return err == nil && len(failed) == 0
			}
			return true // unknown: assume it can
		}},
	{provider: "azuread", resource: "azuread_service_principal", argument: "client_id", version: "3.0.0",
		why: "azuread 3.0.0 renamed application_id to client_id"},
}

// requiredProviders returns the version constraint of each provider in
// terraform.required_providers.
func requiredProviders(c *tfConfig) (map[string]string, []string) {
	out := map[string]string{}
	var msgs []string
	for _, f := range c.files {
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if b.Type != "terraform" {
				continue
			}
			for _, rp := range nested(b, "required_providers") {
				for name, a := range rp.Body.Attributes {
					v, diags := a.Expr.Value(nil)
					if diags.HasErrors() || !v.Type().IsObjectType() || !v.Type().HasAttribute("version") {
						msgs = append(msgs, fmt.Sprintf("required_providers.%s has no literal version constraint", name))
						continue
					}
					out[name] = v.GetAttr("version").AsString()
				}
			}
		}
	}
	return out, msgs
}

// versionFloorProblems computes, per provider, the first version that has every
// argument used and checks the constraint's lower bound is not below it. Every
// provider whose resources are used must be constrained.
func versionFloorProblems(c *tfConfig, s *tfSchema) []string {
	constraints, msgs := requiredProviders(c)
	floors := map[string]semver{}
	reasons := map[string]string{}
	for _, f := range versionFloors {
		v, err := parseSemver(f.version)
		if err != nil {
			msgs = append(msgs, err.Error())
			continue
		}
		for key, b := range c.resources {
			if t, _, _ := strings.Cut(key, "."); t != f.resource {
				continue
			}
			a, ok := b.Body.Attributes[f.argument]
			if !ok || (f.applies != nil && !f.applies(c, a.Expr)) {
				continue
			}
			if cur, ok := floors[f.provider]; !ok || cur.less(v) {
				floors[f.provider] = v
				reasons[f.provider] = fmt.Sprintf("%s on %s: %s", f.argument, f.resource, f.why)
			}
		}
	}
	used := map[string]bool{}
	for key := range c.resources {
		t, _, _ := strings.Cut(key, ".")
		if p := s.providerOf(t); p != "" && p != "terraform" {
			used[p] = true
		}
	}
	for key := range c.data {
		t, _, _ := strings.Cut(key, ".")
		if p := s.providerOf(t); p != "" {
			used[p] = true
		}
	}
	for _, p := range sortedKeys(used) {
		if _, ok := constraints[p]; !ok {
			msgs = append(msgs, fmt.Sprintf("provider %s is used but has no version constraint in required_providers", p))
		}
	}
	for _, p := range sortedKeys(floors) {
		con, ok := constraints[p]
		if !ok {
			continue
		}
		low, err := constraintLowerBound(con)
		if err != nil {
			msgs = append(msgs, err.Error())
			continue
		}
		if low.less(floors[p]) {
			msgs = append(msgs, fmt.Sprintf("%s version constraint %q allows %s, but the templates need %s or later (%s): raise the floor to \"~> %d.%d\"", p, con, low, floors[p], reasons[p], floors[p][0], floors[p][1]))
		}
	}
	return msgs
}

// lockFileProblems applies the lock-file policy (docs/deploy-azure.md): when a
// .terraform.lock.hcl is committed, each locked provider must satisfy the floor of
// required_providers, with the same constraint string. Without one there is nothing
// to check here; the floor itself is checked by versionFloorProblems.
func lockFileProblems(c *tfConfig, dir string) []string {
	src, err := os.ReadFile(filepath.Join(dir, ".terraform.lock.hcl"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return []string{err.Error()}
	}
	return lockProblems(c, src)
}

func lockProblems(c *tfConfig, src []byte) []string {
	f, diags := hclparse.NewParser().ParseHCL(src, ".terraform.lock.hcl")
	if diags.HasErrors() {
		return []string{".terraform.lock.hcl: " + diags.Error()}
	}
	constraints, msgs := requiredProviders(c)
	locked := map[string]bool{}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "provider" || len(b.Labels) != 1 {
			continue
		}
		addr := b.Labels[0]
		name := addr[strings.LastIndex(addr, "/")+1:]
		locked[name] = true
		con, ok := constraints[name]
		if !ok {
			continue
		}
		str := func(n string) string {
			if a, ok := b.Body.Attributes[n]; ok {
				if v, d := a.Expr.Value(nil); !d.HasErrors() && v.Type() == cty.String {
					return v.AsString()
				}
			}
			return ""
		}
		if got := str("constraints"); got != con {
			msgs = append(msgs, fmt.Sprintf(".terraform.lock.hcl locks %s with constraints %q, but versions.tf says %q: regenerate it with terraform providers lock", name, got, con))
		}
		v, err := parseSemver(str("version"))
		if err != nil {
			msgs = append(msgs, fmt.Sprintf(".terraform.lock.hcl %s: %v", name, err))
			continue
		}
		if low, err := constraintLowerBound(con); err == nil && v.less(low) {
			msgs = append(msgs, fmt.Sprintf(".terraform.lock.hcl locks %s %s, below the floor %s", name, v, low))
		}
	}
	for _, p := range sortedKeys(constraints) {
		if !locked[p] {
			msgs = append(msgs, fmt.Sprintf(".terraform.lock.hcl does not lock %s", p))
		}
	}
	return msgs
}
