package callee

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

type binding struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	Direction string   `json:"direction"`
	AuthLevel string   `json:"authLevel"`
	Methods   []string `json:"methods"`
	Route     string   `json:"route"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The function app's files must keep the shape the Functions host needs to forward
// requests unchanged to this handler.
func TestFunctionAppFiles(t *testing.T) {
	t.Parallel()
	var host struct {
		Version       string `json:"version"`
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
			} `json:"description"`
			EnableForwardingHttpRequest bool `json:"enableForwardingHttpRequest"`
		} `json:"customHandler"`
		ExtensionBundle struct {
			ID      string `json:"id"`
			Version string `json:"version"`
		} `json:"extensionBundle"`
	}
	readJSON(t, filepath.Join("functionapp", "host.json"), &host)
	if host.Version != "2.0" || host.CustomHandler.Description.DefaultExecutablePath != "handler" || !host.CustomHandler.EnableForwardingHttpRequest ||
		host.ExtensionBundle.ID != "Microsoft.Azure.Functions.ExtensionBundle" || host.ExtensionBundle.Version != "[4.*, 5.0.0)" {
		t.Errorf("host.json: %+v", host)
	}
	for _, fn := range []struct {
		dir, route string
		methods    []string
	}{
		{"ExclusiveFunction", "ExclusiveFunction", []string{"get", "post"}},
		{"Healthz", "healthz", []string{"get"}},
	} {
		var f struct {
			Bindings []binding `json:"bindings"`
		}
		readJSON(t, filepath.Join("functionapp", fn.dir, "function.json"), &f)
		// Forwarding applies only to exactly one httpTrigger in and one http out.
		if len(f.Bindings) != 2 {
			t.Fatalf("%s: %d bindings; want exactly 2", fn.dir, len(f.Bindings))
		}
		in, out := f.Bindings[0], f.Bindings[1]
		if in.Type != "httpTrigger" || in.Direction != "in" || in.AuthLevel != "anonymous" || in.Route != fn.route || len(in.Methods) != len(fn.methods) {
			t.Errorf("%s: trigger %+v", fn.dir, in)
		}
		for i, m := range fn.methods {
			if i < len(in.Methods) && in.Methods[i] != m {
				t.Errorf("%s: methods %v; want %v", fn.dir, in.Methods, fn.methods)
			}
		}
		if out.Type != "http" || out.Direction != "out" {
			t.Errorf("%s: output %+v", fn.dir, out)
		}
		if "/api/"+fn.route != map[string]string{"ExclusiveFunction": FunctionPath, "Healthz": HealthzPath}[fn.dir] {
			t.Errorf("%s: route %q does not match the server's path", fn.dir, fn.route)
		}
	}
}
