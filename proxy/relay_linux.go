//go:build linux && cgo

package proxy

/*
#cgo CFLAGS: -O2 -Wall -Wextra -Wno-unused-parameter
#cgo LDFLAGS: -lpthread
#include <stdlib.h>
#include "relay_linux.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/handover"
)

// The relay moves the bytes of stream connections once the proxy has
// connected them: each loop is a thread outside the Go scheduler, blocked
// in epoll_wait(2) over its connections and moving their bytes with
// splice(2) through a pipe per direction (relay_linux.c), as
// systemd-socket-proxyd does. A request/response exchange then costs one
// wake-up of that thread and three splices per hop (the last finds the
// socket empty), with no goroutine
// hand-off through Go's poller; and, unlike a goroutine blocked in
// epoll_wait, the thread holds no P, so the rest of sockd runs on.

// haveRelay: the relay exists on Linux with cgo.
const haveRelay = true

type relay struct {
	loops []*relayLoop
	next  atomic.Uint32
	ids   atomic.Uint64
	wg    sync.WaitGroup // the collect goroutines

	addFailures atomic.Uint64
	addLogged   atomic.Int64 // unix nanoseconds of the last failure logged
}

// relayLoop is one loop thread and the Go side of its done list.
type relayLoop struct {
	c    *C.relay_loop
	done *os.File // a duplicate of the loop's done eventfd, in Go's poller

	mu      sync.Mutex
	waiting map[uint64]chan relayResult
}

// startRelay starts n loop threads. stop ends them.
func startRelay(n int) (*relay, error) {
	r := &relay{}
	for i := 0; i < n; i++ {
		cl, err := C.relay_start()
		if cl == nil {
			r.stop()
			return nil, fmt.Errorf("relay thread: %w", err)
		}
		dup, err := unix.FcntlInt(uintptr(C.relay_done_fd(cl)), unix.F_DUPFD_CLOEXEC, 0)
		if err == nil {
			if err = unix.SetNonblock(dup, true); err != nil {
				unix.Close(dup)
			}
		}
		if err != nil {
			C.relay_stop(cl)
			C.relay_free(cl)
			r.stop()
			return nil, fmt.Errorf("relay done fd: %w", err)
		}
		l := &relayLoop{c: cl, done: os.NewFile(uintptr(dup), "relay-done"), waiting: map[uint64]chan relayResult{}}
		r.loops = append(r.loops, l)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			l.collect()
		}()
	}
	return r, nil
}

// stop ends the loops and their collect goroutines. It is called when the
// last Server holding the relay has returned from Run, so no connection is
// left on it.
func (r *relay) stop() {
	for _, l := range r.loops {
		C.relay_stop(l.c)
		l.done.Close()
	}
	r.wg.Wait() // no relay_take_done runs from here on
	for _, l := range r.loops {
		C.relay_free(l.c)
	}
	r.loops = nil
}

// collect hands each finished connection's result to the goroutine waiting
// for it, until the done fd is closed.
func (l *relayLoop) collect() {
	var b [8]byte
	var res [64]C.relay_result
	for {
		_, err := l.done.Read(b[:])
		if err != nil {
			return
		}
		for {
			n := int(C.relay_take_done(l.c, &res[0], C.int(len(res))))
			for _, r := range res[:n] {
				rr := relayResult{up: uint64(r.up), down: uint64(r.down), handed: true, idle: r.how == C.RELAY_IDLE}
				if r.err != 0 {
					rr.err = syscall.Errno(r.err)
				}
				l.mu.Lock()
				ch := l.waiting[uint64(r.id)]
				delete(l.waiting, uint64(r.id))
				l.mu.Unlock()
				if ch != nil {
					ch <- rr
				}
			}
			if n < len(res) {
				break
			}
		}
	}
}

// forward moves the bytes of f on a loop until both directions ended (each
// EOF passed on as a shutdown of the write side), one failed, nothing moved
// for idle (when idle > 0), or f.closeBoth was called. It returns false,
// having done nothing, when the connections could not be handed over (the
// caller then copies with goroutines).
func (r *relay) forward(f *fwd, idle time.Duration, log *zap.Logger) (relayResult, bool) {
	cfd, err := takeFd(f.client)
	if err != nil {
		r.logAddError(log, err)
		return relayResult{}, false
	}
	bfd, err := takeFd(f.backend)
	if err != nil {
		unix.Close(cfd)
		r.logAddError(log, err)
		return relayResult{}, false
	}
	l, id, ch := r.await()
	var c *C.relay_conn
	var addErr error
	handed, closed := f.handOver(func() bool {
		if rc := C.relay_add(l.c, C.uint64_t(id), C.int(cfd), C.int(bfd), C.int64_t(idle), &c); rc != 0 {
			addErr = syscall.Errno(-rc)
			return false
		}
		f.relayID = id // f.mu is held
		return true
	}, func() { C.relay_close(l.c, c) })
	if !handed {
		l.mu.Lock()
		delete(l.waiting, id)
		l.mu.Unlock()
		unix.Close(cfd)
		unix.Close(bfd)
		if closed {
			return relayResult{}, true
		}
		r.logAddError(log, addErr)
		return relayResult{}, false
	}
	res := <-ch
	// From here on closeBoth does not call relay_close: c can go.
	f.mu.Lock()
	f.closed, f.stop = true, nil
	f.mu.Unlock()
	C.relay_release(l.c, c)
	return res, true
}

// await picks the loop the next connection goes to and its id, and
// registers the channel its result comes back on.
func (r *relay) await() (*relayLoop, uint64, chan relayResult) {
	l := r.loops[r.next.Add(1)%uint32(len(r.loops))]
	id := r.ids.Add(1)
	ch := make(chan relayResult, 1)
	l.mu.Lock()
	l.waiting[id] = ch
	l.mu.Unlock()
	return l, id, ch
}

// logAddError logs a failed hand-over (no fds left for the duplicates or
// the pipes, say) at most every 10 s, with how many failed so far; those
// connections are copied with goroutines.
func (r *relay) logAddError(log *zap.Logger, err error) {
	n := r.addFailures.Add(1)
	now := time.Now().UnixNano()
	last := r.addLogged.Load()
	if now-last < int64(10*time.Second) || !r.addLogged.CompareAndSwap(last, now) {
		return
	}
	log.Warn("proxy relay: cannot take a connection over; copying it with goroutines",
		zap.Error(err), zap.Uint64("failures_so_far_all_jobs", n))
}

// takeFd returns a non-blocking duplicate of a stream socket's fd.
func takeFd(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T has no file descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return -1, err
	}
	return nfd, nil
}

// freeze stops every loop's thread, keeping its connections as they are,
// and returns them by id.
func (r *relay) freeze() map[uint64]C.relay_frozen {
	out := map[uint64]C.relay_frozen{}
	for _, l := range r.loops {
		C.relay_freeze(l.c)
		buf := make([]C.relay_frozen, 256)
		for {
			n := int(C.relay_take_frozen(l.c, &buf[0], C.int(len(buf))))
			if n < len(buf) {
				for _, f := range buf[:n] {
					out[uint64(f.id)] = f
				}
				break
			}
			buf = make([]C.relay_frozen, 2*len(buf))
		}
	}
	return out
}

// thaw starts the loops' threads again.
func (r *relay) thaw() error {
	var errs []error
	for _, l := range r.loops {
		if rc := C.relay_thaw(l.c); rc != 0 {
			errs = append(errs, syscall.Errno(rc))
		}
	}
	return errors.Join(errs...)
}

// frozenConn turns a frozen connection into its handover form.
func frozenConn(f C.relay_frozen) handover.ProxyConn {
	return handover.ProxyConn{ClientFd: int(f.cfd), BackendFd: int(f.bfd),
		UpPipe: [2]int{int(f.up_pr), int(f.up_pw)}, DownPipe: [2]int{int(f.down_pr), int(f.down_pw)},
		UpBuffered: uint64(f.up_buffered), DownBuffered: uint64(f.down_buffered),
		Up: uint64(f.up_moved), Down: uint64(f.down_moved),
		UpEOF: f.up_eof != 0, UpDone: f.up_done != 0, DownEOF: f.down_eof != 0, DownDone: f.down_done != 0,
		Idle: time.Duration(f.idle_ns)}
}

func cBool(b bool) C.int32_t {
	if b {
		return 1
	}
	return 0
}

// adopt moves the bytes of a connection an earlier image froze, as
// forward does, until it ends.
func (r *relay) adopt(f *fwd, pc handover.ProxyConn) relayResult {
	l, id, ch := r.await()
	fr := C.relay_frozen{cfd: C.int32_t(pc.ClientFd), bfd: C.int32_t(pc.BackendFd),
		up_pr: C.int32_t(pc.UpPipe[0]), up_pw: C.int32_t(pc.UpPipe[1]), down_pr: C.int32_t(pc.DownPipe[0]), down_pw: C.int32_t(pc.DownPipe[1]),
		up_buffered: C.uint64_t(pc.UpBuffered), down_buffered: C.uint64_t(pc.DownBuffered),
		up_moved: C.uint64_t(pc.Up), down_moved: C.uint64_t(pc.Down),
		up_eof: cBool(pc.UpEOF), up_done: cBool(pc.UpDone), down_eof: cBool(pc.DownEOF), down_done: cBool(pc.DownDone),
		idle_ns: C.int64_t(pc.Idle)}
	var c *C.relay_conn
	if rc := C.relay_adopt(l.c, &fr, C.uint64_t(id), &c); rc != 0 {
		l.mu.Lock()
		delete(l.waiting, id)
		l.mu.Unlock()
		closeFds(pc.Fds())
		return relayResult{err: syscall.Errno(-rc)}
	}
	f.mu.Lock()
	f.relayID = id
	f.stop = func() { C.relay_close(l.c, c) }
	f.mu.Unlock()
	res := <-ch
	f.mu.Lock()
	f.closed, f.stop = true, nil
	f.mu.Unlock()
	C.relay_release(l.c, c)
	return res
}

func closeFds(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// Frozen is the relay stopped for an in-place upgrade.
type Frozen struct {
	r     *relay
	conns map[uint64]C.relay_frozen
}

// Freeze stops the shared relay's threads where they are (see Handover);
// nothing moves until Thaw. With no relay running it holds nothing.
func Freeze() *Frozen {
	sharedRelay.mu.Lock()
	r := sharedRelay.r
	sharedRelay.mu.Unlock()
	if r == nil {
		return &Frozen{}
	}
	return &Frozen{r: r, conns: r.freeze()}
}

// Thaw starts the relay again (the exec did not happen).
func (fz *Frozen) Thaw() error {
	if fz == nil || fz.r == nil {
		return nil
	}
	return fz.r.thaw()
}

func (fz *Frozen) conn(id uint64) (handover.ProxyConn, bool) {
	f, ok := fz.conns[id]
	if !ok || id == 0 {
		return handover.ProxyConn{}, false
	}
	return frozenConn(f), true
}

func closeOnExec(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.CloseOnExec(fd)
		}
	}
}
