// Package cfgfile opens sockd's configuration files (job files, inetd.conf,
// xinetd files) so that no file can make the caller wait: the open never
// blocks (O_NONBLOCK, so a FIFO without a writer returns at once), and only
// regular files are read; anything else is an error that says what the path
// is.
package cfgfile

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// NotRegularError reports a path that is not a regular file.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file; configuration files must be regular files", e.Path, Kind(e.Mode))
}

// Kind names the type of a file mode in words ("a directory", "a FIFO").
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsRegular():
		return "a regular file"
	}
	return "not a regular file"
}

// Open opens path for reading without blocking and returns it with its
// FileInfo when it is a regular file.
func Open(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	return f, fi, nil
}

// Read returns the content of the regular file at path, failing when it is
// larger than max bytes.
func Read(path string, max int64) ([]byte, error) {
	data, _, _, err := ReadFile(path, max)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return data, nil
}
