// Package azure holds the tests of the Terraform templates in this directory: they parse
// every .tf file with HCL (no terraform init, no network), check references, and check
// that the app settings the templates set are exactly the ones the code reads.
package azure

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// tfConfig is the part of a Terraform module the tests look at.
type tfConfig struct {
	files     map[string]*hcl.File // by base name
	variables map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	resources map[string]*hclsyntax.Block // "type.name"
	data      map[string]*hclsyntax.Block // "type.name"
	outputs   map[string]*hclsyntax.Block
	problems  []string // duplicate declarations and similar
}

// loadConfig parses every *.tf file in dir. Syntax errors are returned as one error
// that lists each diagnostic with its position.
func loadConfig(dir string) (*tfConfig, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no .tf files in %s", dir)
	}
	sort.Strings(paths)
	srcs := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		srcs[filepath.Base(p)] = b
	}
	return parseConfig(srcs)
}

// parseConfig parses Terraform sources given by file name.
func parseConfig(srcs map[string][]byte) (*tfConfig, error) {
	parser := hclparse.NewParser()
	c := &tfConfig{
		files:     map[string]*hcl.File{},
		variables: map[string]*hclsyntax.Block{},
		locals:    map[string]*hclsyntax.Attribute{},
		resources: map[string]*hclsyntax.Block{},
		data:      map[string]*hclsyntax.Block{},
		outputs:   map[string]*hclsyntax.Block{},
	}
	names := make([]string, 0, len(srcs))
	for name := range srcs {
		names = append(names, name)
	}
	sort.Strings(names)
	var diags hcl.Diagnostics
	for _, name := range names {
		f, d := parser.ParseHCL(srcs[name], name)
		diags = append(diags, d...)
		if f != nil {
			c.files[name] = f
		}
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("HCL syntax: %s", diags.Error())
	}
	for _, name := range names {
		body := c.files[name].Body.(*hclsyntax.Body)
		if len(body.Attributes) > 0 {
			for n := range body.Attributes {
				c.problems = append(c.problems, fmt.Sprintf("%s: top-level attribute %q (Terraform allows only blocks)", name, n))
			}
		}
		for _, b := range body.Blocks {
			c.addBlock(name, b)
		}
	}
	return c, nil
}

func (c *tfConfig) addBlock(file string, b *hclsyntax.Block) {
	dup := func(kind, key string) {
		c.problems = append(c.problems, fmt.Sprintf("%s:%d: %s %q declared twice", file, b.TypeRange.Start.Line, kind, key))
	}
	switch b.Type {
	case "variable", "output":
		if len(b.Labels) != 1 {
			c.problems = append(c.problems, fmt.Sprintf("%s:%d: %s block needs one label", file, b.TypeRange.Start.Line, b.Type))
			return
		}
		m := c.variables
		if b.Type == "output" {
			m = c.outputs
		}
		if _, ok := m[b.Labels[0]]; ok {
			dup(b.Type, b.Labels[0])
		}
		m[b.Labels[0]] = b
	case "locals":
		for n, a := range b.Body.Attributes {
			if _, ok := c.locals[n]; ok {
				dup("local", n)
			}
			c.locals[n] = a
		}
	case "resource", "data":
		if len(b.Labels) != 2 {
			c.problems = append(c.problems, fmt.Sprintf("%s:%d: %s block needs two labels", file, b.TypeRange.Start.Line, b.Type))
			return
		}
		m := c.resources
		if b.Type == "data" {
			m = c.data
		}
		key := b.Labels[0] + "." + b.Labels[1]
		if _, ok := m[key]; ok {
			dup(b.Type, key)
		}
		m[key] = b
	case "terraform", "provider", "module", "moved", "import", "check", "removed":
	default:
		c.problems = append(c.problems, fmt.Sprintf("%s:%d: unknown top-level block %q", file, b.TypeRange.Start.Line, b.Type))
	}
}

// reference is one var./local./resource/data reference found in an expression.
type reference struct {
	kind  string // "var", "local", "resource", "data"
	name  string // variable or local name, or "type.name"
	where string // file:line
}

// references lists every var.X, local.X, data.T.N and T.N traversal in the module.
func (c *tfConfig) references() []reference {
	var refs []reference
	for fname, f := range c.files {
		_ = hclsyntax.VisitAll(f.Body.(*hclsyntax.Body), func(n hclsyntax.Node) hcl.Diagnostics {
			e, ok := n.(*hclsyntax.ScopeTraversalExpr)
			if !ok {
				return nil
			}
			tr := e.Traversal
			where := fmt.Sprintf("%s:%d", fname, e.SrcRange.Start.Line)
			root := tr.RootName()
			attr := func(i int) (string, bool) {
				if len(tr) <= i {
					return "", false
				}
				a, ok := tr[i].(hcl.TraverseAttr)
				return a.Name, ok
			}
			switch root {
			case "var", "local":
				if name, ok := attr(1); ok {
					refs = append(refs, reference{kind: root, name: name, where: where})
				}
			case "data":
				t, ok1 := attr(1)
				name, ok2 := attr(2)
				if ok1 && ok2 {
					refs = append(refs, reference{kind: "data", name: t + "." + name, where: where})
				}
			case "each", "count", "self", "path", "terraform", "module":
			default:
				// A resource reference is type.name; anything else with a dot-free root
				// (for-expression iterators and the like) has no resource-type prefix.
				if strings.Contains(root, "_") {
					if name, ok := attr(1); ok {
						refs = append(refs, reference{kind: "resource", name: root + "." + name, where: where})
					}
				}
			}
			return nil
		})
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].where < refs[j].where })
	return refs
}

