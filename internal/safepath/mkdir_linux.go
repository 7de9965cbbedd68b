//go:build linux

package safepath

import (
	"fmt"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// MkdirAll opens dir as WalkDir does, creating every missing directory on
// the way with mode perm (permission bits and the sticky bit), owned by
// the caller's user and group. A directory it creates is checked before it
// is walked into: it must be a directory of the caller's user (so that
// another user who swapped the new entry is caught). Under a umask that
// strips bits of perm, the new directory is chmodded to perm through its
// own descriptor, but only where no other user could have swapped it; call
// MkdirAll under umask 0 (a thread of its own) to avoid that. As root it
// follows only links root alone can change, as WalkDir; another user's
// MkdirAll follows every link, as the kernel's lookup would.
func MkdirAll(dir string, perm uint32) (fd int, safe bool, err error) {
	root := unix.Geteuid() == 0
	w := &walker{safe: true, anyLink: !root}
	w.mkdir = func(w *walker, comp string, others bool) (int, error) {
		return mkdirIn(w, comp, perm, others && root)
	}
	if err := w.walk(dir); err != nil {
		return -1, false, err
	}
	return w.cur, w.safe || !root, nil
}

// mkdirIn creates comp in the walker's directory and opens it. others says
// that a user other than root may change that directory.
func mkdirIn(w *walker, comp string, perm uint32, others bool) (int, error) {
	here := filepath.Join(w.walked, comp)
	err := unix.Mkdirat(w.cur, comp, perm)
	if err == unix.EEXIST {
		// Made meanwhile by someone else: walk it like any other entry.
		return unix.Openat(w.cur, comp, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return -1, &MkdirError{Dir: here, Err: err}
	}
	next, err := unix.Openat(w.cur, comp, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &MkdirError{Dir: here, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(next, &st); err != nil {
		unix.Close(next)
		return -1, &MkdirError{Dir: here, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != uint32(unix.Geteuid()) {
		unix.Close(next)
		return -1, &MkdirError{Dir: here, Err: fmt.Errorf("another user replaced the new directory at once; left untouched")}
	}
	if st.Mode&0o1777 != perm {
		if others {
			unix.Close(next)
			return -1, &MkdirError{Dir: here, Err: fmt.Errorf("created with mode %#o under the umask, not %#o, and another user may change its parent, so it is not chmodded", st.Mode&0o1777, perm)}
		}
		// The magic link of an O_PATH descriptor leads to its inode.
		if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(next), perm); err != nil {
			unix.Close(next)
			return -1, &MkdirError{Dir: here, Err: err}
		}
	}
	return next, nil
}

// MkdirError is a directory MkdirAll could not create.
type MkdirError struct {
	Dir string
	Err error
}

func (e *MkdirError) Error() string { return "create directory " + e.Dir + ": " + e.Err.Error() }
func (e *MkdirError) Unwrap() error { return e.Err }
