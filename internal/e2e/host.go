// Package e2e plays the Azure Functions host for the caller on one machine: it runs the
// caller's custom handler as a child process (re-executing the current binary, so
// nothing is built by hand), waits for its readiness probe like the host does, and
// sends it timer invocations. The local run (deploy/local) and the end-to-end tests use
// it.
//
// Each caller runs in its own process because azidentity reads IDENTITY_ENDPOINT and
// IDENTITY_HEADER from the process environment and MSAL caches managed-identity tokens
// process-wide: two identities cannot share a process, exactly as two function apps
// never do.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/f2fauth/f2fauth/caller"
	"github.com/f2fauth/f2fauth/internal/otelsetup"
)

// RoleEnv switches a binary that calls [MaybeRunChild] into a child role.
const RoleEnv = "F2F_CHILD_ROLE"

// RoleCaller is the RoleEnv value that runs the caller's custom handler.
const RoleCaller = "caller"

// readyTimeout bounds the wait for a child's readiness probe (the host allows 60 s).
const readyTimeout = 30 * time.Second

// listeningPrefix starts the line a child writes on stdout once it listens.
const listeningPrefix = "F2F_LISTENING "

// MaybeRunChild runs the child role named by RoleEnv and exits the process; it returns
// at once when RoleEnv is unset. Call it first thing in main or TestMain.
//
// The caller child does what caller.Run does — ConfigFromEnv, New, listen on 127.0.0.1
// and FUNCTIONS_CUSTOMHANDLER_PORT, Serve until SIGTERM/SIGINT — except that the parent
// passes port 0 and the child reports the port it got on stdout, so no two processes
// ever race for a port. It also stops when its stdin reaches EOF (the parent exited).
func MaybeRunChild() {
	role := os.Getenv(RoleEnv)
	if role == "" {
		return
	}
	if role != RoleCaller {
		fmt.Fprintf(os.Stderr, "%s: unknown role %q (want %q)\n", RoleEnv, role, RoleCaller)
		os.Exit(2)
	}
	if err := runCallerChild(); err != nil {
		fmt.Fprintln(os.Stderr, err) // errors already name the caller and every offending variable
		os.Exit(1)
	}
	os.Exit(0)
}

func runCallerChild() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop() // parent gone: shut down
	}()
	cfg, err := caller.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	tel, err := otelsetup.Setup(ctx, os.LookupEnv, otelsetup.Options{ServiceName: "f2fauth-caller", AlwaysTrace: true}) // as caller.Run
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // best effort flush at exit
	c, err := caller.New(cfg, &caller.Options{Logger: slog.New(slog.NewJSONHandler(os.Stderr, nil))})
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if _, err := fmt.Fprintf(os.Stdout, "%s%s\n", listeningPrefix, ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	return c.Serve(ctx, ln)
}

// CallerSpec describes one caller child process.
type CallerSpec struct {
	// Name labels the caller in output, e.g. "registered-caller".
	Name string
	// IdentityEnv holds IDENTITY_ENDPOINT=… and IDENTITY_HEADER=… (localidp's
	// ManagedIdentity.Env()).
	IdentityEnv []string
	// CalleeURL and Audience become CALLEE_URL and CALLEE_AUDIENCE.
	CalleeURL string
	Audience  string
	// Env holds further settings, e.g. "CALLER_TIMEOUT=5s".
	Env []string
	// Stderr receives the child's structured logs; nil discards them.
	Stderr io.Writer
	// Executable is the binary to run; default os.Executable().
	Executable string
}

// CallerProcess is a running caller child.
type CallerProcess struct {
	Name string
	// URL is the child's base URL, http://127.0.0.1:PORT.
	URL    string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	done   chan struct{}
	err    error
	client *http.Client
}

// childEnvPrefixes are removed from the inherited environment so the child sees only the
// identity and settings it is given.
var childEnvPrefixes = []string{"IDENTITY_", "MSI_", "IMDS_", "AZURE_", "CALLEE_", "CALLER_", "FUNCTIONS_", "PORT=", "F2F_"}

