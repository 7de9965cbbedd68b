package handover

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestCloseOnExec: every listed fd, in runs and alone, becomes
// close-on-exec; an fd not listed keeps its flag.
func TestCloseOnExec(t *testing.T) {
	var fds []int
	for range 6 {
		fd, err := unix.Dup(1) // dup(2) leaves FD_CLOEXEC clear
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		fds = append(fds, fd)
	}
	listed := []int{fds[3], fds[0], fds[1], fds[5], fds[1], -1} // unsorted, a duplicate, a gap, -1
	CloseOnExec(listed)
	for i, fd := range fds {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := i != 2 && i != 4
		if got := fl&unix.FD_CLOEXEC != 0; got != want {
			t.Errorf("fd %d (#%d): close-on-exec %t, want %t", fd, i, got, want)
		}
	}
}
