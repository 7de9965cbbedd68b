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
	"reflect"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/spawn"
)

// Config is what a Supervisor serves.
type Config struct {
	// Load returns the current set of jobs and the problems found while
	// loading them. It is called at start and on every Reload.
	Load func() ([]*job.Job, job.Diags)
	Log  *zap.Logger
	// Notify sends READY=1 (and RELOADING=1/STOPPING=1) to $NOTIFY_SOCKET.
	Notify bool
}

// Supervisor runs jobs. Create it with New and drive it with Run.
type Supervisor struct {
	cfg     Config
	log     *zap.Logger
	loop    *loop
	reg     *listener.Registry
	devnull int
	asRoot  bool
	env     []string

	// loop goroutine only
	jobs         map[string]*runJob
	retired      map[*runJob]struct{} // removed jobs whose processes still run
	shuttingDown bool
	pathTimer    *loopTimer
}

// New prepares a supervisor; nothing is bound until Run.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
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
	return &Supervisor{
		cfg:     cfg,
		log:     cfg.Log,
		loop:    l,
		reg:     listener.NewRegistry(cfg.Log),
		devnull: dn,
		asRoot:  os.Geteuid() == 0,
		env:     os.Environ(),
		jobs:    map[string]*runJob{},
		retired: map[*runJob]struct{}{},
	}, nil
}

// Run loads and binds every job, tells a supervisor it is ready, and serves
// until ctx is cancelled; then it stops accepting, stops every child
// (SIGTERM, SIGKILL after the job's ExitTimeOut), closes every socket,
// removes the Unix socket paths it created and returns.
func (s *Supervisor) Run(ctx context.Context) error {
	loopErr := make(chan error, 1)
	go func() { loopErr <- s.loop.run() }()

	ready := make(chan struct{})
	s.loop.post(func() {
		s.reload(true)
		close(ready)
	})
	select {
	case <-ready:
	case err := <-loopErr:
		return err
	}
	if s.cfg.Notify {
		if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
			s.log.Warn("sd_notify READY=1 failed", zap.Error(err))
		}
	}
	s.log.Info("sockd ready", zap.Int("jobs", s.JobCount()), zap.Int("sockets", s.reg.Len()))

	select {
	case <-ctx.Done():
	case err := <-loopErr:
		return err
	}
	if s.cfg.Notify {
		_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	}
	s.loop.post(s.shutdown)
	err := <-loopErr
	s.loop.close()
	unix.Close(s.devnull)
	return err
}

// Reload re-reads the jobs: added, removed and changed jobs take effect;
// sockets whose definition did not change stay open throughout.
func (s *Supervisor) Reload() {
	s.loop.post(func() {
		if s.shuttingDown {
			return
		}
		if s.cfg.Notify {
			_, _ = daemon.SdNotify(false, daemon.SdNotifyReloading)
		}
		s.reload(false)
		if s.cfg.Notify {
			_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
		}
	})
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
				zap.String("state", rj.state()),
				zap.Uint64("accepted", accepted),
				zap.Uint64("refused", st.refused),
				zap.Uint64("spawned", st.spawned),
				zap.Uint64("spawn_failures", st.spawnFailed),
				zap.Int("running", rj.processes()),
				zap.Int("sockets", len(rj.socks))}, extra...)...)
		}
	})
}

