package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// proxyUser creates an unprivileged user for the test (testUser).
func proxyUser(t *testing.T) (string, int, int) { return testUser(t, "sockdpx") }

// serveUnix listens on path and answers every connection with reply(peer
// uid); it counts the connections it accepted.
func serveUnix(t *testing.T, path string, reply func(uid uint32) string) *atomic.Int32 {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	n := new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			uid := uint32(1 << 31)
			if rc, err := c.(*net.UnixConn).SyscallConn(); err == nil {
				_ = rc.Control(func(fd uintptr) {
					if cr, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
						uid = cr.Uid
					}
				})
			}
			fmt.Fprint(c, reply(uid))
			c.Close()
		}
	}()
	return n
}

// TestProxyUnixBackendRights (root): sockd never reaches, for a proxy job, a
// Unix socket the job's user could not reach. A user who owns a directory
// on a Backend path links it to a root-only socket (in a 0700 directory):
// a job with that UserName is connected with the user's rights and gets
// nothing; a job without UserName (connected as root) is refused at load,
// naming SockdProxy.Backend. A socket the user may reach is served, and the
// backend sees the job's user as the peer, not root.
func TestProxyUnixBackendRights(t *testing.T) {
	name, uid, gid := proxyUser(t)
	secretDir := filepath.Join(t.TempDir(), "secret")
	if err := os.Mkdir(secretDir, 0o700); err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(secretDir, "priv.sock")
	reached := serveUnix(t, priv, func(uint32) string { return "secret\n" })

	home := filepath.Join(publicTempDir(t), "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(home, "backend.sock")
	if err := os.Symlink(priv, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, uid, gid); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(home, "own.sock")
	serveUnix(t, own, func(peer uint32) string { return fmt.Sprintf("peer=%d\n", peer) })
	if err := os.Chown(own, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(own, 0o600); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	ports := map[string]int{}
	for _, j := range []struct{ label, user, backend string }{
		{"test.asuser-link", name, link},
		{"test.asuser-own", name, own},
		{"test.asroot-link", "", link},
	} {
		ports[j.label] = freePort(t, "tcp")
		def := map[string]any{
			"Label":      j.label,
			"Sockets":    map[string]any{"Listeners": tcpSocket(ports[j.label])},
			"SockdProxy": map[string]any{"Backend": j.backend, "ReadyTimeout": 2},
		}
		if j.user != "" {
			def["UserName"] = j.user
		}
		writeJob(t, dir, strings.TrimPrefix(j.label, "test."), def)
	}
	d := startSockd(t, dir)
	addr := func(label string) string { return fmt.Sprintf("127.0.0.1:%d", ports[label]) }

	if got := readAll(t, addr("test.asuser-link")); got != "" {
		t.Errorf("job with UserName %s, Backend a link of that user's to a root-only socket: got %q, want nothing", name, got)
	}
	if got, want := readAll(t, addr("test.asuser-own")), fmt.Sprintf("peer=%d\n", uid); got != want {
		t.Errorf("job with UserName %s, Backend a socket of that user's: got %q, want %q (connected as the job's user)", name, got, want)
	}
	if c, err := net.DialTimeout("tcp4", addr("test.asroot-link"), time.Second); err == nil {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		var b [64]byte
		n, _ := c.Read(b[:])
		c.Close()
		t.Errorf("job without UserName, Backend through a directory of uid %d: served (%q), want refused at load", uid, b[:n])
	}
	if !d.waitLog("SockdProxy.Backend", 2*time.Second) || !d.waitLog(home, time.Second) {
		t.Errorf("no load error naming SockdProxy.Backend and %s", home)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the root-only socket was reached %d times through the proxy", n)
	}
}

// readAll connects and reads to EOF (bounded); "" when the proxy closes
// the connection unserved.
func readAll(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	buf := make([]byte, 256)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// TestProxyNotifyAsUser (root): a backend running as the job's user says
// READY=1 with systemd-notify from its shell (a child of the main process,
// which sends with its own pid): the NOTIFY_SOCKET is that user's, the
// child counts as the backend, and the client is forwarded after it.
func TestProxyNotifyAsUser(t *testing.T) {
	needProgram(t, "socat", "systemd-notify")
	name, _, _ := proxyUser(t)
	dir := t.TempDir()
	pub, priv := freePort(t, "tcp"), freePort(t, "tcp")
	script := fmt.Sprintf(`socat TCP4-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork SYSTEM:'echo served-as-$(id -un)' &
sleep 1
systemd-notify --ready
wait`, priv)
	writeJob(t, dir, "notify", map[string]any{
		"Label":            "test.notify-user",
		"UserName":         name,
		"ProgramArguments": []string{"/bin/sh", "-c", script},
		"ExitTimeOut":      2,
		"Sockets":          map[string]any{"Listeners": tcpSocket(pub)},
		"SockdProxy":       map[string]any{"Backend": fmt.Sprintf("127.0.0.1:%d", priv), "Notify": true, "ReadyTimeout": 10},
	})
	d := startSockd(t, dir)
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", pub), ""); got != "served-as-"+name+"\n" {
		t.Fatalf("client got %q, want served-as-%s", got, name)
	}
	if d.countLogs("notify datagram refused", "test.notify-user") != 0 {
		t.Error("the backend's own READY=1 was refused")
	}
}
