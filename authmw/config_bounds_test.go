package authmw

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Intervals set through the Go API are bounded like their environment variables:
// a nanosecond unknown-kid interval would let forged kids trigger a JWKS fetch each.
func TestNewRefusesIntervalsThatDisableAGuarantee(t *testing.T) {
	pol := Policy{TenantID: "7c3e9f2a-4b1d-4e8a-9f6c-2d5b8a1ef2fa", Audiences: []string{"api://x"}, RequiredRoles: []string{"r"}}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown kid every nanosecond", Config{Policy: pol, UnknownKeyInterval: time.Nanosecond}, "AUTHMW_UNKNOWN_KEY_INTERVAL (Config.UnknownKeyInterval)"},
		{"key refresh every millisecond", Config{Policy: pol, KeyRefreshInterval: time.Millisecond}, "AUTHMW_KEY_REFRESH_INTERVAL (Config.KeyRefreshInterval)"},
		{"key refresh never", Config{Policy: pol, KeyRefreshInterval: 10000 * time.Hour}, "AUTHMW_KEY_REFRESH_INTERVAL"},
		{"policy file polled constantly", Config{Policy: pol, PolicyFileInterval: time.Microsecond}, "AUTHMW_POLICY_FILE_INTERVAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(context.Background(), tt.cfg)
			if err == nil {
				m.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "out of range") {
				t.Errorf("error %q does not name %s and its range", err, tt.want)
			}
		})
	}
}
