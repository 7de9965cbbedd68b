//go:build linux

package supervisor

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sockd/sockd/internal/promtext"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/spawn"
)

// scrapeText writes the exposition of m's jobs as a scrape would (on the
// loop: the test is the loop here) and parses it with Prometheus' parser.
func scrapeText(t *testing.T, s *Supervisor, jobs ...*runJob) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	var samples []jobSample
	var arena []histogram
	for _, rj := range jobs {
		samples = append(samples, rj.sample(s.now(), &arena))
	}
	var b bytes.Buffer
	w := promtext.NewWriter(&b)
	writeMetrics(w, samples, selfSample{jobs: len(samples), fds: procFds(), rss: procRSS(), reloadOK: 2, reloadFail: 1})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, b.String())
	}
	return b.String(), fams
}

// value is the value of the sample of family name whose labels include
// want (name, value pairs); -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// A crash-looping KeepAlive job: its starts, exits by kind, throttle
// delays and the seconds until the next start, its histograms; and the
// refusals of a job with limits, by reason. Every figure is the one list
// and SIGUSR1 show (jobStats).
func TestMetricsJobFigures(t *testing.T) {
	m := newMachine(t, keepAliveJob())
	m.s.met = &metricsServer{}
	m.rj.activate(true)
	m.advance(200 * time.Millisecond)
	m.exit(crash) // signal; restart throttled for 9.8 s
	m.wantState(stateThrottled)

	_, fams := scrapeText(t, m.s, m.rj)
	jl := []string{"job", "test.keepalive"}
	for _, c := range []struct {
		name string
		want float64
		lbl  []string
	}{
		{"sockd_job_spawns_total", 1, nil},
		{"sockd_job_spawn_failures_total", 0, nil},
		{"sockd_job_processes", 0, nil},
		{"sockd_job_exits_total", 1, []string{"kind", "signal"}},
		{"sockd_job_exits_total", 0, []string{"kind", "success"}},
		{"sockd_job_throttled_total", 1, nil},
		{"sockd_job_next_start_seconds", 9.8, nil},
		{"sockd_job_spawn_latency_seconds", 1, nil},
		{"sockd_job_run_seconds", 1, nil},
		{"sockd_reloads_total", 2, []string{"result", "success"}},
		{"sockd_reloads_total", 1, []string{"result", "failure"}},
	} {
		lbl := c.lbl
		if !strings.HasPrefix(c.name, "sockd_reloads") {
			lbl = append(append([]string{}, jl...), c.lbl...)
		}
		if got := value(fams, c.name, lbl...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.lbl, got, c.want)
		}
	}
	if h := fams["sockd_job_run_seconds"].Metric[0].Histogram; h.GetSampleSum() != 0.2 || h.Bucket[2].GetCumulativeCount() != 1 || h.Bucket[1].GetCumulativeCount() != 0 {
		t.Errorf("run time histogram: 0.2 s in the (0.1, 1] bucket wanted: %v", h)
	}

	m.advance(9800 * time.Millisecond) // restarted
	m.wantState(stateRunning)
	m.advance(2 * time.Second)
	m.exit(spawn.ExitStatus{Code: 3})
	_, fams = scrapeText(t, m.s, m.rj)
	if got := value(fams, "sockd_job_exits_total", "job", "test.keepalive", "kind", "nonzero"); got != 1 {
		t.Errorf("nonzero exits %v", got)
	}
	if got := value(fams, "sockd_job_spawns_total", jl...); got != 2 || m.rj.stats.spawned != 2 {
		t.Errorf("spawns %v (stats %d), want 2", got, m.rj.stats.spawned)
	}
	if got := value(fams, "sockd_job_run_seconds", jl...); got != 2 {
		t.Errorf("run time observations %v, want 2", got)
	}

	// Refusals by reason: a reason is shown where the job sets its limit
	// or where one refused.
	lj := keepAliveJob()
	lj.Label = "test.limits"
	lj.Limits = job.Limits{Deny: []string{"10.0.0.0/8"}, MaxPerSource: 2}
	rj := newRunJob(m.s, lj, nil)
	src := netip.MustParseAddr("10.1.2.3")
	for _, why := range []string{whyDeny, whyDeny, whyPerSource + "2)", "connection rate limit reached (Rate 5/s)"} {
		rj.refused(netip.AddrPortFrom(src, 0), why, 0)
	}
	text, fams := scrapeText(t, m.s, rj)
	for reason, want := range map[string]float64{"deny": 2, "per_source": 1, "rate": 1, "allow": -1} {
		if got := value(fams, "sockd_job_refusals_total", "job", "test.limits", "reason", reason); got != want {
			t.Errorf("refusals{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if rj.stats.refused != 4 {
		t.Errorf("refused %d, want 4 (list and SIGUSR1)", rj.stats.refused)
	}
	// A job with no observation has no histogram series.
	if strings.Contains(text, "sockd_job_run_seconds_count") {
		t.Errorf("histogram of a job that ran nothing:\n%s", text)
	}
}

// A per-connection child whose execve fails is counted a spawn until it
// is reaped (spawned goes back by one); the counter a scrape shows never
// goes back.
func TestMetricsSpawnsNeverGoBack(t *testing.T) {
	m := newMachine(t, &job.Job{Label: "test.nowait", Program: "/bin/true", ProgramArguments: []string{"/bin/true"},
		Inetd: &job.Inetd{Wait: false}, Sockets: []job.SocketGroup{{Name: "Listeners", Sockets: []job.Socket{{}}}}})
	m.s.met = &metricsServer{}
	rj := m.rj
	if rj.mode != job.ModeInetdNowait {
		t.Skipf("mode %v", rj.mode)
	}
	rj.stats.spawned = 5
	_, fams := scrapeText(t, m.s, rj)
	rj.stats.spawned--
	rj.stats.spawnFailed++
	_, fams2 := scrapeText(t, m.s, rj)
	if a, b := value(fams, "sockd_job_spawns_total", "job", "test.nowait"), value(fams2, "sockd_job_spawns_total", "job", "test.nowait"); a != 5 || b != 5 {
		t.Errorf("spawns shown %v then %v, want 5 and 5", a, b)
	}
	rj.stats.spawned += 2
	_, fams3 := scrapeText(t, m.s, rj)
	if got := value(fams3, "sockd_job_spawns_total", "job", "test.nowait"); got != 6 {
		t.Errorf("spawns %v, want 6", got)
	}
}

func TestHistogramBuckets(t *testing.T) {
	var h histogram
	for _, d := range []time.Duration{0, 50 * time.Microsecond, 51 * time.Microsecond, time.Second, 2 * time.Second, -time.Second} {
		h.observe(spawnLatencyNs, d)
	}
	// le=0.00005 holds 0, 50 µs and the negative one (clamped); 51 µs
	// goes to le=0.0001; 1 s to le=1; 2 s above every bound.
	last := len(spawnLatencyNs)
	if h.counts[0] != 3 || h.counts[1] != 1 || h.counts[last-1] != 1 || h.counts[last] != 1 {
		t.Errorf("counts %v", h.counts[:last+1])
	}
	if h.sumNs != int64(3*time.Second+101*time.Microsecond) {
		t.Errorf("sum %d", h.sumNs)
	}
}

// A scrape of more jobs than one loop turn copies (listChunk) shows every
// job once, in label order.
func TestScrapeChunks(t *testing.T) {
	m := newMachine(t, keepAliveJob())
	m.s.met = &metricsServer{}
	for i := 0; i < 2*listChunk+5; i++ {
		j := keepAliveJob()
		j.Label = "test.many." + itoa(i)
		m.s.jobs[j.Label] = newRunJob(m.s, j, nil)
	}
	m.s.loopDone = make(chan struct{})
	stop := make(chan struct{})
	go func() { // the loop
		for {
			select {
			case <-stop:
				return
			default:
			}
			m.s.loop.runQueue()
			time.Sleep(100 * time.Microsecond)
		}
	}()
	render, err := m.s.scrape()
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := promtext.NewWriter(&b)
	render(w)
	_ = w.Flush()
	if n := strings.Count(b.String(), "sockd_job_spawns_total{"); n != 2*listChunk+6 {
		t.Errorf("%d jobs in the scrape, want %d", n, 2*listChunk+6)
	}
}

// The metrics' share of one inetd nowait connection, with metrics on
// and off: the clock read before the start, the spawn latency
// observation and the exit's count and run time (plain adds on the loop).
func BenchmarkMetricsPerConnection(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			s := &Supervisor{loop: &loop{clock: sysClock{}}}
			if on {
				s.met = &metricsServer{}
			}
			rj := &runJob{s: s}
			c := &child{p: &spawn.Process{Started: time.Now()}}
			st := spawn.ExitStatus{}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				t0 := rj.spawnClock()
				rj.observeSpawn(t0, c.p)
				rj.noteExit(c, st)
			}
		})
	}
}
