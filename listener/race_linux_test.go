package listener

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests in this file play a hostile local user against root sockd: the
// user controls a directory on the socket's path and changes it at the
// moment sockd is between two operations (a test seam makes the moment
// deterministic). Each test checks that root changed nothing outside what
// the user could change anyway.

// attacker is an unprivileged user created for one test, and a copy of the
// test binary it can run.
type attacker struct {
	uid, gid int
	exe      string
}

// newAttacker creates a system user for the test (removed at cleanup).
func newAttacker(t *testing.T, base string) *attacker {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the race is root sockd against an unprivileged user")
	}
	useradd, err := exec.LookPath("useradd")
	if err != nil {
		t.Skip("needs useradd to create the unprivileged user")
	}
	name := fmt.Sprintf("sockdrace%d", os.Getpid()%100000)
	if out, err := exec.Command(useradd, "-r", "-M", "-U", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	out, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	out, err = exec.Command("id", "-g", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(base, "listener.test")
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return &attacker{uid: uid, gid: gid, exe: exe}
}

// run performs ops ("op:arg:arg;...", see runFSOps) as the attacker.
func (a *attacker) run(t *testing.T, ops string) {
	t.Helper()
	cmd := exec.Command(a.exe)
	cmd.Env = append(os.Environ(), helperEnv+"=fsops", "HELPER_OPS="+ops)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("attacker %q: %v\n%s", ops, err, out)
	}
}

// mkdirOwned creates dir owned by the attacker, mode 0755.
func (a *attacker) mkdirOwned(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, a.uid, a.gid); err != nil {
		t.Fatal(err)
	}
}

