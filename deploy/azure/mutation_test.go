package azure

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tests of the template checks (checks_test.go, schema_test.go) against this
// directory's templates, and the mutation test that proves each check can fail.

func runCheck(t *testing.T, name string) {
	t.Helper()
	c := config(t)
	for _, ch := range templateChecks {
		if ch.name == name {
			for _, p := range ch.run(c, ".") {
				t.Error(p)
			}
			return
		}
	}
	t.Fatalf("no template check named %q", name)
}

// TestProviderSchema walks every resource, data and provider block against the real
// provider schemas: what `terraform validate` would report.
func TestProviderSchema(t *testing.T) { runCheck(t, "provider schema") }

// TestAttributeReferences checks every type.name.attr reference against the schemas.
func TestAttributeReferences(t *testing.T) { runCheck(t, "references to resource attributes") }

// TestFlexConsumptionAppSettings checks each app against the lists of app settings Flex
// Consumption requires and forbids.
func TestFlexConsumptionAppSettings(t *testing.T) { runCheck(t, "Flex Consumption app settings") }

// TestRoleAssignmentIDs checks the app role assignment's three IDs.
func TestRoleAssignmentIDs(t *testing.T) { runCheck(t, "app role assignment") }

// TestDeploymentContainers checks each app deploys from its own container.
func TestDeploymentContainers(t *testing.T) { runCheck(t, "deployment containers") }

// TestVersionFloor checks the provider constraints against the first versions that have
// every argument used.
func TestVersionFloor(t *testing.T) { runCheck(t, "version floor") }

// TestLockFilePolicy checks a committed .terraform.lock.hcl, if any, against the floor.
func TestLockFilePolicy(t *testing.T) { runCheck(t, "lock file") }

// TestCodeDeploymentStep checks the config-zip invocation.
func TestCodeDeploymentStep(t *testing.T) { runCheck(t, "code deployment step") }

// TestHostStorageStableOnReapply checks that a re-plan is a no-op for AzureWebJobsStorage
// and that updates are followed by its reset.
func TestHostStorageStableOnReapply(t *testing.T) { runCheck(t, "AzureWebJobsStorage on re-apply") }

// TestTenantPrecondition checks the azuread tenant is compared with the identities'.
func TestTenantPrecondition(t *testing.T) { runCheck(t, "tenant precondition") }

// TestIdentityIDValidation checks the identity ID validation is case-sensitive.
func TestIdentityIDValidation(t *testing.T) { runCheck(t, "identity ID validation") }

// TestTemplateChecksAllRun makes sure templateProblems, which the mutation test relies
// on, reports nothing for the committed templates.
func TestTemplateChecksAllRun(t *testing.T) {
	probs, err := templateProblems(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Error(p)
	}
}

// mutation is a change to one template file and a text the problems must contain.
type mutation struct {
	name      string
	file      string
	old, new  string
	wantInMsg []string
}

