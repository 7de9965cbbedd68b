//go:build linux

package trigger

import (
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestParseMountInfo: mount IDs, unescaped mount points and types.
func TestParseMountInfo(t *testing.T) {
	text := "22 27 0:21 / /proc rw,relatime - proc proc rw\n" +
		"36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n" +
		"garbage\n"
	got := parseMountInfo([]byte(text))
	if len(got) != 2 || got[22] != "/proc (proc)" || got[36] != "/mnt/with space (ext3)" {
		t.Errorf("got %v", got)
	}
}

// TestMountsPollPri: mounting a tmpfs marks the mount table with
// POLLPRI and Mounted names it; the unmount marks it too but mounts
// nothing.
func TestMountsPollPri(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a tmpfs")
	}
	m, err := NewMounts()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if readable(t, m.Fd(), unix.POLLPRI, 0) {
		m.Mounted() // a change before the test
	}
	dir := t.TempDir()
	if err := unix.Mount("sockd-test", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	mounted := true
	defer func() {
		if mounted {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	}()
	if !readable(t, m.Fd(), unix.POLLPRI, 5*time.Second) {
		t.Fatal("no POLLPRI after a mount")
	}
	got, err := m.Mounted()
	if err != nil || len(got) != 1 || !strings.HasPrefix(got[0], dir+" (tmpfs)") {
		t.Fatalf("mounted %q, %v; want [%s (tmpfs)]", got, err, dir)
	}
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	mounted = false
	if !readable(t, m.Fd(), unix.POLLPRI, 5*time.Second) {
		t.Fatal("no POLLPRI after an unmount")
	}
	if got, err := m.Mounted(); err != nil || len(got) != 0 {
		t.Errorf("after unmount: mounted %q, %v", got, err)
	}
}
