// Command package builds the two zips that deploy/azure deploys: it cross-compiles the
// caller and callee custom handlers for linux/amd64 with Go alone and writes
// caller.zip and callee.zip (host.json, the function folders, and the "handler" binary).
//
// Usage, from anywhere inside the repository:
//
//	go run ./deploy/package            # writes deploy/azure/dist/{caller,callee}.zip
//	go run ./deploy/package -out /tmp/dist
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/f2fauth/f2fauth/deploy/package/pack"
)

// modulePath is the module whose root the command looks for.
const modulePath = "github.com/f2fauth/f2fauth"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("package", flag.ContinueOnError)
	out := fs.String("out", "", "directory to write caller.zip and callee.zip to (default <repo>/"+pack.DefaultOutDir+")")
	root := fs.String("root", "", "repository root holding go.mod (default: found from the working directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q: use -out DIR", fs.Args())
	}
	repoRoot := *root
	if repoRoot == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		if repoRoot, err = findRepoRoot(wd); err != nil {
			return err
		}
	}
	outDir := *out
	if outDir == "" {
		outDir = filepath.Join(repoRoot, filepath.FromSlash(pack.DefaultOutDir))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("building %d handlers for %s/%s…\n", len(pack.Apps), pack.GOOS, pack.GOARCH)
	paths, err := pack.Package(ctx, repoRoot, outDir)
	if err != nil {
		return err
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		fmt.Printf("wrote %s (%d KiB)\n", p, st.Size()/1024)
	}
	return nil
}

// findRepoRoot walks up from dir to the directory whose go.mod declares modulePath.
func findRepoRoot(dir string) (string, error) {
	for d := dir; ; {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && declaresModule(b) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("no go.mod for " + modulePath + " above " + dir + ": run inside the repository or pass -root")
		}
		d = parent
	}
}

// declaresModule reports whether the go.mod content declares modulePath.
func declaresModule(gomod []byte) bool {
	for _, line := range strings.Split(string(gomod), "\n") {
		if strings.TrimSpace(line) == "module "+modulePath {
			return true
		}
	}
	return false
}
