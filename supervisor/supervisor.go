//go:build linux

// Package supervisor is sockd's daemon runtime: it binds every job's sockets
// (through package listener), serves them in the job's mode, starts and reaps
// processes (through package spawn), applies throttling, KeepAlive and limits,
// and reloads and shuts down cleanly.
//
// One goroutine owns all job state: a level-triggered epoll loop watching the
// listening sockets and the pidfds of running children. Signals, timers and
// reloads are posted to it as closures. Nothing on the accept -> spawn path
// takes a lock.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/internal/handover"
	"github.com/sockd/sockd/internal/linelog"
	"github.com/sockd/sockd/internal/procrecord"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/spawn"
)

// Config is what a Supervisor serves.
type Config struct {
	// Load returns the current set of jobs and the problems found while
	// loading them. It is called at start and on every Reload.
	Load func() ([]*job.Job, job.Diags)
	// LoadFiles loads job files on their own, as Load loads the sources:
	// bootstrap, and the reloads after it. Without it bootstrap is refused.
	LoadFiles func(files []string) ([]*job.Job, job.Diags)
	// Control is the control socket to serve ("" for none); Overrides the
	// overrides file (sockd disable; "" for none).
	Control   string
	Overrides string
	Log       *zap.Logger
	// Notify sends READY=1 (and RELOADING=1/STOPPING=1) to $NOTIFY_SOCKET,
	// and WATCHDOG=1 when $WATCHDOG_USEC asks for it (watchdog.go).
	Notify bool
	// JournalDir is journald's socket directory when sockd logs to the
	// journal: children's output then goes to journal streams of its
	// own; "" sends it through pipes into sockd's log (output.go).
	JournalDir string
	// ProcsDir holds a record of every main process while it runs
	// (orphans.go); "" keeps none, and a sockd started after this one is
	// killed does not find the processes it left.
	ProcsDir string
	// OnceDir holds the LaunchOnlyOnce records ("" keeps them in memory:
	// a restart of sockd forgets them).
	OnceDir string
	// LogConnections writes a connection record for every job, as the
	// job key SockdLogConnections does for one (records.go).
	LogConnections bool
	// Version is this build's version string (handed to the next image).
	Version string
	// Executable is the binary sockd upgrade re-executes by default, and
	// Args the command line it gets (serve's, without the program name).
	Executable string
	Args       []string
	// Handover is the state an earlier image of this process handed
	// across its in-place upgrade (upgrade.go), nil for a fresh start.
	Handover *handover.State
	// HandoverRead is when Handover was read (the upgrade's phases).
	HandoverRead time.Time
	// Records is where connection records are written: Log's destination
	// and format, without zap's field machinery (cmd/sockd makes it with
	// the logger). Nil: through Log.
	Records *linelog.Writer
	// LoadDomain loads the jobs of the user domain of uid (package
	// domain): its jobs directory when dir is true, and files; the error
	// says why the domain cannot be served at all (no such user). Nil: this
	// sockd serves no user domains.
	LoadDomain func(uid int, dir bool, files []string) ([]*job.Job, job.Diags, error)
	// Metrics is the address of the Prometheus metrics endpoint ("" for
	// none): a loopback TCP address or unix:PATH (metrics.go).
	Metrics string
}

// Supervisor runs jobs. Create it with New and drive it with Run.
type Supervisor struct {
	cfg     Config
	log     *zap.Logger
	connLog *linelog.Writer // connection records (Config.Records)
	loop    *loop
	reg     *listener.Registry
	devnull int
	asRoot  bool
	owner   int // the uid sockd runs as
	env     []string
	procs   processes        // of main processes and proxy backends
	out     *outputs         // children's output (output.go)
	records *procrecord.Book // nil: none (orphans.go)

	// loop goroutine only
	jobs         map[string]*runJob
	retired      map[*runJob]struct{} // removed jobs whose processes still run
	shuttingDown bool
	triggers     *triggers // made on first use (triggers.go)
	// reloadDone, when set (tests), runs on the loop once a reload has
	// been applied.
	reloadDone func()

	sighup   chan struct{} // Reload -> reloader, one pending at most
	ops      chan reloadOp // control requests -> reloader
	loopDone chan struct{} // closed when the loop goroutine returns

	// loop goroutine only, set by each reload
	disabledJobs map[string]*job.Job // loaded but kept off
	stale        map[string]string   // running a last good definition: why

	ctl     ctlState                // the control plane's own state (control.go)
	ctlSrv  *control.Server         // the control socket's server, nil for none (handed over by an upgrade)
	handed  map[string]handover.Job // jobs an upgrade handed over, until each is set up (adopt.go)
	started time.Time               // when this image started (version)
	met     *metricsServer          // the metrics endpoint, nil for none (metrics.go)
}

