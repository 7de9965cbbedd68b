package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/sockd/sockd/bench/loadgen"
)

// settings are the run's sizes.
type settings struct {
	rounds       int
	d            time.Duration // one measurement
	conc         []int         // inetd closed-loop concurrencies
	rates        []float64     // inetd open-loop rates
	firstSamples int64
	scaleSizes   []int
	groups       map[string]bool
	servers      map[string]bool // nil: all
	// The control group: jobs loaded, the probe's rate, one phase's length.
	controlJobs  int
	controlRate  float64
	controlD     time.Duration
	controlBins  []string      // sockd binaries to run in turn (nil: the one built)
	controlEvery time.Duration // 0: lists back to back; else one list started every controlEvery
	// sockdVariants run beside sockd in the inetd group (-sockd-variant).
	sockdVariants []sockdVariant
}

// sockdVariant is sockd run with extra serve flags, as a server of its own.
type sockdVariant struct {
	name string // "sockd+NAME"
	bin  string // "": the sockd of the run
	args []string
}

// measurement is one server's figures for one case in one round.
type measurement struct {
	Group  string          `json:"group"`
	Case   string          `json:"case"`
	Server string          `json:"server"`
	Round  int             `json:"round"`
	Result *loadgen.Result `json:"result,omitempty"`
	// CPU of the server process per 1,000 successful requests, in ms:
	// own = utime+stime of the server process (children excluded);
	// all = own + CPU of its reaped children (fork-side work and the
	// per-connection programs).
	CPUOwnMsPer1k float64 `json:"server_cpu_own_ms_per_1k,omitempty"`
	CPUAllMsPer1k float64 `json:"server_cpu_with_children_ms_per_1k,omitempty"`
	// Bulk cases: CPU seconds per GiB moved, of the proxy process (own)
	// and of the whole machine (every process and the kernel, busy ticks
	// from /proc/stat), and the machine's busy share during the case.
	// Machine CPU per GiB bounds a path's throughput: with every CPU
	// busy it moves at most CPUs / MachineCPUSecPerGiB GiB/s.
	CPUSecPerGiB        float64 `json:"server_cpu_s_per_gib,omitempty"`
	MachineCPUSecPerGiB float64 `json:"machine_cpu_s_per_gib,omitempty"`
	MachineBusyPct      float64 `json:"machine_busy_pct,omitempty"`
	RSSKiB              int64   `json:"server_rss_kib,omitempty"`
	HWMKiB              int64   `json:"server_rss_peak_kib,omitempty"`
	StartupMs           float64 `json:"startup_ms,omitempty"`
	// IdleCPUPct is the server's CPU while it serves nothing, as a share
	// of one CPU (the scale group's timers case).
	IdleCPUPct float64 `json:"server_idle_cpu_pct,omitempty"`
	// OthersCPUPct is the share of the machine's CPU used by processes
	// outside the benchmark during the measurement (noise).
	OthersCPUPct float64 `json:"others_cpu_pct"`
	// The control group: lists done during the phase, the daemon's CPU
	// during it (% of one CPU), each list's time in ms, the answer's size
	// and the median CPU of one `sockd list --json` process.
	Lists        int       `json:"lists,omitempty"`
	DaemonCPUPct float64   `json:"daemon_cpu_pct,omitempty"`
	SamplesMs    []float64 `json:"samples_ms,omitempty"`
	AnswerBytes  int64     `json:"answer_bytes,omitempty"`
	ClientCPUMs  float64   `json:"list_client_cpu_ms,omitempty"`
	// The upgrade group: the probe's connections during the upgrades,
	// those that failed, and the slowest (ms).
	ProbeConns  int     `json:"probe_conns,omitempty"`
	ProbeErrors int     `json:"probe_errors,omitempty"`
	ProbeMaxMs  float64 `json:"probe_max_ms,omitempty"`
	Error       string  `json:"error,omitempty"`
	Skipped     string  `json:"skipped,omitempty"`

	// hist holds the control group's probe latencies, for pooling.
	hist *hdrhistogram.Histogram
}

