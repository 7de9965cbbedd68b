package listener

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestTCP4ListenAccept(t *testing.T) {
	s := mustOpen(t, "t.tcp", spec{group: "Listeners", network: "tcp4", addr: "127.0.0.1:0"})
	if !s.Listening || s.Network != "tcp4" {
		t.Fatalf("socket %v: want a listening tcp4 socket", s)
	}
	ap, err := net.ResolveTCPAddr("tcp4", s.Addr)
	if err != nil || ap.Port == 0 || !ap.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("Addr %q: want 127.0.0.1 with a real port (err %v)", s.Addr, err)
	}
	if got := sockopt(t, s.Fd, unix.SOL_SOCKET, unix.SO_REUSEADDR); got != 1 {
		t.Errorf("SO_REUSEADDR = %d, want 1", got)
	}
	if got := sockopt(t, s.Fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); got != 1 {
		t.Errorf("SO_ACCEPTCONN = %d, want 1", got)
	}
	fl, err := unix.FcntlInt(uintptr(s.Fd), unix.F_GETFD, 0)
	if err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("FD_CLOEXEC not set (flags %#x, err %v)", fl, err)
	}
	if blocking, err := IsBlocking(s.Fd); err != nil || blocking {
		t.Errorf("IsBlocking = %t, %v; want non-blocking", blocking, err)
	}

	c, err := net.Dial("tcp4", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nfd := acceptOne(t, s.Fd)
	defer unix.Close(nfd)
	if _, err := unix.Write(nfd, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("client read %q, %v", buf, err)
	}
}

func TestTCP6V6Only(t *testing.T) {
	if !haveIPv6Loopback() {
		t.Skip("no IPv6 loopback (::1) in this environment")
	}
	s6 := mustOpen(t, "t.v6", spec{group: "L", network: "tcp6", addr: "[::1]:0"})
	if got := sockopt(t, s6.Fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); got != 1 {
		t.Fatalf("IPV6_V6ONLY = %d, want 1", got)
	}
	ap, err := net.ResolveTCPAddr("tcp6", s6.Addr)
	if err != nil || ap.Port == 0 {
		t.Fatalf("Addr %q: %v", s6.Addr, err)
	}
	// The same port on 127.0.0.1 binds too.
	s4 := mustOpen(t, "t.v6", spec{group: "L", network: "tcp4", addr: fmt.Sprintf("127.0.0.1:%d", ap.Port)})
	if s4.Addr != fmt.Sprintf("127.0.0.1:%d", ap.Port) {
		t.Fatalf("v4 Addr %q", s4.Addr)
	}
	for _, addr := range []string{s6.Addr, s4.Addr} {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		c.Close()
	}
	// UDP over IPv6 gets V6ONLY too.
	u6 := mustOpen(t, "t.v6", spec{group: "U", network: "udp6", addr: "[::1]:0"})
	if got := sockopt(t, u6.Fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); got != 1 {
		t.Fatalf("udp6 IPV6_V6ONLY = %d, want 1", got)
	}
}

