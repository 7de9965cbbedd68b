//go:build linux

package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/fdreserve"
	"github.com/sockd/sockd/job"
)

// fdChildEnv names the test a child process runs for real.
const fdChildEnv = "SOCKD_FD_TEST_CHILD"

// inFdChild runs the calling test again in a child process (the test
// binary), where it may lower RLIMIT_NOFILE and fill the fd table without
// disturbing other tests. It reports whether this is the child; in the
// parent the test passes when the child does.
func inFdChild(t *testing.T) bool {
	t.Helper()
	if os.Getenv(fdChildEnv) == t.Name() {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), fdChildEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
	return false
}

// lowerNofile sets the soft RLIMIT_NOFILE to n.
func lowerNofile(t *testing.T, n uint64) {
	t.Helper()
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = n
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
}

// fillFds opens /dev/null until the fd table is full, then closes leave of
// them; the rest are closed when the test ends (or by the returned func).
func fillFds(t *testing.T, leave int) (closeAll func()) {
	t.Helper()
	var fds []int
	for i := 0; i < 1<<16; i++ {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			if !fdreserve.Shortage(err) {
				t.Fatal(err)
			}
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

// runEchoJob runs a supervisor with one inetd job answering "ok\n"
// (/bin/echo) and waits until it has served a first connection (so the
// reserve is filled). It returns the job's address and the log.
func runEchoJob(t *testing.T) (unix.Sockaddr, *observer.ObservedLogs) {
	t.Helper()
	port := freeTCPPort(t)
	j := inetdJob(t, port, "/bin/echo", "ok")
	core, logs := observer.New(zap.DebugLevel)
	s, err := New(Config{Load: func() ([]*job.Job, job.Diags) { return []*job.Job{j}, nil }, Log: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	sa := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}
	for i := 0; i < 200; i++ {
		fd := rawSocket(t)
		if unix.Connect(fd, sa) == nil && readAll(t, fd, time.Second) == "ok\n" {
			unix.Close(fd)
			// Reaped: its pidfd no longer counts.
			for k := 0; k < 500 && logs.FilterMessage("connection child exited").Len() == 0; k++ {
				time.Sleep(10 * time.Millisecond)
			}
			return sa, logs
		}
		unix.Close(fd)
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the job never answered")
	return nil, nil
}

// rawSocket is a TCP socket made before the fd table is filled: connecting
// it takes no fd.
func rawSocket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// readAll reads fd to EOF, waiting at most d for each read; what came so
// far on a timeout.
func readAll(t *testing.T, fd int, d time.Duration) string {
	t.Helper()
	var got []byte
	buf := make([]byte, 256)
	for i := 0; i < 64; i++ {
		if !readable(fd, d) {
			return string(got)
		}
		n, err := unix.Read(fd, buf)
		if n <= 0 || err != nil {
			return string(got)
		}
		got = append(got, buf[:n]...)
	}
	return string(got)
}

// readable waits at most d for fd to be readable (data, EOF or a reset).
func readable(fd int, d time.Duration) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, int(d/time.Millisecond))
	return err == nil && n == 1
}

// TestAcceptAtFdLimitUsesReserve: with the fd table full, a client is
// still served: accept fails with EMFILE, the reserve is released, and
// the connection and the child's pidfd get its fds.
func TestAcceptAtFdLimitUsesReserve(t *testing.T) {
	if !inFdChild(t) {
		return
	}
	lowerNofile(t, 256)
	sa, _ := runEchoJob(t)
	client := rawSocket(t)
	defer unix.Close(client)
	fillFds(t, 0)
	if err := unix.Connect(client, sa); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, client, 5*time.Second); got != "ok\n" {
		t.Fatalf("client at the fd limit got %q, want ok", got)
	}
}

// TestStartWithoutFdsParksConnection: a start that finds no fd (no
// reserve here, and the accept took the last fd) keeps its connection
// open: it is neither closed nor failed, one line says why, and once fds
// are freed the client is served.
func TestStartWithoutFdsParksConnection(t *testing.T) {
	if !inFdChild(t) {
		return
	}
	startFds = fdreserve.New(0) // this process ends with the test
	lowerNofile(t, 256)
	sa, logs := runEchoJob(t)
	client := rawSocket(t)
	defer unix.Close(client)
	free := fillFds(t, 1) // for the accept; none for the pidfd
	if err := unix.Connect(client, sa); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for logs.FilterMessageSnippet("out of resources").Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	lines := logs.FilterMessageSnippet("out of resources").All()
	if len(lines) == 0 {
		t.Fatal("no line about the start without fds")
	}
	if ctx := lines[0].ContextMap(); ctx["starts_deferred_total"] != uint64(1) || !strings.Contains(fmt.Sprint(ctx["error"]), "too many open files") {
		t.Errorf("line %q %v, want the clone failure and starts_deferred_total 1", lines[0].Message, ctx)
	}
	if readable(client, 300*time.Millisecond) {
		t.Fatalf("the parked connection was closed or answered while no fd was free: %q", readAll(t, client, time.Second))
	}
	free()
	if got := readAll(t, client, 5*time.Second); got != "ok\n" {
		t.Fatalf("parked client got %q once fds were freed, want ok", got)
	}
	if n := logs.FilterMessageSnippet("cannot start child").Len(); n != 0 {
		t.Errorf("%d start failures logged; a start without fds must wait, not fail", n)
	}
}
