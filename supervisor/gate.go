//go:build linux

package supervisor

import (
	"errors"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/fdreserve"
	"github.com/sockd/sockd/listener"
)

// holdReason is why a job that sockd accepts for does not accept now.
type holdReason uint8

const (
	holdNone holdReason = iota
	// holdMaxChildren: SockdLimits.MaxChildren connections are served.
	holdMaxChildren
	// holdRate: the spawn-rate bucket is empty (SockdLimits.Rate).
	holdRate
	// holdResources: no fds (or buffers) for the next connection and its
	// start; see fdwait.go.
	holdResources
)

var holdNames = [...]string{holdNone: "", holdMaxChildren: "max children", holdRate: "spawn rate", holdResources: "resources"}

func (h holdReason) String() string { return holdNames[h] }

// acceptGate decides whether a job whose connections sockd accepts (inetd
// nowait, internal services) accepts now. It pauses accepting while
// MaxChildren connections are served, while the spawn rate is spent and
// while fds are short (clients wait in the kernel backlog meanwhile), and
// keeps the one connection accepted whose start found no fd. The one
// place that holds and resumes accepting. Loop goroutine only.
type acceptGate struct {
	rj      *runJob
	hold    holdReason
	timer   *loopTimer // ends a rate or resources hold
	backoff time.Duration
	exhaust *exhaustion       // accepting paused for lack of resources; nil until it first is
	parked  *parkedConn       // accepted, waiting for fds to be started (see park)
	maxKids *maxChildrenLines // MaxChildren reached; nil until it first is
	// serve serves a parked connection; false when it is parked again.
	serve func(pc *parkedConn) bool
}

// acceptNext accepts the next connection of a listener, given how many
// connections of the job are being served. ok is false when accepting must
// stop for now: a parked connection still waits for fds, MaxChildren
// reached or the spawn rate exhausted (accepting is paused), no fds for the
// connection's start (see startFds; paused), nothing pending, or an error
// (handled here: back-off on resource exhaustion, a log line otherwise).
func (g *acceptGate) acceptNext(sk *listener.Socket, active int) (int, unix.Sockaddr, bool) {
	rj := g.rj
	if g.hold == holdResources || !g.parkedServed() {
		return -1, nil, false
	}
	if max := rj.def.Limits.MaxChildren; max > 0 && active >= max {
		g.holdAccept(holdMaxChildren, zap.Int("running", active), zap.Int("limit", max))
		return -1, nil, false
	}
	if !g.rateOK() {
		return -1, nil, false
	}
	if !startFds.Ready() {
		g.exhausted(sk.String(), errReserveShort)
		return -1, nil, false
	}
	released := false
	for {
		cfd, peer, err := acceptConn(sk.Fd)
		switch {
		case err == nil:
			g.backoff = 0
			rj.stats.accepted++
			return cfd, peer, true
		case errors.Is(err, unix.ECONNABORTED), errors.Is(err, unix.EPROTO), errors.Is(err, unix.EPERM):
			continue // the client went away before we took it
		case errors.Is(err, unix.EAGAIN):
			g.backoff = 0
		case fdreserve.Shortage(err) && !released && startFds.Release():
			// What the reserve is for: the connection and its start
			// take its fds.
			released = true
			continue
		case fdreserve.Shortage(err), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
			g.exhausted(sk.String(), err)
		default:
			rj.log().Error("accept", zap.Stringer("socket", sk), zap.Error(err))
		}
		return -1, nil, false
	}
}

// holdAccept stops watching the job's listeners; the kernel backlog holds
// new clients until accepting resumes.
func (g *acceptGate) holdAccept(why holdReason, fields ...zap.Field) {
	if g.hold == why {
		return
	}
	g.hold = why
	g.rj.unwatchSockets()
	if why == holdMaxChildren {
		g.noteMaxChildren(fields)
		return
	}
	g.rj.log().Warn("limit reached: "+why.String()+"; not accepting, clients wait in the backlog", fields...)
}

// resume ends a hold and watches the sockets again.
func (g *acceptGate) resume() {
	g.hold = holdNone
	g.rj.watchSockets()
}

// freed is called when a connection of the job has ended (active are
// still served): accepting resumes below MaxChildren.
func (g *acceptGate) freed(active int) {
	if g.hold == holdMaxChildren && active < g.rj.def.Limits.MaxChildren {
		g.rj.log().Debug("below max children again; accepting", zap.Int("running", active))
		g.resume()
	}
}

// rateOK applies the spawn-rate limit before a connection is accepted:
// with the bucket empty it pauses accepting for Limits.Pause (clients wait in
// the backlog) and reports false; accepting resumes by itself.
func (g *acceptGate) rateOK() bool {
	rj := g.rj
	pause, ok := rj.limiter().rateCheck(time.Now())
	if ok {
		return true
	}
	l := rj.def.Limits
	g.holdAccept(holdRate, zap.Float64("rate_per_s", l.Rate), zap.Int("burst", l.Burst),
		zap.Duration("paused_for", pause))
	g.timer.Stop() // one hold timer at a time
	g.timer = rj.s.loop.after(pause, func() {
		g.timer = nil
		if g.hold == holdRate {
			rj.log().Info("spawn-rate pause over; accepting again")
			g.resume()
		}
	})
	return false
}

// endHold ends a hold without watching the sockets: the job is
// redefined, and activate decides again.
func (g *acceptGate) endHold() {
	g.timer.Stop()
	g.timer = nil
	unwaitFds(g)
	g.hold = holdNone
}

// reset ends every hold and drops the parked connection: the job is
// removed, stopping or serves in another way now.
func (g *acceptGate) reset() {
	g.endHold()
	g.dropParked()
}

// flushLines writes the rate-limited lines still owed.
func (g *acceptGate) flushLines() {
	if g.exhaust != nil {
		g.exhaust.lines.flush()
	}
	if g.maxKids != nil {
		g.maxKids.lines.flush()
	}
}

// maxChildrenEvery is how often at most the max-children line is written: a
// busy job reaches and leaves the limit with every child, and each time
// would otherwise be a line.
const maxChildrenEvery = 10 * time.Second

// noteMaxChildren logs reaching MaxChildren at most once every
// maxChildrenEvery, with the number of times since the last line.
func (g *acceptGate) noteMaxChildren(fields []zap.Field) {
	if g.maxKids == nil {
		mc := &maxChildrenLines{}
		mc.lines = lineLimit{every: maxChildrenEvery, write: func(n uint64) {
			g.rj.log().Warn("limit reached: max children; not accepting, clients wait in the backlog",
				append(mc.fields, zap.Uint64("times_since_last_line", n))...)
		}}
		g.maxKids = mc
	}
	g.maxKids.fields = fields
	g.maxKids.lines.note(g.rj.s.loop)
}

// maxChildrenLines is the log state of MaxChildren being reached.
type maxChildrenLines struct {
	lines  lineLimit
	fields []zap.Field // of the newest time not yet in a line
}

// gateOf is the accept gate of a server, nil for one without.
func gateOf(sv server) *acceptGate {
	switch sv := sv.(type) {
	case *connServer:
		return &sv.gate
	case *internalServer:
		return &sv.gate
	}
	return nil
}
