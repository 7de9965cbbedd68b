package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/domain"
	"github.com/sockd/sockd/internal/handover"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/jobset"
	"github.com/sockd/sockd/spawn"
	"github.com/sockd/sockd/supervisor"
)

func init() {
	register(withFlags(command{
		name:     "serve",
		summary:  "bind every job's sockets and serve them (the daemon)",
		synopsis: "[--jobs DIR]... [--inetd-conf FILE]... [--xinetd FILE|DIR]... [--systemd DIR|UNIT]... [--control PATH] [--overrides FILE] [--once-dir DIR] [--log-connections] [--metrics ADDR] [--domain-ports user/UID=PORTS]... [--log-format auto|console|json|journal] [--log-level debug|info|warn|error]",
		about: "Binds every job's sockets and serves them until SIGTERM or SIGINT: the daemon. " +
			"SIGHUP reloads every source (as sockd reload does), SIGUSR1 logs one line of figures per job, SIGUSR2 upgrades in place (as sockd upgrade does). " +
			"The jobs load as sockd check loads them: what check calls valid is what serve loads. " +
			"Every serve answers the control commands (sockd list, stop, ...) on its control socket.\n\n" +
			"Logs go to stderr, or to the journal with priorities and fields when stderr is the journal ($JOURNAL_STREAM) or with --log-format journal. " +
			"A handoff service's or proxy backend's output, when its job names no file, is logged as records of its job (or goes to the journal under its label). " +
			"When $NOTIFY_SOCKET is set (systemd Type=notify), " +
			"sockd sends READY=1 once every socket is bound, RELOADING=1 and READY=1 around a reload, and STOPPING=1 on shutdown, " +
			"and WATCHDOG=1 from its event loop every third of $WATCHDOG_USEC (WatchdogSec=).",
	}, (*serveFlags).define, func(sf *serveFlags, pos []string) error {
		if len(pos) > 0 {
			return usageError(fmt.Errorf("serve: unexpected argument %q", pos[0]))
		}
		sf.finish()
		return serve(sf)
	}))
}

// serveFlags are serve's command line.
type serveFlags struct {
	sources             jobset.Sources
	logFormat, logLevel string
	control, overrides  string
	onceDir             string
	logConnections      bool
	metrics             string
	dirs, inetd, xinetd stringsFlag
	systemd             stringsFlag
	domainPorts         domainPortsFlag
}

// define defines serve's flags on fs.
func (sf *serveFlags) define(fs *flag.FlagSet, d defaults) {
	fs.Var(&sf.dirs, "jobs", "job directory or file `DIR` (repeatable; a file may be an inetd.conf or xinetd file; default: "+d.jobDirs+")")
	fs.Var(&sf.inetd, "inetd-conf", "an inetd.conf `FILE` to serve beside the jobs (repeatable; reloaded on SIGHUP)")
	fs.Var(&sf.xinetd, "xinetd", "an xinetd.conf file or xinetd.d directory (`FILE|DIR`) to serve beside the jobs (repeatable; reloaded on SIGHUP)")
	fs.Var(&sf.systemd, "systemd", "a systemd socket unit or a directory of units (`DIR|UNIT`) to serve beside the jobs, each socket unit with its service and drop-ins (repeatable; reloaded on SIGHUP)")
	fs.StringVar(&sf.logFormat, "log-format", "auto", "log format, `auto|console|json|journal` (auto: journal when stderr is the journal, else console; console is coloured on a terminal; journal: journald's native protocol, with priorities and fields)")
	fs.StringVar(&sf.logLevel, "log-level", "info", "log level, `debug|info|warn|error` (per-connection child exits are logged at debug)")
	fs.StringVar(&sf.control, "control", d.control, "the control socket `PATH` to serve (\"\" for none): sockd list, stop, ... talk to it")
	fs.StringVar(&sf.overrides, "overrides", d.overrides, "the overrides `FILE` that sockd disable and enable write")
	fs.BoolVar(&sf.logConnections, "log-connections", false, "log one record per connection, datagram or UDP flow sockd serves, at its end, and per refusal by a limit, for every job (a job asks for them with SockdLogConnections); records hold client addresses, which are personal data")
	fs.StringVar(&sf.metrics, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics: a loopback address (127.0.0.1:9477, [::1]:9477) or unix:PATH; nothing wider (default: none)")
	fs.Var(&sf.domainPorts, "domain-ports", "let the user domain user/UID bind these ports below net.ipv4.ip_unprivileged_port_start: `user/UID=PORTS`, PORTS a comma-separated list (repeatable; root's sockd; nothing a user writes can widen a domain)")
	fs.StringVar(&sf.onceDir, "once-dir", "", "where the LaunchOnlyOnce records go, a `DIR` a reboot should empty (default: once/ beside the control socket, /run/sockd/once for root)")
}

// finish fills in what the flags leave to the defaults.
func (sf *serveFlags) finish() {
	if len(sf.dirs) == 0 {
		sf.dirs = defaultJobDirs()
	}
	sf.sources = jobset.Sources{Paths: sf.dirs, Inetd: sf.inetd, Xinetd: sf.xinetd, Systemd: sf.systemd}
	sf.onceDir = onceDir(sf.onceDir, sf.control)
}

// parseServe parses serve's flags; the sources default to
// defaultJobDirs().
func parseServe(args []string) (serveFlags, error) {
	var sf serveFlags
	fs := commands["serve"].flagSet(func(fs *flag.FlagSet) { sf.define(fs, here()) })
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return serveFlags{}, usageError(err)
	}
	if len(pos) > 0 {
		return serveFlags{}, usageError(fmt.Errorf("serve: unexpected argument %q", pos[0]))
	}
	sf.finish()
	return sf, nil
}