type runner struct {
	lastNoise float64 // others' CPU share during the last load()
	ctx       context.Context
	e         *env
	s         settings
	results   []*measurement
	logf      func(format string, args ...any)
	ctlFix    *controlFixture // the control group's jobs, made once
	ctlOther  *controlFixture // the second sockd's, for the phase on another sockd
}

func (r *runner) add(m *measurement) {
	if m.Result != nil {
		m.OthersCPUPct = r.lastNoise
	}
	r.results = append(r.results, m)
	switch {
	case m.Skipped != "":
		r.logf("  %-8s %-22s %-26s skipped: %s", m.Group, m.Case, m.Server, m.Skipped)
	case m.Error != "":
		r.logf("  %-8s %-22s %-26s ERROR: %s", m.Group, m.Case, m.Server, m.Error)
	case m.Result != nil:
		res := m.Result
		extra := ""
		if res.MiBps > 0 {
			extra = fmt.Sprintf(" %.0f MiB/s", res.MiBps)
		}
		if m.StartupMs > 0 {
			extra += fmt.Sprintf(" startup %.0fms", m.StartupMs)
		}
		r.logf("  %-8s %-22s %-26s %7.0f/s p50 %-7s p99 %-7s err %s%s (others %.0f%% CPU)", m.Group, m.Case, m.Server,
			res.Throughput, loadgen.FormatDuration(res.Latency.P50), loadgen.FormatDuration(res.Latency.P99),
			loadgen.FormatErrors(res.Errors), extra, m.OthersCPUPct)
	}
}

func (r *runner) want(server string) bool {
	if r.s.servers == nil {
		return true
	}
	for k := range r.s.servers {
		if strings.HasPrefix(server, k) {
			return true
		}
	}
	return false
}

