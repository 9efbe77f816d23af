package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// authSource hands out Authorization header values; ok is false when its
// token budget is exhausted.
type authSource func() (value []string, ok bool)

// roundResult is one contender driven for one round.
type roundResult struct {
	Requests  int64
	Elapsed   time.Duration
	Latencies []int64 // ns, one per completed request
	Codes     map[int]int64
	Errors    int64         // transport errors
	Exhausted bool          // the token budget ran out before the duration
	CPU       time.Duration // process CPU time (user+system) during the round: client and server
}

// processCPU is the CPU time used by this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// newLoadClient is the load generator's own client: keep-alive, one idle
// connection per worker per server, nothing shared with the servers.
func newLoadClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns * 8,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// drive runs conns workers against url for d (or until src is exhausted),
// each reusing its own request and recording every latency.
func drive(ctx context.Context, client *http.Client, url string, conns int, d time.Duration, src authSource) roundResult {
	type worker struct {
		lat   []int64
		codes map[int]int64
		errs  int64
	}
	ws := make([]worker, conns)
	var exhausted atomic.Bool
	var wg sync.WaitGroup
	cpu0 := processCPU()
	start := time.Now()
	deadline := start.Add(d)
	for i := range ws {
		w := &ws[i]
		w.lat = make([]int64, 0, 1<<14)
		w.codes = map[int]int64{}
		wg.Go(func() {
			pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("contender", "loadgen")))
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				w.errs++
				return
			}
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				auth, ok := src()
				if !ok {
					exhausted.Store(true)
					return
				}
				if auth != nil {
					req.Header["Authorization"] = auth
				}
				resp, err := client.Do(req)
				if err != nil {
					w.errs++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				w.lat = append(w.lat, int64(time.Since(t0)))
				w.codes[resp.StatusCode]++
			}
		})
	}
	wg.Wait()
	r := roundResult{Elapsed: time.Since(start), CPU: processCPU() - cpu0, Codes: map[int]int64{}, Exhausted: exhausted.Load()}
	for _, w := range ws {
		r.Latencies = append(r.Latencies, w.lat...)
		r.Errors += w.errs
		for c, n := range w.codes {
			r.Codes[c] += n
			r.Requests += n
		}
	}
	return r
}

// reusedSource always sends the same token (the function-to-function case).
func reusedSource(token string) authSource {
	v := []string{"Bearer " + token}
	return func() ([]string, bool) { return v, true }
}

// poolSource hands out each token of pool at most once.
func poolSource(pool [][]string) authSource {
	var next atomic.Int64
	return func() ([]string, bool) {
		i := next.Add(1) - 1
		if i >= int64(len(pool)) {
			return nil, false
		}
		return pool[i], true
	}
}

// cyclicSource cycles through pool: for the no-auth baseline, which never
// looks at the token, so the budget must not cut its rounds short.
func cyclicSource(pool [][]string) authSource {
	var next atomic.Int64
	return func() ([]string, bool) {
		return pool[(next.Add(1)-1)%int64(len(pool))], true
	}
}

// summary aggregates the rounds of one contender in one scenario.
type summary struct {
	Contender  string
	Scenario   string
	Requests   int64
	Elapsed    time.Duration
	CPU        time.Duration
	CPUPerReq  time.Duration // process CPU (load generator + server) per request
	RPS        float64
	RoundRPS   []float64
	P50, P99   time.Duration
	Non200     map[int]int64
	Errors     int64
	Exhausted  int // rounds cut short by the token budget
	CacheHits  int64
	CacheMiss  int64
	HasCache   bool
	Ratio      float64 // RPS / no-auth RPS in the same scenario
	SanityFail string  // non-empty when the contender failed a policy check
}

func summarize(name, scenario string, rounds []roundResult) summary {
	s := summary{Contender: name, Scenario: scenario, Non200: map[int]int64{}}
	var lat []int64
	for _, r := range rounds {
		s.Requests += r.Requests
		s.Elapsed += r.Elapsed
		s.CPU += r.CPU
		s.Errors += r.Errors
		if r.Exhausted {
			s.Exhausted++
		}
		if r.Elapsed > 0 {
			s.RoundRPS = append(s.RoundRPS, float64(r.Requests)/r.Elapsed.Seconds())
		}
		for c, n := range r.Codes {
			if c != http.StatusOK {
				s.Non200[c] += n
			}
		}
		lat = append(lat, r.Latencies...)
	}
	if s.Elapsed > 0 {
		s.RPS = float64(s.Requests) / s.Elapsed.Seconds()
	}
	if s.Requests > 0 {
		s.CPUPerReq = s.CPU / time.Duration(s.Requests)
	}
	slices.Sort(lat)
	s.P50 = time.Duration(percentile(lat, 0.50))
	s.P99 = time.Duration(percentile(lat, 0.99))
	return s
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// ok reports whether every request was answered 200 without transport errors.
func (s summary) ok() bool {
	return s.Requests > 0 && len(s.Non200) == 0 && s.Errors == 0 && s.SanityFail == ""
}

func (s summary) String() string {
	return fmt.Sprintf("%s/%s: %.0f req/s p50=%v p99=%v", s.Scenario, s.Contender, s.RPS, s.P50, s.P99)
}
