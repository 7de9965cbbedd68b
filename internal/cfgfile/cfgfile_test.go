package cfgfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNonRegular: a FIFO without a writer, a directory and a device are
// refused at once with what they are; a regular file is read.
func TestNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "x.plist")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{fifo: "a FIFO", dir: "a directory", "/dev/null": "a character device"}
	for path, kind := range cases {
		done := make(chan error, 1)
		go func() { _, err := Read(path, 1<<20); done <- err }()
		select {
		case err := <-done:
			var nr *NotRegularError
			if !errors.As(err, &nr) || !strings.Contains(err.Error(), kind) {
				t.Errorf("%s: err = %v, want %s", path, err, kind)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Read blocked", path)
		}
	}
	f := filepath.Join(dir, "ok")
	if err := os.WriteFile(f, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(f, 5); err != nil || string(b) != "hello" {
		t.Fatalf("regular file: %q %v", b, err)
	}
	if _, err := Read(f, 4); err == nil {
		t.Fatal("a file over max was read")
	}
}
