package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/internal/handover"
	"github.com/sockd/sockd/internal/unixdial"
)

// DefaultReadyTimeout is used when Config.ReadyTimeout is 0 (the same value
// as job.DefaultProxyReadyTimeout).
const DefaultReadyTimeout = 10 * time.Second

// DefaultUDPIdleTimeout is how long a UDP flow lives without a datagram
// either way when Config.IdleTimeout is 0.
const DefaultUDPIdleTimeout = 60 * time.Second

// UDPStartGrace is how long a UDP-only proxy without Notify waits after
// Backend.Start returned before it sends datagrams: a UDP backend cannot be
// probed with a connect. Use Notify for backends that need longer.
const UDPStartGrace = 250 * time.Millisecond

// Config is one proxy job's settings.
type Config struct {
	Label   string // job label, for logs and errors
	Backend string // "host:port" (TCP/UDP) or an absolute Unix socket path
	// Notify: the backend is ready when it sends READY=1 to the NOTIFY_SOCKET
	// the Server creates (passed to Backend.Start as NOTIFY_SOCKET=...),
	// instead of when a connect to Backend succeeds.
	Notify bool
	// ReadyTimeout: how long after Backend.Start clients wait for readiness;
	// then they are closed and one log line says why. 0 = DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// IdleTimeout: a stream connection with no bytes either way for this long
	// is closed (0 = never). UDP flows expire after it (0 = DefaultUDPIdleTimeout).
	IdleTimeout time.Duration
	// StopAfterIdle: Backend.Stop is called after this long with no
	// connection and no UDP flow (0 = never).
	StopAfterIdle time.Duration
	// ProxyProtocol: "", "v1" or "v2": header sent to the backend first.
	ProxyProtocol string
	// MaxConns: concurrent client connections; beyond it the Server stops
	// accepting and clients wait in the kernel backlog. It also bounds the
	// number of UDP flows (datagrams of further clients are dropped).
	// 0 = unlimited.
	MaxConns int
	// Gate admits clients (the job's SockdLimits): every stream connection
	// and every datagram that would open a UDP flow. nil admits everyone.
	Gate Gate
	// BackendUser is who the backend process runs as (the job's UserName,
	// GroupName and groups); nil: sockd's own user. A root sockd connects
	// to a Unix socket Backend with these rights (unixdial.Dial: without
	// them, as root, only through directories no other user may change),
	// and the NOTIFY_SOCKET belongs to this user, mode 0600.
	BackendUser *unixdial.Cred
	// OnConnEnd, when set, is called at the end of every stream connection
	// and UDP flow with what it moved and why it ended (the supervisor's
	// connection records). It runs on the Server's goroutines.
	OnConnEnd func(ConnEnd)
	// Adopt are connections in flight that an earlier image of sockd
	// handed across an in-place upgrade (Server.Handover): Run takes them
	// over on the relay before it accepts anything.
	Adopt []handover.ProxyConn
}

// ConnEnd is one ended client connection or UDP flow.
type ConnEnd struct {
	Peer, Local string // the client's address and the address it came to
	Flow        bool   // a UDP flow, not a stream connection
	Duration    time.Duration
	// ToBackend and ToClient are the payload bytes each way.
	ToBackend, ToClient uint64
	// Reason is why it ended: "closed" (both sides done), "idle timeout",
	// "shutdown", "backend not ready: ...", "error: ...".
	Reason string
}

// Gate decides who is served; the supervisor implements it with the job's
// SockdLimits, so that they mean what they mean for inetd jobs. It is called
// from the Server's goroutines concurrently.
type Gate interface {
	// Admit is asked for each accepted stream connection (flow false) and
	// for each datagram from a client without a UDP flow (flow true); src is
	// the client's address, invalid for a Unix socket client. It returns
	// false to refuse: the Gate counts and logs the refusal, the Server
	// closes the connection or drops the datagram. After true, Done(src) is
	// called once when the connection or flow ends.
	Admit(src netip.Addr, flow bool) bool
	Done(src netip.Addr)
	// Count is told of each stream connection an earlier image admitted
	// and handed over (Config.Adopt): it is served whatever the limits
	// say now, and counts as the client's (MaxPerSource) until Done(src)
	// at its end.
	Count(src netip.Addr)
	// Pace is asked before each accept: > 0 means the connection rate is
	// spent and accepting pauses that long (clients wait in the backlog).
	Pace() time.Duration
}

// Backend is implemented by the supervisor, which owns processes.
//
// Start makes sure the backend process runs: it is idempotent while the
// process runs and a no-op returning nil for an external backend. env holds
// extra environment variables for the process (NOTIFY_SOCKET=... when
// Config.Notify). Stop stops the process (SIGTERM, ExitTimeOut, SIGKILL); the
// Server calls it for the idle stop. The Server never calls Start and Stop
// concurrently, but calls them from its own goroutines. MainPID is the pid
// of the backend's main process while it runs, 0 otherwise (and always for
// an external backend); the Server accepts sd_notify datagrams only from
// that process and its descendants, and asks from its own goroutine.
type Backend interface {
	Start(env []string) error
	Stop()
	MainPID() int
}

