//go:build linux

package supervisor

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/fdreserve"
	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/spawn"
)

// File descriptors for the starts of accepted connections.
//
// Accepting a connection must never take the last free fds: its start
// would then fail (clone cannot make the child's pidfd) and the connection
// be closed unserved. So accepting keeps startFds, a reserve of what one
// start needs, and checks it before each accept. When accept fails with
// EMFILE or ENFILE the reserve is released and the accept made again: the
// connection and its start get the freed numbers. Until the reserve can be
// refilled, accepting is paused (clients wait in the kernel backlog) and
// resumes when fds are freed (a child reaped, an internal connection ended)
// or, at the latest, after a back-off (10 ms doubling to 1 s).
//
// A start that finds no fd all the same (the accept took the last free one
// while the reserve was full) releases the reserve and is made again. One
// that still finds none (another goroutine took the freed fds) keeps its
// connection open, parked: it is started once fds free up, before anything
// more is accepted.

// startFdsNeeded is what one accepted connection takes from the fd table:
// its own fd and the child's pidfd (an internal service's connection takes
// only its own).
const startFdsNeeded = 2

// startFds is the reserve of the accept paths; process-wide, as the fd
// table is.
var startFds = fdreserve.New(startFdsNeeded)

// errReserveShort is the cause logged when accepting pauses because the
// reserve could not be refilled.
var errReserveShort = errors.New("no file descriptors free for the next connection and its start")

// fdWaiters are the accept gates that wait for fds. Process-wide, as the
// fd table is; each is resumed on its own loop.
var fdWaiters struct {
	mu    sync.Mutex
	gates map[*acceptGate]struct{}
	n     atomic.Int32
}

// waitFds registers g to be resumed when fds are freed.
func waitFds(g *acceptGate) {
	fdWaiters.mu.Lock()
	if fdWaiters.gates == nil {
		fdWaiters.gates = map[*acceptGate]struct{}{}
	}
	fdWaiters.gates[g] = struct{}{}
	fdWaiters.n.Store(int32(len(fdWaiters.gates)))
	fdWaiters.mu.Unlock()
}

// unwaitFds takes g off the waiters.
func unwaitFds(g *acceptGate) {
	if fdWaiters.n.Load() == 0 {
		return
	}
	fdWaiters.mu.Lock()
	delete(fdWaiters.gates, g)
	fdWaiters.n.Store(int32(len(fdWaiters.gates)))
	fdWaiters.mu.Unlock()
}

// fdsFreed is called when sockd closed fds of its own (a child's pidfd, an
// internal connection): every gate waiting for fds tries again.
func fdsFreed() {
	if fdWaiters.n.Load() == 0 {
		return
	}
	fdWaiters.mu.Lock()
	gates := fdWaiters.gates
	fdWaiters.gates = nil
	fdWaiters.n.Store(0)
	fdWaiters.mu.Unlock()
	for g := range gates {
		g.rj.s.loop.post(g.resumeResources)
	}
}

// startWithFds makes a start (of a main process or a proxy backend, which
// accepting does not pace); one that finds no fd is made again with the
// reserve's.
func startWithFds(start func() (*spawn.Process, error)) (*spawn.Process, error) {
	p, err := start()
	if err != nil && fdreserve.Shortage(err) && startFds.Release() {
		p, err = start()
	}
	return p, err
}

// exhaustion is the log state of accepting paused for lack of resources:
// one line every 10 s at most, for the newest cause with the count.
type exhaustion struct {
	lines  lineLimit
	socket string // of the newest time not yet in a line
	err    error
}

// exhausted pauses accepting for lack of resources (EMFILE, ENFILE,
// ENOBUFS, ENOMEM on accept; no fds for the next start), logged at most
// every 10 s with the number of times; accepting resumes by itself.
func (g *acceptGate) exhausted(socket string, err error) {
	rj := g.rj
	if g.exhaust == nil {
		ex := &exhaustion{}
		ex.lines = lineLimit{every: 10 * time.Second, write: func(n uint64) {
			rj.log().Error("out of resources: not accepting, clients wait in the backlog; resuming by itself when file descriptors are freed, or after 10 ms doubling to 1 s",
				zap.String("socket", ex.socket), zap.Error(ex.err), zap.Uint64("times", n),
				zap.Uint64("starts_deferred_total", rj.stats.deferred))
		}}
		g.exhaust = ex
	}
	g.exhaust.socket, g.exhaust.err = socket, err
	g.exhaust.lines.note(rj.s.loop)
	g.holdResources()
}

// holdResources stops accepting until resumeResources: when fds are freed,
// or after the back-off delay, which grows (capped) with each hold until a
// connection is accepted again.
func (g *acceptGate) holdResources() {
	if g.backoff == 0 {
		g.backoff = backoffMin
	} else {
		g.backoff = min(2*g.backoff, backoffMax)
	}
	g.hold = holdResources
	g.rj.unwatchSockets()
	g.timer.Stop() // one hold timer at a time
	g.timer = g.rj.s.loop.after(g.backoff, func() {
		g.timer = nil
		g.resumeResources()
	})
	waitFds(g)
}

// resumeResources ends a hold for resources if the fds are there: the
// parked connection is started and the reserve refilled, then accepting
// resumes; otherwise the hold goes on.
func (g *acceptGate) resumeResources() {
	if g.hold != holdResources || g.rj.srv == nil || gateOf(g.rj.srv) != g {
		return
	}
	unwaitFds(g)
	g.timer.Stop()
	g.timer = nil
	g.hold = holdNone
	if !g.parkedServed() {
		return // held again
	}
	if !startFds.Ready() {
		g.holdResources()
		return
	}
	g.rj.log().Debug("file descriptors free again; accepting")
	g.resume()
}

// parkedConn is an accepted connection, admitted by the job's limits, whose
// start found no fd: it stays open until fds free up.
type parkedConn struct {
	sk   *listener.Socket
	fd   int
	peer unix.Sockaddr
}

// park keeps an admitted connection whose start found no fd (err) and
// pauses accepting.
func (g *acceptGate) park(sk *listener.Socket, cfd int, peer unix.Sockaddr, err error) {
	g.parked = &parkedConn{sk: sk, fd: cfd, peer: peer}
	g.exhausted(sk.String(), err)
}

// parkedServed serves the parked connection, if any, and reports whether
// accepting may go on (false: it is parked again, accepting held).
func (g *acceptGate) parkedServed() bool {
	pc := g.parked
	if pc == nil {
		return true
	}
	g.parked = nil
	return g.serve(pc)
}

// dropParked closes the parked connection of a job that goes or stops.
func (g *acceptGate) dropParked() {
	if g.parked != nil {
		unix.Close(g.parked.fd)
		g.parked = nil
	}
}
