package authmw

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/f2fauth/f2fauth/internal/jwks"
)

// Middleware validates bearer tokens against a Policy. Create it with [New] or
// [NewFromEnv], use it through [Middleware.Handler] (net/http), authmw/echomw
// (echo) or [Middleware.Verify], and stop its background work with
// [Middleware.Close]. It is safe for concurrent use.
type Middleware struct {
	cfg    Config // defaulted; cfg.Policy is the policy given to New
	state  atomic.Pointer[policyState]
	routes atomic.Pointer[routeTable]
	cache  *tokenCache
	log    *slog.Logger // cfg.Logger, or a discarding one
	tel    *telemetry   // OpenTelemetry instruments (telemetry.go)
	issKey string       // issuer settings, fixed for the Middleware's life

	ctx    context.Context // background work; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	specs      []*issuerSpec
	discovered chan struct{} // closed when every issuer is discovered

	mu      sync.Mutex // guards keySets, specs' state, closed, setPolicy sequencing
	keySets map[string]*jwks.KeySet
	closed  bool
	gen     uint64

	// sampler picks the audited pass-through decisions (Config.AuditAllowed).
	sampler auditSampler
}

// policyState is the active policy, replaced atomically by SetPolicy.
type policyState struct {
	cp  *compiledPolicy
	gen uint64
	// Challenge hints for Entra issuers (TenantID mode), empty otherwise.
	authorizationURI string
	resourceID       string
	// needsClaims: decode the full claim map (bound claims, claim mappings).
	needsClaims bool
}

func newPolicyState(cp *compiledPolicy, gen uint64) *policyState {
	p := &cp.Policy
	st := &policyState{cp: cp, gen: gen}
	st.needsClaims = cp.needsRawClaims
	if p.TenantID != "" {
		st.authorizationURI = strings.TrimSuffix(p.AuthorityHost, "/") + "/" + p.TenantID + "/oauth2/authorize"
		if len(p.Audiences) > 0 {
			st.resourceID = p.Audiences[0]
		}
	}
	return st
}

// New validates cfg, reporting every problem with the name of its setting, and
// returns a Middleware. It never blocks on the network: issuer discovery and
// the JWKS load run in the background with retries, and until an issuer's keys
// are loaded its tokens are answered 503 with Retry-After (reason
// keys_unavailable). Background work runs until [Middleware.Close]; ctx only
// supplies values (its cancellation does not stop the Middleware).
//
// If cfg.PolicyFile is set, the file is loaded now (cfg.Policy overrides its
// fields) and watched: valid changes are applied with [Middleware.SetPolicy],
// invalid ones are logged and ignored.
func New(ctx context.Context, cfg Config) (*Middleware, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, errs := cfg.withDefaults()
	pol := cfg.Policy
	if cfg.PolicyFile != "" {
		fp, _, ignored, err := loadPolicyFile(cfg.PolicyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("AUTHMW_POLICY_FILE (Config.PolicyFile): %w", err))
		} else {
			pol = mergePolicy(fp, cfg.Policy)
			logIgnoredFields(cfg.Logger, cfg.PolicyFile, ignored)
		}
	}
	cp, err := compilePolicy(pol)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("authmw: invalid configuration: %w", errors.Join(errs...))
	}

	m := &Middleware{
		cfg:        cfg,
		cache:      newTokenCache(cfg.CacheSize),
		log:        cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		keySets:    make(map[string]*jwks.KeySet),
		issKey:     issuerKey(&cp.Policy),
		specs:      issuerSpecs(&cp.Policy),
		discovered: make(chan struct{}),
	}
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	m.tel = newTelemetry(m, cfg)
	m.state.Store(newPolicyState(cp, 0))
	m.routes.Store(&routeTable{byIss: map[string]*route{}, pending: len(m.specs)})
	if len(m.specs) == 0 {
		close(m.discovered)
	}
	for _, s := range m.specs {
		m.wg.Add(1)
		go m.discoverLoop(s)
	}
	if cfg.PolicyFile != "" {
		startPolicyWatcher(m.ctx, cfg.PolicyFile, cfg.PolicyFileInterval, cfg.Policy, m, cfg.Logger)
	}
	return m, nil
}

// NewFromEnv builds the Config from AUTHMW_* environment variables (see
// [ConfigFromEnv]) read with lookup (nil: os.LookupEnv), sets its Logger, and calls [New].
func NewFromEnv(ctx context.Context, lookup func(string) (string, bool), logger *slog.Logger) (*Middleware, error) {
	cfg, err := ConfigFromEnv(lookup)
	if err != nil {
		return nil, err
	}
	cfg.Logger = logger
	return New(ctx, cfg)
}

// SetPolicy replaces the policy without restart. An invalid policy is refused
// with an error and the current one stays. A valid one takes effect atomically
// for the next request, under a new generation: tokens cached under the old
// policy are verified again (the one invalidation for a policy change; see
// tokenCache). The issuer settings
// (TenantID, AuthorityHost, Issuers) cannot change at run time: changing them is
// an error (restart instead).
func (m *Middleware) SetPolicy(p Policy) error {
	cp, err := compilePolicy(p)
	if err != nil {
		return fmt.Errorf("authmw: SetPolicy: %w", err)
	}
	if issuerKey(&cp.Policy) != m.issKey {
		return errors.New("authmw: SetPolicy: the issuer settings AUTHMW_TENANT_ID, AUTHMW_AUTHORITY_HOST and AUTHMW_ISSUER (Policy.TenantID, Policy.AuthorityHost, Policy.Issuers) cannot change at run time; restart to change issuers")
	}
	m.mu.Lock()
	m.gen++
	gen := m.gen
	m.state.Store(newPolicyState(cp, gen))
	m.mu.Unlock()
	m.log.Info("authmw: policy replaced", "generation", gen, "policy_version", policyVersion(&cp.Policy))
	return nil
}

// Policy returns the active policy, with defaults filled in.
func (m *Middleware) Policy() Policy { return m.state.Load().cp.Policy }

// Close stops discovery, key refreshes and the policy-file watcher. Requests
// verified afterwards are answered from what is already loaded. It is safe to
// call more than once.
func (m *Middleware) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.cancel()
	sets := slices.Collect(maps.Values(m.keySets))
	m.mu.Unlock()
	m.wg.Wait()
	m.tel.close()
	for _, ks := range sets {
		ks.Close()
	}
	return nil
}
