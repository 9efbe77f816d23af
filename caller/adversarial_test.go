package caller

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestConfigFormattingHidesFunctionKey: a function key in CALLEE_URL
// (?code=…) never shows when a Config (Caller.Config()) is printed or logged,
// whatever the verb or handler.
func TestConfigFormattingHidesFunctionKey(t *testing.T) {
	const key = "fUnCt10nK3ySecretValue0123456789abcdefXYZ=="
	cfg, err := ConfigFromEnv(func(name string) string {
		switch name {
		case EnvCalleeURL:
			return "https://callee.example.com/api/Exclusive?code=" + key + "&clientId=default"
		case EnvCalleeAudience:
			return "api://callee"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		outs = append(outs, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg))
	}
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(h(&b)).Info("start", "config", cfg, "ptr", &cfg)
		outs = append(outs, b.String())
	}
	for _, out := range outs {
		if strings.Contains(out, "fUnCt10nK3y") || strings.Contains(out, "clientId=default") {
			t.Fatalf("the function key leaks: %s", out)
		}
		if !strings.Contains(out, "callee.example.com/api/Exclusive") {
			t.Fatalf("the URL is gone altogether: %s", out)
		}
	}
}
