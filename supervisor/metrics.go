//go:build linux

package supervisor

// Prometheus metrics (Config.Metrics: sockd serve --metrics ADDR).
//
// The figures are the loop-owned counters of each job (jobStats), the
// same ones list, print and SIGUSR1 report: nothing is counted twice and
// the accept path takes no atomic and no lock for the metrics. A scrape
// copies the figures on the loop, listChunk jobs a turn (as list does), and
// writes the text exposition off the loop (package promtext). The two
// histograms are loop-owned too: plain adds into fixed buckets, made for a
// job on its first observation, so idle jobs cost nothing.

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/internal/promtext"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/spawn"
)

// CheckMetricsAddr checks a --metrics address: a loopback TCP address or
// unix:PATH, nothing wider.
func CheckMetricsAddr(addr string) error {
	_, _, err := promtext.ParseAddr(addr)
	return err
}

// metricsServer is the metrics endpoint: its listener (bound by New) and
// the figures kept outside the loop.
type metricsServer struct {
	ln                   net.Listener
	reloadOK, reloadFail atomic.Uint64
}

// openMetrics binds the metrics endpoint of Config.Metrics, if any. It is
// served from the end of the initial load (withMetrics).
func (s *Supervisor) openMetrics() error {
	if s.cfg.Metrics == "" {
		return nil
	}
	ln, err := promtext.Listen(s.cfg.Metrics)
	if err != nil {
		return errors.New("supervisor: --metrics " + s.cfg.Metrics + ": " + err.Error())
	}
	s.met = &metricsServer{ln: ln}
	return nil
}

// withMetrics starts serving the metrics endpoint, if any, and returns
// stop extended to stop it too (and close it) first: Run stops both before
// the loop goes.
func (s *Supervisor) withMetrics(stop func()) func() {
	m := s.met
	if m == nil {
		return stop
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = promtext.Serve(m.ln, s.scrape)
	}()
	s.log.Info("metrics endpoint ready", zap.String("address", m.ln.Addr().String()), zap.String("path", promtext.Path))
	return func() {
		_ = m.ln.Close()
		<-done
		stop()
	}
}

// countReload counts a reload that ran (not the initial load): a success
// when every job loaded, a failure when it did not happen or a file had an
// error.
func (s *Supervisor) countReload(r reloadResult) {
	if s.met == nil {
		return
	}
	if r.err != nil || r.diags.HasErrors() {
		s.met.reloadFail.Add(1)
	} else {
		s.met.reloadOK.Add(1)
	}
}

// ---- exits, histograms: loop only ----

// exitKind sorts process exits for sockd_job_exits_total.
type exitKind uint8

const (
	exitSuccess exitKind = iota // exit status 0
	exitNonzero                 // another exit status
	exitSignal                  // killed by a signal
	numExitKinds
)

var exitKindNames = [numExitKinds]string{"success", "nonzero", "signal"}

func kindOf(st spawn.ExitStatus) exitKind {
	switch {
	case st.Signal != 0:
		return exitSignal
	case st.Code != 0:
		return exitNonzero
	}
	return exitSuccess
}

// noteExit counts the exit of a process of the job (a main process, a
// proxy backend or a per-connection child) by kind, and observes its run
// time when metrics are on.
func (rj *runJob) noteExit(c *child, st spawn.ExitStatus) {
	rj.stats.exitKinds[kindOf(st)]++
	if rj.s.met != nil {
		rj.metrics().observeRun(rj.s.now().Sub(c.p.Started))
	}
}

// spawnClock is when a start begins, for the spawn latency: the zero time
// when metrics are off (no clock read).
func (rj *runJob) spawnClock() time.Time {
	if rj.s.met == nil {
		return time.Time{}
	}
	return rj.s.now()
}

// observeSpawn observes the latency of a start that began at t0
// (spawnClock) and created p.
func (rj *runJob) observeSpawn(t0 time.Time, p *spawn.Process) {
	if t0.IsZero() || p == nil {
		return
	}
	rj.metrics().observeSpawn(p.Started.Sub(t0))
}

// jobMetrics is what only the metrics keep of a job: the histograms
// (each made on its first observation) and the highest spawn count a
// scrape has shown. Loop only.
type jobMetrics struct {
	spawnLat, runTime *histogram
	spawnsShown       uint64
}

