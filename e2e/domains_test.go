package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// domainUser is a user made for a domain test, with a home directory and
// a supplementary group.
type domainUser struct {
	name     string
	uid, gid int
	home     string
	cred     *syscall.Credential
}

// newDomainUser creates a user with a home (mode 0700) and the group
// "users" as a supplementary group; both go at cleanup.
func newDomainUser(t *testing.T, prefix string) *domainUser {
	t.Helper()
	name, uid, gid := testUser(t, prefix, "-m", "-U", "-G", "users", "-s", "/bin/sh")
	home := filepath.Join("/home", name)
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	return &domainUser{name: name, uid: uid, gid: gid, home: home,
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}

// jobsDir makes the user's ~/.config/sockd/jobs, the user's own.
func (u *domainUser) jobsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(u.home, ".config", "sockd", "jobs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	u.chown(t)
	return dir
}

// chown gives everything under the home to the user.
func (u *domainUser) chown(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", u.uid, u.gid), u.home).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}
}

// activationJob is a handoff job of the test binary serving 127.0.0.1:port
// with go-systemd's activation package; its starts go to starts.
func activationJob(label, exe, starts string, port int) map[string]any {
	return map[string]any{
		"Label":                label,
		"ProgramArguments":     []string{exe, "activation", starts},
		"EnvironmentVariables": helperEnv(),
		"Sockets":              map[string]any{"Listener": tcpSocket(port)},
	}
}

// procStatus reads the Uid, Gid and Groups lines of /proc/PID/status and
// HOME from its environment.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	out := map[string]string{}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(ln, ":"); ok && (k == "Uid" || k == "Gid" || k == "Groups") {
			out[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			out["HOME"] = v
		}
	}
	return out
}

// agentPid connects to the activation job on port and returns the pid
// it reports.
func agentPid(t *testing.T, port int) int {
	t.Helper()
	line := dialRead(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port), "")
	f := strings.Fields(line)
	if len(f) == 0 || !strings.HasPrefix(f[0], "pid=") {
		t.Fatalf("agent on port %d answered %q", port, line)
	}
	pid, _ := strconv.Atoi(strings.TrimPrefix(f[0], "pid="))
	return pid
}

