package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/f2fauth/f2fauth/authmw"
	"github.com/f2fauth/f2fauth/callee"
	"github.com/f2fauth/f2fauth/caller"
)

// Every environment variable the caller and the callee read is documented. The check
// runs on README.md once the configuration reference is merged there, and on the
// caller's README section while it exists.
func TestEveryVariableIsDocumented(t *testing.T) {
	t.Parallel()
	vars := append([]string{}, caller.Settings...)
	vars = append(vars, callee.Settings...)
	vars = append(vars, authmw.EnvVars...)
	vars = append(vars, caller.EnvCustomHandlerPort, caller.EnvPort)
	checked := 0
	for _, path := range []string{filepath.Join("..", "..", "README.md"), filepath.Join("..", "..", "caller", "README_SECTION.md")} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		doc := string(b)
		if !strings.Contains(doc, "`"+caller.EnvCalleeURL+"`") {
			continue // not (yet) the configuration reference
		}
		checked++
		for _, v := range vars {
			if !strings.Contains(doc, "`"+v+"`") {
				t.Errorf("%s does not document `%s`", path, v)
			}
		}
	}
	if checked == 0 {
		t.Skip("no configuration reference found (README.md or caller/README_SECTION.md)")
	}
}
