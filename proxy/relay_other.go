//go:build !linux || !cgo

package proxy

import (
	"errors"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/internal/handover"
)

// relay is Linux-only (it needs splice(2) and cgo); elsewhere the proxy
// copies with a goroutine per direction.
type relay struct{}

// haveRelay: the goroutine copy is all there is.
const haveRelay = false

func startRelay(n int) (*relay, error) {
	return nil, errors.New("no relay on this platform")
}

func (r *relay) stop() {}

func (r *relay) forward(f *fwd, idle time.Duration, log *zap.Logger) (relayResult, bool) {
	return relayResult{}, false
}

// Frozen is the relay stopped for an in-place upgrade: without the relay
// there is nothing to freeze, and proxied connections are not handed over.
type Frozen struct{}

// Freeze holds nothing here.
func Freeze() *Frozen { return &Frozen{} }

// Thaw does nothing here.
func (fz *Frozen) Thaw() error { return nil }

func (fz *Frozen) conn(uint64) (handover.ProxyConn, bool) { return handover.ProxyConn{}, false }

func (r *relay) adopt(f *fwd, pc handover.ProxyConn) relayResult {
	closeFds(pc.Fds())
	return relayResult{}
}

func closeFds(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			syscall.Close(fd)
		}
	}
}

func closeOnExec(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			syscall.CloseOnExec(fd)
		}
	}
}
