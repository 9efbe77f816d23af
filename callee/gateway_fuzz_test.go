package callee

import (
	"net/url"
	"strings"
	"testing"

	"github.com/f2fauth/f2fauth/internal/netrule"
)

// FuzzGatewayConfigFromEnv: any CALLEE_UPSTREAM_URL / CALLEE_UPSTREAM_TIMEOUT /
// CALLEE_UPSTREAM_HEALTH_PATH is either refused or yields an http(s) upstream with a
// host, no credentials, plain http only to loopback, and a bounded timeout.
func FuzzGatewayConfigFromEnv(f *testing.F) {
	for _, s := range [][3]string{
		{"http://127.0.0.1:8080", "30s", "/healthz"},
		{"https://app.example/base", "", ""},
		{"http://user:pw@127.0.0.1", "1h", "//x"},
		{"HTTP://LOCALHOST:80", "1s", "/"},
		{"http://[::1]:3000", "10m", "/a?b"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, rawURL, timeout, health string) {
		env := map[string]string{EnvUpstreamURL: rawURL, EnvUpstreamTimeout: timeout, EnvUpstreamHealthPath: health}
		cfg, err := GatewayConfigFromEnv(func(k string) string { return env[k] })
		if err != nil {
			// Only the scheme or the host of the value may be quoted, never the rest.
			if u, perr := url.Parse(strings.TrimSpace(rawURL)); perr == nil && u.User != nil {
				if p, ok := u.User.Password(); ok && len(p) > 3 && strings.Contains(err.Error(), p) {
					t.Fatalf("error echoes the password: %v", err)
				}
			}
			if len(rawURL) > 8 && strings.Contains(err.Error(), strings.TrimSpace(rawURL)) {
				t.Fatalf("error echoes the whole value: %v", err)
			}
			return
		}
		if cfg == nil {
			if strings.TrimSpace(rawURL) != "" {
				t.Fatalf("no gateway for %q", rawURL)
			}
			return
		}
		u := cfg.Upstream
		if u.User != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" {
			t.Fatalf("accepted %q", u.Redacted())
		}
		if netrule.CheckURL(u) != nil {
			t.Fatalf("accepted plain http off loopback: %q", u.Redacted())
		}
		if cfg.Timeout < MinUpstreamTimeout || cfg.Timeout > MaxUpstreamTimeout {
			t.Fatalf("timeout %v out of bounds", cfg.Timeout)
		}
		if cfg.HealthPath != "" && (!strings.HasPrefix(cfg.HealthPath, "/") || strings.HasPrefix(cfg.HealthPath, "//")) {
			t.Fatalf("health path %q", cfg.HealthPath)
		}
	})
}
