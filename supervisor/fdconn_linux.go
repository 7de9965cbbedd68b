//go:build linux

package supervisor

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// fdConn is an accepted stream connection served inside sockd, as a
// net.Conn on the accepted fd itself. net.FileConn would make a duplicate,
// a second fd that at the fd limit may not be there.
type fdConn struct {
	*os.File // non-blocking, so in Go's poller: deadlines work
	fd       int
	peer     unix.Sockaddr
}

// newFdConn makes cfd non-blocking and takes it over; the caller closes
// cfd only when this fails.
func newFdConn(cfd int, peer unix.Sockaddr) (*fdConn, error) {
	if err := unix.SetNonblock(cfd, true); err != nil {
		return nil, fmt.Errorf("set non-blocking: %w", err)
	}
	return &fdConn{File: os.NewFile(uintptr(cfd), "conn"), fd: cfd, peer: peer}, nil
}

// LocalAddr is the connection's local address (getsockname).
func (c *fdConn) LocalAddr() net.Addr { return netAddr(localAddr(c.fd)) }

// RemoteAddr is the client's address, as accepted.
func (c *fdConn) RemoteAddr() net.Addr { return netAddr(c.peer) }

// netAddr converts a stream socket address.
func netAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port, Zone: zoneName(a.ZoneId)}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: "unix"}
	}
	return nil
}

// zoneName is the interface name of an IPv6 zone index ("" for none).
func zoneName(id uint32) string {
	if id == 0 {
		return ""
	}
	if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
		return ifi.Name
	}
	return fmt.Sprint(id)
}