// load runs one loadgen configuration.
func (r *runner) load(cfg loadgen.Config) (*loadgen.Result, error) {
	if cfg.Duration == 0 && cfg.Count == 0 {
		cfg.Duration = r.s.d
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	nm := startNoise()
	res, err := loadgen.Run(r.ctx, cfg)
	r.lastNoise = nm.othersPct()
	return res, err
}

// ---- sockd job files ----

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// plist renders a launchd job. inetd selects inetdCompatibility Wait=false;
// sock is the Listeners dictionary body.
func plist(label, prog string, inetd bool, sock string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
`)
	fmt.Fprintf(&b, "\t<key>Label</key><string>%s</string>\n", xmlEscape(label))
	fmt.Fprintf(&b, "\t<key>ProgramArguments</key><array><string>%s</string></array>\n", xmlEscape(prog))
	if inetd {
		b.WriteString("\t<key>inetdCompatibility</key><dict><key>Wait</key><false/></dict>\n")
		b.WriteString("\t<key>SockdLimits</key><dict><key>MaxChildren</key><integer>1024</integer></dict>\n")
	}
	fmt.Fprintf(&b, "\t<key>Sockets</key><dict><key>Listeners</key><dict>%s</dict></dict>\n", sock)
	b.WriteString("</dict>\n</plist>\n")
	return b.String()
}

func tcpSock(port int) string {
	return fmt.Sprintf("<key>SockNodeName</key><string>127.0.0.1</string>"+
		"<key>SockServiceName</key><string>%d</string><key>SockFamily</key><string>IPv4</string>", port)
}

func unixSock(path string) string {
	return fmt.Sprintf("<key>SockPathName</key><string>%s</string>", xmlEscape(path))
}

// writeJobs writes one job file per (label, body) into a new directory.
func (r *runner) jobsDir(name string, jobs map[string]string) (string, error) {
	dir, err := os.MkdirTemp(r.e.tmp, "jobs-"+sanitize(name)+"-")
	if err != nil {
		return "", err
	}
	for label, body := range jobs {
		if err := os.WriteFile(filepath.Join(dir, label+".plist"), []byte(body), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func (r *runner) startSockd(name, jobsDir string, extra ...string) (*proc, error) {
	return startProc(r.e.tmp, name, append([]string{r.e.sockd, "serve", "--jobs", jobsDir, "--log-level", "warn"}, extra...), os.Environ())
}

// ---- inetd mode ----

// inetdServer starts one inetd-style server for hello on 127.0.0.1:port.
type inetdServer struct {
	name  string
	start func(port int) (*proc, error)
}

func (r *runner) inetdServers() []inetdServer {
	e := r.e
	var out []inetdServer
	if e.sockd != "" {
		out = append(out, inetdServer{"sockd", func(port int) (*proc, error) {
			dir, err := r.jobsDir("sockd-inetd", map[string]string{"bench.hello": plist("bench.hello", e.hello, true, tcpSock(port))})
			if err != nil {
				return nil, err
			}
			return r.startSockd("sockd", dir)
		}})
		for _, v := range r.s.sockdVariants {
			out = append(out, inetdServer{v.name, func(port int) (*proc, error) {
				dir, err := r.jobsDir(v.name+"-inetd", map[string]string{"bench.hello": plist("bench.hello", e.hello, true, tcpSock(port))})
				if err != nil {
					return nil, err
				}
				if v.bin != "" {
					return startProc(r.e.tmp, v.name, append([]string{v.bin, "serve", "--jobs", dir, "--log-level", "warn"}, v.args...), os.Environ())
				}
				return r.startSockd(v.name, dir, v.args...)
			}})
		}
	}
	if e.tcpserver.path != "" {
		out = append(out, inetdServer{"tcpserver", func(port int) (*proc, error) {
			// -R -H -l 0: no ident and no DNS lookups; -b: backlog like the
			// others' (tcpserver's default is 20).
			return startProc(e.tmp, "tcpserver", []string{e.tcpserver.path, "-c", "1000", "-b", "1024", "-q", "-R", "-H", "-l", "0",
				"127.0.0.1", strconv.Itoa(port), e.hello}, os.Environ())
		}})
	}
	if e.xinetd.path != "" {
		out = append(out, inetdServer{"xinetd", func(port int) (*proc, error) {
			conf := filepath.Join(e.tmp, fmt.Sprintf("xinetd-%d.conf", port))
			userLine := ""
			if os.Geteuid() == 0 {
				userLine = "\tuser = root\n"
			}
			body := fmt.Sprintf(`defaults
{
	instances = UNLIMITED
	per_source = UNLIMITED
	cps = 1000000 1
}
service bench
{
	type = UNLISTED
	id = bench
	port = %d
	bind = 127.0.0.1
	socket_type = stream
	protocol = tcp
	wait = no
%s	server = %s
	instances = UNLIMITED
	per_source = UNLIMITED
	cps = 1000000 1
	flags = IPv4
}
`, port, userLine, e.hello)
			if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
				return nil, err
			}
			return startProc(e.tmp, "xinetd", []string{e.xinetd.path, "-dontfork", "-stayalive", "-f", conf,
				"-pidfile", filepath.Join(e.tmp, fmt.Sprintf("xinetd-%d.pid", port))}, os.Environ())
		}})
	}
	if e.inetd.path != "" {
		out = append(out, inetdServer{"openbsd-inetd", func(port int) (*proc, error) {
			conf := filepath.Join(e.tmp, fmt.Sprintf("inetd-%d.conf", port))
			who := "root"
			if u, err := user.Current(); err == nil {
				who = u.Username
			}
			body := fmt.Sprintf("127.0.0.1:%d stream tcp4 nowait %s %s hello\n", port, who, e.hello)
			if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
				return nil, err
			}
			return startProc(e.tmp, "openbsd-inetd", []string{e.inetd.path, "-i", "-R", "100000000", "-q", "1024", conf}, os.Environ())
		}})
	}
	if e.activate.path != "" {
		out = append(out, inetdServer{"systemd-socket-activate", func(port int) (*proc, error) {
			return startProc(e.tmp, "systemd-socket-activate", []string{e.activate.path,
				"-l", fmt.Sprintf("127.0.0.1:%d", port), "--inetd", "-a", e.hello}, os.Environ())
		}})
	}
	out = append(out, inetdServer{"floor", func(port int) (*proc, error) {
		return startProc(e.tmp, "floor", []string{e.floor, "127.0.0.1", strconv.Itoa(port), e.hello}, os.Environ())
	}})
	return r.wanted(out)
}

// wanted keeps the servers selected with -servers.
func (r *runner) wanted(all []inetdServer) []inetdServer {
	var kept []inetdServer
	for _, s := range all {
		if r.want(s.name) {
			kept = append(kept, s)
		}
	}
	return kept
}

// startListening starts srv on a free loopback port and waits until it
// accepts connections; it returns the process and "127.0.0.1:PORT".
func (r *runner) startListening(srv inetdServer) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	p, err := srv.start(port)
	if err == nil {
		err = waitTCP(r.ctx, p, port)
	}
	if err != nil {
		p.stop()
		return nil, "", err
	}
	return p, fmt.Sprintf("127.0.0.1:%d", port), nil
}

func (r *runner) inetdRound(round int) {
	for _, srv := range r.inetdServers() {
		if r.ctx.Err() != nil {
			return
		}
		fail := func(cs string, err error) {
			r.add(&measurement{Group: "inetd", Case: cs, Server: srv.name, Round: round, Error: err.Error()})
		}
		p, addr, err := r.startListening(srv)
		if err != nil {
			fail("start", err)
			continue
		}
		// Warm up: page cache, first-spawn costs.
		_, _ = r.load(loadgen.Config{Workload: loadgen.ConnPerRequest, Addr: addr, Count: 50})
		measure := func(cs string, cfg loadgen.Config) {
			before, err1 := sampleCPU(p.pid())
			res, err := r.load(cfg)
			after, err2 := sampleCPU(p.pid())
			if err != nil {
				fail(cs, err)
				return
			}
			m := &measurement{Group: "inetd", Case: cs, Server: srv.name, Round: round, Result: res}
			if err1 == nil && err2 == nil && res.Requests > 0 {
				per := 1000.0 / float64(clockTicks) * 1000.0 / float64(res.Requests)
				m.CPUOwnMsPer1k = float64(after.own-before.own) * per
				m.CPUAllMsPer1k = float64(after.withChildren-before.withChildren) * per
			}
			m.RSSKiB, m.HWMKiB, _ = memKiB(p.pid())
			r.add(m)
		}
		for _, c := range r.s.conc {
			measure(fmt.Sprintf("rate C=%d", c), loadgen.Config{Label: srv.name, Workload: loadgen.ConnPerRequest, Addr: addr, Concurrency: c})
		}
		for _, rate := range r.s.rates {
			measure(fmt.Sprintf("open %.0f/s", rate), loadgen.Config{Label: srv.name, Workload: loadgen.ConnPerRequest, Addr: addr, Rate: rate})
		}
		p.stop()
	}
}

// ---- handoff mode ----

func (r *runner) handoffServers() []inetdServer {
	e := r.e
	var out []inetdServer
	if e.sockd != "" {
		out = append(out, inetdServer{"sockd", func(port int) (*proc, error) {
			dir, err := r.jobsDir("sockd-handoff", map[string]string{"bench.echo": plist("bench.echo", e.echosrv, false, tcpSock(port))})
			if err != nil {
				return nil, err
			}
			return r.startSockd("sockd", dir)
		}})
	}
	out = append(out, inetdServer{"self-bound", func(port int) (*proc, error) {
		return startProc(e.tmp, "echosrv", []string{e.echosrv, "127.0.0.1", strconv.Itoa(port)}, os.Environ())
	}})
	if e.activate.path != "" {
		out = append(out, inetdServer{"systemd-socket-activate", func(port int) (*proc, error) {
			return startProc(e.tmp, "systemd-socket-activate", []string{e.activate.path,
				"-l", fmt.Sprintf("127.0.0.1:%d", port), e.echosrv}, os.Environ())
		}})
	}
	return r.wanted(out)
}

// handoffRound: steady-state request latency of echosrv once running.
func (r *runner) handoffRound(round int) {
	for _, srv := range r.handoffServers() {
		if r.ctx.Err() != nil {
			return
		}
		fail := func(cs string, err error) {
			r.add(&measurement{Group: "handoff", Case: cs, Server: srv.name, Round: round, Error: err.Error()})
		}
		p, addr, err := r.startListening(srv)
		if err != nil {
			fail("start", err)
			continue
		}
		// The first connection starts the service (sockd, activate).
		if res, err := r.load(loadgen.Config{Workload: loadgen.KeepAlive, Addr: addr, Count: 200}); err != nil || res.Requests == 0 {
			msg := fmt.Sprint(err)
			if res != nil {
				msg = fmt.Sprintf("warm-up: %s %v", loadgen.FormatErrors(res.Errors), res.ErrorExamples)
			}
			p.stop()
			fail("start", errors.New(msg+p.logTail()))
			continue
		}
		for _, c := range []int{1, 16} {
			res, err := r.load(loadgen.Config{Label: srv.name, Workload: loadgen.KeepAlive, Addr: addr, Concurrency: c})
			if err != nil {
				fail(fmt.Sprintf("echo C=%d", c), err)
				continue
			}
			r.add(&measurement{Group: "handoff", Case: fmt.Sprintf("echo C=%d", c), Server: srv.name, Round: round, Result: res})
		}
		res, err := r.load(loadgen.Config{Label: srv.name, Workload: loadgen.KeepAlive, Addr: addr, Concurrency: 32, Rate: 2000})
		if err != nil {
			fail("echo open 2000/s", err)
		} else {
			r.add(&measurement{Group: "handoff", Case: "echo open 2000/s", Server: srv.name, Round: round, Result: res})
		}
		p.stop()
	}
}

// firstRound: first-connection latency, a fresh daemon per sample.
func (r *runner) firstRound(round int) {
	for _, srv := range r.handoffServers() {
		if srv.name == "self-bound" || r.ctx.Err() != nil {
			continue
		}
		port, err := freePort()
		if err != nil {
			r.add(&measurement{Group: "first", Case: "connect->first byte", Server: srv.name, Round: round, Error: err.Error()})
			continue
		}
		var cur *proc
		before := func(ctx context.Context, i int64) error {
			cur.stop()
			cur = nil
			p, err := srv.start(port)
			if err != nil {
				return err
			}
			cur = p
			return waitTCP(ctx, p, port)
		}
		res, err := r.load(loadgen.Config{Label: srv.name, Workload: loadgen.FirstConn, Addr: fmt.Sprintf("127.0.0.1:%d", port),
			Count: r.s.firstSamples, BeforeSample: before})
		cur.stop()
		m := &measurement{Group: "first", Case: "connect->first byte", Server: srv.name, Round: round, Result: res}
		if err != nil {
			m.Error = err.Error()
		}
		r.add(m)
	}
}

// ---- proxy mode ----

func (r *runner) proxyRound(round int) {
	e := r.e
	// Backends: an in-process bulk sink and a self-bound echosrv.
	sinkL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.add(&measurement{Group: "proxy", Case: "start", Server: "direct", Round: round, Error: err.Error()})
		return
	}
	defer sinkL.Close()
	go func() { _ = loadgen.ServeSink(sinkL) }()
	echoPort, err := freePort()
	if err != nil {
		r.add(&measurement{Group: "proxy", Case: "start", Server: "direct", Round: round, Error: err.Error()})
		return
	}
	echo, err := startProc(e.tmp, "echosrv", []string{e.echosrv, "127.0.0.1", strconv.Itoa(echoPort)}, os.Environ())
	if err == nil {
		err = waitTCP(r.ctx, echo, echoPort)
	}
	defer echo.stop()
	if err != nil {
		r.add(&measurement{Group: "proxy", Case: "start", Server: "direct", Round: round, Error: err.Error()})
		return
	}
	sinkAddr := sinkL.Addr().String()
	echoAddr := fmt.Sprintf("127.0.0.1:%d", echoPort)

	type target struct {
		name       string
		bulk, echo string
		procs      []*proc
		bulkProc   *proc // the process forwarding bulk (nil: direct)
		err        error
	}
	var targets []*target
	if r.want("direct") {
		targets = append(targets, &target{name: "direct", bulk: sinkAddr, echo: echoAddr})
	}
	if r.want("sockd") {
		// Two proxy jobs with external backends (no program): the data path
		// alone, as systemd-socket-proxyd below.
		t := &target{name: "sockd"}
		bulkPort, err1 := freePort()
		echoPort2, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			t.err = err
		} else {
			proxyJob := func(label string, port int, backend string) string {
				return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
	<key>Label</key><string>%s</string>
	<key>Sockets</key><dict><key>Listeners</key><dict>%s</dict></dict>
	<key>SockdProxy</key><dict><key>Backend</key><string>%s</string></dict>
	<key>SockdLimits</key><dict><key>MaxChildren</key><integer>1024</integer></dict>
</dict></plist>
`, label, tcpSock(port), backend)
			}
			dir, err := r.jobsDir("sockd-proxy", map[string]string{
				"bench.proxy.bulk": proxyJob("bench.proxy.bulk", bulkPort, sinkAddr),
				"bench.proxy.echo": proxyJob("bench.proxy.echo", echoPort2, echoAddr),
			})
			var p *proc
			if err == nil {
				p, err = r.startSockd("sockd-proxy", dir)
			}
			if err == nil {
				t.procs = append(t.procs, p)
				t.bulkProc = p
				err = waitTCP(r.ctx, p, echoPort2)
			}
			t.err = err
			t.bulk = fmt.Sprintf("127.0.0.1:%d", bulkPort)
			t.echo = fmt.Sprintf("127.0.0.1:%d", echoPort2)
		}
		targets = append(targets, t)
	}
	if e.activate.path != "" && e.proxyd.path != "" && r.want("systemd-socket-proxyd") {
		t := &target{name: "systemd-socket-proxyd"}
		for _, backend := range []string{sinkAddr, echoAddr} {
			port, err := freePort()
			if err != nil {
				t.err = err
				break
			}
			p, err := startProc(e.tmp, "proxyd", []string{e.activate.path, "-l", fmt.Sprintf("127.0.0.1:%d", port),
				e.proxyd.path, "--connections-max=1024", backend}, os.Environ())
			if err == nil {
				t.procs = append(t.procs, p)
				err = waitTCP(r.ctx, p, port)
			}
			if err != nil {
				t.err = err
				break
			}
			if backend == sinkAddr {
				t.bulkProc = p
				t.bulk = fmt.Sprintf("127.0.0.1:%d", port)
			} else {
				t.echo = fmt.Sprintf("127.0.0.1:%d", port)
			}
		}
		targets = append(targets, t)
	}
	for _, t := range targets {
		if t.err != nil {
			r.add(&measurement{Group: "proxy", Case: "start", Server: t.name, Round: round, Error: t.err.Error()})
			continue
		}
		// Warm up (activates proxyd).
		_, _ = r.load(loadgen.Config{Workload: loadgen.KeepAlive, Addr: t.echo, Count: 100})
		cases := []struct {
			name string
			cfg  loadgen.Config
		}{
			{"bulk 1 stream", loadgen.Config{Workload: loadgen.Bulk, Addr: t.bulk, Concurrency: 1}},
			// Four streams keep both ends and the proxy busy at once:
			// what the path moves with the CPUs saturated.
			{"bulk 4 streams", loadgen.Config{Workload: loadgen.Bulk, Addr: t.bulk, Concurrency: 4}},
			{"echo C=1", loadgen.Config{Workload: loadgen.KeepAlive, Addr: t.echo, Concurrency: 1}},
			{"echo C=32", loadgen.Config{Workload: loadgen.KeepAlive, Addr: t.echo, Concurrency: 32}},
		}
		for _, c := range cases {
			c.cfg.Label = t.name
			var cpu bulkCPU
			if c.cfg.Workload == loadgen.Bulk {
				cpu = startBulkCPU(t.bulkProc)
			}
			res, err := r.load(c.cfg)
			m := &measurement{Group: "proxy", Case: c.name, Server: t.name, Round: round, Result: res}
			if c.cfg.Workload == loadgen.Bulk && err == nil {
				cpu.finish(m)
			}
			if err != nil {
				m.Error = err.Error()
			}
			r.add(m)
		}
	}
	for _, t := range targets {
		for _, p := range t.procs {
			p.stop()
		}
	}
}

