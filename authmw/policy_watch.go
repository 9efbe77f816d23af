package authmw

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// startPolicyWatcher polls the policy file at path every interval until ctx is done.
// The content present when it starts is the baseline (the caller has loaded it).
// When the content changes (by stat — modification time and size — or by SHA-256 of
// the bytes, so a same-size rewrite within the file system's timestamp granularity is
// still seen), the file is loaded, override is merged over it (MergePolicy), the result
// is validated and passed to apply. An unreadable or invalid file, or an error from
// apply, is logged at Warn with the error and the old policy stays in force; the same
// bad content is reported once, not on every poll. It returns at once; the polling
// runs in its own goroutine. It uses no file-system notification API, so it works on
// every platform and on network and container-mounted files (ConfigMaps, Azure Files).
func startPolicyWatcher(ctx context.Context, path string, interval time.Duration, override Policy, apply func(Policy) error, logger *slog.Logger) {
	w := newPolicyWatcher(path, override, apply, logger)
	go w.run(ctx, interval)
}

// newPolicyWatcher makes a watcher whose baseline is the file's current content.
func newPolicyWatcher(path string, override Policy, apply func(Policy) error, logger *slog.Logger) *policyWatcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &policyWatcher{path: path, override: override, apply: apply, logger: logger}
	w.baseline()
	return w
}

// run polls every interval (DefaultPolicyFileInterval when <= 0) until ctx is done.
func (w *policyWatcher) run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultPolicyFileInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.poll()
		}
	}
}

type fileStamp struct {
	mod  time.Time
	size int64
	sum  [sha256.Size]byte
}

// policyWatcher is the state of one watcher; only its goroutine touches it after baseline.
type policyWatcher struct {
	path     string
	override Policy
	apply    func(Policy) error
	logger   *slog.Logger

	last    fileStamp // content last seen (applied or rejected)
	haveAny bool      // last is meaningful
	missing bool      // the file was missing at the last poll (reported once)
}

func (w *policyWatcher) baseline() {
	if st, _, err := w.read(); err == nil {
		w.last, w.haveAny = st, true
	}
}

// read stats the file and reads and hashes its content (at most
// maxPolicyFileBytes+1 bytes), so what is parsed is exactly what was hashed.
func (w *policyWatcher) read() (fileStamp, []byte, error) {
	f, err := os.Open(w.path)
	if err != nil {
		return fileStamp{}, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileStamp{}, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFileBytes+1))
	if err != nil {
		return fileStamp{}, nil, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), sum: sha256.Sum256(data)}, data, nil
}

func (w *policyWatcher) poll() {
	st, data, err := w.read()
	if err != nil {
		if !w.missing || !errors.Is(err, os.ErrNotExist) {
			w.logger.Warn("authmw: policy file unreadable; keeping the current policy",
				slog.String("path", w.path), slog.String("error", err.Error()))
		}
		w.missing = errors.Is(err, os.ErrNotExist)
		return
	}
	w.missing = false
	if w.haveAny && st.sum == w.last.sum && st.size == w.last.size && st.mod.Equal(w.last.mod) {
		return
	}
	if w.haveAny && st.sum == w.last.sum {
		w.last = st // touched, same content: nothing to apply
		return
	}
	w.last, w.haveAny = st, true

	var fp Policy
	if len(data) > maxPolicyFileBytes {
		err = fmt.Errorf("%w: policy file %s is larger than %d bytes", ErrInvalidPolicy, w.path, maxPolicyFileBytes)
	} else {
		fp, err = ParseAuthSettingsV2(data)
	}
	if err != nil {
		w.logger.Warn("authmw: policy file change rejected; keeping the current policy",
			slog.String("path", w.path), slog.String("error", err.Error()))
		return
	}
	merged := MergePolicy(fp, w.override)
	if err := merged.Validate(); err != nil {
		w.logger.Warn("authmw: policy file change rejected; keeping the current policy",
			slog.String("path", w.path), slog.String("error", err.Error()))
		return
	}
	if err := w.apply(merged); err != nil {
		w.logger.Warn("authmw: policy file change could not be applied; keeping the current policy",
			slog.String("path", w.path), slog.String("error", err.Error()))
		return
	}
	w.logger.Info("authmw: policy file change applied", slog.String("path", w.path))
}
