//go:build !linux

package proxy

import (
	"errors"
	"io"
	"net"
)

// acceptWaiter is not implemented here: accepting then waits holding a
// MaxConns slot.
type acceptWaiter struct{}

func newAcceptWaiter(ln net.Listener) (*acceptWaiter, error) {
	return nil, errors.New("not implemented")
}

func (w *acceptWaiter) wait() error { return nil }
func (w *acceptWaiter) close()      {}

// closePassedFDs is a no-op off Linux.
func closePassedFDs(oob []byte) {}

// copyUnix copies with a buffer off Linux.
func copyUnix(dst, src *net.UnixConn) (int64, error) {
	return io.CopyBuffer(dst, src, make([]byte, 256<<10))
}
