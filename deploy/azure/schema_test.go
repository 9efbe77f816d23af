package azure

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The providers' real schemas (testdata/providers-schema.json, the output of
// `terraform providers schema -json`), and a walk of the parsed templates against them
// that reports what `terraform validate` would: unknown or misspelt arguments and
// blocks, missing required ones, deprecated ones, read-only ones that are set.

// schemaFile is the committed copy; see testdata/README.md.
const schemaFile = "testdata/providers-schema.json"

type tfSchema struct {
	FormatVersion   string                     `json:"format_version"`
	ProviderSchemas map[string]*providerSchema `json:"provider_schemas"`
}

type providerSchema struct {
	Provider          *schemaEntry            `json:"provider"`
	ResourceSchemas   map[string]*schemaEntry `json:"resource_schemas"`
	DataSourceSchemas map[string]*schemaEntry `json:"data_source_schemas"`
}

type schemaEntry struct {
	Block *schemaBlock `json:"block"`
}

type schemaBlock struct {
	Attributes map[string]*schemaAttribute `json:"attributes"`
	BlockTypes map[string]*schemaBlockType `json:"block_types"`
	Deprecated bool                        `json:"deprecated"`
}

type schemaAttribute struct {
	Required   bool `json:"required"`
	Optional   bool `json:"optional"`
	Computed   bool `json:"computed"`
	Deprecated bool `json:"deprecated"`
}

type schemaBlockType struct {
	NestingMode string       `json:"nesting_mode"`
	Block       *schemaBlock `json:"block"`
	MinItems    int          `json:"min_items"`
	MaxItems    int          `json:"max_items"`
}

// loadSchema reads and sanity-checks a providers schema file.
func loadSchema(path string) (*tfSchema, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s tfSchema
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(s.ProviderSchemas) == 0 {
		return nil, fmt.Errorf("%s: no provider_schemas", path)
	}
	for addr, p := range s.ProviderSchemas {
		for name, e := range p.ResourceSchemas {
			if e == nil || e.Block == nil {
				return nil, fmt.Errorf("%s: %s resource %s has no block", path, addr, name)
			}
		}
		for name, e := range p.DataSourceSchemas {
			if e == nil || e.Block == nil {
				return nil, fmt.Errorf("%s: %s data source %s has no block", path, addr, name)
			}
		}
	}
	return &s, nil
}

var schemaOnce = sync.OnceValues(func() (*tfSchema, error) {
	return loadSchema(filepath.FromSlash(schemaFile))
})

// mustSchema returns the committed schema; a missing or broken file panics, which fails
// every test that uses it with the reason.
func mustSchema() *tfSchema {
	s, err := schemaOnce()
	if err != nil {
		panic(fmt.Sprintf("provider schemas: %v (see testdata/README.md)", err))
	}
	return s
}

// localName is the provider's local name: the last part of its source address.
func localName(addr string) string { return addr[strings.LastIndex(addr, "/")+1:] }

// providerOf returns the local name of the provider that has resource or data source
// type t, or "".
func (s *tfSchema) providerOf(t string) string {
	for addr, p := range s.ProviderSchemas {
		if _, ok := p.ResourceSchemas[t]; ok {
			return localName(addr)
		}
		if _, ok := p.DataSourceSchemas[t]; ok {
			return localName(addr)
		}
	}
	return ""
}

func (s *tfSchema) resource(t string) *schemaBlock {
	for _, p := range s.ProviderSchemas {
		if e, ok := p.ResourceSchemas[t]; ok {
			return e.Block
		}
	}
	return nil
}

func (s *tfSchema) dataSource(t string) *schemaBlock {
	for _, p := range s.ProviderSchemas {
		if e, ok := p.DataSourceSchemas[t]; ok {
			return e.Block
		}
	}
	return nil
}

func (s *tfSchema) provider(name string) *schemaBlock {
	for addr, p := range s.ProviderSchemas {
		if localName(addr) == name && p.Provider != nil {
			return p.Provider.Block
		}
	}
	return nil
}

