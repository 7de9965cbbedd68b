package unixdial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// user is an unprivileged user created for one test.
type user struct{ uid, gid uint32 }

func newUser(t *testing.T) user {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: root sockd against an unprivileged user")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("needs useradd to create the unprivileged user")
	}
	name := fmt.Sprintf("sockdud%d", os.Getpid()%100000)
	if out, err := exec.Command("useradd", "-r", "-M", "-U", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	id := func(flag string) uint32 {
		out, err := exec.Command("id", flag, name).Output()
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return uint32(n)
	}
	return user{uid: id("-u"), gid: id("-g")}
}

func (u user) cred() *Cred { return &Cred{UID: u.uid, GID: u.gid, Groups: []uint32{u.gid}} }

// serve listens on path and writes "uid gid\n" of each peer.
func serve(t *testing.T, path string) {
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
			rc, _ := c.(*net.UnixConn).SyscallConn()
			rc.Control(func(fd uintptr) {
				if cr, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
					fmt.Fprintf(c, "%d %d\n", cr.Uid, cr.Gid)
				}
			})
			c.Close()
		}
	}()
}

func mkdir(t *testing.T, dir string, mode uint32, uid, gid uint32) string {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(dir, mode); err != nil { // past the umask, sticky bit too
		t.Fatal(err)
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func symlinkAs(t *testing.T, target, link string, uid, gid uint32) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string, cred *Cred) (string, error) {
	t.Helper()
	c, err := Dial(context.Background(), path, cred, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// layout is a root-only socket, a directory of the user's with a link to
// it and a socket of the user's own.
type layout struct {
	priv, link, own, home string
}

func newLayout(t *testing.T, u user) layout {
	t.Helper()
	// Not under t.TempDir (0700): the user must reach its own socket.
	base, err := os.MkdirTemp("", "unixdial-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := mkdir(t, filepath.Join(base, "secret"), 0o700, 0, 0)
	l := layout{priv: filepath.Join(secret, "priv.sock")}
	serve(t, l.priv)
	l.home = mkdir(t, filepath.Join(base, "home"), 0o755, u.uid, u.gid)
	l.link = filepath.Join(l.home, "backend.sock")
	symlinkAs(t, l.priv, l.link, u.uid, u.gid)
	l.own = filepath.Join(l.home, "own.sock")
	serve(t, l.own)
	os.Chown(l.own, int(u.uid), int(u.gid))
	os.Chmod(l.own, 0o600)
	return l
}

// TestDialAsUser (root): connected with a user's rights, the root-only
// socket is out of reach, directly and through the user's link; the
// user's own socket is reached and its peer is the user.
func TestDialAsUser(t *testing.T) {
	u := newUser(t)
	l := newLayout(t, u)
	for _, p := range []string{l.priv, l.link} {
		if got, err := read(t, p, u.cred()); !errors.Is(err, unix.EACCES) {
			t.Errorf("%s as uid %d: %q, %v; want permission denied", p, u.uid, got, err)
		}
	}
	want := fmt.Sprintf("%d %d\n", u.uid, u.gid)
	if got, err := read(t, l.own, u.cred()); got != want {
		t.Errorf("own socket as uid %d: %q, %v; want peer %q", u.uid, got, err, want)
	}
	if got, err := read(t, l.priv, nil); got != "0 0\n" {
		t.Errorf("root-only socket as root: %q, %v", got, err)
	}
}

// TestDialAsLeavesThreadsAlone (root): after many concurrent connects as a
// user, every thread of the process has root's credentials again.
func TestDialAsLeavesThreadsAlone(t *testing.T) {
	u := newUser(t)
	l := newLayout(t, u)
	want := threadStatus(t, "self")
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 25; j++ {
				if c, err := Dial(context.Background(), l.own, u.cred(), 5*time.Second); err == nil {
					c.Close()
				} else {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if got := threadStatus(t, "self/task/"+task.Name()); got != want {
			t.Errorf("thread %s: %q, want the process's %q", task.Name(), got, want)
		}
	}
}

// threadStatus is the Uid, Gid and Groups lines of /proc/WHO/status.
func threadStatus(t *testing.T, who string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + who + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Uid:") || strings.HasPrefix(line, "Gid:") || strings.HasPrefix(line, "Groups:") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(out, "; ")
}

// TestDialAsRoot (root): without a user, a path another user could point
// elsewhere is refused, whatever it leads to; paths only root can change
// are followed, links included.
func TestDialAsRoot(t *testing.T) {
	u := newUser(t)
	l := newLayout(t, u)
	base := filepath.Dir(l.home)
	tmp := mkdir(t, filepath.Join(base, "tmp"), 0o1777, 0, 0)
	symlinkAs(t, l.priv, filepath.Join(tmp, "user-link"), u.uid, u.gid)
	symlinkAs(t, l.priv, filepath.Join(tmp, "root-link"), 0, 0)
	group := mkdir(t, filepath.Join(base, "group"), 0o775, 0, u.gid)
	symlinkAs(t, l.priv, filepath.Join(group, "link"), 0, 0)
	safe := mkdir(t, filepath.Join(base, "safe"), 0o755, 0, 0)
	symlinkAs(t, "../secret/priv.sock", filepath.Join(safe, "rel"), 0, 0)
	symlinkAs(t, l.home, filepath.Join(safe, "to-home"), 0, 0)

	for _, p := range []string{l.link, l.own, filepath.Join(tmp, "user-link"), filepath.Join(group, "link"),
		filepath.Join(safe, "to-home", "backend.sock"), l.home + "/../secret/priv.sock"} {
		got, err := read(t, p, nil)
		var unsafe *UnsafePathError
		if !errors.As(err, &unsafe) {
			t.Errorf("%s as root: %q, %v; want an UnsafePathError", p, got, err)
		} else if CheckPath(p) == nil {
			t.Errorf("CheckPath(%s) = nil; Dial refused it: %v", p, err)
		}
	}
	for _, p := range []string{l.priv, filepath.Join(tmp, "root-link"), filepath.Join(safe, "rel"), safe + "/../secret/priv.sock"} {
		if got, err := read(t, p, nil); got != "0 0\n" {
			t.Errorf("%s as root: %q, %v; want served", p, got, err)
		}
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%s): %v", p, err)
		}
	}
	// Missing: only root can create it in safe; anyone may in tmp.
	if _, err := read(t, filepath.Join(safe, "none.sock"), nil); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing socket: %v, want ENOENT", err)
	}
	if err := CheckPath(filepath.Join(safe, "none.sock")); err != nil {
		t.Errorf("CheckPath of a socket root alone may create: %v", err)
	}
	if err := CheckPath(filepath.Join(tmp, "none.sock")); err == nil {
		t.Error("CheckPath of a socket anyone may create first in a sticky directory: nil")
	}
}

// BenchmarkDial: the cost of one connect, plain, through the walk (root,
// no user) and with a user's rights (root). Each includes the accept.
func BenchmarkDial(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	dir, err := os.MkdirTemp("", "unixdial-bench-") // not under b.TempDir (0700)
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "a", "b", "s.sock")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	os.Chmod(path, 0o666)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	nobody := &Cred{UID: 65534, GID: 65534, Groups: []uint32{65534}}
	for _, x := range []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"plain", func() (net.Conn, error) { return dialPlain(context.Background(), path, time.Second) }},
		{"walked", func() (net.Conn, error) { return Dial(context.Background(), path, nil, time.Second) }},
		{"as-user", func() (net.Conn, error) { return Dial(context.Background(), path, nobody, time.Second) }},
	} {
		b.Run(x.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c, err := x.dial()
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
