// Command compare runs the same loopback workloads against sockd and each
// peer that is installed (tcpserver, xinetd, openbsd-inetd,
// systemd-socket-activate, systemd-socket-proxyd) and a minimal C spawn loop
// (the floor), interleaved over several rounds, and prints medians and
// sockd/peer ratios. It writes results.json, summary.txt and compare.svg into
// bench/results/TIMESTAMP (or -out).
//
//	go run ./bench/cmd/compare            # full run, well under 15 minutes
//	go run ./bench/cmd/compare -quick     # about 2 minutes
//	go run ./bench/cmd/compare -groups inetd -servers sockd,floor
//	go run ./bench/cmd/compare -groups control   # sockd list with 10,000 jobs, ~2 minutes
//
// It installs nothing: missing peers are listed with the command that
// installs them. It builds sockd (go build ./cmd/sockd) and the C programs
// (gcc) into a temporary directory. Load generator and servers share the
// machine's CPUs; nothing is pinned.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// maxScaleRounds bounds the scale group, whose 10,000-socket start-ups are
// slow and whose figures are about sizes, not small differences.
const maxScaleRounds = 3

type options struct {
	rounds                                     int
	quick                                      bool
	d                                          time.Duration
	out                                        string
	groups, servers                            string
	sockd                                      string
	tcpserver, xinetd, inetd, activate, proxyd string
	scale                                      string
	firstSamples                               int64
	controlJobs                                int
	controlRate                                float64
	controlD                                   time.Duration
	controlBins                                string
	controlEvery                               time.Duration
	keep                                       bool
	sockdVariants                              []sockdVariant
}

