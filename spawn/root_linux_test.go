//go:build linux && cgo

package spawn

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// testAccount is a user made for a test: primary group g1, also a member
// of g2.
type testAccount struct {
	name, g1, g2    string
	uid, gid1, gid2 int
}

func needProgram(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed: %v", name, err)
		}
		t.Skipf("needs %s: %v", name, err)
	}
	return p
}

func newTestAccount(t *testing.T) *testAccount {
	t.Helper()
	needRoot(t, "useradd and credential changes")
	useradd := needProgram(t, "useradd")
	groupadd := needProgram(t, "groupadd")
	userdel := needProgram(t, "userdel")
	groupdel := needProgram(t, "groupdel")
	id := os.Getpid() % 100000
	a := &testAccount{name: fmt.Sprintf("sdt%du", id), g1: fmt.Sprintf("sdt%da", id), g2: fmt.Sprintf("sdt%db", id)}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%q: %v: %s", args, err, out)
		}
	}
	run(groupadd, a.g1)
	t.Cleanup(func() { exec.Command(groupdel, a.g1).Run() })
	run(groupadd, a.g2)
	t.Cleanup(func() { exec.Command(groupdel, a.g2).Run() })
	run(useradd, "-M", "-N", "-g", a.g1, "-G", a.g2, "-d", "/nonexistent/"+a.name, "-s", "/bin/sh", a.name)
	// Runs before the group cleanups (LIFO).
	t.Cleanup(func() { exec.Command(userdel, a.name).Run() })
	u, err := lookupUser(a.name)
	if err != nil {
		t.Fatal(err)
	}
	a.uid = int(u.uid)
	g1, err1 := lookupGroup(a.g1)
	g2, err2 := lookupGroup(a.g2)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	a.gid1, a.gid2 = int(g1), int(g2)
	return a
}

// creds parses Uid, Gid and Groups of /proc/self/status.
func creds(t *testing.T, status string) (uid, gid int, groups []int) {
	t.Helper()
	s := procStatus(status)
	u := strings.Fields(s["Uid"])
	g := strings.Fields(s["Gid"])
	if len(u) != 4 || len(g) != 4 {
		t.Fatalf("bad status: %q", status)
	}
	for i := 1; i < 4; i++ {
		if u[i] != u[0] || g[i] != g[0] {
			t.Errorf("real/effective/saved/fs ids differ: Uid %q Gid %q", s["Uid"], s["Gid"])
		}
	}
	uid, _ = strconv.Atoi(u[0])
	gid, _ = strconv.Atoi(g[0])
	for _, f := range strings.Fields(s["Groups"]) {
		n, _ := strconv.Atoi(f)
		groups = append(groups, n)
	}
	slices.Sort(groups)
	return uid, gid, groups
}

