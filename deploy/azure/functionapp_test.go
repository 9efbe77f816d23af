package azure

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/f2fauth/f2fauth/caller"
	"github.com/f2fauth/f2fauth/deploy/package/pack"
)

// The function app folders the zips are built from (see deploy/package/pack.Apps).
const (
	callerDir = "../../caller/functionapp"
	calleeDir = "../../callee/functionapp"
)

// hostFile is the part of host.json the deployment depends on.
type hostFile struct {
	Version       *string `json:"version"`
	CustomHandler *struct {
		Description *struct {
			DefaultExecutablePath *string `json:"defaultExecutablePath"`
			WorkingDirectory      string  `json:"workingDirectory"`
		} `json:"description"`
		EnableForwardingHttpRequest *bool `json:"enableForwardingHttpRequest"`
	} `json:"customHandler"`
	Extensions struct {
		HTTP struct {
			RoutePrefix *string `json:"routePrefix"`
		} `json:"http"`
	} `json:"extensions"`
}

// binding is one function.json binding.
type binding struct {
	Type         string   `json:"type"`
	Direction    string   `json:"direction"`
	Name         string   `json:"name"`
	AuthLevel    *string  `json:"authLevel"`
	Methods      []string `json:"methods"`
	Route        *string  `json:"route"`
	Schedule     *string  `json:"schedule"`
	RunOnStartup *bool    `json:"runOnStartup"`
}

type functionFile struct {
	Bindings []binding `json:"bindings"`
}

// decodeStrict decodes one JSON document and refuses trailing data.
func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (the function app folder is written by the caller/callee packages)", path, err)
	}
	if !json.Valid(b) {
		t.Fatalf("%s is not valid JSON", path)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if dec.More() {
		t.Fatalf("%s: trailing data after the JSON document", path)
	}
}

func checkHost(t *testing.T, dir string, wantForwarding bool) hostFile {
	t.Helper()
	path := filepath.Join(dir, "host.json")
	var h hostFile
	decodeStrict(t, path, &h)
	if h.Version == nil || *h.Version != "2.0" {
		t.Errorf("%s: version = %v, want \"2.0\"", path, h.Version)
	}
	if h.CustomHandler == nil || h.CustomHandler.Description == nil || h.CustomHandler.Description.DefaultExecutablePath == nil {
		t.Fatalf("%s: customHandler.description.defaultExecutablePath is missing", path)
	}
	if got := *h.CustomHandler.Description.DefaultExecutablePath; got != pack.BinaryName {
		t.Errorf("%s: defaultExecutablePath = %q, want %q (the binary deploy/package puts in the zip)", path, got, pack.BinaryName)
	}
	if wd := h.CustomHandler.Description.WorkingDirectory; wd != "" && wd != "." {
		t.Errorf("%s: workingDirectory = %q; the zip puts the handler at the app root", path, wd)
	}
	if wantForwarding {
		if f := h.CustomHandler.EnableForwardingHttpRequest; f == nil || !*f {
			t.Errorf("%s: customHandler.enableForwardingHttpRequest must be true (the handler reads the Authorization header itself)", path)
		}
	}
	if p := h.Extensions.HTTP.RoutePrefix; p != nil && *p != "api" {
		t.Errorf("%s: extensions.http.routePrefix = %q; the templates build URLs under /api/", path, *p)
	}
	return h
}

func readFunction(t *testing.T, dir, name string) functionFile {
	t.Helper()
	var f functionFile
	decodeStrict(t, filepath.Join(dir, name, "function.json"), &f)
	if len(f.Bindings) == 0 {
		t.Fatalf("%s/%s/function.json has no bindings", dir, name)
	}
	return f
}

// functionNames lists the function folders of a function app folder.
func functionNames(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*", "function.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(filepath.Dir(p)))
	}
	return names
}

// checkHTTPBindings reports the problems httpBindingProblems finds in f.
func checkHTTPBindings(t *testing.T, where string, f functionFile) {
	t.Helper()
	for _, p := range httpBindingProblems(where, f) {
		t.Error(p)
	}
}

