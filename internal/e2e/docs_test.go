package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/authmw/authmwtest"
	"github.com/f2fauth/f2fauth/caller"
	"github.com/f2fauth/f2fauth/internal/testutil"
	"github.com/f2fauth/f2fauth/tokencache"
)

// The docs checked against the code. README.md is what a newcomer reads; docs/ holds
// the rest, each fact once.

const (
	repoRoot       = "../.."
	readmeMaxLines = 250
	configDoc      = "docs/configuration.md"
	troubleDoc     = "docs/troubleshooting.md"
)

// pendingDocs are documents another change adds; a link to one of them is accepted
// while it does not exist yet, and checked like any other once it does.
var pendingDocs = []string{"docs/gateway.md"}

// readDoc returns a file of the repository, by its slash path from the root.
func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return string(b)
}

// docFiles lists README.md and every docs/*.md, as slash paths from the root.
func docFiles(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md"}
	for _, f := range m {
		files = append(files, "docs/"+filepath.Base(f))
	}
	return files
}

// stringLiterals returns the string constants in the non-test Go files of the
// repository's directory dir.
func stringLiterals(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, filepath.FromSlash(dir), "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					out = append(out, s)
				}
			}
			return true
		})
	}
	return out
}

// settingsInCode returns every environment variable name the handlers' and authmw's
// code spells out, read from the source (not from an exported list), so a new setting
// cannot go undocumented.
func settingsInCode(t *testing.T) []string {
	t.Helper()
	name := regexp.MustCompile(`^(AUTHMW|CALLER|CALLEE|OTEL)_[A-Z0-9_]+$`)
	var vars []string
	for _, dir := range []string{"authmw", "caller", "callee", "internal/customhandler", "internal/otelsetup"} {
		for _, s := range stringLiterals(t, dir) {
			if (name.MatchString(s) || s == "FUNCTIONS_CUSTOMHANDLER_PORT" || s == "PORT" || s == "AZURE_CLIENT_ID") && !slices.Contains(vars, s) {
				vars = append(vars, s)
			}
		}
	}
	// The scan must find what is known to exist, or it proves nothing.
	for _, must := range []string{"AUTHMW_AUDIENCES", "AUTHMW_CACHE_SIZE", "CALLEE_URL", "CALLER_TIMEOUT", "CALLEE_LISTEN_HOST", "FUNCTIONS_CUSTOMHANDLER_PORT", "PORT", "AZURE_CLIENT_ID", "OTEL_TRACES_EXPORTER"} {
		if !slices.Contains(vars, must) {
			t.Fatalf("the source scan did not find %s: fix settingsInCode", must)
		}
	}
	return vars
}

// tableRows returns the Markdown table rows of doc whose first cell starts with the
// code span `name`.
func tableRows(doc, name string) []string {
	return regexp.MustCompile("(?m)^\\| `"+regexp.QuoteMeta(name)+"`[ ,|][^\\n]*$").FindAllString(doc, -1)
}

// Every setting the code reads has exactly one row in docs/configuration.md, and no
// other document repeats a settings table.
func TestEverySettingIsDocumentedOnce(t *testing.T) {
	t.Parallel()
	config := readDoc(t, configDoc)
	vars := settingsInCode(t)
	for _, v := range vars {
		if n := len(tableRows(config, v)); n != 1 {
			t.Errorf("%s has %d table rows for `%s`; want exactly 1 (add it to its component's table)", configDoc, n, v)
		}
	}
	for _, f := range docFiles(t) {
		if f == configDoc {
			continue
		}
		doc := readDoc(t, f)
		for _, v := range vars {
			if rows := tableRows(doc, v); len(rows) > 0 {
				t.Errorf("%s repeats the settings table row of `%s` (%q): link to %s instead", f, v, rows[0], configDoc)
			}
		}
	}
}

