package authmw

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"
)

// policyTarget is what a policy-file watcher drives: *Middleware.
type policyTarget interface {
	Policy() Policy
	SetPolicy(Policy) error
}

// startPolicyWatcher polls the policy file at path every interval until ctx is done.
// When the content changes (by stat — modification time and size — or by SHA-256 of
// the bytes, so a same-size rewrite within the file system's timestamp granularity is
// still seen), the file is parsed, override is merged over it (mergePolicy) and the
// result, when it differs from target's active policy, is passed to target.SetPolicy.
// The first poll reads the file too, so a change made while the Middleware started is
// not missed. An unreadable or invalid file, a change that would turn an active check
// off (that needs a restart), or an error from SetPolicy, is logged at Warn with the
// error and the old policy stays in force; the same bad content is reported once, not
// on every poll. It returns at once; the polling runs in its own goroutine. It uses no
// file-system notification API, so it works on every platform and on network and
// container-mounted files (ConfigMaps, Azure Files).
func startPolicyWatcher(ctx context.Context, path string, interval time.Duration, override Policy, target policyTarget, logger *slog.Logger) {
	w := newPolicyWatcher(path, override, target, logger)
	go w.run(ctx, interval)
}

// newPolicyWatcher makes a watcher; nothing is read until its first poll.
func newPolicyWatcher(path string, override Policy, target policyTarget, logger *slog.Logger) *policyWatcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &policyWatcher{path: path, override: override, target: target, logger: logger}
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
	target   policyTarget
	logger   *slog.Logger

	last    fileStamp // content last seen (applied or rejected)
	haveAny bool      // last is meaningful
	missing bool      // the file was missing at the last poll (reported once)
}

// read stats the file and reads and hashes its content (at most
// maxPolicyFileBytes+1 bytes), so what is parsed is exactly what was hashed.
func (w *policyWatcher) read() (fileStamp, []byte, error) {
	fi, data, err := readPolicyFile(w.path)
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

	reject := func(msg string, err error) {
		w.logger.Warn("authmw: policy file change "+msg+"; keeping the current policy",
			slog.String("path", w.path), slog.String("error", err.Error()))
	}
	var (
		fp      Policy
		format  policyFormat
		ignored []string
	)
	if len(data) > maxPolicyFileBytes {
		err = invalidPolicy("policy file %s is larger than %d bytes", w.path, maxPolicyFileBytes)
	} else {
		fp, format, ignored, err = parsePolicyDocument(data)
	}
	if err != nil {
		reject("rejected", err)
		return
	}
	merged := mergePolicy(fp, w.override)
	if errs := merged.problemErrs(settingNames(w.path, format)); len(errs) > 0 {
		reject("rejected", errors.Join(errs...))
		return
	}
	next, err := compilePolicy(merged)
	if err != nil {
		reject("rejected", err)
		return
	}
	active := w.target.Policy()
	if reflect.DeepEqual(next.Policy, active) {
		return
	}
	if off := checksTurnedOff(active, next.Policy, format); len(off) > 0 {
		reject("refused", invalidPolicy("it would turn off the check of %s: turning a check off needs a restart "+
			"(to let nobody pass, keep the setting with an empty list [])", strings.Join(off, ", ")))
		return
	}
	if err := w.target.SetPolicy(next.Policy); err != nil {
		reject("could not be applied", err)
		return
	}
	// SetPolicy logged the event ("authmw: policy replaced"); one message per event.
	w.logger.Debug("authmw: policy file change applied", slog.String("path", w.path))
	logIgnoredFields(w.logger, w.path, ignored)
}

// checksTurnedOff names (by setting, with the keys of a file in format) each check
// that old enforces and next does not enforce at all, and each excluded path of next
// that old protected. Both are compiled policies (defaults filled).
func checksTurnedOff(old, next Policy, format policyFormat) []string {
	var off []string
	name := func(field string) string {
		key, env := format.fileKey(field), envForField[field].env
		switch {
		case key != "" && env != "":
			return key + " (" + env + ")"
		case key != "":
			return key
		case env != "":
			return env
		}
		return "Policy." + field
	}
	for _, l := range []struct {
		field     string
		old, next bool
	}{
		{"AllowedApplications", old.AllowedApplications != nil, next.AllowedApplications != nil},
		{"AllowedIdentities", old.AllowedIdentities != nil || old.AllowedGroups != nil,
			next.AllowedIdentities != nil || next.AllowedGroups != nil},
		{"AllowedTenants", old.AllowedTenants != nil, next.AllowedTenants != nil},
		{"RequiredRoles", old.RequiredRoles != nil, next.RequiredRoles != nil},
		{"AppOnly", old.AppOnly, next.AppOnly},
		{"MaxTokenAge", old.MaxTokenAge != 0, next.MaxTokenAge != 0},
		{"UnauthenticatedAction", old.UnauthenticatedAction != AllowAnonymous, next.UnauthenticatedAction != AllowAnonymous},
		{"AllowedClientCIDRs", old.AllowedClientCIDRs != nil, next.AllowedClientCIDRs != nil},
		{"UserClaim", old.UserClaim != "", next.UserClaim != ""},
	} {
		if l.old && !l.next {
			off = append(off, name(l.field))
		}
	}
	// Excluding a path turns authentication off for it: a reload may drop
	// exclusions, or keep them, but not exclude a path the old policy protected.
	for _, e := range next.ExcludedPaths {
		if !excludedBy(old.ExcludedPaths, e) {
			off = append(off, fmt.Sprintf("%s %q", name("ExcludedPaths"), e))
		}
	}
	for claim := range old.BoundClaims {
		if _, ok := next.BoundClaims[claim]; !ok {
			off = append(off, fmt.Sprintf("%s %q", name("BoundClaims"), claim))
		}
	}
	slices.Sort(off)
	return off
}

// excludedBy reports whether the ExcludedPaths entries cover everything the
// entry e excludes: an exact path listed, or under a "/x/*" prefix; a prefix
// "/y/*" under a listed prefix.
func excludedBy(entries []string, e string) bool {
	base, _ := strings.CutSuffix(e, "/*")
	for _, o := range entries {
		if o == e {
			return true
		}
		if ob, ok := strings.CutSuffix(o, "/*"); ok && (base == ob || strings.HasPrefix(base, ob+"/")) {
			return true
		}
	}
	return false
}
