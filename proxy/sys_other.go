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

// setPassCred: sender credentials exist on Linux only. Off Linux no
// datagram carries them, so every sd_notify datagram is refused.
func setPassCred(c *net.UnixConn) error { return nil }

// notifyControl finds no credentials and no fds off Linux.
func notifyControl(oob []byte) (snd sender, ok bool, fds []int) { return sender{}, false, nil }

func closeFDs(fds []int) {}

// parentPID is not implemented off Linux: only the main process counts.
func parentPID(pid int) (int, bool) { return 0, false }

// copyUnix copies with a buffer off Linux.
func copyUnix(dst, src *net.UnixConn) (int64, error) {
	return io.CopyBuffer(dst, src, make([]byte, 256<<10))
}
