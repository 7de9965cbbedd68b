//go:build linux

package supervisor

import (
	"time"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/trigger"
)

// status is the job as list and print show it. Loop only.
func (rj *runJob) status(detail bool) control.Job {
	st := rj.stats
	accepted, _ := rj.proxyStats(st.accepted)
	why, at := rj.hist.why()
	j := control.Job{
		Label: rj.def.Label, File: rj.def.File, Mode: rj.mode.String(), State: rj.stateText(),
		Since: stamp(rj.hist.changed), Runs: rj.hist.runs,
		LastExit: rj.hist.lastExit, LastExitTime: stamp(rj.hist.lastExitAt),
		LastStartReason: why, LastStartTime: stamp(at),
		Accepted: accepted, Refused: st.refused, SpawnFailures: st.spawnFailed,
	}
	if rj.mode == job.ModeInetdNowait {
		j.Runs = st.spawned // one child per connection
	}
	if c := rj.main(); c != nil {
		j.Pid = c.p.Pid
	}
	if stale, ok := rj.s.stale[rj.def.Label]; ok {
		j.Stale, j.StaleReason = true, stale
	}
	for i, sk := range rj.socks {
		fd := 0 // inetd: the connection or socket is the child's fd 0
		if rj.mode == job.ModeHandoff {
			fd = 3 + i
		}
		cs := control.Socket{Name: sk.Endpoint.Group, Network: sk.Network, Address: sk.Addr, Fd: fd}
		for _, op := range sk.Options {
			cs.Options = append(cs.Options, control.SocketOption{Name: op.Name, Value: op.Value, Set: op.Set})
		}
		j.Sockets = append(j.Sockets, cs)
	}
	if !detail {
		return j
	}
	if th := rj.throttle(); th != nil && th.waiting() {
		// The monotonic time the timer runs at, as a wall-clock time.
		now := rj.s.now()
		j.NextStart = stamp(now.Add(th.until.Sub(now)))
	}
	j.Children = rj.childStatus()
	j.Limits = rj.limitsStatus()
	j.Proxy = rj.proxyStatus()
	j.Triggers = rj.triggerStatus()
	return j
}

// triggerStatus is what starts the job besides its sockets, with the
// next timed start, or nil.
func (rj *runJob) triggerStatus() *control.Triggers {
	tr := rj.def.Triggers
	if !tr.Starts() && !tr.LaunchOnlyOnce && len(rj.def.KeepAlive.PathState) == 0 {
		return nil
	}
	out := &control.Triggers{StartInterval: int(tr.StartInterval / time.Second), WatchPaths: tr.WatchPaths,
		QueueDirectories: tr.QueueDirectories, StartOnMount: tr.StartOnMount, LaunchOnlyOnce: tr.LaunchOnlyOnce}
	for _, c := range tr.Calendar {
		out.Calendar = append(out.Calendar, c.String())
	}
	for _, pc := range rj.def.KeepAlive.PathState {
		out.PathState = append(out.PathState, cleanAbs(pc.Path))
	}
	if t := rj.s.triggers; t != nil {
		now := trigger.Now()
		var next time.Time
		for _, k := range []trigger.Kind{trigger.Interval, trigger.Calendar} {
			if w, ok := t.sched.NextWall(rj, k, now); ok && (next.IsZero() || w.Before(next)) {
				next, out.NextStartBy = w, k.String()
			}
		}
		out.NextStart = stamp(next)
	}
	if rj.onceDone() {
		out.StartedOnce = stamp(rj.trig.onceAt)
	}
	return out
}

// limitsStatus is the job's SockdLimits and live counts, or nil.
func (rj *runJob) limitsStatus() *control.Limits {
	switch rj.mode {
	case job.ModeInetdNowait, job.ModeInternal, job.ModeProxy:
	default:
		return nil // sockd accepts nothing for it: no limit applies
	}
	l := rj.def.Limits
	if l.MaxChildren == 0 && l.MaxPerSource == 0 && l.Rate == 0 {
		return nil
	}
	out := &control.Limits{MaxChildren: l.MaxChildren, MaxPerSource: l.MaxPerSource, Rate: l.Rate, Running: rj.connections()}
	if rj.limits != nil {
		out.Sources = rj.limits.sources()
	}
	return out
}

// proxyStatus is a proxy job's figures, or nil.
func (rj *runJob) proxyStatus() *control.Proxy {
	ps, ok := rj.srv.(*proxyServer)
	if !ok || rj.def.Proxy == nil {
		return nil
	}
	st := ps.totals()
	p := &control.Proxy{Backend: rj.def.Proxy.Backend, Active: st.Active, Total: st.Accepted}
	if ps.proc != nil {
		p.BackendPid = ps.proc.p.Pid
	}
	return p
}

// connections counts the connections served now, as MaxChildren counts
// them.
func (rj *runJob) connections() int {
	switch sv := rj.srv.(type) {
	case *connServer:
		return len(sv.conns)
	case *internalServer:
		return sv.active
	case *proxyServer:
		return int(sv.totals().Active)
	}
	return 0
}

// throttle is the throttle of the job's main process or backend, nil for
// the modes without one.
func (rj *runJob) throttle() *throttle {
	switch sv := rj.srv.(type) {
	case *mainServer:
		return &sv.th
	case *proxyServer:
		return &sv.th
	}
	return nil
}

// stamp is t in RFC 3339, or "" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// sources counts the sources with connections open now.
func (lm *limiter) sources() int {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	return len(lm.perSource)
}