// settingKeys returns the app-setting names an app_settings expression can set: the keys
// of every object constructor it is built from, following merge(...), conditionals,
// parentheses and local.X references. Keys that cannot be known statically are errors.
func (c *tfConfig) settingKeys(e hclsyntax.Expression) (map[string]bool, error) {
	vals, err := c.settingValues(e)
	if err != nil {
		return nil, err
	}
	keys := make(map[string]bool, len(vals))
	for k := range vals {
		keys[k] = true
	}
	return keys, nil
}

// settingValues is settingKeys with, for each name, every value expression it can take.
func (c *tfConfig) settingValues(e hclsyntax.Expression) (map[string][]hclsyntax.Expression, error) {
	vals := map[string][]hclsyntax.Expression{}
	var walk func(e hclsyntax.Expression, depth int) error
	walk = func(e hclsyntax.Expression, depth int) error {
		if depth > 20 {
			return fmt.Errorf("%s: local references nest too deep", e.Range())
		}
		switch e := e.(type) {
		case *hclsyntax.ObjectConsExpr:
			for _, item := range e.Items {
				k, err := literalKey(item.KeyExpr)
				if err != nil {
					return err
				}
				vals[k] = append(vals[k], item.ValueExpr)
			}
			return nil
		case *hclsyntax.FunctionCallExpr:
			if e.Name != "merge" {
				return fmt.Errorf("%s: app_settings uses %s(...); only merge, conditionals, object literals and locals can be checked", e.Range(), e.Name)
			}
			for _, a := range e.Args {
				if err := walk(a, depth+1); err != nil {
					return err
				}
			}
			return nil
		case *hclsyntax.ConditionalExpr:
			if err := walk(e.TrueResult, depth+1); err != nil {
				return err
			}
			return walk(e.FalseResult, depth+1)
		case *hclsyntax.ParenthesesExpr:
			return walk(e.Expression, depth+1)
		case *hclsyntax.ScopeTraversalExpr:
			if e.Traversal.RootName() == "local" && len(e.Traversal) == 2 {
				name := e.Traversal[1].(hcl.TraverseAttr).Name
				a, ok := c.locals[name]
				if !ok {
					return fmt.Errorf("%s: local.%s is not declared", e.Range(), name)
				}
				return walk(a.Expr, depth+1)
			}
			return fmt.Errorf("%s: app_settings refers to %s, whose keys cannot be checked; build it from object literals", e.Range(), traversalString(e.Traversal))
		default:
			return fmt.Errorf("%s: app_settings expression %T cannot be checked statically", e.Range(), e)
		}
	}
	if err := walk(e, 0); err != nil {
		return nil, err
	}
	return vals, nil
}

// literalKey returns an object constructor key that is a bare name or a literal string.
func literalKey(k hclsyntax.Expression) (string, error) {
	if kw := hcl.ExprAsKeyword(k); kw != "" {
		return kw, nil
	}
	v, diags := k.Value(nil)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
		return "", fmt.Errorf("%s: app setting name is not a literal", k.Range())
	}
	return v.AsString(), nil
}

func traversalString(t hcl.Traversal) string {
	var sb strings.Builder
	sb.WriteString(t.RootName())
	for _, s := range t[1:] {
		switch s := s.(type) {
		case hcl.TraverseAttr:
			sb.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			sb.WriteString("[…]")
		}
	}
	return sb.String()
}

// literal evaluates an expression that must not reference anything.
func literal(t *testing.T, e hclsyntax.Expression) cty.Value {
	t.Helper()
	v, diags := e.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("%s: not a literal: %s", e.Range(), diags.Error())
	}
	return v
}

// attr returns a block's attribute or fails.
func attr(t *testing.T, b *hclsyntax.Block, name string) *hclsyntax.Attribute {
	t.Helper()
	a, ok := b.Body.Attributes[name]
	if !ok {
		t.Fatalf("%s %q: no attribute %q", b.Type, strings.Join(b.Labels, "."), name)
	}
	return a
}

// nested returns the nested blocks of the given type.
func nested(b *hclsyntax.Block, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, nb := range b.Body.Blocks {
		if nb.Type == typ {
			out = append(out, nb)
		}
	}
	return out
}

// exprSource returns the source text of an expression.
func (c *tfConfig) exprSource(e hclsyntax.Expression) string {
	r := e.Range()
	f, ok := c.files[r.Filename]
	if !ok {
		return ""
	}
	return string(r.SliceBytes(f.Bytes))
}

// resourceLocal returns the value expression of key in the object literal local.name.
func (c *tfConfig) resourceLocal(t *testing.T, name, key string) hclsyntax.Expression {
	t.Helper()
	l, ok := c.locals[name]
	if !ok {
		t.Fatalf("local.%s is not declared", name)
	}
	obj, ok := l.Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("local.%s is not an object literal", name)
	}
	for _, item := range obj.Items {
		if k, err := literalKey(item.KeyExpr); err == nil && k == key {
			return item.ValueExpr
		}
	}
	t.Fatalf("local.%s has no key %s", name, key)
	return nil
}
