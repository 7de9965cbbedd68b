//go:build linux

package trigger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Watcher watches paths with one inotify instance for all of them. A path
// is reported when it is created, written, renamed over, removed or has
// its attributes changed, when an entry of it changes (a directory), and
// when a directory above it is created, removed or replaced in a way that
// changes what the path is. A path need not exist: the deepest directory
// above it that exists is watched until it appears.
//
// Each watched path holds a watch on every directory from / down to its
// parent (for the names that lead to it) and on itself when it exists;
// inotify shares one watch per inode between the paths that need it.
type Watcher struct {
	fd    int
	paths map[string]*watched
	wds   map[int32]*inodeWatch
}

// watched is one path and the watches it holds.
type watched struct {
	path  string
	comps []string // "/", "/a", "/a/b": the path and every directory above it
	wds   []int32  // the watch held on each of comps; 0 where it has none
	id    fileID   // the path at the last look
}

// inodeWatch is one inotify watch and the paths that use it.
type inodeWatch struct {
	users map[use]struct{}
}

// use is one path's use of a watch: comps[depth] of the path.
type use struct {
	w     *watched
	depth int
}

// fileID is what tells one state of a path from another.
type fileID struct {
	exists      bool
	dev, ino    uint64
	size        int64
	mtime, mode int64
}

// Masks: a directory above the path sees its next name come and go; the
// path's parent sees the path's own events too (reported on the
// directory with the name); the path itself sees everything.
const (
	structMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	changeMask = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB
	fullMask   = structMask | changeMask
)

// NewWatcher creates a watcher with no paths.
func NewWatcher() (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	return &Watcher{fd: fd, paths: map[string]*watched{}, wds: map[int32]*inodeWatch{}}, nil
}

// Fd is the fd to watch for readability.
func (w *Watcher) Fd() int { return w.fd }

// Len is the number of paths watched.
func (w *Watcher) Len() int { return len(w.paths) }

// Add watches path (absolute, clean); adding it again does nothing. The
// error says why a directory on the way could not be watched (no
// permission, the inotify watch limit); the path stays added and is
// watched as far as it can be.
func (w *Watcher) Add(path string) error {
	if _, ok := w.paths[path]; ok {
		return nil
	}
	p := &watched{path: path, comps: prefixes(path)}
	p.wds = make([]int32, len(p.comps))
	w.paths[path] = p
	return w.resolve(p)
}

// Remove stops watching path.
func (w *Watcher) Remove(path string) {
	p, ok := w.paths[path]
	if !ok {
		return
	}
	for depth := range p.wds {
		w.drop(p, depth)
	}
	delete(w.paths, path)
}

// Close closes the inotify fd (unwatch it first).
func (w *Watcher) Close() error { return unix.Close(w.fd) }

// prefixes are "/", "/a", "/a/b" for "/a/b".
func prefixes(path string) []string {
	out := []string{"/"}
	cur := ""
	for _, c := range strings.Split(strings.Trim(path, "/"), "/") {
		if c == "" {
			continue
		}
		cur += "/" + c
		out = append(out, cur)
	}
	return out
}

// resolve watches every existing directory on the way to p and p itself,
// drops the watches p held and no longer needs, and looks at p again. It
// reports whether p changed since the last look.
func (w *Watcher) resolve(p *watched) error {
	var firstErr error
	last := len(p.comps) - 1
	for depth, comp := range p.comps {
		mask := uint32(structMask | unix.IN_ONLYDIR)
		switch depth {
		case last:
			mask = fullMask // a file or a directory
		case last - 1:
			mask |= changeMask
		}
		wd, err := unix.InotifyAddWatch(w.fd, comp, mask|unix.IN_MASK_ADD)
		if err != nil {
			if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) && firstErr == nil {
				firstErr = watchError(comp, err)
			}
			for d := depth; d <= last; d++ {
				w.drop(p, d)
			}
			break
		}
		if p.wds[depth] != int32(wd) {
			w.drop(p, depth)
			w.hold(p, depth, int32(wd))
		}
	}
	p.id = statID(p.path)
	return firstErr
}