// New prepares a supervisor; nothing is bound until Run.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Records == nil {
		cfg.Records = linelog.Zap(cfg.Log)
	}
	if cfg.Load == nil {
		return nil, errors.New("supervisor: Config.Load is required")
	}
	l, err := newLoop()
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	dn, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		l.close()
		return nil, fmt.Errorf("supervisor: open /dev/null: %w", err)
	}
	s := &Supervisor{
		cfg:      cfg,
		log:      cfg.Log,
		started:  time.Now(),
		connLog:  cfg.Records,
		loop:     l,
		reg:      listener.NewRegistry(cfg.Log),
		devnull:  dn,
		asRoot:   os.Geteuid() == 0,
		owner:    os.Geteuid(),
		env:      os.Environ(),
		out:      newOutputs(cfg.Log, cfg.JournalDir),
		jobs:     map[string]*runJob{},
		retired:  map[*runJob]struct{}{},
		sighup:   make(chan struct{}, 1),
		ops:      make(chan reloadOp),
		loopDone: make(chan struct{}),
	}
	s.procs = realProcesses{s}
	if err := s.openMetrics(); err != nil {
		l.close()
		unix.Close(dn)
		return nil, err
	}
	return s, nil
}

// Run loads and binds every job, tells a supervisor it is ready, and serves
// until ctx is cancelled; then it stops accepting, stops every child
// (SIGTERM, SIGKILL after the job's ExitTimeOut), closes every socket,
// removes the Unix socket paths it created and returns.
func (s *Supervisor) Run(ctx context.Context) error {
	loopErr := make(chan error, 1)
	go func() {
		loopErr <- s.loop.run()
		close(s.loopDone)
	}()
	s.startWatchdog()
	defer s.out.stop()

	if h := s.cfg.Handover; h != nil {
		s.adoptState(h)
	}
	var ctl *control.Server
	if s.cfg.Control != "" {
		var err error
		if ctl, err = s.listenControl(); err != nil {
			s.loop.post(s.loop.stop)
			<-loopErr
			s.loop.close()
			unix.Close(s.devnull)
			return err
		}
	}
	s.openRecords()
	s.stopLeftovers(ctx)
	if r := s.reload(ctx, reloadOp{}, true); r.err != nil {
		if ctl != nil {
			ctl.Close()
		}
		return s.stopEarly(ctx, loopErr)
	}
	s.onLoop(s.stopHandedLeft)
	stopControl := func() {}
	if ctl != nil {
		s.ctlSrv = ctl
		stopControl = s.serveControl(ctx, ctl)
	}
	stopControl = s.withMetrics(stopControl) // stopped with the control socket
	defer func() { stopControl() }()         // the one still to be called when Run returns
	s.notify(sdReady)
	s.log.Info("sockd ready", zap.Int("jobs", s.JobCount()), zap.Int("sockets", s.reg.Len()))
	if h := s.cfg.Handover; h != nil {
		s.logUpgraded(h)
	}
	freeLoadGarbage()

	rctx, stopReloader := context.WithCancel(ctx)
	defer stopReloader()
	reloaderDone := make(chan struct{})
	go s.reloader(rctx, reloaderDone)
	select {
	case <-ctx.Done():
	case err := <-loopErr:
		stopReloader()
		<-reloaderDone // a reload in hand gives up: the loop is gone
		return err
	}
	stopControl()
	stopControl = func() {}
	stopReloader()
	<-reloaderDone // finishes the reload in hand, if any
	s.notify(sdStopping)
	s.loop.post(s.shutdown)
	err := <-loopErr
	s.loop.close()
	unix.Close(s.devnull)
	return err
}

