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

// internalState is the running state of an internal-service job.
type internalState struct {
	ctx    context.Context
	cancel context.CancelFunc
	active int // stream connections being served (loop goroutine only)
	buf    []byte
}

func (rj *runJob) internal() *internalState {
	if rj.in == nil {
		ctx, cancel := context.WithCancel(context.Background())
		rj.in = &internalState{ctx: ctx, cancel: cancel, buf: make([]byte, 65536)}
	}
	return rj.in
}

// internalReady serves readiness on a socket of an internal-service job:
// stream connections are accepted and served each by a goroutine; datagrams
// are answered in place.
func (rj *runJob) internalReady(sk *listener.Socket) {
	if !sk.Listening {
		rj.internalDatagrams(sk)
		return
	}
	in := rj.internal()
	for i := 0; i < acceptBatch; i++ {
		cfd, peer, ok := rj.acceptNext(sk, in.active)
		if !ok {
			return
		}
		src, _, hasSrc := sockaddrIPPort(peer)
		if why := rj.admit(src, hasSrc); why != "" {
			unix.Close(cfd)
			rj.refuse(src, why)
			continue
		}
		rj.rateSpend()
		rj.serveInternal(sk, cfd, peer)
	}
}

// serveInternal serves an admitted connection on a goroutine. The service
// gets the accepted fd itself (no duplicate: at the fd limit there may be
// none to be had), so nothing after the accept can fail for lack of fds.
func (rj *runJob) serveInternal(sk *listener.Socket, cfd int, peer unix.Sockaddr) {
	conn, err := newFdConn(cfd, peer)
	if err != nil {
		unix.Close(cfd)
		rj.log().Error("internal service: connection closed unserved", zap.Stringer("socket", sk), zap.Error(err))
		return
	}
	in := rj.internal()
	in.active++
	src, _, hasSrc := sockaddrIPPort(peer)
	if hasSrc {
		rj.limits.addSource(src)
	}
	name, ctx := rj.def.Internal, in.ctx
	go func() {
		err := builtin.Stream(ctx, name, conn, internalIdle)
		rj.s.loop.post(func() { rj.internalDone(src, hasSrc, err) })
	}()
}

func (rj *runJob) internalDone(src netip.Addr, hasSrc bool, err error) {
	fdsFreed() // the connection's
	in := rj.internal()
	in.active--
	rj.stats.exits++
	if hasSrc {
		rj.limits.dropSource(src)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		rj.log().Debug("internal service connection ended", zap.Error(err))
	}
	if rj.retiring {
		rj.s.retiredDone(rj)
		return
	}
	if rj.s.shuttingDown {
		rj.s.maybeFinish()
		return
	}
	if rj.acceptHold == "max children" && in.active < rj.def.Limits.MaxChildren {
		rj.log().Debug("below max children again; accepting", zap.Int("running", in.active))
		rj.acceptHold = ""
		rj.watchSockets()
	}
}

// internalDatagrams answers the pending datagrams of an internal UDP or
// Unix datagram socket (at most acceptBatch per wake-up).
func (rj *runJob) internalDatagrams(sk *listener.Socket) {
	in := rj.internal()
	for i := 0; i < acceptBatch; i++ {
		n, from, err := unix.Recvfrom(sk.Fd, in.buf, unix.MSG_DONTWAIT)
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
			rj.refuse(ip, why)
			continue
		}
		reply := builtin.Datagram(rj.def.Internal, in.buf[:n], netip.AddrPortFrom(ip, uint16(port)), time.Now())
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
	if _, ok := rj.limits.rateCheck(time.Now()); !ok {
		return "connection rate limit reached (Rate " + strconv.FormatFloat(rj.def.Limits.Rate, 'g', -1, 64) + "/s)"
	}
	if why := rj.admit(ip, true); why != "" {
		return why
	}
	rj.rateSpend()
	return ""
}

// stopInternal ends every internal-service connection.
func (rj *runJob) stopInternal() {
	if rj.in != nil {
		rj.in.cancel()
	}
}
