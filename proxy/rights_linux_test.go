package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/unixdial"
)

// The tests in this file play a local user, or an unrelated process,
// against root sockd's proxy: what they may reach and whom sockd believes.

// testUser is an unprivileged user created for one test and a copy of the
// test binary that user may run.
type testUser struct {
	name     string
	uid, gid int
	exe      string
	base     string // a directory every user may traverse (0755)
}

// newTestUser creates a system user (removed at cleanup); it skips the test
// unless it runs as root with useradd.
func newTestUser(t *testing.T) *testUser {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: sockd as root against an unprivileged user")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("needs useradd to create the unprivileged user")
	}
	name := fmt.Sprintf("sockdpr%d", os.Getpid()%100000)
	if out, err := exec.Command("useradd", "-r", "-M", "-U", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	id := func(flag string) int {
		out, err := exec.Command("id", flag, name).Output()
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return n
	}
	u := &testUser{name: name, uid: id("-u"), gid: id("-g")}
	base, err := os.MkdirTemp("", "sockd-proxy-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	u.base = base
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	u.exe = filepath.Join(base, "proxy.test")
	if err := os.WriteFile(u.exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u *testUser) cred() *syscall.Credential {
	return &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}
}

// home creates a directory owned by the user, mode 0755.
func (u *testUser) home(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(u.base, "home")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, u.uid, u.gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// notifySendAs sends msg to the notify socket as the user, from a process
// that is not the backend's; it returns the helper's error (a refused send
// is one way of being ignored).
func (u *testUser) notifySend(path, msg string) error {
	cmd := exec.Command(u.exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "GO_WANT_HELPER_PROCESS=1", "HELPER_MODE=notify-send", "NOTIFY_SOCKET="+path, "HELPER_MSG="+msg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// rootOnlySocket serves "secret\n" on a socket in a 0700 directory of
// root's and counts the connections it accepted.
func rootOnlySocket(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secret")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "priv.sock")
	n := new(atomic.Int32)
	serveUnixWith(t, path, func(c net.Conn) {
		n.Add(1)
		io.WriteString(c, "secret\n")
	})
	return path, n
}

// serveUnixWith listens on path and runs h for each connection (then
// closes it).
func serveUnixWith(t *testing.T, path string, h func(net.Conn)) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h(c)
			c.Close()
		}
	}()
}

// TestUnixBackendLinkOfAnotherUser (root): a user who owns a directory on
// the Backend path links the path to a root-only socket. sockd, connecting
// as root for a job without a user, does not follow it: the client gets
// nothing and the root-only socket sees no connection.
func TestUnixBackendLinkOfAnotherUser(t *testing.T) {
	u := newTestUser(t)
	priv, reached := rootOnlySocket(t)
	link := filepath.Join(u.home(t), "backend.sock")
	if err := os.Symlink(priv, link); err != nil {
		t.Fatal(err)
	}
	os.Lchown(link, u.uid, u.gid)
	be := &fakeBackend{} // external
	h := startProxy(t, "tcp", Config{Backend: link, ReadyTimeout: time.Second}, be)
	c := dial(t, "tcp", h.addr)
	defer c.Close()
	if got, _ := request(t, c, "", 5*time.Second); got != "" {
		t.Errorf("through %s (a link of uid %d's to %s): got %q, want nothing", link, u.uid, priv, got)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the root-only socket accepted %d connections from the proxy", n)
	}
	why := fmt.Sprintf("%s is owned by uid %d", filepath.Dir(link), u.uid)
	if !waitFor(2*time.Second, func() bool {
		for _, e := range h.logs.All() {
			if strings.HasPrefix(e.Message, "backend not ready") && strings.Contains(fmt.Sprint(e.ContextMap()["reason"]), why) {
				return true
			}
		}
		return false
	}) {
		t.Errorf("no 'backend not ready' line with the reason %q", why)
	}
}

// TestNotifyOnlyFromBackend (root): READY=1 from a process that is not the
// backend (this test process, root, the backend's parent; and a process of
// another user) does not make the backend ready; the backend's own READY=1,
// after a delay, does, and the refusal is logged once.
func TestNotifyOnlyFromBackend(t *testing.T) {
	u := newTestUser(t)
	be := &helperBackend{t: t, addr: freeAddr(t, "tcp"), delay: 1500 * time.Millisecond}
	h := startProxy(t, "tcp", Config{Backend: be.addr, Notify: true, ReadyTimeout: 10 * time.Second}, be)
	be.srv.Store(h.srv)
	defer be.Stop()

	reply := make(chan string, 1)
	go func() {
		c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
		if err != nil {
			reply <- err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "ping\n")
		b, _ := io.ReadAll(c)
		reply <- string(b)
	}()
	if !waitFor(5*time.Second, func() bool { return be.MainPID() != 0 }) {
		t.Fatal("backend not started")
	}
	path := h.srv.NotifySocket()
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("READY=1\n"))
	c.Close()
	err = u.notifySend(path, "READY=1")
	time.Sleep(300 * time.Millisecond)
	if h.srv.Stats().Ready {
		t.Fatalf("ready after READY=1 from pid %d (not the backend %d) and from uid %d (send error: %v)", os.Getpid(), be.MainPID(), u.uid, err)
	}
	got := <-reply
	if !strings.HasPrefix(got, "ready=true ") {
		t.Fatalf("client got %q: want ready=true (forwarded after the backend's own READY=1)", got)
	}
	if n := countLogs(h.logs, "notify datagram refused"); n != 1 {
		t.Errorf("%d 'notify datagram refused' lines, want 1 (rate-limited)", n)
	}
}

