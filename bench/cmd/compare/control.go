package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/sockd/sockd/bench/loadgen"
)

// ---- control: `sockd list` with many jobs, and what it costs a loaded job ----
//
// One sockd holds N jobs: N-1 inetd hello jobs on Unix sockets and one
// inetd hello job on loopback TCP, the probe, which the load generator
// drives open loop at a fixed rate (connect -> hello's reply, from the
// intended send time). Each round starts a fresh sockd and runs three
// phases of the same length (-control-d), taking turns in slices of about
// a second so that the machine's other work falls on all three alike:
//
//   - alone: the probe only;
//   - list --json: the probe, and the real `sockd list --json --control
//     PATH` run back to back as a separate process (its output to
//     /dev/null): wall time from exec to exit;
//   - raw list: the probe, and the driver sending the list request itself
//     and reading the answer to EOF without decoding it: the daemon's
//     answer time (connect -> first byte, connect -> last byte);
//   - list --json of another sockd: the probe, and the same list loop as
//     the second phase against a second sockd holding jobs of its own
//     (started once per round beside the first): the machine carries the
//     same load, but the probe's daemon does no list work. What moves the
//     probe here is the machine, not sockd's loop.

// Case names of the control group.
const (
	ctlProbeAlone = "probe alone"
	ctlProbeCmd   = "probe + list --json loop"
	ctlProbeRaw   = "probe + raw list loop"
	ctlProbeOther = "probe + list --json loop on another sockd"
	ctlListCmd    = "list --json (command, exec to exit)"
	ctlListAnswer = "list answer (connect to last byte)"
	ctlListFirst  = "list answer (connect to first byte)"
	ctlListOther  = "list --json of another sockd (command, exec to exit)"
)

// controlFixture is the jobs directory of the control group, made once.
type controlFixture struct {
	jobs       string
	sockPrefix string // the Unix jobs' socket paths start with it
	port       int    // the probe job's TCP port
	ctlDir     string // the control socket's directory (fresh per round)
	n          int
}

func (r *runner) controlJobs() (*controlFixture, error) {
	if r.ctlFix != nil {
		return r.ctlFix, nil
	}
	f, err := r.jobsFixture(r.s.controlJobs, "")
	r.ctlFix = f
	return f, err
}

// otherJobs is the fixture of the second sockd of the control phase
// "on another sockd": the same jobs on other sockets.
func (r *runner) otherJobs() (*controlFixture, error) {
	if r.ctlOther != nil {
		return r.ctlOther, nil
	}
	f, err := r.jobsFixture(r.s.controlJobs, "-other")
	r.ctlOther = f
	return f, err
}

