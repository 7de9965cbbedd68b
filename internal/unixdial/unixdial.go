// Package unixdial connects to stream Unix sockets by path for root sockd
// without reaching, through a path another user controls, a socket that
// the job's user could not reach.
//
// A path is resolved by the kernel with the rights of whoever connects:
// root follows every symbolic link and passes every permission check. A
// user who owns a directory on the path (or may write one) can point the
// path at any socket on the machine (a root-only socket in a 0700
// directory, /run/docker.sock) between two connects. So:
//
//   - For a job with a user (Cred with a uid other than 0), Dial connects
//     with that user's rights: on a thread of its own whose effective uid,
//     gid and supplementary groups are the job's (raw setresuid, setresgid
//     and setgroups change the calling thread only). The kernel resolves
//     the path, follows its links and checks the socket's permissions as
//     that user, and the peer (SO_PEERCRED) is that user, not root. The
//     thread's credentials are put back before it runs anything else; a
//     thread whose credentials cannot be put back is never reused.
//   - For a job that runs as root, Dial walks the path one component at a
//     time from "/" through O_PATH descriptors and refuses it
//     (*UnsafePathError) when a user other than root could change where
//     it leads: a directory on the way owned by another user, or group- or
//     world-writable without the sticky bit, or an entry that is not
//     root's in a sticky directory others may write (/tmp). It connects
//     through the directory it holds (/proc/self/fd/N/NAME). CheckPath is
//     the same walk for load time.
//   - A sockd that is not root connects plainly: it can reach nothing its
//     own user could not.
//
// Nothing here resolves a path twice: the listener package's walk
// (listener/unixpath_linux.go) follows the same rules for binds.
package unixdial

import (
	"errors"
	"fmt"

	"github.com/sockd/sockd/internal/privilege"
)

// Cred is the identity a connect is made with: a uid, its primary gid and
// its supplementary groups (as the job's process gets them).
type Cred = privilege.Cred

// asUser reports whether c names a user other than root.
func asUser(c *Cred) bool { return c != nil && c.UID != 0 }

// UnsafePathError is a Unix socket path that a user other than root could
// point elsewhere, which root sockd does not connect through.
type UnsafePathError struct {
	Path  string // the path as given
	Dir   string // the directory (or entry) that others may change
	Owner uint32 // its owner
	Why   string // what makes it unsafe
}

func (e *UnsafePathError) Error() string {
	return fmt.Sprintf("%s: %s %s", e.Path, e.Dir, e.Why)
}

// ErrNotRoot is returned when a connect as another user is asked of a
// sockd that is not root.
var ErrNotRoot = errors.New("connecting as another user needs root")
