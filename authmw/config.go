package authmw

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Defaults for Config fields left zero.
const (
	DefaultKeyRefreshInterval = 12 * time.Hour
	DefaultUnknownKeyInterval = 30 * time.Second
	DefaultCacheSize          = 10000
	// MaxCacheSize is the largest Config.CacheSize: the cache's first generation
	// is allocated at start, so a larger one could exhaust memory before serving.
	MaxCacheSize              = 1_000_000
	DefaultPolicyFileInterval = 5 * time.Second
)

// Config configures a Middleware. The zero value of each field means its default.
type Config struct {
	// Policy says who may call. Required: Audiences and TenantID or Issuers.
	Policy Policy
	// PolicyFile, if set, is a JSON file in the shape of Easy Auth's authsettingsV2
	// properties. It is read at start and watched: a valid change replaces the policy
	// without restart, an invalid one is logged and ignored. Fields set in Policy
	// override the file's.
	PolicyFile string
	// PolicyFileInterval is how often PolicyFile is checked; default DefaultPolicyFileInterval.
	PolicyFileInterval time.Duration
	// Algorithms are the accepted JWS algorithms; default ["RS256"]. Only RS256, RS384,
	// RS512, PS256, PS384, PS512, ES256, ES384 and ES512 can be listed: never none or HMAC.
	Algorithms []string
	// HTTPClient fetches discovery documents and JWKS; default a client with a 10 s
	// timeout. A client given here must have a Timeout; it is used through a copy
	// that enforces the network rules (https, or plain http only to loopback, on
	// every hop; redirects same-origin at most): its own redirect policy is replaced.
	HTTPClient *http.Client
	// KeyRefreshInterval is the periodic JWKS refresh; default DefaultKeyRefreshInterval (12 h).
	KeyRefreshInterval time.Duration
	// UnknownKeyInterval is the minimum time between JWKS refetches caused by tokens with
	// an unknown kid; default DefaultUnknownKeyInterval (30 s).
	UnknownKeyInterval time.Duration
	// CacheSize bounds the verified-token cache (entries); default DefaultCacheSize.
	// A negative value disables the cache; at most MaxCacheSize. Whatever the size,
	// the cache also holds at most about 128 MiB (large tokens count more).
	CacheSize int
	// Logger receives the audit records of decisions (see AuditAllowed) and operational
	// events. Default: no logging.
	Logger *slog.Logger
	// AuditAllowed says which decisions that let a request through (allowed, anonymous,
	// excluded path) get an audit record in Logger; denials are always recorded, and
	// OnDecision sees every decision whatever this says. Default AuditSample.
	AuditAllowed AuditMode
	// OnDecision, if set, is called once per decision (for metrics). It must be fast and
	// must not retain the Decision's maps.
	OnDecision func(Decision)
	// Realm is the realm of WWW-Authenticate challenges; default the request's Host.
	Realm string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MeterProvider receives authmw's metrics (decisions, verification latency,
	// key fetches, keys loaded; see docs/observability.md). Default:
	// otel.GetMeterProvider(), a no-op until the application installs an SDK.
	MeterProvider metric.MeterProvider
	// TracerProvider makes the spans of discovery and JWKS fetches. Default:
	// otel.GetTracerProvider(). Decisions are events on the span already in the
	// request's context, whatever this says.
	TracerProvider trace.TracerProvider

	// shortIntervals lets the package's own tests use intervals below the
	// bounds that keep each guarantee (see durationRanges).
	shortIntervals bool
}

// AuditMode selects the audit records of decisions that let a request through
// (Config.AuditAllowed, AUTHMW_AUDIT_ALLOWED).
type AuditMode string

// Audit modes. A record is a JSON (or text) line on every request in AuditAll: on a
// busy route it costs more than the cached verification itself, hence the default.
const (
	// AuditSample (the default) records every allowed decision that verified a
	// token's signature — the first use of each token, so every caller and every
	// token appears — and, of the other pass-through decisions (verified-token cache
	// hits, anonymous, excluded paths), at most one per outcome per second, with
	// "suppressed" counting the decisions of that outcome left unrecorded since its
	// previous record.
	AuditSample AuditMode = "sample"
	// AuditAll records every decision.
	AuditAll AuditMode = "all"
	// AuditNone records denials only.
	AuditNone AuditMode = "none"
)

