//go:build linux

package supervisor

import (
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/spawn"
)

// mainServer serves a job with one main process: a handoff job (the
// process gets every socket, fds 3...), an inetd wait job (the ready socket
// on fds 0-2) and a job without sockets (started by RunAtLoad, KeepAlive or
// a trigger). Loop goroutine only.
type mainServer struct {
	rj            *runJob
	proc          *child
	th            throttle
	demandStarted bool      // started once by socket activity
	failLogged    time.Time // of the last "cannot start" line
	waitMark      pendingMark
	waitDgram     bool
	kick          *kickstart // a kickstart -k waiting for the main process to exit
	wanted        string     // a sockd start the throttle delays: who asked
}

func (ms *mainServer) mainChild() *child  { return ms.proc }
func (ms *mainServer) children() []*child { return nil }
func (ms *mainServer) flushLines()        {}
func (ms *mainServer) running() int       { return boolInt(ms.proc != nil) }
func (ms *mainServer) phase() serverPhase {
	return serverPhase{mainRunning: ms.proc != nil, mainStopping: ms.proc != nil && ms.proc.stopping,
		throttled: ms.th.waiting()}
}

// handler implements server: socket activity starts the process.
func (ms *mainServer) handler(sk *listener.Socket) handler {
	return handlerFunc(func(uint32) { ms.demand(sk) })
}

func (ms *mainServer) stopAll() {
	ms.th.cancel()
	if ms.proc != nil {
		ms.rj.stop(ms.proc)
	}
}

// activate implements server: start at load (RunAtLoad, KeepAlive) or
// watch the sockets.
func (ms *mainServer) activate(initial bool) {
	rj := ms.rj
	if ms.proc != nil || ms.th.waiting() {
		return // running or throttled: it re-arms when that ends
	}
	if initial || ms.th.last.IsZero() {
		if rj.def.RunAtLoad || rj.def.KeepAlive.ImpliesRunAtLoad() {
			ms.start("run at load", nil)
			return
		}
	}
	if ms.wantsKeepAlive(nil) {
		ms.start("keep alive", nil)
		return
	}
	rj.watchSockets()
}

// demand is activity on a socket of a wait-mode or handoff job.
func (ms *mainServer) demand(sk *listener.Socket) {
	ms.demandStarted = true
	ms.start("socket activity on "+sk.Addr, sk)
}

// start starts the main process, unless it is running or must wait for the
// throttle. input is the ready socket for wait-mode jobs.
func (ms *mainServer) start(why string, input *listener.Socket) {
	rj := ms.rj
	if ms.proc != nil || rj.closing() {
		return
	}
	rj.unwatchSockets()
	if !rj.onceAllows(why) {
		return // LaunchOnlyOnce: started this boot already
	}
	now := rj.s.now()
	switch verdict, wait := startPlan(rj.mode, &ms.th, rj.def.ThrottleInterval, input != nil, now); verdict {
	case startThrottled:
		rj.stats.throttled++
		rj.logThrottled(why, wait)
		ms.retryAfter(wait)
		return
	case startOnInput:
		rj.watchSockets()
		return
	}
	if !rj.onceClaim(why) {
		return
	}
	fds, env, listenPID := ms.startFds(input)
	ms.th.started(now)
	t0 := rj.spawnClock()
	p, err := rj.s.procs.start(rj.tmpl, fds, env, listenPID)
	if err != nil {
		ms.startFailed(err)
		return
	}
	rj.observeSpawn(t0, p)
	ms.started(p, why)
}

// startFds are the fds and environment a start hands the process.
func (ms *mainServer) startFds(input *listener.Socket) (fds []int, env []string, listenPID bool) {
	rj := ms.rj
	switch rj.mode {
	case job.ModeInetdWait:
		fd := input.Fd
		if err := listener.SetBlocking(fd, true); err != nil {
			rj.log().Warn("set blocking", zap.Stringer("socket", input), zap.Error(err))
		}
		ms.waitDgram = !input.Listening
		ms.waitMark = markPending(fd, ms.waitDgram)
		return []int{fd, fd, fd}, []string{"LAUNCH_JOB_LABEL=" + rj.def.Label}, false
	case job.ModeHandoff:
		fds = []int{rj.s.devnull, 1, 2}
		for _, sk := range rj.socks {
			if err := listener.SetBlocking(sk.Fd, true); err != nil {
				rj.log().Warn("set blocking", zap.Stringer("socket", sk), zap.Error(err))
			}
			fds = append(fds, sk.Fd)
		}
		return fds, handoffEnv(rj.def, rj.socks), true
	}
	return []int{rj.s.devnull, 1, 2}, []string{"LAUNCH_JOB_LABEL=" + rj.def.Label}, false
}

// startFailed counts and logs a start that did not happen (once per
// retry delay) and retries after it.
func (ms *mainServer) startFailed(err error) {
	rj := ms.rj
	rj.onceRelease()
	rj.stats.spawnFailed++
	rj.hist.startFailed(err)
	delay := failWait(rj.def.ThrottleInterval)
	if now := rj.s.now(); now.Sub(ms.failLogged) >= delay {
		ms.failLogged = now
		rj.log().Error("cannot start job; retrying", zap.Error(err), zap.Duration("retry_in", delay))
	}
	ms.retryAfter(delay)
}

