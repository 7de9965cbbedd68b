package listener

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDirCacheTrusted: a batch's cached parent directory is trusted (the
// bound node is identified by its entry, without SIOCUNIXFILE) only when no
// user but root can change its entries, and its descriptor is shared, not
// closed by each socket's open.
func TestDirCacheTrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a directory only root can change")
	}
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		mode    os.FileMode
		trusted bool
	}{
		"private": {0o755, true},
		"sticky":  {os.ModeSticky | 0o777, true},
		"open":    {0o777, false},
	}
	for name, c := range cases {
		dir := filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, c.mode); err != nil {
			t.Fatal(err)
		}
		var dc dirCache
		p1, err := dc.parent(filepath.Join(dir, "a.sock"))
		if err != nil {
			t.Fatal(err)
		}
		p2, err := dc.parent(filepath.Join(dir, "b.sock"))
		if err != nil {
			t.Fatal(err)
		}
		if p1.trusted != c.trusted || p2.trusted != c.trusted {
			t.Errorf("%s (%v): trusted %v/%v, want %v", name, c.mode, p1.trusted, p2.trusted, c.trusted)
		}
		if p1.fd != p2.fd || !p2.borrowed || p2.name != "b.sock" {
			t.Errorf("%s: the second socket did not share the cached directory: fds %d %d borrowed %v", name, p1.fd, p2.fd, p2.borrowed)
		}
		p1.close()
		p2.close()
		if _, err := unix.FcntlInt(uintptr(p1.fd), unix.F_GETFD, 0); err != nil {
			t.Errorf("%s: a socket's close closed the cached directory: %v", name, err)
		}
		dc.close()
		if _, err := unix.FcntlInt(uintptr(p1.fd), unix.F_GETFD, 0); err == nil {
			t.Errorf("%s: the part's end left the cached directory open", name)
		}
	}
}
