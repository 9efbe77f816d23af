package caller

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The function app's files must keep the shape the Functions host needs to post timer
// invocations for the "timer" binding to /AutoTriggerFunction.
func TestFunctionAppFiles(t *testing.T) {
	t.Parallel()
	read := func(path string, v any) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	var host struct {
		Version         string `json:"version"`
		FunctionTimeout string `json:"functionTimeout"`
		CustomHandler   struct {
			Description struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
			} `json:"description"`
		} `json:"customHandler"`
		ExtensionBundle struct {
			Version string `json:"version"`
		} `json:"extensionBundle"`
	}
	read(filepath.Join("functionapp", "host.json"), &host)
	// CALLER_TIMEOUT is bounded by MaxTimeout so that a run always answers before the
	// host's functionTimeout (the Consumption plan's 5-minute default, valid on every plan).
	var h, m, s int
	if _, err := fmt.Sscanf(host.FunctionTimeout, "%d:%d:%d", &h, &m, &s); err != nil {
		t.Fatalf("host.json functionTimeout %q: %v", host.FunctionTimeout, err)
	}
	ft := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second
	if ft != HostFunctionTimeout || MaxTimeout+ShutdownGrace >= ft || ft > 10*time.Minute {
		t.Errorf("host.json functionTimeout %v; want HostFunctionTimeout (%v), above MaxTimeout+ShutdownGrace (%v) and within Consumption's 10-minute limit", ft, HostFunctionTimeout, MaxTimeout+ShutdownGrace)
	}
	if host.Version != "2.0" || host.CustomHandler.Description.DefaultExecutablePath != "handler" || host.ExtensionBundle.Version != "[4.*, 5.0.0)" {
		t.Errorf("host.json: %+v", host)
	}
	var fn struct {
		Bindings []struct {
			Name         string `json:"name"`
			Type         string `json:"type"`
			Direction    string `json:"direction"`
			Schedule     string `json:"schedule"`
			RunOnStartup *bool  `json:"runOnStartup"`
			UseMonitor   *bool  `json:"useMonitor"`
		} `json:"bindings"`
	}
	read(filepath.Join("functionapp", FunctionName, "function.json"), &fn)
	if len(fn.Bindings) != 1 {
		t.Fatalf("%d bindings; want the timer only", len(fn.Bindings))
	}
	b := fn.Bindings[0]
	if b.Name != TimerBinding || b.Type != "timerTrigger" || b.Direction != "in" || b.Schedule != "%"+EnvSchedule+"%" ||
		b.RunOnStartup == nil || *b.RunOnStartup || b.UseMonitor == nil || !*b.UseMonitor {
		t.Errorf("timer binding %+v", b)
	}
}
