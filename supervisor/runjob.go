//go:build linux

package supervisor

import (
	"net/netip"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/proxy"
	"github.com/sockd/sockd/spawn"
)

// minRetry is the shortest delay before retrying a start that failed or a
// wait-mode child that left its input unread, even with ThrottleInterval 0:
// sockd never spins.
const minRetry = time.Second

type jobStats struct {
	accepted, refused, spawned, spawnFailed, exits uint64
	deferred                                       uint64 // starts that waited for fds (parked connections)
}

// runJob is the running state of one loaded job. Loop goroutine only.
type runJob struct {
	s      *Supervisor
	def    *job.Job
	tmpl   *spawn.Template
	mode   job.Mode
	logger *zap.Logger // built on first use: see log
	socks  []*listener.Socket
	stats  jobStats
	hist   history    // for list, print and blame
	kick   *kickstart // a kickstart -k waiting for the main process to exit
	wanted string     // a sockd start the throttle delays: who asked

	// The main process of a handoff, wait-mode or socketless job.
	main          *child
	lastStart     time.Time // monotonic, of the last start attempt
	retryTimer    *loopTimer
	demandStarted bool // started once by socket activity
	failLogged    time.Time
	waitMark      pendingMark
	waitDgram     bool
	nextDef       *job.Job // redefinition applied when main exits
	nextTmpl      *spawn.Template
	retiring      bool

	// Per-connection children of an inetd-nowait job.
	conns       map[int]*child
	acceptHold  string // why accepting is paused ("" = accepting)
	holdTimer   *loopTimer
	backoff     time.Duration
	exhaust     *exhaustion       // accepting paused for lack of resources; nil until it first is
	parked      *parkedConn       // accepted, waiting for fds to be started (see park)
	startFails  *startFailures    // per-connection starts that failed; nil until one does
	maxChildren *maxChildrenLines // MaxChildren reached; nil until it first is
	limits      *limiter
	locals      map[*listener.Socket][]string // see boundLocal

	// Internal-service state (ModeInternal).
	in *internalState
	// Triggers (triggers.go): nil for a job without any.
	trig *jobTriggers
	// Proxy state (ModeProxy).
	px       *proxyState
	pxDone   proxy.Stats // counters of the proxy servers that ended
	proxyEnv []string
}

