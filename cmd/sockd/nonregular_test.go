package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mkfifo makes a FIFO that nobody ever writes to.
func mkfifo(t *testing.T, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckNonRegularFiles: a FIFO, a directory or a device where a
// configuration file is expected (a jobs directory, a file given to check
// or convert, an xinetd include or includedir) is reported at once, names
// what it is, and the other files are still checked.
func TestCheckNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	jobs := filepath.Join(dir, "jobs")
	os.Mkdir(jobs, 0o755)
	mkfifo(t, filepath.Join(jobs, "fifo.plist"))
	os.Mkdir(filepath.Join(jobs, "dir.plist"), 0o755)
	writeFile(t, jobs, "good.plist", jobDoc("org.good", ""), 0o644)

	xd := filepath.Join(dir, "xinetd.d")
	os.Mkdir(xd, 0o755)
	mkfifo(t, filepath.Join(xd, "pipe"))
	os.Mkdir(filepath.Join(xd, "sub"), 0o755)
	fifoInc := mkfifo(t, filepath.Join(dir, "inc-fifo"))
	xconf := writeFile(t, dir, "xinetd.conf", "defaults\n{\n}\ninclude "+fifoInc+"\ninclude /dev/null\nincludedir "+xd+"\n", 0o644)
	inetdFifo := mkfifo(t, filepath.Join(dir, "inetd.conf"))

	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"check", jobs}, []string{"fifo.plist: error: is a FIFO (named pipe), not a regular file",
			"dir.plist: warning: is a directory, not a job file; skipped"}},
		{[]string{"check", inetdFifo}, []string{"inetd.conf: error: is a FIFO (named pipe), not a regular file"}},
		{[]string{"check", xconf}, []string{"inc-fifo is a FIFO (named pipe)", "/dev/null is a character device",
			"pipe is a FIFO (named pipe)", "sub is a directory; skipped"}},
		{[]string{"convert", "--from", "inetd", "-o", t.TempDir(), inetdFifo}, []string{"is a FIFO (named pipe)"}},
		{[]string{"check", "/dev/zero"}, []string{"is a character device"}},
	}
	for _, c := range cases {
		start := time.Now()
		out, errOut, code := sockd(t, c.args...)
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("sockd %q took %v", c.args, took)
		}
		all := out + errOut
		if code == 0 {
			t.Errorf("sockd %q: exit 0\n%s", c.args, all)
		}
		for _, w := range c.want {
			if !strings.Contains(all, w) {
				t.Errorf("sockd %q: output lacks %q:\n%s", c.args, w, all)
			}
		}
	}
}
