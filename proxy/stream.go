package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/internal/fdreserve"
)

// acceptLoop serves one listener. With MaxConns it takes a slot before
// accepting, so clients beyond the limit stay in the kernel backlog.
func (s *Server) acceptLoop(ctx context.Context, ln net.Listener) {
	defer s.wg.Done()
	var aw *acceptWaiter
	if s.sem != nil {
		var err error
		if aw, err = newAcceptWaiter(ln); err != nil {
			s.log.Debug("cannot wait for pending connections; MaxConns slots are held while accepting", zap.Error(err))
		} else {
			defer aw.close()
			context.AfterFunc(ctx, aw.close)
		}
	}
	backoff := 5 * time.Millisecond
	for {
		if !s.pace(ctx) || !s.waitAcceptFds(ctx) {
			return
		}
		if s.sem != nil {
			// Wait for a pending connection without holding a slot, so that
			// several listeners share MaxConns fairly.
			if aw != nil {
				if err := aw.wait(); err != nil {
					return
				}
			}
			select {
			case s.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		c, hold, err := s.acceptClient(ln)
		if err != nil {
			if s.sem != nil {
				<-s.sem
			}
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			// EMFILE, ENFILE (the reserve was taken meanwhile),
			// ECONNABORTED...: back off and go on.
			s.log.Debug("accept", zap.Error(err))
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		s.accepted.Add(1)
		src := clientAddr(c.RemoteAddr())
		if g := s.cfg.Gate; g != nil && !g.Admit(src, false) {
			c.Close()
			hold.Release()
			if s.sem != nil {
				<-s.sem
			}
			continue
		}
		s.active.Add(1)
		s.addUser(1)
		s.wg.Add(1)
		go s.serveConn(ctx, c, src, hold)
	}
}

// pace waits while the Gate says the connection rate is spent; false when
// ctx ended meanwhile.
func (s *Server) pace(ctx context.Context) bool {
	g := s.cfg.Gate
	if g == nil {
		return true
	}
	for d := g.Pace(); d > 0; d = g.Pace() {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
	return true
}

// clientAddr is the client's IP address as the Gate takes it (gateAddr),
// or the invalid address for a client without one (Unix sockets).
func clientAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return gateAddr(ta.AddrPort().Addr())
	}
	return netip.Addr{}
}

// gateAddr is a client address as SockdLimits judge it, the way the inetd
// path gives it (supervisor.sockaddrIPPort): IPv4-mapped addresses
// unmapped, and no zone. A link-local client (fe80::1%eth0) must meet
// Allow and Deny prefixes, which netip.Prefix.Contains never matches with
// a zoned address.
func gateAddr(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// serveConn waits for readiness, connects to the backend, sends the PROXY
// header and forwards until both directions ended.
func (s *Server) serveConn(ctx context.Context, c net.Conn, src netip.Addr, hold fdreserve.Hold) {
	f := &fwd{client: c, start: time.Now()}
	defer s.connEnded(f)
	defer func() {
		hold.Release()
		fdsFreed()
		s.done(src)
		s.active.Add(-1)
		s.addUser(-1)
		if s.sem != nil {
			<-s.sem
		}
		s.wg.Done()
	}()
	if !s.track(f) {
		f.setReason("shutdown")
		c.Close()
		return
	}
	defer s.untrack(f)

	b, err := s.connect(ctx, &hold)
	if err != nil {
		f.setReason("backend not ready: " + err.Error())
		s.failures.Add(1)
		c.Close()
		return
	}
	if s.cfg.ProxyProtocol != "" {
		hdr := streamHeader(s.cfg.ProxyProtocol, c.RemoteAddr(), c.LocalAddr())
		b.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := b.Write(hdr); err != nil {
			f.setReason("error: write PROXY header: " + err.Error())
			s.log.Debug("write PROXY header", zap.Error(err))
			s.failures.Add(1)
			c.Close()
			b.Close()
			return
		}
		b.SetWriteDeadline(time.Time{})
	}
	if !f.setBackend(b) {
		f.setReason("shutdown")
		return // closed by Run meanwhile
	}
	s.forward(f)
}

// connEnded reports an ended connection to Config.OnConnEnd.
func (s *Server) connEnded(f *fwd) {
	if s.cfg.OnConnEnd == nil {
		return
	}
	reason := f.reason
	if reason == "" {
		reason = "closed"
	}
	peer, local := f.ends()
	s.cfg.OnConnEnd(ConnEnd{Peer: peer, Local: local,
		Duration: time.Since(f.start), ToBackend: f.up, ToClient: f.down, Reason: reason})
}

// ends are the client's address and the one it came to, for a record or
// a handover: from the client connection, or as an upgrade handed them.
// Formatted only when asked, not for every connection.
func (f *fwd) ends() (peer, local string) {
	if f.client == nil {
		return f.peer, f.local
	}
	return peerString(f.client.RemoteAddr()), f.client.LocalAddr().String()
}

// peerString is a client address for a record: "unix" for an unnamed Unix
// socket client.
func peerString(a net.Addr) string {
	if s := a.String(); s != "" && s != "@" {
		return s
	}
	return "unix"
}

// connect waits for readiness and dials (releasing the client's Hold
// first); a refused dial after readiness (backend died without
// BackendExited yet, or an external backend went away) waits for readiness
// once more.
func (s *Server) connect(ctx context.Context, hold *fdreserve.Hold) (net.Conn, error) {
	var err error
	for try := 0; try < 2; try++ {
		if err = s.waitReady(ctx); err != nil {
			return nil, err
		}
		var b net.Conn
		var gen uint64
		b, gen, err = s.dialFds(ctx, hold)
		if err == nil {
			return b, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		s.markNotReady(gen)
		s.logDialError(err)
	}
	return nil, err
}

func (s *Server) logDialError(err error) {
	s.mu.Lock()
	now := time.Now()
	quiet := now.Sub(s.lastDialLg) < 10*time.Second
	if !quiet {
		s.lastDialLg = now
	}
	s.mu.Unlock()
	if !quiet {
		s.log.Warn("connect to ready backend failed", zap.Error(err))
	}
}

func (s *Server) track(f *fwd) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[f] = struct{}{}
	return true
}

func (s *Server) untrack(f *fwd) {
	s.mu.Lock()
	delete(s.conns, f)
	s.mu.Unlock()
}

// fwd is one client connection and its backend connection.
type fwd struct {
	mu      sync.Mutex
	client  net.Conn
	backend net.Conn
	closed  bool
	stop    func()       // set once the relay took the connections over
	last    atomic.Int64 // unix nanoseconds of the last observed transfer
	plain   bool         // copy through a buffer, without splice (set before the copy)
	relayID uint64       // its id on the relay, once handed over (f.mu)

	// For the connection's record (Config.OnConnEnd): set by forward and
	// serveConn, read once serveConn has returned.
	start       time.Time
	peer, local string // an adopted connection's ends (it has no client), see ends
	up, down    uint64
	reason      string // why it ended; "" for both sides done (see setReason)
}

// setReason records why the connection ended; the first reason stays.
func (f *fwd) setReason(why string) {
	f.mu.Lock()
	if f.reason == "" {
		f.reason = why
	}
	f.mu.Unlock()
}

func (f *fwd) setBackend(b net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		b.Close()
		return false
	}
	f.backend = b
	return true
}

func (f *fwd) closeBoth() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	if f.stop != nil {
		f.stop()
		return
	}
	f.client.Close()
	if f.backend != nil {
		f.backend.Close()
	}
}

// handOver gives the connections to the relay: add hands over duplicates of
// their fds (false: it could not, and nothing changed), then the net.Conns
// are closed and closeBoth calls stop from now on. Both happen under f's
// lock, so that a closeBoth cannot fall between them. closed reports that
// f was closed before (nothing was handed over).
func (f *fwd) handOver(add func() bool, stop func()) (handed, closed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false, true
	}
	if !add() {
		return false, false
	}
	f.stop = stop
	f.client.Close()
	f.backend.Close()
	return true, false
}

