// Package pack builds the deployment zips of the caller and callee function apps: it
// cross-compiles each custom handler for linux/amd64 with the Go toolchain alone and
// writes a zip holding host.json, one folder per function with its function.json, and
// the executable named [BinaryName]. deploy/azure/*.tf deploys exactly these zips; the
// command deploy/package is a thin wrapper around [Package].
package pack

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// BinaryName is the file name of the handler executable inside each zip. Every
// host.json must name it in customHandler.description.defaultExecutablePath.
const BinaryName = "handler"

// GOOS and GOARCH are the platform the handlers are built for (Azure Functions on Linux).
const (
	GOOS   = "linux"
	GOARCH = "amd64"
)

// DefaultOutDir is the output directory, relative to the repository root, that
// deploy/azure reads the zips from (path.module/dist).
const DefaultOutDir = "deploy/azure/dist"

// App is one function app to package.
type App struct {
	// Name is the app's short name; the zip is Name + ".zip".
	Name string
	// Dir is the function app folder relative to the repository root. It holds
	// host.json, the main package of the handler, and one folder per function.
	Dir string
}

// ZipName is the file name of the app's deployment zip.
func (a App) ZipName() string { return a.Name + ".zip" }

// Apps are the function apps of f2fauth, in the order Package returns their zips.
var Apps = []App{
	{Name: "caller", Dir: "caller/functionapp"},
	{Name: "callee", Dir: "callee/functionapp"},
}

// ErrLayout is wrapped by every error about a function app folder that cannot be
// packaged (missing host.json, wrong executable path, no functions).
var ErrLayout = errors.New("pack: function app layout")

// ErrBuild is wrapped when the Go toolchain fails to build a handler.
var ErrBuild = errors.New("pack: build failed")

// zipTime is the modification time written for every zip entry, so that the same
// inputs give byte-identical zips (and Terraform sees no change).
var zipTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Package builds every app in [Apps] from the module rooted at repoRoot and writes
// outDir/<name>.zip for each, creating outDir when needed. It returns the zip paths in
// the order of Apps. The handlers are built concurrently with GOOS=linux GOARCH=amd64
// CGO_ENABLED=0 `go build -trimpath -ldflags="-s -w" -o <staging>/handler ./<dir>` (no
// symbol table or DWARF; stack traces still work). Each zip holds host.json, <Function>/function.json for every function
// folder, and the handler with mode 0755; Go sources and local.settings.json are never
// included. An existing zip is replaced only when the new one is complete.
func Package(ctx context.Context, repoRoot, outDir string) ([]string, error) {
	return PackageApps(ctx, repoRoot, outDir, Apps)
}

// PackageApps is [Package] for an explicit list of apps.
func PackageApps(ctx context.Context, repoRoot, outDir string, apps []App) ([]string, error) {
	if repoRoot == "" {
		return nil, errors.New("pack: repoRoot is empty: pass the directory holding go.mod")
	}
	if outDir == "" {
		return nil, errors.New("pack: outDir is empty: pass the directory to write the zips to")
	}
	if len(apps) == 0 {
		return nil, errors.New("pack: no apps to package")
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "go.mod")); err != nil {
		return nil, fmt.Errorf("pack: repoRoot %q has no go.mod: %w", repoRoot, err)
	}
	// Check every layout first so a broken folder is reported before minutes of building.
	layouts := make([]*layout, len(apps))
	var errs []error
	for i, a := range apps {
		l, err := readLayout(filepath.Join(repoRoot, filepath.FromSlash(a.Dir)))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		layouts[i] = l
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("pack: create output directory: %w", err)
	}
	staging, err := os.MkdirTemp("", "f2fauth-pack-")
	if err != nil {
		return nil, fmt.Errorf("pack: create staging directory: %w", err)
	}
	defer os.RemoveAll(staging)

	paths := make([]string, len(apps))
	buildErrs := make([]error, len(apps))
	var wg sync.WaitGroup
	for i, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bin := filepath.Join(staging, a.Name, BinaryName)
			if err := build(ctx, repoRoot, a.Dir, bin); err != nil {
				buildErrs[i] = fmt.Errorf("%s: %w", a.Name, err)
				return
			}
			zipPath := filepath.Join(outDir, a.ZipName())
			if err := writeZip(zipPath, layouts[i], bin); err != nil {
				buildErrs[i] = fmt.Errorf("pack: %s: %w", a.Name, err)
				return
			}
			paths[i] = zipPath
		}()
	}
	wg.Wait()
	if err := errors.Join(buildErrs...); err != nil {
		return nil, err
	}
	return paths, nil
}

