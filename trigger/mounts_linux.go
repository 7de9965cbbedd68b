//go:build linux

package trigger

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MountInfo is the mount table of sockd's mount namespace.
const MountInfo = "/proc/self/mountinfo"

// Mounts tells when a file system is mounted: the kernel marks an open
// mountinfo file with POLLPRI (and POLLERR) at every change of the mount
// table, and reading the table again tells mounts (a new mount ID) from
// unmounts and changes of options.
type Mounts struct {
	fd  int
	ids map[int]string // mount ID -> mount point
}

// EpollEvents are the events to watch the fd for: POLLPRI only (a
// mountinfo file is always readable).
const EpollEvents = unix.EPOLLPRI

// NewMounts opens the mount table and reads it.
func NewMounts() (*Mounts, error) {
	return openMounts(MountInfo)
}

func openMounts(path string) (*Mounts, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the mount table %s: %w", path, err)
	}
	m := &Mounts{fd: fd}
	if m.ids, err = m.read(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return m, nil
}

// Fd is the fd to watch for EpollEvents.
func (m *Mounts) Fd() int { return m.fd }

// Mounted reads the table again and returns the mount points mounted
// since the last read, with their file system type ("/mnt/x (tmpfs)"),
// in table order.
func (m *Mounts) Mounted() ([]string, error) {
	ids, err := m.read()
	if err != nil {
		return nil, err
	}
	var fresh []int
	for id := range ids {
		if _, old := m.ids[id]; !old {
			fresh = append(fresh, id)
		}
	}
	sort.Ints(fresh)
	out := make([]string, len(fresh))
	for i, id := range fresh {
		out[i] = ids[id]
	}
	m.ids = ids
	return out, nil
}

// read reads the whole table from its start.
func (m *Mounts) read() (map[int]string, error) {
	if _, err := unix.Seek(m.fd, 0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	var data []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(m.fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading the mount table: %w", err)
		}
		if n == 0 {
			return parseMountInfo(data), nil
		}
		data = append(data, buf[:n]...)
	}
}

// parseMountInfo maps each mount ID of a mountinfo text to "mount point
// (type)" (proc(5): ID, parent, major:minor, root, mount point, options,
// optional fields, "-", type, source, super options).
func parseMountInfo(data []byte) map[int]string {
	ids := map[int]string{}
	for _, line := range bytes.Split(data, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) < 5 {
			continue
		}
		id, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		what := unescapeMount(f[4])
		for i := 5; i < len(f)-1; i++ {
			if f[i] == "-" {
				what += " (" + f[i+1] + ")"
				break
			}
		}
		ids[id] = what
	}
	return ids
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Close closes the table (unwatch its fd first).
func (m *Mounts) Close() error { return unix.Close(m.fd) }