// ---- scale ----

// scaleJobs prepares, once per size, a jobs directory of n inetd jobs on
// Unix sockets.
func (r *runner) scaleJobs(n int) (jobs, sockPrefix string, err error) {
	base := filepath.Join(r.e.tmp, fmt.Sprintf("scale%d", n))
	jobs = filepath.Join(base, "jobs")
	// Socket nodes go on tmpfs where there is one: on a disk file system
	// every bind creates an inode, which costs up to a millisecond here and
	// would measure the disk, not sockd.
	sockDir := filepath.Join(r.e.sockTmp(), fmt.Sprintf("scale%d", n))
	sockPrefix = sockDir + "/"
	if _, err := os.Stat(jobs); err == nil {
		return jobs, sockPrefix, nil
	}
	for _, d := range []string{jobs, sockDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", "", err
		}
	}
	for i := range n {
		label := fmt.Sprintf("bench.scale.%05d", i)
		body := plist(label, r.e.hello, true, unixSock(filepath.Join(sockDir, fmt.Sprintf("%05d.sock", i))))
		if err := os.WriteFile(filepath.Join(jobs, label+".plist"), []byte(body), 0o644); err != nil {
			return "", "", err
		}
	}
	return jobs, sockPrefix, nil
}

func (r *runner) scaleRound(round int) {
	if r.e.sockd == "" {
		r.add(&measurement{Group: "scale", Case: "all", Server: "sockd", Round: round, Skipped: "sockd not built"})
		return
	}
	for _, n := range r.s.scaleSizes {
		if r.ctx.Err() != nil {
			return
		}
		name := fmt.Sprintf("sockd %d sockets", n)
		fail := func(err error) {
			r.add(&measurement{Group: "scale", Case: "accept C=1", Server: name, Round: round, Error: err.Error()})
		}
		jobs, prefix, err := r.scaleJobs(n)
		if err != nil {
			fail(err)
			continue
		}
		t0 := time.Now()
		p, err := r.startSockd(name, jobs)
		if err != nil {
			fail(err)
			continue
		}
		err = waitFor(r.ctx, p, 120*time.Second, 20*time.Millisecond, fmt.Sprintf("%d listening Unix sockets", n), func() (bool, error) {
			c, err := unixListening(prefix)
			return c >= n, err
		})
		last := prefix + fmt.Sprintf("%05d.sock", n-1)
		if err == nil {
			// The last socket must also accept and run hello.
			var res *loadgen.Result
			res, err = r.load(loadgen.Config{Workload: loadgen.ConnPerRequest, Network: "unix", Addr: last, Count: 1})
			if err == nil && res.Requests != 1 {
				err = fmt.Errorf("last socket %s: %s %v", last, loadgen.FormatErrors(res.Errors), res.ErrorExamples)
			}
		}
		startup := time.Since(t0)
		if err != nil {
			p.stop()
			fail(err)
			continue
		}
		rss, hwm, _ := memKiB(p.pid())
		mid := prefix + fmt.Sprintf("%05d.sock", n/2)
		res, err := r.load(loadgen.Config{Label: name, Workload: loadgen.ConnPerRequest, Network: "unix", Addr: mid, Concurrency: 1})
		if err != nil {
			p.stop()
			fail(err)
			continue
		}
		r.add(&measurement{Group: "scale", Case: "accept C=1", Server: name, Round: round, Result: res,
			RSSKiB: rss, HWMKiB: hwm, StartupMs: float64(startup) / float64(time.Millisecond)})
		p.stop()
		r.scaleTimers(round, n)
	}
}