// layout is what goes into a zip besides the binary.
type layout struct {
	dir   string   // absolute or repo-relative folder of the function app
	files []string // slash-separated paths relative to dir, sorted: host.json, F/function.json…
}

// hostJSON is the part of host.json that packaging checks.
type hostJSON struct {
	Version       string `json:"version"`
	CustomHandler *struct {
		Description *struct {
			DefaultExecutablePath string `json:"defaultExecutablePath"`
		} `json:"description"`
	} `json:"customHandler"`
}

// readLayout lists host.json and every <Function>/function.json of dir and checks that
// host.json starts the packaged binary.
func readLayout(dir string) (*layout, error) {
	hostPath := filepath.Join(dir, "host.json")
	raw, err := os.ReadFile(hostPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: read host.json: %w", ErrLayout, dir, err)
	}
	var h hostJSON
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, fmt.Errorf("%w: %s: host.json is not valid JSON: %w", ErrLayout, hostPath, err)
	}
	if h.CustomHandler == nil || h.CustomHandler.Description == nil {
		return nil, fmt.Errorf("%w: %s: customHandler.description is missing: set defaultExecutablePath to %q", ErrLayout, hostPath, BinaryName)
	}
	if got := h.CustomHandler.Description.DefaultExecutablePath; got != BinaryName {
		return nil, fmt.Errorf("%w: %s: customHandler.description.defaultExecutablePath is %q: set it to %q, the packaged binary", ErrLayout, hostPath, got, BinaryName)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrLayout, dir, err)
	}
	files := []string{"host.json"}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		fj := filepath.Join(dir, e.Name(), "function.json")
		if st, err := os.Stat(fj); err != nil || !st.Mode().IsRegular() {
			continue // not a function folder (e.g. testdata)
		}
		files = append(files, e.Name()+"/function.json")
	}
	if len(files) == 1 {
		return nil, fmt.Errorf("%w: %s: no function folder (<Name>/function.json) found", ErrLayout, dir)
	}
	sort.Strings(files[1:])
	return &layout{dir: dir, files: files}, nil
}

// build cross-compiles the main package in repoRoot/dir to out.
func build(ctx context.Context, repoRoot, dir, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	pkg := "./" + strings.TrimPrefix(filepath.ToSlash(dir), "./")
	cmd := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "GOOS="+GOOS, "GOARCH="+GOARCH, "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 4000 {
			msg = msg[:4000] + "…"
		}
		return fmt.Errorf("%w: go build %s (GOOS=%s GOARCH=%s CGO_ENABLED=0): %w\n%s", ErrBuild, pkg, GOOS, GOARCH, err, msg)
	}
	return nil
}

// goTool is the go command: the one in GOROOT/bin when GOROOT is set, else "go" on PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// writeZip writes the zip to a temporary file next to path and renames it into place.
func writeZip(path string, l *layout, bin string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := zip.NewWriter(tmp)
	for _, f := range l.files {
		if err := addFile(zw, f, filepath.Join(l.dir, filepath.FromSlash(f)), 0o644); err != nil {
			return err
		}
	}
	if err := addFile(zw, BinaryName, bin, 0o755); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// addFile adds src to zw as name with the given Unix mode (stored in the external
// attributes, which is where unzip and the Functions host read the exec bit from).
func addFile(zw *zip.Writer, name, src string, mode fs.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: zipTime}
	h.SetMode(mode)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, f)
	return err
}
