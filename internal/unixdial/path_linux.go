//go:build linux

package unixdial

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxLinks bounds the symbolic links one walk follows (the kernel's 40).
const maxLinks = 40

// CheckPath reports, as an *UnsafePathError, why root sockd would refuse
// to connect to a socket at path (Dial's walk): a directory on the way
// that a user other than root may change, or an entry of a sticky
// directory others may write that is not root's, or that does not exist
// there yet (another user could create it first). A path that does not
// exist in a directory only root may change is fine: only root can create
// it. Other failures (a component that is not a directory, a link loop)
// are left to the connect and give nil.
func CheckPath(path string) error {
	t, err := resolve(path)
	if err == nil {
		t.close()
		return nil
	}
	var unsafe *UnsafePathError
	if errors.As(err, &unsafe) {
		return unsafe
	}
	var missing *missingError
	if errors.As(err, &missing) && missing.sticky {
		return &UnsafePathError{Path: path, Dir: missing.entry, Owner: 0,
			Why: fmt.Sprintf("does not exist, and users other than root may create it in %s (sticky, writable by others) before the backend does", filepath.Dir(missing.entry))}
	}
	return nil
}

// target is a walked path: the directory that holds the socket's entry,
// by descriptor, and the entry's name.
type target struct {
	dir  int
	name string
}

func (t *target) close() { unix.Close(t.dir) }

// connectPath reaches the entry through the held directory, or is the
// path itself when that is too long for a sockaddr_un (every directory on
// it is closed to other users, so it leads to the same entry).
func (t *target) connectPath(path string) string {
	via := "/proc/self/fd/" + strconv.Itoa(t.dir) + "/" + t.name
	if len(via) < len(unix.RawSockaddrUnix{}.Path) {
		return via
	}
	return path
}

// walker is one walk of a path from "/".
type walker struct {
	path   string
	cur    int         // the directory reached
	st     unix.Stat_t // its status
	walked string      // its path as walked (for messages)
	rest   []string    // components left
	links  int
}

// missingError is a component that does not exist; sticky reports that
// its directory lets others create it.
type missingError struct {
	entry  string
	sticky bool
}

func (e *missingError) Error() string { return e.entry + ": " + unix.ENOENT.Error() }
func (e *missingError) Unwrap() error { return unix.ENOENT }

// resolve walks path (absolute) and returns its last entry's directory.
func resolve(path string) (*target, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%s: not an absolute path", path)
	}
	w := &walker{path: path, rest: splitPath(path), cur: -1}
	if len(w.rest) == 0 {
		return nil, fmt.Errorf("%s: names no socket", path)
	}
	if err := w.openRoot(); err != nil {
		return nil, err
	}
	for {
		name, done, err := w.step()
		if err != nil {
			unix.Close(w.cur)
			return nil, err
		}
		if done {
			return &target{dir: w.cur, name: name}, nil
		}
	}
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

func (w *walker) openRoot() error {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Fstat(fd, &w.st); err != nil {
		unix.Close(fd)
		return err
	}
	if w.cur >= 0 {
		unix.Close(w.cur)
	}
	w.cur, w.walked = fd, "/"
	return nil
}

// step looks the next component up in the current directory: it follows a
// link, enters a directory, or reports the final entry (done).
func (w *walker) step() (name string, done bool, err error) {
	comp := w.rest[0]
	w.rest = w.rest[1:]
	open, sticky := dirOpen(&w.st)
	if open {
		return "", false, w.unsafeDir()
	}
	here := filepath.Join(w.walked, comp)
	var st unix.Stat_t
	if err := unix.Fstatat(w.cur, comp, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return "", false, &missingError{entry: here, sticky: sticky}
		}
		return "", false, fmt.Errorf("%s: %w", here, err)
	}
	if sticky && st.Uid != 0 && comp != ".." {
		return "", false, &UnsafePathError{Path: w.path, Dir: here, Owner: st.Uid,
			Why: fmt.Sprintf("is owned by uid %d, in a directory that users other than root may write (%s)", st.Uid, w.walked)}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "", false, w.follow(comp)
	case unix.S_IFDIR:
		if len(w.rest) == 0 {
			return comp, true, nil // the connect reports it
		}
		return "", false, w.enter(comp, here, &st)
	}
	if len(w.rest) > 0 {
		return "", false, fmt.Errorf("%s: %w", here, unix.ENOTDIR)
	}
	return comp, true, nil
}

// dirOpen reports whether a user other than root may create, rename or
// remove entries of a directory: it is owned by another user, or group- or
// world-writable without the sticky bit (open); or writable by others with
// the sticky bit, where they may add entries but not move root's (sticky).
func dirOpen(st *unix.Stat_t) (open, sticky bool) {
	if st.Uid != 0 {
		return true, false
	}
	if st.Mode&0o022 == 0 {
		return false, false
	}
	if st.Mode&unix.S_ISVTX == 0 {
		return true, false
	}
	return false, true
}

func (w *walker) unsafeDir() error {
	why := fmt.Sprintf("is owned by uid %d", w.st.Uid)
	if w.st.Uid == 0 {
		why = fmt.Sprintf("is writable by group or others (mode %#o)", w.st.Mode&0o7777)
	}
	return &UnsafePathError{Path: w.path, Dir: w.walked, Owner: w.st.Uid, Why: why}
}

// enter makes the directory comp (whose status is st) the current one. In
// a directory no other user may change, the entry is still the one that
// fstatat saw.
func (w *walker) enter(comp, here string, st *unix.Stat_t) error {
	fd, err := unix.Openat(w.cur, comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", here, err)
	}
	unix.Close(w.cur)
	w.cur, w.st, w.walked = fd, *st, here
	return nil
}

// follow reads the link comp of the current directory and walks on along
// its target.
func (w *walker) follow(comp string) error {
	if w.links++; w.links > maxLinks {
		return fmt.Errorf("%s: %w", w.path, unix.ELOOP)
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(w.cur, comp, buf)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(w.walked, comp), err)
	}
	target := string(buf[:n])
	w.rest = append(splitPath(target), w.rest...)
	if filepath.IsAbs(target) {
		return w.openRoot()
	}
	if len(w.rest) == 0 {
		return fmt.Errorf("%s: %w", filepath.Join(w.walked, comp), unix.ENOENT)
	}
	return nil
}
