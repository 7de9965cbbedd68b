package proxy

import (
	"context"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/internal/unixdial"
)

// Probe timing: the first connect probe right after Start, then every
// probeMin, growing by a quarter up to probeMax.
const (
	probeMin     = 10 * time.Millisecond
	probeMax     = 50 * time.Millisecond
	probeDial    = 250 * time.Millisecond // dial timeout of one probe
	spareMaxAge  = 2 * time.Second        // a probe connection older than this is not handed out
	restartDelay = 100 * time.Millisecond // before calling Start again after an exit during a start
)

// episode is one attempt to bring the backend to ready: Start, then wait for
// readiness until the deadline. All clients waiting meanwhile share it.
type episode struct {
	done     chan struct{} // closed when the attempt ends; err is set before
	err      error
	exited   chan struct{} // BackendExited during the attempt
	notified chan struct{} // READY=1 during the attempt
	lastErr  error         // the last failed connect probe (runEpisode's goroutine)
}

// waitReady returns nil when the backend is ready, starting it when needed.
func (s *Server) waitReady(ctx context.Context) error {
	s.mu.Lock()
	if s.ready {
		s.mu.Unlock()
		return nil
	}
	if s.closing {
		s.mu.Unlock()
		return context.Canceled
	}
	ep := s.ep
	if ep == nil {
		ep = &episode{
			done:     make(chan struct{}),
			exited:   make(chan struct{}, 1),
			notified: make(chan struct{}, 1),
		}
		s.ep = ep
		s.wg.Add(1)
		go s.runEpisode(ep)
	}
	s.mu.Unlock()
	select {
	case <-ep.done:
		return ep.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StartBackend starts the backend now, as a client's arrival would, and
// returns once it is ready, its start failed, ReadyTimeout passed or ctx
// ended (the start goes on then). A ready backend returns at once. Clients
// that arrive meanwhile wait for the same start.
func (s *Server) StartBackend(ctx context.Context) error {
	return s.waitReady(ctx)
}

// markNotReady is called when a dial failed after the backend was ready: the
// next waitReady starts a new episode (Start is idempotent while the process
// runs). gen is the generation the dial started in.
func (s *Server) markNotReady(gen uint64) {
	s.mu.Lock()
	if s.gen == gen && s.probe == probeConnect {
		s.setReadyLocked(false)
		s.gen++
	}
	s.mu.Unlock()
}

// notified handles READY=1.
func (s *Server) notified() {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ep != nil:
		select {
		case s.ep.notified <- struct{}{}:
		default:
		}
	case s.started && !s.ready:
		// A running backend that missed the deadline became ready late.
		s.setReadyLocked(true)
		s.log.Info("backend ready (late READY=1)")
	}
}

func (s *Server) runEpisode(ep *episode) {
	defer s.wg.Done()
	ctx := s.ctx
	begin := time.Now()
	deadline := time.NewTimer(s.cfg.ReadyTimeout)
	defer deadline.Stop()
	s.log.Info("backend starting")

	var spare net.Conn
	exits := 0
	err := s.startBackend()
	for err == nil {
		spare, err = s.awaitReady(ctx, ep, deadline.C)
		if err != errExited {
			break
		}
		exits++
		select {
		case <-time.After(restartDelay):
			err = s.startBackend()
		case <-deadline.C:
			err = errTimeout
		case <-ctx.Done():
			err = ctx.Err()
		}
	}

	s.mu.Lock()
	s.ep = nil
	switch {
	case err == nil:
		s.setReadyLocked(true)
		if spare != nil {
			s.dropSpareLocked()
			s.spare, s.spareAt = spare, time.Now()
			// Do not keep an idle connection open on the backend when no
			// stream client comes to take it (UDP-only traffic).
			time.AfterFunc(spareMaxAge, func() {
				s.mu.Lock()
				if s.spare == spare {
					s.dropSpareLocked()
				}
				s.mu.Unlock()
			})
		}
		s.log.Info("backend ready", zap.Int64("ms", time.Since(begin).Milliseconds()))
	case err == errTimeout:
		how := "connect to the backend still refused"
		switch s.probe {
		case probeNotify:
			how = "no READY=1 received on NOTIFY_SOCKET"
		case probeGrace:
			how = "start grace did not end"
		}
		if s.probe == probeConnect && ep.lastErr != nil {
			how += " (" + ep.lastErr.Error() + ")"
		}
		if exits > 0 {
			how += fmt.Sprintf("; the process exited %d time(s) while starting", exits)
		}
		s.log.Error("backend not ready in time: closing the waiting clients; the next client starts it again",
			zap.Duration("ready_timeout", s.cfg.ReadyTimeout), zap.String("reason", how))
		ep.err = fmt.Errorf("proxy %s: backend %s: %w after %s (%s)", s.cfg.Label, s.cfg.Backend, ErrNotReady, s.cfg.ReadyTimeout, how)
	case ctx.Err() != nil:
		ep.err = ctx.Err()
	default:
		s.log.Error("backend failed to start: closing the waiting clients", zap.Error(err))
		ep.err = fmt.Errorf("proxy %s: start backend: %w", s.cfg.Label, err)
	}
	close(ep.done)
	s.armIdleLocked()
	s.mu.Unlock()
}

type episodeErr string

func (e episodeErr) Error() string { return string(e) }

const (
	errTimeout = episodeErr("ready timeout")
	errExited  = episodeErr("backend exited")
)

func (s *Server) startBackend() error {
	var env []string
	if s.cfg.Notify {
		env = []string{"NOTIFY_SOCKET=" + s.notifyPath}
	}
	s.beMu.Lock()
	defer s.beMu.Unlock()
	s.starts.Add(1)
	if err := s.be.Start(env); err != nil {
		return err
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	return nil
}

// awaitReady waits for readiness after a successful Start. With the connect
// probe it returns the successful connection.
func (s *Server) awaitReady(ctx context.Context, ep *episode, deadline <-chan time.Time) (net.Conn, error) {
	switch s.probe {
	case probeNotify:
		select {
		case <-ep.notified:
			return nil, nil
		case <-ep.exited:
			return nil, errExited
		case <-deadline:
			return nil, errTimeout
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case probeGrace:
		select {
		case <-time.After(UDPStartGrace):
			return nil, nil
		case <-ep.exited:
			return nil, errExited
		case <-deadline:
			return nil, errTimeout
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	wait := probeMin
	for {
		c, err := s.dial(ctx, probeDial)
		if err == nil {
			return c, nil
		}
		ep.lastErr = err
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ep.exited:
			t.Stop()
			return nil, errExited
		case <-deadline:
			t.Stop()
			return nil, errTimeout
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		wait += wait / 4
		if wait > probeMax {
			wait = probeMax
		}
	}
}

// dialBackend returns a connection to the backend for one client: the
// probe's connection when fresh, a new one otherwise.
func (s *Server) dialBackend(ctx context.Context) (net.Conn, uint64, error) {
	s.mu.Lock()
	gen := s.gen
	if sp := s.spare; sp != nil {
		s.spare = nil
		fresh := time.Since(s.spareAt) < spareMaxAge
		s.mu.Unlock()
		if fresh {
			return sp, gen, nil
		}
		sp.Close()
	} else {
		s.mu.Unlock()
	}
	c, err := s.dial(ctx, min(s.cfg.ReadyTimeout, 10*time.Second))
	return c, gen, err
}

// dial connects to the backend once: a Unix socket path through
// unixdial.Dial, with the backend user's rights (see Config.BackendUser).
func (s *Server) dial(ctx context.Context, timeout time.Duration) (net.Conn, error) {
	if s.network == "unix" {
		return unixdial.Dial(ctx, s.cfg.Backend, s.cfg.BackendUser, timeout)
	}
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, s.network, s.cfg.Backend)
}

func (s *Server) dropSpareLocked() {
	if s.spare != nil {
		s.spare.Close()
		s.spare = nil
	}
}
