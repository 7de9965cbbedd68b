//go:build linux

package proxy

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The forwarding loops: each is one goroutine over a level-triggered epoll
// set that moves the bytes of its connections with splice(2) through a pipe
// per direction, as systemd-socket-proxyd does, instead of two goroutines
// per connection woken through Go's poller. A request/response exchange
// then costs one epoll wake-up and two splices per hop, with no goroutine
// hand-off. A Server runs one loop per CPU and gives each connection to the
// next loop in turn.

// pipeSize is the pipe capacity asked for per direction (as Go's own
// splice): up to this much moves per pair of splice calls.
const pipeSize = 1 << 20

// pumpRounds bounds the splice rounds of one direction per readiness event,
// so that one bulk stream cannot starve the other connections of its loop.
const pumpRounds = 8

type fwdLoops struct {
	loops []*fwdLoop
	next  atomic.Uint32
	wg    sync.WaitGroup
}

// newFwdLoops starts n forwarding loops. Stop ends them.
func newFwdLoops(n int) (*fwdLoops, error) {
	fl := &fwdLoops{}
	for i := 0; i < n; i++ {
		l, err := newFwdLoop()
		if err != nil {
			fl.stop()
			return nil, err
		}
		fl.loops = append(fl.loops, l)
		fl.wg.Add(1)
		go func() {
			defer fl.wg.Done()
			l.run()
		}()
	}
	return fl, nil
}

// stop ends the loops once every connection they had is finished (the
// Server has waited for them) and closes their epoll sets.
func (fl *fwdLoops) stop() {
	for _, l := range fl.loops {
		l.post(func() { l.stopped = true })
	}
	fl.wg.Wait()
	for _, l := range fl.loops {
		unix.Close(l.wake)
		unix.Close(l.epfd)
	}
}

// forward moves the bytes of f until both directions ended (each EOF passed
// on as a shutdown of the write side), one failed, the connection was idle
// for idle (when idle > 0), or f.closeBoth was called. It returns false,
// having done nothing, when the connections have no file descriptors to
// take over (the caller then copies with goroutines).
func (fl *fwdLoops) forward(s *Server, f *fwd, idle time.Duration) bool {
	cfd, err1 := takeFd(f.client)
	if err1 != nil {
		return false
	}
	bfd, err2 := takeFd(f.backend)
	if err2 != nil {
		unix.Close(cfd)
		return false
	}
	c := &fconn{f: f, s: s, cfd: cfd, bfd: bfd, idle: idle, done: make(chan struct{})}
	c.up = fdir{src: cfd, dst: bfd, pr: -1, pw: -1, counter: &s.toBackend}
	c.down = fdir{src: bfd, dst: cfd, pr: -1, pw: -1, counter: &s.toClient}
	if err := c.up.openPipe(); err != nil {
		c.closeFds()
		return false
	}
	if err := c.down.openPipe(); err != nil {
		c.closeFds()
		return false
	}
	// The net.Conns are no longer used: close them (their fds leave Go's
	// poller) and from now on let closeBoth stop the loop's copy.
	l := fl.loops[int(fl.next.Add(1))%len(fl.loops)]
	if !f.handOver(func() { l.post(func() { l.finish(c) }) }) {
		c.closeFds()
		return true // closed by Run meanwhile
	}
	l.post(func() { l.add(c) })
	<-c.done
	return true
}

// takeFd returns a non-blocking duplicate of a stream socket's fd.
func takeFd(c net.Conn) (int, error) {
	var rc syscall.RawConn
	var err error
	switch t := c.(type) {
	case *net.TCPConn:
		rc, err = t.SyscallConn()
	case *net.UnixConn:
		rc, err = t.SyscallConn()
	default:
		return -1, fmt.Errorf("%T has no file descriptor", c)
	}
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

// fdir is one direction of a connection: src -> pipe -> dst.
type fdir struct {
	src, dst int
	pr, pw   int // the pipe's read and write ends
	buffered int // bytes in the pipe
	eof      bool
	done     bool // EOF passed on: dst's write side shut down
	counter  *atomic.Uint64
}

func (d *fdir) openPipe() error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return err
	}
	d.pr, d.pw = p[0], p[1]
	_, _ = unix.FcntlInt(uintptr(d.pw), unix.F_SETPIPE_SZ, pipeSize)
	return nil
}

func (d *fdir) wantIn() bool  { return !d.eof && d.buffered == 0 }
func (d *fdir) wantOut() bool { return d.buffered > 0 }

// pump moves what it can without blocking. moved reports progress; err is
// a failure of either socket.
func (d *fdir) pump() (moved bool, err error) {
	const flags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK
	for round := 0; round < pumpRounds; round++ {
		if d.buffered > 0 {
			n, err := unix.Splice(d.pr, nil, d.dst, nil, d.buffered, flags)
			if err == unix.EAGAIN {
				return moved, nil
			}
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return moved, err
			}
			d.buffered -= int(n)
			d.counter.Add(uint64(n))
			moved = true
			continue
		}
		if d.eof {
			if !d.done {
				d.done = true
				if err := unix.Shutdown(d.dst, unix.SHUT_WR); err != nil && err != unix.ENOTCONN {
					return moved, err
				}
			}
			return moved, nil
		}
		n, err := unix.Splice(d.src, nil, d.pw, nil, pipeSize, flags)
		if err == unix.EAGAIN {
			return moved, nil
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return moved, err
		}
		if n == 0 {
			d.eof = true
		}
		d.buffered += int(n)
		moved = true
	}
	return moved, nil
}

// fconn is one forwarded connection, owned by its loop.
type fconn struct {
	f        *fwd
	s        *Server
	cfd, bfd int
	up, down fdir // client -> backend, backend -> client
	idle     time.Duration
	last     time.Time
	cev, bev uint32 // events registered for cfd and bfd (0: not registered)
	done     chan struct{}
	finished bool
}