// refused reports whether nothing accepts on 127.0.0.1:port.
func portClosed(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// TestUserDomains: root serves the domains of two users who never logged
// in. A's agent runs as A (uid, gid, groups, HOME) with its socket from
// LISTEN_FDS; A's jobs that would need more than A's rights are refused
// (port 80, a socket in /root or in B's home, UserName root, Nice -5)
// while A's other jobs and the system's serve; each user manages their
// own domain through root's control socket and is refused the other's and
// the system's; A's domain survives a restart, and bootout stops it and
// frees its port.
func TestUserDomains(t *testing.T) {
	a, b := newDomainUser(t, "sda"), newDomainUser(t, "sdb")
	exe := copyFile(t, os.Args[0])
	if p, err := os.Executable(); err == nil {
		exe = copyFile(t, p)
	}
	aPort, bPort, sysPort := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp")

	sysDir := t.TempDir()
	writeJob(t, sysDir, "sys", nowaitJob("test.sys", sysPort, []string{"/bin/echo", "system"}))
	aDir, bDir := a.jobsDir(t), b.jobsDir(t)
	writeJob(t, aDir, "agent", activationJob("me.agent", exe, filepath.Join(a.home, "starts"), aPort))
	writeJob(t, aDir, "low", nowaitJob("me.low", 80, []string{"/bin/echo"}))
	granted := privilegedFreePort(t) // the admin lets A's domain have it
	writeJob(t, aDir, "granted", nowaitJob("me.granted", granted, []string{"/bin/echo", "granted"}))
	writeJob(t, aDir, "asroot", map[string]any{"Label": "me.asroot", "UserName": "root", "ProgramArguments": []string{"/bin/true"}, "RunAtLoad": true})
	writeJob(t, aDir, "nice", map[string]any{"Label": "me.nice", "Nice": -5, "ProgramArguments": []string{"/bin/true"}, "RunAtLoad": true})
	for name, path := range map[string]string{"rootsock": "/root/sockd-domain-test.sock", "bsock": filepath.Join(b.home, "a.sock")} {
		writeJob(t, aDir, name, map[string]any{"Label": "me." + name, "ProgramArguments": []string{"/bin/cat"},
			"inetdCompatibility": map[string]any{"Wait": false},
			"Sockets":            map[string]any{"S": map[string]any{"SockPathName": path}}})
	}
	writeJob(t, bDir, "agent", activationJob("b.agent", exe, filepath.Join(b.home, "starts"), bPort))
	// A link to a job file only root may read: read as A, it is refused.
	secretDir := t.TempDir() // 0700, root's
	secret := writeJob(t, secretDir, "secret", nowaitJob("secret.job", freePort(t, "tcp"), []string{"/bin/echo"}))
	if err := os.Symlink(secret, filepath.Join(aDir, "leak.plist")); err != nil {
		t.Fatal(err)
	}
	a.chown(t)
	b.chown(t)

	ctlDir, state := publicTempDir(t), t.TempDir()
	args := []string{"--control", filepath.Join(ctlDir, "control.sock"), "--overrides", filepath.Join(state, "overrides.json"),
		"--domain-ports", fmt.Sprintf("user/%d=%d", a.uid, granted)}
	d := startSockd(t, sysDir, args...)
	if !portClosed(aPort) {
		t.Fatal("A's agent listens before its domain is bootstrapped")
	}

	// Root brings A's domain up; the jobs that need more than A's rights
	// are refused, with the user's own sockd's messages.
	code, out, ans := d.ctl(t, nil, "bootstrap", fmt.Sprintf("user/%d", a.uid))
	diags := strings.Join(ans.Diags, "\n")
	for _, want := range []string{"port 80 is below", "UserName", "Nice", "leak.plist: error: cannot read the job file: open " + filepath.Join(aDir, "leak.plist") + ": permission denied"} {
		if !strings.Contains(diags, want) {
			t.Errorf("bootstrap user/%d: no diagnostic with %q (exit %d):\n%s", a.uid, want, code, out)
		}
	}
	if !slices.Contains(ans.Done, fmt.Sprintf("serving user/%d", a.uid)) {
		t.Errorf("bootstrap user/%d: done %q", a.uid, ans.Done)
	}
	agent := fmt.Sprintf("user/%d/me.agent", a.uid)
	checkAgent(t, a, agentPid(t, aPort))
	checkDomainVerdict(t, a, fmt.Sprintf("user/%d=%d", a.uid, granted), diags)
	for _, path := range []string{"/root/sockd-domain-test.sock", filepath.Join(b.home, "a.sock")} {
		if _, err := os.Lstat(path); err == nil {
			t.Errorf("A's job made %s", path)
		}
		if !strings.Contains(d.logBuf.String(), path) {
			t.Errorf("the log does not name %s as refused", path)
		}
	}
	if got := dialRead(t, "tcp", fmt.Sprintf("127.0.0.1:%d", granted), ""); got != "granted\n" {
		t.Errorf("A's job on the port granted by --domain-ports answered %q", got)
	}
	if got := dialRead(t, "tcp", fmt.Sprintf("127.0.0.1:%d", sysPort), ""); got != "system\n" {
		t.Errorf("the system job answered %q", got)
	}

	if code, out, _ := d.ctl(t, nil, "bootstrap", fmt.Sprintf("user/%d", b.uid)); code != 0 {
		t.Fatalf("bootstrap user/%d: exit %d\n%s", b.uid, code, out)
	}
	bAgent := fmt.Sprintf("user/%d/b.agent", b.uid)
	checkDomainControl(t, d, a, agent, bAgent, aPort)
	checkDomainControl(t, d, b, bAgent, agent, bPort)
	for _, c := range [][]string{{"print", agent}, {"kickstart", bAgent}, {"stop", "test.sys"}} {
		if code, out, _ := d.ctl(t, nil, c...); code != 0 {
			t.Errorf("root %v: exit %d\n%s", c, code, out)
		}
	}

	// A restart keeps both domains.
	if err := d.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	d = startSockd(t, sysDir, args...)
	checkAgent(t, a, agentPid(t, aPort))
	agentPid(t, bPort)

	// bootout stops A's domain, frees its port, and is remembered.
	if code, out, _ := d.ctl(t, nil, "bootout", fmt.Sprintf("user/%d", a.uid)); code != 0 {
		t.Fatalf("bootout: exit %d\n%s", code, out)
	}
	if !eventually(5*time.Second, func() bool { return portClosed(aPort) }) {
		t.Error("A's port still accepts after bootout")
	}
	_, _, ans = d.ctl(t, nil, "list")
	if _, ok := jobOf(ans, agent); ok {
		t.Error("A's agent is listed after bootout")
	}
	if _, ok := jobOf(ans, bAgent); !ok {
		t.Error("bootout of A's domain took B's agent too")
	}
	if err := d.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	startSockd(t, sysDir, args...)
	agentPid(t, bPort)
	if !portClosed(aPort) {
		t.Error("A's domain came back after a restart that followed its bootout")
	}
}

// checkDomainVerdict: sockd check --domain user/UID, as root and as the
// user, finds the same errors that bootstrap reported.
func checkDomainVerdict(t *testing.T, u *domainUser, grant, bootstrapDiags string) {
	t.Helper()
	bin := copyFile(t, sockdBin)
	for _, cred := range []*syscall.Credential{nil, u.cred} {
		cmd := exec.Command(bin, "check", "--domain", fmt.Sprintf("user/%d", u.uid), "--domain-ports", grant)
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		out, err := cmd.Output()
		var lines []string
		for _, ln := range strings.Split(string(out), "\n") {
			if strings.Contains(ln, ": error: ") {
				lines = append(lines, ln)
				// The same file, key and verdict (the message names the
				// sockd it judged for, which differs).
				if where, _, _ := strings.Cut(ln, ": error: "); !strings.Contains(bootstrapDiags, where+": error: ") {
					t.Errorf("check --domain as %v: %q, which bootstrap did not report:\n%s", cred, ln, bootstrapDiags)
				}
			}
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || len(lines) != 4 {
			t.Errorf("check --domain as %v: %v, %d errors (want exit 1 and the 4 load errors):\n%s", cred, err, len(lines), out)
		}
	}
}

// privilegedFreePort is a TCP port below 1024 that nothing listens on.
func privilegedFreePort(t *testing.T) int {
	t.Helper()
	for p := 990; p > 900; p-- {
		if l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			l.Close()
			return p
		}
	}
	t.Skip("no free port between 901 and 990")
	return 0
}

// checkAgent checks that pid runs as u: uid, gid, groups and HOME.
func checkAgent(t *testing.T, u *domainUser, pid int) {
	t.Helper()
	st := procStatus(t, pid)
	id := strconv.Itoa(u.uid)
	if st["Uid"] != strings.Repeat(id+" ", 3)+id {
		t.Errorf("agent pid %d: Uid %q, want %s everywhere", pid, st["Uid"], id)
	}
	if g := strconv.Itoa(u.gid); st["Gid"] != strings.Repeat(g+" ", 3)+g {
		t.Errorf("agent pid %d: Gid %q, want %d", pid, st["Gid"], u.gid)
	}
	if gs := strings.Fields(st["Groups"]); !slices.Contains(gs, "100") || !slices.Contains(gs, strconv.Itoa(u.gid)) {
		t.Errorf("agent pid %d: Groups %q, want the user's groups (%d and users, 100)", pid, st["Groups"], u.gid)
	}
	if st["HOME"] != u.home {
		t.Errorf("agent pid %d: HOME %q, want %s", pid, st["HOME"], u.home)
	}
}

// checkDomainControl: u lists, prints, kickstarts, disables and enables
// its own agent (mine, on port) through root's sockd, by its bare label,
// and is refused the other user's agent and the system job.
func checkDomainControl(t *testing.T, d *daemon, u *domainUser, mine, other string, port int) {
	t.Helper()
	bare := mine[strings.LastIndex(mine, "/")+1:]
	_, _, ans := d.ctl(t, u.cred, "list")
	if _, ok := jobOf(ans, mine); !ok {
		t.Errorf("uid %d: list lacks %s", u.uid, mine)
	}
	if _, ok := jobOf(ans, other); ok {
		t.Errorf("uid %d: list shows the other user's %s", u.uid, other)
	}
	if _, ok := jobOf(ans, "test.sys"); !ok {
		t.Errorf("uid %d: list lacks the system job", u.uid)
	}
	before := agentPid(t, port)
	for _, c := range [][]string{{"print", bare}, {"kickstart", "-k", bare}} {
		if code, out, _ := d.ctl(t, u.cred, c...); code != 0 {
			t.Errorf("uid %d %v: exit %d\n%s", u.uid, c, code, out)
		}
	}
	if after := agentPid(t, port); after == before {
		t.Errorf("uid %d: kickstart -k left pid %d", u.uid, after)
	}
	// A's domain has broken files of its own: disable and enable reload and
	// report them (exit 1), and only them.
	for _, c := range [][]string{{"disable", bare}, {"enable", mine}} {
		code, out, a := d.ctl(t, u.cred, c...)
		if !slices.Contains(a.Done, c[0]+"d "+mine) || (code != 0 && code != 1) {
			t.Errorf("uid %d %v: exit %d\n%s", u.uid, c, code, out)
		}
		for _, diag := range a.Diags {
			if !strings.HasPrefix(diag, u.home+"/") {
				t.Errorf("uid %d %v: a diagnostic about another's file: %s", u.uid, c, diag)
			}
		}
		if c[0] == "disable" && !eventually(5*time.Second, func() bool { return portClosed(port) }) {
			t.Errorf("uid %d: %s still accepts after disable", u.uid, mine)
		}
	}
	agentPid(t, port)
	for _, c := range [][]string{{"print", other}, {"kickstart", other}, {"disable", other}, {"stop", "test.sys"}, {"bootout", "test.sys"}} {
		code, _, a := d.ctl(t, u.cred, c...)
		if code != 4 || a.Error == "" {
			t.Errorf("uid %d %v: exit %d, error %q; want 4 and a refusal", u.uid, c, code, a.Error)
		}
	}
	if code, _, _ := d.ctl(t, u.cred, "bootstrap", fmt.Sprintf("user/%d", u.uid)); code != 4 {
		t.Errorf("uid %d bootstrap of its own domain: exit %d; want 4 (bringing a domain up is root's)", u.uid, code)
	}
}
