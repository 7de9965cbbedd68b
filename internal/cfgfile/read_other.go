//go:build !linux

package cfgfile

import (
	"io"
	"io/fs"
	"os"
)

// ReadFile reads the regular file at path whole (see the Linux version):
// its fstat, whether path itself is a symbolic link, and an error if it is
// not regular; more than max bytes come back as max+1 for the caller to
// refuse.
func ReadFile(path string, max int64) (data []byte, fi fs.FileInfo, link bool, err error) {
	f, fi, err := Open(path)
	if li, lerr := os.Lstat(path); lerr == nil && li.Mode()&os.ModeSymlink != 0 {
		link = true
	}
	if err != nil {
		return nil, nil, link, err
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, max+1))
	return data, fi, link, err
}
