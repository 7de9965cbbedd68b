//go:build linux

package supervisor

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/builtin"
	"github.com/sockd/sockd/listener"
)

// internalIdle closes an internal-service connection that has been idle
// this long (echo, discard, chargen): a forgotten client must not hold a
// slot for ever.
const internalIdle = 5 * time.Minute

// internalServer serves a job with one of sockd's own services (echo,
// discard, chargen, daytime, time): stream connections are accepted and
// served each by a goroutine; datagrams are answered in place. Loop
// goroutine only.
type internalServer struct {
	rj     *runJob
	gate   acceptGate
	ctx    context.Context
	cancel context.CancelFunc
	active int // stream connections being served
	buf    []byte
}

func newInternalServer(rj *runJob) *internalServer {
	ctx, cancel := context.WithCancel(context.Background())
	is := &internalServer{rj: rj, ctx: ctx, cancel: cancel}
	is.gate = acceptGate{rj: rj, serve: func(pc *parkedConn) bool {
		is.serve(pc.sk, pc.fd, pc.peer)
		return true
	}}
	return is
}

func (is *internalServer) mainChild() *child  { return nil }
func (is *internalServer) children() []*child { return nil }
func (is *internalServer) running() int       { return is.active }
func (is *internalServer) phase() serverPhase { return serverPhase{hold: is.gate.hold} }
func (is *internalServer) flushLines()        { is.gate.flushLines() }

// handler implements server.
func (is *internalServer) handler(sk *listener.Socket) handler {
	is.rj.nonBlocking(sk)
	return handlerFunc(func(uint32) { is.ready(sk) })
}

// activate implements server, as connServer's.
func (is *internalServer) activate(bool) {
	if is.gate.hold == holdNone && is.gate.parkedServed() {
		is.rj.watchSockets()
	}
}

// stopAll ends every connection.
func (is *internalServer) stopAll() {
	is.gate.reset()
	is.cancel()
}

// ready serves readiness on a socket.
func (is *internalServer) ready(sk *listener.Socket) {
	rj := is.rj
	if !sk.Listening {
		is.datagrams(sk)
		return
	}
	for i := 0; i < acceptBatch; i++ {
		cfd, peer, ok := is.gate.acceptNext(sk, is.active)
		if !ok {
			return
		}
		src, port, hasSrc := sockaddrIPPort(peer)
		if why := rj.admit(src, hasSrc); why != "" {
			unix.Close(cfd)
			rj.refuse(netip.AddrPortFrom(src, uint16(port)), why)
			continue
		}
		rj.rateSpend()
		is.serve(sk, cfd, peer)
	}
}

// serve serves an admitted connection on a goroutine. The service gets the
// accepted fd itself (no duplicate: at the fd limit there may be none to
// be had), so nothing after the accept can fail for lack of fds.
func (is *internalServer) serve(sk *listener.Socket, cfd int, peer unix.Sockaddr) {
	rj := is.rj
	conn, err := newFdConn(cfd, peer)
	if err != nil {
		unix.Close(cfd)
		rj.log().Error("internal service: connection closed unserved", zap.Stringer("socket", sk), zap.Error(err))
		return
	}
	is.active++
	src, _, hasSrc := sockaddrIPPort(peer)
	if hasSrc {
		rj.limiter().addSource(src)
	}
	var rec *connRecord
	if rj.records() {
		rec = newConnRecord(sk, cfd, peer)
	}
	name, ctx := rj.def.Internal, is.ctx
	go func() {
		err := builtin.Stream(ctx, name, conn, internalIdle)
		rj.s.loop.post(func() { is.done(src, hasSrc, rec, err) })
	}()
}

func (is *internalServer) done(src netip.Addr, hasSrc bool, rec *connRecord, err error) {
	rj := is.rj
	fdsFreed() // the connection's
	is.active--
	rj.stats.exits++
	if hasSrc {
		rj.limiter().dropSource(src)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		rj.log().Debug("internal service connection ended", zap.Error(err))
	}
	if rec != nil {
		rj.recordInternalEnd(rec, err)
	}
	if rj.ended(is) {
		is.gate.freed(is.active)
	}
}

// internalDatagrams answers the pending datagrams of an internal UDP or
// Unix datagram socket (at most acceptBatch per wake-up).
func (is *internalServer) datagrams(sk *listener.Socket) {
	rj := is.rj
	if is.buf == nil {
		is.buf = make([]byte, 65536)
	}
	for i := 0; i < acceptBatch; i++ {
		n, from, err := unix.Recvfrom(sk.Fd, is.buf, unix.MSG_DONTWAIT)
		if err != nil {
			if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				rj.log().Warn("internal service: recvfrom", zap.Stringer("socket", sk), zap.Error(err))
			}
			return
		}
		rj.stats.accepted++
		ip, port, ok := sockaddrIPPort(from)
		if !ok {
			continue // no reply address we can vet
		}
		if why := rj.admitDatagram(ip); why != "" {
			rj.refuse(netip.AddrPortFrom(ip, uint16(port)), why)
			continue
		}
		reply := builtin.Datagram(rj.def.Internal, is.buf[:n], netip.AddrPortFrom(ip, uint16(port)), time.Now())
		if rj.records() {
			rj.recordDatagram(sk, netip.AddrPortFrom(ip, uint16(port)), n, len(reply))
		}
		if reply == nil {
			continue
		}
		if err := unix.Sendto(sk.Fd, reply, unix.MSG_DONTWAIT, from); err != nil {
			rj.log().Debug("internal service: sendto", zap.Error(err))
		}
	}
}

// admitDatagram applies SockdLimits to one datagram of an internal service:
// the address lists, and the rate (a datagram cannot wait in a backlog, so
// one over the rate is refused, as a new UDP flow of a proxy job is).
func (rj *runJob) admitDatagram(ip netip.Addr) string {
	if _, ok := rj.limiter().rateCheck(time.Now()); !ok {
		return "connection rate limit reached (Rate " + strconv.FormatFloat(rj.def.Limits.Rate, 'g', -1, 64) + "/s)"
	}
	if why := rj.admit(ip, true); why != "" {
		return why
	}
	rj.rateSpend()
	return ""
}
