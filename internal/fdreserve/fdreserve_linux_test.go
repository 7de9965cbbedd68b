//go:build linux

package fdreserve

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// childEnv names the test a child process runs for real.
const childEnv = "FDRESERVE_TEST_CHILD"

// inChild runs the calling test again in a child process (the test
// binary), under RLIMIT_NOFILE 64, where it may fill the fd table. It
// reports whether this is the child; in the parent the test passes when
// the child does.
func inChild(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		rl := unix.Rlimit{Cur: 64, Max: 64}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			t.Fatal(err)
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	return false
}

// fill opens /dev/null until the table is full and returns the fds.
func fill(t *testing.T) []int {
	t.Helper()
	var fds []int
	for i := 0; i < 1024; i++ {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			if !Shortage(err) {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				for _, fd := range fds {
					unix.Close(fd)
				}
			})
			return fds
		}
		fds = append(fds, fd)
	}
	t.Fatal("the fd table never filled")
	return nil
}

// canOpen opens n fds and closes them again; it reports whether all opened.
func canOpen(n int) bool {
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for i := 0; i < n; i++ {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return false
		}
		fds = append(fds, fd)
	}
	return true
}

// TestReserveAtLimit: a full reserve survives a full table, its release
// frees exactly its fds, and a refill keeps what it could open until it is
// whole again.
func TestReserveAtLimit(t *testing.T) {
	if !inChild(t) {
		return
	}
	r := New(2)
	if !r.Ready() || r.Held() != 2 {
		t.Fatalf("Ready with fds to spare: held %d", r.Held())
	}
	fill(t)
	if !r.Ready() {
		t.Fatal("a full reserve is not Ready once the table is full")
	}
	if !r.Release() || r.Held() != 0 {
		t.Fatal("Release of a full reserve")
	}
	if r.Release() {
		t.Error("Release of an empty reserve reports fds released")
	}
	// The freed fds go to a connection and its start.
	conn, err1 := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	start, err2 := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err1 != nil || err2 != nil || canOpen(1) {
		t.Fatalf("Release did not free exactly the reserve's 2 fds: %v, %v", err1, err2)
	}
	if r.Ready() || r.Held() != 0 {
		t.Fatalf("Ready with the table full: held %d", r.Held())
	}
	unix.Close(conn)
	if r.Ready() || r.Held() != 1 {
		t.Fatalf("Ready with 1 fd free: held %d; want not ready, 1 held", r.Held())
	}
	unix.Close(start)
	if !r.Ready() || r.Held() != 2 {
		t.Fatalf("Ready with a second fd free: held %d", r.Held())
	}
}

// TestHoldAtLimit: a Hold keeps one fd for later; releasing it frees that
// number for the next open, and a second Release closes nothing.
func TestHoldAtLimit(t *testing.T) {
	if !inChild(t) {
		return
	}
	if _, err := Take(); err != nil { // opens the shared /dev/null first
		t.Fatal(err)
	}
	fds := fill(t)
	unix.Close(fds[len(fds)-1])
	h, err := Take()
	if err != nil {
		t.Fatalf("Take with one fd free: %v", err)
	}
	if canOpen(1) {
		t.Fatal("the Hold did not take the last fd")
	}
	h.Release()
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open after Release: %v", err)
	}
	defer unix.Close(fd)
	h.Release()
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		t.Fatalf("a second Release closed fd %d: %v", fd, err)
	}
	var zero Hold
	zero.Release()
}

func TestShortage(t *testing.T) {
	for _, err := range []error{
		syscall.EMFILE, syscall.ENFILE,
		&os.PathError{Op: "open", Err: syscall.EMFILE},
		fmt.Errorf("start: clone: %w", syscall.ENFILE),
	} {
		if !Shortage(err) {
			t.Errorf("Shortage(%v) false", err)
		}
	}
	for _, err := range []error{nil, syscall.EAGAIN, syscall.ENOMEM, os.ErrClosed} {
		if Shortage(err) {
			t.Errorf("Shortage(%v) true", err)
		}
	}
}