// jobsFixture writes n jobs (n-1 on Unix sockets, the probe on TCP) in
// directories named with tag.
func (r *runner) jobsFixture(n int, tag string) (*controlFixture, error) {
	base := filepath.Join(r.e.tmp, fmt.Sprintf("control%d%s", n, tag))
	f := &controlFixture{jobs: filepath.Join(base, "jobs"), n: n, ctlDir: filepath.Join(base, "run")}
	sockDir := filepath.Join(r.e.sockTmp(), fmt.Sprintf("control%d%s", n, tag))
	f.sockPrefix = sockDir + "/"
	for _, d := range []string{f.jobs, sockDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	f.port = port
	probe := plist("bench.control.probe", r.e.hello, true, tcpSock(port))
	if err := os.WriteFile(filepath.Join(f.jobs, "bench.control.probe.plist"), []byte(probe), 0o644); err != nil {
		return nil, err
	}
	for i := range n - 1 {
		label := fmt.Sprintf("bench.control.%05d", i)
		body := plist(label, r.e.hello, true, unixSock(filepath.Join(sockDir, fmt.Sprintf("%05d.sock", i))))
		if err := os.WriteFile(filepath.Join(f.jobs, label+".plist"), []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// listSample is one list request.
type listSample struct {
	wall      time.Duration // command: exec to exit; raw: connect to EOF
	firstByte time.Duration // raw only
	clientCPU time.Duration // command only: its utime+stime
	bytes     int64
}

// listCmd runs `SOCKD list --json --control ctl` once; out receives its
// standard output (nil: /dev/null).
func listCmd(sockd, ctl string, out io.Writer) (listSample, error) {
	cmd := exec.Command(sockd, "list", "--json", "--control", ctl)
	cmd.Stdout = out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	err := cmd.Run()
	s := listSample{wall: time.Since(t0)}
	if err != nil {
		return s, fmt.Errorf("sockd list --json: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	s.clientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return s, nil
}

// listRaw sends the list request itself and reads the answer to EOF into
// buf, decoding nothing; it returns what it read in buf[:s.bytes] when buf
// is large enough.
func listRaw(ctl string, buf []byte) (listSample, error) {
	t0 := time.Now()
	c, err := net.DialTimeout("unix", ctl, 5*time.Second)
	if err != nil {
		return listSample{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(t0.Add(30 * time.Second))
	if _, err := io.WriteString(c, `{"cmd":"list"}`+"\n"); err != nil {
		return listSample{}, err
	}
	var s listSample
	for {
		n, err := c.Read(buf)
		if n > 0 && s.bytes == 0 {
			s.firstByte = time.Since(t0)
		}
		s.bytes += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s, err
		}
	}
	s.wall = time.Since(t0)
	if s.bytes == 0 {
		return s, errors.New("raw list: empty answer")
	}
	return s, nil
}

// checkList decodes a list answer and checks that it holds n jobs.
func checkList(data []byte, n int) error {
	var resp struct {
		Status string            `json:"status"`
		Error  string            `json:"error"`
		Jobs   []json.RawMessage `json:"jobs"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return fmt.Errorf("list answer: %w", err)
	}
	if resp.Status != "ok" || len(resp.Jobs) != n {
		return fmt.Errorf("list answer: status %q (%s), %d jobs, want %d", resp.Status, resp.Error, len(resp.Jobs), n)
	}
	return nil
}

// durResult summarises list samples as a load-generator result (latency
// from get, in the histogram's units).
func durResult(label string, ss []listSample, elapsed time.Duration, get func(listSample) time.Duration) *loadgen.Result {
	h := loadgen.NewHistogram()
	for _, s := range ss {
		_ = h.RecordValue(int64(get(s)))
	}
	res := &loadgen.Result{Label: label, Workload: loadgen.Workload("control-list"), Network: "unix",
		Concurrency: 1, ElapsedSec: elapsed.Seconds(), Requests: int64(len(ss)), Latency: loadgen.Summarize(h)}
	if elapsed > 0 {
		res.Throughput = float64(len(ss)) / elapsed.Seconds()
	}
	return res
}

// controlRound runs the control group's phases against each sockd binary
// in turn: the one built (or -sockd), or those of -control-bins.
func (r *runner) controlRound(round int) {
	bins := r.s.controlBins
	if len(bins) == 0 {
		if r.e.sockd == "" {
			r.add(&measurement{Group: "control", Case: "all", Server: "sockd", Round: round, Skipped: "sockd not built"})
			return
		}
		bins = []string{r.e.sockd}
	}
	for _, bin := range bins {
		if r.ctx.Err() != nil {
			return
		}
		name := fmt.Sprintf("sockd %d jobs", r.s.controlJobs)
		if len(r.s.controlBins) > 0 {
			name = filepath.Base(bin)
		}
		r.controlOne(round, bin, name)
	}
}

// controlOne starts sockd (bin) with the control group's jobs, and a
// second one with jobs of its own, and runs the four phases.
func (r *runner) controlOne(round int, sockd, name string) {
	n := r.s.controlJobs
	fail := func(cs string, err error) {
		r.add(&measurement{Group: "control", Case: cs, Server: name, Round: round, Error: err.Error()})
	}
	f, err := r.controlJobs()
	var f2 *controlFixture
	if err == nil {
		f2, err = r.otherJobs()
	}
	if err != nil {
		fail("start", err)
		return
	}
	t0 := time.Now()
	p, ctl, err := r.startControlDaemon(sockd, name, f)
	startup := time.Since(t0)
	if err != nil {
		fail("start", err)
		return
	}
	defer p.stop()
	// The second sockd, listed in the phase on another sockd.
	other, otherCtl, err := r.startControlDaemon(sockd, name+" (other)", f2)
	if err != nil {
		fail("start", fmt.Errorf("the other sockd: %w", err))
		return
	}
	defer other.stop()
	probeAddr := fmt.Sprintf("127.0.0.1:%d", f.port)
	// Warm up: the probe's first spawns, and a few lists of each kind.
	if res, err := r.load(loadgen.Config{Workload: loadgen.ConnPerRequest, Addr: probeAddr, Count: 50}); err != nil || res.Requests != 50 {
		fail("start", fmt.Errorf("probe warm-up: %v %v", err, res))
		return
	}
	rawBuf := make([]byte, 256<<10)
	for range 2 {
		if _, err := listCmd(sockd, ctl, nil); err != nil {
			fail("start", err)
			return
		}
		if _, err := listRaw(ctl, rawBuf); err != nil {
			fail("start", err)
			return
		}
	}
	rss, hwm, _ := memKiB(p.pid())
	r.logf("  control  %d jobs loaded in %s, RSS %.1f MiB", n, startup.Round(time.Millisecond), float64(rss)/1024)

	type phase struct {
		probeCase, listCase string
		list                func() (listSample, error)
		// What its slices measured, added up.
		hist     *hdrhistogram.Histogram
		res      loadgen.Result
		samples  []listSample
		ticks    int64 // the daemon's CPU
		elapsed  time.Duration
		others   []float64
		err      error
		cpuKnown bool
	}
	phases := []*phase{
		{probeCase: ctlProbeAlone},
		{probeCase: ctlProbeCmd, listCase: ctlListCmd, list: func() (listSample, error) { return listCmd(sockd, ctl, nil) }},
		{probeCase: ctlProbeRaw, listCase: ctlListAnswer, list: func() (listSample, error) { return listRaw(ctl, rawBuf) }},
		{probeCase: ctlProbeOther, listCase: ctlListOther, list: func() (listSample, error) { return listCmd(sockd, otherCtl, nil) }},
	}
	// The phases take turns in slices of about controlSlice, each slice
	// starting with the next phase, so that what else the machine does
	// meanwhile falls on all three alike.
	slices := max(1, int((r.s.controlD+controlSlice/2)/controlSlice))
	sliceD := r.s.controlD / time.Duration(slices)
	for i := range slices {
		for j := range phases {
			if r.ctx.Err() != nil {
				return
			}
			ph := phases[(i+j)%len(phases)]
			if ph.err == nil {
				r.controlSlice(p.pid(), probeAddr, name, sliceD, ph.list, func(res *loadgen.Result, ss []listSample, ticks int64, cpuOK bool, elapsed time.Duration, err error) {
					if err != nil {
						ph.err = err
						return
					}
					if ph.hist == nil {
						ph.hist = loadgen.NewHistogram()
						ph.res = *res
						ph.res.Requests, ph.res.Missed, ph.res.Errors, ph.res.ElapsedSec = 0, 0, loadgen.ErrorCounts{}, 0
						ph.cpuKnown = true
					}
					ph.hist.Merge(res.Histogram())
					ph.res.Requests += res.Requests
					ph.res.Missed += res.Missed
					e := &ph.res.Errors
					e.Refused, e.Reset, e.Timeout, e.ShortRead, e.Other = e.Refused+res.Errors.Refused, e.Reset+res.Errors.Reset,
						e.Timeout+res.Errors.Timeout, e.ShortRead+res.Errors.ShortRead, e.Other+res.Errors.Other
					for k, v := range res.ErrorExamples {
						if ph.res.ErrorExamples == nil {
							ph.res.ErrorExamples = map[loadgen.ErrorKind]string{}
						}
						if _, ok := ph.res.ErrorExamples[k]; !ok {
							ph.res.ErrorExamples[k] = v
						}
					}
					ph.res.ElapsedSec += res.ElapsedSec
					ph.samples = append(ph.samples, ss...)
					ph.ticks += ticks
					ph.cpuKnown = ph.cpuKnown && cpuOK
					ph.elapsed += elapsed
					ph.others = append(ph.others, r.lastNoise)
				})
			}
		}
	}
	for _, ph := range phases {
		if ph.err != nil {
			fail(ph.probeCase, ph.err)
			continue
		}
		if ph.hist == nil {
			continue
		}
		res := ph.res
		res.Latency = loadgen.Summarize(ph.hist)
		if res.ElapsedSec > 0 {
			res.Throughput = float64(res.Requests) / res.ElapsedSec
		}
		r.lastNoise = mean(ph.others)
		m := &measurement{Group: "control", Case: ph.probeCase, Server: name, Round: round, Result: &res, hist: ph.hist,
			RSSKiB: rss, HWMKiB: hwm, StartupMs: float64(startup) / float64(time.Millisecond), Lists: len(ph.samples)}
		if ph.cpuKnown {
			m.DaemonCPUPct = float64(ph.ticks) / clockTicks / ph.elapsed.Seconds() * 100
		}
		r.add(m)
		if ph.list == nil {
			continue
		}
		lm := &measurement{Group: "control", Case: ph.listCase, Server: name, Round: round,
			Result: durResult(name, ph.samples, ph.elapsed, func(s listSample) time.Duration { return s.wall }), Lists: len(ph.samples)}
		for _, s := range ph.samples {
			lm.SamplesMs = append(lm.SamplesMs, ms(s.wall))
			lm.AnswerBytes = s.bytes
		}
		if ph.listCase == ctlListCmd {
			var cpu []float64
			for _, s := range ph.samples {
				cpu = append(cpu, ms(s.clientCPU))
			}
			lm.ClientCPUMs = median(cpu)
		}
		r.add(lm)
		if ph.listCase == ctlListAnswer {
			fm := &measurement{Group: "control", Case: ctlListFirst, Server: name, Round: round,
				Result: durResult(name, ph.samples, ph.elapsed, func(s listSample) time.Duration { return s.firstByte }), Lists: len(ph.samples)}
			for _, s := range ph.samples {
				fm.SamplesMs = append(fm.SamplesMs, ms(s.firstByte))
			}
			r.add(fm)
		}
	}
}

// startControlDaemon starts sockd on fixture f and waits until every job
// listens and its control socket lists them all.
func (r *runner) startControlDaemon(sockd, name string, f *controlFixture) (*proc, string, error) {
	n := f.n
	os.RemoveAll(f.ctlDir)
	ctl := filepath.Join(f.ctlDir, "control.sock")
	p, err := startProc(r.e.tmp, name, []string{sockd, "serve", "--jobs", f.jobs, "--log-level", "warn",
		"--control", ctl, "--overrides", "", "--once-dir", filepath.Join(f.ctlDir, "once")}, os.Environ())
	if err != nil {
		return nil, "", err
	}
	err = waitFor(r.ctx, p, 120*time.Second, 20*time.Millisecond, fmt.Sprintf("%d listening Unix sockets and the probe", n), func() (bool, error) {
		c, err := unixListening(f.sockPrefix)
		if err != nil || c < n-1 {
			return false, err
		}
		return tcpListening(f.port)
	})
	if err == nil {
		// The control socket answers, with every job.
		err = waitFor(r.ctx, p, 30*time.Second, 20*time.Millisecond, "a list of every job", func() (bool, error) {
			var out bytes.Buffer
			if _, err := listCmd(sockd, ctl, &out); err != nil {
				return false, nil
			}
			return checkList(out.Bytes(), n) == nil, nil
		})
	}
	if err != nil {
		p.stop()
		return nil, "", err
	}
	return p, ctl, nil
}

// controlSlice is about how long each phase runs before the next takes
// its turn.
const controlSlice = time.Second

// controlSlice runs the probe for d against the daemon (pid), with list
// (nil: none) looping beside it, and hands done what it measured.
func (r *runner) controlSlice(pid int, probeAddr, name string, d time.Duration, list func() (listSample, error),
	done func(res *loadgen.Result, ss []listSample, ticks int64, cpuOK bool, elapsed time.Duration, err error)) {
	var (
		samples []listSample
		lerr    error
		wg      sync.WaitGroup
		stop    = make(chan struct{})
	)
	time.Sleep(50 * time.Millisecond) // the previous slice's children exit
	before, err1 := sampleCPU(pid)
	start := time.Now()
	if list != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := time.Now()
			for {
				// Back to back, or one list every controlEvery.
				select {
				case <-stop:
					return
				case <-time.After(max(time.Until(next), 0)):
				}
				next = time.Now().Add(r.s.controlEvery)
				s, err := list()
				if err != nil {
					lerr = err
					return
				}
				samples = append(samples, s)
			}
		}()
	}
	res, err := r.load(loadgen.Config{Label: name, Workload: loadgen.ConnPerRequest, Addr: probeAddr,
		Rate: r.s.controlRate, Duration: d})
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	after, err2 := sampleCPU(pid)
	if err == nil {
		err = lerr
	}
	done(res, samples, after.own-before.own, err1 == nil && err2 == nil, elapsed, err)
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeControl prints the control group's figures per server and round:
// the probe's p50, p99 and p99.9 in each phase, the list times, and the
// daemon's CPU; then, per server, the probe's percentiles over every
// round's requests together.
func writeControl(w io.Writer, ms []*measurement) {
	type roundFig struct {
		server           string
		round            int
		probe            map[string]*loadgen.Result
		cpu              map[string]float64
		others           float64 // the most of the three phases
		cmd, answer, fst *loadgen.Result
		clientCPU        float64
	}
	type key struct {
		server string
		round  int
	}
	figs := map[key]*roundFig{}
	var order []key
	var servers []string
	pooled := map[string]map[string]*hdrhistogram.Histogram{} // server, case
	for _, m := range ms {
		if m.Group != "control" || m.Result == nil || m.Error != "" {
			continue
		}
		k := key{m.Server, m.Round}
		rf := figs[k]
		if rf == nil {
			rf = &roundFig{server: m.Server, round: m.Round, probe: map[string]*loadgen.Result{}, cpu: map[string]float64{}}
			figs[k] = rf
			order = append(order, k)
		}
		if pooled[m.Server] == nil {
			pooled[m.Server] = map[string]*hdrhistogram.Histogram{}
			servers = append(servers, m.Server)
		}
		switch m.Case {
		case ctlProbeAlone, ctlProbeCmd, ctlProbeRaw:
			rf.probe[m.Case] = m.Result
			rf.cpu[m.Case] = m.DaemonCPUPct
			rf.others = max(rf.others, m.OthersCPUPct)
			if h := m.hist; h != nil {
				ph := pooled[m.Server]
				if ph[m.Case] == nil {
					ph[m.Case] = loadgen.NewHistogram()
				}
				ph[m.Case].Merge(h)
			}
		case ctlListCmd:
			rf.cmd, rf.clientCPU = m.Result, m.ClientCPUMs
		case ctlListAnswer:
			rf.answer = m.Result
		case ctlListFirst:
			rf.fst = m.Result
		}
	}
	if len(order) == 0 {
		return
	}
	sort.SliceStable(order, func(a, b int) bool {
		if order[a].server != order[b].server {
			return slices.Index(servers, order[a].server) < slices.Index(servers, order[b].server)
		}
		return order[a].round < order[b].round
	})
	f := loadgen.FormatDuration
	pct := func(res *loadgen.Result) string {
		if res == nil {
			return "-"
		}
		return fmt.Sprintf("%s / %s / %s", f(res.Latency.P50), f(res.Latency.P99), f(res.Latency.P999))
	}
	p50 := func(res *loadgen.Result) string {
		if res == nil {
			return "-"
		}
		return f(res.Latency.P50)
	}
	fmt.Fprintf(w, "\n== control, per round: probe p50 / p99 / p99.9 in each phase; list medians; daemon CPU (%% of one CPU) alone / list / raw;\n"+
		"   others%%: the CPU share other processes used meanwhile (the highest of the three phases; distrust a round with much)\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\tround\talone\t+ list --json\t+ raw list\tp99 list/alone\tp99 raw/alone\tlist --json\tanswer\tfirst byte\tclient cpu\tdaemon cpu\tothers%\t")
	ratios := map[string][2][]float64{}
	for _, k := range order {
		rf := figs[k]
		rs := ratios[rf.server]
		ratio := func(c string, into *[]float64) string {
			a, l := rf.probe[ctlProbeAlone], rf.probe[c]
			if a == nil || l == nil || a.Latency.P99 <= 0 {
				return "-"
			}
			v := l.Latency.P99 / a.Latency.P99
			*into = append(*into, v)
			return fmt.Sprintf("%.2f", v)
		}
		rc, rr := ratio(ctlProbeCmd, &rs[0]), ratio(ctlProbeRaw, &rs[1])
		ratios[rf.server] = rs
		cpu := fmt.Sprintf("%.0f / %.0f / %.0f%%", rf.cpu[ctlProbeAlone], rf.cpu[ctlProbeCmd], rf.cpu[ctlProbeRaw])
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0fms\t%s\t%.0f\t\n", rf.server, rf.round, pct(rf.probe[ctlProbeAlone]),
			pct(rf.probe[ctlProbeCmd]), pct(rf.probe[ctlProbeRaw]), rc, rr, p50(rf.cmd), p50(rf.answer), p50(rf.fst), rf.clientCPU, cpu, rf.others)
	}
	tw.Flush()
	for _, sv := range servers {
		rs := ratios[sv]
		fmt.Fprintf(w, "%s: median p99 ratio over rounds, while list --json loops / alone %.2f, while the raw list loops / alone %.2f\n",
			sv, median(rs[0]), median(rs[1]))
		fmt.Fprintf(w, "  all rounds pooled, probe p50 / p99 / p99.9 (requests):")
		for _, c := range []string{ctlProbeAlone, ctlProbeCmd, ctlProbeRaw} {
			if h := pooled[sv][c]; h != nil {
				l := loadgen.Summarize(h)
				fmt.Fprintf(w, "\n    %-26s %s / %s / %s (%d)", c, f(l.P50), f(l.P99), f(l.P999), l.Count)
			}
		}
		fmt.Fprintln(w)
	}
}
