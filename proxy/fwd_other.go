//go:build !linux

package proxy

import (
	"errors"
	"time"
)

// fwdLoops are Linux-only (splice); elsewhere connections are copied with
// a goroutine per direction.
type fwdLoops struct{}

func newFwdLoops(int) (*fwdLoops, error) { return nil, errors.New("forwarding loops need Linux") }

func (fl *fwdLoops) forward(*Server, *fwd, time.Duration) bool { return false }

func (fl *fwdLoops) stop() {}

func forwardLoops() int { return 1 }