// httpBindingProblems checks every httpTrigger in f: anonymous, with an http out
// binding, and exactly one in and one out binding so the host forwards the request as is.
func httpBindingProblems(where string, f functionFile) []string {
	var probs []string
	var triggers, outs int
	for _, b := range f.Bindings {
		switch {
		case b.Type == "httpTrigger":
			triggers++
			if b.Direction != "in" {
				probs = append(probs, fmt.Sprintf("%s: httpTrigger direction = %q, want in", where, b.Direction))
			}
			if b.AuthLevel == nil || *b.AuthLevel != "anonymous" {
				probs = append(probs, fmt.Sprintf("%s: httpTrigger authLevel = %s, want \"anonymous\" (authmw authenticates, not function keys)", where, derefStr(b.AuthLevel)))
			}
		case b.Type == "http" && b.Direction == "out":
			outs++
		}
	}
	if triggers > 0 && (outs != 1 || len(f.Bindings) != 2) {
		probs = append(probs, fmt.Sprintf("%s: an httpTrigger function needs exactly one http out binding and no other bindings (forwarding needs one in, one out); got %d bindings, %d http out", where, len(f.Bindings), outs))
	}
	return probs
}

func derefStr(p *string) string {
	if p == nil {
		return "<missing>"
	}
	return *p
}

func TestCallerFunctionApp(t *testing.T) {
	checkHost(t, callerDir, false)
	names := functionNames(t, callerDir)
	if !slices.Contains(names, "AutoTriggerFunction") {
		t.Fatalf("caller functions = %q, want AutoTriggerFunction", names)
	}
	c := config(t)
	def := literal(t, attr(t, c.variables["caller_schedule"], "default").Expr).AsString()
	for _, name := range names {
		f := readFunction(t, callerDir, name)
		where := "caller/functionapp/" + name + "/function.json"
		checkHTTPBindings(t, where, f)
		for _, b := range f.Bindings {
			if b.Type != "timerTrigger" {
				continue
			}
			if b.Direction != "in" {
				t.Errorf("%s: timerTrigger direction = %q, want in", where, b.Direction)
			}
			if b.Schedule == nil {
				t.Errorf("%s: timerTrigger has no schedule", where)
				continue
			}
			sched := *b.Schedule
			if name == "AutoTriggerFunction" && sched != "%"+caller.EnvSchedule+"%" {
				t.Errorf("%s: schedule = %q, want %q (the app setting Terraform sets)", where, sched, "%"+caller.EnvSchedule+"%")
			}
			if strings.HasPrefix(sched, "%") && strings.HasSuffix(sched, "%") {
				setting := strings.Trim(sched, "%")
				if setting != caller.EnvSchedule {
					t.Errorf("%s: schedule reads app setting %s, which the deployment does not set", where, setting)
					continue
				}
				sched = def // resolved the way the host resolves it in Azure
			}
			if _, err := parseNCRONTAB(sched); err != nil {
				t.Errorf("%s: schedule %q: %v", where, sched, err)
			}
			if b.RunOnStartup != nil && *b.RunOnStartup {
				t.Errorf("%s: runOnStartup is true: it also fires on every scale-out and restart", where)
			}
		}
	}
	auto := readFunction(t, callerDir, "AutoTriggerFunction")
	if len(auto.Bindings) != 1 || auto.Bindings[0].Type != "timerTrigger" {
		t.Errorf("AutoTriggerFunction bindings = %+v, want one timerTrigger", auto.Bindings)
	}
	if _, err := parseNCRONTAB(def); err != nil {
		t.Errorf("variable caller_schedule default %q: %v", def, err)
	}
}

