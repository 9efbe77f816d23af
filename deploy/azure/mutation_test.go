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
