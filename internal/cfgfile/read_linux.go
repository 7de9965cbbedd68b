package cfgfile

import (
	"io/fs"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ReadFile reads the regular file at path whole, as Open and a read do,
// in the fewest system calls: job directories hold thousands of files. It
// returns the file's fstat, whether path itself is a symbolic link (the
// caller checks who owns the link), and an error if the file is not
// regular or holds more than max bytes (ErrTooLarge).
func ReadFile(path string, max int64) (data []byte, fi fs.FileInfo, link bool, err error) {
	const flags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC
	fd, err := openRetry(path, flags|unix.O_NOFOLLOW)
	if err == unix.ELOOP { // a symbolic link: follow it, as Open does
		link = true
		fd, err = openRetry(path, flags)
	}
	if err != nil {
		return nil, nil, link, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	st := &statInfo{name: path}
	if err := syscall.Fstat(fd, &st.sys); err != nil {
		return nil, nil, link, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if !st.Mode().IsRegular() {
		return nil, nil, link, &NotRegularError{Path: path, Mode: st.Mode()}
	}
	data, err = readAll(fd, min(st.sys.Size, max)+1, max)
	if err != nil {
		return nil, st, link, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	return data, st, link, nil
}

func openRetry(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// readAll reads fd to its end into a buffer of size bytes to start with,
// or stops after max+1 bytes (the caller refuses the file). A short read
// of a regular file is its end: one read does for a file whose size the
// fstat told.
func readAll(fd int, size, max int64) ([]byte, error) {
	buf := make([]byte, 0, size)
	for int64(len(buf)) <= max {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		want := cap(buf) - len(buf)
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		buf = buf[:len(buf)+n]
		if n == 0 || n < want {
			break
		}
	}
	return buf, nil
}

// statInfo is an fs.FileInfo from a stat(2) buffer, as os.Stat's is.
type statInfo struct {
	name string
	sys  syscall.Stat_t
}

func (s *statInfo) Name() string       { return s.name }
func (s *statInfo) Size() int64        { return s.sys.Size }
func (s *statInfo) ModTime() time.Time { return time.Unix(s.sys.Mtim.Unix()) }
func (s *statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s *statInfo) Sys() any           { return &s.sys }

func (s *statInfo) Mode() fs.FileMode {
	m := fs.FileMode(s.sys.Mode & 0o777)
	switch s.sys.Mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if s.sys.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if s.sys.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if s.sys.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