// scaleTimerJobs prepares, once per size, a jobs directory of n-1
// socketless jobs that only timers start (StartInterval of a day, or a
// daily StartCalendarInterval 12 hours away, alternately) and one inetd
// hello job on a Unix socket, the probe.
func (r *runner) scaleTimerJobs(n int) (jobs, probe string, err error) {
	base := filepath.Join(r.e.tmp, fmt.Sprintf("timers%d", n))
	jobs = filepath.Join(base, "jobs")
	probe = filepath.Join(r.e.sockTmp(), fmt.Sprintf("timers%d.sock", n))
	if _, err := os.Stat(jobs); err == nil {
		return jobs, probe, nil
	}
	if err := os.MkdirAll(jobs, 0o755); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(jobs, "bench.probe.plist"), []byte(plist("bench.probe", r.e.hello, true, unixSock(probe))), 0o644); err != nil {
		return "", "", err
	}
	far := time.Now().Add(12 * time.Hour)
	for i := range n - 1 {
		label := fmt.Sprintf("bench.timer.%05d", i)
		key := "<key>StartInterval</key><integer>86400</integer>"
		if i%2 == 1 {
			key = fmt.Sprintf("<key>StartCalendarInterval</key><dict><key>Hour</key><integer>%d</integer><key>Minute</key><integer>%d</integer></dict>", far.Hour(), far.Minute())
		}
		body := fmt.Sprintf("<plist version=\"1.0\"><dict><key>Label</key><string>%s</string><key>ProgramArguments</key><array><string>/bin/true</string></array><key>ThrottleInterval</key><integer>0</integer>%s</dict></plist>\n", label, key)
		if err := os.WriteFile(filepath.Join(jobs, label+".plist"), []byte(body), 0o644); err != nil {
			return "", "", err
		}
	}
	return jobs, probe, nil
}