func run() error {
	var o options
	flag.IntVar(&o.rounds, "rounds", 0, "interleaved rounds (default 5; -quick 2)")
	flag.BoolVar(&o.quick, "quick", false, "short run (about 2 minutes)")
	flag.DurationVar(&o.d, "d", 0, "duration of one measurement (default 2s; -quick 1s)")
	flag.StringVar(&o.out, "out", "", "results directory (default bench/results/TIMESTAMP)")
	flag.StringVar(&o.groups, "groups", "inetd,handoff,first,proxy,scale", "workload groups to run (control, the cost of sockd list with many jobs, and upgrade, sockd upgrade with 10 and 10,000 sockets, run only when named)")
	flag.StringVar(&o.servers, "servers", "", "only servers whose name starts with one of these (comma-separated; default all)")
	flag.StringVar(&o.sockd, "sockd", "", "use this sockd binary instead of building ./cmd/sockd")
	flag.StringVar(&o.tcpserver, "tcpserver", "", "path of tcpserver (default: PATH)")
	flag.StringVar(&o.xinetd, "xinetd", "", "path of xinetd (default: PATH)")
	flag.StringVar(&o.inetd, "inetd", "", "path of openbsd-inetd's inetd (default /usr/sbin/inetd)")
	flag.StringVar(&o.activate, "activate", "", "path of systemd-socket-activate (default: PATH)")
	flag.StringVar(&o.proxyd, "proxyd", "", "path of systemd-socket-proxyd (default /lib/systemd/systemd-socket-proxyd)")
	flag.StringVar(&o.scale, "scale", "", "listening-socket counts for the scale group (default 1,1000,10000; -quick 1,1000); it runs in the first 3 rounds only")
	flag.Int64Var(&o.firstSamples, "first-samples", 0, "first-connection samples per server per round (default 20; -quick 8)")
	flag.IntVar(&o.controlJobs, "control-jobs", 10000, "jobs loaded in the control group (one of them the probe)")
	flag.Float64Var(&o.controlRate, "control-rate", 200, "the control group's probe rate (connections/s, open loop)")
	flag.DurationVar(&o.controlD, "control-d", 0, "length of one phase of the control group (default 5s; -quick 2s)")
	flag.StringVar(&o.controlBins, "control-bins", "", "sockd binaries the control group runs in turn within each round, named by their file names (comma-separated; default: the one built)")
	flag.Func("sockd-variant", "also run, in the inetd group, sockd with extra serve flags, or another sockd binary: `NAME[@BINARY]=FLAGS` (repeatable; e.g. 'metrics=--metrics 127.0.0.1:0', 'before@/tmp/sockd.old='); it is the server sockd+NAME", func(v string) error {
		name, args, ok := strings.Cut(v, "=")
		name, bin, _ := strings.Cut(name, "@")
		if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(name, " ,") {
			return fmt.Errorf("want NAME[@BINARY]=FLAGS, got %q", v)
		}
		if bin != "" {
			if _, err := os.Stat(bin); err != nil {
				return err
			}
		}
		o.sockdVariants = append(o.sockdVariants, sockdVariant{name: "sockd+" + name, bin: bin, args: strings.Fields(args)})
		return nil
	})
	flag.DurationVar(&o.controlEvery, "control-every", 0, "the control group starts a list every DUR instead of back to back (to compare builds at one list rate)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (jobs, configs, server logs)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if runtime.GOOS != "linux" {
		return fmt.Errorf("linux only (reads /proc)")
	}

	s := settings{rounds: 5, d: 2 * time.Second, conc: []int{1, 8, 64}, rates: []float64{200, 500},
		firstSamples: 20, scaleSizes: []int{1, 1000, 10000}, groups: map[string]bool{},
		controlJobs: o.controlJobs, controlRate: o.controlRate, controlD: 5 * time.Second, controlEvery: o.controlEvery, sockdVariants: o.sockdVariants}
	if o.quick {
		s.rounds, s.d, s.firstSamples, s.scaleSizes = 2, time.Second, 8, []int{1, 1000}
		s.controlD = 2 * time.Second
	}
	if o.controlD > 0 {
		s.controlD = o.controlD
	}
	if o.controlBins != "" {
		for _, b := range strings.Split(o.controlBins, ",") {
			if _, err := os.Stat(b); err != nil {
				return fmt.Errorf("-control-bins: %w", err)
			}
			s.controlBins = append(s.controlBins, b)
		}
	}
	if s.controlJobs < 2 || s.controlJobs > 100000 || s.controlRate <= 0 {
		return fmt.Errorf("-control-jobs must be 2-100000 and -control-rate above 0")
	}
	if o.rounds > 0 {
		s.rounds = o.rounds
	}
	if o.d > 0 {
		s.d = o.d
	}
	if o.firstSamples > 0 {
		s.firstSamples = o.firstSamples
	}
	if o.scale != "" {
		s.scaleSizes = nil
		for _, f := range strings.Split(o.scale, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 100000 {
				return fmt.Errorf("-scale: bad count %q", f)
			}
			s.scaleSizes = append(s.scaleSizes, n)
		}
	}
	for _, g := range strings.Split(o.groups, ",") {
		g = strings.TrimSpace(g)
		if _, ok := groupTitles[g]; !ok {
			return fmt.Errorf("-groups: unknown group %q (have %s)", g, strings.Join(groupOrder, ","))
		}
		s.groups[g] = true
	}
	if o.servers != "" {
		s.servers = map[string]bool{}
		for _, v := range strings.Split(o.servers, ",") {
			s.servers[strings.TrimSpace(v)] = true
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := becomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, "compare: warning: cannot become a child subreaper:", err)
	}

	root, err := findRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "sockd-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	e := &env{root: root, tmp: tmp}
	defer e.removeShm()
	if err := e.buildC(ctx); err != nil {
		return err
	}
	e.buildSockd(ctx, o.sockd)
	e.findPeers(o.tcpserver, o.xinetd, o.inetd, o.activate, o.proxyd)

	outDir := o.out
	if outDir == "" {
		outDir = filepath.Join(root, "bench", "results", time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	summaryFile, err := os.Create(filepath.Join(outDir, "summary.txt"))
	if err != nil {
		return err
	}
	defer summaryFile.Close()
	w := io.MultiWriter(os.Stdout, summaryFile)

	meta := machineMeta(s, o)
	fmt.Fprintf(w, "sockd comparison, %s\n", meta.Date)
	fmt.Fprintf(w, "machine: %d CPUs, %s, kernel %s, %s. The load generator and the servers share these CPUs;\n"+
		"nothing is pinned, so figures are indicative and ratios matter more than absolutes.\n",
		meta.CPUs, meta.CPUModel, meta.Kernel, meta.GoVersion)
	fmt.Fprintf(w, "rounds %d (servers interleaved within each round), %v per measurement, groups %s\n",
		s.rounds, s.d, o.groups)
	fmt.Fprint(w, "peers:\n"+e.peerReport())
	nm := startNoise()
	time.Sleep(time.Second)
	meta.OthersCPUPctBefore = nm.othersPct()
	meta.LoadAvgStart = loadAvg()
	fmt.Fprintf(w, "machine before the run: %.0f%% of the CPUs busy with other processes, load average %s\n",
		meta.OthersCPUPctBefore, meta.LoadAvgStart)
	if meta.OthersCPUPctBefore > 10 {
		fmt.Fprintln(w, "WARNING: the machine is busy; figures will be noisy (see the others% column: other processes' share of the CPUs during each measurement)")
	}

	r := &runner{ctx: ctx, e: e, s: s, logf: func(f string, a ...any) { fmt.Printf(f+"\n", a...) }}
	start := time.Now()
	for round := 1; round <= s.rounds && ctx.Err() == nil; round++ {
		fmt.Printf("-- round %d/%d (%s elapsed)\n", round, s.rounds, time.Since(start).Round(time.Second))
		if s.groups["inetd"] {
			r.inetdRound(round)
		}
		if s.groups["handoff"] {
			r.handoffRound(round)
		}
		if s.groups["first"] {
			r.firstRound(round)
		}
		if s.groups["proxy"] {
			r.proxyRound(round)
		}
		if s.groups["scale"] && round <= maxScaleRounds {
			r.scaleRound(round)
		}
		if s.groups["control"] {
			r.controlRound(round)
		}
		if s.groups["upgrade"] {
			r.upgradeRound(round)
		}
	}
	meta.ElapsedSec = time.Since(start).Seconds()
	meta.LoadAvgEnd = loadAvg()
	if ctx.Err() != nil {
		fmt.Fprintln(w, "interrupted: partial results")
	}

	rows := summarize(r.results)
	writeSummary(w, rows)
	writeControl(w, r.results)
	writeUpgrade(w, r.results)
	fmt.Fprintf(w, "\nelapsed %s\n", time.Since(start).Round(time.Second))

	doc := struct {
		Meta    metaInfo       `json:"meta"`
		Peers   []peerInfo     `json:"peers"`
		Summary []*summaryRow  `json:"summary"`
		Runs    []*measurement `json:"runs"`
	}{meta, e.peerInfo(), rows, r.results}
	jf, err := os.Create(filepath.Join(outDir, "results.json"))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(jf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		jf.Close()
		return fmt.Errorf("results.json: %w", err)
	}
	if err := jf.Close(); err != nil {
		return err
	}
	svg := renderSVG(fmt.Sprintf("sockd vs peers — %d CPUs shared by load and servers, %s", meta.CPUs, meta.Date), buildPanels(rows))
	if err := os.WriteFile(filepath.Join(outDir, "compare.svg"), []byte(svg), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(w, "results: %s/{results.json,summary.txt,compare.svg}\n", outDir)
	return nil
}

type metaInfo struct {
	Date       string   `json:"date"`
	CPUs       int      `json:"cpus"`
	CPUModel   string   `json:"cpu_model"`
	Kernel     string   `json:"kernel"`
	GoVersion  string   `json:"go_version"`
	Rounds     int      `json:"rounds"`
	Quick      bool     `json:"quick"`
	DurationS  float64  `json:"measurement_s"`
	Groups     []string `json:"groups"`
	ElapsedSec float64  `json:"elapsed_s"`
	Note       string   `json:"note"`

	OthersCPUPctBefore float64 `json:"others_cpu_pct_before"`
	LoadAvgStart       string  `json:"loadavg_start"`
	LoadAvgEnd         string  `json:"loadavg_end"`
}

func machineMeta(s settings, o options) metaInfo {
	m := metaInfo{
		Date: time.Now().Format(time.RFC3339), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Rounds: s.rounds, Quick: o.quick, DurationS: s.d.Seconds(),
		Note: "load generator and servers share the CPUs; nothing is pinned",
	}
	for _, g := range groupOrder {
		if s.groups[g] {
			m.Groups = append(m.Groups, g)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				if i := strings.IndexByte(line, ':'); i >= 0 {
					m.CPUModel = strings.TrimSpace(line[i+1:])
				}
				break
			}
		}
	}
	return m
}

type peerInfo struct {
	Name    string `json:"name"`
	Path    string `json:"path,omitempty"`
	Package string `json:"package,omitempty"`
	Missing string `json:"missing,omitempty"`
}

func (e *env) peerInfo() []peerInfo {
	var out []peerInfo
	for _, p := range e.peers() {
		out = append(out, peerInfo{p.name, p.path, p.pkg, p.missing})
	}
	si := peerInfo{Name: "sockd", Path: e.sockd}
	if e.sockdErr != nil {
		si.Missing = e.sockdErr.Error()
	}
	return append(out, si)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
