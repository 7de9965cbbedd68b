//go:build linux

package proxy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/fdreserve"
)

// Environment of the fd-limit tests' child process.
const (
	fdChildEnv   = "PROXY_FD_TEST_CHILD"   // the test the child runs for real
	fdBackendEnv = "PROXY_FD_TEST_BACKEND" // the echo backend, in the parent
)

// inFdChild runs the calling test again in a child process (the test
// binary) under a soft RLIMIT_NOFILE of 256, where it may fill the fd
// table; the echo backend runs in the parent, which no limit hampers. It
// returns the backend's address in the child, "" in the parent (where the
// test passes when the child does).
func inFdChild(t *testing.T) string {
	t.Helper()
	if os.Getenv(fdChildEnv) == t.Name() {
		var rl unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			t.Fatal(err)
		}
		rl.Cur = 256
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			t.Fatal(err)
		}
		return os.Getenv(fdBackendEnv)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go echo(c)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), fdChildEnv+"="+t.Name(), fdBackendEnv+"="+ln.Addr().String())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	return ""
}

// fillFds opens /dev/null until the fd table is full, then closes leave of
// them; the rest are closed by the returned func (or when the test ends).
func fillFds(t *testing.T, leave int) (closeAll func()) {
	t.Helper()
	var fds []int
	for i := 0; i < 1<<16; i++ {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		fds = append(fds, fd)
	}
	for ; leave > 0 && len(fds) > 0; leave-- {
		unix.Close(fds[len(fds)-1])
		fds = fds[:len(fds)-1]
	}
	done := false
	closeAll = func() {
		if !done {
			for _, fd := range fds {
				unix.Close(fd)
			}
			done = true
		}
	}
	t.Cleanup(closeAll)
	return closeAll
}

// rawClient is a TCP socket made before the fd table is filled: connecting
// it takes no fd. It is connected to addr, sends msg and shuts down its
// write side.
func rawClient(t *testing.T, addr string) (fd int, connect func(msg string)) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	ap, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	return fd, func(msg string) {
		if err := unix.Connect(fd, sa); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(fd, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = unix.Shutdown(fd, unix.SHUT_WR)
	}
}

// readable waits at most d for fd to be readable (data, EOF or a reset).
func readable(fd int, d time.Duration) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, int(d/time.Millisecond))
	return err == nil && n == 1
}

// readAll reads fd to EOF, waiting at most d for each read.
func readAll(fd int, d time.Duration) string {
	var got []byte
	buf := make([]byte, 256)
	for i := 0; i < 64 && readable(fd, d); i++ {
		n, err := unix.Read(fd, buf)
		if n <= 0 || err != nil {
			break
		}
		got = append(got, buf[:n]...)
	}
	return string(got)
}

// startAtLimit runs a proxy to the parent's echo backend and makes one
// request through it (the reserve is filled, the relay started), then waits
// until that connection's fds are closed.
func startAtLimit(t *testing.T, backend string) *harness {
	t.Helper()
	h := startProxy(t, "tcp", Config{Backend: backend}, &fakeBackend{})
	if got, err := request(t, dial(t, "tcp", h.addr), "warm", 5*time.Second); got != "warm" {
		t.Fatalf("first request: %q, %v", got, err)
	}
	// Its fds are closed once it is no longer active.
	if !waitFor(5*time.Second, func() bool { return h.srv.Stats().Active == 0 }) {
		t.Fatal("the first connection is still open")
	}
	return h
}

// TestClientAtFdLimitServed: with the fd table full, a client is still
// served: the accept fails with EMFILE, the reserve is released, and the
// client and its backend connection get its fds.
func TestClientAtFdLimitServed(t *testing.T) {
	backend := inFdChild(t)
	if backend == "" {
		return
	}
	h := startAtLimit(t, backend)
	fd, connect := rawClient(t, h.addr)
	fillFds(t, 0)
	connect("at the limit")
	if got := readAll(fd, 5*time.Second); got != "at the limit" {
		t.Fatalf("client at the fd limit got %q", got)
	}
	if st := h.srv.Stats(); st.Failures != 0 {
		t.Errorf("stats %+v: want no failure", st)
	}
}

// TestDialWithoutFdsWaits: a client whose backend dial finds no fd (no
// reserve here, and the accept took the last fd) stays connected, is
// neither closed nor failed, and is served once fds are freed; the backend
// is not marked unready for it.
func TestDialWithoutFdsWaits(t *testing.T) {
	backend := inFdChild(t)
	if backend == "" {
		return
	}
	connFds = fdreserve.New(0) // this process ends with the test
	h := startAtLimit(t, backend)
	fd, connect := rawClient(t, h.addr)
	free := fillFds(t, 1) // for the accept; none for the dial
	connect("waited")
	if !waitFor(5*time.Second, func() bool { return countLogs(h.logs, "out of file descriptors") > 0 }) {
		t.Fatal("no line about the dial without fds")
	}
	if readable(fd, 300*time.Millisecond) {
		t.Fatalf("the client was closed or answered while no fd was free: %q", readAll(fd, time.Second))
	}
	free()
	if got := readAll(fd, 5*time.Second); got != "waited" {
		t.Fatalf("client got %q once fds were freed", got)
	}
	if st := h.srv.Stats(); st.Failures != 0 || st.BackendStarts != 1 {
		t.Errorf("stats %+v: want no failure and no second readiness episode", st)
	}
}