// zoneGate denies a prefix the way the supervisor's SockdLimits.Deny does
// (netip.Prefix.Contains) and records what it was asked.
type zoneGate struct {
	deny netip.Prefix
	mu   sync.Mutex
	seen []netip.Addr
	held map[netip.Addr]int
}

func (g *zoneGate) Admit(src netip.Addr, flow bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seen = append(g.seen, src)
	if g.deny.Contains(src) {
		return false
	}
	g.held[src]++
	return true
}

func (g *zoneGate) Done(src netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held[src]--
}

func (g *zoneGate) Count(src netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held[src]++
}

func (g *zoneGate) Pace() time.Duration { return 0 }

// TestGateSeesLinkLocalWithoutZone (root): a client on a link-local IPv6
// address (fe80::1%lo, in a network namespace of the test's own) is denied
// by a Deny of fe80::/10, over TCP and UDP; the Gate is given addresses
// without a zone and IPv4 ones unmapped.
func TestGateSeesLinkLocalWithoutZone(t *testing.T) {
	if os.Getenv("PROXY_TEST_NETNS") == "1" {
		linkLocalInNetns(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the link-local client runs in a network namespace of its own")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2) to set up the namespace's loopback")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGateSeesLinkLocalWithoutZone$", "-test.count=1", "-test.v", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), "PROXY_TEST_NETNS=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a new network namespace: %v\n%s", err, out)
	}
}