// stopEarly ends Run when the initial load did not finish: the loop failed,
// or ctx was cancelled first (then whatever was loaded is shut down).
func (s *Supervisor) stopEarly(ctx context.Context, loopErr chan error) error {
	select {
	case err := <-loopErr:
		return err
	default:
	}
	s.loop.post(s.shutdown)
	err := <-loopErr
	s.loop.close()
	unix.Close(s.devnull)
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// sd_notify states.
const (
	sdReady     = daemon.SdNotifyReady
	sdReloading = daemon.SdNotifyReloading
	sdStopping  = daemon.SdNotifyStopping
)

// notify sends a state to the service manager when Config.Notify is set.
func (s *Supervisor) notify(state string) {
	if !s.cfg.Notify {
		return
	}
	if _, err := daemon.SdNotify(false, state); err != nil && state == sdReady {
		s.log.Warn("sd_notify READY=1 failed", zap.Error(err))
	}
}

// JobCount returns how many jobs are loaded (safe from any goroutine).
func (s *Supervisor) JobCount() int {
	ch := make(chan int, 1)
	s.loop.post(func() { ch <- len(s.jobs) })
	select {
	case n := <-ch:
		return n
	case <-time.After(5 * time.Second):
		return -1
	}
}

// LogStats writes one summary line per job: connections accepted and
// refused, children spawned and running (sockd does this on SIGUSR1).
func (s *Supervisor) LogStats() {
	s.loop.post(func() {
		labels := make([]string, 0, len(s.jobs))
		for l := range s.jobs {
			labels = append(labels, l)
		}
		sort.Strings(labels)
		for _, l := range labels {
			rj := s.jobs[l]
			st := rj.stats
			accepted, extra := rj.proxyStats(st.accepted)
			s.log.Info("job stats", append([]zap.Field{
				zap.String("job", l),
				zap.String("mode", rj.mode.String()),
				zap.String("state", rj.stateText()),
				zap.Uint64("accepted", accepted),
				zap.Uint64("refused", st.refused),
				zap.Uint64("spawned", st.spawned),
				zap.Uint64("spawn_failures", st.spawnFailed),
				zap.Uint64("throttled", st.throttled),
				zap.Int("running", rj.processes()),
				zap.Int("sockets", len(rj.socks))}, extra...)...)
		}
		for _, l := range sortedKeys(s.disabledJobs) {
			s.log.Info("job stats", zap.String("job", l), zap.String("mode", s.disabledJobs[l].Mode().String()),
				zap.String("state", stateDisabled.String()))
		}
	})
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// shutdown stops accepting, stops every child and finishes once all are
// reaped. Loop only.
func (s *Supervisor) shutdown() {
	if s.shuttingDown {
		return
	}
	s.shuttingDown = true
	s.log.Info("shutting down")
	for _, rj := range s.jobs {
		rj.unwatchSockets()
		rj.stopAll()
	}
	for rj := range s.retired {
		rj.stopAll()
	}
	s.maybeFinish()
}

// maybeFinish ends the loop once no child is left. Loop only.
func (s *Supervisor) maybeFinish() {
	if !s.shuttingDown {
		return
	}
	for _, rj := range s.jobs {
		if rj.running() > 0 {
			return
		}
	}
	for rj := range s.retired {
		if rj.running() > 0 {
			return
		}
	}
	s.triggers.close()
	if err := s.reg.CloseAll(); err != nil {
		s.log.Warn("closing sockets", zap.Error(err))
	}
	s.log.Info("all children exited, sockets closed")
	s.loop.stop()
}

// watchChild registers a child's pidfd; onExit runs on the loop once the
// child has exited and been reaped. The process group is signalled before
// the reap (while the zombie still pins the group id) unless the job
// abandons it.
func (s *Supervisor) watchChild(p *spawn.Process, abandonGroup bool, onExit func(spawn.ExitStatus)) {
	fd := p.Pidfd()
	var h handlerFunc
	h = func(uint32) {
		if !abandonGroup {
			_ = p.SignalGroup(unix.SIGTERM)
		}
		s.loop.unwatch(fd) // before Reap closes the pidfd
		st, done, err := p.Reap()
		if err != nil {
			s.log.Error("reaping child", zap.Int("pid", p.Pid), zap.Error(err))
			return
		}
		if !done { // spurious wake-up: keep watching
			if err := s.loop.watch(fd, h); err != nil {
				s.log.Error("watching child", zap.Int("pid", p.Pid), zap.Error(err))
			}
			return
		}
		onExit(st)
	}
	if err := s.loop.watch(fd, h); err != nil {
		s.log.Error("watching child", zap.Int("pid", p.Pid), zap.Error(err))
	}
}

type built struct {
	tmpl  *spawn.Template
	warns []string
	err   error
}

// buildTemplates builds the process templates of jobs in parallel (one
// worker per CPU); the results are in the order of jobs.
func buildTemplates(jobs []*job.Job, opts spawn.Options) []built {
	out := make([]built, len(jobs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0) && w < len(jobs); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				t, warns, err := spawn.NewTemplate(jobs[i], opts)
				out[i] = built{t, warns, err}
			}
		}()
	}
	wg.Wait()
	return out
}
