//go:build linux

package supervisor

import (
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/internal/linelog"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/spawn"
)

// jobStats are the job's counters: the one source of list, print,
// SIGUSR1 and the metrics (metrics.go).
type jobStats struct {
	accepted, refused, spawned, spawnFailed, exits uint64
	deferred                                       uint64 // starts that waited for fds (parked connections)
	refusedBy                                      [numRefuseReasons]uint64
	exitKinds                                      [numExitKinds]uint64 // process exits by kind (noteExit)
	throttled                                      uint64               // starts the throttle delayed
}

// runJob is the running state of one loaded job. Loop goroutine only.
//
// It holds what every way of serving shares: the definition, the sockets,
// the counters, the history, the limits and the triggers. The way of
// serving itself is srv, one small type per mode (see server).
type runJob struct {
	s      *Supervisor
	def    *job.Job
	tmpl   *spawn.Template
	mode   job.Mode
	logger *zap.Logger      // built on first use: see log
	recs   *linelog.Context // the records' log, built on first use (recLog)
	socks  []*listener.Socket
	stats  jobStats
	hist   history      // for list, print and blame
	limits *limiter     // nil until the first connection or a limit needs it: see limiter
	trig   *jobTriggers // triggers.go: nil for a job without any

	srv      server
	draining []server      // servers of an earlier mode whose connections still run
	next     *redefinition // applied when the main process has exited
	retiring bool          // removed: the job goes once everything it ran has ended
	locals   localAddrs    // see boundLocal
	met      *jobMetrics   // metrics.go: nil until the metrics need it
}

// localAddrs are the TCPLOCALIP/TCPLOCALPORT entries of each listener
// bound to one address (see boundLocal).
type localAddrs map[*listener.Socket][]string

// server is one way of serving a job: a main process that gets the
// sockets or is started without them (mainServer: handoff, inetd wait,
// socketless), a child per connection (connServer: inetd nowait), sockd's
// own services (internalServer) or a proxy in front of a backend
// (proxyServer). Loop goroutine only.
type server interface {
	// activate arms the server after a load, a redefinition or the end of
	// a throttle: it watches the sockets, or starts.
	activate(initial bool)
	// handler serves readiness on sk, or is nil when the loop does not
	// watch sk for this server.
	handler(sk *listener.Socket) handler
	// running counts what a shutdown or a retirement waits for:
	// processes, connections served in sockd, a proxy server.
	running() int
	// mainChild is the main process (or proxy backend), nil when none runs.
	mainChild() *child
	// children are the per-connection children running.
	children() []*child
	// stopAll ends everything the server runs (shutdown, retirement).
	stopAll()
	// phase is the server's part of the job's state (see stateOf).
	phase() serverPhase
	// flushLines writes the rate-limited log lines still owed.
	flushLines()
}

// serverPhase is what a server says about the job's state.
type serverPhase struct {
	mainRunning, mainStopping bool
	mainStarting              bool // a proxy backend that is not ready yet
	throttled                 bool
	hold                      holdReason
}

// redefinition is a changed definition waiting for the main process to
// exit.
type redefinition struct {
	def  *job.Job
	tmpl *spawn.Template
}

// child is one running process.
type child struct {
	p         *spawn.Process
	stopping  bool // sockd sent SIGTERM
	byControl bool // sockd stop asked: KeepAlive still applies
	kill      *loopTimer
	src       netip.Addr  // source address of a per-connection child
	rec       *connRecord // its connection, for the record at its end (records on)
}

func newRunJob(s *Supervisor, j *job.Job, t *spawn.Template) *runJob {
	rj := &runJob{s: s}
	rj.setDef(j, t)
	return rj
}

// log is the job's logger (with the job field). It is built on first use:
// 10,000 idle jobs need no logger each.
func (rj *runJob) log() *zap.Logger {
	if rj.logger == nil {
		rj.logger = rj.s.log.With(zap.String("job", rj.def.Label))
	}
	return rj.logger
}

// recLog is where the job's connection records go (with the job field),
// built on first use like log.
func (rj *runJob) recLog() *linelog.Context {
	if rj.recs == nil {
		rj.recs = rj.s.connLog.With("job", rj.def.Label)
	}
	return rj.recs
}

// setDef makes j the job's definition. A new mode gets a new server; the
// old one drains what it still runs.
func (rj *runJob) setDef(j *job.Job, t *spawn.Template) {
	rj.def = j
	rj.tmpl = t
	rj.logger, rj.recs = nil, nil
	if rj.limits != nil {
		rj.limits.reconfigure(j.Limits, rj.log)
	}
	if m := j.Mode(); rj.srv == nil || m != rj.mode {
		if g := gateOf(rj.srv); g != nil {
			g.reset()
		}
		if rj.srv != nil && rj.srv.running() > 0 {
			rj.draining = append(rj.draining, rj.srv)
		}
		rj.mode = m
		rj.srv = newServer(rj, m)
	}
}