// section returns the part of doc from the heading line "## name" to the next "## ".
func section(t *testing.T, doc, name string) string {
	t.Helper()
	i := strings.Index(doc, "\n## "+name+"\n")
	if i < 0 {
		t.Fatalf("%s has no section %q", configDoc, name)
	}
	rest := doc[i+len(name)+5:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// exportedFields returns the exported field names of the struct type of v.
func exportedFields(v any) []string {
	var out []string
	for f := range reflect.TypeOf(v).Fields() {
		if f.IsExported() {
			out = append(out, f.Name)
		}
	}
	return out
}

// The Go fields docs/configuration.md names exist, and every exported field of
// authmw.Config, authmw.Policy and tokencache.Options has its row: a removed or
// renamed option cannot stay documented, nor a new one go undocumented.
func TestDocumentedGoFieldsMatchCode(t *testing.T) {
	t.Parallel()
	doc := readDoc(t, configDoc)
	code := regexp.MustCompile("`([A-Za-z]+)\\.([A-Za-z]+)`")
	// authmw: the second cell of the settings table names Config.X or Policy.X.
	fields := map[string][]string{"Config": exportedFields(authmw.Config{}), "Policy": exportedFields(authmw.Policy{})}
	documented := map[string]bool{}
	for _, row := range strings.Split(section(t, doc, "authmw"), "\n") {
		cells := strings.Split(row, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") && strings.TrimSpace(cells[1]) != "—" {
			continue
		}
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			have, ok := fields[m[1]]
			if !ok {
				continue
			}
			if !slices.Contains(have, m[2]) {
				t.Errorf("%s names `%s.%s`, which authmw does not have", configDoc, m[1], m[2])
			}
			documented[m[1]+"."+m[2]] = true
		}
	}
	for typ, names := range fields {
		for _, n := range names {
			if typ == "Config" && n == "Policy" {
				continue // the Policy table itself
			}
			if !documented[typ+"."+n] {
				t.Errorf("%s has no row for authmw's `%s.%s`", configDoc, typ, n)
			}
		}
	}
	// tokencache: the first cell of the options table names the fields.
	opts := exportedFields(tokencache.Options{})
	span := regexp.MustCompile("`([A-Za-z]+)`")
	seen := map[string]bool{}
	for _, row := range strings.Split(section(t, doc, "tokencache"), "\n") {
		cells := strings.Split(row, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		for _, m := range span.FindAllStringSubmatch(cells[1], -1) {
			if !slices.Contains(opts, m[1]) {
				t.Errorf("%s documents tokencache option `%s`, which Options does not have", configDoc, m[1])
			}
			seen[m[1]] = true
		}
	}
	for _, n := range opts {
		if !seen[n] {
			t.Errorf("%s has no row for tokencache's `Options.%s`", configDoc, n)
		}
	}
}

// logDirs are the packages whose log records docs/logging.md lists.
var logDirs = []string{"authmw", "caller", "callee", "tokencache", "internal/jwks", "internal/customhandler", "internal/otelsetup"}

// logMessages returns the constant messages of the slog calls in the non-test Go files
// of dir (Info/Warn/Error/Debug, their Context forms, Log and LogAttrs).
func logMessages(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, filepath.FromSlash(dir), "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	msgArg := map[string]int{"Info": 0, "Warn": 0, "Error": 0, "Debug": 0,
		"InfoContext": 1, "WarnContext": 1, "ErrorContext": 1, "DebugContext": 1, "Log": 2, "LogAttrs": 2}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			i, ok := msgArg[sel.Sel.Name]
			if !ok || len(call.Args) <= i {
				return true
			}
			if lit, ok := call.Args[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if m, err := strconv.Unquote(lit.Value); err == nil && strings.Contains(m, " ") {
					out = append(out, m)
				}
			}
			return true
		})
	}
	return out
}