func (f *fwd) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func (f *fwd) touch() { f.last.Store(time.Now().UnixNano()) }

func (f *fwd) idleFor() time.Duration {
	return time.Duration(time.Now().UnixNano() - f.last.Load())
}

// useRelay sends stream connections to the relay where there is one; the
// tests turn it off to cover the goroutine copy, which is what remains
// elsewhere.
var useRelay = haveRelay

// relayResult is how a connection given to the relay ended.
type relayResult struct {
	up, down uint64 // bytes client -> backend, backend -> client
	handed   bool   // false: f was closed before the hand-over; nothing moved
	idle     bool   // closed for the idle timeout
	err      error  // a socket's failure
}

// getRelay returns the relay this Server holds, taking a reference to the
// shared one at the first call: a proxy job that was never used holds no
// threads. Run lets go of it when it returns. nil when there is none.
func (s *Server) getRelay() *relay {
	if !useRelay || s.noRelay {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.relay == nil && !s.closing && time.Since(s.relayFailed) >= 10*time.Second {
		r, err := acquireRelay()
		if err != nil {
			s.relayFailed = time.Now()
			s.log.Warn("proxy relay: cannot start; copying with goroutines, trying again in 10 s", zap.Error(err))
		}
		s.relay = r
	}
	return s.relay
}

// The relay is shared by every Server of the process: its threads (one per
// CPU) exist while some Server holds it.
var sharedRelay struct {
	mu   sync.Mutex
	r    *relay
	refs int
}

func acquireRelay() (*relay, error) {
	sharedRelay.mu.Lock()
	defer sharedRelay.mu.Unlock()
	if sharedRelay.r == nil {
		r, err := startRelay(runtime.GOMAXPROCS(0))
		if err != nil {
			return nil, err
		}
		sharedRelay.r = r
	}
	sharedRelay.refs++
	return sharedRelay.r, nil
}

// releaseRelay lets go of a reference; the last one stops the threads.
func releaseRelay() {
	sharedRelay.mu.Lock()
	defer sharedRelay.mu.Unlock()
	if sharedRelay.refs--; sharedRelay.refs == 0 {
		sharedRelay.r.stop()
		sharedRelay.r = nil
	}
}

// forward copies both directions until both reached EOF (each EOF is passed
// on as a shutdown of the write side) or one failed: on the relay where
// there is one (Linux), else with a goroutine per direction.
func (s *Server) forward(f *fwd) {
	rl := s.getRelay()
	if rl != nil {
		if r, ok := rl.forward(f, s.cfg.IdleTimeout, s.log); ok {
			if r.handed {
				s.relayed.Add(1)
			}
			s.toBackend.Add(r.up)
			s.toClient.Add(r.down)
			f.up, f.down = r.up, r.down
			if r.idle {
				s.idleClosed.Add(1)
				f.setReason("idle timeout")
			}
			if r.err != nil {
				s.log.Debug("forward", zap.Error(r.err))
				f.setReason("error: " + r.err.Error())
			}
			return
		}
	}
	// A connection the relay could not take (no fds for its duplicates and
	// pipes, most likely) is copied through a buffer: splice would take
	// pipes too, which Go keeps cached afterwards.
	f.plain = rl != nil
	f.touch()
	done := make(chan struct{})
	go func() {
		s.copyDir(f, f.backend, f.client, &s.toBackend, &f.up)
		close(done)
	}()
	s.copyDir(f, f.client, f.backend, &s.toClient, &f.down)
	<-done
	f.closeBoth()
}

// idleWindow is how often an idle-timed connection checks for idleness.
func idleWindow(idle time.Duration) time.Duration {
	return min(max(idle/4, 10*time.Millisecond), 15*time.Second)
}

// copyDir copies src to dst. io.Copy between *net.TCPConn and *net.UnixConn
// (stream) uses splice(2) on Linux: TCPConn.ReadFrom, or TCPConn.WriteTo
// towards a Unix socket. With IdleTimeout, the read side gets a deadline
// every idleWindow; a deadline is only ever hit in the splice drain step
// (socket -> pipe), when the pipe is empty, so resuming loses nothing.
//
// moved counts the connection's own bytes this way (this goroutine's alone).
func (s *Server) copyDir(f *fwd, dst, src net.Conn, counter *atomic.Uint64, moved *uint64) {
	idle := s.cfg.IdleTimeout
	win := idleWindow(idle)
	for {
		if idle > 0 {
			src.SetReadDeadline(time.Now().Add(win))
		}
		n, err := copyConn(dst, src, f.plain)
		if n > 0 {
			counter.Add(uint64(n))
			*moved += uint64(n)
			f.touch()
		}
		switch {
		case err == nil: // EOF from src: pass it on, keep the other direction
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				if cw.CloseWrite() == nil {
					return
				}
			}
			f.closeBoth()
			return
		case idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) && !f.isClosed():
			if f.idleFor() < idle {
				continue
			}
			s.idleClosed.Add(1)
			f.setReason("idle timeout")
			f.closeBoth()
			return
		default:
			if !f.isClosed() {
				f.setReason("error: " + err.Error())
			}
			f.closeBoth()
			return
		}
	}
}

// copyConn is io.Copy with splice for every pair of stream sockets: Go
// splices TCP -> TCP, Unix -> TCP and TCP -> Unix itself; copyUnix does
// Unix -> Unix. plain copies through a buffer instead, taking no fd.
func copyConn(dst, src net.Conn, plain bool) (int64, error) {
	if plain {
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		// Only the Reader and Writer methods: no ReadFrom, WriteTo.
		return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
	}
	if du, ok := dst.(*net.UnixConn); ok {
		if su, ok := src.(*net.UnixConn); ok {
			return copyUnix(du, su)
		}
	}
	return io.Copy(dst, src)
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
