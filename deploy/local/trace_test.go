package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// With -v, each caller's timer run and the callee's decision on it show the
// same trace_id: the caller's request carried a W3C traceparent that the
// callee continued (no exporter is configured: propagation is not export).
func TestOnceRoundSharesTraceIDs(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-once", "-v"}, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	// records maps component -> its JSON log records.
	records := map[string][]map[string]any{}
	for _, line := range strings.Split(errOut.String(), "\n") {
		name, js, ok := strings.Cut(line, "] ")
		if !ok || !strings.HasPrefix(name, "[") {
			continue
		}
		var rec map[string]any
		if json.Unmarshal([]byte(js), &rec) == nil {
			records[strings.TrimPrefix(name, "[")] = append(records[strings.TrimPrefix(name, "[")], rec)
		}
	}
	for _, tc := range []struct{ caller, what string }{{registeredName, "record of the allowed call"}, {rogueName, "denial record"}} {
		var tid string
		for _, r := range records[tc.caller] {
			if r["msg"] == "caller: invocation finished" {
				tid, _ = r["trace_id"].(string)
			}
		}
		if len(tid) != 32 {
			t.Errorf("%s: the run's 'invocation finished' record has no trace_id\n%s", tc.caller, errOut.String())
			continue
		}
		shared := false
		for _, r := range records["callee"] {
			if r["trace_id"] == tid {
				shared = true
			}
		}
		if !shared {
			t.Errorf("%s: no callee %s with the run's trace_id %s\n%s", tc.caller, tc.what, tid, errOut.String())
		}
	}
}