// Terraform's meta-arguments, which no provider schema lists.
var (
	resourceMetaAttrs  = []string{"count", "for_each", "depends_on", "provider"}
	resourceMetaBlocks = []string{"lifecycle", "provisioner", "connection"}
	providerMetaAttrs  = []string{"alias"}
)

// schemaProblems walks every resource, data and provider block against the schema.
func schemaProblems(c *tfConfig, s *tfSchema) []string {
	var msgs []string
	for _, fname := range sortedKeys(c.files) {
		for _, b := range c.files[fname].Body.(*hclsyntax.Body).Blocks {
			where := fmt.Sprintf("%s:%d: %s %s", fname, b.TypeRange.Start.Line, b.Type, strings.Join(b.Labels, "."))
			switch b.Type {
			case "resource":
				if len(b.Labels) != 2 {
					continue
				}
				sb := s.resource(b.Labels[0])
				if sb == nil {
					msgs = append(msgs, fmt.Sprintf("%s: resource type %s is not in %s (add it there, see testdata/README.md)", where, b.Labels[0], schemaFile))
					continue
				}
				msgs = append(msgs, checkBody(where, b.Body, sb, resourceMetaAttrs, resourceMetaBlocks)...)
			case "data":
				if len(b.Labels) != 2 {
					continue
				}
				sb := s.dataSource(b.Labels[0])
				if sb == nil {
					msgs = append(msgs, fmt.Sprintf("%s: data source %s is not in %s", where, b.Labels[0], schemaFile))
					continue
				}
				msgs = append(msgs, checkBody(where, b.Body, sb, resourceMetaAttrs, []string{"lifecycle"})...)
			case "provider":
				if len(b.Labels) != 1 {
					continue
				}
				sb := s.provider(b.Labels[0])
				if sb == nil {
					msgs = append(msgs, fmt.Sprintf("%s: provider %s is not in %s", where, b.Labels[0], schemaFile))
					continue
				}
				msgs = append(msgs, checkBody(where, b.Body, sb, providerMetaAttrs, nil)...)
			}
		}
	}
	return msgs
}

// checkBody checks one block body against its schema, recursing into nested blocks.
func checkBody(where string, body *hclsyntax.Body, sb *schemaBlock, metaAttrs, metaBlocks []string) []string {
	var msgs []string
	names := make([]string, 0, len(body.Attributes))
	for n := range body.Attributes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		line := body.Attributes[n].SrcRange.Start.Line
		if contains(metaAttrs, n) {
			continue
		}
		a, ok := sb.Attributes[n]
		switch {
		case !ok && sb.BlockTypes[n] != nil:
			msgs = append(msgs, fmt.Sprintf("%s (line %d): %s is a block, not an argument: write %s { ... }", where, line, n, n))
		case !ok:
			msgs = append(msgs, fmt.Sprintf("%s (line %d): unsupported argument %q%s", where, line, n, suggest(n, sb)))
		case a.Computed && !a.Optional && !a.Required:
			msgs = append(msgs, fmt.Sprintf("%s (line %d): %s is read-only (computed by the provider) and cannot be set", where, line, n))
		case a.Deprecated:
			msgs = append(msgs, fmt.Sprintf("%s (line %d): argument %s is deprecated", where, line, n))
		}
	}
	for _, n := range sortedKeys(sb.Attributes) {
		if sb.Attributes[n].Required {
			if _, ok := body.Attributes[n]; !ok {
				msgs = append(msgs, fmt.Sprintf("%s: missing required argument %q", where, n))
			}
		}
	}
	counts := map[string]int{}
	for _, nb := range body.Blocks {
		line := nb.TypeRange.Start.Line
		typ, content := nb.Type, nb.Body
		if contains(metaBlocks, typ) {
			continue
		}
		if typ == "dynamic" {
			if len(nb.Labels) != 1 {
				msgs = append(msgs, fmt.Sprintf("%s (line %d): dynamic block needs one label", where, line))
				continue
			}
			typ = nb.Labels[0]
			content = nil
			for _, cb := range nb.Body.Blocks {
				if cb.Type == "content" {
					content = cb.Body
				}
			}
		}
		bt, ok := sb.BlockTypes[typ]
		if !ok {
			if sb.Attributes[typ] != nil {
				msgs = append(msgs, fmt.Sprintf("%s (line %d): %s is an argument, not a block: write %s = ...", where, line, typ, typ))
			} else {
				msgs = append(msgs, fmt.Sprintf("%s (line %d): unsupported block type %q%s", where, line, typ, suggest(typ, sb)))
			}
			continue
		}
		counts[typ]++
		if nb.Type == "dynamic" {
			counts[typ] = max(counts[typ], bt.MinItems) // a dynamic block may produce enough
		}
		if bt.Block.Deprecated {
			msgs = append(msgs, fmt.Sprintf("%s (line %d): block %s is deprecated", where, line, typ))
		}
		if content != nil {
			msgs = append(msgs, checkBody(where+"."+typ, content, bt.Block, nil, nil)...)
		}
	}
	for _, n := range sortedKeys(sb.BlockTypes) {
		bt := sb.BlockTypes[n]
		if bt.MinItems > 0 && counts[n] < bt.MinItems {
			msgs = append(msgs, fmt.Sprintf("%s: at least %d %q block(s) required, found %d", where, bt.MinItems, n, counts[n]))
		}
		if bt.MaxItems > 0 && counts[n] > bt.MaxItems {
			msgs = append(msgs, fmt.Sprintf("%s: at most %d %q block(s) allowed, found %d", where, bt.MaxItems, n, counts[n]))
		}
	}
	return msgs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest names the closest argument or block of sb, as `terraform validate` does.
