package pack_test

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/f2fauth/f2fauth/deploy/package/pack"
)

// repoRoot is the module root, two levels up from this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repo root %s: %v", root, err)
	}
	return root
}

// realBuild packages the repository's apps once per test binary run: cross-compiling
// two handlers takes a while, and every test that needs the zips shares them.
var realBuild struct {
	once  sync.Once
	dir   string
	paths []string
	err   error
}

func packageRepo(t *testing.T) (string, []string) {
	t.Helper()
	realBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "f2fauth-pack-test-")
		if err != nil {
			realBuild.err = err
			return
		}
		realBuild.dir = dir
		realBuild.paths, realBuild.err = pack.Package(context.Background(), repoRoot(t), dir)
	})
	if realBuild.err != nil {
		t.Fatalf("Package(repo): %v", realBuild.err)
	}
	return realBuild.dir, realBuild.paths
}

func TestMain(m *testing.M) {
	code := m.Run()
	if realBuild.dir != "" {
		os.RemoveAll(realBuild.dir)
	}
	os.Exit(code)
}

// zipEntries opens a zip and returns its entries by name.
func zipEntries(t *testing.T, path string) map[string]*zip.File {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { zr.Close() })
	m := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		if _, dup := m[f.Name]; dup {
			t.Errorf("%s: duplicate entry %q", path, f.Name)
		}
		m[f.Name] = f
	}
	return m
}

func readEntry(t *testing.T, f *zip.File) []byte {
	t.Helper()
	rc, err := f.Open()
	if err != nil {
		t.Fatalf("open entry %s: %v", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read entry %s: %v", f.Name, err)
	}
	return b
}

// checkHandler asserts the handler entry is executable and a linux/amd64 ELF binary.
func checkHandler(t *testing.T, zipPath string, f *zip.File) {
	t.Helper()
	if f == nil {
		t.Fatalf("%s: no %q entry", zipPath, pack.BinaryName)
	}
	if got := f.Mode().Perm(); got != 0o755 {
		t.Errorf("%s: %s mode = %v, want -rwxr-xr-x", zipPath, f.Name, f.Mode())
	}
	if attrs := f.ExternalAttrs >> 16; attrs&0o111 == 0 {
		t.Errorf("%s: %s external attributes %o carry no exec bit", zipPath, f.Name, attrs)
	}
	if creator := f.CreatorVersion >> 8; creator != 3 { // 3 = Unix: attrs are Unix modes
		t.Errorf("%s: %s creator OS = %d, want 3 (Unix)", zipPath, f.Name, creator)
	}
	b := readEntry(t, f)
	ef, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %s is not an ELF binary: %v", zipPath, f.Name, err)
	}
	defer ef.Close()
	if ef.Machine != elf.EM_X86_64 || ef.Class != elf.ELFCLASS64 {
		t.Errorf("%s: %s is %v %v, want EM_X86_64 ELFCLASS64", zipPath, f.Name, ef.Machine, ef.Class)
	}
	if ef.Type != elf.ET_EXEC && ef.Type != elf.ET_DYN {
		t.Errorf("%s: %s ELF type %v is not an executable", zipPath, f.Name, ef.Type)
	}
	// CGO_ENABLED=0: a static binary has no program interpreter.
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: %s is dynamically linked (PT_INTERP present); want CGO_ENABLED=0", zipPath, f.Name)
		}
	}
}