func TestCalleeFunctionApp(t *testing.T) {
	checkHost(t, calleeDir, true)
	names := functionNames(t, calleeDir)
	for _, want := range []string{"ExclusiveFunction", "Healthz"} {
		if !slices.Contains(names, want) {
			t.Errorf("callee functions = %q, want %s", names, want)
		}
	}
	c := config(t)
	for _, name := range names {
		f := readFunction(t, calleeDir, name)
		where := "callee/functionapp/" + name + "/function.json"
		checkHTTPBindings(t, where, f)
		for _, b := range f.Bindings {
			if b.Type != "httpTrigger" && !(b.Type == "http" && b.Direction == "out") {
				t.Errorf("%s: unexpected binding type %q: the callee is HTTP only", where, b.Type)
			}
		}
	}

	ex := readFunction(t, calleeDir, "ExclusiveFunction")
	trig := ex.Bindings[slices.IndexFunc(ex.Bindings, func(b binding) bool { return b.Type == "httpTrigger" })]
	for _, m := range []string{"get", "post"} {
		if !slices.ContainsFunc(trig.Methods, func(s string) bool { return strings.EqualFold(s, m) }) {
			t.Errorf("ExclusiveFunction methods = %q, want %s", trig.Methods, m)
		}
	}
	// The caller's CALLEE_URL is https://<callee>/api/ExclusiveFunction.
	route := "ExclusiveFunction"
	if trig.Route != nil {
		route = *trig.Route
	}
	calleeURL := c.exprSource(c.locals["callee_url"].Expr)
	if !strings.HasSuffix(calleeURL, `/api/`+route+`"`) {
		t.Errorf("local.callee_url = %s does not end in /api/%s, ExclusiveFunction's route", calleeURL, route)
	}

	hz := readFunction(t, calleeDir, "Healthz")
	hzTrig := hz.Bindings[slices.IndexFunc(hz.Bindings, func(b binding) bool { return b.Type == "httpTrigger" })]
	hzRoute := "Healthz"
	if hzTrig.Route != nil {
		hzRoute = *hzTrig.Route
	}
	excluded := c.exprSource(c.resourceLocal(t, "callee_settings", "AUTHMW_EXCLUDED_PATHS"))
	if !strings.EqualFold(excluded, `"/api/`+hzRoute+`"`) {
		t.Errorf("AUTHMW_EXCLUDED_PATHS = %s, but Healthz is served at /api/%s", excluded, hzRoute)
	}
	if excluded != `"/api/healthz"` {
		t.Errorf("AUTHMW_EXCLUDED_PATHS = %s, want \"/api/healthz\"", excluded)
	}
}

// TestFunctionJSONChecksFail proves the binding checks catch the mistakes they exist for.
func TestFunctionJSONChecksFail(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		name string
		f    functionFile
	}{
		{"function key", functionFile{Bindings: []binding{{Type: "httpTrigger", Direction: "in", AuthLevel: str("function")}, {Type: "http", Direction: "out"}}}},
		{"no authLevel", functionFile{Bindings: []binding{{Type: "httpTrigger", Direction: "in"}, {Type: "http", Direction: "out"}}}},
		{"no http out", functionFile{Bindings: []binding{{Type: "httpTrigger", Direction: "in", AuthLevel: str("anonymous")}}}},
		{"extra binding", functionFile{Bindings: []binding{{Type: "httpTrigger", Direction: "in", AuthLevel: str("anonymous")}, {Type: "http", Direction: "out"}, {Type: "queue", Direction: "out"}}}},
	}
	for _, tt := range tests {
		if probs := httpBindingProblems("x", tt.f); len(probs) == 0 {
			t.Errorf("%s: httpBindingProblems accepted %+v", tt.name, tt.f.Bindings)
		}
	}
	ok := functionFile{Bindings: []binding{{Type: "httpTrigger", Direction: "in", AuthLevel: str("anonymous")}, {Type: "http", Direction: "out"}}}
	if probs := httpBindingProblems("x", ok); len(probs) != 0 {
		t.Errorf("httpBindingProblems rejected a correct anonymous HTTP function: %q", probs)
	}
}