// Stats are counters since New.
type Stats struct {
	Accepted       uint64 // stream connections accepted
	Active         int64  // stream connections open now (waiting for readiness or forwarding)
	Flows          int64  // UDP flows open now
	FlowsCreated   uint64 // UDP flows created
	BytesToBackend uint64 // bytes forwarded client -> backend (payload, without PROXY headers)
	BytesToClient  uint64 // bytes forwarded backend -> client
	Failures       uint64 // clients closed unserved (backend not ready in time, backend refused) and dropped datagrams
	IdleClosed     uint64 // connections and flows closed by IdleTimeout
	BackendStarts  uint64 // calls of Backend.Start
	BackendStops   uint64 // idle stops (calls of Backend.Stop)
	Ready          bool   // the backend is ready now
}

// ErrNotReady is returned (wrapped) to waiting clients when the backend did
// not become ready within ReadyTimeout.
var ErrNotReady = errors.New("proxy: backend not ready")

// Server is one proxy job's runtime. Create it with New, serve with Run.
type Server struct {
	cfg      Config
	be       Backend
	log      *zap.Logger
	lns      []net.Listener
	pcs      []*net.UDPConn
	network  string // "tcp" or "unix": how to dial the backend
	probe    probeKind
	flowIdle time.Duration
	sem      chan struct{} // nil when MaxConns is 0

	// readiness and backend state, guarded by mu
	mu         sync.Mutex
	ready      bool
	started    bool     // Start succeeded and no Stop or exit since
	ep         *episode // start attempt in progress
	gen        uint64   // bumped when the backend stops or exits
	spare      net.Conn // the probe's successful connection, handed to the next client
	spareAt    time.Time
	users      int // stream connections + UDP flows
	idleTimer  *time.Timer
	idleSeq    uint64
	conns      map[*fwd]struct{}
	flows      map[flowKey]*flow
	closing    bool
	lastDialLg time.Time

	readyFlag atomic.Bool // mirrors ready for the UDP hot path
	beMu      sync.Mutex  // serializes Backend.Start and Backend.Stop

	notifyDir  string
	notifyPath string
	notifyConn *net.UnixConn
	refused    refusedNotify // readNotify's goroutine only

	ctx         context.Context // Run's context
	wg          sync.WaitGroup
	relay       *relay    // the shared relay, held from the first connection; under mu
	relayFailed time.Time // it could not be started (goroutine copies until a retry); under mu

	relayed atomic.Uint64 // connections the relay forwarded (for tests)
	noRelay bool          // copy with goroutines (for benchmarks)

	accepted, flowsCreated, toBackend, toClient, failures, idleClosed, starts, stops atomic.Uint64
	active, nflows                                                                   atomic.Int64
}

type probeKind int

const (
	probeConnect probeKind = iota
	probeNotify
	probeGrace
)