// wantEntries lists what the zip of the function app folder dir must contain: host.json,
// every <Function>/function.json, and the handler; nothing else.
func wantEntries(t *testing.T, dir string) []string {
	t.Helper()
	want := []string{"host.json", pack.BinaryName}
	fjs, err := filepath.Glob(filepath.Join(dir, "*", "function.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fj := range fjs {
		want = append(want, filepath.Base(filepath.Dir(fj))+"/function.json")
	}
	sort.Strings(want)
	return want
}

func checkLayout(t *testing.T, zipPath, srcDir string) {
	t.Helper()
	entries := zipEntries(t, zipPath)
	got := make([]string, 0, len(entries))
	for name := range entries {
		got = append(got, name)
	}
	sort.Strings(got)
	want := wantEntries(t, srcDir)
	if !slices.Equal(got, want) {
		t.Errorf("%s entries = %q, want %q", zipPath, got, want)
	}
	for name, f := range entries {
		if strings.HasSuffix(name, ".go") || path0(name) == "local.settings.json" {
			t.Errorf("%s: must not contain %s", zipPath, name)
		}
		if name == pack.BinaryName {
			continue
		}
		src, err := os.ReadFile(filepath.Join(srcDir, filepath.FromSlash(name)))
		if err != nil {
			t.Errorf("%s: entry %s has no source: %v", zipPath, name, err)
			continue
		}
		if !bytes.Equal(readEntry(t, f), src) {
			t.Errorf("%s: entry %s differs from %s", zipPath, name, filepath.Join(srcDir, name))
		}
		if f.Mode().Perm()&0o111 != 0 {
			t.Errorf("%s: %s is executable (%v); only the handler should be", zipPath, name, f.Mode())
		}
	}
	checkHandler(t, zipPath, entries[pack.BinaryName])
}

func path0(name string) string { return name[strings.LastIndex(name, "/")+1:] }

// TestPackageRepo packages the real caller and callee and verifies both zips.
func TestPackageRepo(t *testing.T) {
	dir, paths := packageRepo(t)
	if len(paths) != len(pack.Apps) {
		t.Fatalf("Package returned %d paths, want %d", len(paths), len(pack.Apps))
	}
	root := repoRoot(t)
	for i, a := range pack.Apps {
		t.Run(a.Name, func(t *testing.T) {
			if want := filepath.Join(dir, a.ZipName()); paths[i] != want {
				t.Errorf("path[%d] = %s, want %s", i, paths[i], want)
			}
			checkLayout(t, paths[i], filepath.Join(root, filepath.FromSlash(a.Dir)))
		})
	}
}

// TestAppsNames pins the zip names Terraform references (deploy/azure checks the .tf side).
func TestAppsNames(t *testing.T) {
	var got []string
	for _, a := range pack.Apps {
		got = append(got, a.ZipName()+"<-"+a.Dir)
	}
	want := []string{"caller.zip<-caller/functionapp", "callee.zip<-callee/functionapp"}
	if !slices.Equal(got, want) {
		t.Errorf("Apps = %q, want %q", got, want)
	}
}

// fakeModule writes a tiny module with one function app folder and returns its root.
func fakeModule(t *testing.T, host string, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/fake\n\ngo 1.26\n")
	if host != "" {
		write("app/functionapp/host.json", host)
	}
	for rel, content := range files {
		write(rel, content)
	}
	return root
}

const goodHost = `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"handler"}}}`
const goodMain = "package main\n\nfunc main() {}\n"
const timerJSON = `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"0 */5 * * * *"}]}`

func TestPackageFakeModule(t *testing.T) {
	root := fakeModule(t, goodHost, map[string]string{
		"app/functionapp/main.go":                 goodMain,
		"app/functionapp/main_test.go":            "package main\n",
		"app/functionapp/local.settings.json":     `{"Values":{"SECRET":"x"}}`,
		"app/functionapp/Tick/function.json":      timerJSON,
		"app/functionapp/Tick/README.md":          "not packaged",
		"app/functionapp/Zeta/function.json":      timerJSON,
		"app/functionapp/testdata/sample.json":    "{}",
		"app/functionapp/internal/helper/x.go":    "package helper\n",
		"app/functionapp/internal/function.json0": "{}",
	})
	out := filepath.Join(t.TempDir(), "nested", "dist")
	apps := []pack.App{{Name: "fake", Dir: "app/functionapp"}}
	paths, err := pack.PackageApps(context.Background(), root, out, apps)
	if err != nil {
		t.Fatalf("PackageApps: %v", err)
	}
	if want := []string{filepath.Join(out, "fake.zip")}; !slices.Equal(paths, want) {
		t.Fatalf("paths = %q, want %q", paths, want)
	}
	checkLayout(t, paths[0], filepath.Join(root, "app", "functionapp"))
	entries := zipEntries(t, paths[0])
	for _, must := range []string{"host.json", "Tick/function.json", "Zeta/function.json", "handler"} {
		if entries[must] == nil {
			t.Errorf("missing %s", must)
		}
	}
	if len(entries) != 4 {
		t.Errorf("zip has %d entries, want 4", len(entries))
	}

	// Same inputs, same bytes: Terraform's filesha256 must not see a change.
	first, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pack.PackageApps(context.Background(), root, out, apps); err != nil {
		t.Fatalf("second PackageApps: %v", err)
	}
	second, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Error("packaging the same inputs twice gave different zips")
	}
	leftovers, _ := filepath.Glob(filepath.Join(out, ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left in %s: %q", out, leftovers)
	}
}

func TestPackageErrors(t *testing.T) {
	tests := []struct {
		name    string
		host    string
		files   map[string]string
		wantIs  error
		wantMsg []string
	}{
		{
			name:    "no host.json",
			files:   map[string]string{"app/functionapp/main.go": goodMain, "app/functionapp/F/function.json": timerJSON},
			wantIs:  pack.ErrLayout,
			wantMsg: []string{"host.json"},
		},
		{
			name:    "host.json not JSON",
			host:    `{"version":`,
			files:   map[string]string{"app/functionapp/main.go": goodMain, "app/functionapp/F/function.json": timerJSON},
			wantIs:  pack.ErrLayout,
			wantMsg: []string{"not valid JSON"},
		},
		{
			name:    "wrong executable",
			host:    `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"main"}}}`,
			files:   map[string]string{"app/functionapp/main.go": goodMain, "app/functionapp/F/function.json": timerJSON},
			wantIs:  pack.ErrLayout,
			wantMsg: []string{"defaultExecutablePath", `"main"`, `"handler"`},
		},
		{
			name:    "no customHandler",
			host:    `{"version":"2.0"}`,
			files:   map[string]string{"app/functionapp/main.go": goodMain, "app/functionapp/F/function.json": timerJSON},
			wantIs:  pack.ErrLayout,
			wantMsg: []string{"customHandler.description"},
		},
		{
			name:    "no functions",
			host:    goodHost,
			files:   map[string]string{"app/functionapp/main.go": goodMain},
			wantIs:  pack.ErrLayout,
			wantMsg: []string{"no function folder"},
		},
		{
			name:    "does not compile",
			host:    goodHost,
			files:   map[string]string{"app/functionapp/main.go": "package main\n\nfunc main() { undefinedThing() }\n", "app/functionapp/F/function.json": timerJSON},
			wantIs:  pack.ErrBuild,
			wantMsg: []string{"undefinedThing", "GOOS=linux"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := fakeModule(t, tt.host, tt.files)
			out := t.TempDir()
			_, err := pack.PackageApps(context.Background(), root, out, []pack.App{{Name: "fake", Dir: "app/functionapp"}})
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.wantIs)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if _, statErr := os.Stat(filepath.Join(out, "fake.zip")); statErr == nil {
				t.Error("a zip was written despite the error")
			}
		})
	}
}

