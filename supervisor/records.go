//go:build linux

package supervisor

import (
	"net/netip"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/proxy"
	"github.com/sockd/sockd/spawn"
)

// Connection records: with SockdLogConnections (or sockd serve
// --log-connections), one log line per connection or datagram sockd
// serves, written at its end, and one per connection refused by a limit.
// They replace xinetd's log_on_success and log_on_failure lines. Every
// record has record=end or record=refused; in JSON logs each figure is a
// field. Client addresses are personal data: records are off by default.

// records reports whether the job writes connection records.
func (rj *runJob) records() bool { return rj.def.LogConnections || rj.s.cfg.LogConnections }

// connRecord is what a record needs of a connection that serving it does
// not keep otherwise: both ends and when it began.
type connRecord struct {
	peer  []zap.Field // peer (address and port), or peer_pid and peer_uid for a Unix client
	local string
	start time.Time
}

// newConnRecord describes an accepted connection cfd on sk from peer.
func newConnRecord(sk *listener.Socket, cfd int, peer unix.Sockaddr) *connRecord {
	r := &connRecord{local: sk.Addr, start: time.Now()}
	if ip, port, ok := sockaddrIPPort(peer); ok {
		r.peer = []zap.Field{zap.String("peer", netip.AddrPortFrom(ip, uint16(port)).String())}
		if ap, err := netip.ParseAddrPort(sk.Addr); err != nil || ap.Addr().IsUnspecified() {
			if lip, lport, ok := sockaddrIPPort(localAddr(cfd)); ok {
				r.local = netip.AddrPortFrom(lip, uint16(lport)).String()
			}
		}
		return r
	}
	if cred, err := peerCred(cfd); err == nil {
		r.peer = []zap.Field{zap.Int32("peer_pid", cred.Pid), zap.Uint32("peer_uid", cred.Uid)}
	}
	return r
}

// fields are the record's figures, with the duration up to now.
func (r *connRecord) fields(extra ...zap.Field) []zap.Field {
	f := make([]zap.Field, 0, len(r.peer)+4+len(extra))
	f = append(f, zap.String("record", "end"))
	f = append(f, r.peer...)
	f = append(f, zap.String("local", r.local), zap.Duration("duration", time.Since(r.start)))
	return append(f, extra...)
}

// recordChildEnd writes the record of a per-connection child that exited.
func (rj *runJob) recordChildEnd(r *connRecord, pid int, st spawn.ExitStatus) {
	rj.log().Info("connection", r.fields(append([]zap.Field{zap.Int("pid", pid)}, exitFields(st)...)...)...)
}

// exitFields are an exit status as record fields: exit_code, or signal, or
// start_error.
func exitFields(st spawn.ExitStatus) []zap.Field {
	switch {
	case st.StartErr != nil:
		return []zap.Field{zap.String("status", "start failed"), zap.String("start_error", st.StartErr.Error())}
	case st.Signal != 0:
		return []zap.Field{zap.Stringer("status", st), zap.String("signal", unix.SignalName(st.Signal))}
	}
	return []zap.Field{zap.Stringer("status", st), zap.Int("exit_code", st.Code)}
}

// recordInternalEnd writes the record of an internal-service connection.
func (rj *runJob) recordInternalEnd(r *connRecord, err error) {
	reason := "closed"
	if err != nil {
		reason = err.Error()
	}
	rj.log().Info("connection", r.fields(zap.String("service", rj.def.Internal), zap.String("close_reason", reason))...)
}

// recordDatagram writes the record of one datagram an internal service
// answered (or dropped: reply 0).
func (rj *runJob) recordDatagram(sk *listener.Socket, from netip.AddrPort, in, reply int) {
	rj.log().Info("datagram", zap.String("record", "end"), zap.String("peer", from.String()), zap.String("local", sk.Addr),
		zap.String("service", rj.def.Internal), zap.Int("bytes_in", in), zap.Int("bytes_out", reply))
}

// recordRefusal writes the record of a connection (or datagram, or UDP
// flow) refused by a limit: the reason and the limit's key. peer has port
// 0 where the refusal did not see it (a proxy's gate).
func (rj *runJob) recordRefusal(peer netip.AddrPort, why string, reason refuseReason) {
	p := peer.String()
	if peer.Port() == 0 {
		p = peer.Addr().String()
	}
	rj.log().Info("connection refused", zap.String("record", "refused"), zap.String("peer", p),
		zap.String("reason", why), zap.String("limit", reason.key()))
}

// proxyRecords returns the proxy's hook for the end of each connection or
// UDP flow of a job with records, nil for one without. It runs on the
// proxy's goroutines: it only writes a line.
func (rj *runJob) proxyRecords() func(proxy.ConnEnd) {
	if !rj.records() {
		return nil
	}
	log := rj.log()
	return func(e proxy.ConnEnd) {
		kind := "connection"
		if e.Flow {
			kind = "udp flow"
		}
		log.Info(kind, zap.String("record", "end"), zap.String("peer", e.Peer), zap.String("local", e.Local),
			zap.Duration("duration", e.Duration), zap.Uint64("bytes_to_backend", e.ToBackend),
			zap.Uint64("bytes_to_client", e.ToClient), zap.String("close_reason", e.Reason))
	}
}
