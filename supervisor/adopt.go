//go:build linux

package supervisor

// The new image's side of an in-place upgrade (upgrade.go): it takes the
// inherited sockets into the registry before its first load (which keeps
// those whose job still defines them, as a reload does), serves the
// inherited control socket, reads the inherited output pipes, and, as
// each job is set up, takes over its processes, throttle time and
// counters before the job is armed, so nothing is started twice.
//
// A process whose job the new image no longer loads (its file was
// removed between the check and the exec) is stopped like a process of a
// removed job: SIGTERM, reaped and logged.

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/handover"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/spawn"
)

// adoptState takes what the state hands over that the first load needs:
// sockets, output pipes, bootstrapped files. Run calls it first.
func (s *Supervisor) adoptState(st *handover.State) {
	for _, err := range s.reg.Adopt(st.Sockets) {
		s.log.Error("upgrade: an inherited socket is not usable; its job opens it again", zap.Error(err))
	}
	s.out.adopt(st.Outputs)
	s.setExtraFiles(st.ExtraFiles)
	s.handed = make(map[string]handover.Job, len(st.Jobs))
	for _, j := range st.Jobs {
		s.handed[j.Label] = j
	}
}

// handedPids are the processes the state hands over: not leftovers.
func (s *Supervisor) handedPids() map[int]bool {
	if s.cfg.Handover == nil {
		return nil
	}
	return s.cfg.Handover.Pids()
}

// adoptJob gives a new runJob what its earlier image ran and counted; it
// reports whether there was anything. Loop only, before activate.
func (s *Supervisor) adoptJob(rj *runJob) bool {
	hj, ok := s.handed[rj.def.Label]
	if !ok {
		return false
	}
	delete(s.handed, rj.def.Label)
	rj.stats = statsFrom(hj.Stats)
	now := s.now()
	var th *throttle
	left := hj // what the job's way of serving does not take: stopped
	switch srv := rj.srv.(type) {
	case *mainServer:
		th, left.Main = &srv.th, nil
		if c := s.adoptProc(rj, hj.Main, now); c != nil {
			srv.proc = c
			s.procs.watch(c.p, procJobOf(rj), func(st spawn.ExitStatus) { srv.exited(c, st) })
		}
	case *proxyServer:
		th, left.Main = &srv.th, nil
		srv.adoptConns = hj.Conns
		if c := s.adoptProc(rj, hj.Main, now); c != nil {
			srv.proc = c
			s.procs.watch(c.p, procJobOf(rj), func(st spawn.ExitStatus) { srv.backendExited(c, st) })
		}
	case *connServer:
		left.Children = nil
		s.adoptConnChildren(rj, srv, hj.Children, now)
	}
	if left.Main != nil || len(left.Children) > 0 {
		s.stopHanded(rj.def.Label, handover.Job{Main: left.Main, Children: left.Children, ExitTimeOut: rj.def.ExitTimeOut},
			"its job's new definition serves another way")
	}
	if th != nil && hj.Ran {
		th.last = now.Add(-hj.LastStartAgo)
	}
	return true
}

// adoptConnChildren gives an inetd nowait job its per-connection children.
func (s *Supervisor) adoptConnChildren(rj *runJob, cs *connServer, procs []handover.Proc, now time.Time) {
	for i := range procs {
		c := s.adoptProc(rj, &procs[i], now)
		if c == nil {
			continue
		}
		cs.add(c)
		if c.src.IsValid() {
			rj.limiter().addSource(c.src)
		}
		s.watchChild(c.p, rj.def.AbandonProcessGroup, func(st spawn.ExitStatus) { cs.connExited(c, st) })
	}
}

// adoptProc takes over one process (nil p: none); nil if it cannot be.
func (s *Supervisor) adoptProc(rj *runJob, p *handover.Proc, now time.Time) *child {
	if p == nil {
		return nil
	}
	proc, err := spawn.Adopt(p.Pid, now.Add(-p.Age))
	if err != nil {
		rj.log().Error("upgrade: a process of the job cannot be watched again", zap.Int("pid", p.Pid), zap.Error(err))
		return nil
	}
	c := &child{p: proc, stopping: p.Stopping, byControl: p.ByControl}
	if a, err := netip.ParseAddr(p.Source); err == nil {
		c.src = a
	}
	if r := p.Record; r != nil && rj.records() {
		c.rec = &connRecord{peerPID: r.PeerPID, peerUID: r.PeerUID, hasCred: r.HasCred, local: r.Local, start: proc.Started}
		c.rec.peer, _ = netip.ParseAddrPort(r.Peer) // invalid for a Unix client
	}
	if c.stopping {
		rj.stop(c) // its stop continues: SIGKILL after ExitTimeOut
	}
	return c
}

