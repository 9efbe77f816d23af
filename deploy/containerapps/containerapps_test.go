// Package containerapps holds the tests of the Container Apps sidecar example: they
// parse every .tf file with HCL (no terraform init, no network) and check that the
// gateway's settings are exactly ones the code reads, with values the code accepts.
package containerapps

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/callee"
)

// module is the parsed configuration.
type module struct {
	files     map[string]*hcl.File
	locals    map[string]*hclsyntax.Attribute
	variables map[string]*hclsyntax.Block
	resources map[string]*hclsyntax.Block
}

func load(t *testing.T) *module {
	t.Helper()
	paths, err := filepath.Glob("*.tf")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .tf files: %v", err)
	}
	sort.Strings(paths)
	p := hclparse.NewParser()
	m := &module{files: map[string]*hcl.File{}, locals: map[string]*hclsyntax.Attribute{},
		variables: map[string]*hclsyntax.Block{}, resources: map[string]*hclsyntax.Block{}}
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", path, diags.Error())
		}
		m.files[path] = f
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			switch b.Type {
			case "locals":
				for n, a := range b.Body.Attributes {
					if _, dup := m.locals[n]; dup {
						t.Errorf("local %s declared twice", n)
					}
					m.locals[n] = a
				}
			case "variable":
				m.variables[b.Labels[0]] = b
			case "resource":
				m.resources[b.Labels[0]+"."+b.Labels[1]] = b
			}
		}
	}
	return m
}

func (m *module) source(e hclsyntax.Expression) string {
	r := e.Range()
	return string(r.SliceBytes(m.files[r.Filename].Bytes))
}

// settings returns the gateway_settings object literal: name -> value expression.
func (m *module) settings(t *testing.T) map[string]hclsyntax.Expression {
	t.Helper()
	a, ok := m.locals["gateway_settings"]
	if !ok {
		t.Fatal("local.gateway_settings is not declared")
	}
	obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatal("local.gateway_settings is not an object literal (its names could not be checked)")
	}
	out := map[string]hclsyntax.Expression{}
	for _, item := range obj.Items {
		k := hcl.ExprAsKeyword(item.KeyExpr)
		if k == "" {
			t.Fatalf("%s: setting name is not a bare name", item.KeyExpr.Range())
		}
		out[k] = item.ValueExpr
	}
	return out
}

// evalContext gives every variable its default and knows the locals that are literals,
// plus Terraform's tostring.
func (m *module) evalContext(t *testing.T) *hcl.EvalContext {
	t.Helper()
	vars := map[string]cty.Value{}
	for name, b := range m.variables {
		if d, ok := b.Body.Attributes["default"]; ok {
			v, diags := d.Expr.Value(nil)
			if !diags.HasErrors() {
				vars[name] = v
			}
		}
	}
	locals := map[string]cty.Value{}
	for name, a := range m.locals {
		if v, diags := a.Expr.Value(nil); !diags.HasErrors() {
			locals[name] = v
		}
	}
	tostring := function.New(&function.Spec{
		Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return convert.Convert(args[0], cty.String)
		},
	})
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars), "local": cty.ObjectVal(locals)},
		Functions: map[string]function.Function{"tostring": tostring},
	}
}

// TestGatewaySettingsMatchCode: every setting is one the code reads; the ones a
// gateway needs are all there.
func TestGatewaySettingsMatchCode(t *testing.T) {
	m := load(t)
	set := m.settings(t)
	allowed := append(append(authmw.EnvVars(), callee.Settings()...), callee.EnvPort)
	for name := range set {
		if !slices.Contains(allowed, name) {
			t.Errorf("gateway_settings sets %s, which the callee never reads (not in authmw.EnvVars, callee.Settings or PORT)", name)
		}
	}
	required := append(callee.RequiredSettings(), "AUTHMW_TENANT_ID", "AUTHMW_REQUIRED_ROLES", "AUTHMW_ALLOWED_IDENTITIES",
		"AUTHMW_EXCLUDED_PATHS", callee.EnvUpstreamURL, callee.EnvListenHost, callee.EnvPort)
	for _, name := range required {
		if _, ok := set[name]; !ok {
			t.Errorf("gateway_settings does not set %s", name)
		}
	}
}