// runFSOps runs "exchange:A:B" (renameat2 RENAME_EXCHANGE), "symlink:TARGET:LINK"
// and "rename:OLD:NEW" operations separated by ";".
func runFSOps(ops string) error {
	for _, op := range strings.Split(ops, ";") {
		f := strings.Split(op, ":")
		if len(f) != 3 {
			return fmt.Errorf("bad op %q", op)
		}
		var err error
		switch f[0] {
		case "exchange":
			err = unix.Renameat2(unix.AT_FDCWD, f[1], unix.AT_FDCWD, f[2], unix.RENAME_EXCHANGE)
		case "symlink":
			err = os.Symlink(f[1], f[2])
		case "rename":
			err = os.Rename(f[1], f[2])
		default:
			err = fmt.Errorf("unknown op %q", f[0])
		}
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return nil
}

// raceBase is a root-owned 0755 directory for one race test.
func raceBase(t *testing.T) string {
	base, err := os.MkdirTemp("", "sockd-race-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	return base
}

// bothKernels runs f as on a kernel with SIOCUNIXFILE and as on one without.
func bothKernels(t *testing.T, f func(t *testing.T)) {
	for _, without := range []bool{false, true} {
		t.Run(fmt.Sprintf("noSIOCUNIXFILE=%t", without), func(t *testing.T) {
			testNoUnixFile = without
			defer func() { testNoUnixFile = false }()
			f(t)
		})
	}
}

// subBase is a fresh 0755 directory under base for one subtest.
func subBase(t *testing.T, base string) string {
	dir, err := os.MkdirTemp(base, "sub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// setHook sets a test seam for the duration of the test.
func setHook(t *testing.T, hook *func(string), f func(string)) {
	*hook = f
	t.Cleanup(func() { *hook = nil })
}

// secretFile is a root-only file the attacker wants root to change.
func secretFile(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func wantSecretUntouched(t *testing.T, path string) {
	t.Helper()
	st := lstat(t, path)
	if st.Mode&0o7777 != 0o600 || st.Uid != 0 || st.Gid != 0 {
		t.Fatalf("root changed %s through the user's swap: mode %o owner %d:%d, want 0600 0:0", path, st.Mode&0o7777, st.Uid, st.Gid)
	}
}

// TestRaceModeOwnerThroughSymlink: between sockd's bind and its mode and
// owner changes, the user exchanges the fresh socket node with a symbolic
// link to a root-only file. Neither the mode (SockPathMode) nor the owner
// (SockPathOwner/SockPathGroup) may reach the file, with either bind
// strategy.
func TestRaceModeOwnerThroughSymlink(t *testing.T) {
	base := raceBase(t)
	a := newAttacker(t, base)
	bothKernels(t, func(t *testing.T) { raceModeOwner(t, subBase(t, base), a) })
}

func raceModeOwner(t *testing.T, base string, a *attacker) {
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprintf("processUmask=%t", force), func(t *testing.T) {
			forceProcessUmask = force
			defer func() { forceProcessUmask = false }()
			dir := filepath.Join(base, fmt.Sprintf("user%t", force))
			a.mkdirOwned(t, dir)
			secret := filepath.Join(base, fmt.Sprintf("secret%t", force))
			secretFile(t, secret)
			path := filepath.Join(dir, "s.sock")
			evil := filepath.Join(dir, "evil")
			setHook(t, &testHookAfterBind, func(string) {
				a.run(t, "symlink:"+secret+":"+evil+";exchange:"+evil+":"+path)
			})
			s, err := Open("t.race", endpoint("t.race", spec{group: "S", network: "unix", addr: path,
				mode: mode(0o666), owner: intp(a.uid), grp: intp(a.gid)}))
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded although the socket's path was swapped for a symbolic link")
			}
			if !strings.Contains(err.Error(), "path changed") {
				t.Errorf("err = %v, want the path-changed error", err)
			}
			wantSecretUntouched(t, secret)
			if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the user's symbolic link at %s was touched: %v %v", path, fi, err)
			}
		})
	}
}

// TestRaceAncestorSwapAtBind: after the bind the user replaces the socket's
// directory by a symbolic link to a root directory. The owner change goes to
// sockd's own node (in the moved directory), and nothing in the root
// directory is changed, then or at Close.
func TestRaceAncestorSwapAtBind(t *testing.T) {
	base := raceBase(t)
	a := newAttacker(t, base)
	bothKernels(t, func(t *testing.T) { raceSwapAtBind(t, subBase(t, base), a) })
}

func raceSwapAtBind(t *testing.T, base string, a *attacker) {
	home := filepath.Join(base, "home")
	a.mkdirOwned(t, home)
	dir := filepath.Join(home, "d")
	a.mkdirOwned(t, dir)
	victim := filepath.Join(base, "victim")
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(victim, "s.sock")
	secretFile(t, secret)
	setHook(t, &testHookAfterBind, func(string) {
		a.run(t, "rename:"+dir+":"+dir+".old;symlink:"+victim+":"+dir)
	})
	s, err := Open("t.race", endpoint("t.race", spec{group: "S", network: "unix", addr: filepath.Join(dir, "s.sock"),
		mode: mode(0o660), owner: intp(a.uid)}))
	if err == nil {
		// Bound in the directory as it was: the node moved with it.
		st := lstat(t, filepath.Join(dir+".old", "s.sock"))
		if st.Uid != uint32(a.uid) || st.Mode&0o777 != 0o660 {
			t.Errorf("sockd's own node: owner %d mode %o, want %d 0660", st.Uid, st.Mode&0o777, a.uid)
		}
		// The directory is now a link the user controls: Close leaves the
		// node where it is and says so.
		if err := s.Close(); err != nil && !strings.Contains(err.Error(), "symbolic link") {
			t.Fatal(err)
		}
	}
	wantSecretUntouched(t, secret)
}

// TestRaceAncestorSwapAtClose: between Close's check of the node and its
// unlink, the user replaces the socket's directory by a symbolic link to a
// root directory holding a live socket of the same name. That socket must
// survive.
func TestRaceAncestorSwapAtClose(t *testing.T) {
	base := raceBase(t)
	a := newAttacker(t, base)
	bothKernels(t, func(t *testing.T) { raceSwapAtClose(t, subBase(t, base), a) })
}

func raceSwapAtClose(t *testing.T, base string, a *attacker) {
	home := filepath.Join(base, "home")
	a.mkdirOwned(t, home)
	dir := filepath.Join(home, "d")
	a.mkdirOwned(t, dir)
	victim := filepath.Join(base, "victim")
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	live, err := net.Listen("unix", filepath.Join(victim, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	s := mustOpen(t, "t.race", spec{group: "S", network: "unix", addr: filepath.Join(dir, "s.sock")})
	setHook(t, &testHookBeforeUnlink, func(string) {
		a.run(t, "rename:"+dir+":"+dir+".old;symlink:"+victim+":"+dir)
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(victim, "s.sock")) {
		t.Fatal("root sockd removed another service's socket through the user's symbolic link")
	}
	if exists(filepath.Join(dir+".old", "s.sock")) {
		t.Error("sockd's own node was not removed from the directory it was bound in")
	}
}

// TestRaceAncestorSwapAtStaleRemoval: sockd removes a dead socket left at
// the path; between its check and the unlink the user swaps the directory
// for a link to a root directory whose socket of that name is in use.
func TestRaceAncestorSwapAtStaleRemoval(t *testing.T) {
	base := raceBase(t)
	a := newAttacker(t, base)
	bothKernels(t, func(t *testing.T) { raceSwapAtStale(t, subBase(t, base), a) })
}

func raceSwapAtStale(t *testing.T, base string, a *attacker) {
	home := filepath.Join(base, "home")
	a.mkdirOwned(t, home)
	dir := filepath.Join(home, "d")
	a.mkdirOwned(t, dir)
	deadSocket(t, filepath.Join(dir, "s.sock"))
	victim := filepath.Join(base, "victim")
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	live, err := net.Listen("unix", filepath.Join(victim, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	setHook(t, &testHookBeforeUnlink, func(string) {
		a.run(t, "rename:"+dir+":"+dir+".old;symlink:"+victim+":"+dir)
	})
	s, err := Open("t.race", endpoint("t.race", spec{group: "S", network: "unix", addr: filepath.Join(dir, "s.sock")}))
	if err == nil {
		s.Close()
	}
	// The live socket still answers.
	c, err := net.DialTimeout("unix", filepath.Join(victim, "s.sock"), time.Second)
	if err != nil {
		t.Fatalf("root sockd removed a live socket through the user's symbolic link: %v", err)
	}
	c.Close()
}

// TestOwnerInUserDirectory: with SIOCUNIXFILE root sets SockPathOwner in a
// directory a user owns (through the node itself); without it, root refuses
// there with a message that says why, and still works in a root directory.
func TestOwnerInUserDirectory(t *testing.T) {
	base := raceBase(t)
	a := newAttacker(t, base)
	bothKernels(t, func(t *testing.T) {
		sub := subBase(t, base)
		dir := filepath.Join(sub, "user")
		a.mkdirOwned(t, dir)
		sp := spec{group: "S", network: "unix", addr: filepath.Join(dir, "s.sock"), mode: mode(0o660), owner: intp(a.uid)}
		s, err := Open("t.owner", endpoint("t.owner", sp))
		if testNoUnixFile {
			if err == nil || !strings.Contains(err.Error(), "owned by uid "+strconv.Itoa(a.uid)) ||
				!strings.Contains(err.Error(), "SockPathOwner") {
				t.Fatalf("err = %v, want a refusal naming the directory's owner and SockPathOwner", err)
			}
			if exists(sp.addr) {
				t.Error("the refused socket's node was left behind")
			}
		} else {
			if err != nil {
				t.Fatal(err)
			}
			if st := lstat(t, sp.addr); st.Uid != uint32(a.uid) || st.Mode&0o777 != 0o660 {
				t.Errorf("owner %d mode %o, want %d 0660", st.Uid, st.Mode&0o777, a.uid)
			}
			s.Close()
		}
		sp.addr = filepath.Join(sub, "root.sock")
		mustOpen(t, "t.owner", sp)
		if st := lstat(t, sp.addr); st.Uid != uint32(a.uid) {
			t.Errorf("in a root directory: owner %d, want %d", st.Uid, a.uid)
		}
	})
}