// New checks cfg and returns a Server for the given sockets. The Server owns
// listeners and packetConns from now on: Run closes them when it returns.
// packetConns must be *net.UDPConn. New takes no other resources.
func New(cfg Config, listeners []net.Listener, packetConns []net.PacketConn, be Backend, log *zap.Logger) (*Server, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if be == nil {
		return nil, fmt.Errorf("proxy %s: no Backend", cfg.Label)
	}
	if len(listeners) == 0 && len(packetConns) == 0 {
		return nil, fmt.Errorf("proxy %s: no sockets to serve", cfg.Label)
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.IdleTimeout < 0 || cfg.StopAfterIdle < 0 || cfg.MaxConns < 0 {
		return nil, fmt.Errorf("proxy %s: negative IdleTimeout, StopAfterIdle or MaxConns", cfg.Label)
	}
	s := &Server{
		cfg:      cfg,
		be:       be,
		log:      log.With(zap.String("job", cfg.Label), zap.String("backend", cfg.Backend)),
		lns:      listeners,
		conns:    make(map[*fwd]struct{}),
		flows:    make(map[flowKey]*flow),
		flowIdle: cfg.IdleTimeout,
	}
	if s.flowIdle == 0 {
		s.flowIdle = DefaultUDPIdleTimeout
	}
	switch {
	case strings.HasPrefix(cfg.Backend, "/"):
		s.network = "unix"
		if len(packetConns) > 0 {
			return nil, fmt.Errorf("proxy %s: backend %s: UDP sockets need a host:port backend, not a Unix socket path", cfg.Label, cfg.Backend)
		}
	default:
		if _, _, err := net.SplitHostPort(cfg.Backend); err != nil {
			return nil, fmt.Errorf("proxy %s: backend %q: want host:port or an absolute Unix socket path: %w", cfg.Label, cfg.Backend, err)
		}
		s.network = "tcp"
	}
	switch cfg.ProxyProtocol {
	case "":
	case "v1":
		if len(packetConns) > 0 {
			return nil, fmt.Errorf("proxy %s: PROXY protocol v1 cannot describe UDP: use \"v2\"", cfg.Label)
		}
	case "v2":
	default:
		return nil, fmt.Errorf("proxy %s: unknown PROXY protocol version %q: use \"v1\" or \"v2\"", cfg.Label, cfg.ProxyProtocol)
	}
	for i, pc := range packetConns {
		u, ok := pc.(*net.UDPConn)
		if !ok {
			return nil, fmt.Errorf("proxy %s: packet socket %d is %T: only UDP is proxied", cfg.Label, i, pc)
		}
		s.pcs = append(s.pcs, u)
	}
	switch {
	case cfg.Notify:
		s.probe = probeNotify
	case len(listeners) == 0:
		s.probe = probeGrace
	default:
		s.probe = probeConnect
	}
	if cfg.MaxConns > 0 {
		s.sem = make(chan struct{}, cfg.MaxConns)
	}
	return s, nil
}

// Run serves until ctx is cancelled. Then it closes the listeners and packet
// sockets, closes every client connection and UDP flow (waiting clients too),
// waits for its goroutines and returns nil. It does not stop the backend:
// that is the supervisor's decision. Run must be called once.
func (s *Server) Run(ctx context.Context) error {
	s.ctx = ctx
	if s.cfg.Notify {
		if err := s.openNotify(); err != nil {
			s.closeSockets()
			return err
		}
		s.wg.Add(1)
		go s.readNotify()
	}
	s.adoptConns(s.cfg.Adopt)
	for _, ln := range s.lns {
		s.wg.Add(1)
		go s.acceptLoop(ctx, ln)
	}
	for i, pc := range s.pcs {
		s.wg.Add(1)
		go s.readPackets(ctx, i, pc)
	}
	<-ctx.Done()

	s.mu.Lock()
	s.closing = true
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	s.dropSpareLocked()
	for f := range s.conns {
		f.closeBoth()
	}
	for _, fl := range s.flows {
		fl.close()
	}
	s.mu.Unlock()
	s.closeSockets()
	if s.notifyConn != nil {
		s.notifyConn.Close()
	}
	s.wg.Wait()
	if s.relay != nil { // none of this Server's connections is left on it
		releaseRelay()
		s.relay = nil
	}
	if s.notifyDir != "" {
		os.RemoveAll(s.notifyDir)
	}
	return nil
}

func (s *Server) closeSockets() {
	for _, ln := range s.lns {
		ln.Close()
	}
	for _, pc := range s.pcs {
		pc.Close()
	}
}

// BackendExited tells the Server that the backend process exited (the
// supervisor calls it). Readiness must be established again: the next client
// calls Backend.Start and waits. A start attempt in progress calls Start
// again (the supervisor's throttle bounds a crash loop) until ReadyTimeout.
func (s *Server) BackendExited() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setReadyLocked(false)
	s.started = false
	s.gen++
	s.dropSpareLocked()
	if s.idleTimer != nil {
		s.idleTimer.Stop()
		s.idleSeq++
	}
	if s.ep != nil {
		select {
		case s.ep.exited <- struct{}{}:
		default:
		}
	}
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Accepted:       s.accepted.Load(),
		Active:         s.active.Load(),
		Flows:          s.nflows.Load(),
		FlowsCreated:   s.flowsCreated.Load(),
		BytesToBackend: s.toBackend.Load(),
		BytesToClient:  s.toClient.Load(),
		Failures:       s.failures.Load(),
		IdleClosed:     s.idleClosed.Load(),
		BackendStarts:  s.starts.Load(),
		BackendStops:   s.stops.Load(),
		Ready:          s.readyFlag.Load(),
	}
}

// NotifySocket returns the path of the NOTIFY_SOCKET while Run runs with
// Config.Notify, "" otherwise.
func (s *Server) NotifySocket() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notifyPath
}

// users counts clients for the idle stop.
func (s *Server) addUser(d int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addUserLocked(d)
}

func (s *Server) addUserLocked(d int) {
	s.users += d
	if s.users > 0 {
		if s.idleTimer != nil {
			s.idleTimer.Stop()
			s.idleSeq++
		}
		return
	}
	s.armIdleLocked()
}

func (s *Server) armIdleLocked() {
	if s.cfg.StopAfterIdle <= 0 || s.users > 0 || !s.started || s.ep != nil || s.closing {
		return
	}
	s.idleSeq++
	seq := s.idleSeq
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	s.idleTimer = time.AfterFunc(s.cfg.StopAfterIdle, func() { s.idleStop(seq) })
}

func (s *Server) idleStop(seq uint64) {
	s.mu.Lock()
	if seq != s.idleSeq || s.users > 0 || !s.started || s.ep != nil || s.closing {
		s.mu.Unlock()
		return
	}
	s.started = false
	s.setReadyLocked(false)
	s.gen++
	s.dropSpareLocked()
	// Hold beMu before letting go of mu: a client arriving now starts the
	// backend only after Stop returned.
	s.beMu.Lock()
	s.mu.Unlock()
	s.log.Info("backend idle: stopping it", zap.Duration("idle", s.cfg.StopAfterIdle))
	s.stops.Add(1)
	s.be.Stop()
	s.beMu.Unlock()
}

func (s *Server) setReadyLocked(r bool) {
	s.ready = r
	s.readyFlag.Store(r)
}