// TestGatewaySettingsAreAccepted evaluates the settings whose values are known before
// apply (variable defaults) and hands them to the callee's own parsers.
func TestGatewaySettingsAreAccepted(t *testing.T) {
	m := load(t)
	ctx := m.evalContext(t)
	env := map[string]string{}
	for name, e := range m.settings(t) {
		v, diags := e.Value(ctx)
		if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
			continue // known only after apply (tenant, client ID)
		}
		s, err := convert.Convert(v, cty.String)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		env[name] = s.AsString()
	}
	getenv := func(k string) string { return env[k] }
	if env[callee.EnvUpstreamURL] != "http://127.0.0.1:3000" {
		t.Errorf("%s = %q; want the app on loopback, http://127.0.0.1:<app_port>", callee.EnvUpstreamURL, env[callee.EnvUpstreamURL])
	}
	cfg, err := callee.GatewayConfigFromEnv(getenv)
	if err != nil || cfg == nil {
		t.Fatalf("the callee refuses the gateway settings: %v", err)
	}
	addr, err := callee.ListenAddr(getenv)
	if err != nil || addr != "0.0.0.0:8080" {
		t.Errorf("listen address %q, %v; want 0.0.0.0:8080", addr, err)
	}
	if !slices.Contains(strings.Split(env["AUTHMW_EXCLUDED_PATHS"], ","), callee.HealthzPath) {
		t.Errorf("AUTHMW_EXCLUDED_PATHS = %q; the probes need %s without a token", env["AUTHMW_EXCLUDED_PATHS"], callee.HealthzPath)
	}
}

func nested(b *hclsyntax.Block, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, nb := range b.Body.Blocks {
		if nb.Type == typ {
			out = append(out, nb)
		}
	}
	return out
}

// TestSidecarShape: ingress reaches the gateway only; the gateway gets its settings
// from gateway_settings and the app none of them; the readiness probe is the gateway's
// health endpoint.
func TestSidecarShape(t *testing.T) {
	m := load(t)
	app, ok := m.resources["azurerm_container_app.api"]
	if !ok {
		t.Fatal("no azurerm_container_app.api")
	}
	ingress := nested(app, "ingress")
	if len(ingress) != 1 || m.source(ingress[0].Body.Attributes["target_port"].Expr) != "local.gateway_port" {
		t.Fatal("ingress must target local.gateway_port")
	}
	if src := m.source(ingress[0].Body.Attributes["allow_insecure_connections"].Expr); src != "false" {
		t.Errorf("allow_insecure_connections = %s; want false", src)
	}
	tmpl := nested(app, "template")
	if len(tmpl) != 1 {
		t.Fatal("one template block expected")
	}
	containers := map[string]*hclsyntax.Block{}
	for _, c := range nested(tmpl[0], "container") {
		v, _ := c.Body.Attributes["name"].Expr.Value(nil)
		containers[v.AsString()] = c
	}
	gw, appC := containers["gateway"], containers["app"]
	if gw == nil || appC == nil || len(containers) != 2 {
		t.Fatalf("containers %v; want gateway and app", containers)
	}
	envSource := func(c *hclsyntax.Block) string {
		for _, d := range nested(c, "dynamic") {
			if d.Labels[0] == "env" {
				return m.source(d.Body.Attributes["for_each"].Expr)
			}
		}
		return ""
	}
	if envSource(gw) != "local.gateway_settings" {
		t.Errorf("the gateway's env comes from %q; want local.gateway_settings", envSource(gw))
	}
	if strings.Contains(envSource(appC), "gateway_settings") || len(nested(appC, "env")) > 0 {
		t.Error("the app container gets the gateway's settings")
	}
	rp := nested(gw, "readiness_probe")
	if len(rp) != 1 {
		t.Fatal("the gateway needs a readiness probe")
	}
	if v, _ := rp[0].Body.Attributes["path"].Expr.Value(nil); v.AsString() != callee.HealthzPath || m.source(rp[0].Body.Attributes["port"].Expr) != "local.gateway_port" {
		t.Errorf("readiness probe %s on %s; want %s on local.gateway_port", v.GoString(), m.source(rp[0].Body.Attributes["port"].Expr), callee.HealthzPath)
	}
	for addr := range m.resources {
		if strings.Contains(addr, "auth") && strings.HasPrefix(addr, "azurerm_container_app") {
			t.Errorf("%s: Container Apps authentication must stay off; the gateway replaces it", addr)
		}
	}
}

// TestTerraformFmt runs `terraform fmt -check` when terraform is installed (offline).
func TestTerraformFmt(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform not on PATH")
	}
	cmd := exec.Command(tf, "fmt", "-check", "-list=true", ".")
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Errorf("terraform fmt -check: %v; unformatted files:\n%s(run `terraform fmt` in deploy/containerapps)", err, out.String())
	}
}
