//go:build linux

package supervisor

import (
	"bytes"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// acceptConn accepts one connection from a non-blocking listener. The new
// socket is close-on-exec and blocking, as classic inetd programs expect on
// their stdio.
func acceptConn(lfd int) (int, unix.Sockaddr, error) {
	for {
		fd, sa, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		return fd, sa, err
	}
}

// localAddr is getsockname.
func localAddr(fd int) unix.Sockaddr {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil
	}
	return sa
}

// sockaddrIPPort returns the IP and port of an inet sockaddr (an IPv4-mapped
// IPv6 address is unmapped).
func sockaddrIPPort(sa unix.Sockaddr) (netip.Addr, int, bool) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr), a.Port, true
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(a.Addr)
		if ip.Is4In6() {
			ip = ip.Unmap()
		}
		return ip, a.Port, true
	}
	return netip.Addr{}, 0, false
}

// peerCred returns the credentials of the peer of a connected Unix socket.
func peerCred(fd int) (*unix.Ucred, error) {
	return unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
}

// isReadable reports whether fd has something to read (a pending connection
// or datagram) right now.
func isReadable(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, 0)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0 && pfd[0].Revents&unix.POLLIN != 0
	}
}

// pendingMark is a fingerprint of what waits on a wait-mode socket, taken
// before the child starts and after it exits, to tell a child that drained
// its socket from one that left the request unread.
type pendingMark struct {
	ok      bool
	backlog int    // stream listeners: accept queue length; FIFOs: bytes waiting
	head    []byte // datagram sockets: source and first bytes of the head datagram
}

// markPending fingerprints the pending input of a wait-mode socket.
func markPending(fd int, dgram bool) pendingMark {
	if !dgram {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return pendingMark{}
		}
		// For a listening socket the kernel reports the accept queue
		// length in tcpi_unacked.
		return pendingMark{ok: true, backlog: int(info.Unacked)}
	}
	buf := make([]byte, 256)
	n, from, err := unix.Recvfrom(fd, buf, unix.MSG_PEEK|unix.MSG_DONTWAIT|unix.MSG_TRUNC)
	if err == unix.ENOTSOCK { // a FIFO: the bytes waiting in it (FIONREAD)
		if n, err := unix.IoctlGetInt(fd, unix.TIOCINQ); err == nil {
			return pendingMark{ok: true, backlog: n}
		}
	}
	if err != nil {
		return pendingMark{ok: true}
	}
	if n > len(buf) {
		n = len(buf)
	}
	head := append([]byte(sockaddrString(from)+"|"), buf[:n]...)
	return pendingMark{ok: true, head: head}
}

// unread reports whether the child left the input it was started for
// unread: the same datagram is still at the head, or no connection was taken
// from the accept queue.
func unread(before, after pendingMark) bool {
	if !before.ok || !after.ok {
		return false
	}
	if before.head != nil || after.head != nil {
		return before.head != nil && bytes.Equal(before.head, after.head)
	}
	return before.backlog > 0 && after.backlog >= before.backlog
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4, *unix.SockaddrInet6:
		ip, port, _ := sockaddrIPPort(a)
		return netip.AddrPortFrom(ip, uint16(port)).String()
	case *unix.SockaddrUnix:
		return a.Name
	}
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }
