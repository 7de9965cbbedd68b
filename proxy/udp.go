package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// maxQueued is how many datagrams of one flow are held while the backend
// starts; more are dropped (and counted as failures).
const maxQueued = 64

// flowKey names a UDP flow: the public socket and the client address.
type flowKey struct {
	pc     int
	client netip.AddrPort
}

// flow is one UDP client: its own socket connected to the backend, so that
// replies can be told apart and sent back through the public socket.
type flow struct {
	s      *Server
	key    flowKey
	src    netip.Addr // the client as the Gate was asked about it
	pc     *net.UDPConn
	conn   *net.UDPConn
	hdr    []byte // PROXY v2 header prepended to every datagram, or nil
	last   atomic.Int64
	closed atomic.Bool
	// For the flow's record (Config.OnConnEnd).
	start    time.Time
	up, down atomic.Uint64

	mu      sync.Mutex
	queue   [][]byte
	waiting bool
	scratch []byte
}

// readPackets serves one public UDP socket.
func (s *Server) readPackets(ctx context.Context, idx int, pc *net.UDPConn) {
	defer s.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, client, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			continue
		}
		fl := s.flowFor(ctx, idx, pc, client)
		if fl == nil {
			s.failures.Add(1)
			continue
		}
		fl.send(ctx, buf[:n])
	}
}

func (s *Server) flowFor(ctx context.Context, idx int, pc *net.UDPConn, client netip.AddrPort) *flow {
	key := flowKey{pc: idx, client: client}
	s.mu.Lock()
	fl := s.flows[key]
	full := s.cfg.MaxConns > 0 && len(s.flows) >= s.cfg.MaxConns
	s.mu.Unlock()
	if fl != nil {
		return fl
	}
	if full {
		return nil
	}
	src := gateAddr(client.Addr())
	if g := s.cfg.Gate; g != nil && !g.Admit(src, true) {
		return nil
	}
	// Only this goroutine creates flows for idx, so no one else adds key.
	c, err := net.Dial("udp", s.cfg.Backend)
	if err != nil {
		s.done(src)
		s.logDialError(err)
		return nil
	}
	fl = &flow{s: s, key: key, src: src, pc: pc, conn: c.(*net.UDPConn), start: time.Now()}
	if s.cfg.ProxyProtocol == "v2" {
		fl.hdr = v2Header(net.UDPAddrFromAddrPort(client), pc.LocalAddr(), v2Dgram)
	}
	fl.touch()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close()
		s.done(src)
		return nil
	}
	s.flows[key] = fl
	s.addUserLocked(1)
	s.wg.Add(1)
	s.mu.Unlock()
	s.nflows.Add(1)
	s.flowsCreated.Add(1)
	go fl.readBackend()
	return fl
}

func (fl *flow) touch() { fl.last.Store(time.Now().UnixNano()) }

func (fl *flow) close() {
	if fl.closed.CompareAndSwap(false, true) {
		fl.conn.Close()
	}
}

// send forwards one client datagram, or queues it while the backend is not
// ready (and makes sure someone waits for readiness).
func (fl *flow) send(ctx context.Context, p []byte) {
	s := fl.s
	fl.touch()
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if !fl.waiting && s.readyFlag.Load() {
		fl.writeLocked(p)
		return
	}
	if len(fl.queue) >= maxQueued {
		s.failures.Add(1)
	} else {
		fl.queue = append(fl.queue, slices.Clone(p))
	}
	if !fl.waiting {
		fl.waiting = true
		s.wg.Add(1)
		go fl.await(ctx)
	}
}

func (fl *flow) await(ctx context.Context) {
	defer fl.s.wg.Done()
	err := fl.s.waitReady(ctx)
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if err != nil {
		fl.s.failures.Add(uint64(len(fl.queue)))
	} else {
		for _, p := range fl.queue {
			fl.writeLocked(p)
		}
	}
	fl.queue = nil
	fl.waiting = false
}

func (fl *flow) writeLocked(p []byte) {
	out := p
	if fl.hdr != nil {
		fl.scratch = append(append(fl.scratch[:0], fl.hdr...), p...)
		out = fl.scratch
	}
	if _, err := fl.conn.Write(out); err != nil {
		// ECONNREFUSED from an earlier ICMP error, or a closed flow: the
		// datagram is lost, as UDP allows.
		fl.s.failures.Add(1)
		return
	}
	fl.up.Add(uint64(len(p)))
	fl.s.toBackend.Add(uint64(len(p)))
}

// readBackend sends the backend's replies to the client and expires the flow.
func (fl *flow) readBackend() {
	s := fl.s
	defer s.wg.Done()
	idle := s.flowIdle
	win := idleWindow(idle)
	buf := make([]byte, 64<<10)
	reason := "shutdown"
	defer func() { fl.ended(reason) }()
	for !fl.closed.Load() {
		fl.conn.SetReadDeadline(time.Now().Add(win))
		n, err := fl.conn.Read(buf)
		if err == nil {
			fl.touch()
			if _, err := fl.pc.WriteToUDPAddrPort(buf[:n], fl.key.client); err == nil {
				s.toClient.Add(uint64(n))
				fl.down.Add(uint64(n))
			}
			continue
		}
		if fl.closed.Load() {
			break
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if time.Duration(time.Now().UnixNano()-fl.last.Load()) >= idle {
				s.idleClosed.Add(1)
				reason = "idle timeout"
				break
			}
			continue
		}
		if isConnRefused(err) {
			continue // the backend port is closed right now (ICMP)
		}
		s.log.Debug("UDP flow read", zap.Error(err))
		reason = "error: " + err.Error()
		break
	}
	fl.close()
	s.mu.Lock()
	if s.flows[fl.key] == fl {
		delete(s.flows, fl.key)
		s.addUserLocked(-1)
	}
	s.mu.Unlock()
	s.nflows.Add(-1)
	s.done(fl.src)
}

// ended reports the flow's end to Config.OnConnEnd.
func (fl *flow) ended(reason string) {
	if f := fl.s.cfg.OnConnEnd; f != nil {
		f(ConnEnd{Peer: fl.key.client.String(), Local: fl.pc.LocalAddr().String(), Flow: true,
			Duration: time.Since(fl.start), ToBackend: fl.up.Load(), ToClient: fl.down.Load(), Reason: reason})
	}
}

// done tells the Gate that a client's connection or flow ended.
func (s *Server) done(src netip.Addr) {
	if g := s.cfg.Gate; g != nil {
		g.Done(src)
	}
}

func isConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