func TestUDP(t *testing.T) {
	addrs := []spec{{group: "U", network: "udp4", addr: "127.0.0.1:0"}}
	if haveIPv6Loopback() {
		addrs = append(addrs, spec{group: "U", network: "udp6", addr: "[::1]:0"})
	}
	for _, sp := range addrs {
		t.Run(sp.network, func(t *testing.T) {
			s := mustOpen(t, "t.udp", sp)
			if s.Listening {
				t.Errorf("a UDP socket is not Listening")
			}
			if strings.HasSuffix(s.Addr, ":0") {
				t.Fatalf("Addr %q: port 0 not resolved", s.Addr)
			}
			c, err := net.Dial(sp.network, s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			waitReadable(t, s.Fd)
			buf := make([]byte, 16)
			n, from, err := unix.Recvfrom(s.Fd, buf, 0)
			if err != nil || string(buf[:n]) != "ping" {
				t.Fatalf("recvfrom: %q, %v", buf[:n], err)
			}
			if got := sockaddrString(from); got != c.LocalAddr().String() {
				t.Errorf("datagram from %s, want %s", got, c.LocalAddr())
			}
		})
	}
}

func TestNonPassive(t *testing.T) {
	t.Run("tcp4", func(t *testing.T) {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		s := mustOpen(t, "t.client", spec{group: "C", network: "tcp4", addr: l.Addr().String(), active: true})
		if s.Listening {
			t.Error("connected socket reported as Listening")
		}
		srv, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		if srv.RemoteAddr().String() != s.Addr {
			t.Errorf("Addr %q, server sees peer %q", s.Addr, srv.RemoteAddr())
		}
		if _, err := unix.Write(s.Fd, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("server read %q, %v", buf, err)
		}
	})
	t.Run("unix", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "srv.sock")
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		s := mustOpen(t, "t.client", spec{group: "C", network: "unix", addr: path, active: true})
		srv, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		if _, err := unix.Write(s.Fd, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("server read %q, %v", buf, err)
		}
		s.Close()
		if !exists(path) {
			t.Error("closing a client socket removed the server's path")
		}
	})
	t.Run("refused", func(t *testing.T) {
		port := freePort(t)
		_, err := Open("t.client", endpoint("t.client", spec{group: "C", network: "tcp4", addr: fmt.Sprintf("127.0.0.1:%d", port), active: true}))
		if !errors.Is(err, unix.ECONNREFUSED) {
			t.Fatalf("err = %v, want ECONNREFUSED", err)
		}
		if !strings.Contains(err.Error(), "connect: connection refused (nothing listens there") {
			t.Errorf("error text: %v", err)
		}
	})
}

func TestUnixTypes(t *testing.T) {
	for _, tc := range []struct {
		network string
		typ     int
		mode    *os.FileMode
		want    uint32
	}{
		{"unix", unix.SOCK_STREAM, nil, 0o700},
		{"unix", unix.SOCK_STREAM, mode(438), 0o666},
		{"unixgram", unix.SOCK_DGRAM, nil, 0o700},
		{"unixgram", unix.SOCK_DGRAM, mode(0o660), 0o660},
		{"unixpacket", unix.SOCK_SEQPACKET, nil, 0o700},
		{"unixpacket", unix.SOCK_SEQPACKET, mode(438), 0o666},
	} {
		t.Run(fmt.Sprintf("%s-%o", tc.network, tc.want), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.sock")
			s := mustOpen(t, "t.unix", spec{group: "S", network: tc.network, addr: path, mode: tc.mode})
			st := lstat(t, path)
			if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Mode&0o7777 != tc.want {
				t.Fatalf("mode %o, want socket with %o", st.Mode, tc.want)
			}
			if s.Addr != path {
				t.Errorf("Addr %q, want %q", s.Addr, path)
			}
			if got := sockopt(t, s.Fd, unix.SOL_SOCKET, unix.SO_TYPE); got != tc.typ {
				t.Errorf("SO_TYPE = %d, want %d", got, tc.typ)
			}
			if want := tc.typ != unix.SOCK_DGRAM; s.Listening != want {
				t.Errorf("Listening = %t, want %t", s.Listening, want)
			}
			// getsockname reports the real path.
			sa, err := unix.Getsockname(s.Fd)
			if err != nil || sockaddrString(sa) != path {
				t.Errorf("getsockname = %v, %v; want %s", sa, err, path)
			}
			c, err := net.Dial(tc.network, path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			fd := s.Fd
			if s.Listening {
				fd = acceptOne(t, s.Fd)
				defer unix.Close(fd)
			}
			waitReadable(t, fd)
			buf := make([]byte, 4)
			if n, err := unix.Read(fd, buf); err != nil || string(buf[:n]) != "x" {
				t.Fatalf("read %q, %v", buf[:n], err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if exists(path) {
				t.Error("Close left the created path behind")
			}
		})
	}
}

// TestUnixUmask checks that the node is 0700 although the process umask is
// looser, and that the process umask is left alone, for both bind strategies.
func TestUnixUmask(t *testing.T) {
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprintf("processUmask=%t", force), func(t *testing.T) {
			forceProcessUmask = force
			defer func() { forceProcessUmask = false }()
			dir := t.TempDir()
			for i := range 20 {
				path := filepath.Join(dir, fmt.Sprintf("s%d.sock", i))
				mustOpen(t, "t.umask", spec{group: "S", network: "unix", addr: path})
				if st := lstat(t, path); st.Mode&0o777 != 0o700 {
					t.Fatalf("%s: mode %o, want 0700", path, st.Mode&0o777)
				}
			}
			if !force && binderReqs == nil {
				t.Log("unshare(CLONE_FS) refused here; the process-umask fallback was used")
			}
			got := unix.Umask(0o022)
			if got != 0o022 {
				t.Fatalf("process umask is %o after Open, want 022", got)
			}
			// A file created now gets the process umask, not 077.
			f := filepath.Join(dir, "plain")
			if err := os.WriteFile(f, nil, 0o666); err != nil {
				t.Fatal(err)
			}
			if st := lstat(t, f); st.Mode&0o777 != 0o644 {
				t.Fatalf("plain file mode %o, want 0644", st.Mode&0o777)
			}
		})
	}
}

func TestUnixOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown to another uid")
	}
	path := filepath.Join(t.TempDir(), "owned.sock")
	mustOpen(t, "t.owner", spec{group: "S", network: "unix", addr: path, mode: mode(0o660), owner: intp(65534), grp: intp(65534)})
	st := lstat(t, path)
	if st.Uid != 65534 || st.Gid != 65534 || st.Mode&0o777 != 0o660 {
		t.Fatalf("owner %d:%d mode %o, want 65534:65534 0660", st.Uid, st.Gid, st.Mode&0o777)
	}
	path2 := filepath.Join(t.TempDir(), "group.sock")
	mustOpen(t, "t.owner", spec{group: "S", network: "unix", addr: path2, grp: intp(65534)})
	st = lstat(t, path2)
	if st.Uid != 0 || st.Gid != 65534 || st.Mode&0o777 != 0o700 {
		t.Fatalf("owner %d:%d mode %o, want 0:65534 0700", st.Uid, st.Gid, st.Mode&0o777)
	}
}

func TestUnixStaleRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stale.sock")
	defer unix.Umask(unix.Umask(0o022))
	deadSocket(t, path) // mode 0755 under umask 022
	if st := lstat(t, path); st.Mode&0o777 != 0o755 {
		t.Fatalf("dead socket mode %o, want 0755", st.Mode&0o777)
	}
	mustOpen(t, "t.stale", spec{group: "S", network: "unix", addr: path})
	// Inode numbers are reused at once, so tell the nodes apart by mode and
	// by a live connection.
	if st := lstat(t, path); st.Mode&0o777 != 0o700 {
		t.Fatalf("mode %o, want 0700: the dead socket node is still there", st.Mode&0o777)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial new socket: %v", err)
	}
	c.Close()
}

func TestUnixLiveRefused(t *testing.T) {
	for _, network := range []string{"unix", "unixgram", "unixpacket"} {
		t.Run(network, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "live.sock")
			var closer io.Closer
			var err error
			if network == "unixgram" {
				closer, err = net.ListenPacket(network, path)
			} else {
				closer, err = net.Listen(network, path)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer closer.Close()
			before := lstat(t, path)
			// Whatever our own type, a live socket of any type is refused.
			for _, mine := range []string{"unix", "unixgram", "unixpacket"} {
				_, err = Open("t.live", endpoint("t.live", spec{group: "S", network: mine, addr: path}))
				if !errors.Is(err, unix.EADDRINUSE) || !strings.Contains(err.Error(), "in use by another process") {
					t.Fatalf("%s over live %s: err = %v, want EADDRINUSE ... in use by another process", mine, network, err)
				}
			}
			if after := lstat(t, path); after.Ino != before.Ino {
				t.Fatal("the live socket's node was replaced")
			}
			if network != "unixgram" {
				c, err := net.Dial(network, path)
				if err != nil {
					t.Fatalf("live socket no longer reachable: %v", err)
				}
				c.Close()
			}
		})
	}
}

