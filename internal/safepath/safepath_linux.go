//go:build linux

// Package safepath resolves paths the way root must when another user may
// control part of them: one component at a time, through O_PATH
// descriptors, following only symbolic links root alone can change, and
// telling which directories on the way other users can write. sockd's
// listener binds Unix sockets with it; load-time checks use it to refuse
// paths a user could point root elsewhere with.
package safepath

import (
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxLinks bounds the symbolic links one walk follows (the kernel's 40).
const maxLinks = 40

// WalkDir opens dir. As root it walks one component at a time, never
// following a symbolic link that a user other than root could change (one
// not owned by root, or in a directory others may write): such a link is
// an *UntrustedLinkError. safe reports whether every directory the walk
// went through, dir itself aside, is closed to other users. Other users
// get the kernel's own lookup: a user sockd can reach nothing its user
// could not.
func WalkDir(dir string) (fd int, safe bool, err error) {
	if unix.Geteuid() != 0 {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return fd, true, err
	}
	w := &walker{safe: true}
	if err := w.walk(dir); err != nil {
		return -1, false, err
	}
	return w.cur, w.safe, nil
}

// walk opens dir's first directory ("/" or ".") and steps through every
// component of dir; on success w.cur is dir, open, on failure closed.
func (w *walker) walk(dir string) error {
	w.rest = splitPath(dir)
	start := "."
	if filepath.IsAbs(dir) {
		start = "/"
	}
	var err error
	if w.cur, err = unix.Open(start, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return err
	}
	w.walked = start
	for len(w.rest) > 0 {
		if err := w.step(); err != nil {
			unix.Close(w.cur)
			return err
		}
	}
	return nil
}

// walker is one WalkDir in progress.
type walker struct {
	cur    int      // the directory reached so far
	walked string   // its path, as walked (for messages)
	rest   []string // components still to walk
	links  int
	safe   bool
	// mkdir creates a missing component (MkdirAll), when set.
	mkdir func(w *walker, comp string, others bool) (int, error)
	// anyLink follows every symbolic link, as the kernel's own lookup
	// does (MkdirAll for a sockd that is not root).
	anyLink bool
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

// step walks the next component: into a directory, or through a link
// root alone can change.
func (w *walker) step() error {
	comp := w.rest[0]
	w.rest = w.rest[1:]
	others, owner, err := WritableByOthers(w.cur)
	if err != nil {
		return err
	}
	next, err := unix.Openat(w.cur, comp, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT && w.mkdir != nil {
		next, err = w.mkdir(w, comp, others)
	}
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(next, &st); err != nil {
		unix.Close(next)
		return err
	}
	here := filepath.Join(w.walked, comp)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		unix.Close(next)
		if !w.anyLink && (others || st.Uid != 0) {
			return &UntrustedLinkError{link: here, linkOwner: st.Uid, dirOwner: owner, dirOpen: others}
		}
		return w.follow(comp)
	case unix.S_IFDIR:
	default:
		unix.Close(next)
		return unix.ENOTDIR
	}
	if others {
		w.safe = false
	}
	unix.Close(w.cur)
	w.cur, w.walked = next, here
	return nil
}

// follow reads the link comp of the current directory and walks on along
// its target.
func (w *walker) follow(comp string) error {
	if w.links++; w.links > maxLinks {
		return unix.ELOOP
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(w.cur, comp, buf)
	if err != nil {
		return err
	}
	target := string(buf[:n])
	w.rest = append(splitPath(target), w.rest...)
	if filepath.IsAbs(target) {
		root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		unix.Close(w.cur)
		w.cur, w.walked = root, "/"
	}
	return nil
}

// UntrustedLinkError is a symbolic link on a path that a user
// other than root can change, which root does not follow.
type UntrustedLinkError struct {
	link                string
	linkOwner, dirOwner uint32
	dirOpen             bool
}

func (e *UntrustedLinkError) Error() string {
	who := fmt.Sprintf("the link is owned by uid %d", e.linkOwner)
	if e.dirOpen {
		who = fmt.Sprintf("its directory (owner uid %d) is writable by a user other than root", e.dirOwner)
	}
	return fmt.Sprintf("%s is a symbolic link and %s: root sockd does not follow a link another user can change; "+
		"give the real directory instead", e.link, who)
}

// WritableByOthers reports whether a user other than root may create, rename
// or remove entries of the directory fd: it is owned by another user, or
// group- or world-writable without the sticky bit (in a sticky directory
// others cannot move root's entries). It returns the directory's owner.
func WritableByOthers(fd int) (bool, uint32, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, 0, err
	}
	if st.Uid != 0 {
		return true, st.Uid, nil
	}
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return true, st.Uid, nil
	}
	return false, st.Uid, nil
}
