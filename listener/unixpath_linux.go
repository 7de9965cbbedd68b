package listener

// Path operations on Unix socket nodes that no other user can redirect.
//
// sockd often runs as root and creates socket nodes in directories that an
// unprivileged user may control (the user's own directory, or a shared one).
// Between two path operations that user can rename, exchange or replace any
// entry of a directory it may write, and any directory below one it owns, so
// a path sockd resolves twice may name two different files. sockd therefore:
//
//   - binds under a thread-private umask that gives the node its final
//     SockPathMode at creation: there is no chmod on a path, ever;
//   - resolves the parent directory once, to an O_PATH descriptor, and acts
//     relative to it (fstatat, unlinkat with AT_SYMLINK_NOFOLLOW semantics),
//     so a renamed or replaced ancestor directory cannot move the operation
//     elsewhere;
//   - takes the bound node itself from the kernel (ioctl SIOCUNIXFILE, Linux
//     6.10 and later, needs CAP_NET_ADMIN, which root has) and changes its
//     owner through that descriptor: fchownat(fd, "", AT_EMPTY_PATH) acts on
//     exactly the inode sockd's bind created, wherever it has been moved;
//   - checks that this node is still the directory's entry at the socket's
//     name, and otherwise fails the socket ("the path changed") and leaves
//     everything as it is;
//   - as root without SIOCUNIXFILE (older kernels), refuses SockPathOwner and
//     SockPathGroup in a directory that another user may write, because
//     there it cannot prove which node it would change.
//
// A remaining window is harmless by construction: the only entries a user
// can swap in between sockd's check and its action are entries of a
// directory that user may write, which the user could remove or replace
// itself.

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/safepath"
)

// siocUnixFile is SIOCUNIXFILE (SIOCPROTOPRIVATE + 0): ioctl on a bound Unix
// socket returning an O_PATH, close-on-exec descriptor of its node.
const siocUnixFile = 0x89e0

// Test seams: each runs, when set, at the moment an attacker would race.
var (
	testHookBeforeBind   func(path string) // between the directory walk and bind
	testHookAfterBind    func(path string) // between bind and the node checks
	testHookBeforeUnlink func(path string) // between the last check and an unlink
	testNoUnixFile       bool              // behave as a kernel without SIOCUNIXFILE
)

// parentDir is the directory a socket path lives in, held open by an O_PATH
// descriptor, and the socket's name inside it.
type parentDir struct {
	fd   int
	path string // the directory as written (for messages)
	name string
	// chainSafe is true when no directory holding a component of path (the
	// socket's own directory aside) can be changed by a user other than
	// root: the path still leads to this directory at bind. Always true
	// when sockd does not run as root.
	chainSafe bool
	dev, ino  uint64 // the directory's identity
	// trusted is true when, besides chainSafe, no user but root can
	// create, rename or remove the directory's entries (writableByOthers
	// false): the entry at name after sockd's bind is then the node the
	// bind made, without asking the kernel (SIOCUNIXFILE) which it is.
	trusted bool
	// borrowed is true when fd belongs to a dirCache: close leaves it.
	borrowed bool
}

// splitSocketPath is a socket path's directory and name.
func splitSocketPath(path string) (dir, name string, err error) {
	dir, name = filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	if name == "" || name == "." || name == ".." {
		return "", "", unix.EINVAL
	}
	return dir, name, nil
}

// openParent resolves the parent directory of path once (safepath.WalkDir). Everything
// sockd then does at the path goes through the returned descriptor.
func openParent(path string) (*parentDir, error) {
	return openParentWith(path, safepath.WalkDir)
}

// openParentWith is openParent with the walk to the directory given:
// safepath.WalkDir, or a walk that creates missing directories
// (SockdOptions.DirectoryMode, mkdirParents).
func openParentWith(path string, walk func(dir string) (int, bool, error)) (*parentDir, error) {
	dir, name, err := splitSocketPath(path)
	if err != nil {
		return nil, err
	}
	fd, safe, err := walk(dir)
	if err != nil {
		return nil, err
	}
	p := &parentDir{fd: fd, path: dir, name: name, chainSafe: safe}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		p.close()
		return nil, err
	}
	p.dev, p.ino = st.Dev, st.Ino
	return p, nil
}

func (p *parentDir) close() {
	if !p.borrowed {
		unix.Close(p.fd)
	}
}

// lstat is fstatat of the entry, not following a symbolic link.
func (p *parentDir) lstat(st *unix.Stat_t) error {
	return unix.Fstatat(p.fd, p.name, st, unix.AT_SYMLINK_NOFOLLOW)
}

