//go:build linux

package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// The service manager's watchdog (systemd WatchdogSec=, sd_watchdog_enabled(3)).
//
// With $WATCHDOG_USEC set (and $WATCHDOG_PID unset or sockd's pid), sockd
// sends WATCHDOG=1 to $NOTIFY_SOCKET every third of the interval, well
// within the half that sd_watchdog_enabled(3) asks for. The ping is sent
// by the event loop itself: a timer of the loop's clock posts it to the
// loop, and the loop sends it and arms the next. A loop that is wedged
// (a handler that never returns) sends nothing, and systemd restarts
// sockd. The send never blocks the loop: the socket is non-blocking and a
// ping the manager's queue has no room for is dropped (the next follows a
// third of the interval later).

// watchdogInterval is the interval systemd asks for, 0 for none, and why
// the variables are not used when they are set but wrong.
func watchdogInterval(getenv func(string) string, pid int) (time.Duration, error) {
	v := getenv("WATCHDOG_USEC")
	if v == "" {
		return 0, nil
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("WATCHDOG_PID=%q is not a pid", p)
		}
		if n != pid {
			return 0, nil // the watchdog is another process's
		}
	}
	us, err := strconv.ParseUint(v, 10, 64)
	if err != nil || us == 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC=%q is not a positive number of microseconds", v)
	}
	if us > uint64(1<<62)/1000 {
		us = uint64(1<<62) / 1000
	}
	return time.Duration(us) * time.Microsecond, nil
}

// watchdog pings the service manager from the loop.
type watchdog struct {
	s      *Supervisor
	fd     int
	addr   *unix.SockaddrUnix
	period time.Duration

	mu     sync.Mutex // the clock's goroutine vs close
	t      stopper
	closed bool
	warned bool // loop only: a failed send was logged
}

// startWatchdog starts the pings when systemd asks for them. The loop's
// close stops them (before the loop's fds go). Call once the loop runs.
func (s *Supervisor) startWatchdog() {
	if !s.cfg.Notify {
		return
	}
	iv, err := watchdogInterval(os.Getenv, os.Getpid())
	if err != nil {
		s.log.Warn("watchdog: not sending WATCHDOG=1", zap.Error(err))
		return
	}
	ns := os.Getenv("NOTIFY_SOCKET")
	if iv == 0 {
		return
	}
	if ns == "" {
		s.log.Warn("watchdog: WATCHDOG_USEC is set but NOTIFY_SOCKET is not: not sending WATCHDOG=1")
		return
	}
	if ns[0] != '/' && ns[0] != '@' {
		s.log.Warn("watchdog: NOTIFY_SOCKET is not a Unix socket path: not sending WATCHDOG=1", zap.String("notify_socket", ns))
		return
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		s.log.Warn("watchdog: not sending WATCHDOG=1", zap.Error(err))
		return
	}
	w := &watchdog{s: s, fd: fd, addr: &unix.SockaddrUnix{Name: ns}, period: max(iv/3, time.Millisecond)}
	s.loop.onClose(w.close)
	s.log.Info("watchdog: sending WATCHDOG=1 from the event loop", zap.Duration("interval", iv), zap.Duration("every", w.period))
	w.s.loop.post(w.ping)
}

// arm has the next ping posted to the loop after a period.
func (w *watchdog) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.t = w.s.loop.clock.AfterFunc(w.period, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.closed {
			w.s.loop.post(w.ping)
		}
	})
}

// ping sends WATCHDOG=1 and arms the next. Loop only.
func (w *watchdog) ping() {
	err := unix.Sendto(w.fd, []byte("WATCHDOG=1"), unix.MSG_NOSIGNAL, w.addr)
	if err != nil && err != unix.EAGAIN && !w.warned {
		w.warned = true
		w.s.log.Warn("watchdog: sending WATCHDOG=1 failed (logged once)", zap.Error(err))
	}
	w.arm()
}

// close stops the pings: no ping is posted after it returns.
func (w *watchdog) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	if w.t != nil {
		w.t.Stop()
	}
	unix.Close(w.fd)
}
