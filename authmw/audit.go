package authmw

import (
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// auditMsg is the message of every audit record.
const auditMsg = "authmw decision"

// audit records one decision: a slog record (Info when passed on, Warn when
// denied) and the OnDecision hook. It never records the token; the Detail of a
// denial, which may quote claims, is server-side only and is logged.
func (m *Middleware) audit(r *http.Request, start time.Time, outcome Outcome, status int, p *Principal, e *Error, cached bool) {
	d := Decision{
		Outcome:  outcome,
		Status:   status,
		ClientIP: clientIP(r.RemoteAddr),
		Method:   r.Method,
		Path:     r.URL.Path,
		Cached:   cached,
		Duration: time.Since(start),
	}
	if p != nil {
		d.AppID, d.ObjectID, d.TenantID, d.KeyID = p.AppID, p.ObjectID, p.TenantID, p.KeyID
	}
	if e != nil {
		d.Reason = e.Reason
	}
	if m.cfg.OnDecision != nil {
		m.cfg.OnDecision(d)
	}
	if m.cfg.Logger == nil {
		return
	}
	level := slog.LevelInfo
	if outcome == OutcomeDenied {
		level = slog.LevelWarn
	}
	ctx := r.Context()
	if !m.cfg.Logger.Enabled(ctx, level) {
		return
	}
	suppressed, record := m.sampler.take(m.cfg.AuditAllowed, outcome, cached, m.cfg.Now)
	if !record {
		return
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs, slog.String("outcome", string(d.Outcome)))
	// Status is the HTTP status sent; a request passed on (allowed, anonymous,
	// excluded) sent none yet, so the key is absent rather than 0. Likewise an
	// empty reason, and identity keys a decision without a token does not have.
	if d.Status != 0 {
		attrs = append(attrs, slog.Int("status", d.Status))
	}
	if d.Reason != "" {
		attrs = append(attrs, slog.String("reason", string(d.Reason)))
	}
	if p != nil {
		attrs = append(attrs,
			slog.String("appid", d.AppID),
			slog.String("oid", d.ObjectID),
			slog.String("tid", d.TenantID),
			slog.String("kid", d.KeyID),
		)
	}
	attrs = append(attrs,
		slog.String("client_ip", d.ClientIP),
		slog.String("method", d.Method),
		slog.String("path", d.Path),
		slog.Bool("cached", d.Cached),
		slog.Float64("duration_ms", durationMS(d.Duration)),
	)
	if e != nil {
		attrs = append(attrs, slog.String("detail", errDetail(e)))
	}
	if suppressed >= 0 {
		attrs = append(attrs, slog.Int64("suppressed", suppressed))
	}
	m.cfg.Logger.LogAttrs(ctx, level, auditMsg, attrs...)
}

// durationMS is d in milliseconds, to the microsecond: the one unit of
// durations in every log record (key suffix _ms).
func durationMS(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// auditSampler decides which pass-through decisions get an audit record under
// Config.AuditAllowed. In AuditSample mode each sampled outcome has its own
// once-per-second slot, claimed lock-free.
type auditSampler struct {
	slots [3]sampleSlot // OutcomeAllowed (cache hits), OutcomeAnonymous, OutcomeExcluded
}

type sampleSlot struct {
	last       atomic.Int64 // Config.Now of the last record, Unix ns; 0: none yet
	suppressed atomic.Int64 // decisions left unrecorded since then
}

// take reports whether a decision gets a record and, for a sampled one, how many
// decisions of its outcome were left unrecorded before it (-1: not sampled).
// Denials are always recorded; in AuditSample mode so are allowed decisions that
// verified a signature.
func (s *auditSampler) take(mode AuditMode, outcome Outcome, cached bool, now func() time.Time) (suppressed int64, record bool) {
	var slot *sampleSlot
	switch {
	case outcome == OutcomeDenied, mode == AuditAll:
		return -1, true
	case mode == AuditNone:
		return -1, false
	case outcome == OutcomeAllowed && !cached:
		return -1, true
	case outcome == OutcomeAllowed:
		slot = &s.slots[0]
	case outcome == OutcomeAnonymous:
		slot = &s.slots[1]
	default:
		slot = &s.slots[2]
	}
	t := now().UnixNano()
	last := slot.last.Load()
	if last != 0 && t-last < int64(time.Second) || !slot.last.CompareAndSwap(last, t) {
		slot.suppressed.Add(1)
		return 0, false
	}
	return slot.suppressed.Swap(0), true
}

// errDetail is the server-side explanation of a denial (detail and cause).
func errDetail(e *Error) string {
	s := e.Detail
	if e.Err != nil {
		if s != "" {
			s += ": "
		}
		s += e.Err.Error()
	}
	return s
}

// clientIP is the host part of RemoteAddr. X-Forwarded-For is not trusted.
func clientIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}
