//go:build linux

package unixdial

import (
	"context"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/privilege"
)

// Dial connects to the stream Unix socket at path (see the package
// comment): with cred's rights when cred names a user other than root and
// sockd runs as root; as root through a checked walk of the path; plainly
// when sockd is not root. timeout bounds the connect (0: none).
func Dial(ctx context.Context, path string, cred *Cred, timeout time.Duration) (net.Conn, error) {
	euid := unix.Geteuid()
	switch {
	case asUser(cred) && euid == 0:
		return dialAs(ctx, path, cred, timeout)
	case asUser(cred) && uint32(euid) != cred.UID:
		return nil, fmt.Errorf("dial unix %s as uid %d: %w", path, cred.UID, ErrNotRoot)
	case euid == 0:
		return dialWalked(ctx, path, timeout)
	}
	return dialPlain(ctx, path, timeout)
}

func dialPlain(ctx context.Context, path string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, "unix", path)
}

// dialWalked connects as root through the directory a checked walk of
// path holds.
func dialWalked(ctx context.Context, path string, timeout time.Duration) (net.Conn, error) {
	t, err := resolve(path)
	if err != nil {
		return nil, fmt.Errorf("dial unix %s: %w", path, err)
	}
	defer t.close()
	return dialPlain(ctx, t.connectPath(path), timeout)
}

// dialAs connects with c's rights (privilege.RunAs): the kernel resolves
// the path and checks the socket as c, and the backend sees c as its peer.
func dialAs(ctx context.Context, path string, c *Cred, timeout time.Duration) (net.Conn, error) {
	var conn net.Conn
	var err error
	if rerr := privilege.RunAs(*c, func() { conn, err = dialPlain(ctx, path, timeout) }); rerr != nil {
		return nil, rerr
	}
	if err != nil {
		return nil, fmt.Errorf("as uid %d: %w", c.UID, err)
	}
	return conn, nil
}