// templateMutations are the breakages issue 15 lists, plus the ones its fixes guard.
var templateMutations = []mutation{
	{
		name:      "role assignment resource is the application, not its service principal",
		file:      "entra.tf",
		old:       "resource_object_id  = azuread_service_principal.callee.object_id",
		new:       "resource_object_id  = azuread_application.callee.object_id",
		wantInMsg: []string{"resource_object_id = azuread_application.callee.object_id", "service principal"},
	},
	{
		name:      "app_role_id is the all-zero GUID",
		file:      "entra.tf",
		old:       "app_role_id         = azuread_service_principal.callee.app_role_ids[var.app_role_value]",
		new:       `app_role_id         = "00000000-0000-0000-0000-000000000000"`,
		wantInMsg: []string{`app_role_id = "00000000-0000-0000-0000-000000000000"`},
	},
	{
		name:      "FUNCTIONS_WORKER_RUNTIME added",
		file:      "apps.tf",
		old:       "    AzureWebJobsStorage              = \"\"\n",
		new:       "    AzureWebJobsStorage              = \"\"\n    FUNCTIONS_WORKER_RUNTIME         = \"custom\"\n",
		wantInMsg: []string{"FUNCTIONS_WORKER_RUNTIME", "Flex Consumption does not accept"},
	},
	{
		name:      "WEBSITE_RUN_FROM_PACKAGE added",
		file:      "apps.tf",
		old:       "    CALLER_SCHEDULE    = var.caller_schedule\n",
		new:       "    CALLER_SCHEDULE    = var.caller_schedule\n    WEBSITE_RUN_FROM_PACKAGE = \"1\"\n",
		wantInMsg: []string{"WEBSITE_RUN_FROM_PACKAGE", "Flex Consumption does not accept"},
	},
	{
		name:      "AzureWebJobsStorage removed",
		file:      "apps.tf",
		old:       "    AzureWebJobsStorage              = \"\"\n",
		new:       "",
		wantInMsg: []string{"does not set required app setting AzureWebJobsStorage:"},
	},
	{
		name:      "AzureWebJobsStorage given a value",
		file:      "apps.tf",
		old:       "    AzureWebJobsStorage              = \"\"\n",
		new:       "    AzureWebJobsStorage              = azurerm_storage_account.main.primary_connection_string\n",
		wantInMsg: []string{"sets AzureWebJobsStorage = azurerm_storage_account.main.primary_connection_string"},
	},
	{
		name:      "misspelt argument instance_memory_in_mbs",
		file:      "apps.tf",
		old:       "  instance_memory_in_mb       = var.instance_memory_mb\n",
		new:       "  instance_memory_in_mbs      = var.instance_memory_mb\n",
		wantInMsg: []string{`unsupported argument "instance_memory_in_mbs"`, `did you mean "instance_memory_in_mb"`},
	},
	{
		name:      "required argument removed",
		file:      "apps.tf",
		old:       "  runtime_version             = \"1.0\"\n",
		new:       "",
		wantInMsg: []string{`missing required argument "runtime_version"`},
	},
	{
		name:      "deprecated argument used",
		file:      "main.tf",
		old:       "  numeric = true\n",
		new:       "  number  = true\n",
		wantInMsg: []string{"argument number is deprecated"},
	},
	{
		name:      "caller deploys from the callee's container",
		file:      "apps.tf",
		old:       "${azurerm_storage_container.caller.name}",
		new:       "${azurerm_storage_container.callee.name}",
		wantInMsg: []string{"azurerm_function_app_flex_consumption.caller deploys from deployment container(s) [\"callee\"]"},
	},
	{
		name:      "azurerm constraint loosened to ~> 4.0",
		file:      "versions.tf",
		old:       `version = "~> 4.58"`,
		new:       `version = "~> 4.0"`,
		wantInMsg: []string{`azurerm version constraint "~> 4.0" allows 4.0.0`, "4.58.0"},
	},
	{
		name:      "config-zip --zip instead of --src",
		file:      "deploy.tf",
		old:       `--src "$ZIP_PATH"`,
		new:       `--zip "$ZIP_PATH"`,
		wantInMsg: []string{"config-zip has no --zip flag", "without --src"},
	},
	{
		name:      "config-zip by name instead of --ids",
		file:      "deploy.tf",
		old:       `--ids "$APP_ID" --src`,
		new:       `--resource-group "$RESOURCE_GROUP" --name "$APP_NAME" --src`,
		wantInMsg: []string{"without --ids"},
	},
	{
		name:      "config-zip without the timeout",
		file:      "deploy.tf",
		old:       `"$bound" -k 30 "$ATTEMPT_TIMEOUT" az functionapp deployment source config-zip`,
		new:       `az functionapp deployment source config-zip`,
		wantInMsg: []string{"not run under the timeout"},
	},
	{
		name:      "AzureWebJobsStorage no longer ignored",
		file:      "apps.tf",
		old:       "    ignore_changes = [app_settings[\"AzureWebJobsStorage\"]]\n  }\n}\n\nresource \"azurerm_function_app_flex_consumption\" \"callee\"",
		new:       "  }\n}\n\nresource \"azurerm_function_app_flex_consumption\" \"callee\"",
		wantInMsg: []string{`azurerm_function_app_flex_consumption.caller: every plan would change app_settings ["AzureWebJobsStorage"]`},
	},
	{
		name:      "no AzureWebJobsStorage reset after an update",
		file:      "deploy.tf",
		old:       "    replace_triggered_by = [azurerm_function_app_flex_consumption.callee]\n",
		new:       "",
		wantInMsg: []string{"azurerm_function_app_flex_consumption.callee: ignore_changes keeps the provider's keyless AzureWebJobsStorage"},
	},
	{
		name:      "lower-case identity IDs accepted",
		file:      "variables.tf",
		old:       `can(regex("^/subscriptions/`,
		new:       `can(regex("(?i)^/subscriptions/`,
		wantInMsg: []string{"accepts /subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/"},
	},
	{
		name:      "tenant precondition removed",
		file:      "entra.tf",
		old:       "condition     = azurerm_function_app_flex_consumption.caller.identity[0].tenant_id == local.tenant_id",
		new:       "condition     = true",
		wantInMsg: []string{"azuread_app_role_assignment.caller has no precondition"},
	},
	{
		name:      "reference to an attribute the resource does not have",
		file:      "entra.tf",
		old:       "azurerm_function_app_flex_consumption.caller.identity[0].principal_id",
		new:       "azurerm_function_app_flex_consumption.caller.identities[0].principal_id",
		wantInMsg: []string{`has no attribute "identities"`},
	},
}