// started records a start that happened and watches the process.
func (ms *mainServer) started(p *spawn.Process, why string) {
	rj := ms.rj
	rj.stats.spawned++
	rj.hist.started(why)
	ms.failLogged = time.Time{}
	c := &child{p: p}
	ms.proc = c
	rj.triggersStarted()
	rj.log().Info("started", zap.Int("pid", p.Pid), zap.String("reason", why))
	for _, w := range p.Warnings {
		// launchd runs the job anyway; say where its output goes instead.
		rj.log().Warn("a standard path could not be opened: the job got sockd's own descriptor there (sockd's log, or /dev/null for input)",
			zap.Int("pid", p.Pid), zap.Error(w))
	}
	rj.s.procs.watch(p, procJobOf(rj), func(st spawn.ExitStatus) { ms.exited(c, st) })
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

// retryAfter re-arms the job after d: a KeepAlive job is started, an
// on-demand job watches its sockets again (and starts if demand is still
// there). Unlike launchd, a throttled start with no demand left does not run.
func (ms *mainServer) retryAfter(d time.Duration) {
	rj := ms.rj
	ms.th.delay(rj.s.loop, d, rj.s.now(), func() {
		if rj.closing() || ms.proc != nil || rj.srv != ms {
			return
		}
		ms.retry()
	})
}

// retry is the end of a throttle delay: the start that waited, if any.
func (ms *mainServer) retry() {
	rj := ms.rj
	if why := ms.wanted; why != "" { // sockd start, throttled
		ms.wanted = ""
		ms.start(why, rj.controlTrigger())
		return
	}
	if why := rj.pendingStart(); why != "" {
		ms.start(why, rj.controlTrigger())
		return
	}
	if rj.mode == job.ModeNone || ms.wantsKeepAlive(nil) || (ms.th.last.IsZero() && (rj.def.RunAtLoad || rj.def.KeepAlive.ImpliesRunAtLoad())) {
		ms.start("retry", nil)
		return
	}
	rj.watchSockets()
}

// exited handles the exit of the main process. Loop only.
func (ms *mainServer) exited(c *child, st spawn.ExitStatus) {
	rj := ms.rj
	ms.proc = nil
	rj.mainExited(c, st)
	if k := ms.kick; k != nil { // a kickstart -k waits for this exit
		ms.kick = nil
		defer k.wait.finish(nil)
		if rj.ended(ms) && !rj.applyNext() {
			ms.th.forget()
			ms.start(k.who, rj.controlTrigger())
		}
		return
	}
	if !rj.ended(ms) || rj.applyNext() {
		return
	}
	facts := exitFacts{mode: rj.mode, stoppedBySockd: c.stopping && !c.byControl, keepAlive: func(st spawn.ExitStatus) bool { return ms.wantsKeepAlive(&st) }}
	if rj.mode == job.ModeInetdWait {
		facts.unread = unread(ms.waitMark, ms.waitMarkNow())
	}
	switch exitPlan(facts, st) {
	case exitUnread:
		rj.stats.throttled++
		now := rj.s.now()
		wait := ms.th.loopWait(rj.def.ThrottleInterval, now)
		rj.log().Warn("wait-mode child exited leaving its request unread; throttling so it does not restart in a loop",
			zap.Duration("ran", now.Sub(c.p.Started).Round(time.Millisecond)),
			zap.Duration("next_start_in", wait.Round(100*time.Millisecond)))
		ms.retryAfter(wait)
	case exitKeepAlive:
		ms.start("keep alive after exit ("+st.String()+")", nil)
	case exitQueue:
		if !rj.queueAfterExit() {
			rj.watchSockets()
		}
	default:
		rj.watchSockets()
	}
}

// mainExited counts and logs the exit of a main process or proxy backend.
func (rj *runJob) mainExited(c *child, st spawn.ExitStatus) {
	c.reaped()
	rj.stats.exits++
	rj.noteExit(c, st)
	rj.hist.exited(st)
	ran := rj.s.now().Sub(c.p.Started)
	fields := []zap.Field{zap.Int("pid", c.p.Pid), zap.Stringer("status", st), zap.Duration("ran", ran.Round(time.Millisecond))}
	switch {
	case c.stopping || st.Success():
		rj.log().Info("exited", fields...)
	case st.Crashed():
		rj.log().Warn("exited: crashed", fields...)
	default:
		rj.log().Warn("exited", fields...)
	}
}

// waitMarkNow fingerprints the wait-mode socket the last child was given.
func (ms *mainServer) waitMarkNow() pendingMark {
	for _, sk := range ms.rj.socks {
		if (!sk.Listening) == ms.waitDgram && isReadable(sk.Fd) {
			return markPending(sk.Fd, ms.waitDgram)
		}
	}
	return pendingMark{ok: true}
}

// wantsKeepAlive evaluates KeepAlive as launchd does: the conditions are
// ORed. st is the last exit (nil when not evaluating an exit).
func (ms *mainServer) wantsKeepAlive(st *spawn.ExitStatus) bool {
	rj := ms.rj
	k := rj.def.KeepAlive
	if rj.closing() {
		return false
	}
	if k.AfterInitialDemand && !ms.demandStarted {
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
	ms := rj.mainSrv()
	if ms == nil || ms.proc != nil || ms.th.waiting() {
		return
	}
	k := rj.def.KeepAlive
	if len(k.PathState) == 0 && len(k.OtherJobEnabled) == 0 {
		return
	}
	if ms.wantsKeepAlive(nil) {
		ms.start("keep alive condition", nil)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
