//go:build !linux || !cgo

package proxy

import (
	"errors"
	"time"

	"go.uber.org/zap"
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
