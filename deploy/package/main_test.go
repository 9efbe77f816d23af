package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestFindRepoRoot(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	want := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	for _, start := range []string{want, filepath.Dir(file), filepath.Join(want, "deploy", "azure")} {
		got, err := findRepoRoot(start)
		if err != nil || got != want {
			t.Errorf("findRepoRoot(%s) = %q, %v; want %q", start, got, err, want)
		}
	}
	// A go.mod of another module is not the root.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := findRepoRoot(other); err == nil {
		t.Errorf("findRepoRoot(other module) = %q, want an error", got)
	} else if !strings.Contains(err.Error(), "-root") {
		t.Errorf("error %q does not say how to fix it", err)
	}
}

func TestDeclaresModule(t *testing.T) {
	for src, want := range map[string]bool{
		"module github.com/f2fauth/f2fauth\n\ngo 1.26\n":     true,
		"// c\nmodule github.com/f2fauth/f2fauth\r\n":        true,
		"module github.com/f2fauth/f2fauth/v2\n":             false,
		"module example.com/x // github.com/f2fauth/f2fauth": false,
	} {
		if got := declaresModule([]byte(src)); got != want {
			t.Errorf("declaresModule(%q) = %v, want %v", src, got, want)
		}
	}
}

func TestRunArguments(t *testing.T) {
	if err := run([]string{"stray"}); err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
		t.Errorf("run(stray) = %v", err)
	}
	if err := run([]string{"-nope"}); err == nil {
		t.Error("run(-nope) succeeded")
	}
	// A root without go.mod fails before anything is built.
	if err := run([]string{"-root", t.TempDir(), "-out", t.TempDir()}); err == nil || !strings.Contains(err.Error(), "go.mod") {
		t.Errorf("run(-root empty) = %v, want a go.mod error", err)
	}
}
