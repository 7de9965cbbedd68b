//go:build linux

package supervisor

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/handover"
	"github.com/sockd/sockd/internal/unixdial"
	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/proxy"
	"github.com/sockd/sockd/spawn"
)

// proxyState is the running state of a proxy job: the proxy.Server that
// owns accepting and forwarding (on duplicates of the job's sockets) and
// the waiters of a backend stop.
type proxyState struct {
	srv     *proxy.Server
	be      *proxyBackend
	cancel  context.CancelFunc
	running bool // Run has not returned yet (loop goroutine only)
	waiters []chan struct{}
}

// proxyServer serves a proxy job: a proxy.Server accepts and forwards on
// its own goroutines, and the loop starts and stops the backend process
// for it (proxyBackend). Loop goroutine only.
type proxyServer struct {
	rj     *runJob
	proc   *child // the backend process
	th     throttle
	px     *proxyState
	pxDone proxy.Stats // counters of the proxy servers that ended
	env    []string    // the backend's environment from the proxy
	wanted string      // a sockd start of the backend: who asked
	// adoptConns are connections in flight an upgrade handed over, for
	// the next proxy server (adopt.go).
	adoptConns []handover.ProxyConn
}

func (ps *proxyServer) mainChild() *child                { return ps.proc }
func (ps *proxyServer) children() []*child               { return nil }
func (ps *proxyServer) handler(*listener.Socket) handler { return nil } // the proxy.Server accepts
func (ps *proxyServer) flushLines()                      {}
func (ps *proxyServer) serving() bool                    { return ps.px != nil && ps.px.running }
func (ps *proxyServer) running() int {
	return boolInt(ps.proc != nil) + boolInt(ps.serving())
}
func (ps *proxyServer) phase() serverPhase {
	return serverPhase{mainRunning: ps.proc != nil, mainStopping: ps.proc != nil && ps.proc.stopping,
		mainStarting: ps.proc != nil && ps.serving() && !ps.px.srv.Stats().Ready, throttled: ps.th.waiting()}
}

// stopAll ends the proxy server and stops the backend.
func (ps *proxyServer) stopAll() {
	ps.th.cancel()
	ps.stopServer()
	if ps.proc != nil {
		ps.rj.stop(ps.proc)
	}
}

// activate implements server: it starts the proxy server. The server runs
// on its own goroutines; it calls back into the loop through proxyBackend
// to start and stop the backend process.
func (ps *proxyServer) activate(bool) {
	rj := ps.rj
	if ps.serving() || rj.closing() {
		return
	}
	var lns []net.Listener
	var pcs []net.PacketConn
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
		for _, p := range pcs {
			p.Close()
		}
	}
	for _, sk := range rj.socks {
		f, err := dupFile(sk.Fd, sk.String())
		if err != nil {
			rj.log().Error("proxy: duplicating socket", zap.Stringer("socket", sk), zap.Error(err))
			continue
		}
		if sk.Listening {
			l, err := net.FileListener(f)
			f.Close()
			if err != nil {
				rj.log().Error("proxy: socket", zap.Stringer("socket", sk), zap.Error(err))
				continue
			}
			lns = append(lns, l)
		} else {
			pc, err := net.FilePacketConn(f)
			f.Close()
			if err != nil {
				rj.log().Error("proxy: socket", zap.Stringer("socket", sk), zap.Error(err))
				continue
			}
			pcs = append(pcs, pc)
		}
	}
	user, err := rj.backendUser()
	if err != nil {
		closeAll()
		rj.log().Error("proxy job not served: the backend's user", zap.Error(err))
		return
	}
	p := rj.def.Proxy
	cfg := proxy.Config{
		Label:         rj.def.Label,
		Backend:       p.Backend,
		Notify:        p.Notify,
		ReadyTimeout:  p.ReadyTimeout,
		IdleTimeout:   p.IdleTimeout,
		StopAfterIdle: p.StopAfterIdle,
		ProxyProtocol: p.ProxyProtocol,
		MaxConns:      rj.def.Limits.MaxChildren,
		Gate:          newProxyGate(rj),
		BackendUser:   user,
		OnConnEnd:     rj.proxyRecords(),
		Adopt:         ps.adoptConns,
	}
	ps.adoptConns = nil
	be := &proxyBackend{ps: ps}
	// The server adds the job and backend fields to its lines itself.
	srv, err := proxy.New(cfg, lns, pcs, be, rj.s.log)
	if err != nil {
		closeAll()
		for _, c := range cfg.Adopt { // an upgrade's connections: nobody takes them
			closeFds(c.Fds())
		}
		rj.log().Error("proxy job not served", zap.Error(err))
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	px := &proxyState{srv: srv, be: be, cancel: cancel, running: true}
	ps.px = px
	go func() {
		err := srv.Run(ctx)
		rj.s.loop.post(func() { ps.serverDone(px, err) })
	}()
}

