//go:build linux

package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// pollReadable reports whether fd has something to read (for a listener: a
// pending connection), without blocking.
func pollReadable(fd uintptr) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, 0)
		if err == unix.EINTR {
			continue
		}
		// On an error let Accept report it.
		return err != nil || n > 0
	}
}

// closePassedFDs closes file descriptors passed with SCM_RIGHTS (sd_notify
// FDSTORE=1 messages): the proxy does not keep them.
func closePassedFDs(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
}

// splicePipeSize is the pipe size asked for in spliceUnix (Go's own splice
// uses the same 1 MiB).
const splicePipeSize = 1 << 20

// copyUnix copies between two stream Unix sockets with splice(2) through a
// pipe, which Go's io.Copy does not do for Unix -> Unix. Read deadlines on
// src apply (RawConn.Read waits through the poller); a deadline is only hit
// while the pipe is empty. It returns a nil error at EOF, like io.Copy.
func copyUnix(dst, src *net.UnixConn) (int64, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return io.Copy(dst, src)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, splicePipeSize)
	srcRC, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	dstRC, err := dst.SyscallConn()
	if err != nil {
		return 0, err
	}
	const flags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK
	var written int64
	for {
		var n int64
		var serr error
		err := srcRC.Read(func(fd uintptr) bool {
			n, serr = unix.Splice(int(fd), nil, p[1], nil, splicePipeSize, flags)
			return !errors.Is(serr, unix.EAGAIN)
		})
		if err == nil {
			err = serr
		}
		if err != nil {
			return written, fmt.Errorf("splice from socket: %w", err)
		}
		if n == 0 {
			return written, nil // EOF
		}
		for n > 0 {
			var m int64
			var werr error
			err := dstRC.Write(func(fd uintptr) bool {
				m, werr = unix.Splice(p[0], nil, int(fd), nil, int(n), flags)
				return !errors.Is(werr, unix.EAGAIN)
			})
			if err == nil {
				err = werr
			}
			if err != nil {
				return written, fmt.Errorf("splice to socket: %w", err)
			}
			if m <= 0 {
				return written, fmt.Errorf("splice to socket: %w", io.ErrShortWrite)
			}
			n -= m
			written += m
		}
	}
}

// acceptWaiter waits until a listener has a pending connection, without
// accepting it. The runtime poller refuses RawConn.Read on listeners, so it
// polls a duplicate of the listening fd wrapped in an *os.File (which the
// poller does watch).
type acceptWaiter struct {
	f  *os.File
	rc syscall.RawConn
}

func newAcceptWaiter(ln net.Listener) (*acceptWaiter, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("listener %T has no file descriptor", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("dup listener: %w", derr)
	}
	f := os.NewFile(uintptr(nfd), "listener")
	frc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &acceptWaiter{f: f, rc: frc}, nil
}

// wait blocks until a connection is pending or the waiter is closed.
func (w *acceptWaiter) wait() error {
	return w.rc.Read(pollReadable)
}

func (w *acceptWaiter) close() { w.f.Close() }
