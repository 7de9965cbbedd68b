//go:build linux

package supervisor

import (
	"errors"
	"net/netip"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/fdreserve"
	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/spawn"
)

// acceptBatch bounds how many connections one readiness event accepts, so
// one busy job cannot starve the others.
const acceptBatch = 32

// Accept back-off on resource exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM,
// no fds for the next start: see startFds): a growing delay, capped, so
// sockd never busy-loops while starved.
const (
	backoffMin = 10 * time.Millisecond
	backoffMax = time.Second
)

// acceptReady accepts pending connections of an inetd-nowait job and starts
// one child per connection with the connection on fds 0, 1 and 2.
//
// Starts are asynchronous (spawn.StartAsync): each returns as soon as the
// child exists, without waiting for its execve, so the loop starts a whole
// batch itself at a few tens of microseconds per child, with no hand-off to
// other goroutines and no thread of sockd suspended in a vfork.
func (rj *runJob) acceptReady(sk *listener.Socket) {
	for i := 0; i < acceptBatch; i++ {
		cfd, peer, ok := rj.acceptNext(sk, len(rj.conns))
		if !ok {
			return
		}
		rj.serveConn(sk, cfd, peer)
	}
}

// acceptNext accepts the next connection of a listener, given how many
// connections of the job are being served. ok is false when accepting must
// stop for now: a parked connection still waits for fds, MaxChildren
// reached or the spawn rate exhausted (accepting is paused), no fds for the
// connection's start (see startFds; paused), nothing pending, or an error
// (handled here: back-off on resource exhaustion, a log line otherwise).
func (rj *runJob) acceptNext(sk *listener.Socket, active int) (int, unix.Sockaddr, bool) {
	if rj.acceptHold == "resources" || !rj.parkedServed() {
		return -1, nil, false
	}
	if max := rj.def.Limits.MaxChildren; max > 0 && active >= max {
		rj.holdAccept("max children", zap.Int("running", active), zap.Int("limit", max))
		return -1, nil, false
	}
	if !rj.rateOK() {
		return -1, nil, false
	}
	if !startFds.Ready() {
		rj.exhausted(sk.String(), errReserveShort)
		return -1, nil, false
	}
	released := false
	for {
		cfd, peer, err := acceptConn(sk.Fd)
		switch {
		case err == nil:
			rj.backoff = 0
			rj.stats.accepted++
			return cfd, peer, true
		case errors.Is(err, unix.ECONNABORTED), errors.Is(err, unix.EPROTO), errors.Is(err, unix.EPERM):
			continue // the client went away before we took it
		case errors.Is(err, unix.EAGAIN):
			rj.backoff = 0
		case fdreserve.Shortage(err) && !released && startFds.Release():
			// What the reserve is for: the connection and its start
			// take its fds.
			released = true
			continue
		case fdreserve.Shortage(err), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
			rj.exhausted(sk.String(), err)
		default:
			rj.log().Error("accept", zap.Stringer("socket", sk), zap.Error(err))
		}
		return -1, nil, false
	}
}

// serveConn admits one accepted connection and starts its child, or
// refuses and closes it.
func (rj *runJob) serveConn(sk *listener.Socket, cfd int, peer unix.Sockaddr) {
	src, _, hasSrc := sockaddrIPPort(peer)
	if why := rj.admit(src, hasSrc); why != "" {
		unix.Close(cfd)
		rj.refuse(src, why)
		return
	}
	rj.rateSpend()
	if err := rj.startConn(sk, cfd, peer); err != nil {
		rj.stats.deferred++
		rj.park(sk, cfd, peer, err)
	}
}

// startConn starts the child of an admitted connection with the connection
// on fds 0, 1 and 2; sockd's copy of the connection is closed. A start that
// finds no fd is made again with the reserve's; one that still finds none
// returns its error and leaves the connection open, for the caller to park.
// Other failures are counted and logged here, and a failure before the
// child's execve is only known when the child is reaped (see connExited).
func (rj *runJob) startConn(sk *listener.Socket, cfd int, peer unix.Sockaddr) error {
	fds := [3]int{cfd, cfd, cfd}
	env := connEnv(rj.def.Label, sk, rj.boundLocal(sk), cfd, peer)
	p, err := rj.tmpl.StartAsync(fds[:], env)
	if err != nil && fdreserve.Shortage(err) && startFds.Release() {
		p, err = rj.tmpl.StartAsync(fds[:], env) // with the reserve's fds
	}
	if err != nil && fdreserve.Shortage(err) {
		return err
	}
	unix.Close(cfd)
	if err != nil {
		rj.stats.spawnFailed++
		rj.spawnFailed(err)
		rj.slotFreed()
		return nil
	}
	rj.stats.spawned++
	c := &child{p: p}
	src, port, ok := sockaddrIPPort(peer)
	if ok {
		rj.limits.addSource(src)
		c.src = src
	}
	rj.hist.connStarted(netip.AddrPortFrom(src, uint16(port)), ok)
	if rj.conns == nil {
		rj.conns = map[int]*child{}
	}
	rj.conns[p.Pid] = c
	if rj.s.shuttingDown {
		rj.stop(c)
	}
	rj.s.watchChild(p, rj.def.AbandonProcessGroup, func(st spawn.ExitStatus) { rj.connExited(c, st) })
	return nil
}

// startFailures is the log state of per-connection start failures: one
// line a second at most, for the newest failure with the count.
type startFailures struct {
	lines lineLimit
	err   error // of the newest failure not yet in a line
}