// newServer makes the server of a mode.
func newServer(rj *runJob, m job.Mode) server {
	switch m {
	case job.ModeInetdNowait:
		return newConnServer(rj)
	case job.ModeInternal:
		return newInternalServer(rj)
	case job.ModeProxy:
		return &proxyServer{rj: rj}
	}
	return &mainServer{rj: rj}
}

// main is the main process (or proxy backend), nil when none runs.
func (rj *runJob) main() *child { return rj.srv.mainChild() }

// mainSrv is the job's mainServer, nil for the other modes.
func (rj *runJob) mainSrv() *mainServer {
	ms, _ := rj.srv.(*mainServer)
	return ms
}

// processes counts the job's processes alive now: per-connection
// children, wait-mode or handoff or backend main process.
func (rj *runJob) processes() int {
	n := 0
	for _, sv := range rj.servers() {
		n += len(sv.children())
		if sv.mainChild() != nil {
			n++
		}
	}
	return n
}

// running counts what shutdown and retirement wait for.
func (rj *runJob) running() int {
	n := 0
	for _, sv := range rj.servers() {
		n += sv.running()
	}
	return n
}

// servers are the job's server and those still draining.
func (rj *runJob) servers() []server {
	if len(rj.draining) == 0 {
		return []server{rj.srv}
	}
	return append([]server{rj.srv}, rj.draining...)
}

// ended is called when something a server ran has ended (a process, a
// connection served in sockd, a proxy server). It finishes a retirement, a
// shutdown or the draining of a replaced server, and reports whether sv
// goes on serving: only then does the caller decide what comes next. The
// one place that decides how an end ends the job.
func (rj *runJob) ended(sv server) bool {
	if sv != rj.srv && sv.running() == 0 {
		rj.dropDrained(sv)
	}
	switch {
	case rj.retiring:
		rj.s.retiredDone(rj)
		return false
	case rj.s.shuttingDown:
		rj.s.maybeFinish()
		return false
	}
	return sv == rj.srv
}

func (rj *runJob) dropDrained(sv server) {
	for i, d := range rj.draining {
		if d == sv {
			rj.draining = append(rj.draining[:i], rj.draining[i+1:]...)
			return
		}
	}
}

// closing reports whether the job takes no new work: sockd shuts down or
// the job was removed.
func (rj *runJob) closing() bool { return rj.s.shuttingDown || rj.retiring }

// redefine applies a changed job definition. A running main process is
// stopped first and the new definition takes over when it exits; the
// per-connection children of an inetd job finish their connections.
func (rj *runJob) redefine(j *job.Job, t *spawn.Template) {
	if ps, ok := rj.srv.(*proxyServer); ok {
		ps.stopServer() // restarted under the new definition when it has stopped
	}
	if ms := rj.mainSrv(); ms != nil {
		ms.th.cancel()
	}
	if g := gateOf(rj.srv); g != nil {
		g.endHold()
	}
	if c := rj.main(); c != nil {
		rj.next = &redefinition{j, t}
		rj.stop(c)
		return
	}
	rj.setDef(j, t)
}

// applyNext applies a redefinition that waited for the main process to
// exit, and reports whether there was one.
func (rj *runJob) applyNext() bool {
	n := rj.next
	if n == nil {
		return false
	}
	rj.next = nil
	rj.setDef(n.def, n.tmpl)
	if th := rj.throttle(); th != nil { // the new definition starts at once
		th.forget()
	}
	rj.activate(false)
	return true
}

// retire is called when the job was removed: stop its main process; its
// in-flight connections finish. The job stays known until all exit.
func (rj *runJob) retire() {
	rj.retiring = true
	rj.stopAll()
	rj.unwatchSockets()
	rj.socks = nil
	if rj.running() > 0 {
		rj.s.retired[rj] = struct{}{}
	}
}

// activate arms the job after a (re)load: its triggers, and its server.
func (rj *runJob) activate(initial bool) {
	rj.armTriggers()
	rj.srv.activate(initial)
}

// watchSockets (re)arms every socket the server serves. Level-triggered:
// anything already pending fires at once.
func (rj *runJob) watchSockets() {
	if rj.closing() {
		return
	}
	for _, sk := range rj.socks {
		h := rj.srv.handler(sk)
		if h == nil {
			continue
		}
		if err := rj.s.loop.watch(sk.Fd, h); err != nil {
			rj.log().Error("watch socket", zap.Stringer("socket", sk), zap.Error(err))
		}
	}
}

