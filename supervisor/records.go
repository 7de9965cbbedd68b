//go:build linux

package supervisor

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/linelog"
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
	peer    netip.AddrPort // an inet client's address and port
	peerPID int32          // a Unix client's pid and uid (hasCred)
	peerUID uint32
	hasCred bool
	local   string
	start   time.Time
}

// newConnRecord describes an accepted connection cfd on sk from peer.
func newConnRecord(sk *listener.Socket, cfd int, peer unix.Sockaddr) *connRecord {
	r := &connRecord{local: sk.Addr, start: time.Now()}
	if ip, port, ok := sockaddrIPPort(peer); ok {
		r.peer = netip.AddrPortFrom(ip, uint16(port))
		if ap, err := netip.ParseAddrPort(sk.Addr); err != nil || ap.Addr().IsUnspecified() {
			if lip, lport, ok := sockaddrIPPort(localAddr(cfd)); ok {
				r.local = netip.AddrPortFrom(lip, uint16(lport)).String()
			}
		}
		return r
	}
	if cred, err := peerCred(cfd); err == nil {
		r.peerPID, r.peerUID, r.hasCred = cred.Pid, cred.Uid, true
	}
	return r
}

// line starts the record's line (message msg): record=end, the peer, the
// local address and the duration up to now. Nil when the log's level
// leaves out info lines.
func (r *connRecord) line(rj *runJob, msg string) *linelog.Line {
	l := rj.recLog().Info(msg).Str("record", "end")
	if r.hasCred {
		l.Int("peer_pid", int64(r.peerPID)).Uint("peer_uid", uint64(r.peerUID))
	} else if r.peer.IsValid() {
		var b [64]byte
		l.Bytes("peer", r.peer.AppendTo(b[:0]))
	}
	return l.Str("local", r.local).Dur("duration", time.Since(r.start))
}

// recordChildEnd writes the record of a per-connection child that exited
// (pid 0: it never started).
func (rj *runJob) recordChildEnd(r *connRecord, pid int, st spawn.ExitStatus) {
	l := r.line(rj, "connection")
	if pid != 0 {
		l.Int("pid", int64(pid))
	}
	exitFields(l, st).Write()
}

// exitFields appends an exit status as record fields: exit_code, or
// signal, or start_error.
func exitFields(l *linelog.Line, st spawn.ExitStatus) *linelog.Line {
	switch {
	case st.StartErr != nil:
		return l.Str("status", "start failed").Str("start_error", st.StartErr.Error())
	case st.Signal != 0:
		return l.Str("status", st.String()).Str("signal", unix.SignalName(st.Signal))
	}
	return l.Str("status", exitText(st)).Int("exit_code", int64(st.Code))
}

// exitTexts are the statuses of exit codes 0-255, made once: a record's
// status without a Sprintf.
var exitTexts = func() (t [256]string) {
	for i := range t {
		t[i] = spawn.ExitStatus{Code: i}.String()
	}
	return t
}()

// exitText is the status of a process that exited (not signalled).
func exitText(st spawn.ExitStatus) string {
	if st.Code >= 0 && st.Code < len(exitTexts) {
		return exitTexts[st.Code]
	}
	return st.String()
}

// recordInternalEnd writes the record of an internal-service connection.
func (rj *runJob) recordInternalEnd(r *connRecord, err error) {
	reason := "closed"
	if err != nil {
		reason = err.Error()
	}
	r.line(rj, "connection").Str("service", rj.def.Internal).Str("close_reason", reason).Write()
}

// recordDatagram writes the record of one datagram an internal service
// answered (or dropped: reply 0).
func (rj *runJob) recordDatagram(sk *listener.Socket, from netip.AddrPort, in, reply int) {
	var b [64]byte
	rj.recLog().Info("datagram").Str("record", "end").Bytes("peer", from.AppendTo(b[:0])).Str("local", sk.Addr).
		Str("service", rj.def.Internal).Int("bytes_in", int64(in)).Int("bytes_out", int64(reply)).Write()
}

// recordRefusal writes the record of a connection (or datagram, or UDP
// flow) refused by a limit: the reason and the limit's key. peer has port
// 0 where the refusal did not see it (a proxy's gate).
func (rj *runJob) recordRefusal(peer netip.AddrPort, why string, reason refuseReason) {
	var b [64]byte
	p := peer.AppendTo(b[:0])
	if peer.Port() == 0 {
		p = peer.Addr().AppendTo(b[:0])
	}
	rj.recLog().Info("connection refused").Str("record", "refused").Bytes("peer", p).
		Str("reason", why).Str("limit", reason.key()).Write()
}

// proxyRecords returns the proxy's hook for the end of each connection or
// UDP flow of a job with records, nil for one without. It runs on the
// proxy's goroutines: it only writes a line.
func (rj *runJob) proxyRecords() func(proxy.ConnEnd) {
	if !rj.records() {
		return nil
	}
	log := rj.recLog()
	return func(e proxy.ConnEnd) {
		kind := "connection"
		if e.Flow {
			kind = "udp flow"
		}
		log.Info(kind).Str("record", "end").Str("peer", e.Peer).Str("local", e.Local).Dur("duration", e.Duration).
			Uint("bytes_to_backend", e.ToBackend).Uint("bytes_to_client", e.ToClient).Str("close_reason", e.Reason).Write()
	}
}