// Outcome is the result of one authorization decision.
type Outcome string

// Outcomes recorded in Decision.Outcome.
const (
	OutcomeAllowed   Outcome = "allowed"
	OutcomeDenied    Outcome = "denied"
	OutcomeAnonymous Outcome = "anonymous" // no token, AllowAnonymous
	OutcomeExcluded  Outcome = "excluded"  // path in ExcludedPaths
)

// Decision describes one request's authorization decision, as audited. It never holds the token.
type Decision struct {
	Outcome  Outcome
	Status   int    // HTTP status sent, or 0 when the request was passed on
	Reason   Reason // empty when allowed
	AppID    string
	ObjectID string
	TenantID string
	KeyID    string
	ClientIP string
	Method   string
	Path     string
	Cached   bool // the token was found in the verified-token cache
	Duration time.Duration
}

// maxTokenBytes is the largest bearer token accepted; larger ones are rejected as
// malformed_token before any parsing. Entra access tokens are a few KiB.
const maxTokenBytes = 16 << 10

// supportedAlgorithms are the algorithms Config.Algorithms may list: asymmetric only.
var supportedAlgorithms = map[string]bool{"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true, "ES256": true, "ES384": true, "ES512": true}

// withDefaults validates c and fills its defaults, reporting every problem, each
// naming its setting. It does not validate c.Policy (compilePolicy does).
func (c Config) withDefaults() (Config, []error) {
	var errs []error
	if len(c.Algorithms) == 0 {
		c.Algorithms = []string{"RS256"}
	}
	for _, a := range c.Algorithms {
		if !supportedAlgorithms[a] {
			errs = append(errs, fmt.Errorf("AUTHMW_ALGORITHMS (Config.Algorithms): %q is not accepted (use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or ES512; never none or HMAC)", a))
		}
	}
	for _, d := range []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{
		{"PolicyFileInterval", &c.PolicyFileInterval, DefaultPolicyFileInterval},
		{"KeyRefreshInterval", &c.KeyRefreshInterval, DefaultKeyRefreshInterval},
		{"UnknownKeyInterval", &c.UnknownKeyInterval, DefaultUnknownKeyInterval},
	} {
		name := envForField[d.field].env + " (Config." + d.field + ")"
		switch {
		case *d.v < 0:
			errs = append(errs, fmt.Errorf("%s: must not be negative (got %s)", name, *d.v))
		case *d.v == 0:
			*d.v = d.def
		case !c.shortIntervals:
			if msg := checkDuration(d.field, *d.v); msg != "" {
				errs = append(errs, fmt.Errorf("%s %s", name, msg))
			}
		}
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	} else if c.CacheSize > MaxCacheSize {
		errs = append(errs, fmt.Errorf("Config.CacheSize: %d is more than %d entries: use at most %d, 0 for the default (%d) or -1 to disable the cache", c.CacheSize, MaxCacheSize, MaxCacheSize, DefaultCacheSize))
	}
	if c.HTTPClient != nil && c.HTTPClient.Timeout <= 0 {
		errs = append(errs, errors.New("Config.HTTPClient: must have a Timeout (every discovery and JWKS request must be bounded)"))
	}
	if strings.ContainsAny(c.Realm, "\"\\\r\n") {
		errs = append(errs, errors.New("Config.Realm: must not contain quotes, backslashes or line breaks"))
	}
	switch c.AuditAllowed {
	case "":
		c.AuditAllowed = AuditSample
	case AuditSample, AuditAll, AuditNone:
	default:
		errs = append(errs, fmt.Errorf("Config.AuditAllowed: %q is not a mode (use sample, all or none)", string(c.AuditAllowed)))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, errs
}