// onceDir is where the LaunchOnlyOnce records go: dir, or once/ beside
// the control socket (the default one when serve has none), a run-time
// directory that a reboot empties.
func onceDir(dir, ctl string) string {
	if dir != "" {
		return dir
	}
	if ctl == "" {
		ctl = control.DefaultPath(os.Geteuid())
	}
	return filepath.Join(filepath.Dir(ctl), "once")
}

// procsDir is where the records of running main processes go: procs/
// beside the control socket (/run/sockd/procs for root), whose sockd alone
// may act on them; none without a control socket.
func procsDir(ctl string) string {
	if ctl == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(ctl), "procs")
}

func serve(sf *serveFlags) error {
	if err := ensureStdio(); err != nil {
		return err
	}
	// Before any socket exists: low fd slots let each start share sockd's
	// fd table instead of copying it (matters with thousands of sockets).
	if err := spawn.ReserveLowFds(); err != nil {
		fmt.Fprintln(os.Stderr, "sockd: warning:", err)
	}
	// Exits are learnt from pidfds; SIGCHLD would only wake a thread per
	// exit (and, if inherited ignored, make the kernel reap children).
	if err := spawn.QuietChildExits(); err != nil {
		fmt.Fprintln(os.Stderr, "sockd: warning:", err)
	}
	first := preload(sf.sources) // the files are read beside the rest of the start
	handed, handErr := handover.FromEnv()
	handedAt := time.Now()
	out, err := openLog(sf.logFormat, sf.logLevel)
	if err != nil {
		return usageError(err)
	}
	log := out.log
	if handErr != nil && !errors.Is(handErr, handover.ErrNone) {
		// The upgrade's check read this state; an image that cannot is
		// a fresh start: what was inherited is closed, and the
		// processes left are stopped as after an unclean exit.
		n := closeInherited()
		log.Error("upgrade: the handed state is not readable: starting afresh (the services it ran are stopped, then started again as their jobs say)",
			zap.Error(handErr), zap.Int("inherited_fds_closed", n))
		handed = nil
	}
	exe, _ := os.Executable()
	if sf.metrics != "" {
		if err := supervisor.CheckMetricsAddr(sf.metrics); err != nil {
			return usageError(fmt.Errorf("--metrics %w", err))
		}
	}
	defer func() { _ = log.Sync() }()

	var loadDomain func(int, bool, []string) ([]*job.Job, job.Diags, error)
	if os.Geteuid() == 0 {
		loadDomain = domainLoader(log, sf.domainPorts)
	}
	sup, err := supervisor.New(supervisor.Config{
		Load:       firstFrom(first, sf.sources, log),
		LoadFiles:  func(files []string) ([]*job.Job, job.Diags) { return serveLoader(jobset.Sources{Paths: files}, log)() },
		LoadDomain: loadDomain,
		Control:    sf.control, Overrides: sf.overrides, OnceDir: sf.onceDir, ProcsDir: procsDir(sf.control),
		LogConnections: sf.logConnections, Metrics: sf.metrics,
		Log: log, Records: out.records, Notify: true, JournalDir: out.journalDir,
		Version: versionString(), Executable: exe, Args: os.Args[1:], Handover: handed, HandoverRead: handedAt})
	if err != nil {
		return err
	}

	// SIGPIPE is ignored: sockd writes to sockets whose peers vanish. The
	// spawn package resets every signal disposition in children.
	signal.Ignore(syscall.SIGPIPE)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for sig := range sigs {
			switch sig {
			case syscall.SIGHUP:
				log.Info("SIGHUP: reloading jobs")
				sup.Reload()
			case syscall.SIGUSR1:
				sup.LogStats()
			case syscall.SIGUSR2:
				log.Info("SIGUSR2: upgrading in place")
				go func() { _ = sup.Upgrade(ctx, "", "SIGUSR2") }() // a refusal is logged
			default:
				log.Info("signal received; shutting down", zap.Stringer("signal", sig))
				cancel()
				return
			}
		}
	}()
	log.Info("sockd starting", zap.Strings("jobs", sf.sources.Paths), zap.String("version", versionString()))
	return sup.Run(ctx)
}