// Every constant log message is listed in docs/logging.md, and every message the
// page's tables list is still written by the code.
func TestEveryLogMessageIsDocumented(t *testing.T) {
	t.Parallel()
	const logDoc = "docs/logging.md"
	doc := readDoc(t, logDoc)
	var literals []string
	found := 0
	for _, dir := range logDirs {
		for _, m := range logMessages(t, dir) {
			found++
			if !strings.Contains(doc, "`"+m+"`") {
				t.Errorf("%s does not list the log message %q (%s)", logDoc, m, dir)
			}
		}
		literals = append(literals, stringLiterals(t, dir)...)
	}
	if found < 20 {
		t.Fatalf("the source scan found only %d log messages: fix logMessages", found)
	}
	first := regexp.MustCompile("^\\| `((?:authmw|callee|caller|jwks|tokencache)[: ][^`]*)`")
	for _, row := range strings.Split(doc, "\n") {
		m := first.FindStringSubmatch(row)
		if m == nil {
			continue
		}
		msg, _, _ := strings.Cut(m[1], "<") // "caller: listening; … scope <scope>"
		// A message built at run time starts with a literal ("authmw: policy file change "+what+…).
		if !slices.ContainsFunc(literals, func(l string) bool {
			return strings.HasPrefix(l, msg) || len(l) > 20 && strings.HasPrefix(msg, l)
		}) {
			t.Errorf("%s lists the log message %q, which the code no longer writes", logDoc, m[1])
		}
	}
}

// Every OpenTelemetry name the code records (instruments, attributes, span events)
// is in docs/observability.md, and every such name there is still recorded.
func TestEveryTelemetryNameIsDocumented(t *testing.T) {
	t.Parallel()
	const otelDoc = "docs/observability.md"
	doc := readDoc(t, otelDoc)
	name := regexp.MustCompile(`^f2fauth\.[a-z_]+(\.[a-z_]+)+$`)
	var inCode []string
	for _, dir := range []string{"authmw", "tokencache", "caller", "callee"} {
		for _, l := range stringLiterals(t, dir) {
			if name.MatchString(l) && !slices.Contains(inCode, l) {
				inCode = append(inCode, l)
			}
		}
	}
	if !slices.Contains(inCode, "f2fauth.authmw.decisions") {
		t.Fatalf("the source scan did not find f2fauth.authmw.decisions: fix the scan")
	}
	for _, n := range inCode {
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("%s does not name %s, which the code records", otelDoc, n)
		}
	}
	for _, m := range regexp.MustCompile("`(f2fauth\\.[a-z_.]+)`").FindAllStringSubmatch(doc, -1) {
		if !slices.Contains(inCode, m[1]) {
			t.Errorf("%s names %s, which the code no longer records", otelDoc, m[1])
		}
	}
}

// README.md fits on a few screens and keeps the test command .ci/run executes.
func TestReadmeIsShort(t *testing.T) {
	t.Parallel()
	readme := readDoc(t, "README.md")
	if n := strings.Count(readme, "\n"); n > readmeMaxLines {
		t.Errorf("README.md has %d lines; keep it at most %d and move the rest to docs/", n, readmeMaxLines)
	}
	begin := strings.Index(readme, "<!-- test-command:begin -->")
	end := strings.Index(readme, "<!-- test-command:end -->")
	if begin < 0 || end < begin || !strings.Contains(readme[begin:end], "go test") {
		t.Error("README.md lost the test command between the test-command markers that .ci/run executes")
	}
	for _, cmd := range []string{"go run ./deploy/local", "bash .ci/run"} {
		if !strings.Contains(readme, cmd) {
			t.Errorf("README.md does not show %q", cmd)
		}
	}
}

// slug is GitHub's anchor for a heading.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors returns the anchors of a Markdown document's headings (outside code blocks).
func anchors(doc string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	inCode := false
	for line := range strings.SplitSeq(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		a := slug(strings.TrimLeft(line, "#"))
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// checkTarget reports a problem when target (a slash path from the root, with an
// optional #anchor) does not exist.
func checkTarget(t *testing.T, from, target string) {
	t.Helper()
	path, anchor, _ := strings.Cut(target, "#")
	b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(path)))
	if err != nil {
		if os.IsNotExist(err) && slices.Contains(pendingDocs, path) {
			return
		}
		t.Errorf("%s links to %s, which does not exist", from, target)
		return
	}
	if anchor != "" && strings.HasSuffix(path, ".md") && !anchors(string(b))[anchor] {
		t.Errorf("%s links to %s: %s has no heading with anchor #%s", from, target, path, anchor)
	}
}