// reload loads the job set and moves the running state to it. Loop only.
func (s *Supervisor) reload(initial bool) {
	t0 := time.Now()
	jobs, diags := s.cfg.Load()
	tLoad := time.Since(t0)
	for _, d := range diags {
		if d.Severity == job.Error {
			s.log.Error(d.String())
		} else {
			s.log.Warn(d.String())
		}
	}

	next := map[string]*job.Job{}
	var enabled []*job.Job
	for _, j := range jobs {
		if j.Disabled {
			s.log.Info("job disabled, not loaded", zap.String("job", j.Label), zap.String("file", j.File))
			continue
		}
		next[j.Label] = j
	}

	// Templates first: a job whose process cannot be described (unknown
	// user, ...) is not loaded and binds nothing.
	tmpls := map[string]*spawn.Template{}
	var build []*job.Job
	for label, j := range next {
		if j.Path == "" && len(j.Argv) == 0 && j.Program == "" && len(j.ProgramArguments) == 0 {
			continue // internal service or external proxy backend
		}
		if old, ok := s.jobs[label]; ok && reflect.DeepEqual(old.def, j) {
			tmpls[label] = old.tmpl
			continue
		}
		build = append(build, j)
	}
	for i, b := range buildTemplates(build, spawn.Options{AsRoot: s.asRoot, BaseEnv: s.env}) {
		j := build[i]
		for _, w := range b.warns {
			s.log.Warn(w, zap.String("job", j.Label), zap.String("file", j.File))
		}
		if b.err != nil {
			s.log.Error("job not loaded", zap.String("job", j.Label), zap.String("file", j.File), zap.Error(b.err))
			delete(next, j.Label)
			continue
		}
		tmpls[j.Label] = b.tmpl
	}
	for _, j := range jobs {
		if next[j.Label] == j {
			enabled = append(enabled, j)
		}
	}

	// Stop watching every socket while the registry changes; the kernel
	// backlog holds clients meanwhile, none is refused.
	tTmpl := time.Since(t0)
	for _, rj := range s.jobs {
		rj.unwatchSockets()
	}
	socks, errs := s.reg.Sync(enabled)
	tSync := time.Since(t0)

	// Removed jobs.
	for label, rj := range s.jobs {
		if _, ok := next[label]; ok {
			continue
		}
		s.log.Info("job removed", zap.String("job", label))
		delete(s.jobs, label)
		rj.retire()
	}

	for _, j := range enabled {
		label := j.Label
		rj, exists := s.jobs[label]
		switch {
		case !exists:
			rj = newRunJob(s, j, tmpls[label])
			s.jobs[label] = rj
			if !initial {
				s.log.Info("job added", zap.String("job", label), zap.String("mode", rj.mode.String()))
			}
		case !reflect.DeepEqual(rj.def, j):
			s.log.Info("job changed", zap.String("job", label))
			rj.redefine(j, tmpls[label])
		}
		rj.socks = socks[label]
		rj.locals = nil
		if err := errs[label]; err != nil {
			what := "job sockets failed; the job serves the sockets that did open, a reload (SIGHUP) retries the others"
			if len(rj.socks) == 0 {
				what = "job sockets failed; the job has no socket open, a reload (SIGHUP) retries"
			}
			s.log.Error(what, zap.String("job", label), zap.Error(err))
		}
	}

	for _, rj := range s.jobs {
		rj.activate(initial)
	}
	s.schedulePathCheck()
	tArm := time.Since(t0)
	// Loading leaves garbage many times the size of what it keeps (plist
	// trees); give it back now rather than carry it as RSS.
	debug.FreeOSMemory()
	s.log.Debug("jobs loaded", zap.Int("jobs", len(s.jobs)),
		zap.Duration("load", tLoad), zap.Duration("templates", tTmpl-tLoad),
		zap.Duration("bind", tSync-tTmpl), zap.Duration("arm", tArm-tSync),
		zap.Duration("free", time.Since(t0)-tArm))
}

// schedulePathCheck polls KeepAlive PathState and OtherJobEnabled
// conditions of idle jobs twice a second while any job has them.
func (s *Supervisor) schedulePathCheck() {
	if s.pathTimer != nil {
		s.pathTimer.Stop()
		s.pathTimer = nil
	}
	need := false
	for _, rj := range s.jobs {
		if len(rj.def.KeepAlive.PathState) > 0 || len(rj.def.KeepAlive.OtherJobEnabled) > 0 {
			need = true
		}
	}
	if !need || s.shuttingDown {
		return
	}
	s.pathTimer = s.loop.after(500*time.Millisecond, func() {
		s.pathTimer = nil
		for _, rj := range s.jobs {
			rj.checkConditions()
		}
		s.schedulePathCheck()
	})
}

// shutdown stops accepting, stops every child and finishes once all are
// reaped. Loop only.
func (s *Supervisor) shutdown() {
	if s.shuttingDown {
		return
	}
	s.shuttingDown = true
	s.log.Info("shutting down")
	if s.pathTimer != nil {
		s.pathTimer.Stop()
	}
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
