package customhandler

import (
	"strings"
	"testing"
)

func TestPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    int
		wantErr string
	}{
		{"default", nil, DefaultPort, ""},
		{"host port wins", map[string]string{EnvPort: "7071", EnvFallbackPort: "9000"}, 7071, ""},
		{"fallback", map[string]string{EnvFallbackPort: " 9000 "}, 9000, ""},
		{"zero means any free port", map[string]string{EnvPort: "0"}, 0, ""},
		{"not a number", map[string]string{EnvPort: "eighty"}, 0, EnvPort},
		{"negative", map[string]string{EnvFallbackPort: "-1"}, 0, EnvFallbackPort},
		{"out of range", map[string]string{EnvFallbackPort: "70000"}, 0, EnvFallbackPort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Port(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Port: %v; want an error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Port = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
