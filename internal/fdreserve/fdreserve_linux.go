//go:build linux

package fdreserve

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// spare is one reserve descriptor.
type spare = int

// openSpare opens one reserve descriptor. Each is a separate open of
// /dev/null, not a dup: closing it then frees an entry of the system-wide
// file table too (ENFILE), not only a number of the process's (EMFILE).
func openSpare() (spare, error) {
	return unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
}

func closeSpare(fd spare) { _ = unix.Close(fd) }

// devNull is the descriptor Holds duplicate (a dup is much cheaper than an
// open); -1 until opened.
var devNull struct {
	mu sync.Mutex // serializes the open
	fd atomic.Int32
}

func init() { devNull.fd.Store(-1) }

// dupSpare duplicates devNull, opening it first if need be.
func dupSpare() (spare, error) {
	fd := int(devNull.fd.Load())
	if fd < 0 {
		devNull.mu.Lock()
		if fd = int(devNull.fd.Load()); fd < 0 {
			var err error
			if fd, err = openSpare(); err != nil {
				devNull.mu.Unlock()
				return -1, err
			}
			devNull.fd.Store(int32(fd))
		}
		devNull.mu.Unlock()
	}
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}
