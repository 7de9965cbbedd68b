//go:build linux

package unixdial

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Dial connects to the stream Unix socket at path (see the package
// comment): with cred's rights when cred names a user other than root and
// sockd runs as root; as root through a checked walk of the path; plainly
// when sockd is not root. timeout bounds the connect (0: none).
func Dial(ctx context.Context, path string, cred *Cred, timeout time.Duration) (net.Conn, error) {
	euid := unix.Geteuid()
	switch {
	case cred.asUser() && euid == 0:
		return dialAs(ctx, path, cred, timeout)
	case cred.asUser() && uint32(euid) != cred.UID:
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

// dialAs connects with c's rights, on a thread of its own: its goroutine
// locks itself to the thread, takes c's groups, gid and uid (effective and
// file-system ones: the real and saved ids stay root's, so that they can
// be put back), connects, and puts its own back. Only then is the thread
// unlocked; when they cannot be put back the goroutine ends locked and the
// runtime ends the thread. The Go runtime creates no thread from a locked
// one, so no other thread ever starts with c's credentials.
func dialAs(ctx context.Context, path string, c *Cred, timeout time.Duration) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		saved, err := threadCreds()
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{nil, err}
			return
		}
		var conn net.Conn
		if err = setThreadCreds(c); err == nil {
			conn, err = dialPlain(ctx, path, timeout)
		}
		if restoreThreadCreds(saved) == nil {
			runtime.UnlockOSThread()
		}
		res <- result{conn, err}
	}()
	r := <-res
	if r.err != nil {
		return nil, fmt.Errorf("as uid %d: %w", c.UID, r.err)
	}
	return r.conn, nil
}
