package proxy

// Connections in flight across an in-place upgrade of sockd. The old
// image freezes the relay (Freeze): its threads stop where they are, and
// every connection they carry keeps its sockets and the pipe of each
// direction with the bytes it holds. Each Server describes its own
// (Handover); those descriptors cross the exec, and the new image's
// Server takes them over on its relay (Config.Adopt), where the bytes
// move on from exactly where they stopped. A connection not on the relay
// (still waiting for its backend, or copied by goroutines because the
// relay could not take it) is not handed over: the exec closes it.

import (
	"net/netip"
	"time"

	"github.com/sockd/sockd/internal/handover"
)

// Handover describes this Server's connections that fz holds (frozen
// with the relay), with their ends' addresses and age.
func (s *Server) Handover(fz *Frozen) []handover.ProxyConn {
	if fz == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []handover.ProxyConn
	for f := range s.conns {
		f.mu.Lock()
		id := f.relayID
		f.mu.Unlock()
		pc, ok := fz.conn(id)
		if !ok {
			continue
		}
		pc.Peer, pc.Local = f.ends()
		pc.Age = time.Since(f.start)
		out = append(out, pc)
	}
	return out
}

// adoptConns takes over the connections an earlier image handed over.
// Without a relay they are closed.
func (s *Server) adoptConns(conns []handover.ProxyConn) {
	if len(conns) == 0 {
		return
	}
	rl := s.getRelay()
	for _, pc := range conns {
		closeOnExec(pc.Fds()) // they crossed the exec without it
		if rl == nil {
			closeFds(pc.Fds())
			continue
		}
		f := &fwd{start: time.Now().Add(-pc.Age), peer: pc.Peer, local: pc.Local}
		if !s.track(f) {
			closeFds(pc.Fds())
			continue
		}
		src := adoptedClient(pc.Peer)
		if g := s.cfg.Gate; g != nil {
			g.Count(src)
		}
		s.active.Add(1)
		s.addUser(1)
		s.wg.Add(1)
		go s.serveAdopted(rl, f, pc, src)
	}
}

// adoptedClient is the client address of an adopted connection as the Gate
// judges it (gateAddr); invalid for a Unix socket client.
func adoptedClient(peer string) netip.Addr {
	ap, err := netip.ParseAddrPort(peer)
	if err != nil {
		return netip.Addr{}
	}
	return gateAddr(ap.Addr())
}

// serveAdopted relays one adopted connection to its end.
func (s *Server) serveAdopted(rl *relay, f *fwd, pc handover.ProxyConn, src netip.Addr) {
	defer func() {
		s.done(src)
		s.untrack(f)
		s.active.Add(-1)
		s.addUser(-1)
		s.wg.Done()
		s.connEnded(f)
	}()
	r := rl.adopt(f, pc)
	s.relayed.Add(1)
	s.toBackend.Add(r.up - pc.Up)
	s.toClient.Add(r.down - pc.Down)
	f.up, f.down = r.up, r.down
	if r.idle {
		s.idleClosed.Add(1)
		f.setReason("idle timeout")
	}
	if r.err != nil {
		f.setReason("error: " + r.err.Error())
	}
}