// metrics returns the job's jobMetrics, made on first use.
func (rj *runJob) metrics() *jobMetrics {
	if rj.met == nil {
		rj.met = &jobMetrics{}
	}
	return rj.met
}

func (m *jobMetrics) observeSpawn(d time.Duration) {
	if m.spawnLat == nil {
		m.spawnLat = &histogram{}
	}
	m.spawnLat.observe(spawnLatencyNs, d)
}

func (m *jobMetrics) observeRun(d time.Duration) {
	if m.runTime == nil {
		m.runTime = &histogram{}
	}
	m.runTime.observe(runTimeNs, d)
}

// Histogram buckets: upper bounds in seconds, and the same in
// nanoseconds for observing without floating point.
var (
	spawnLatencyBuckets = promtext.NewBuckets(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
	runTimeBuckets      = promtext.NewBuckets(0.01, 0.1, 1, 10, 60, 300, 1800, 3600, 21600, 86400)
	spawnLatencyNs      = boundsNs(spawnLatencyBuckets)
	runTimeNs           = boundsNs(runTimeBuckets)
)

const maxBuckets = 15 // bounds of the largest bucket set above

func boundsNs(bk *promtext.Buckets) []int64 {
	if len(bk.Bounds) > maxBuckets {
		panic("supervisor: too many histogram buckets")
	}
	out := make([]int64, len(bk.Bounds))
	for i, v := range bk.Bounds {
		out[i] = int64(v * 1e9)
	}
	return out
}

// histogram is one job's observations: per-bucket counts (the last one
// above every bound) and the sum. Loop only: plain adds.
type histogram struct {
	counts [maxBuckets + 1]uint64
	sumNs  int64
}

func (h *histogram) observe(bounds []int64, d time.Duration) {
	if d < 0 {
		d = 0
	}
	ns := int64(d)
	i := 0
	for i < len(bounds) && ns > bounds[i] {
		i++
	}
	h.counts[i]++
	h.sumNs += ns
}

// ---- scrape ----

// errNoLoop answers a scrape that came while sockd shuts down.
var errNoLoop = errors.New("sockd is shutting down")

// jobSample is one job's figures, copied on the loop for a scrape (kept
// small: a scrape of 10,000 jobs holds 10,000 of them).
type jobSample struct {
	label       string
	accepted    uint64 // connections (a proxy job's are its servers')
	spawns      uint64 // never less than a scrape showed before
	spawnFailed uint64
	throttled   uint64
	refusedBy   [numRefuseReasons]uint64
	exitKinds   [numExitKinds]uint64
	nextStart   float64 // seconds, 0 when no start waits
	processes   int32
	limits      uint8 // bit per refuseReason whose limit the job sets
	proxy       *proxySample
	spawnLat    *histogram // copies; nil: no observation yet
	runTime     *histogram
}

// proxySample is a proxy job's own figures.
type proxySample struct {
	toBackend, toClient uint64
	open                int64
}

// sample copies the job's figures; its histograms are copied into arena
// (see copyHist). Loop only.
func (rj *runJob) sample(now time.Time, arena *[]histogram) jobSample {
	st := rj.stats
	accepted, _ := rj.proxyStats(st.accepted)
	js := jobSample{label: rj.def.Label, accepted: accepted, spawnFailed: st.spawnFailed, throttled: st.throttled,
		refusedBy: st.refusedBy, exitKinds: st.exitKinds, processes: int32(rj.processes())}
	if th := rj.throttle(); th != nil && th.waiting() {
		if d := th.until.Sub(now); d > 0 {
			js.nextStart = d.Seconds()
		}
	}
	l := rj.def.Limits
	for r, set := range [numRefuseReasons]bool{refuseDeny: len(l.Deny) > 0, refuseAllow: len(l.Allow) > 0,
		refusePerSource: l.MaxPerSource > 0, refuseRate: l.Rate > 0} {
		if set {
			js.limits |= 1 << r
		}
	}
	if ps, ok := rj.srv.(*proxyServer); ok {
		t := ps.totals()
		js.proxy = &proxySample{toBackend: t.BytesToBackend, toClient: t.BytesToClient, open: t.Active}
	}
	// A per-connection child whose execve fails is counted a spawn until
	// it is reaped: the counter a scrape shows never goes back.
	js.spawns = st.spawned
	if m := rj.met; m != nil || (rj.mode == job.ModeInetdNowait && st.spawned > 0) {
		m = rj.metrics()
		js.spawns = max(st.spawned, m.spawnsShown)
		m.spawnsShown = js.spawns
		js.spawnLat = copyHist(arena, m.spawnLat)
		js.runTime = copyHist(arena, m.runTime)
	}
	return js
}

// copyHist copies h into arena and returns the copy (nil for nil). The
// arena is made on first use, room for a chunk of jobs, and a full one is
// replaced by a new one (the copies stay where they are): one allocation
// per listChunk jobs that have histograms, not one per histogram.
func copyHist(arena *[]histogram, h *histogram) *histogram {
	if h == nil {
		return nil
	}
	if len(*arena) == cap(*arena) {
		*arena = make([]histogram, 0, 2*listChunk)
	}
	*arena = append(*arena, *h)
	return &(*arena)[len(*arena)-1]
}

// selfSample is sockd's own figures.
type selfSample struct {
	jobs                 int
	fds, maxFds          int64
	rss                  int64
	goroutines           int
	reloadOK, reloadFail uint64
}

// scrape gathers one scrape's figures (promtext.Source): the jobs'
// figures on the loop, listChunk jobs a turn, then sockd's own.
func (s *Supervisor) scrape() (func(w *promtext.Writer), error) {
	var labels []string
	if !s.onLoop(func() {
		labels = make([]string, 0, len(s.jobs))
		for l := range s.jobs {
			labels = append(labels, l)
		}
	}) {
		return nil, errNoLoop
	}
	sort.Strings(labels)
	samples := make([]jobSample, 0, len(labels))
	for rest := labels; len(rest) > 0; {
		chunk := rest[:min(len(rest), listChunk)]
		rest = rest[len(chunk):]
		if !s.onLoop(func() {
			now := s.now()
			var arena []histogram
			for _, l := range chunk {
				if rj, ok := s.jobs[l]; ok { // gone meanwhile: left out
					samples = append(samples, rj.sample(now, &arena))
				}
			}
		}) {
			return nil, errNoLoop
		}
	}
	self := selfSample{jobs: len(samples), goroutines: runtime.NumGoroutine(),
		reloadOK: s.met.reloadOK.Load(), reloadFail: s.met.reloadFail.Load()}
	self.fds, self.maxFds, self.rss = procFds(), procMaxFds(), procRSS()
	return func(w *promtext.Writer) { writeMetrics(w, samples, self) }, nil
}

// writeMetrics writes the exposition of samples and self.
func writeMetrics(w *promtext.Writer, samples []jobSample, self selfSample) {
	family := func(name, typ, help string, v func(js *jobSample)) {
		w.Family(name, typ, help)
		for i := range samples {
			v(&samples[i])
		}
	}
	family("sockd_job_connections_total", promtext.Counter,
		"Connections (and internal-service datagrams) sockd accepted for the job, refused ones included.",
		func(js *jobSample) { w.Uint("sockd_job_connections_total", js.accepted, "job", js.label) })
	family("sockd_job_refusals_total", promtext.Counter,
		"Connections, datagrams and UDP flows a SockdLimits limit refused, by reason (each reason whose limit the job sets, and any that refused).",
		func(js *jobSample) {
			for r := refuseReason(1); r < numRefuseReasons; r++ {
				if n := js.refusedBy[r]; n > 0 || js.limits&(1<<r) != 0 {
					w.Uint("sockd_job_refusals_total", n, "job", js.label, "reason", r.label())
				}
			}
		})
	family("sockd_job_spawns_total", promtext.Counter,
		"Processes the job started: per-connection children, main processes and proxy backends.",
		func(js *jobSample) { w.Uint("sockd_job_spawns_total", js.spawns, "job", js.label) })
	family("sockd_job_spawn_failures_total", promtext.Counter,
		"Starts that failed, at or before execve.",
		func(js *jobSample) { w.Uint("sockd_job_spawn_failures_total", js.spawnFailed, "job", js.label) })
	family("sockd_job_processes", promtext.Gauge,
		"Processes of the job running now.",
		func(js *jobSample) { w.Int("sockd_job_processes", int64(js.processes), "job", js.label) })
	family("sockd_job_exits_total", promtext.Counter,
		"Exits of the job's processes, by kind: success (status 0), nonzero (another status), signal.",
		func(js *jobSample) {
			for k := exitKind(0); k < numExitKinds; k++ {
				w.Uint("sockd_job_exits_total", js.exitKinds[k], "job", js.label, "kind", exitKindNames[k])
			}
		})
	family("sockd_job_throttled_total", promtext.Counter,
		"Starts of the main process or proxy backend that ThrottleInterval delayed.",
		func(js *jobSample) { w.Uint("sockd_job_throttled_total", js.throttled, "job", js.label) })
	family("sockd_job_next_start_seconds", promtext.Gauge,
		"Seconds until the next start the throttle allows, while a start waits for it; 0 otherwise.",
		func(js *jobSample) { w.Float("sockd_job_next_start_seconds", js.nextStart, "job", js.label) })
	family("sockd_job_proxy_bytes_total", promtext.Counter,
		"Bytes a proxy job forwarded, by direction (to_backend, to_client).",
		func(js *jobSample) {
			if p := js.proxy; p != nil {
				w.Uint("sockd_job_proxy_bytes_total", p.toBackend, "job", js.label, "direction", "to_backend")
				w.Uint("sockd_job_proxy_bytes_total", p.toClient, "job", js.label, "direction", "to_client")
			}
		})
	family("sockd_job_proxy_connections", promtext.Gauge,
		"Client connections a proxy job has open now.",
		func(js *jobSample) {
			if p := js.proxy; p != nil {
				w.Int("sockd_job_proxy_connections", p.open, "job", js.label)
			}
		})
	family("sockd_job_spawn_latency_seconds", promtext.Histogram,
		"Time from the accept of a connection to its child's creation (inetd nowait), or of a main process's or backend's start (to its execve).",
		func(js *jobSample) {
			if h := js.spawnLat; h != nil {
				w.Histogram("sockd_job_spawn_latency_seconds", spawnLatencyBuckets, h.counts[:len(spawnLatencyNs)+1], float64(h.sumNs)/1e9, "job", js.label)
			}
		})
	family("sockd_job_run_seconds", promtext.Histogram,
		"Run time of the job's processes, observed at their exit.",
		func(js *jobSample) {
			if h := js.runTime; h != nil {
				w.Histogram("sockd_job_run_seconds", runTimeBuckets, h.counts[:len(runTimeNs)+1], float64(h.sumNs)/1e9, "job", js.label)
			}
		})

	w.Family("sockd_jobs", promtext.Gauge, "Jobs loaded (disabled ones not included).")
	w.Int("sockd_jobs", int64(self.jobs))
	w.Family("sockd_open_fds", promtext.Gauge, "File descriptors sockd has open.")
	w.Int("sockd_open_fds", self.fds)
	w.Family("sockd_max_fds", promtext.Gauge, "sockd's file descriptor limit (RLIMIT_NOFILE).")
	w.Int("sockd_max_fds", self.maxFds)
	w.Family("sockd_resident_memory_bytes", promtext.Gauge, "sockd's resident memory.")
	w.Int("sockd_resident_memory_bytes", self.rss)
	w.Family("sockd_goroutines", promtext.Gauge, "Goroutines of sockd.")
	w.Int("sockd_goroutines", int64(self.goroutines))
	w.Family("sockd_reloads_total", promtext.Counter,
		"Reloads since sockd started (SIGHUP, sockd reload, enable, disable, bootstrap, bootout), by result: success, or failure (not done, or a job file had an error).")
	w.Uint("sockd_reloads_total", self.reloadOK, "result", "success")
	w.Uint("sockd_reloads_total", self.reloadFail, "result", "failure")
}

// procFds counts sockd's open fds (-1 if /proc cannot tell).
func procFds() int64 {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return -1
	}
	defer f.Close()
	n := int64(0)
	for {
		names, err := f.Readdirnames(4096)
		n += int64(len(names))
		if err != nil || len(names) == 0 {
			break
		}
	}
	return n - 1 // the directory's own fd
}

// procMaxFds is the soft RLIMIT_NOFILE (-1 if unknown).
func procMaxFds() int64 {
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f, ok := strings.CutPrefix(line, "Max open files"); ok {
			if v := strings.Fields(f); len(v) > 0 {
				if n, err := strconv.ParseInt(v[0], 10, 64); err == nil {
					return n
				}
			}
		}
	}
	return -1
}

// procRSS is sockd's resident set size in bytes (-1 if unknown).
func procRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}
