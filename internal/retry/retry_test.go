package retry

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 10 * time.Second}
	tests := []struct {
		failures int
		jitter   float64
		want     time.Duration
	}{
		{1, 0.5, time.Second},
		{2, 0.5, 2 * time.Second},
		{4, 0.5, 8 * time.Second},
		{5, 0.5, 10 * time.Second},
		{1000, 0.99, 10 * time.Second},
		{1, 0, 750 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := b.Delay(tt.failures, tt.jitter); got != tt.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", tt.failures, tt.jitter, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name, value string
		want        time.Duration
		ok          bool
	}{
		{"Retry-After", "7", 7 * time.Second, true},
		{"Retry-After", "999999999999", MaxRetryAfter, true},
		{"Retry-After", "-1", 0, false},
		{"Retry-After", "soon", 0, false},
		{"Retry-After", now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{"Retry-After-Ms", "250", 250 * time.Millisecond, true},
		{"X-Ms-Retry-After-Ms", "1500", 1500 * time.Millisecond, true},
	}
	for _, tt := range tests {
		h := http.Header{}
		h.Set(tt.name, tt.value)
		got, ok := RetryAfter(h, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: %q = %v, %v; want %v, %v", tt.name, tt.value, got, ok, tt.want, tt.ok)
		}
	}
	if d := (Backoff{Initial: time.Second, Max: time.Minute}).After(1, 0.5, http.Header{"Retry-After": {"20"}}, now); d != 20*time.Second {
		t.Errorf("After with Retry-After 20 = %v", d)
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep(1ms) = false, want true")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep on a cancelled context = true, want false")
	}
}
