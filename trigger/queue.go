package trigger

import (
	"errors"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
)

// NotEmpty reports whether dir holds an entry (launchd's QueueDirectories
// test). A directory that does not exist is empty; one that cannot be
// read is an error.
func NotEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err == io.EOF {
		return false, nil
	}
	return len(names) > 0, err
}

// Fingerprint sums what dir holds: the name, inode, size and modification
// time of every entry. A job that leaves its queue as it found it leaves
// the same fingerprint, so that sockd can tell an exit that made no
// progress from one that did.
func Fingerprint(dir string) (uint64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	sort.Slice(ents, func(a, b int) bool { return ents[a].Name() < ents[b].Name() })
	h := fnv.New64a()
	for _, e := range ents {
		h.Write([]byte(e.Name()))
		h.Write([]byte{0})
		if fi, err := e.Info(); err == nil {
			h.Write([]byte(strconv.FormatInt(fi.Size(), 10) + "/" + strconv.FormatInt(fi.ModTime().UnixNano(), 10) + "/" + inode(fi)))
		}
		h.Write([]byte{0})
	}
	return h.Sum64(), nil
}
