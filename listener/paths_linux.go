package listener

// FIFOs (SockType fifo), parent directories (SockdOptions.DirectoryMode)
// and symbolic links (SockdOptions.Symlinks): the file nodes of a job's
// sockets besides the Unix socket node itself, made with the same care as
// that node (unixpath_linux.go): every path is walked once to a held
// directory (safepath), nothing is created or removed through a link a
// user other than root can change, and only the very node sockd made is
// ever removed.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/safepath"
)

// dirMode is SockdOptions.DirectoryMode, or nil.
func (o *opener) dirMode() *os.FileMode {
	if opts := o.options(); opts != nil {
		return opts.DirectoryMode
	}
	return nil
}

// parent resolves the directory of path (openParent). With DirectoryMode
// the missing directories on the way are created first, with that mode,
// owned by sockd's user: safepath.MkdirAll, run where the umask is 0 (the
// bind thread) so that each directory is created with its final mode.
func (o *opener) parent(path string) (*parentDir, error) {
	mode := o.dirMode()
	if mode == nil && o.dirs != nil {
		return o.dirs.parent(path)
	}
	if mode == nil {
		return openParent(path)
	}
	perm := uint32(*mode)
	return openParentWith(path, func(dir string) (fd int, safe bool, err error) {
		mkdir := func() {
			old := unix.Umask(0) // the bind thread's own umask
			defer unix.Umask(old)
			fd, safe, err = safepath.MkdirAll(dir, perm)
		}
		switch {
		case o.direct:
			mkdir()
		case onBinder(mkdir):
		default:
			// Under the process umask: MkdirAll fixes the mode of each
			// new directory where that is safe, and refuses it elsewhere.
			fd, safe, err = safepath.MkdirAll(dir, perm)
		}
		return fd, safe, err
	})
}

// dirHint explains a failed walk to (or creation of) a directory.
func (o *opener) dirHint(err error, path string) string {
	var me *safepath.MkdirError
	if errors.As(err, &me) {
		return "" // it names the directory and the reason
	}
	return unixBindHint(err, path)
}

// fifoMode is the FIFO's final permission bits: SockPathMode, or 0600.
func (o *opener) fifoMode() uint32 {
	if sock := o.ep.Socket; sock != nil && sock.PathMode != nil {
		return uint32(sock.PathMode.Perm())
	}
	return 0o600
}

// pathOwner is SockPathOwner and SockPathGroup (-1 for one not set).
func (o *opener) pathOwner() (uid, gid int) {
	uid, gid = -1, -1
	if sock := o.ep.Socket; sock != nil {
		if sock.PathOwner != nil {
			uid = *sock.PathOwner
		}
		if sock.PathGroup != nil {
			gid = *sock.PathGroup
		}
	}
	return uid, gid
}

// openFIFO makes the FIFO at the endpoint's path and opens it for reading
// and writing, non-blocking: sockd is a writer itself, so the FIFO never
// reports end of file or hang-up, and it is readable exactly while data
// waits. A new FIFO is created mode 0600 and gets SockPathMode (default
// 0600), SockPathOwner and SockPathGroup through its open descriptor. A
// FIFO already at the path (one a killed sockd left) is taken only when
// it has exactly the owner, group and mode the job asks for; anything
// else there is refused and left untouched. Close removes the FIFO.
func (o *opener) openFIFO() (*Socket, error) {
	path := o.ep.Address
	dir, err := o.parent(path)
	if err != nil {
		return nil, o.fail("mkfifo", err, o.dirHint(err, path))
	}
	defer dir.close()
	mode := o.fifoMode()
	uid, gid := o.pathOwner()
	var st unix.Stat_t
	adopted := false
	switch err := dir.lstat(&st); {
	case errors.Is(err, unix.ENOENT):
		if err := unix.Mkfifoat(dir.fd, dir.name, 0o600); err != nil {
			return nil, o.fail("mkfifo", err, unixBindHint(err, path))
		}
	case err != nil:
		return nil, o.fail("lstat", err, unixBindHint(err, path))
	case st.Mode&unix.S_IFMT != unix.S_IFIFO:
		return nil, o.fail("mkfifo", unix.EEXIST,
			fmt.Sprintf("%s is in the way; sockd left it untouched", fileKind(st.Mode)))
	default:
		wantUID := uid
		if wantUID < 0 {
			wantUID = unix.Geteuid()
		}
		if st.Mode&0o7777 != mode || int(st.Uid) != wantUID || (gid >= 0 && int(st.Gid) != gid) {
			return nil, o.fail("mkfifo", unix.EEXIST, fmt.Sprintf(
				"a FIFO of uid %d, gid %d, mode %#o is there; sockd takes an existing FIFO only when its owner, group and mode are the ones the job asks for (uid %d, mode %#o), and left this one untouched: remove it",
				st.Uid, st.Gid, st.Mode&0o7777, wantUID, mode))
		}
		adopted = true
	}
	fd, node, err := openFIFONode(dir, adopted, &st)
	if err != nil {
		return nil, o.fail("open FIFO", err, "")
	}
	s := &Socket{Endpoint: o.ep, Label: o.label, Fd: fd, Network: "fifo", Addr: path,
		created: &createdPath{path: path, typ: unix.S_IFIFO, dev: node.Dev, ino: node.Ino, dirDev: dir.dev, dirIno: dir.ino}}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			hint := ""
			if errors.Is(err, unix.EPERM) {
				hint = "SockPathOwner and SockPathGroup need root or CAP_CHOWN"
			}
			s.Close()
			return nil, o.fail(fmt.Sprintf("chown %d:%d", uid, gid), err, hint)
		}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		s.Close()
		return nil, o.fail("chmod", err, "")
	}
	if err := o.makeSymlinks(s); err != nil {
		s.Close()
		return nil, err
	}
	o.readOptions(s, unix.AF_UNIX)
	return s, nil
}