// copyTemplates copies the .tf files of src into a new temporary directory.
func copyTemplates(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	paths, err := filepath.Glob(filepath.Join(src, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .tf files in %s: %v", src, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestTemplateMutationsAreCaught applies each mutation to a temporary copy of the
// templates and requires the checks to fail with a message naming the problem. A
// mutation that no longer applies (its text is gone) fails the test instead of
// passing silently.
func TestTemplateMutationsAreCaught(t *testing.T) {
	base := copyTemplates(t, ".")
	if probs, err := templateProblems(base); err != nil || len(probs) != 0 {
		t.Fatalf("the unmutated copy must pass every check first: err=%v problems=%q", err, probs)
	}
	for _, m := range templateMutations {
		t.Run(m.name, func(t *testing.T) {
			dir := copyTemplates(t, ".")
			path := filepath.Join(dir, m.file)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			src := string(b)
			if !strings.Contains(src, m.old) {
				t.Fatalf("mutation no longer applies: %s does not contain %q; update the mutation", m.file, m.old)
			}
			mutated := strings.Replace(src, m.old, m.new, 1)
			if mutated == src {
				t.Fatalf("mutation does not change %s", m.file)
			}
			if err := os.WriteFile(path, []byte(mutated), 0o644); err != nil {
				t.Fatal(err)
			}
			probs, err := templateProblems(dir)
			if err != nil {
				t.Fatalf("mutated templates do not parse: %v", err)
			}
			if len(probs) == 0 {
				t.Fatalf("mutation %q was not caught by any check", m.name)
			}
			joined := strings.Join(probs, "\n")
			for _, want := range m.wantInMsg {
				if !strings.Contains(joined, want) {
					t.Errorf("no problem mentions %q; got:\n%s", want, joined)
				}
			}
		})
	}
}

func TestConstraintLowerBound(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		err  bool
	}{
		{"~> 4.58", "4.58.0", false},
		{"~> 4.58.1", "4.58.1", false},
		{">= 4.31.0, < 5.0.0", "4.31.0", false},
		{"4.39.0", "4.39.0", false},
		{"= 3.0.0", "3.0.0", false},
		{"> 4.30.0", "4.30.1", false},
		{"< 5.0.0", "", true},
		{"~> four", "", true},
	} {
		got, err := constraintLowerBound(tt.in)
		if tt.err {
			if err == nil {
				t.Errorf("constraintLowerBound(%q) = %s, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("constraintLowerBound(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

// TestPlanAppSettings checks the ignore_changes emulation the re-apply check relies on.
func TestPlanAppSettings(t *testing.T) {
	config := map[string]string{"AzureWebJobsStorage": `""`, "A": "1"}
	prior := map[string]string{"A": "1"} // the provider dropped AzureWebJobsStorage on read
	if d := planAppSettings(config, prior, nil, false); strings.Join(d, ",") != "AzureWebJobsStorage" {
		t.Errorf("without ignore_changes diff = %q, want [AzureWebJobsStorage]", d)
	}
	if d := planAppSettings(config, prior, map[string]bool{"AzureWebJobsStorage": true}, false); len(d) != 0 {
		t.Errorf("with ignore_changes diff = %q, want none", d)
	}
	changed := map[string]string{"AzureWebJobsStorage": `""`, "A": "2"}
	if d := planAppSettings(changed, prior, map[string]bool{"AzureWebJobsStorage": true}, false); strings.Join(d, ",") != "A" {
		t.Errorf("a real change diff = %q, want [A]", d)
	}
	if d := planAppSettings(changed, prior, nil, true); len(d) != 0 {
		t.Errorf("ignoring all of app_settings diff = %q, want none", d)
	}
}

// TestLockProblems checks the lock-file policy on synthetic lock files.
func TestLockProblems(t *testing.T) {
	c := config(t)
	cons, _ := requiredProviders(c)
	var good strings.Builder
	for _, p := range sortedKeys(cons) {
		low, err := constraintLowerBound(cons[p])
		if err != nil {
			t.Fatal(err)
		}
		good.WriteString("provider \"registry.terraform.io/hashicorp/" + p + "\" {\n  version = \"" + low.String() + "\"\n  constraints = \"" + cons[p] + "\"\n  hashes = []\n}\n")
	}
	if msgs := lockProblems(c, []byte(good.String())); len(msgs) != 0 {
		t.Errorf("a lock at the floor is refused: %q", msgs)
	}
	stale := strings.Replace(good.String(), `version = "4.58.0"`, `version = "4.30.0"`, 1)
	stale = strings.Replace(stale, `constraints = "~> 4.58"`, `constraints = "~> 4.30"`, 1)
	if stale == good.String() {
		t.Fatal("the synthetic lock has no azurerm 4.58.0 entry to age")
	}
	msgs := strings.Join(lockProblems(c, []byte(stale)), "\n")
	for _, want := range []string{`locks azurerm with constraints "~> 4.30"`, "locks azurerm 4.30.0, below the floor 4.58.0"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("stale lock problems %q do not mention %q", msgs, want)
		}
	}
	if msgs := lockProblems(c, []byte("")); len(msgs) != len(cons) {
		t.Errorf("an empty lock gives %q, want one problem per provider", msgs)
	}
}

// TestSchemaWalkerBlocks checks the schema walk on nested and dynamic blocks.
func TestSchemaWalkerBlocks(t *testing.T) {
	c, err := parseConfig(map[string][]byte{"x.tf": []byte(`
resource "azurerm_function_app_flex_consumption" "x" {
  name                        = "x"
  location                    = "l"
  resource_group_name         = "g"
  service_plan_id             = "p"
  runtime_name                = "custom"
  runtime_version             = "1.0"
  storage_container_type      = "blobContainer"
  storage_container_endpoint  = "e"
  default_hostname            = "set"
  site_config = {}
  dynamic "identiti" {
    for_each = []
    content {}
  }
  identity {
    type   = "SystemAssigned"
    colour = "blue"
  }
}
`)})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(schemaProblems(c, mustSchema()), "\n")
	for _, want := range []string{
		"default_hostname is read-only",
		"site_config is a block, not an argument",
		`unsupported block type "identiti" (did you mean "identity"?)`,
		`.identity (line 19): unsupported argument "colour"`,
		`at least 1 "site_config" block(s) required`,
		`missing required argument "storage_authentication_type"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("schema problems do not mention %q:\n%s", want, got)
		}
	}
}