func TestUnixNotSocketUntouched(t *testing.T) {
	dir := t.TempDir()
	content := []byte("precious data\x00\xff\n")
	reg := filepath.Join(dir, "regular")
	if err := os.WriteFile(reg, content, 0o640); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	deadTarget := filepath.Join(dir, "dead.sock")
	deadSocket(t, deadTarget)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(deadTarget, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, kind string }{
		{reg, "a regular file"},
		{sub, "a directory"},
		{link, "a symbolic link"},
		{dangling, "a symbolic link"},
		{fifo, "a FIFO"},
	} {
		before := lstat(t, tc.path)
		_, err := Open("t.file", endpoint("t.file", spec{group: "S", network: "unix", addr: tc.path}))
		if !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), tc.kind+" is in the way") {
			t.Errorf("%s: err = %v, want EEXIST naming %s", tc.path, err, tc.kind)
		}
		after := lstat(t, tc.path)
		if after.Ino != before.Ino || after.Mode != before.Mode || after.Mtim != before.Mtim {
			t.Errorf("%s was modified", tc.path)
		}
	}
	if got, err := os.ReadFile(reg); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("regular file content changed: %q, %v", got, err)
	}
	if st := lstat(t, deadTarget); st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Fatal("the symlink's target was touched")
	}
}

func TestUnixMissingParent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	path := filepath.Join(dir, "s.sock")
	_, err := Open("org.example.unix", endpoint("org.example.unix", spec{group: "Listeners", network: "unix", addr: path}))
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("err = %v, want ENOENT", err)
	}
	want := fmt.Sprintf("job org.example.unix: socket Listeners (Sockets.Listeners[0]) %s: bind: no such file or directory "+
		"(parent directory %s does not exist; create it first, or set SockdOptions.DirectoryMode to have sockd create it)", path, dir)
	if err.Error() != want {
		t.Fatalf("error text\n got: %s\nwant: %s", err, want)
	}
	if exists(dir) {
		t.Fatal("the parent directory was created")
	}
}

func TestCloseRemovesOnlyOwnInode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	s, err := Open("t.own", endpoint("t.own", spec{group: "S", network: "unix", addr: path}))
	if err != nil {
		t.Fatal(err)
	}
	// Someone replaces the node behind sockd's back.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "theirs" {
		t.Fatalf("Close touched a node sockd did not create: %q, %v", got, err)
	}
	if fdOpen(s.Fd) {
		t.Fatal("fd still open after Close")
	}
}

func TestAddrInUse(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	_, err = Open("org.example.web", endpoint("org.example.web", spec{group: "Listeners", network: "tcp4", addr: addr}))
	if !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("err = %v, want EADDRINUSE", err)
	}
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Op != "bind" || oe.Label != "org.example.web" {
		t.Fatalf("err = %#v, want *OpenError for bind", err)
	}
	want := fmt.Sprintf("job org.example.web: socket Listeners (Sockets.Listeners[0]) %s: bind: address already in use "+
		"(another process or job listens there; `ss -ltnp 'sport = :%d'` shows it)", addr, port)
	if err.Error() != want {
		t.Fatalf("error text\n got: %s\nwant: %s", err, want)
	}
}

