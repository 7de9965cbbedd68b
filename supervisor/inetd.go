//go:build linux

package supervisor

import (
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

// connServer serves an inetd nowait job: sockd accepts each connection
// and starts one child for it with the connection on fds 0, 1 and 2. Loop
// goroutine only.
type connServer struct {
	rj         *runJob
	gate       acceptGate
	conns      map[int]*child // by pid; nil until the first child
	startFails *startFailures // per-connection starts that failed; nil until one does
}

func newConnServer(rj *runJob) *connServer {
	cs := &connServer{rj: rj}
	cs.gate = acceptGate{rj: rj, serve: cs.serveParked}
	return cs
}

// add counts c among the running children.
func (cs *connServer) add(c *child) {
	if cs.conns == nil {
		cs.conns = make(map[int]*child)
	}
	cs.conns[c.p.Pid] = c
}

func (cs *connServer) mainChild() *child  { return nil }
func (cs *connServer) running() int       { return len(cs.conns) }
func (cs *connServer) phase() serverPhase { return serverPhase{hold: cs.gate.hold} }

func (cs *connServer) children() []*child {
	out := make([]*child, 0, len(cs.conns))
	for _, c := range cs.conns {
		out = append(out, c)
	}
	return out
}

// handler implements server: listening sockets are accepted on.
func (cs *connServer) handler(sk *listener.Socket) handler {
	if !sk.Listening {
		return nil
	}
	cs.rj.nonBlocking(sk)
	return handlerFunc(func(uint32) { cs.acceptReady(sk) })
}

// activate implements server: a connection parked before a redefinition
// is served first, then the sockets are watched.
func (cs *connServer) activate(bool) {
	if cs.gate.hold == holdNone && cs.gate.parkedServed() {
		cs.rj.watchSockets()
	}
}

// stopAll ends accepting and the children, except those of a removed
// job, whose connections finish (a shutdown ends them too).
func (cs *connServer) stopAll() {
	cs.gate.reset()
	if cs.rj.retiring && !cs.rj.s.shuttingDown {
		return
	}
	for _, c := range cs.conns {
		cs.rj.stop(c)
	}
}

func (cs *connServer) flushLines() {
	cs.gate.flushLines()
	if cs.startFails != nil {
		cs.startFails.lines.flush()
	}
}

// acceptReady accepts pending connections of an inetd-nowait job and starts
// one child per connection with the connection on fds 0, 1 and 2.
//
// Starts are asynchronous (spawn.StartAsync): each returns as soon as the
// child exists, without waiting for its execve, so the loop starts a whole
// batch itself at a few tens of microseconds per child, with no hand-off to
// other goroutines and no thread of sockd suspended in a vfork.
func (cs *connServer) acceptReady(sk *listener.Socket) {
	for i := 0; i < acceptBatch; i++ {
		cfd, peer, ok := cs.gate.acceptNext(sk, len(cs.conns))
		if !ok {
			return
		}
		cs.serveConn(sk, cfd, peer)
	}
}

// serveConn admits one accepted connection and starts its child, or
// refuses and closes it.
func (cs *connServer) serveConn(sk *listener.Socket, cfd int, peer unix.Sockaddr) {
	rj := cs.rj
	src, port, hasSrc := sockaddrIPPort(peer)
	if why := rj.admit(src, hasSrc); why != "" {
		unix.Close(cfd)
		rj.refuse(netip.AddrPortFrom(src, uint16(port)), why)
		return
	}
	rj.rateSpend()
	if err := cs.startConn(sk, cfd, peer); err != nil {
		rj.stats.deferred++
		cs.gate.park(sk, cfd, peer, err)
	}
}

// serveParked starts the child of a parked connection; false when it is
// parked again.
func (cs *connServer) serveParked(pc *parkedConn) bool {
	if err := cs.startConn(pc.sk, pc.fd, pc.peer); err != nil {
		cs.gate.park(pc.sk, pc.fd, pc.peer, err)
		return false
	}
	return true
}

// startConn starts the child of an admitted connection with the connection
// on fds 0, 1 and 2; sockd's copy of the connection is closed. A start that
// finds no fd is made again with the reserve's; one that still finds none
// returns its error and leaves the connection open, for the caller to park.
// Other failures are counted and logged here, and a failure before the
// child's execve is only known when the child is reaped (see connExited).
func (cs *connServer) startConn(sk *listener.Socket, cfd int, peer unix.Sockaddr) error {
	rj := cs.rj
	t0 := rj.spawnClock()
	fds := [3]int{cfd, cfd, cfd}
	env := connEnv(rj.def.Label, sk, rj.boundLocal(sk), cfd, peer)
	var rec *connRecord
	if rj.records() {
		rec = newConnRecord(sk, cfd, peer)
	}
	p, err := rj.tmpl.StartAsync(fds[:], env)
	if err != nil && fdreserve.Shortage(err) && startFds.Release() {
		p, err = rj.tmpl.StartAsync(fds[:], env) // with the reserve's fds
	}
	if err != nil && fdreserve.Shortage(err) {
		return err
	}
	unix.Close(cfd)
	if err != nil {
		if rec != nil {
			rj.recordChildEnd(rec, 0, spawn.ExitStatus{StartErr: err})
		}
		rj.stats.spawnFailed++
		cs.spawnFailed(err)
		cs.slotFreed()
		return nil
	}
	rj.stats.spawned++
	rj.observeSpawn(t0, p)
	c := &child{p: p, rec: rec}
	src, port, ok := sockaddrIPPort(peer)
	if ok {
		rj.limiter().addSource(src)
		c.src = src
	}
	rj.hist.connStarted(netip.AddrPortFrom(src, uint16(port)), ok)
	cs.add(c)
	if rj.s.shuttingDown {
		rj.stop(c)
	}
	rj.s.watchChild(p, rj.def.AbandonProcessGroup, func(st spawn.ExitStatus) { cs.connExited(c, st) })
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
func (cs *connServer) spawnFailed(err error) {
	rj := cs.rj
	if cs.startFails == nil {
		sf := &startFailures{}
		sf.lines = lineLimit{every: time.Second, write: func(n uint64) {
			rj.log().Error("cannot start child for connection; connection closed",
				zap.Error(sf.err), zap.Uint64("failures_since_last_line", n), zap.Uint64("failures_total", rj.stats.spawnFailed))
		}}
		cs.startFails = sf
	}
	cs.startFails.err = err
	cs.startFails.lines.note(rj.s.loop)
}

func (cs *connServer) connExited(c *child, st spawn.ExitStatus) {
	rj := cs.rj
	c.reaped()
	delete(cs.conns, c.p.Pid)
	if c.src.IsValid() {
		rj.limiter().dropSource(c.src)
	}
	if c.rec != nil {
		rj.recordChildEnd(c.rec, c.p.Pid, st)
	}
	if st.StartErr != nil {
		// The child failed before execve (asynchronous start): the
		// connection was closed with it.
		rj.stats.spawned--
		rj.stats.spawnFailed++
		cs.spawnFailed(st.StartErr)
		cs.slotFreed()
		return
	}
	rj.stats.exits++
	rj.noteExit(c, st)
	cs.slotFreed()
	if ce := rj.log().Check(zap.DebugLevel, "connection child exited"); ce != nil {
		ce.Write(zap.Int("pid", c.p.Pid), zap.Stringer("status", st), zap.Duration("ran", time.Since(c.p.Started)))
	}
}

// slotFreed is called when a per-connection child (or a start in flight)
// is gone: accepting resumes below MaxChildren.
func (cs *connServer) slotFreed() {
	if cs.rj.ended(cs) {
		cs.gate.freed(len(cs.conns))
	}
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
		rj.locals = localAddrs{}
	}
	rj.locals[sk] = v
	return v
}
