package listener

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/freeport"
	"github.com/sockd/sockd/job"
)

// helperEnv selects a helper mode when the test binary is re-executed as a
// child process (the os/exec helper-process pattern).
const helperEnv = "SOCKD_LISTENER_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "open":
		// Open the endpoint given in the environment and print the error.
		ep := &job.Endpoint{
			Group:   os.Getenv("HELPER_GROUP"),
			Key:     os.Getenv("HELPER_KEY"),
			Network: os.Getenv("HELPER_NETWORK"),
			Address: os.Getenv("HELPER_ADDRESS"),
			Passive: true,
		}
		s, err := Open(os.Getenv("HELPER_LABEL"), ep)
		if err != nil {
			fmt.Printf("uid=%d eacces=%t err=%v\n", os.Getuid(), errors.Is(err, unix.EACCES), err)
			os.Exit(0)
		}
		s.Close()
		fmt.Printf("uid=%d opened %s\n", os.Getuid(), s.Addr)
		os.Exit(0)
	case "fsops":
		// Run the file operations in HELPER_OPS as the (unprivileged) user
		// this process runs as: the attacker of the race tests.
		if err := runFSOps(os.Getenv("HELPER_OPS")); err != nil {
			fmt.Fprintf(os.Stderr, "uid %d: %v\n", os.Getuid(), err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// spec describes one socket dictionary with a single endpoint.
type spec struct {
	group   string
	network string
	addr    string
	active  bool // SockPassive=false
	mode    *os.FileMode
	owner   *int
	grp     *int
	mcast   string
}

// newJob builds a job by hand (not through the loader) with one socket
// dictionary per spec, grouped by spec.group in the given order.
func newJob(label string, specs ...spec) *job.Job {
	j := &job.Job{Label: label, File: label + ".plist", Source: "test"}
	for _, sp := range specs {
		gi := -1
		for i := range j.Sockets {
			if j.Sockets[i].Name == sp.group {
				gi = i
			}
		}
		if gi < 0 {
			j.Sockets = append(j.Sockets, job.SocketGroup{Name: sp.group})
			gi = len(j.Sockets) - 1
		}
		g := &j.Sockets[gi]
		key := fmt.Sprintf("Sockets.%s[%d]", sp.group, len(g.Sockets))
		s := job.Socket{
			Key:            key,
			Passive:        !sp.active,
			PathMode:       sp.mode,
			PathOwner:      sp.owner,
			PathGroup:      sp.grp,
			MulticastGroup: sp.mcast,
		}
		switch {
		case strings.HasPrefix(sp.network, "unix"):
			s.Family, s.PathName = job.Unix, sp.addr
		case strings.HasSuffix(sp.network, "6"):
			s.Family = job.IPv6
		default:
			s.Family = job.IPv4
		}
		if strings.HasPrefix(sp.network, "udp") || sp.network == "unixgram" {
			s.Type = job.Dgram
		} else if sp.network == "unixpacket" {
			s.Type = job.SeqPacket
		}
		s.Endpoints = []job.Endpoint{{
			Group: sp.group, Key: key, Network: sp.network, Address: sp.addr, Passive: !sp.active,
		}}
		g.Sockets = append(g.Sockets, s)
	}
	// Point every endpoint back at its dictionary, now that slices are final.
	for gi := range j.Sockets {
		for si := range j.Sockets[gi].Sockets {
			s := &j.Sockets[gi].Sockets[si]
			for ei := range s.Endpoints {
				s.Endpoints[ei].Socket = s
			}
		}
	}
	return j
}

// endpoint returns the only endpoint of a one-socket job.
func endpoint(label string, sp spec) *job.Endpoint {
	return newJob(label, sp).Endpoints()[0]
}

func mode(m os.FileMode) *os.FileMode { return &m }
func intp(n int) *int                 { return &n }

func mustOpen(t *testing.T, label string, sp spec) *Socket {
	t.Helper()
	s, err := Open(label, endpoint(label, sp))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// acceptOne waits (bounded) for a connection on a listening fd.
func acceptOne(t *testing.T, fd int) int {
	t.Helper()
	waitReadable(t, fd)
	nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	return nfd
}

func waitReadable(t *testing.T, fd int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		if n > 0 {
			return
		}
	}
	t.Fatalf("fd %d not readable within 5s", fd)
}

func sockopt(t *testing.T, fd, level, opt int) int {
	t.Helper()
	v, err := unix.GetsockoptInt(fd, level, opt)
	if err != nil {
		t.Fatalf("getsockopt(%d, %d): %v", level, opt, err)
	}
	return v
}

func lstat(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatalf("lstat: %v", err)
	}
	return st
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

func countFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	return freeport.Port(t, "tcp")
}

func haveIPv6Loopback() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// deadSocket leaves a Unix socket node at path with no socket bound to it.
func deadSocket(t *testing.T, path string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
}
