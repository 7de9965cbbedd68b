//go:build linux

package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
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

// setPassCred turns SO_PASSCRED on: every datagram then carries its
// sender's SCM_CREDENTIALS.
func setPassCred(c *net.UnixConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_PASSCRED: %w", serr)
	}
	return nil
}

// notifyControl parses a datagram's control messages: the sender's
// credentials (ok false without them) and the fds passed with SCM_RIGHTS
// (sd_notify FDSTORE=1, BARRIER=1), which the caller closes.
func notifyControl(oob []byte) (snd sender, ok bool, fds []int) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return sender{}, false, nil
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET {
			continue
		}
		switch m.Header.Type {
		case unix.SCM_CREDENTIALS:
			if c, err := unix.ParseUnixCredentials(&m); err == nil {
				snd, ok = sender{pid: c.Pid, uid: c.Uid, gid: c.Gid}, true
			}
		case unix.SCM_RIGHTS:
			if rights, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, rights...)
			}
		}
	}
	return snd, ok, fds
}

// closeFDs closes passed file descriptors: the proxy does not keep them.
func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// parentPID reads a process's parent from /proc/PID/stat (the field after
// the state, which follows the last ')' of the command name).
func parentPID(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
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
