package jwks

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/f2fauth/f2fauth/internal/testutil"
)

// levels counts the "fetch failed" records by level.
func fetchFailedLevels(logs string) map[string]int {
	n := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var rec struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "jwks: fetch failed; will retry" {
			n[rec.Level]++
		}
	}
	return n
}

// Failed fetches are WARN while young, ERROR once they have lasted
// ErrorLogAfter (the first failure is back-dated instead of waiting a
// minute), and LastLoad / KeyCount report the last good load.
func TestFetchFailureEscalatesAndStatus(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, jwksJSON(t, pubJWK(t, keysOnce().k1, "k1", nil)))
	logs := &testutil.SyncBuffer{}
	ks := newTestKeySet(t, srv, Options{
		RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond, RefreshInterval: 5 * time.Minute,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	loaded := ks.LastLoad()
	if loaded.IsZero() || ks.KeyCount() != 1 || ks.URL() != srv.URL {
		t.Fatalf("after load: LastLoad %v, KeyCount %d, URL %q", loaded, ks.KeyCount(), ks.URL())
	}

	// A refresh now fails with 503 (the background loop sleeps for minutes:
	// fetch by hand): the keys stay, and so does LastLoad.
	srv.set(http.StatusServiceUnavailable, []byte(`{"error":"down"}`))
	if err := ks.fetchShared(false); err == nil {
		t.Fatal("fetch from a 503 endpoint succeeded")
	}
	// The background loop's failure path, on a key set that never loads.
	failing := newJWKSServer(t, []byte(`{"error":"down"}`))
	failing.set(http.StatusServiceUnavailable, []byte(`{"error":"down"}`))
	logs2 := &testutil.SyncBuffer{}
	ks2, err := New(context.Background(), Options{URL: failing.URL, RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(logs2, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks2.Close)
	eventually(t, "a WARN record", func() bool { return fetchFailedLevels(logs2.String())["WARN"] > 0 })
	if n := fetchFailedLevels(logs2.String()); n["ERROR"] != 0 {
		t.Fatalf("young failures logged at ERROR: %v\n%s", n, logs2)
	}
	ks2.failingSince.Store(time.Now().Add(-2 * ErrorLogAfter).UnixNano())
	eventually(t, "an ERROR record", func() bool { return fetchFailedLevels(logs2.String())["ERROR"] > 0 })
	if !strings.Contains(logs2.String(), `"retry_in_ms":`) {
		t.Errorf("no retry_in_ms:\n%s", logs2)
	}
	if !ks2.LastLoad().IsZero() || ks2.KeyCount() != 0 {
		t.Errorf("never loaded: LastLoad %v, KeyCount %d", ks2.LastLoad(), ks2.KeyCount())
	}
	if !ks.LastLoad().Equal(loaded) || ks.KeyCount() != 1 {
		t.Errorf("a failed refresh changed LastLoad (%v → %v) or KeyCount (%d)", loaded, ks.LastLoad(), ks.KeyCount())
	}
}