// Every relative link in README.md and docs/ leads to a file that exists and, with an
// anchor, to a heading in it.
func TestDocLinksResolve(t *testing.T) {
	t.Parallel()
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, f := range docFiles(t) {
		doc := readDoc(t, f)
		for _, m := range link.FindAllStringSubmatch(doc, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if strings.HasPrefix(target, "#") {
				target = f + target
			} else {
				target = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(f), target)))
			}
			checkTarget(t, f, target)
		}
	}
}

// The documentation URLs the code sends to clients (the problem+json "type") lead to
// a document and a heading that exist.
func TestDocURLsInCodeResolve(t *testing.T) {
	t.Parallel()
	const prefix = "https://github.com/f2fauth/f2fauth/blob/main/"
	found := 0
	for _, dir := range []string{"authmw", "authmw/echomw", "callee", "caller", "tokencache"} {
		for _, s := range stringLiterals(t, dir) {
			if rest, ok := strings.CutPrefix(s, prefix); ok {
				found++
				checkTarget(t, dir, rest)
			}
		}
	}
	if found == 0 {
		t.Fatal("no documentation URL found in the code: the problem+json type URI moved; fix this test")
	}
}

// reasonsInCode returns each authmw reason code with the HTTP status its const block's
// comment names (401, 403 or 503), read from the source.
func reasonsInCode(t *testing.T) map[string]int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "authmw", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	fset := token.NewFileSet()
	status := regexp.MustCompile(`\b(401|403|503)\b`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			code := 0
			if gd.Doc != nil {
				if m := status.FindString(gd.Doc.Text()); m != "" {
					code, _ = strconv.Atoi(m)
				}
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" || len(vs.Values) != 1 {
					continue
				}
				lit, ok := vs.Values[0].(*ast.BasicLit)
				if !ok {
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				if code == 0 {
					t.Fatalf("reason %q: its const block's comment names no status (401, 403 or 503)", v)
				}
				out[v] = code
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("found %d reason codes in authmw; want at least 20: fix reasonsInCode", len(out))
	}
	return out
}

// Every reason code has one row in the troubleshooting table, with the right status,
// and no other document repeats the table.
func TestEveryReasonCodeIsExplained(t *testing.T) {
	t.Parallel()
	doc := readDoc(t, troubleDoc)
	reasons := reasonsInCode(t)
	for r, code := range reasons {
		rows := tableRows(doc, r)
		if len(rows) != 1 {
			t.Errorf("%s has %d table rows for `%s`; want exactly 1", troubleDoc, len(rows), r)
			continue
		}
		if cells := strings.Split(rows[0], "|"); len(cells) < 3 || strings.TrimSpace(cells[2]) != strconv.Itoa(code) {
			t.Errorf("%s says `%s` is %q; the code answers %d", troubleDoc, r, strings.TrimSpace(cells[2]), code)
		}
	}
	for _, f := range docFiles(t) {
		if f == troubleDoc {
			continue
		}
		d := readDoc(t, f)
		for r := range reasons {
			if rows := tableRows(d, r); len(rows) > 0 {
				t.Errorf("%s repeats the reason-code row of `%s`: link to %s#reason-codes instead", f, r, troubleDoc)
			}
		}
	}
}

// Every complete Go program in README.md and docs/ (a go code block starting with
// "package") compiles and passes go vet against this repository.
func TestGoExamplesInDocsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the documented examples")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```go\n(package .*?)```")
	n := 0
	for _, f := range docFiles(t) {
		for i, m := range block.FindAllStringSubmatch(readDoc(t, f), -1) {
			n++
			file := filepath.Join(t.TempDir(), "main.go")
			if err := os.WriteFile(file, []byte(m[1]), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			cmd := exec.CommandContext(ctx, goBin, "vet", file)
			cmd.Dir = root // resolves the imports in this repository's module
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				t.Errorf("%s: Go example %d does not compile or vet: %v\n%s\n%s", f, i+1, err, out, m[1])
			}
		}
	}
	if n < 3 {
		t.Errorf("found %d complete Go examples in the docs; README.md shows at least 3 (net/http, echo, tokencache)", n)
	}
}