// watchError says why comp cannot be watched.
func watchError(comp string, err error) error {
	if errors.Is(err, unix.ENOSPC) {
		return fmt.Errorf("watching %s: the inotify watch limit is reached (raise fs.inotify.max_user_watches): %w", comp, err)
	}
	return fmt.Errorf("watching %s: %w", comp, err)
}

// hold records p's use of watch wd at depth.
func (w *Watcher) hold(p *watched, depth int, wd int32) {
	iw := w.wds[wd]
	if iw == nil {
		iw = &inodeWatch{users: map[use]struct{}{}}
		w.wds[wd] = iw
	}
	iw.users[use{p, depth}] = struct{}{}
	p.wds[depth] = wd
}

// drop ends p's use of its watch at depth; a watch nobody uses is
// removed.
func (w *Watcher) drop(p *watched, depth int) {
	wd := p.wds[depth]
	if wd == 0 {
		return
	}
	p.wds[depth] = 0
	iw := w.wds[wd]
	if iw == nil {
		return
	}
	delete(iw.users, use{p, depth})
	if len(iw.users) == 0 {
		delete(w.wds, wd)
		_, _ = unix.InotifyRmWatch(w.fd, uint32(wd))
	}
}

// statID looks at path, following links.
func statID(path string) fileID {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{exists: true}
	}
	return fileID{exists: true, dev: uint64(st.Dev), ino: st.Ino, size: st.Size,
		mtime: time.Unix(st.Mtim.Unix()).UnixNano(), mode: int64(st.Mode)}
}

// Read takes every pending event and returns the watched paths that
// changed, each once, in no particular order. Call it when the fd is
// readable.
func (w *Watcher) Read() ([]string, error) {
	changed := map[*watched]bool{}
	again := map[*watched]bool{}
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(w.fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading inotify events: %w", err)
		}
		w.parse(buf[:n], changed, again)
	}
	var firstErr error
	for p := range again {
		before := p.id
		if err := w.resolve(p); err != nil && firstErr == nil {
			firstErr = err
		}
		if p.id != before {
			changed[p] = true
		}
	}
	out := make([]string, 0, len(changed))
	for p := range changed {
		if _, live := w.paths[p.path]; live {
			out = append(out, p.path)
		}
	}
	return out, firstErr
}

// parse applies a buffer of events: the paths they change, and the paths
// whose watches must be looked at again.
func (w *Watcher) parse(buf []byte, changed, again map[*watched]bool) {
	for len(buf) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(buf) {
			return
		}
		name := strings.TrimRight(string(buf[unix.SizeofInotifyEvent:end]), "\x00")
		buf = buf[end:]
		if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
			for _, p := range w.paths {
				changed[p], again[p] = true, true
			}
			continue
		}
		iw := w.wds[ev.Wd]
		if iw == nil {
			continue
		}
		for u := range iw.users {
			w.apply(u, ev.Mask, name, changed, again)
		}
		if ev.Mask&unix.IN_IGNORED != 0 {
			for u := range iw.users {
				u.w.wds[u.depth] = 0
				again[u.w] = true
			}
			delete(w.wds, ev.Wd)
		}
	}
}

// apply is one event on a watch that u uses.
func (w *Watcher) apply(u use, mask uint32, name string, changed, again map[*watched]bool) {
	p := u.w
	last := len(p.comps) - 1
	self := mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0
	if u.depth == last {
		changed[p] = true // the path itself, or an entry of it
		if self {
			again[p] = true
		}
		return
	}
	if self {
		again[p] = true // a directory on the way went
		return
	}
	if name != filepath.Base(p.comps[u.depth+1]) {
		return
	}
	if u.depth+1 == last {
		changed[p] = true // the path, seen from its directory
	}
	if mask&(unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_MOVED_TO) != 0 {
		again[p] = true
	}
}