func TestPackageReportsEveryBrokenApp(t *testing.T) {
	root := fakeModule(t, "", map[string]string{
		"a/functionapp/main.go":          goodMain,
		"b/functionapp/host.json":        `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"x"}}}`,
		"b/functionapp/F/function.json":  timerJSON,
		"b/functionapp/main.go":          goodMain,
		"a/functionapp/F/function.json":  timerJSON,
		"a/functionapp/G/function.json":  timerJSON,
		"a/functionapp/G/extra/ignored":  "",
		"a/functionapp/host.json.backup": "",
	})
	_, err := pack.PackageApps(context.Background(), root, t.TempDir(), []pack.App{
		{Name: "a", Dir: "a/functionapp"}, {Name: "b", Dir: "b/functionapp"},
	})
	if err == nil {
		t.Fatal("want an error for two broken apps")
	}
	for _, s := range []string{filepath.Join("a", "functionapp"), filepath.Join("b", "functionapp")} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
}

func TestPackageArguments(t *testing.T) {
	ctx := context.Background()
	if _, err := pack.Package(ctx, "", t.TempDir()); err == nil || !strings.Contains(err.Error(), "repoRoot") {
		t.Errorf("empty repoRoot: err = %v", err)
	}
	if _, err := pack.Package(ctx, t.TempDir(), ""); err == nil || !strings.Contains(err.Error(), "outDir") {
		t.Errorf("empty outDir: err = %v", err)
	}
	if _, err := pack.Package(ctx, t.TempDir(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "go.mod") {
		t.Errorf("no go.mod: err = %v", err)
	}
	if _, err := pack.PackageApps(ctx, repoRoot(t), t.TempDir(), nil); err == nil {
		t.Error("no apps: want an error")
	}
}

func TestPackageCancelled(t *testing.T) {
	root := fakeModule(t, goodHost, map[string]string{
		"app/functionapp/main.go":         goodMain,
		"app/functionapp/F/function.json": timerJSON,
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := pack.PackageApps(ctx, root, t.TempDir(), []pack.App{{Name: "fake", Dir: "app/functionapp"}})
	if !errors.Is(err, pack.ErrBuild) {
		t.Fatalf("cancelled context: err = %v, want ErrBuild", err)
	}
}