// TestPrivilegedPort runs Open for port 80 as an unprivileged user: the test
// binary itself, re-executed as uid 65534 when the test runs as root.
func TestPrivilegedPort(t *testing.T) {
	start := unprivilegedPortStart()
	if start <= 80 {
		t.Skipf("net.ipv4.ip_unprivileged_port_start is %d: port 80 is not privileged here", start)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	if os.Geteuid() == 0 {
		// The child must be able to execute a copy of the binary.
		dir, err := os.MkdirTemp("", "listener-helper-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		copyExe := filepath.Join(dir, "listener.test")
		if err := os.WriteFile(copyExe, data, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(copyExe)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	cmd.Env = append(os.Environ(), helperEnv+"=open", "HELPER_LABEL=org.example.web", "HELPER_GROUP=Listeners",
		"HELPER_KEY=Sockets.Listeners[0]", "HELPER_NETWORK=tcp4", "HELPER_ADDRESS=127.0.0.1:80")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if strings.HasPrefix(string(out), "uid=0 ") {
		t.Skip("the helper still ran as root")
	}
	want := fmt.Sprintf("eacces=true err=job org.example.web: socket Listeners (Sockets.Listeners[0]) 127.0.0.1:80: bind: permission denied "+
		"(ports below %d need root or CAP_NET_BIND_SERVICE; use a port >= %d for a per-user job)\n", start, start)
	if !strings.HasSuffix(string(out), want) {
		t.Fatalf("helper output\n got: %s\nwant suffix: %s", out, want)
	}
}

func TestMulticast(t *testing.T) {
	const group = "239.255.42.99"
	s, err := Open("t.mcast", endpoint("t.mcast", spec{group: "M", network: "udp4", addr: "127.0.0.1:0", mcast: group}))
	if err != nil {
		if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOBUFS) {
			t.Skipf("no multicast on lo in this sandbox: %v", err)
		}
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if got := sockopt(t, s.Fd, unix.SOL_SOCKET, unix.SO_REUSEPORT); got != 1 {
		t.Errorf("SO_REUSEPORT = %d, want 1", got)
	}
	if got := sockopt(t, s.Fd, unix.SOL_SOCKET, unix.SO_REUSEADDR); got != 0 {
		t.Errorf("SO_REUSEADDR = %d, want 0 with a multicast group", got)
	}
	// The kernel lists the membership on lo (group in host-order hex).
	igmp, err := os.ReadFile("/proc/net/igmp")
	if err != nil {
		t.Skipf("cannot read /proc/net/igmp to check the membership: %v", err)
	}
	if !igmpHas(string(igmp), "lo", 0xEFFF2A63) {
		t.Errorf("group %s not joined on lo:\n%s", group, igmp)
	}

	// Wrong uses are errors before any socket is made.
	for _, sp := range []spec{
		{group: "M", network: "tcp4", addr: "127.0.0.1:0", mcast: group},
		{group: "M", network: "udp4", addr: "127.0.0.1:0", mcast: "127.0.0.2"},
		{group: "M", network: "udp4", addr: "127.0.0.1:0", mcast: "ff02::1"},
	} {
		if _, err := Open("t.mcast", endpoint("t.mcast", sp)); err == nil || !strings.Contains(err.Error(), "join multicast group") {
			t.Errorf("%+v: err = %v, want a multicast error", sp, err)
		}
	}
}

// igmpHas reports whether /proc/net/igmp lists group (as the kernel prints
// it: the address as a little-endian hex word) on interface dev.
func igmpHas(igmp, dev string, group uint32) bool {
	want := fmt.Sprintf("%08X", group>>24|group>>8&0xff00|group<<8&0xff0000|group<<24)
	in := false
	for _, line := range strings.Split(igmp, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if _, err := strconv.Atoi(f[0]); err == nil && len(f) >= 2 {
			in = f[1] == dev
			continue
		}
		if in && f[0] == want {
			return true
		}
	}
	return false
}

func TestSetBlocking(t *testing.T) {
	s := mustOpen(t, "t.block", spec{group: "S", network: "tcp4", addr: "127.0.0.1:0"})
	if err := SetBlocking(s.Fd, true); err != nil {
		t.Fatal(err)
	}
	if b, err := IsBlocking(s.Fd); err != nil || !b {
		t.Fatalf("IsBlocking = %t, %v after SetBlocking(true)", b, err)
	}
	if err := SetBlocking(s.Fd, false); err != nil {
		t.Fatal(err)
	}
	if b, err := IsBlocking(s.Fd); err != nil || b {
		t.Fatalf("IsBlocking = %t, %v after SetBlocking(false)", b, err)
	}
	if err := SetBlocking(s.Fd, false); err != nil { // already: nothing to change
		t.Fatal(err)
	}
	if b, err := IsBlocking(s.Fd); err != nil || b {
		t.Fatalf("IsBlocking = %t, %v after SetBlocking(false) twice", b, err)
	}
	if err := SetBlocking(-1, false); !errors.Is(err, unix.EBADF) {
		t.Fatalf("SetBlocking(-1) err = %v, want EBADF", err)
	}
	if _, err := IsBlocking(-1); !errors.Is(err, unix.EBADF) {
		t.Fatalf("IsBlocking(-1) err = %v, want EBADF", err)
	}
}

func TestBadEndpoints(t *testing.T) {
	for _, sp := range []spec{
		{group: "B", network: "sctp", addr: "127.0.0.1:0"},
		{group: "B", network: "tcp4", addr: "[::1]:0"},
		{group: "B", network: "tcp6", addr: "127.0.0.1:0"},
		{group: "B", network: "tcp4", addr: "localhost:80"},
		{group: "B", network: "unix", addr: "/" + strings.Repeat("x", 200)},
	} {
		_, err := Open("t.bad", endpoint("t.bad", sp))
		var oe *OpenError
		if !errors.As(err, &oe) || !strings.HasPrefix(err.Error(), "job t.bad: socket B (Sockets.B[0]) ") {
			t.Errorf("%+v: err = %v, want an *OpenError naming the socket", sp, err)
		}
	}
}

// TestUnixUmaskNotShared creates files in another goroutine while Unix
// sockets are being bound: with the per-thread umask none of them may get
// the 077 umask.
func TestUnixUmaskNotShared(t *testing.T) {
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	dir := t.TempDir()
	// Open once so the bind thread has started (or is known to be unavailable).
	mustOpen(t, "t.umask", spec{group: "S", network: "unix", addr: filepath.Join(dir, "probe.sock")})
	if binderReqs == nil {
		t.Skip("unshare(CLONE_FS) is refused here; the process-umask fallback is in use")
	}
	stop := make(chan struct{})
	bad := make(chan string, 1)
	var created atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			f := filepath.Join(dir, fmt.Sprintf("f%d", n%8))
			os.Remove(f)
			if err := os.WriteFile(f, nil, 0o666); err != nil {
				bad <- err.Error()
				return
			}
			var st unix.Stat_t
			if err := unix.Stat(f, &st); err == nil && st.Mode&0o777 != 0o644 {
				bad <- fmt.Sprintf("%s created with mode %o while sockets were bound", f, st.Mode&0o777)
				return
			}
			created.Add(1)
		}
	}()
	// At least 200 binds, and on until the other goroutine made 100 files
	// (bounded: 10s, 100000 binds).
	deadline := time.Now().Add(10 * time.Second)
	binds := 0
	for ; binds < 100000 && (binds < 200 || created.Load() < 100) && time.Now().Before(deadline); binds++ {
		s := mustOpen(t, "t.umask", spec{group: "S", network: "unix", addr: filepath.Join(dir, fmt.Sprintf("s%d.sock", binds%16))})
		s.Close()
	}
	close(stop)
	<-done
	select {
	case msg := <-bad:
		t.Fatal(msg)
	default:
	}
	if created.Load() == 0 {
		t.Fatal("no file was created concurrently with the binds; nothing was checked")
	}
	t.Logf("%d files created concurrently with %d binds, all 0644", created.Load(), binds)
}

// TestUnixAbstract: "@name" binds in the abstract namespace (no file), is
// connectable by that name, and the name is gone after Close.
func TestUnixAbstract(t *testing.T) {
	name := fmt.Sprintf("@sockd-listener-test-%d", os.Getpid())
	for _, network := range []string{"unix", "unixpacket"} {
		s := mustOpen(t, "t.abstract", spec{group: "S", network: network, addr: name})
		if s.Addr != name || !s.Listening || s.created != nil {
			t.Fatalf("%s: addr %q listening %t created %v", network, s.Addr, s.Listening, s.created)
		}
		c, err := net.Dial(network, name)
		if err != nil {
			t.Fatalf("%s: dial %s: %v", network, name, err)
		}
		c.Close()
		if exists(name) {
			t.Fatalf("a file %s was created", name)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if c, err := net.Dial(network, name); err == nil {
			c.Close()
			t.Fatalf("%s: the abstract name still answers after Close", network)
		}
	}
}