// timersIdle is how long the timers case watches an idle sockd's CPU.
const timersIdle = 5 * time.Second

// scaleTimers measures one sockd holding n-1 timer jobs and the probe:
// its RSS, the CPU it uses while idle, and hello latency on the probe.
func (r *runner) scaleTimers(round, n int) {
	name := fmt.Sprintf("sockd %d timers", n)
	fail := func(err error) {
		r.add(&measurement{Group: "scale", Case: "accept C=1", Server: name, Round: round, Error: err.Error()})
	}
	jobs, probe, err := r.scaleTimerJobs(n)
	if err != nil {
		fail(err)
		return
	}
	t0 := time.Now()
	p, err := r.startSockd(name, jobs)
	if err != nil {
		fail(err)
		return
	}
	defer p.stop()
	err = waitFor(r.ctx, p, 120*time.Second, 20*time.Millisecond, "the probe answering", func() (bool, error) {
		res, err := r.load(loadgen.Config{Workload: loadgen.ConnPerRequest, Network: "unix", Addr: probe, Count: 1})
		return err == nil && res.Requests == 1, nil
	})
	startup := time.Since(t0)
	if err != nil {
		fail(err)
		return
	}
	time.Sleep(time.Second) // the jobs after the probe are armed by now
	c0, err := sampleCPU(p.pid())
	if err != nil {
		fail(err)
		return
	}
	time.Sleep(timersIdle)
	c1, err := sampleCPU(p.pid())
	if err != nil {
		fail(err)
		return
	}
	idle := float64(c1.own-c0.own) / clockTicks / timersIdle.Seconds() * 100
	rss, hwm, _ := memKiB(p.pid())
	res, err := r.load(loadgen.Config{Label: name, Workload: loadgen.ConnPerRequest, Network: "unix", Addr: probe, Concurrency: 1})
	if err != nil {
		fail(err)
		return
	}
	r.add(&measurement{Group: "scale", Case: "accept C=1", Server: name, Round: round, Result: res,
		RSSKiB: rss, HWMKiB: hwm, StartupMs: float64(startup) / float64(time.Millisecond), IdleCPUPct: idle})
}
