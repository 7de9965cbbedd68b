package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/internal/fdreserve"
)

// File descriptors for accepted stream connections.
//
// A client is worth nothing without its backend connection, so accepting
// must never leave a client without the fd for it: the dial would fail and
// the client be closed unserved, or wait holding its own fd, and a process
// whose table fills with such clients serves nobody again.
//
// So each accepted client takes at once a Hold on one more fd, released
// right before its backend dial. Accepting keeps connFds, a reserve of the
// two fds one client takes: the accept loops check it before they accept,
// and an accept (or Hold) that fails with EMFILE or ENFILE releases it and
// is made again, getting the freed numbers. Until the reserve can be
// refilled, accepting waits: clients wait in the kernel backlog. A dial that
// still finds no fd waits and tries again, the client staying connected,
// and no loop accepts meanwhile. Waits end when a proxy connection ends, at
// the latest after 5 ms doubling to 1 s.

// connFdsNeeded is what one accepted stream connection takes: the client's
// fd and the backend connection's.
const connFdsNeeded = 2

// connFds is the reserve of the accept loops; process-wide, as the fd table
// is.
var connFds = fdreserve.New(connFdsNeeded)

// dialWaiters counts the clients whose backend dial waits for an fd.
var dialWaiters atomic.Int32

// errReserveShort is the cause logged when accepting waits because the
// reserve could not be refilled.
var errReserveShort = errors.New("no file descriptors free for the next client and its backend connection")

// fdWake is closed, and replaced, whenever a proxy connection ends: whoever
// waits for fds tries again.
var fdWake struct {
	mu sync.Mutex
	ch chan struct{}
}

// fdsFreedChan returns the channel closed at the next fdsFreed.
func fdsFreedChan() <-chan struct{} {
	fdWake.mu.Lock()
	defer fdWake.mu.Unlock()
	if fdWake.ch == nil {
		fdWake.ch = make(chan struct{})
	}
	return fdWake.ch
}

// fdsFreed wakes whoever waits for fds.
func fdsFreed() {
	fdWake.mu.Lock()
	if fdWake.ch != nil {
		close(fdWake.ch)
		fdWake.ch = nil
	}
	fdWake.mu.Unlock()
}

// fdBackoff is the delay between tries while fds are short (0: the first).
type fdBackoff time.Duration

// wait waits until fds may have been freed: a proxy connection ended, or
// the delay passed (it then doubles, up to 1 s). false when ctx ended.
func (d *fdBackoff) wait(ctx context.Context) bool {
	if *d == 0 {
		*d = fdBackoff(5 * time.Millisecond)
	}
	wake := fdsFreedChan()
	t := time.NewTimer(time.Duration(*d))
	defer t.Stop()
	*d = fdBackoff(min(2*time.Duration(*d), time.Second))
	select {
	case <-wake:
	case <-t.C:
	case <-ctx.Done():
		return false
	}
	return true
}

// waitAcceptFds waits until a client may be accepted: no dial waits for an
// fd and the reserve is full. false when ctx ended meanwhile.
func (s *Server) waitAcceptFds(ctx context.Context) bool {
	var d fdBackoff
	for dialWaiters.Load() > 0 || !connFds.Ready() {
		if dialWaiters.Load() == 0 {
			s.noteFdShortage(errReserveShort)
		}
		if !d.wait(ctx) {
			return false
		}
	}
	return true
}

// acceptClient accepts a client and takes the Hold for its backend
// connection's fd; at the fd limit either releases the reserve and is made
// again. A client is returned with an empty Hold only when the reserve's
// fds were taken by others meanwhile: its dial then waits for an fd.
func (s *Server) acceptClient(ln net.Listener) (net.Conn, fdreserve.Hold, error) {
	c, err := ln.Accept()
	if err != nil && fdreserve.Shortage(err) && connFds.Release() {
		c, err = ln.Accept()
	}
	if err != nil {
		if fdreserve.Shortage(err) {
			s.noteFdShortage(err)
		}
		return nil, fdreserve.Hold{}, err
	}
	h, err := fdreserve.Take()
	if err != nil && fdreserve.Shortage(err) && connFds.Release() {
		h, err = fdreserve.Take()
	}
	if err != nil {
		s.noteFdShortage(err)
	}
	return c, h, nil
}

// dialFds dials the backend for a client, releasing its Hold first; a dial
// that finds no fd waits for one and tries again. It returns the dial's
// error otherwise, or ctx's.
func (s *Server) dialFds(ctx context.Context, hold *fdreserve.Hold) (net.Conn, uint64, error) {
	hold.Release()
	b, gen, err := s.dialBackend(ctx)
	if err == nil || !fdreserve.Shortage(err) {
		return b, gen, err
	}
	dialWaiters.Add(1)
	defer dialWaiters.Add(-1)
	var d fdBackoff
	for fdreserve.Shortage(err) {
		s.noteFdShortage(err)
		if !d.wait(ctx) {
			return nil, gen, ctx.Err()
		}
		b, gen, err = s.dialBackend(ctx)
	}
	return b, gen, err
}

// fdShort is the log state of fd shortages, shared by every Server as the
// fd table is.
var fdShort struct {
	n      atomic.Uint64 // times so far
	logged atomic.Int64  // unix nanoseconds of the last line
}

// noteFdShortage logs that fds ran short at most every 10 s (for all jobs),
// with how many times it happened so far.
func (s *Server) noteFdShortage(err error) {
	n := fdShort.n.Add(1)
	now := time.Now().UnixNano()
	last := fdShort.logged.Load()
	if now-last < int64(10*time.Second) || !fdShort.logged.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("out of file descriptors: not accepting, clients wait in the backlog (those accepted wait for their backend connection); resuming by itself when connections end, or after 5 ms doubling to 1 s",
		zap.Error(err), zap.Uint64("times_so_far_all_jobs", n))
}