// The causes of a lasting 503 keys_unavailable that docs/troubleshooting.md lists: each
// keeps every valid token out with 503 and logs why, naming the cause.
func TestKeysUnavailableCauses(t *testing.T) {
	t.Parallel()
	idp, err := authmwtest.NewIssuer(authmwtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close) // not defer: the subtests run in parallel, after this function returns
	// Nothing listens on port 1 (tcpmux is long gone), and unlike a port freed by
	// closing a listener, no other test can pick it up meanwhile.
	const unreachable = "http://127.0.0.1:1"

	doc := readDoc(t, troubleDoc)
	const audience = "api://callee"
	tests := []struct {
		name     string
		env      map[string]string
		issuer   authmwtest.Version // the token's version
		wantLog  string             // in the discovery failure's error
		class    string             // the failure's class: the callee exits on "permanent"
		docPhase string             // what the doc names as the cause
	}{
		{"wrong tenant", map[string]string{"AUTHMW_TENANT_ID": "00000000-0000-4000-8000-000000000bad", "AUTHMW_AUTHORITY_HOST": idp.AuthorityURL()}, authmwtest.V2, "404", "permanent", "Wrong `AUTHMW_TENANT_ID`"},
		{"issuer with a trailing slash", map[string]string{"AUTHMW_ISSUER": idp.IssuerV2() + "/"}, authmwtest.V2, "discovery declares issuer", "permanent", "trailing slash"},
		{"localhost for 127.0.0.1", map[string]string{"AUTHMW_ISSUER": strings.Replace(idp.IssuerV2(), "127.0.0.1", "localhost", 1)}, authmwtest.V2, "discovery declares issuer", "permanent", "`localhost` for `127.0.0.1`"},
		{"authority unreachable", map[string]string{"AUTHMW_TENANT_ID": idp.TenantID(), "AUTHMW_AUTHORITY_HOST": unreachable}, authmwtest.V2, "connection refused", "transient", "Authority or JWKS unreachable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			row := ""
			for line := range strings.SplitSeq(doc, "\n") {
				if strings.HasPrefix(line, "| ") && strings.Contains(line, tc.docPhase) {
					row = line
				}
			}
			if row == "" {
				t.Errorf("%s does not list this cause (%q)", troubleDoc, tc.docPhase)
			} else if !strings.Contains(row, "| "+tc.class+" |") {
				t.Errorf("%s does not give this cause the class %s: %s", troubleDoc, tc.class, row)
			}
			// authmw refuses a policy without an authorization rule; the rule plays
			// no part here, since no token gets past the missing keys.
			env := map[string]string{"AUTHMW_AUDIENCES": audience, "AUTHMW_REQUIRED_ROLES": "Callee.Invoke"}
			for k, v := range tc.env {
				env[k] = v
			}
			logs := &testutil.SyncBuffer{}
			m, err := authmw.NewFromEnv(context.Background(), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, slog.New(slog.NewJSONHandler(logs, nil)))
			if err != nil {
				t.Fatalf("NewFromEnv: %v", err)
			}
			defer m.Close()
			srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
			defer srv.Close()
			tok, err := idp.AppToken(authmwtest.App{AppID: "caller"}, audience, tc.issuer)
			if err != nil {
				t.Fatal(err)
			}

			// Wait for the first logged failure (discovery retries start at 250 ms).
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(logs.String(), "authmw: issuer discovery failed") {
				if time.Now().After(deadline) {
					t.Fatalf("no discovery failure logged; logs:\n%s", logs.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("the discovery failure does not say %q; logs:\n%s", tc.wantLog, logs.String())
			}
			if want := `"class":"` + tc.class + `"`; !strings.Contains(logs.String(), want) {
				t.Errorf("the discovery failure is not logged with %s; logs:\n%s", want, logs.String())
			}
			// The library keeps answering 503 whatever the class (the callee binary,
			// not the library, exits on a permanent one); ReadinessError tells them apart.
			var re *authmw.ReadinessError
			if err := m.ReadinessError(); !errors.As(err, &re) || (re.Permanent() != nil) != (tc.class == "permanent") {
				t.Errorf("ReadinessError() = %v; want a %s failure", err, tc.class)
			}
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/x", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var p struct {
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(body, &p)
			if resp.StatusCode != http.StatusServiceUnavailable || p.Reason != string(authmw.ReasonKeysUnavailable) {
				t.Errorf("valid token: %d %q; want 503 keys_unavailable", resp.StatusCode, p.Reason)
			}
			if got := resp.Header.Get("Retry-After"); got != "5" { // docs/security.md
				t.Errorf("Retry-After %q; docs/security.md says 5", got)
			}
			if bytes.Contains([]byte(logs.String()), []byte(tok)) {
				t.Error("the logs contain the token")
			}
		})
	}
}

// docDuration writes d the way the settings tables do: "5m", "12h", "30s".
func docDuration(d time.Duration) string {
	s := d.String()
	if strings.ContainsAny(s, "hm") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.Contains(s, "h") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// goDuration writes d the way the Go options table does: "30 s", "5 min".
func goDuration(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return fmt.Sprintf("%d s", d/time.Second)
}

// The defaults docs/configuration.md states are the code's.
func TestDocumentedDefaultsMatchCode(t *testing.T) {
	t.Parallel()
	doc := readDoc(t, configDoc)
	tests := []struct {
		row  string // first cell, without backticks
		cell int    // index of the default's cell (1 = first cell)
		want string
	}{
		{"AUTHMW_AUTHORITY_HOST", 3, "`" + authmw.DefaultAuthorityHost + "`"},
		{"AUTHMW_UNAUTHENTICATED_ACTION", 3, "`" + string(authmw.Return401) + "`"},
		{"AUTHMW_CLOCK_SKEW", 3, "`" + docDuration(authmw.DefaultClockSkew) + "`"},
		{"AUTHMW_POLICY_FILE_INTERVAL", 3, "`" + docDuration(authmw.DefaultPolicyFileInterval) + "`"},
		{"AUTHMW_KEY_REFRESH_INTERVAL", 3, "`" + docDuration(authmw.DefaultKeyRefreshInterval) + "`"},
		{"AUTHMW_UNKNOWN_KEY_INTERVAL", 3, "`" + docDuration(authmw.DefaultUnknownKeyInterval) + "`"},
		{"AUTHMW_CACHE_SIZE", 3, "`" + strconv.Itoa(authmw.DefaultCacheSize) + "`"},
		{"CALLER_TIMEOUT", 2, "`" + docDuration(caller.DefaultTimeout) + "`"},
		{"CALLER_MAX_RETRIES", 2, "`" + strconv.Itoa(caller.DefaultMaxRetries) + "`"},
		{"SafetyMargin", 2, goDuration(tokencache.DefaultSafetyMargin)},
		{"Timeout", 2, goDuration(tokencache.DefaultTimeout)},
		{"InvalidateInterval", 2, goDuration(tokencache.DefaultInvalidateInterval)},
		{"InitialBackoff", 2, goDuration(tokencache.DefaultInitialBackoff)},
		{"MaxBackoff", 2, goDuration(tokencache.DefaultMaxBackoff)},
	}
	for _, tc := range tests {
		rows := tableRows(doc, tc.row)
		if len(rows) != 1 {
			t.Errorf("%s: %d rows for `%s`; want 1", configDoc, len(rows), tc.row)
			continue
		}
		cells := strings.Split(rows[0], "|")
		if len(cells) <= tc.cell || strings.TrimSpace(cells[tc.cell]) != tc.want {
			t.Errorf("%s: the default of `%s` is not %s, the code's: %s", configDoc, tc.row, tc.want, rows[0])
		}
	}
	if rows := tableRows(doc, "PORT"); len(rows) != 1 || !strings.Contains(rows[0], "default `"+strconv.Itoa(caller.DefaultPort)+"`") {
		t.Errorf("%s: the PORT row does not give the default %d: %v", configDoc, caller.DefaultPort, rows)
	}
}