// unlinkIf removes the entry when it is still the node (dev, ino) of file
// type typ (S_IFSOCK, S_IFIFO, S_IFLNK). It reports whether it removed it.
func (p *parentDir) unlinkIf(dev, ino uint64, typ uint32) (bool, error) {
	var st unix.Stat_t
	if err := p.lstat(&st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	if st.Dev != dev || st.Ino != ino || st.Mode&unix.S_IFMT != typ {
		return false, nil
	}
	if testHookBeforeUnlink != nil {
		testHookBeforeUnlink(filepath.Join(p.path, p.name))
	}
	if err := unix.Unlinkat(p.fd, p.name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return false, err
	}
	return true, nil
}

// connectPath is an address that reaches the entry through the held
// directory (/proc/self/fd/N/NAME), or the plain path when that is too long
// for a sockaddr_un.
func (p *parentDir) connectPath(path string) string {
	via := "/proc/self/fd/" + strconv.Itoa(p.fd) + "/" + p.name
	if len(via) < len(unix.RawSockaddrUnix{}.Path) {
		return via
	}
	return path
}

// writableByOthers reports whether a user other than root may create,
// rename or remove entries of the held directory (safepath.WritableByOthers).
func (p *parentDir) writableByOthers() (bool, uint32, error) {
	return safepath.WritableByOthers(p.fd)
}

// boundNode is the filesystem node a Unix bind created.
type boundNode struct {
	fd       int // O_PATH descriptor of the node from SIOCUNIXFILE, or -1
	dev, ino uint64
}

func (n *boundNode) close() {
	if n.fd >= 0 {
		unix.Close(n.fd)
		n.fd = -1
	}
}

// errPathChanged reports a socket node that is no longer at its path.
var errPathChanged = errors.New("the socket's path changed while sockd set it up (another user replaced or moved it); left untouched")

// nodeOf identifies the node sockd's bind of sock created and checks that it
// is the entry of dir at the socket's name.
func nodeOf(sock int, dir *parentDir) (*boundNode, error) {
	if testHookAfterBind != nil {
		testHookAfterBind(filepath.Join(dir.path, dir.name))
	}
	n := &boundNode{fd: -1}
	var st unix.Stat_t
	if dir.trusted {
		// Only root can have changed the entry since the bind.
		if err := dir.lstat(&st); err != nil {
			return nil, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Uid != uint32(unix.Geteuid()) {
			return nil, errPathChanged
		}
		n.dev, n.ino = st.Dev, st.Ino
		return n, nil
	}
	if fd, err := nodeFd(sock); err == nil {
		n.fd = fd
		if err := unix.Fstat(fd, &st); err != nil {
			n.close()
			return nil, err
		}
	} else if err := dir.lstat(&st); err != nil {
		return nil, err
	} else if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Uid != uint32(unix.Geteuid()) {
		// Without SIOCUNIXFILE: a node sockd did not create is there.
		return nil, errPathChanged
	}
	n.dev, n.ino = st.Dev, st.Ino
	var at unix.Stat_t
	if err := dir.lstat(&at); err != nil || at.Dev != n.dev || at.Ino != n.ino {
		n.close()
		return nil, errPathChanged
	}
	return n, nil
}

// nodeFd asks the kernel for an O_PATH descriptor of the node sock is bound
// to (ENOTTY/EINVAL on kernels without SIOCUNIXFILE, EPERM without
// CAP_NET_ADMIN).
func nodeFd(sock int) (int, error) {
	if testNoUnixFile {
		return -1, unix.ENOTTY
	}
	return unix.IoctlRetInt(sock, siocUnixFile)
}

// chown sets the owner and group of the node (-1 leaves one unchanged).
func (n *boundNode) chown(dir *parentDir, uid, gid int) error {
	if n.fd >= 0 {
		return unix.Fchownat(n.fd, "", uid, gid, unix.AT_EMPTY_PATH)
	}
	if unix.Geteuid() == 0 {
		others, owner, err := dir.writableByOthers()
		if err != nil {
			return err
		}
		if others {
			return &unsafeDirError{dir: dir.path, owner: owner}
		}
	}
	// Nobody but root can change this directory (or sockd runs as an
	// ordinary user and can change nothing it could not change anyway).
	var st unix.Stat_t
	if err := dir.lstat(&st); err != nil || st.Dev != n.dev || st.Ino != n.ino {
		return errPathChanged
	}
	return unix.Fchownat(dir.fd, dir.name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

// chmod sets the node's permission bits through a descriptor of the very
// node (used only when the bind could not run under the final umask).
func (n *boundNode) chmod(dir *parentDir, mode uint32) error {
	fd := n.fd
	if fd < 0 {
		var err error
		fd, err = unix.Openat(dir.fd, dir.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Dev != n.dev || st.Ino != n.ino {
			return errPathChanged
		}
	}
	// The magic link of an O_PATH descriptor leads to its inode, not to
	// whatever the path names now.
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
}

// unsafeDirError refuses SockPathOwner/SockPathGroup where root cannot tell
// which node it would change.
type unsafeDirError struct {
	dir   string
	owner uint32
}

func (e *unsafeDirError) Error() string {
	who := "writable by group or others"
	if e.owner != 0 {
		who = fmt.Sprintf("owned by uid %d", e.owner)
	}
	return fmt.Sprintf("directory %s is %s, and this kernel cannot hand sockd the socket's own node (SIOCUNIXFILE, Linux 6.10+): "+
		"root sockd sets SockPathOwner/SockPathGroup only in directories no other user can change", e.dir, who)
}

// removeNode removes the node c created, if it is still there: through the
// path's directory walked again as walkDir does, and only when that is still
// the directory the node was bound in.
func removeNode(c *createdPath) error {
	dir, err := openParent(c.path)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil
		}
		return err
	}
	defer dir.close()
	if dir.dev != c.dirDev || dir.ino != c.dirIno {
		return errDirChanged
	}
	typ := c.typ
	if typ == 0 {
		typ = unix.S_IFSOCK
	}
	_, err = dir.unlinkIf(c.dev, c.ino, typ)
	return err
}

// errDirChanged reports a socket whose directory is no longer at its path.
var errDirChanged = errors.New("the socket's directory was moved or replaced since sockd bound it; its node is left where it is")