func linkLocalInNetns(t *testing.T) {
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"-6", "addr", "add", "fe80::1/64", "dev", "lo", "nodad"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	ll := &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "lo"}
	g := &zoneGate{deny: netip.MustParsePrefix("fe80::/10"), held: map[netip.Addr]int{}}
	ln, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "[::]:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpBe := &fakeBackend{Network: "tcp", Addr: freeAddr(t, "tcp"), Handle: echo}
	udpBe := &fakeBackend{Addr: freeAddr(t, "udp"), UDP: true}
	for _, x := range []struct {
		name string
		cfg  Config
		be   *fakeBackend
		lns  []net.Listener
		pcs  []net.PacketConn
	}{
		{"tcp", Config{Backend: tcpBe.Addr, Gate: g}, tcpBe, []net.Listener{ln}, nil},
		{"udp", Config{Backend: udpBe.Addr, Gate: g}, udpBe, nil, []net.PacketConn{pc}},
	} {
		srv, err := New(x.cfg, x.lns, x.pcs, x.be, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { srv.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
	}
	port := ln.Addr().(*net.TCPAddr).Port
	d := net.Dialer{LocalAddr: ll, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp6", fmt.Sprintf("[fe80::1%%lo]:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := request(t, c, "hello", 5*time.Second); got != "" {
		t.Errorf("TCP client %v: echoed %q, want refused by Deny fe80::/10", c.LocalAddr(), got)
	}
	c.Close()
	uc, err := net.DialUDP("udp6", &net.UDPAddr{IP: ll.IP, Zone: "lo"}, &net.UDPAddr{IP: ll.IP, Zone: "lo", Port: pc.LocalAddr().(*net.UDPAddr).Port})
	if err != nil {
		t.Fatal(err)
	}
	uc.Write([]byte("hello"))
	uc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := uc.Read(make([]byte, 64)); err == nil {
		t.Errorf("UDP client %v: got a %d-byte reply, want its datagram dropped by Deny fe80::/10", uc.LocalAddr(), n)
	}
	uc.Close()
	// An IPv4 client of the dual-stack listener reaches the Gate unmapped.
	c4 := dial(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if got, _ := request(t, c4, "v4", 5*time.Second); got != "v4" {
		t.Errorf("IPv4 client: %q, want its echo", got)
	}
	c4.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	want := []string{"fe80::1", "fe80::1", "127.0.0.1"}
	if len(g.seen) != len(want) {
		t.Fatalf("the Gate was asked about %v, want %v", g.seen, want)
	}
	for i, a := range g.seen {
		if a.String() != want[i] {
			t.Errorf("Gate asked about %s, want %s (no zone, IPv4 unmapped)", a, want[i])
		}
	}
}

func (u *testUser) backendUser() *unixdial.Cred {
	return &unixdial.Cred{UID: uint32(u.uid), GID: uint32(u.gid), Groups: []uint32{uint32(u.gid)}}
}

// TestUnixBackendAsUser (root): with a BackendUser, sockd connects with
// that user's rights: the user's link to a root-only socket leads nowhere,
// the user's own socket is served and sees the user as its peer.
func TestUnixBackendAsUser(t *testing.T) {
	u := newTestUser(t)
	priv, reached := rootOnlySocket(t)
	home := u.home(t)
	link := filepath.Join(home, "backend.sock")
	if err := os.Symlink(priv, link); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(home, "own.sock")
	serveUnixWith(t, own, func(c net.Conn) {
		rc, _ := c.(*net.UnixConn).SyscallConn()
		rc.Control(func(fd uintptr) {
			if cr, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
				fmt.Fprintf(c, "peer=%d", cr.Uid)
			}
		})
	})
	os.Chown(own, u.uid, u.gid)
	os.Chmod(own, 0o600)
	for _, x := range []struct{ backend, want string }{{link, ""}, {own, fmt.Sprintf("peer=%d", u.uid)}} {
		h := startProxy(t, "tcp", Config{Backend: x.backend, ReadyTimeout: time.Second, BackendUser: u.backendUser()}, &fakeBackend{})
		c := dial(t, "tcp", h.addr)
		if got, _ := request(t, c, "", 5*time.Second); got != x.want {
			t.Errorf("%s as uid %d: got %q, want %q", x.backend, u.uid, got, x.want)
		}
		c.Close()
		h.stop()
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the root-only socket accepted %d connections from the proxy", n)
	}
}

// TestNotifyFromBackendUser (root): a backend running as another user
// gets a NOTIFY_SOCKET of its own user's (0600, in a 0710 directory of its
// group), is made ready by READY=1 from its child, and another process of
// the same user is refused.
func TestNotifyFromBackendUser(t *testing.T) {
	u := newTestUser(t)
	be := &helperBackend{t: t, addr: freeAddr(t, "tcp"), delay: 1500 * time.Millisecond, exe: u.exe, cred: u.cred(),
		env: []string{"HELPER_NOTIFY_VIA_CHILD=1"}}
	h := startProxy(t, "tcp", Config{Backend: be.addr, Notify: true, ReadyTimeout: 10 * time.Second, BackendUser: u.backendUser()}, be)
	be.srv.Store(h.srv)
	defer be.Stop()

	path := h.srv.NotifySocket()
	var node, dir unix.Stat_t
	if err := unix.Stat(path, &node); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Dir(path), &dir); err != nil {
		t.Fatal(err)
	}
	if node.Mode&0o7777 != 0o600 || node.Uid != uint32(u.uid) || node.Gid != uint32(u.gid) {
		t.Errorf("notify socket mode %#o owner %d:%d, want 0600 %d:%d", node.Mode&0o7777, node.Uid, node.Gid, u.uid, u.gid)
	}
	if dir.Mode&0o7777 != 0o710 || dir.Uid != 0 || dir.Gid != uint32(u.gid) {
		t.Errorf("notify directory mode %#o owner %d:%d, want 0710 0:%d", dir.Mode&0o7777, dir.Uid, dir.Gid, u.gid)
	}

	reply := make(chan string, 1)
	go func() {
		c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
		if err != nil {
			reply <- err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "ping\n")
		b, _ := io.ReadAll(c)
		reply <- string(b)
	}()
	if !waitFor(5*time.Second, func() bool { return be.MainPID() != 0 }) {
		t.Fatal("backend not started")
	}
	if err := u.notifySend(path, "READY=1"); err != nil {
		t.Fatalf("the user's other process could not send: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if h.srv.Stats().Ready {
		t.Fatalf("ready after READY=1 from a process of uid %d that is not the backend's", u.uid)
	}
	if got := <-reply; !strings.HasPrefix(got, "ready=true ") {
		t.Fatalf("client got %q: want ready=true (after the READY=1 of the backend's child)", got)
	}
	var line string
	for _, e := range h.logs.All() {
		if strings.HasPrefix(e.Message, "notify datagram refused") {
			line = fmt.Sprint(e.ContextMap())
		}
	}
	if !strings.Contains(line, fmt.Sprintf("sender_uid:%d", u.uid)) {
		t.Errorf("refusal line %q: want the sender's uid %d", line, u.uid)
	}
}
