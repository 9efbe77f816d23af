package consumertest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const repoModule = "github.com/f2fauth/f2fauth"

// forbidden are modules a consumer of authmw and tokencache must not need.
var forbidden = []string{"github.com/labstack/", "github.com/hashicorp/hcl", "github.com/zclconf/go-cty"}

// repoRoot returns the root module's directory and its go directive.
func repoRoot(t *testing.T) (dir, goVersion string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^module ` + regexp.QuoteMeta(repoModule) + `\s*$`).Match(b) {
		t.Fatalf("%s is not the root of %s", dir, repoModule)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("root go.mod has no go directive")
	}
	return dir, string(m[1])
}

// consumer copies testdata/name into a new module in a temp dir that requires
// this repository through a replace directive, and runs go mod tidy.
func consumer(t *testing.T, name string) (dir string, goCmd func(args ...string) string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH: cannot build a consumer module")
	}
	root, goVersion := repoRoot(t)
	dir = t.TempDir()
	src := filepath.Join("testdata", name)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gomod := "module example.com/" + name + "\n\ngo " + goVersion + "\n\n" +
		"require " + repoModule + " v0.0.0\n\n" +
		"replace " + repoModule + " => " + filepath.ToSlash(root) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	// GOMODCACHE, GOPROXY, GOCACHE… come from the environment. GOWORK=off: the
	// consumer is its own module, outside this repository's workspace. Clear
	// the managed-identity variables so the consumer's tests set their own.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		for _, k := range []string{"GOFLAGS=", "GOWORK=", "IDENTITY_ENDPOINT=", "IDENTITY_HEADER=", "MSI_ENDPOINT=", "MSI_SECRET=", "IMDS_ENDPOINT=", "IDENTITY_SERVER_THUMBPRINT="} {
			if strings.HasPrefix(kv, k) {
				return true
			}
		}
		return false
	})
	env = append(env, "GOFLAGS=-mod=mod", "GOWORK=off")
	goCmd = func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir, cmd.Env = dir, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("go %s in the consumer module: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	goCmd("mod", "tidy")
	return dir, goCmd
}

// A module that imports only authmw and tokencache (net/http, no echo) ends
// up, after go mod tidy, without echo, hcl or go-cty in its go.mod, and builds
// no package of theirs.
func TestHTTPOnlyConsumerModuleGraph(t *testing.T) {
	dir, goCmd := consumer(t, "httponly")
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range forbidden {
		if bytes.Contains(b, []byte(m)) {
			t.Errorf("the consumer's go.mod requires %s*:\n%s", m, b)
		}
	}
	for _, pkg := range strings.Fields(goCmd("list", "-deps", "-test", "./...")) {
		for _, m := range forbidden {
			if strings.HasPrefix(pkg, m) {
				t.Errorf("the consumer builds %s", pkg)
			}
		}
	}
	goCmd("vet", "./...")
}

// A consumer tests its own net/http handler with authmwtest and its own
// outgoing client with tokencachetest, importing nothing else from this
// repository, and its tests pass.
func TestConsumerTestsWithPublicTestSupport(t *testing.T) {
	dir, goCmd := consumer(t, "service")
	allowed := []string{repoModule + "/authmw", repoModule + "/authmw/authmwtest", repoModule + "/tokencache", repoModule + "/tokencache/tokencachetest"}
	imports := strings.Fields(goCmd("list", "-test", "-f", "{{join .Imports \" \"}} {{join .TestImports \" \"}}", "./..."))
	var used []string
	for _, imp := range imports {
		if strings.HasPrefix(imp, repoModule+"/") || imp == repoModule {
			if !slices.Contains(allowed, imp) {
				t.Errorf("the consumer imports %s; only %v should be needed", imp, allowed)
			}
			used = append(used, imp)
		}
	}
	for _, want := range allowed {
		if !slices.Contains(used, want) {
			t.Errorf("the consumer does not import %s: the proof would prove less than it says", want)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range forbidden {
		if bytes.Contains(b, []byte(m)) {
			t.Errorf("the consumer's go.mod requires %s*, though it uses no echo", m)
		}
	}
	out := goCmd("test", "-count=1", "./...")
	if !strings.Contains(out, "ok") {
		t.Errorf("go test output lacks ok:\n%s", out)
	}
}