// child is one running process.
type child struct {
	p         *spawn.Process
	stopping  bool // sockd sent SIGTERM
	byControl bool // sockd stop asked: KeepAlive still applies
	kill      *loopTimer
	src       netip.Addr // source address of a per-connection child
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

func (rj *runJob) setDef(j *job.Job, t *spawn.Template) {
	rj.def = j
	rj.tmpl = t
	rj.mode = j.Mode()
	rj.logger = nil
	if rj.limits == nil {
		rj.limits = newLimiter(j.Limits, rj.log)
	} else {
		rj.limits.reconfigure(j.Limits, rj.log)
	}
}

// processes counts the job's processes alive now: per-connection
// children, wait-mode or handoff or backend main process.
func (rj *runJob) processes() int {
	return rj.running() - rj.proxyRunning()
}

// running counts what shutdown and retirement wait for: processes, and a
// proxy server that has not returned yet.
func (rj *runJob) running() int {
	n := len(rj.conns)
	if rj.in != nil {
		n += rj.in.active
	}
	n += rj.proxyRunning()
	if rj.main != nil {
		n++
	}
	return n
}

// redefine applies a changed job definition. A running main process is
// stopped first and the new definition takes over when it exits; the
// per-connection children of an inetd job finish their connections.
func (rj *runJob) redefine(j *job.Job, t *spawn.Template) {
	rj.stopRetry()
	if rj.mode == job.ModeProxy {
		rj.stopProxy() // restarted under the new definition when it has stopped
	}
	if rj.main != nil {
		rj.nextDef, rj.nextTmpl = j, t
		rj.stop(rj.main)
		return
	}
	rj.setDef(j, t)
}

// retire is called when the job was removed: stop its main process; its
// in-flight connections finish. The job stays known until all exit.
func (rj *runJob) retire() {
	rj.retiring = true
	rj.logPending()
	rj.disarmTriggers()
	rj.stopRetry()
	rj.dropParked()
	rj.stopInternal()
	rj.stopProxy()
	rj.unwatchSockets()
	rj.socks = nil
	if rj.main != nil {
		rj.stop(rj.main)
	}
	if rj.running() > 0 {
		rj.s.retired[rj] = struct{}{}
	}
}

// logPending writes the rate-limited lines still owed (refusals, accept
// and start failures) before the job goes.
func (rj *runJob) logPending() {
	if rj.limits != nil {
		rj.limits.refusals.flush()
	}
	if rj.exhaust != nil {
		rj.exhaust.lines.flush()
	}
	if rj.startFails != nil {
		rj.startFails.lines.flush()
	}
	if rj.maxChildren != nil {
		rj.maxChildren.lines.flush()
	}
}

func (rj *runJob) stopRetry() {
	if rj.retryTimer != nil {
		rj.retryTimer.Stop()
		rj.retryTimer = nil
	}
	if rj.holdTimer != nil {
		rj.holdTimer.Stop()
		rj.holdTimer = nil
	}
	unwaitFds(rj)
	rj.acceptHold = ""
}

// activate arms the job after a (re)load: its triggers, and watch its
// sockets or start it.
func (rj *runJob) activate(initial bool) {
	rj.armTriggers()
	if rj.main != nil || rj.retryTimer != nil {
		return // running or throttled: it re-arms when that ends
	}
	switch rj.mode {
	case job.ModeInetdNowait, job.ModeInternal:
		// A connection parked before a redefinition is served first.
		if rj.acceptHold == "" && rj.parkedServed() {
			rj.watchSockets()
		}
		return
	case job.ModeProxy:
		rj.dropParked()
		rj.activateProxy()
		return
	}
	rj.dropParked() // redefined as a job that takes no connections from sockd
	if initial || rj.lastStart.IsZero() {
		if rj.def.RunAtLoad || rj.def.KeepAlive.ImpliesRunAtLoad() {
			rj.start("run at load", nil)
			return
		}
	}
	if rj.wantsKeepAlive(nil) {
		rj.start("keep alive", nil)
		return
	}
	rj.watchSockets()
}

// watchSockets (re)arms every socket of the job. Level-triggered: anything
// already pending fires at once.
func (rj *runJob) watchSockets() {
	if rj.s.shuttingDown || rj.retiring {
		return
	}
	for _, sk := range rj.socks {
		sk := sk
		var h handler
		switch rj.mode {
		case job.ModeInetdNowait:
			if !sk.Listening {
				continue
			}
			if err := listener.SetBlocking(sk.Fd, false); err != nil {
				rj.log().Error("set non-blocking", zap.Stringer("socket", sk), zap.Error(err))
			}
			h = handlerFunc(func(uint32) { rj.acceptReady(sk) })
		case job.ModeInetdWait, job.ModeHandoff:
			h = handlerFunc(func(uint32) { rj.demand(sk) })
		case job.ModeInternal:
			if err := listener.SetBlocking(sk.Fd, false); err != nil {
				rj.log().Error("set non-blocking", zap.Stringer("socket", sk), zap.Error(err))
			}
			h = handlerFunc(func(uint32) { rj.internalReady(sk) })
		default:
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

// demand is activity on a socket of a wait-mode or handoff job.
func (rj *runJob) demand(sk *listener.Socket) {
	rj.demandStarted = true
	rj.start("socket activity on "+sk.Addr, sk)
}

// start starts the main process, unless it is running or must wait for the
// throttle. trigger is the ready socket for wait-mode jobs.
func (rj *runJob) start(why string, trigger *listener.Socket) {
	if rj.main != nil || rj.s.shuttingDown || rj.retiring {
		return
	}
	rj.unwatchSockets()
	if !rj.onceAllows(why) {
		return // LaunchOnlyOnce: started this boot already
	}
	if rj.mode == job.ModeHandoff || rj.mode == job.ModeNone {
		if wait := rj.throttleLeft(rj.def.ThrottleInterval); wait > 0 {
			rj.logThrottled(why, wait)
			rj.retryAfter(wait)
			return
		}
	}
	if rj.mode == job.ModeInetdWait && trigger == nil {
		// Woken by a timer or KeepAlive: wait for input instead.
		rj.watchSockets()
		return
	}
	if !rj.onceClaim(why) {
		return
	}

	var fds []int
	var env []string
	listenPID := false
	switch rj.mode {
	case job.ModeInetdWait:
		fd := trigger.Fd
		if err := listener.SetBlocking(fd, true); err != nil {
			rj.log().Warn("set blocking", zap.Stringer("socket", trigger), zap.Error(err))
		}
		rj.waitDgram = !trigger.Listening
		rj.waitMark = markPending(fd, rj.waitDgram)
		fds = []int{fd, fd, fd}
		env = []string{"LAUNCH_JOB_LABEL=" + rj.def.Label}
	case job.ModeHandoff:
		fds = []int{rj.s.devnull, 1, 2}
		for _, sk := range rj.socks {
			if err := listener.SetBlocking(sk.Fd, true); err != nil {
				rj.log().Warn("set blocking", zap.Stringer("socket", sk), zap.Error(err))
			}
			fds = append(fds, sk.Fd)
		}
		env = handoffEnv(rj.def, rj.socks)
		listenPID = true
	default:
		fds = []int{rj.s.devnull, 1, 2}
		env = []string{"LAUNCH_JOB_LABEL=" + rj.def.Label}
	}

	rj.lastStart = time.Now()
	p, err := startWithFds(func() (*spawn.Process, error) { return rj.tmpl.Start(fds, env, listenPID) })
	if err != nil {
		rj.onceRelease()
		rj.stats.spawnFailed++
		rj.hist.startFailed(err)
		delay := rj.def.ThrottleInterval
		if delay < minRetry {
			delay = minRetry
		}
		if time.Since(rj.failLogged) >= delay {
			rj.failLogged = time.Now()
			rj.log().Error("cannot start job; retrying", zap.Error(err), zap.Duration("retry_in", delay))
		}
		rj.retryAfter(delay)
		return
	}
	rj.stats.spawned++
	rj.hist.started(why)
	rj.failLogged = time.Time{}
	c := &child{p: p}
	rj.main = c
	rj.triggersStarted()
	rj.log().Info("started", zap.Int("pid", p.Pid), zap.String("reason", why))
	for _, w := range p.Warnings {
		// launchd runs the job anyway; say where its output goes instead.
		rj.log().Warn("a standard path could not be opened: the job got sockd's own descriptor there (sockd's log, or /dev/null for input)",
			zap.Int("pid", p.Pid), zap.Error(w))
	}
	rj.s.watchChild(p, rj.def.AbandonProcessGroup, func(st spawn.ExitStatus) { rj.mainExited(c, st) })
}

// logThrottled says that the throttle delays a start: a warning, except
// for a start a trigger asked for (a StartInterval under ThrottleInterval
// would warn at every period; loading warned once).
func (rj *runJob) logThrottled(why string, wait time.Duration) {
	log := rj.log().Warn
	if rj.isTriggerStart(why) {
		log = rj.log().Debug
	}
	log("respawning too fast: next start delayed",
		zap.Duration("next_start_in", wait.Round(100*time.Millisecond)),
		zap.Duration("throttle_interval", rj.def.ThrottleInterval),
		zap.String("reason", why))
}

// throttleLeft is how long a start must still wait so that two starts are
// at least interval apart (monotonic clock).
func (rj *runJob) throttleLeft(interval time.Duration) time.Duration {
	if rj.lastStart.IsZero() || interval <= 0 {
		return 0
	}
	return interval - time.Since(rj.lastStart)
}

// retryAfter re-arms the job after d: a KeepAlive job is started, an
// on-demand job watches its sockets again (and starts if demand is still
// there). Unlike launchd, a throttled start with no demand left does not run.
func (rj *runJob) retryAfter(d time.Duration) {
	rj.stopRetry()
	rj.retryTimer = rj.s.loop.after(d, func() {
		rj.retryTimer = nil
		if rj.s.shuttingDown || rj.retiring || rj.main != nil {
			return
		}
		if why := rj.wanted; why != "" { // sockd start, throttled
			rj.wanted = ""
			rj.start(why, rj.controlTrigger())
			return
		}
		if why := rj.pendingStart(); why != "" {
			rj.start(why, rj.controlTrigger())
			return
		}
		if rj.mode == job.ModeNone || rj.wantsKeepAlive(nil) || (rj.lastStart.IsZero() && (rj.def.RunAtLoad || rj.def.KeepAlive.ImpliesRunAtLoad())) {
			rj.start("retry", nil)
			return
		}
		rj.watchSockets()
	})
}

// mainExited handles the exit of the main process. Loop only.
func (rj *runJob) mainExited(c *child, st spawn.ExitStatus) {
	fdsFreed() // the child's pidfd
	if c.kill != nil {
		c.kill.Stop()
	}
	rj.main = nil
	rj.stats.exits++
	rj.hist.exited(st)
	ran := time.Since(c.p.Started)
	fields := []zap.Field{zap.Int("pid", c.p.Pid), zap.Stringer("status", st), zap.Duration("ran", ran.Round(time.Millisecond))}
	switch {
	case c.stopping || st.Success():
		rj.log().Info("exited", fields...)
	case st.Crashed():
		rj.log().Warn("exited: crashed", fields...)
	default:
		rj.log().Warn("exited", fields...)
	}

	if rj.mode == job.ModeProxy {
		rj.proxyExited()
	}
	if rj.retiring {
		rj.s.retiredDone(rj)
		return
	}
	if rj.nextDef != nil {
		rj.setDef(rj.nextDef, rj.nextTmpl)
		rj.nextDef, rj.nextTmpl = nil, nil
		rj.lastStart = time.Time{}
		rj.activate(false)
		return
	}
	if rj.s.shuttingDown {
		rj.s.maybeFinish()
		return
	}
	if rj.kicked() {
		return
	}

	switch rj.mode {
	case job.ModeProxy:
		return // the proxy server starts the backend again on demand
	case job.ModeInetdWait:
		after := rj.waitMarkNow()
		if unread(rj.waitMark, after) {
			wait := rj.throttleLeft(maxDur(rj.def.ThrottleInterval, minRetry))
			if wait < 100*time.Millisecond {
				wait = 100 * time.Millisecond
			}
			rj.log().Warn("wait-mode child exited leaving its request unread; throttling so it does not restart in a loop",
				zap.Duration("ran", ran.Round(time.Millisecond)),
				zap.Duration("next_start_in", wait.Round(100*time.Millisecond)))
			rj.retryAfter(wait)
			return
		}
		rj.watchSockets()
	default:
		if rj.wantsKeepAlive(&st) && (!c.stopping || c.byControl) {
			rj.start("keep alive after exit ("+st.String()+")", nil)
			return
		}
		if (!c.stopping || c.byControl) && rj.queueAfterExit() {
			return
		}
		rj.watchSockets()
	}
}

// waitMarkNow fingerprints the wait-mode socket the last child was given.
func (rj *runJob) waitMarkNow() pendingMark {
	for _, sk := range rj.socks {
		if (!sk.Listening) == rj.waitDgram && isReadable(sk.Fd) {
			return markPending(sk.Fd, rj.waitDgram)
		}
	}
	return pendingMark{ok: true}
}

// wantsKeepAlive evaluates KeepAlive as launchd does: the conditions are
// ORed. st is the last exit (nil when not evaluating an exit).
func (rj *runJob) wantsKeepAlive(st *spawn.ExitStatus) bool {
	k := rj.def.KeepAlive
	if rj.s.shuttingDown || rj.retiring {
		return false
	}
	if k.AfterInitialDemand && !rj.demandStarted {
		return false
	}
	if k.Always {
		return true
	}
	if st != nil {
		if k.SuccessfulExit != nil && *k.SuccessfulExit == st.Success() {
			return true
		}
		if k.Crashed != nil && *k.Crashed == st.Crashed() {
			return true
		}
	}
	for _, pc := range k.PathState {
		_, err := os.Stat(cleanAbs(pc.Path))
		if (err == nil) == pc.Exists {
			return true
		}
	}
	for _, oc := range k.OtherJobEnabled {
		_, loaded := rj.s.jobs[oc.Label]
		if loaded == oc.Enabled {
			return true
		}
	}
	// AfterInitialDemand alone: kept alive once demand has started it
	// (demandStarted is known true here).
	return k.AfterInitialDemand && k.SuccessfulExit == nil && k.Crashed == nil &&
		len(k.PathState) == 0 && len(k.OtherJobEnabled) == 0
}

// checkConditions starts an idle job whose PathState or OtherJobEnabled
// condition became true.
func (rj *runJob) checkConditions() {
	if rj.main != nil || rj.retryTimer != nil || rj.mode == job.ModeInetdNowait {
		return
	}
	k := rj.def.KeepAlive
	if len(k.PathState) == 0 && len(k.OtherJobEnabled) == 0 {
		return
	}
	if rj.wantsKeepAlive(nil) {
		rj.start("keep alive condition", nil)
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
		c.kill = rj.s.loop.after(t, func() {
			rj.log().Warn("exit timeout elapsed; killing", zap.Int("pid", c.p.Pid), zap.Duration("exit_timeout", t))
			_ = c.p.Signal(unix.SIGKILL)
			if !rj.def.AbandonProcessGroup {
				_ = c.p.SignalGroup(unix.SIGKILL)
			}
		})
	}
}

// stopAll stops the main process and every per-connection child, and
// every trigger.
func (rj *runJob) stopAll() {
	rj.logPending()
	rj.disarmTriggers()
	rj.stopRetry()
	rj.dropParked()
	rj.stopInternal()
	rj.stopProxy()
	if rj.main != nil {
		rj.stop(rj.main)
	}
	for _, c := range rj.conns {
		rj.stop(c)
	}
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
