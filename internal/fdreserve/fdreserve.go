// Package fdreserve keeps a few file descriptors set aside for the next
// connection a daemon accepts, so that accepting never takes the last free
// descriptors and leaves the connection's start without the ones it needs
// (a child's pidfd, a backend socket): the connection would then be closed
// unserved.
//
// A Reserve holds its descriptors open on /dev/null. The accept path checks
// Ready before each accept; when accept fails with EMFILE or ENFILE it calls
// Release, which closes them, and accepts again: the connection and its
// start get the freed numbers. The reserve is then short until Ready can
// open its descriptors again, and accepting waits for that (the clients wait
// in the kernel backlog). On the common path, with descriptors to spare, a
// Reserve costs one atomic load per accept.
package fdreserve

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
)

// Reserve is a set of descriptors held for one start. Safe for concurrent
// use.
type Reserve struct {
	want int
	full atomic.Bool

	mu  sync.Mutex
	fds []spare
}

// New returns a reserve of n descriptors; it opens them at the first Ready.
func New(n int) *Reserve {
	return &Reserve{want: n}
}

// Ready reports whether the reserve holds its descriptors, opening the
// missing ones first (those it could open are kept).
func (r *Reserve) Ready() bool {
	if r.full.Load() {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.fds) < r.want {
		fd, err := openSpare()
		if err != nil {
			return false
		}
		r.fds = append(r.fds, fd)
	}
	r.full.Store(true)
	return true
}

// Release closes the held descriptors so that the caller's next ones can be
// had. It reports whether it released any.
func (r *Reserve) Release() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.full.Store(false)
	for _, fd := range r.fds {
		closeSpare(fd)
	}
	n := len(r.fds)
	r.fds = r.fds[:0]
	return n > 0
}

// Held is the number of descriptors held now.
func (r *Reserve) Held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.fds)
}

// Hold is one descriptor held for a later operation that needs one (a
// dial): Release it right before, and the operation gets the freed number.
// A connection accepted with a Hold taken first can always have its second
// descriptor, where a process with many connections between accept and
// dial would otherwise fill its table with clients that wait for a backend
// connection each. The zero Hold holds nothing.
type Hold struct {
	s    spare
	held bool
}

// Take takes a Hold (a duplicate of a /dev/null descriptor the package
// keeps open).
func Take() (Hold, error) {
	s, err := dupSpare()
	if err != nil {
		return Hold{}, err
	}
	return Hold{s: s, held: true}, nil
}

// Release closes the held descriptor; later calls do nothing.
func (h *Hold) Release() {
	if h.held {
		closeSpare(h.s)
		h.held = false
	}
}

// Shortage reports whether err says the process (EMFILE) or the system
// (ENFILE) has no file descriptor left.
func Shortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
