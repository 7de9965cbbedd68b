package cfgfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadFile: ReadFile returns a regular file's bytes and fstat, says
// whether the path is a symbolic link, refuses what is not regular
// without blocking, and stops one byte past max.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "job.plist")
	body := strings.Repeat("x", 5000) // past any first guess of a buffer
	if err := os.WriteFile(f, []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
	data, fi, link, err := ReadFile(f, 1<<20)
	if err != nil || string(data) != body || link {
		t.Fatalf("regular file: %d bytes, link %v, %v", len(data), link, err)
	}
	if fi.Mode() != 0o640 || fi.Size() != 5000 || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Getuid()) {
		t.Errorf("fstat: mode %v size %d", fi.Mode(), fi.Size())
	}
	ln := filepath.Join(dir, "link.plist")
	if err := os.Symlink(f, ln); err != nil {
		t.Fatal(err)
	}
	if data, _, link, err := ReadFile(ln, 1<<20); err != nil || string(data) != body || !link {
		t.Errorf("symbolic link: %d bytes, link %v, %v", len(data), link, err)
	}
	if data, _, _, err := ReadFile(f, 100); err != nil || len(data) != 101 {
		t.Errorf("over max: %d bytes (want max+1), %v", len(data), err)
	}
	if _, _, _, err := ReadFile(filepath.Join(dir, "none"), 100); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "open "+dir) {
		t.Errorf("missing file: %v", err)
	}
	fifo := filepath.Join(dir, "fifo.plist")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, _, _, err := ReadFile(fifo, 100); done <- err }()
	select {
	case err := <-done:
		var nr *NotRegularError
		if !errors.As(err, &nr) || !strings.Contains(err.Error(), "a FIFO") {
			t.Errorf("FIFO: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("FIFO: ReadFile blocked")
	}
}
