//go:build !linux

package unixdial

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"
)

// Dial connects to the stream Unix socket at path. Off Linux it connects
// with sockd's own rights only: a cred naming another user is refused.
func Dial(ctx context.Context, path string, cred *Cred, timeout time.Duration) (net.Conn, error) {
	if asUser(cred) && os.Geteuid() != int(cred.UID) {
		return nil, fmt.Errorf("dial unix %s as uid %d: %w (implemented on Linux only)", path, cred.UID, ErrNotRoot)
	}
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, "unix", path)
}

// CheckPath reports nothing off Linux, where the walk is not implemented.
func CheckPath(path string) error { return nil }