// spawnFailed logs a per-connection start failure at most once a second
// with the count of failures since the last line.
func (rj *runJob) spawnFailed(err error) {
	if rj.startFails == nil {
		sf := &startFailures{}
		sf.lines = lineLimit{every: time.Second, write: func(n uint64) {
			rj.log().Error("cannot start child for connection; connection closed",
				zap.Error(sf.err), zap.Uint64("failures_since_last_line", n), zap.Uint64("failures_total", rj.stats.spawnFailed))
		}}
		rj.startFails = sf
	}
	rj.startFails.err = err
	rj.startFails.lines.note(rj.s.loop)
}

func (rj *runJob) connExited(c *child, st spawn.ExitStatus) {
	fdsFreed() // the child's pidfd
	if c.kill != nil {
		c.kill.Stop()
	}
	delete(rj.conns, c.p.Pid)
	if c.src.IsValid() {
		rj.limits.dropSource(c.src)
	}
	if st.StartErr != nil {
		// The child failed before execve (asynchronous start): the
		// connection was closed with it.
		rj.stats.spawned--
		rj.stats.spawnFailed++
		rj.spawnFailed(st.StartErr)
		rj.slotFreed()
		return
	}
	rj.stats.exits++
	rj.slotFreed()
	if ce := rj.log().Check(zap.DebugLevel, "connection child exited"); ce != nil {
		ce.Write(zap.Int("pid", c.p.Pid), zap.Stringer("status", st), zap.Duration("ran", time.Since(c.p.Started)))
	}
}

// slotFreed is called when a per-connection child (or a start in flight)
// is gone: finish a retired job or a shutdown, or resume accepting below
// MaxChildren.
func (rj *runJob) slotFreed() {
	if rj.retiring {
		rj.s.retiredDone(rj)
		return
	}
	if rj.s.shuttingDown {
		rj.s.maybeFinish()
		return
	}
	if rj.acceptHold == "max children" && len(rj.conns) < rj.def.Limits.MaxChildren {
		rj.log().Debug("below max children again; accepting", zap.Int("running", len(rj.conns)))
		rj.acceptHold = ""
		rj.watchSockets()
	}
}

// holdAccept stops watching the job's listeners; the kernel backlog holds
// new clients until accepting resumes.
func (rj *runJob) holdAccept(why string, fields ...zap.Field) {
	if rj.acceptHold == why {
		return
	}
	rj.acceptHold = why
	rj.unwatchSockets()
	if why == "max children" {
		rj.noteMaxChildren(fields)
		return
	}
	rj.log().Warn("limit reached: "+why+"; not accepting, clients wait in the backlog", fields...)
}

// maxChildrenEvery is how often at most the max-children line is written: a
// busy job reaches and leaves the limit with every child, and each time
// would otherwise be a line.
const maxChildrenEvery = 10 * time.Second

// noteMaxChildren logs reaching MaxChildren at most once every
// maxChildrenEvery, with the number of times since the last line.
func (rj *runJob) noteMaxChildren(fields []zap.Field) {
	if rj.maxChildren == nil {
		mc := &maxChildrenLines{}
		mc.lines = lineLimit{every: maxChildrenEvery, write: func(n uint64) {
			rj.log().Warn("limit reached: max children; not accepting, clients wait in the backlog",
				append(mc.fields, zap.Uint64("times_since_last_line", n))...)
		}}
		rj.maxChildren = mc
	}
	rj.maxChildren.fields = fields
	rj.maxChildren.lines.note(rj.s.loop)
}

// maxChildrenLines is the log state of MaxChildren being reached.
type maxChildrenLines struct {
	lines  lineLimit
	fields []zap.Field // of the newest time not yet in a line
}

// connEnv is the environment naming both ends of a connection: the
// systemd names, the UCSPI names and the job label.
func connEnv(label string, sk *listener.Socket, local []string, cfd int, peer unix.Sockaddr) []string {
	env := make([]string, 0, 9)
	if ip, port, ok := sockaddrIPPort(peer); ok {
		proto := "TCP"
		if ip.Is6() {
			proto = "TCP6"
		}
		rip, rport := ip.String(), itoa(port)
		env = append(env,
			"REMOTE_ADDR="+rip, "REMOTE_PORT="+rport,
			"PROTO="+proto, "TCPREMOTEIP="+rip, "TCPREMOTEPORT="+rport)
		if local != nil {
			// Listener bound to one address: the local end is known
			// without a getsockname per connection.
			env = append(env, local[0], local[1])
		} else if lip, lport, ok := sockaddrIPPort(localAddr(cfd)); ok {
			env = append(env, "TCPLOCALIP="+lip.String(), "TCPLOCALPORT="+itoa(lport))
		}
	} else {
		env = append(env, "PROTO=UNIX", "UNIXLOCALPATH="+sk.Addr)
		if cred, err := peerCred(cfd); err == nil {
			env = append(env,
				"UNIXREMOTEPID="+itoa(int(cred.Pid)),
				"UNIXREMOTEUID="+itoa(int(cred.Uid)),
				"UNIXREMOTEGID="+itoa(int(cred.Gid)))
		}
	}
	return append(env, "LAUNCH_JOB_LABEL="+label)
}

// boundLocal returns the TCPLOCALIP/TCPLOCALPORT entries of a listener
// bound to one address, computed once per socket (nil for a wildcard
// listener, whose local address depends on the connection).
func (rj *runJob) boundLocal(sk *listener.Socket) []string {
	if v, ok := rj.locals[sk]; ok {
		return v
	}
	var v []string
	if ap, err := netip.ParseAddrPort(sk.Addr); err == nil && !ap.Addr().IsUnspecified() {
		v = []string{"TCPLOCALIP=" + ap.Addr().Unmap().String(), "TCPLOCALPORT=" + itoa(int(ap.Port()))}
	}
	if rj.locals == nil {
		rj.locals = map[*listener.Socket][]string{}
	}
	rj.locals[sk] = v
	return v
}
