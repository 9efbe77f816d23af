package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/callee"
	"github.com/f2fauth/f2fauth/caller"
	"github.com/f2fauth/f2fauth/internal/otelsetup"
)

// Every environment variable the caller and the callee read is documented in README.md's
// configuration reference.
func TestEveryVariableIsDocumented(t *testing.T) {
	t.Parallel()
	vars := append([]string{}, caller.Settings...)
	vars = append(vars, callee.Settings...)
	vars = append(vars, authmw.EnvVars...)
	vars = append(vars, caller.EnvCustomHandlerPort, caller.EnvPort)
	vars = append(vars, otelsetup.Settings...)
	path := filepath.Join("..", "..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read README.md: %v", err)
	}
	doc := string(b)
	for _, v := range vars {
		if !strings.Contains(doc, "`"+v+"`") {
			t.Errorf("README.md does not document `%s`", v)
		}
	}
}
