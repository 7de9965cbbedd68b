package listener

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rootOnlyDir is a root 0700 directory, as /root/secret is.
func rootOnlyDir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
}

func wantEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("root sockd created %s in %s, a directory the user may not reach", ents[0].Name(), dir)
	}
}

// TestAncestorLinkRefused: the user replaces a directory of the socket's
// path by a symbolic link to a root-only directory before sockd starts.
// Root sockd used to bind its node (with the job's mode and owner) in the
// root directory; it now refuses the link and names it.
func TestAncestorLinkRefused(t *testing.T) {
	base := raceBase(t)
	a := newAttacker(t, base)
	bothKernels(t, func(t *testing.T) {
		sub := subBase(t, base)
		home := filepath.Join(sub, "home")
		a.mkdirOwned(t, home)
		victim := filepath.Join(sub, "victim")
		rootOnlyDir(t, victim)
		a.run(t, "symlink:"+victim+":"+filepath.Join(home, "run"))
		_, err := Open("t.link", endpoint("t.link", spec{group: "S", network: "unix",
			addr: filepath.Join(home, "run", "s.sock"), mode: mode(0o666)}))
		if err == nil || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), filepath.Join(home, "run")) {
			t.Fatalf("err = %v, want the user's link refused by name", err)
		}
		wantEmptyDir(t, victim)
	})
}

// TestAncestorSwapBeforeBind: between sockd's walk of the directories and
// its bind, the user moves the socket's directory away and puts a link to a
// root-only directory in its place. The bind lands in the directory sockd
// walked (now under its new name), never in the root directory, and Close
// leaves the moved node alone rather than look the path up again.
func TestAncestorSwapBeforeBind(t *testing.T) {
	base := raceBase(t)
	a := newAttacker(t, base)
	sub := subBase(t, base)
	home := filepath.Join(sub, "home")
	a.mkdirOwned(t, home)
	dir := filepath.Join(home, "run")
	a.mkdirOwned(t, dir)
	victim := filepath.Join(sub, "victim")
	rootOnlyDir(t, victim)
	setHook(t, &testHookBeforeBind, func(string) {
		a.run(t, "rename:"+dir+":"+dir+".old;symlink:"+victim+":"+dir)
	})
	s, err := Open("t.swap", endpoint("t.swap", spec{group: "S", network: "unix",
		addr: filepath.Join(dir, "s.sock"), mode: mode(0o666)}))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	wantEmptyDir(t, victim)
	if !exists(filepath.Join(dir+".old", "s.sock")) {
		t.Error("the node is not in the directory sockd walked")
	}
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Close: %v, want the link refused", err)
	}
	wantEmptyDir(t, victim)
}

// TestDirectoryReplacedAtClose: the user replaces the socket's directory by
// another directory of the same name; Close does not unlink in it.
func TestDirectoryReplacedAtClose(t *testing.T) {
	base := raceBase(t)
	a := newAttacker(t, base)
	sub := subBase(t, base)
	home := filepath.Join(sub, "home")
	a.mkdirOwned(t, home)
	dir := filepath.Join(home, "run")
	a.mkdirOwned(t, dir)
	s := mustOpen(t, "t.replace", spec{group: "S", network: "unix", addr: filepath.Join(dir, "s.sock")})
	a.run(t, "rename:"+dir+":"+dir+".old;rename:"+dir+".old:"+dir+".kept")
	a.mkdirOwned(t, dir)
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "moved or replaced") {
		t.Errorf("Close: %v, want the replaced directory reported", err)
	}
}

// TestRootLinkFollowed: a link only root can change (root's, in a root
// directory: /var/run -> /run) is followed as before.
func TestRootLinkFollowed(t *testing.T) {
	base := raceBase(t)
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(base, "run")); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, "t.rootlink", spec{group: "S", network: "unix", addr: filepath.Join(base, "run", "s.sock")})
	if !exists(filepath.Join(real, "s.sock")) {
		t.Fatal("the socket is not in the link's target")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(real, "s.sock")) {
		t.Error("Close left the node")
	}
}

// TestConnectThroughUserDirectory: root sockd used to connect a
// SockPassive=false socket through a directory a user controls, which the
// user pointed at a root-only socket: the job got a connection the user may
// not make. It now refuses there and still connects along a root path.
func TestConnectThroughUserDirectory(t *testing.T) {
	base := raceBase(t)
	a := newAttacker(t, base)
	victim := filepath.Join(base, "victim")
	rootOnlyDir(t, victim)
	live, err := net.Listen("unix", filepath.Join(victim, "priv.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	accepted := make(chan struct{}, 4)
	go func() {
		for {
			c, err := live.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	home := filepath.Join(base, "home")
	a.mkdirOwned(t, home)
	a.run(t, "symlink:"+victim+":"+filepath.Join(home, "agent"))
	_, err = Open("t.connect", endpoint("t.connect", spec{group: "C", network: "unix", active: true,
		addr: filepath.Join(home, "agent", "priv.sock")}))
	if err == nil {
		t.Fatal("root connected through the user's directory")
	}
	a.run(t, "rename:"+filepath.Join(home, "agent")+":"+filepath.Join(home, "x")+";symlink:"+filepath.Join(victim, "priv.sock")+":"+filepath.Join(home, "agent"))
	if _, err = Open("t.connect", endpoint("t.connect", spec{group: "C", network: "unix", active: true,
		addr: filepath.Join(home, "agent")})); err == nil || !strings.Contains(err.Error(), "only root can change") {
		t.Fatalf("err = %v, want a refusal of the user's directory", err)
	}
	select {
	case <-accepted:
		t.Fatal("the root-only socket got a connection")
	case <-time.After(50 * time.Millisecond):
	}
	s := mustOpen(t, "t.connect", spec{group: "C", network: "unix", active: true, addr: filepath.Join(victim, "priv.sock")})
	s.Close()
}
