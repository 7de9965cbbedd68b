//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// handler is called on the loop goroutine when its fd is ready.
type handler interface {
	ready(events uint32)
}

type handlerFunc func(events uint32)

func (f handlerFunc) ready(ev uint32) { f(ev) }

// loop is a single-goroutine reactor over one level-triggered epoll set. All
// job state of the supervisor is touched only from the loop goroutine: the fds
// it watches (listening sockets, child pidfds) and the closures posted to it
// (timers, signals, reloads). It holds no lock across a spawn.
type loop struct {
	epfd   int
	wakefd int

	mu    sync.Mutex
	queue []func()

	handlers map[int]handler // loop goroutine only
	stopped  bool
	clock    clock    // of the timers
	closers  []func() // run by close first (onClose)
}

func newLoop() (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	l := &loop{epfd: epfd, wakefd: wfd, handlers: map[int]handler{}, clock: sysClock{}}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}); err != nil {
		l.close()
		return nil, fmt.Errorf("epoll_ctl wake fd: %w", err)
	}
	return l, nil
}

// watch registers fd for readability (level-triggered). Loop goroutine only.
func (l *loop) watch(fd int, h handler) error {
	return l.watchEvents(fd, unix.EPOLLIN, h)
}

// watchEvents registers fd for events (level-triggered): EPOLLPRI for a
// mount table, which is always readable. Loop goroutine only.
func (l *loop) watchEvents(fd int, events uint32, h handler) error {
	if _, ok := l.handlers[fd]; ok {
		l.handlers[fd] = h
		return nil
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)}); err != nil {
		return fmt.Errorf("epoll_ctl add fd %d: %w", fd, err)
	}
	l.handlers[fd] = h
	return nil
}

// unwatch removes fd from the set. It must be called before the fd is
// closed: a child holding a duplicate would otherwise keep the registration
// alive under a number sockd no longer owns. Loop goroutine only.
func (l *loop) unwatch(fd int) {
	if _, ok := l.handlers[fd]; !ok {
		return
	}
	delete(l.handlers, fd)
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// post runs f on the loop goroutine. Safe from any goroutine.
func (l *loop) post(f func()) {
	l.mu.Lock()
	l.queue = append(l.queue, f)
	n := len(l.queue)
	l.mu.Unlock()
	if n == 1 {
		var one = [8]byte{1}
		_, _ = unix.Write(l.wakefd, one[:])
	}
}

// loopTimer is a timer owned by the loop: its function runs on the loop
// goroutine, and Stop (called there) means it never runs, even when the
// clock already fired and the run waits in the loop's queue.
type loopTimer struct {
	t    stopper
	done bool // stopped or run; loop goroutine only
}

// Stop prevents the timer's function from running. It reports whether the
// call stopped it (false: it had run or was stopped already). Loop
// goroutine only.
func (lt *loopTimer) Stop() bool {
	if lt == nil || lt.done {
		return false
	}
	lt.done = true
	lt.t.Stop()
	return true
}

// after runs f on the loop goroutine after d, unless the returned timer is
// stopped first.
func (l *loop) after(d time.Duration, f func()) *loopTimer {
	lt := &loopTimer{}
	lt.t = l.clock.AfterFunc(d, func() {
		l.post(func() {
			if lt.done {
				return
			}
			lt.done = true
			f()
		})
	})
	return lt
}

// run dispatches events until stop is called from the loop goroutine.
func (l *loop) run() error {
	events := make([]unix.EpollEvent, 128)
	var drained [8]byte
	for !l.stopped {
		n, err := unix.EpollWait(l.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == l.wakefd {
				_, _ = unix.Read(l.wakefd, drained[:])
				l.runQueue()
				continue
			}
			if h, ok := l.handlers[fd]; ok {
				h.ready(events[i].Events)
			}
		}
	}
	return nil
}

func (l *loop) runQueue() {
	l.mu.Lock()
	q := l.queue
	l.queue = nil
	l.mu.Unlock()
	for _, f := range q {
		f()
	}
}

func (l *loop) stop() { l.stopped = true }

// onClose has f run when the loop is closed, before its fds are: a timer
// that posts to the loop from another goroutine stops there. Not
// concurrently with close.
func (l *loop) onClose(f func()) {
	l.mu.Lock()
	l.closers = append(l.closers, f)
	l.mu.Unlock()
}

func (l *loop) close() {
	l.mu.Lock()
	closers := l.closers
	l.closers = nil
	l.mu.Unlock()
	for _, f := range closers {
		f()
	}
	unix.Close(l.wakefd)
	unix.Close(l.epfd)
}