func (rj *runJob) unwatchSockets() {
	for _, sk := range rj.socks {
		rj.s.loop.unwatch(sk.Fd)
	}
}

// nonBlocking makes a socket that sockd accepts or reads on non-blocking.
func (rj *runJob) nonBlocking(sk *listener.Socket) {
	if err := listener.SetBlocking(sk.Fd, false); err != nil {
		rj.log().Error("set non-blocking", zap.Stringer("socket", sk), zap.Error(err))
	}
}

// stop sends SIGTERM to one child and arms the ExitTimeOut SIGKILL.
func (rj *runJob) stop(c *child) {
	if c.stopping {
		return
	}
	c.stopping = true
	_ = c.p.Signal(unix.SIGTERM)
	if t := rj.def.ExitTimeOut; t > 0 {
		c.kill = rj.s.killAfter(c.p, t, !rj.def.AbandonProcessGroup, rj.log)
	}
}

// killAfter arms the ExitTimeOut kill of a process sent SIGTERM: SIGKILL
// to it (and its process group with group) once t has passed. The caller
// stops the timer when the process exits.
func (s *Supervisor) killAfter(p *spawn.Process, t time.Duration, group bool, log func() *zap.Logger) *loopTimer {
	return s.loop.after(t, func() {
		log().Warn("exit timeout elapsed; killing", zap.Int("pid", p.Pid), zap.Duration("exit_timeout", t))
		_ = p.Signal(unix.SIGKILL)
		if group {
			_ = p.SignalGroup(unix.SIGKILL)
		}
	})
}

// reaped is the common part of a child's exit: its pidfd is gone and its
// ExitTimeOut kill is off.
func (c *child) reaped() {
	fdsFreed() // the child's pidfd
	if c.kill != nil {
		c.kill.Stop()
	}
}

// stopAll stops everything the job runs (its servers, draining ones
// included) and every trigger.
func (rj *runJob) stopAll() {
	rj.disarmTriggers()
	for _, sv := range rj.servers() {
		sv.flushLines()
		sv.stopAll()
	}
	if rj.limits != nil {
		rj.limits.refusals.flush()
	}
}

// signalAll sends sig to every process of the job.
func (rj *runJob) signalAll(sig unix.Signal) int {
	n := 0
	for _, sv := range rj.servers() {
		if c := sv.mainChild(); c != nil && c.p.Signal(sig) == nil {
			n++
		}
		for _, c := range sv.children() {
			if c.p.Signal(sig) == nil {
				n++
			}
		}
	}
	return n
}

// childStatus lists the per-connection children for print.
func (rj *runJob) childStatus() []control.Child {
	var out []control.Child
	for _, sv := range rj.servers() {
		for _, c := range sv.children() {
			ch := control.Child{Pid: c.p.Pid}
			if c.src.IsValid() {
				ch.Source = c.src.String()
			}
			out = append(out, ch)
		}
	}
	return out
}

func (s *Supervisor) retiredDone(rj *runJob) {
	if rj.running() == 0 {
		delete(s.retired, rj)
	}
	s.maybeFinish()
}

// handoffEnv is the environment of a handoff start: sd_listen_fds(3)
// variables (LISTEN_PID is set by spawn in the child), the LAUNCH_
// variables mapping each Sockets key to its fd numbers, and LAUNCH_TIMEOUT.
func handoffEnv(j *job.Job, socks []*listener.Socket) []string {
	names := make([]string, len(socks))
	var groups, vars []string
	fdsOf := map[string][]string{} // by variable: names that differ only in case share one
	for i, sk := range socks {
		g := sk.Endpoint.Group
		names[i] = g
		if len(groups) == 0 || groups[len(groups)-1] != g {
			groups = append(groups, g)
		}
		v := job.LaunchSocketVar(g)
		if _, ok := fdsOf[v]; !ok {
			vars = append(vars, v)
		}
		fdsOf[v] = append(fdsOf[v], itoa(3+i))
	}
	env := []string{
		"LISTEN_FDS=" + itoa(len(socks)),
		"LISTEN_FDNAMES=" + strings.Join(names, ":"),
		"LAUNCH_JOB_LABEL=" + j.Label,
		"LAUNCH_SOCKETS=" + strings.Join(groups, ":"),
		// launchd's check-in hands the job its TimeOut, the idle time after
		// which an on-demand service may exit (sockd watches the sockets
		// again then).
		"LAUNCH_TIMEOUT=" + itoa(int(j.TimeOut/time.Second)),
	}
	for _, v := range vars {
		env = append(env, v+"="+strings.Join(fdsOf[v], ","))
	}
	return env
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
