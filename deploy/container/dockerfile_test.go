// Package container holds the tests of the callee's container image definition: they
// read the Dockerfile, check what it promises (static, non-root, settings the code
// reads) and build the binary exactly as its build stage does, without Docker.
package container

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/f2fauth/f2fauth/callee"
)

const repoRoot = "../.."

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

// stage is one FROM ... block.
type stage struct {
	from  string
	insts []instruction
}

func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	sc := bufio.NewScanner(f)
	var cur strings.Builder
	n, start := 0, 0
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if s == "" {
			return
		}
		cmd, args, _ := strings.Cut(s, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			stages = append(stages, stage{from: in.args})
			return
		}
		if len(stages) > 0 {
			stages[len(stages)-1].insts = append(stages[len(stages)-1].insts, in)
		}
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s); want a build stage and a runtime stage", len(stages))
	}
	return stages
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.insts {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// envOf parses ENV k=v [k=v...] instructions.
func envOf(s stage) map[string]string {
	env := map[string]string{}
	for _, in := range s.all("ENV") {
		for _, kv := range strings.Fields(in.args) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	return env
}

func TestRuntimeStage(t *testing.T) {
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") || !strings.HasSuffix(final.from, ":nonroot") {
		t.Errorf("runtime stage FROM %q; want gcr.io/distroless/static…:nonroot (no libc, no shell, CA certificates)", final.from)
	}
	users := final.all("USER")
	if len(users) != 1 {
		t.Fatalf("runtime stage has %d USER instructions; want 1", len(users))
	}
	uid, _, _ := strings.Cut(users[0].args, ":")
	if uid == "0" || uid == "root" || strings.Trim(uid, "0123456789") != "" {
		t.Errorf("USER %q; want a numeric non-root user", users[0].args)
	}
	env := envOf(final)
	for k := range env {
		if k != callee.EnvPort && !slices.Contains(callee.Settings(), k) {
			t.Errorf("ENV %s is not a setting the callee reads (callee.Settings, PORT)", k)
		}
	}
	if env[callee.EnvListenHost] != "0.0.0.0" {
		t.Errorf("ENV %s=%q; a container must listen on 0.0.0.0", callee.EnvListenHost, env[callee.EnvListenHost])
	}
	ep := final.all("ENTRYPOINT")
	if len(ep) != 1 || !strings.HasPrefix(ep[0].args, "[") {
		t.Errorf("ENTRYPOINT %v; want exactly one, in exec form (signals reach the binary)", ep)
	}
	for _, in := range final.insts {
		if in.cmd == "RUN" {
			t.Errorf("line %d: RUN in the runtime stage (it has no shell)", in.line)
		}
	}
}

// buildStage returns the build stage's environment and go build arguments.
func buildStage(t *testing.T) (map[string]string, []string, []string) {
	t.Helper()
	build := parseDockerfile(t)[0]
	env := envOf(build)
	if env["CGO_ENABLED"] != "0" {
		t.Errorf("build stage CGO_ENABLED=%q; want 0 (a static binary)", env["CGO_ENABLED"])
	}
	var args []string
	for _, in := range build.all("RUN") {
		if strings.HasPrefix(in.args, "go build ") {
			args = shellWords(strings.TrimPrefix(in.args, "go build "))
		}
	}
	if len(args) == 0 || args[len(args)-1] != "./callee/functionapp" {
		t.Fatalf("build stage does not run `go build ... ./callee/functionapp`: %v", args)
	}
	var copied []string
	for _, in := range build.all("COPY") {
		f := strings.Fields(in.args)
		copied = append(copied, f[:len(f)-1]...)
	}
	return env, args, copied
}

// TestBuildStageCopiesEveryPackage: the directories the build stage copies hold every
// package of this module the callee imports.
func TestBuildStageCopiesEveryPackage(t *testing.T) {
	_, _, copied := buildStage(t)
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if eq .Module.Path \"github.com/f2fauth/f2fauth\"}}{{.ImportPath}}{{end}}{{end}}", "./callee/functionapp")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		rel := strings.TrimPrefix(pkg, "github.com/f2fauth/f2fauth/")
		if !slices.ContainsFunc(copied, func(c string) bool { return strings.HasPrefix(rel+"/", strings.TrimSuffix(c, "/")+"/") }) {
			t.Errorf("package %s is not copied into the build stage (COPY %v)", rel, copied)
		}
	}
	ignore, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range copied {
		if !strings.Contains(string(ignore), "!"+c) {
			t.Errorf("Dockerfile.dockerignore does not let %s into the context", c)
		}
	}
}

// TestBuildIsStatic builds the binary as the build stage does and checks it needs no
// dynamic loader or shared library, then runs it: a bad setting is named on stderr.
func TestBuildIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the callee")
	}
	env, args, _ := buildStage(t)
	exe := filepath.Join(t.TempDir(), "callee")
	full := []string{"build"}
	for i := 0; i < len(args)-1; i++ {
		if args[i] == "-o" {
			i++ // the image's output path; this test writes to its temporary directory
			continue
		}
		full = append(full, args[i])
	}
	full = append(full, "-o", exe, "./callee/functionapp")
	cmd := exec.Command("go", full...)
	cmd.Dir = repoRoot
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", full, err, out)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: it is not static", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v", libs)
	}
	run := exec.Command(exe)
	run.Env = []string{"PORT=0", "CALLEE_UPSTREAM_URL=http://192.0.2.1:8080"}
	out, err := run.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "AUTHMW_AUDIENCES") || !strings.Contains(string(out), callee.EnvUpstreamURL) {
		t.Errorf("the binary with bad settings: %v\n%s", err, out)
	}
}

// TestDockerBuild builds the image when a Docker daemon is reachable.
func TestDockerBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image")
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker not on PATH")
	}
	if err := exec.Command(docker, "info").Run(); err != nil {
		t.Skip("no Docker daemon")
	}
	cmd := exec.Command(docker, "build", "-q", "-f", "deploy/container/Dockerfile", "-t", "f2fauth-callee:test", ".")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
}

// shellWords splits a RUN command line into words, honouring double and single quotes
// (enough for the build stage's go build line).
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	in := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote, in = r, true
		case quote == 0 && (r == ' ' || r == '\t'):
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}