func (c *fconn) closeFds() {
	for _, fd := range []int{c.cfd, c.bfd, c.up.pr, c.up.pw, c.down.pr, c.down.pw} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// fwdLoop is one forwarding loop.
type fwdLoop struct {
	epfd, wake int
	mu         sync.Mutex
	queue      []func()
	conns      map[int]*fconn // by both fds; loop goroutine only
	idlers     int            // connections with an idle timeout
	stopped    bool
}

func newFwdLoop() (*fwdLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(wake)
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return &fwdLoop{epfd: epfd, wake: wake, conns: map[int]*fconn{}}, nil
}

// post runs fn on the loop goroutine. Safe from any goroutine.
func (l *fwdLoop) post(fn func()) {
	l.mu.Lock()
	l.queue = append(l.queue, fn)
	first := len(l.queue) == 1
	l.mu.Unlock()
	if first {
		one := [8]byte{1}
		_, _ = unix.Write(l.wake, one[:])
	}
}

func (l *fwdLoop) run() {
	events := make([]unix.EpollEvent, 64)
	lastScan := time.Now()
	for !l.stopped {
		timeout := -1
		var win time.Duration
		if l.idlers > 0 {
			win = idleWindow(l.minIdle())
			timeout = int(win / time.Millisecond)
		}
		n, err := unix.EpollWait(l.epfd, events, timeout)
		if err != nil && err != unix.EINTR {
			// Cannot happen with a valid epoll fd; do not spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		var now time.Time
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == l.wake {
				var b [8]byte
				_, _ = unix.Read(l.wake, b[:])
				l.mu.Lock()
				q := l.queue
				l.queue = nil
				l.mu.Unlock()
				for _, fn := range q {
					fn()
				}
				continue
			}
			c := l.conns[fd]
			if c == nil {
				continue
			}
			moved, err := l.ready(c, fd, events[i].Events)
			if err != nil || (c.up.done && c.down.done) {
				l.finish(c)
				continue
			}
			if moved && c.idle > 0 {
				if now.IsZero() {
					now = time.Now()
				}
				c.last = now
			}
			l.register(c)
		}
		if l.idlers > 0 && time.Since(lastScan) >= win {
			lastScan = time.Now()
			l.closeIdle(lastScan)
		}
	}
}

// ready pumps the directions fd takes part in.
func (l *fwdLoop) ready(c *fconn, fd int, ev uint32) (bool, error) {
	var in, out *fdir
	if fd == c.cfd {
		in, out = &c.up, &c.down
	} else {
		in, out = &c.down, &c.up
	}
	var moved bool
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) != 0 {
		m, err := in.pump()
		if err != nil {
			return m, err
		}
		moved = m
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		m, err := out.pump()
		if err != nil {
			return moved || m, err
		}
		moved = moved || m
	}
	// Data read into a pipe is passed on at once (pump drains before it
	// reads again); a direction whose destination was full waits for
	// EPOLLOUT.
	return moved, nil
}

func (l *fwdLoop) add(c *fconn) {
	if c.f.isClosed() {
		l.finish(c)
		return
	}
	c.last = time.Now()
	if c.idle > 0 {
		l.idlers++
	}
	l.conns[c.cfd] = c
	l.conns[c.bfd] = c
	// Whatever arrived before the hand-over is read at the first wake-up
	// (level-triggered).
	l.register(c)
}

// register brings the epoll registrations of c's fds in line with what its
// directions wait for. An fd that waits for nothing is removed, so that a
// hang-up it reports cannot wake the loop in vain.
func (l *fwdLoop) register(c *fconn) {
	l.setEvents(c.cfd, &c.cev, evBits(c.up.wantIn(), c.down.wantOut()))
	l.setEvents(c.bfd, &c.bev, evBits(c.down.wantIn(), c.up.wantOut()))
}

func evBits(in, out bool) uint32 {
	var ev uint32
	if in {
		ev |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if out {
		ev |= unix.EPOLLOUT
	}
	return ev
}

func (l *fwdLoop) setEvents(fd int, cur *uint32, want uint32) {
	if *cur == want {
		return
	}
	var err error
	switch {
	case want == 0:
		err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	case *cur == 0:
		err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: want, Fd: int32(fd)})
	default:
		err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: want, Fd: int32(fd)})
	}
	if err == nil {
		*cur = want
	}
}

// finish ends a connection: its fds leave the set and are closed, and the
// goroutine waiting in forward returns.
func (l *fwdLoop) finish(c *fconn) {
	if c.finished {
		return
	}
	c.finished = true
	if c.cev != 0 {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.cfd, nil)
	}
	if c.bev != 0 {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.bfd, nil)
	}
	if l.conns[c.cfd] == c {
		delete(l.conns, c.cfd)
		delete(l.conns, c.bfd)
		if c.idle > 0 {
			l.idlers--
		}
	}
	c.closeFds()
	close(c.done)
}

func (l *fwdLoop) minIdle() time.Duration {
	var m time.Duration
	for _, c := range l.conns {
		if c.idle > 0 && (m == 0 || c.idle < m) {
			m = c.idle
		}
	}
	return m
}

func (l *fwdLoop) closeIdle(now time.Time) {
	var idle []*fconn
	for fd, c := range l.conns {
		if fd == c.cfd && c.idle > 0 && now.Sub(c.last) >= c.idle {
			idle = append(idle, c)
		}
	}
	for _, c := range idle {
		c.s.idleClosed.Add(1)
		l.finish(c)
	}
}

// forwardLoops is the number of forwarding loops a Server runs.
func forwardLoops() int { return max(1, runtime.GOMAXPROCS(0)) }