func suggest(name string, sb *schemaBlock) string {
	best, bestD := "", 4
	for _, cands := range [][]string{sortedKeys(sb.Attributes), sortedKeys(sb.BlockTypes)} {
		for _, cand := range cands {
			if d := editDistance(name, cand); d < bestD {
				best, bestD = cand, d
			}
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// attributeReferenceProblems checks that every reference to a resource or data source
// attribute (type.name.attr, data.type.name.attr) names one its schema has.
func attributeReferenceProblems(c *tfConfig, s *tfSchema) []string {
	var msgs []string
	for _, fname := range sortedKeys(c.files) {
		_ = hclsyntax.VisitAll(c.files[fname].Body.(*hclsyntax.Body), func(n hclsyntax.Node) hcl.Diagnostics {
			e, ok := n.(*hclsyntax.ScopeTraversalExpr)
			if !ok {
				return nil
			}
			tr := e.Traversal
			root := tr.RootName()
			i, sb := 1, (*schemaBlock)(nil)
			if root == "data" {
				if t, ok := attrAt(tr, 1); ok {
					sb, i = s.dataSource(t), 2
				}
			} else {
				sb = s.resource(root)
			}
			if sb == nil {
				return nil
			}
			// Skip the name and an optional instance key: type.name[key].attr
			j := i + 1
			if j < len(tr) {
				if _, ok := tr[j].(hcl.TraverseIndex); ok {
					j++
				}
			}
			attr, ok := attrAt(tr, j)
			if !ok {
				return nil
			}
			if sb.Attributes[attr] == nil && sb.BlockTypes[attr] == nil {
				msgs = append(msgs, fmt.Sprintf("%s:%d: %s has no attribute %q%s", fname, e.SrcRange.Start.Line, traversalString(tr[:j]), attr, suggest(attr, sb)))
			}
			return nil
		})
	}
	return msgs
}

func attrAt(tr hcl.Traversal, i int) (string, bool) {
	if i >= len(tr) {
		return "", false
	}
	switch s := tr[i].(type) {
	case hcl.TraverseAttr:
		return s.Name, true
	case hcl.TraverseRoot:
		return s.Name, true
	}
	return "", false
}