func TestCredentials(t *testing.T) {
	a := newTestAccount(t)
	sorted := func(g ...int) []int { slices.Sort(g); return g }
	for _, tc := range []struct {
		name       string
		user       string
		group      string
		initGroups bool
		uid, gid   int
		groups     []int
	}{
		{"InitGroups", a.name, "", true, a.uid, a.gid1, sorted(a.gid1, a.gid2)},
		{"NoInitGroups", a.name, "", false, a.uid, a.gid1, []int{a.gid1}},
		// initgroups(user, GroupName): the primary group from passwd is not
		// listed unless the user is a member of it.
		{"GroupName", a.name, a.g2, true, a.uid, a.gid2, []int{a.gid2}},
		{"GroupNameOnly", "", a.g2, false, 0, a.gid2, []int{a.gid2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := programJob(t, "cat", "/proc/self/status")
			j.UserName, j.GroupName, j.InitGroups = tc.user, tc.group, tc.initGroups
			out, st := runOutput(t, newTemplate(t, j, Options{AsRoot: true}))
			if !st.Success() {
				t.Fatalf("cat: %v", st)
			}
			uid, gid, groups := creds(t, out)
			if uid != tc.uid || gid != tc.gid || !slices.Equal(groups, tc.groups) {
				t.Errorf("uid %d gid %d groups %v; want %d %d %v", uid, gid, groups, tc.uid, tc.gid, tc.groups)
			}
		})
	}

	// A sockd not running as root would run the job as itself: another
	// user or group is refused, never ignored.
	t.Run("NotAsRoot", func(t *testing.T) {
		j := programJob(t, "cat", "/proc/self/status")
		j.UserName = a.name
		if tpl, _, err := NewTemplate(j, Options{AsRoot: false}); tpl != nil || err == nil || !strings.Contains(err.Error(), "job test.cat: UserName: ") {
			t.Fatalf("another user: err %v, want the job refused naming UserName", err)
		}
		j.UserName, j.GroupName = "", a.g2
		if tpl, _, err := NewTemplate(j, Options{AsRoot: false}); tpl != nil || err == nil || !strings.Contains(err.Error(), "job test.cat: GroupName: ") {
			t.Fatalf("another group: err %v, want the job refused naming GroupName", err)
		}
		j.UserName, j.GroupName = "root", "root"
		tpl, warns, err := NewTemplate(j, Options{AsRoot: false})
		if err != nil || len(warns) != 0 {
			t.Fatalf("sockd's own user and group: err %v warnings %q", err, warns)
		}
		out, _ := runOutput(t, tpl)
		if uid, _, _ := creds(t, out); uid != os.Getuid() {
			t.Errorf("uid %d, want unchanged %d", uid, os.Getuid())
		}
	})

	t.Run("UserEnv", func(t *testing.T) {
		j := programJob(t, "env")
		j.UserName = a.name
		out, st := runOutput(t, newTemplate(t, j, Options{AsRoot: true, BaseEnv: []string{"PATH=/bin", "USER=kept"}}))
		if !st.Success() {
			t.Fatalf("env: %v", st)
		}
		got := strings.Fields(out)
		// The job user's values replace inherited ones (sockd's USER=root).
		want := []string{"PATH=/bin", "USER=" + a.name, "HOME=/nonexistent/" + a.name, "LOGNAME=" + a.name, "SHELL=/bin/sh"}
		if !slices.Equal(got, want) {
			t.Errorf("env %q, want %q", got, want)
		}
	})

	t.Run("StandardOutPathAsUser", func(t *testing.T) {
		dir, err := os.MkdirTemp("", "spawn-std")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		rootOnly := filepath.Join(dir, "root-only")
		if err := os.WriteFile(rootOnly, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out")
		j := programJob(t, "cat", "/proc/self/status")
		j.UserName = a.name
		umask := uint32(0o022)
		j.Umask = &umask
		j.StandardOutPath = out
		j.StandardErrorPath = rootOnly // opened after the drop: EACCES
		tpl := newTemplate(t, j, Options{AsRoot: true})
		null := devNull(t)
		p, err := tpl.Start([]int{null, null, null}, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if st := wait(t, p); !st.Success() {
			t.Fatalf("cat: %v", st)
		}
		if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0].Error(), "StandardErrorPath") {
			t.Errorf("warnings %v, want StandardErrorPath EACCES", p.Warnings)
		}
		var st unix.Stat_t
		if err := unix.Stat(out, &st); err != nil {
			t.Fatal(err)
		}
		if int(st.Uid) != a.uid || int(st.Gid) != a.gid1 || st.Mode&0o777 != 0o644 {
			t.Errorf("StandardOutPath owner %d:%d mode %o; want %d:%d 644", st.Uid, st.Gid, st.Mode&0o777, a.uid, a.gid1)
		}
		b, _ := os.ReadFile(out)
		if uid, _, _ := creds(t, string(b)); uid != a.uid {
			t.Errorf("output uid %d, want %d", uid, a.uid)
		}
	})
}

// buildStatic compiles a static C program once per process.
var (
	staticMu    sync.Mutex
	staticBuilt = map[string]string{}
)

// removeStatic deletes what buildStatic made.
func removeStatic() {
	staticMu.Lock()
	defer staticMu.Unlock()
	for name, p := range staticBuilt {
		os.RemoveAll(filepath.Dir(p))
		delete(staticBuilt, name)
	}
}

func buildStatic(t testing.TB, name, src string) string {
	t.Helper()
	staticMu.Lock()
	defer staticMu.Unlock()
	if p, ok := staticBuilt[name]; ok {
		return p
	}
	gcc := needProgram(t, "gcc")
	dir, err := os.MkdirTemp("", "spawn-static")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := filepath.Join(dir, name+".c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	if out, err := exec.Command(gcc, "-static", "-O2", "-o", bin, c).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		if os.Getenv("CI") == "true" {
			t.Fatalf("gcc -static: %v: %s", err, out)
		}
		t.Skipf("cannot build a static program (needs libc.a): %v: %s", err, out)
	}
	staticBuilt[name] = bin
	return bin
}

const probeSrc = `#include <dirent.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
	char cwd[4096];
	if (getcwd(cwd, sizeof cwd) == NULL) return 3;
	printf("uid=%d cwd=%s\n", (int)getuid(), cwd);
	DIR *d = opendir("/");
	if (d == NULL) return 4;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.') printf("%s\n", e->d_name);
	return 0;
}
`

func TestRootDirectory(t *testing.T) {
	needRoot(t, "chroot")
	a := newTestAccount(t)
	probe := buildStatic(t, "probe", probeSrc)
	root, err := os.MkdirTemp("", "spawn-chroot")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(probe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "probe"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	j := programJob(t, "true") // replaced below
	j.Label, j.Path, j.Argv = "test.chroot", "/probe", []string{"/probe"}
	j.RootDirectory = root
	j.UserName = a.name
	j.WorkingDirectory = "/work"
	out, st := runOutput(t, newTemplate(t, j, Options{AsRoot: true}))
	if !st.Success() {
		t.Fatalf("probe: %v: %q", st, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 1 || lines[0] != fmt.Sprintf("uid=%d cwd=/work", a.uid) {
		t.Errorf("probe said %q, want uid=%d cwd=/work first", out, a.uid)
	}
	entries := lines[1:]
	slices.Sort(entries)
	if !slices.Equal(entries, []string{"probe", "work"}) {
		t.Errorf("/ in the chroot lists %q, want probe and work", entries)
	}
}