// openFIFONode opens the FIFO that is dir's entry for reading and writing,
// through an O_PATH descriptor first, so that nothing but a FIFO is ever
// opened (an open of a device can act on it): one sockd just made (it must
// be sockd's user's), or the one found (adopted, st) and still there.
func openFIFONode(dir *parentDir, adopted bool, st *unix.Stat_t) (int, *unix.Stat_t, error) {
	pfd, err := unix.Openat(dir.fd, dir.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nil, err
	}
	defer unix.Close(pfd)
	var node unix.Stat_t
	if err := unix.Fstat(pfd, &node); err != nil {
		return -1, nil, err
	}
	if node.Mode&unix.S_IFMT != unix.S_IFIFO ||
		(!adopted && node.Uid != uint32(unix.Geteuid())) ||
		(adopted && (node.Dev != st.Dev || node.Ino != st.Ino)) {
		return -1, nil, errPathChanged
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return -1, nil, err
	}
	return fd, &node, nil
}

// makeSymlinks makes SockdOptions.Symlinks, each a symbolic link to the
// socket's path, in its directory walked once (and created with
// DirectoryMode). A symbolic link already there to the same path is
// taken; anything else there fails the socket and is left untouched. Close
// removes the links it made or took.
func (o *opener) makeSymlinks(s *Socket) error {
	opts := o.options()
	if opts == nil || len(opts.Symlinks) == 0 {
		return nil
	}
	target := o.ep.Address
	if !filepath.IsAbs(target) {
		abs, err := filepath.Abs(target)
		if err != nil {
			return o.fail("SockdOptions.Symlinks", err, "")
		}
		target = abs
	}
	for _, l := range opts.Symlinks {
		c, err := o.symlink(l, target)
		if err != nil {
			return err
		}
		s.links = append(s.links, c)
	}
	return nil
}

func (o *opener) symlink(link, target string) (*createdPath, error) {
	op := "SockdOptions.Symlinks: symlink " + link
	dir, err := o.parent(link)
	if err != nil {
		return nil, o.fail(op, err, o.dirHint(err, link))
	}
	defer dir.close()
	var st unix.Stat_t
	switch err := dir.lstat(&st); {
	case errors.Is(err, unix.ENOENT):
		if err := unix.Symlinkat(target, dir.fd, dir.name); err != nil {
			return nil, o.fail(op, err, unixBindHint(err, link))
		}
		if err := dir.lstat(&st); err != nil {
			return nil, o.fail(op, err, "")
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK || st.Uid != uint32(unix.Geteuid()) {
			return nil, o.fail(op, errPathChanged, "")
		}
	case err != nil:
		return nil, o.fail(op, err, unixBindHint(err, link))
	case st.Mode&unix.S_IFMT != unix.S_IFLNK:
		return nil, o.fail(op, unix.EEXIST, fmt.Sprintf("%s is in the way; sockd left it untouched", fileKind(st.Mode)))
	default:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(dir.fd, dir.name, buf)
		if err != nil {
			return nil, o.fail(op, err, "")
		}
		if got := string(buf[:n]); got != target {
			return nil, o.fail(op, unix.EEXIST, fmt.Sprintf("a symbolic link to %s is in the way; sockd left it untouched", got))
		}
	}
	return &createdPath{path: link, typ: unix.S_IFLNK, dev: st.Dev, ino: st.Ino, dirDev: dir.dev, dirIno: dir.ino}, nil
}