// afterAdopt finishes a job adopted and armed: a proxy server learns its
// running backend's pid.
func (rj *runJob) afterAdopt() {
	if ps, ok := rj.srv.(*proxyServer); ok && ps.proc != nil && ps.px != nil {
		ps.px.be.pid.Store(int64(ps.proc.p.Pid))
	}
}

// stopHandedLeft stops the processes of handed jobs the first load did
// not define. Loop only, after it.
func (s *Supervisor) stopHandedLeft() {
	for label, hj := range s.handed {
		s.stopHanded(label, hj, "its job is no longer loaded")
	}
	s.handed = nil
}

// stopHanded stops handed processes that no job takes: SIGTERM to each
// (and its process group), SIGKILL after the job's ExitTimeOut if it has
// not exited; reaped and logged when it exits.
func (s *Supervisor) stopHanded(label string, hj handover.Job, why string) {
	procs := hj.Children
	if hj.Main != nil {
		procs = append(procs, *hj.Main)
	}
	timeout := hj.ExitTimeOut
	if timeout <= 0 {
		timeout = job.DefaultExitTimeOut
	}
	log := s.log.With(zap.String("job", label))
	for _, p := range procs {
		proc, err := spawn.Adopt(p.Pid, time.Now().Add(-p.Age))
		if err != nil {
			log.Error("upgrade: a handed process cannot be watched", zap.Int("pid", p.Pid), zap.Error(err))
			continue
		}
		if why != "" {
			log.Warn("upgrade: stopping a handed process: "+why, zap.Int("pid", p.Pid))
		}
		_ = proc.SignalGroup(unix.SIGTERM)
		_ = proc.Signal(unix.SIGTERM)
		kill := s.killAfter(proc, timeout, true, func() *zap.Logger { return log })
		s.watchChild(proc, false, func(st spawn.ExitStatus) {
			kill.Stop()
			s.recordExited(proc.Pid)
			log.Info("exited", zap.Int("pid", proc.Pid), zap.Stringer("status", st))
		})
	}
}

// logUpgraded says the new image serves, and how long each phase took:
// the new binary's check, the handover (state written to state read: the
// exec and the new image's start) and the load (to serving).
func (s *Supervisor) logUpgraded(st *handover.State) {
	now := time.Now()
	conns := 0
	for _, j := range st.Jobs {
		conns += len(j.Conns)
	}
	s.log.Info("upgraded in place", zap.String("from", st.From), zap.String("to", s.cfg.Version),
		zap.Duration("took", now.Sub(time.Unix(0, st.Asked))), zap.Duration("check", st.Check),
		zap.Duration("handover", s.cfg.HandoverRead.Sub(time.Unix(0, st.Written))), zap.Duration("load", now.Sub(s.cfg.HandoverRead)),
		zap.Int("sockets", len(st.Sockets)), zap.Int("processes", len(st.Pids())), zap.Int("proxied_connections", conns))
}

// adopt reads the inherited output pipes.
func (o *outputs) adopt(outs []handover.Output) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, h := range outs {
		unix.CloseOnExec(h.Fd)
		o.readLocked(os.NewFile(uintptr(h.Fd), "output"), outputReader{h.Label, h.Stream, h.Pid})
	}
}

// handover duplicates every pipe being read, for the next image (not
// close-on-exec). On error it returns those it made.
func (o *outputs) handover() ([]handover.Output, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []handover.Output
	for r, who := range o.readers {
		fd, err := dupRaw(r)
		if err != nil {
			return out, fmt.Errorf("job %s: %s of pid %d: %w", who.label, who.stream, who.pid, err)
		}
		out = append(out, handover.Output{Fd: fd, Label: who.label, Stream: who.stream, Pid: who.pid})
	}
	return out, nil
}

// dupRaw duplicates f's fd without taking it out of Go's poller (Fd
// would make it blocking).
func dupRaw(f *os.File) (int, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := raw.Control(func(orig uintptr) { fd, err = unix.Dup(int(orig)) })
	if cerr != nil {
		return -1, cerr
	}
	return fd, err
}
