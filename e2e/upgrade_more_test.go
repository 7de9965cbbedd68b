package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUpgradeExecFails: a binary that passes its check and is gone by the
// exec leaves the old image serving: the command fails with the reason,
// every inherited descriptor is close-on-exec again (no fd is left
// behind), and the jobs answer as before.
func TestUpgradeExecFails(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "inetd", nowaitJob("up.inetd", port, []string{"/bin/echo", "hi"}))
	d := startSockd(t, dir)
	before, pid := daemonVersion(t, d)
	fds := func() int {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		return len(ents)
	}
	// A first connection makes what serving keeps (the spawner's spare
	// fds): the baseline is taken after it.
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), ""); got != "hi\n" {
		t.Fatalf("the job answers %q", got)
	}
	time.Sleep(200 * time.Millisecond) // its child is reaped
	fdsBefore := fds()
	script := filepath.Join(t.TempDir(), "sockd-vanishing")
	body := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = upgrade ]; then %q \"$@\"; rc=$?; rm -f \"$0\"; exit $rc; fi\nexec %q \"$@\"\n", sockdBin, sockdBin)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out := upgrade(d, script)
	if code == 0 || !strings.Contains(out, "no such file") {
		t.Errorf("upgrade to a binary gone by the exec: exit %d, %q; want a failure that says the file is gone", code, out)
	}
	if n := d.countLogs("upgrade failed: the running sockd serves on", ""); n != 1 {
		t.Errorf("%d 'upgrade failed: the running sockd serves on' lines, want 1", n)
	}
	if v, p := daemonVersion(t, d); v != before || p != pid {
		t.Errorf("after the failed exec: version %q pid %d, want %q pid %d", v, p, before, pid)
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), ""); got != "hi\n" {
		t.Errorf("after the failed exec the job answers %q", got)
	}
	// The echo child's pidfd goes when it is reaped, a moment after.
	eventually(5*time.Second, func() bool { return fds() <= fdsBefore })
	if n := fds(); n > fdsBefore {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		var held []string
		for _, e := range ents {
			target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
			held = append(held, e.Name()+"->"+target)
		}
		t.Errorf("sockd holds %d fds after the failed exec, %d before: %v", n, fdsBefore, held)
	}
	// The next upgrade, to a binary that stays, goes through.
	if code, out := upgrade(d, sockdBin); code != 0 {
		t.Errorf("the upgrade after the failed one: exit %d: %s", code, out)
	}
}

// TestUpgradeUserDomain: a user domain's agent, started as its user from
// the user's own job directory, keeps running across an upgrade (same pid,
// same user) and the domain serves on in the new image.
func TestUpgradeUserDomain(t *testing.T) {
	a := newDomainUser(t, "sdu")
	exe := copyFile(t, os.Args[0])
	if p, err := os.Executable(); err == nil {
		exe = copyFile(t, p)
	}
	port := freePort(t, "tcp")
	writeJob(t, a.jobsDir(t), "agent", activationJob("me.agent", exe, filepath.Join(a.home, "starts"), port))
	a.chown(t)
	ctlDir, state := publicTempDir(t), t.TempDir()
	d := startSockd(t, t.TempDir(), "--control", filepath.Join(ctlDir, "control.sock"), "--overrides", filepath.Join(state, "overrides.json"))
	domain := fmt.Sprintf("user/%d", a.uid)
	if code, out, _ := d.ctl(t, nil, "bootstrap", domain); code != 0 {
		t.Fatalf("bootstrap %s: exit %d\n%s", domain, code, out)
	}
	pid := agentPid(t, port)
	if code, out := upgrade(d, sockdBin); code != 0 {
		t.Fatalf("upgrade: exit %d: %s", code, out)
	}
	if got := agentPid(t, port); got != pid {
		t.Errorf("the domain's agent answers from pid %d after the upgrade, %d before: it was restarted", got, pid)
	}
	if uid := strings.Fields(procStatus(t, pid)["Uid"]); len(uid) == 0 || uid[0] != fmt.Sprint(a.uid) {
		t.Errorf("the agent runs as uid %v, want %d", uid, a.uid)
	}
	if _, out, _ := d.ctl(t, nil, "list"); !strings.Contains(out, domain+"/me.agent") {
		t.Errorf("list after the upgrade does not show %s/me.agent:\n%s", domain, out)
	}
}