// serveLoader is serve's Config.Load: the job-set loader (the one check
// and print use) for a sockd running as this process, at start and on
// every SIGHUP. A job directory that does not exist is only a warning.
func serveLoader(src jobset.Sources, log *zap.Logger) func() ([]*job.Job, job.Diags) {
	return func() ([]*job.Job, job.Diags) { return loaded(loadSet(src), log) }
}

// loadSet is serveLoader's load, without the logging.
func loadSet(src jobset.Sources) *jobset.Set {
	opts := jobset.ForThisProcess()
	opts.MissingOK = true
	return jobset.Load(src, opts)
}

// loaded is set as serveLoader returns it, its info lines logged.
func loaded(set *jobset.Set, log *zap.Logger) ([]*job.Job, job.Diags) {
	return set.Jobs, logInfos(log, set.Diags)
}

// preload starts serve's first load of the job set at once, beside what
// the daemon does before it needs a job (the log, adopting what an upgrade
// handed over, the control socket, leftovers): the files are read on the
// other CPUs meanwhile. The goroutine ends with the load; its result waits
// in the channel for firstFrom.
func preload(src jobset.Sources) <-chan *jobset.Set {
	c := make(chan *jobset.Set, 1)
	go func() { c <- loadSet(src) }()
	return c
}

// firstFrom is serveLoader whose first call takes the set pre loads;
// every later call (a reload) reads the sources again.
func firstFrom(pre <-chan *jobset.Set, src jobset.Sources, log *zap.Logger) func() ([]*job.Job, job.Diags) {
	again := serveLoader(src, log)
	var taken atomic.Bool
	return func() ([]*job.Job, job.Diags) {
		if taken.CompareAndSwap(false, true) {
			return loaded(<-pre, log)
		}
		return again()
	}
}

// domainLoader is root's Config.LoadDomain: a user domain's jobs, through
// the same loader, judged for the user (package domain).
func domainLoader(log *zap.Logger, ports domainPortsFlag) func(uid int, dir bool, files []string) ([]*job.Job, job.Diags, error) {
	return func(uid int, dir bool, files []string) ([]*job.Job, job.Diags, error) {
		d, err := domain.Lookup(uid)
		if err != nil {
			return nil, nil, err
		}
		d.Ports = ports[uid]
		set := domain.Load(d, dir, files, jobset.ForThisProcess())
		return set.Jobs, logInfos(log, set.Diags), nil
	}
}

// logInfos logs the info lines of diags (a job this host does not load:
// LimitLoadToHosts, LimitLoadFromHosts) at info level and returns the
// others, which the supervisor logs as errors and warnings.
func logInfos(log *zap.Logger, diags job.Diags) job.Diags {
	var rest job.Diags
	for _, d := range diags {
		if d.Severity == job.Info {
			log.Info(d.String())
			continue
		}
		rest = append(rest, d)
	}
	return rest
}

// ensureStdio opens /dev/null on any of fds 0, 1 and 2 that is closed, so
// that no socket or file sockd opens later takes one of those numbers and
// leaks into children as their stdio (handoff children get sockd's fds 1
// and 2).
func ensureStdio() error {
	for fd := 0; fd <= 2; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			continue
		}
		nfd, err := unix.Open("/dev/null", unix.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("serve: fd %d is closed and /dev/null cannot be opened: %w", fd, err)
		}
		if nfd != fd {
			unix.Close(nfd) // a lower fd was closed too and got it; loop order fills them
		}
	}
	return nil
}

// domainPortsFlag is --domain-ports: the privileged ports each user
// domain may bind, by uid.
type domainPortsFlag map[int][]int

func (f *domainPortsFlag) String() string {
	var parts []string
	for uid, ports := range *f {
		ps := make([]string, len(ports))
		for i, p := range ports {
			ps[i] = strconv.Itoa(p)
		}
		parts = append(parts, domain.Name(uid)+"="+strings.Join(ps, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func (f *domainPortsFlag) Set(v string) error {
	name, list, ok := strings.Cut(v, "=")
	uid, okd := domain.Parse(name)
	if !ok || !okd || uid < 0 || list == "" {
		return fmt.Errorf("%q: want user/UID=PORT[,PORT...]", v)
	}
	if *f == nil {
		*f = domainPortsFlag{}
	}
	for _, p := range strings.Split(list, ",") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: %q is not a port (1 to 65535)", v, p)
		}
		(*f)[uid] = append((*f)[uid], n)
	}
	return nil
}