// backendUser is who the backend runs as, for a root sockd: the job's
// UserName, GroupName and groups as its process gets them (resolved now
// for an external backend); nil when it runs as sockd's own user. The
// proxy connects to a Unix socket Backend with these rights and gives the
// NOTIFY_SOCKET to this user.
func (rj *runJob) backendUser() (*unixdial.Cred, error) {
	if !rj.s.asRoot {
		return nil, nil
	}
	var c spawn.Credentials
	var ok bool
	if rj.tmpl != nil {
		c, ok = rj.tmpl.Credentials()
	} else {
		var err error
		if c, ok, err = spawn.JobCredentials(rj.def); err != nil {
			return nil, fmt.Errorf("job %s: %w", rj.def.Label, err)
		}
	}
	if !ok {
		return nil, nil
	}
	return &unixdial.Cred{UID: c.UID, GID: c.GID, Groups: c.Groups}, nil
}

func (ps *proxyServer) serverDone(px *proxyState, err error) {
	rj := ps.rj
	px.running = false
	ps.pxDone = addStats(ps.pxDone, px.srv.Stats())
	if err != nil {
		rj.log().Error("proxy server stopped", zap.Error(err))
	}
	if !rj.ended(ps) || ps.px != px {
		return
	}
	if ps.proc == nil {
		// Redefined while running: serve again under the new definition.
		ps.px = nil
		ps.activate(false)
	}
}

// stopServer ends the proxy server (its connections are closed); the
// backend process is stopped like any main process.
func (ps *proxyServer) stopServer() {
	if ps.serving() {
		ps.px.cancel()
	}
}

// proxyStats returns, for the SIGUSR1 line of a proxy job, the connections
// its servers accepted and its other figures; for other jobs accepted as
// given and no fields. The counts run since the job was loaded, across the
// servers a redefinition replaces (proxyTotals).
func (rj *runJob) proxyStats(accepted uint64) (uint64, []zap.Field) {
	ps, ok := rj.srv.(*proxyServer)
	if !ok {
		return accepted, nil
	}
	st := ps.totals()
	return st.Accepted, []zap.Field{
		zap.Int64("connections_open", st.Active),
		zap.Uint64("udp_flows_created", st.FlowsCreated),
		zap.Int64("udp_flows_open", st.Flows),
		zap.Uint64("clients_failed", st.Failures),
		zap.Uint64("idle_closed", st.IdleClosed),
		zap.Bool("backend_ready", st.Ready),
		zap.Uint64("backend_idle_stops", st.BackendStops),
		zap.Uint64("bytes_to_backend", st.BytesToBackend),
		zap.Uint64("bytes_to_client", st.BytesToClient),
	}
}

// totals are the job's proxy figures: the counters of the servers that
// ended (pxDone) plus the running one's, and the running one's gauges. The
// one source of every proxy figure list, print and SIGUSR1 show.
func (ps *proxyServer) totals() proxy.Stats {
	if !ps.serving() {
		return ps.pxDone
	}
	cur := ps.px.srv.Stats()
	t := addStats(ps.pxDone, cur)
	t.Active, t.Flows, t.Ready = cur.Active, cur.Flows, cur.Ready
	return t
}

// addStats adds b's counters to a's (the gauges are a's).
func addStats(a, b proxy.Stats) proxy.Stats {
	a.Accepted += b.Accepted
	a.FlowsCreated += b.FlowsCreated
	a.BytesToBackend += b.BytesToBackend
	a.BytesToClient += b.BytesToClient
	a.Failures += b.Failures
	a.IdleClosed += b.IdleClosed
	a.BackendStarts += b.BackendStarts
	a.BackendStops += b.BackendStops
	return a
}