// StartCaller starts a caller child, learns the loopback port it listens on (the child
// binds port 0 and announces the address, so ports are never raced for) and waits until
// it answers its readiness probe (GET /), like the Functions host does. ctx bounds the
// wait.
func StartCaller(ctx context.Context, spec CallerSpec) (*CallerProcess, error) {
	exe := spec.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("e2e: locate own executable: %w", err)
		}
	}
	env := make([]string, 0, len(os.Environ())+8)
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range childEnvPrefixes {
			if strings.HasPrefix(kv, p) {
				keep = false
				break
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	env = append(env, RoleEnv+"="+RoleCaller,
		caller.EnvCalleeURL+"="+spec.CalleeURL,
		caller.EnvCalleeAudience+"="+spec.Audience,
		caller.EnvCredential+"=managedidentity",
		caller.EnvCustomHandlerPort+"=0")
	env = append(env, spec.IdentityEnv...)
	env = append(env, spec.Env...)

	logs := spec.Stderr
	if logs == nil {
		logs = io.Discard
	}
	cmd := exec.Command(exe)
	cmd.Env = env
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("e2e: %s: stdout pipe: %w", spec.Name, err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("e2e: %s: stdin pipe: %w", spec.Name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("e2e: start %s: %w", spec.Name, err)
	}
	p := &CallerProcess{
		Name:   spec.Name,
		cmd:    cmd,
		stdin:  stdin,
		done:   make(chan struct{}),
		client: &http.Client{Timeout: 2 * time.Minute},
	}
	addrc := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		// The first line announces the address; everything else is log output.
		sc := bufio.NewScanner(stdout)
		announced := false
		for sc.Scan() {
			line := sc.Text()
			if !announced && strings.HasPrefix(line, listeningPrefix) {
				announced = true
				addrc <- strings.TrimPrefix(line, listeningPrefix)
				continue
			}
			fmt.Fprintln(logs, line)
		}
		_, _ = io.Copy(logs, stdout)
	}()
	go func() {
		<-readDone // Wait closes the pipe: read it to the end first
		p.err = cmd.Wait()
		close(p.done)
	}()
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	select {
	case addr := <-addrc:
		p.URL = "http://" + addr
	case <-p.done:
		return nil, fmt.Errorf("e2e: %s exited before listening: %v", spec.Name, p.err)
	case <-ctx.Done():
		p.Stop()
		return nil, fmt.Errorf("e2e: %s did not start listening: %w", spec.Name, ctx.Err())
	}
	if err := p.waitReady(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls GET / every 25 ms (as the host does) until any HTTP answer.
func (p *CallerProcess) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	probe := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/", nil)
		if resp, err := probe.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("e2e: %s exited before becoming ready: %v", p.Name, p.err)
		case <-ctx.Done():
			return fmt.Errorf("e2e: %s not ready: %w", p.Name, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Stop asks the child to shut down (SIGTERM, and EOF on its stdin) and waits up to
// 10 s before killing it. It is safe to call more than once.
func (p *CallerProcess) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.stdin.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

// PID returns the child's process ID.
func (p *CallerProcess) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the child has exited.
func (p *CallerProcess) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Result is one timer invocation as the host sees it.
type Result struct {
	// Status is the handler's HTTP status (2xx = successful run).
	Status int
	// Response is the decoded invocation response.
	Response caller.InvocationResponse
}

// Report returns the caller's report (ReturnValue), or an empty one.
func (r *Result) Report() *caller.Report {
	if r.Response.ReturnValue == nil {
		return &caller.Report{}
	}
	return r.Response.ReturnValue
}

// Invoke sends one timer invocation, as the host does on a schedule occurrence.
func (p *CallerProcess) Invoke(ctx context.Context, pastDue bool) (*Result, error) {
	return p.InvokeRaw(ctx, TimerPayload(pastDue, time.Now()))
}

// InvokeRaw posts body to /AutoTriggerFunction with the host's headers.
func (p *CallerProcess) InvokeRaw(ctx context.Context, body []byte) (*Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/"+caller.FunctionName, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(caller.InvocationIDHeader, newGUID())
	req.Header.Set("X-Azure-Functions-HostVersion", "4.1037.0-local")
	req.Header.Set("User-Agent", "Azure-Functions-Host/4.1037.0-local (f2fauth e2e)")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("e2e: invoke %s: %w", p.Name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("e2e: invoke %s: read: %w", p.Name, err)
	}
	res := &Result{Status: resp.StatusCode}
	if err := json.Unmarshal(data, &res.Response); err != nil {
		return res, fmt.Errorf("e2e: invoke %s: status %d, body is not an invocation response: %w", p.Name, resp.StatusCode, err)
	}
	return res, nil
}

// TimerPayload is the host's timer invocation body for the "timer" binding.
func TimerPayload(pastDue bool, now time.Time) []byte {
	now = now.UTC()
	body := map[string]any{
		"Data": map[string]any{
			caller.TimerBinding: map[string]any{
				"Schedule": map[string]any{"AdjustForDST": true},
				"ScheduleStatus": map[string]string{
					"Last":        now.Add(-5 * time.Second).Format(time.RFC3339Nano),
					"Next":        now.Add(5 * time.Second).Format(time.RFC3339Nano),
					"LastUpdated": now.Add(-5 * time.Second).Format(time.RFC3339Nano),
				},
				"IsPastDue": pastDue,
			},
		},
		"Metadata": map[string]any{
			"sys": map[string]string{"MethodName": caller.FunctionName, "UtcNow": now.Format(time.RFC3339Nano), "RandGuid": newGUID()},
		},
	}
	b, _ := json.Marshal(body)
	return b
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
