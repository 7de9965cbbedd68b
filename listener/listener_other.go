//go:build !linux

package listener

import (
	"errors"
	"fmt"

	"github.com/sockd/sockd/job"
)

// Open is not supported on this platform.
func Open(label string, ep *job.Endpoint) (*Socket, error) {
	return nil, fmt.Errorf("job %s: socket: %w: sockd's listener needs Linux", label, errors.ErrUnsupported)
}

func closeSocket(*Socket) error { return errors.ErrUnsupported }

// SetBlocking is not supported on this platform.
func SetBlocking(fd int, blocking bool) error { return errors.ErrUnsupported }

// IsBlocking is not supported on this platform.
func IsBlocking(fd int) (bool, error) { return false, errors.ErrUnsupported }

func maxParts() int { return 1 }

func openBatch(parts int, each func(part int, open openFunc)) {
	each(0, func(label string, ep *job.Endpoint, as *job.Domain) (*Socket, error) {
		if as != nil {
			return nil, errors.ErrUnsupported
		}
		return Open(label, ep)
	})
}

func checkInherited(fd int) error { return errors.ErrUnsupported }

// closeOnExec has nothing to do: checkInherited adopts no fd here.
func closeOnExec([]int) {}