// backendExited handles the exit of the backend: the server is told,
// those waiting for a stop are released, and a pending redefinition or a
// retirement goes on. The proxy server starts the backend again on demand.
func (ps *proxyServer) backendExited(c *child, st spawn.ExitStatus) {
	rj := ps.rj
	ps.proc = nil
	rj.mainExited(c, st)
	if px := ps.px; px != nil {
		for _, w := range px.waiters {
			close(w)
		}
		px.waiters = nil
		px.be.pid.Store(0)
		px.srv.BackendExited()
	}
	if rj.ended(ps) {
		rj.applyNext()
	}
}

// proxyBackend is the supervisor's side of proxy.Backend: it starts and
// stops the job's process on the loop goroutine.
type proxyBackend struct {
	ps  *proxyServer
	pid atomic.Int64 // the running backend's pid, 0 when none (set on the loop)
}

// MainPID implements proxy.Backend.
func (b *proxyBackend) MainPID() int { return int(b.pid.Load()) }

// Start starts the backend process (a no-op for an external backend or a
// running one). A start that the throttle delays is scheduled; the proxy
// keeps its clients waiting until the backend is ready or ReadyTimeout.
func (b *proxyBackend) Start(env []string) error {
	ps, rj := b.ps, b.ps.rj
	if rj.tmpl == nil {
		return nil // external backend
	}
	res := make(chan error, 1)
	rj.s.loop.post(func() { res <- ps.startBackend(env) })
	select {
	case err := <-res:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("job %s: the supervisor did not answer a backend start within 30s", rj.def.Label)
	}
}

// Stop stops the backend process (SIGTERM, SIGKILL after ExitTimeOut) and
// waits for it to exit.
func (b *proxyBackend) Stop() {
	ps, rj := b.ps, b.ps.rj
	if rj.tmpl == nil {
		return
	}
	done := make(chan struct{})
	rj.s.loop.post(func() {
		if ps.proc == nil || ps.px == nil {
			close(done)
			return
		}
		ps.px.waiters = append(ps.px.waiters, done)
		// The proxy logged the decision; the exit line follows.
		rj.log().Debug("stopping idle backend", zap.Int("pid", ps.proc.p.Pid))
		rj.stop(ps.proc)
	})
	select {
	case <-done:
	case <-time.After(rj.def.ExitTimeOut + 10*time.Second):
	}
}

// startBackend starts the backend on the loop goroutine.
func (ps *proxyServer) startBackend(env []string) error {
	rj := ps.rj
	if ps.proc != nil && !ps.proc.stopping {
		return nil
	}
	if ps.proc != nil || rj.closing() || rj.srv != ps {
		return fmt.Errorf("job %s: backend is stopping", rj.def.Label)
	}
	ps.env = append([]string(nil), env...)
	now := rj.s.now()
	if verdict, wait := startPlan(rj.mode, &ps.th, rj.def.ThrottleInterval, false, now); verdict == startThrottled {
		if !ps.th.waiting() {
			rj.stats.throttled++
			rj.log().Warn("respawning too fast: backend start delayed",
				zap.Duration("next_start_in", wait.Round(100*time.Millisecond)))
			ps.th.delay(rj.s.loop, wait, now, func() { _ = ps.startBackend(ps.env) })
		}
		return nil
	}
	ps.th.started(now)
	fds := []int{rj.s.devnull, 1, 2}
	benv := append(ps.env, "LAUNCH_JOB_LABEL="+rj.def.Label)
	t0 := rj.spawnClock()
	p, err := rj.s.procs.start(rj.tmpl, fds, benv, false)
	if err != nil {
		rj.stats.spawnFailed++
		rj.log().Error("cannot start proxy backend", zap.Error(err))
		return err
	}
	rj.stats.spawned++
	rj.observeSpawn(t0, p)
	why := "proxy backend on demand (a client connected)"
	if ps.wanted != "" {
		why, ps.wanted = ps.wanted, ""
	}
	rj.hist.started(why)
	if ps.px != nil {
		ps.px.be.pid.Store(int64(p.Pid))
	}
	c := &child{p: p}
	ps.proc = c
	rj.log().Info("started", zap.Int("pid", p.Pid), zap.String("reason", why))
	rj.s.procs.watch(p, procJobOf(rj), func(st spawn.ExitStatus) { ps.backendExited(c, st) })
	return nil
}

// dupFile duplicates a socket fd (close-on-exec) as an *os.File.
func dupFile(fd int, name string) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), name), nil
}
