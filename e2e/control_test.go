package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
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
)

// ctlAnswer is the --json answer of a control command (the documented
// field names).
type ctlAnswer struct {
	Status string   `json:"status"`
	Error  string   `json:"error"`
	Done   []string `json:"done"`
	Diags  []string `json:"diags"`
	Jobs   []struct {
		Label           string `json:"label"`
		State           string `json:"state"`
		Pid             int    `json:"pid"`
		Mode            string `json:"mode"`
		Disabled        bool   `json:"disabled"`
		DisabledBy      string `json:"disabled_by"`
		Stale           bool   `json:"stale"`
		LastExit        string `json:"last_exit"`
		LastStartReason string `json:"last_start_reason"`
		Runs            uint64 `json:"runs"`
		Sockets         []struct {
			Address string `json:"address"`
		} `json:"sockets"`
	} `json:"jobs"`
}

// ctl runs a control command against d as cred (nil: as the test) and
// returns its exit status, output and parsed --json answer.
func (d *daemon) ctl(t *testing.T, cred *syscall.Credential, args ...string) (int, string, ctlAnswer) {
	t.Helper()
	argv := append([]string{args[0], "--control", d.control, "--json"}, args[1:]...)
	cmd := exec.Command(sockdBin, argv...)
	if cred != nil {
		cmd.Path = copyFile(t, sockdBin)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("sockd %v: %v", args, err)
	}
	var a ctlAnswer
	if jerr := json.Unmarshal(out.Bytes(), &a); jerr != nil {
		t.Fatalf("sockd %v: exit %d, not JSON (%v):\n%s\n%s", args, code, jerr, out.String(), errOut.String())
	}
	return code, out.String() + errOut.String(), a
}

// jobOf returns the entry of label in a list answer.
func jobOf(a ctlAnswer, label string) (int, bool) {
	for i, j := range a.Jobs {
		if j.Label == label {
			return i, true
		}
	}
	return -1, false
}

// cmdline is /proc/PID/cmdline with NULs as spaces ("" once gone).
func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

func alive(pid int) bool { return pid > 0 && cmdline(pid) != "" }

// controlJobs writes an inetd job, a handoff job and a KeepAlive job.
func controlJobs(t *testing.T, dir string) (inetdPort, handoffPort int, counter string) {
	inetdPort, handoffPort = freePort(t, "tcp"), freePort(t, "tcp")
	counter = filepath.Join(t.TempDir(), "starts")
	writeJob(t, dir, "inetd", nowaitJob("test.inetd", inetdPort, []string{"/bin/echo", "inetd"}))
	writeJob(t, dir, "handoff", map[string]any{
		"Label": "test.handoff", "ProgramArguments": helperArgv("activation", counter),
		"EnvironmentVariables": helperEnv(),
		"Sockets":              map[string]any{"Web": tcpSocket(handoffPort)},
	})
	writeJob(t, dir, "keep", map[string]any{
		"Label": "test.keep", "ProgramArguments": []string{"/bin/sleep", "300"},
		"KeepAlive": true, "ThrottleInterval": 1,
	})
	return inetdPort, handoffPort, counter
}

// waitPid waits until the job has a running pid other than not.
func waitPid(t *testing.T, d *daemon, label string, not int) int {
	t.Helper()
	pid := 0
	eventually(10*time.Second, func() bool {
		_, _, a := d.ctl(t, nil, "list")
		if i, ok := jobOf(a, label); ok && a.Jobs[i].Pid != 0 && a.Jobs[i].Pid != not && alive(a.Jobs[i].Pid) {
			pid = a.Jobs[i].Pid
			return true
		}
		return false
	})
	if pid == 0 {
		t.Fatalf("%s has no new running pid (not %d)", label, not)
	}
	return pid
}

// TestControlLifecycle drives an inetd, a handoff and a KeepAlive job with
// list, start, stop, kickstart -k, kill and blame, and checks the real
// effect: pids in /proc, connections served.
func TestControlLifecycle(t *testing.T) {
	dir := t.TempDir()
	inetdPort, handoffPort, _ := controlJobs(t, dir)
	d := startSockd(t, dir)

	code, out, a := d.ctl(t, nil, "list")
	if code != 0 || len(a.Jobs) != 3 {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	i, _ := jobOf(a, "test.inetd")
	if a.Jobs[i].State != "waiting" || a.Jobs[i].Mode != "inetd-nowait" || len(a.Jobs[i].Sockets) != 1 ||
		a.Jobs[i].Sockets[0].Address != fmt.Sprintf("127.0.0.1:%d", inetdPort) {
		t.Errorf("inetd job: %+v", a.Jobs[i])
	}
	keep := waitPid(t, d, "test.keep", 0)
	if !strings.HasPrefix(cmdline(keep), "/bin/sleep 300") {
		t.Errorf("test.keep pid %d is %q", keep, cmdline(keep))
	}

	// stop: the KeepAlive job comes back through the throttle.
	if code, out, _ := d.ctl(t, nil, "stop", "test.keep"); code != 0 {
		t.Fatalf("stop: %d %s", code, out)
	}
	if !eventually(5*time.Second, func() bool { return !alive(keep) }) {
		t.Fatalf("pid %d still runs after stop", keep)
	}
	keep2 := waitPid(t, d, "test.keep", keep)

	// kickstart -k: killed and started again, the answer names the new pid.
	code, out, a = d.ctl(t, nil, "kickstart", "-k", "test.keep")
	if code != 0 || alive(keep2) {
		t.Fatalf("kickstart -k: exit %d, old pid alive %t\n%s", code, alive(keep2), out)
	}
	keep3 := waitPid(t, d, "test.keep", keep2)
	if !strings.Contains(strings.Join(a.Done, "\n"), strconv.Itoa(keep3)) {
		t.Errorf("kickstart -k answer %q does not name pid %d", a.Done, keep3)
	}

	// start a handoff job without demand; it then serves; blame says who.
	if code, out, _ := d.ctl(t, nil, "start", "test.handoff"); code != 0 {
		t.Fatalf("start: %d %s", code, out)
	}
	hpid := waitPid(t, d, "test.handoff", 0)
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", handoffPort), ""); !strings.Contains(got, "pid="+strconv.Itoa(hpid)) {
		t.Errorf("handoff job answered %q, want pid %d", got, hpid)
	}
	_, _, a = d.ctl(t, nil, "blame", "test.handoff")
	if len(a.Jobs) != 1 || !strings.Contains(a.Jobs[0].LastStartReason, "start by uid 0") {
		t.Errorf("blame: %+v", a.Jobs)
	}
	if code, out, _ := d.ctl(t, nil, "kill", "TERM", "test.handoff"); code != 0 {
		t.Fatalf("kill: %d %s", code, out)
	}
	if !eventually(5*time.Second, func() bool { return !alive(hpid) }) {
		t.Errorf("pid %d survived kill TERM", hpid)
	}

	// start of an inetd job: nothing to start, and it says so.
	if code, out, _ := d.ctl(t, nil, "start", "test.inetd"); code != 1 || !strings.Contains(out, "per connection") {
		t.Errorf("start of an inetd job: exit %d\n%s", code, out)
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", inetdPort), ""); got != "inetd\n" {
		t.Errorf("inetd job: %q", got)
	}
	if code, _, _ := d.ctl(t, nil, "stop", "no.such.job"); code != 3 {
		t.Errorf("stop of an unknown job: exit %d, want 3", code)
	}
}

// TestControlDisable: disable closes the job's socket and survives a
// reload and a restart of sockd without touching the job file; enable
// brings it back; a corrupt overrides file is reported and sockd serves.
func TestControlDisable(t *testing.T) {
	dir := t.TempDir()
	inetdPort, _, _ := controlJobs(t, dir)
	ov := filepath.Join(t.TempDir(), "overrides.json")
	file := filepath.Join(dir, "inetd.plist")
	before, _ := os.ReadFile(file)
	addr := fmt.Sprintf("127.0.0.1:%d", inetdPort)
	refused := func() bool {
		_, err := net.DialTimeout("tcp4", addr, time.Second)
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	d := startSockd(t, dir, "--overrides", ov)
	if code, out, _ := d.ctl(t, nil, "disable", "test.inetd"); code != 0 {
		t.Fatalf("disable: %d %s", code, out)
	}
	if !refused() {
		t.Fatal("the disabled job still listens")
	}
	d.signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if !refused() {
		t.Fatal("the disabled job listens again after a reload")
	}
	_, _, a := d.ctl(t, nil, "list")
	if i, ok := jobOf(a, "test.inetd"); !ok || !a.Jobs[i].Disabled || a.Jobs[i].State != "disabled" || a.Jobs[i].DisabledBy != "override" {
		t.Errorf("list does not show the disabled job: %+v", a.Jobs)
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	d = startSockd(t, dir, "--overrides", ov)
	if !refused() {
		t.Fatal("the disabled job listens again after a restart")
	}
	if code, out, _ := d.ctl(t, nil, "enable", "test.inetd"); code != 0 {
		t.Fatalf("enable: %d %s", code, out)
	}
	if got := dialRead(t, "tcp4", addr, ""); got != "inetd\n" {
		t.Errorf("enabled job: %q", got)
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Error("disable or enable changed the job file")
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(ov, []byte(`{"version":1,"disabled":["test.inetd"`), 0o644)
	d = startSockd(t, dir, "--overrides", ov)
	if !d.waitLog("is corrupt", 5*time.Second) || !strings.Contains(d.logBuf.String(), ov) {
		t.Error("the corrupt overrides file is not reported by name")
	}
	if got := dialRead(t, "tcp4", addr, ""); got != "inetd\n" {
		t.Errorf("with a corrupt overrides file: %q", got)
	}
	if code, out, a := d.ctl(t, nil, "reload"); code != 0 || !strings.Contains(strings.Join(a.Diags, "\n"), "corrupt") {
		t.Errorf("reload with a corrupt overrides file: exit %d, want 0 and the file reported:\n%s", code, out)
	}
	if code, out, _ := d.ctl(t, nil, "disable", "no.such.job"); code == 0 || !strings.Contains(out, "corrupt") {
		t.Errorf("disable over a corrupt overrides file: exit %d\n%s", code, out)
	}
}

// TestControlBootstrap: a bad file changes nothing and the diagnostics come
// back; a good one serves at once while a client loop on another job sees
// no refusal; bootout unloads it.
func TestControlBootstrap(t *testing.T) {
	dir := t.TempDir()
	inetdPort, _, _ := controlJobs(t, dir)
	d := startSockd(t, dir)
	extra := t.TempDir()
	port := freePort(t, "tcp")
	bad := writeJob(t, extra, "bad", map[string]any{"Label": "test.bad", "ProgramArguments": []string{"/bin/echo"},
		"Sockets": map[string]any{"L": map[string]any{"SockServiceName": "99999"}}})
	good := writeJob(t, extra, "good", nowaitJob("test.good", port, []string{"/bin/echo", "good"}))

	code, out, a := d.ctl(t, nil, "bootstrap", bad)
	if code != 1 || len(a.Diags) == 0 || !strings.Contains(a.Diags[0], "bad.plist") {
		t.Fatalf("bootstrap of a bad file: exit %d\n%s", code, out)
	}
	_, _, a = d.ctl(t, nil, "list")
	if _, ok := jobOf(a, "test.bad"); ok || len(a.Jobs) != 3 {
		t.Fatalf("the bad bootstrap changed the job set: %+v", a.Jobs)
	}

	stop := make(chan struct{})
	fails := make(chan string, 1)
	go func() {
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				close(fails)
				return
			default:
			}
			c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", inetdPort), 5*time.Second)
			if err != nil {
				fails <- err.Error()
				close(fails)
				return
			}
			c.Close()
		}
		close(fails)
	}()
	code, out, _ = d.ctl(t, nil, "bootstrap", good)
	close(stop)
	if f := <-fails; f != "" {
		t.Errorf("a client of another job was refused during bootstrap: %s", f)
	}
	if code != 0 {
		t.Fatalf("bootstrap: %d %s", code, out)
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), ""); got != "good\n" {
		t.Errorf("bootstrapped job: %q", got)
	}
	if code, out, _ := d.ctl(t, nil, "bootout", "test.good"); code != 0 {
		t.Fatalf("bootout: %d %s", code, out)
	}
	if _, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("booted-out job still listens: %v", err)
	}
}

// TestControlReloadStale: reload reports a broken file and exits 1; the
// job keeps serving and list marks it stale; fixed, it is current again.
func TestControlReloadStale(t *testing.T) {
	dir := t.TempDir()
	inetdPort, _, _ := controlJobs(t, dir)
	d := startSockd(t, dir)
	file := filepath.Join(dir, "inetd.plist")
	good, _ := os.ReadFile(file)
	os.WriteFile(file, good[:len(good)/2], 0o644)
	code, out, a := d.ctl(t, nil, "reload")
	if code != 1 || len(a.Diags) == 0 || !strings.Contains(strings.Join(a.Diags, "\n"), "inetd.plist") {
		t.Fatalf("reload with a broken file: exit %d\n%s", code, out)
	}
	_, _, a = d.ctl(t, nil, "list")
	if i, ok := jobOf(a, "test.inetd"); !ok || !a.Jobs[i].Stale {
		t.Errorf("list does not mark the job stale: %+v", a.Jobs)
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", inetdPort), ""); got != "inetd\n" {
		t.Errorf("the stale job: %q", got)
	}
	os.WriteFile(file, good, 0o644)
	if code, out, _ := d.ctl(t, nil, "reload"); code != 0 {
		t.Fatalf("reload: %d %s", code, out)
	}
	_, _, a = d.ctl(t, nil, "list")
	if i, _ := jobOf(a, "test.inetd"); a.Jobs[i].Stale {
		t.Error("the job is still stale after its file was fixed")
	}
}

// TestControlAuthorisation: an unprivileged user reads the root daemon
// (list, print, blame) and is refused every change, with exit status 4
// and a message, and nothing changes; the user's own sockd obeys the user.
func TestControlAuthorisation(t *testing.T) {
	_, uid, gid := testUser(t, "sockdctl")
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}

	dir := t.TempDir()
	controlJobs(t, dir)
	// As /run/sockd: a directory every user may enter.
	d := startSockd(t, dir, "--control", filepath.Join(publicTempDir(t), "control.sock"))
	keep := waitPid(t, d, "test.keep", 0)
	for _, read := range [][]string{{"list"}, {"blame", "test.keep"}} {
		if code, out, _ := d.ctl(t, cred, read...); code != 0 {
			t.Errorf("uid %d %v: exit %d\n%s", uid, read, code, out)
		}
	}
	extra := publicTempDir(t)
	good := writeJob(t, extra, "good", nowaitJob("test.good", freePort(t, "tcp"), []string{"/bin/echo"}))
	for _, change := range [][]string{{"stop", "test.keep"}, {"kickstart", "-k", "test.keep"}, {"disable", "test.keep"}, {"bootstrap", good}} {
		code, _, a := d.ctl(t, cred, change...)
		if code != 4 || !strings.Contains(a.Error, change[0]+" needs root: you are uid "+strconv.Itoa(uid)) {
			t.Errorf("uid %d %v: exit %d, error %q; want 4 and a refusal", uid, change, code, a.Error)
		}
	}
	if got := waitPid(t, d, "test.keep", -1); got != keep {
		t.Errorf("a refused request changed test.keep: pid %d, was %d", got, keep)
	}
	_, _, a := d.ctl(t, nil, "list")
	if len(a.Jobs) != 3 {
		t.Errorf("a refused bootstrap changed the job set: %d jobs", len(a.Jobs))
	}
	if !strings.Contains(d.logBuf.String(), "control request refused") {
		t.Error("refusals are not logged")
	}

	// The user's own sockd obeys the user.
	udir := publicTempDir(t)
	writeJob(t, udir, "keep", map[string]any{
		"Label": "user.keep", "ProgramArguments": []string{"/bin/sleep", "300"}, "KeepAlive": true,
	})
	os.Chown(filepath.Join(udir, "keep.plist"), uid, gid)
	ud := startSockdAs(t, cred, []string{"HOME=/nonexistent", "XDG_RUNTIME_DIR="}, udir)
	upid := waitPid(t, ud, "user.keep", 0)
	if code, out, _ := ud.ctl(t, cred, "kickstart", "-k", "user.keep"); code != 0 {
		t.Fatalf("the user's kickstart on the user's sockd: exit %d\n%s", code, out)
	}
	if alive(upid) {
		t.Error("the user's kickstart -k left the old instance")
	}
}

// TestProxyCountsAcrossRedefinition: after a reload that changes a proxy
// job (its server is replaced), list and the SIGUSR1 line still count
// every connection since the job was loaded (one counter used to restart
// and the other not).
func TestProxyCountsAcrossRedefinition(t *testing.T) {
	needProgram(t, "socat")
	dir := t.TempDir()
	pub, priv := freePort(t, "tcp"), freePort(t, "tcp")
	proxyJob := func(ready int) map[string]any {
		return map[string]any{
			"Label": "test.pxcount",
			"ProgramArguments": []string{"socat",
				fmt.Sprintf("TCP4-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", priv), "SYSTEM:'echo px'"},
			"ExitTimeOut": 2,
			"Sockets":     map[string]any{"Listeners": tcpSocket(pub)},
			"SockdProxy":  map[string]any{"Backend": fmt.Sprintf("127.0.0.1:%d", priv), "ReadyTimeout": ready},
		}
	}
	writeJob(t, dir, "job", proxyJob(10))
	d := startSockd(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", pub)
	for range 3 {
		if got := dialRead(t, "tcp4", addr, ""); got != "px\n" {
			t.Fatalf("through the proxy: %q", got)
		}
	}
	writeJob(t, dir, "job", proxyJob(11))
	if code, out, _ := d.ctl(t, nil, "reload"); code != 0 {
		t.Fatalf("reload: %d %s", code, out)
	}
	if !eventually(10*time.Second, func() bool { return dialRead(t, "tcp4", addr, "") == "px\n" }) {
		t.Fatal("not served after the reload")
	}
	dialRead(t, "tcp4", addr, "")
	code, out, _ := d.ctl(t, nil, "print", "test.pxcount")
	if code != 0 || !strings.Contains(out, `"accepted": 5`) || !strings.Contains(out, `"total": 5`) {
		t.Errorf("print after the redefinition: exit %d, want accepted and total 5:\n%s", code, out)
	}
	d.signal(syscall.SIGUSR1)
	stats := d.jobStats("test.pxcount", nil)
	if stats == nil || stats["accepted"].(float64) != 5 {
		t.Errorf("SIGUSR1 after the redefinition: %v, want accepted 5", stats)
	}
}

// TestStandardPathNotOpened: a StandardOutPath that cannot be opened is
// said in the log at the start (the job used to run with sockd's log as
// its output without a word).
func TestStandardPathNotOpened(t *testing.T) {
	dir := t.TempDir()
	writeJob(t, dir, "out", map[string]any{
		"Label": "test.out", "ProgramArguments": []string{"/bin/echo", "hello"}, "RunAtLoad": true,
		"StandardOutPath": filepath.Join(t.TempDir(), "missing", "out.log"),
	})
	d := startSockd(t, dir)
	if !d.waitLog("a standard path could not be opened", 10*time.Second) {
		t.Error("no warning that StandardOutPath could not be opened")
	}
}

// TestControlStartThrottled: a start the throttle delays happens by itself
// when ThrottleInterval allows (it used to be announced and never made).
func TestControlStartThrottled(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "starts")
	writeJob(t, dir, "thr", map[string]any{
		"Label": "test.thr", "ProgramArguments": helperArgv("activation", counter),
		"EnvironmentVariables": helperEnv(), "ThrottleInterval": 2,
		"Sockets": map[string]any{"Web": tcpSocket(freePort(t, "tcp"))},
	})
	d := startSockd(t, dir)
	if code, out, _ := d.ctl(t, nil, "start", "test.thr"); code != 0 {
		t.Fatalf("start: %d %s", code, out)
	}
	first := waitPid(t, d, "test.thr", 0)
	d.ctl(t, nil, "stop", "test.thr")
	if !eventually(5*time.Second, func() bool { return !alive(first) }) {
		t.Fatal("stop did not end the job")
	}
	code, out, a := d.ctl(t, nil, "start", "test.thr")
	if code != 0 || !strings.Contains(strings.Join(a.Done, " "), "throttle") {
		t.Fatalf("a start within ThrottleInterval: exit %d\n%s", code, out)
	}
	waitPid(t, d, "test.thr", first)
}

// TestControlBootoutStubborn: a job booted out whose process ignores
// SIGTERM (ExitTimeOut 0: never killed) stays listed as unloaded with its
// process, and kill still reaches it (it used to vanish from list).
func TestControlBootoutStubborn(t *testing.T) {
	dir := t.TempDir()
	writeJob(t, dir, "stub", map[string]any{
		"Label": "test.stub", "ProgramArguments": []string{"/bin/sh", "-c", `trap "" TERM; while :; do sleep 1; done`},
		"RunAtLoad": true, "ExitTimeOut": 0,
	})
	d := startSockd(t, dir)
	pid := waitPid(t, d, "test.stub", 0)
	if code, out, _ := d.ctl(t, nil, "bootout", "test.stub"); code != 0 {
		t.Fatalf("bootout: %d %s", code, out)
	}
	_, _, a := d.ctl(t, nil, "list")
	i, ok := jobOf(a, "test.stub")
	if !ok || !strings.HasPrefix(a.Jobs[i].State, "unloaded") || a.Jobs[i].Pid != pid {
		t.Fatalf("list after bootout of a job whose process stays: %+v", a.Jobs)
	}
	if code, out, _ := d.ctl(t, nil, "kill", "KILL", "test.stub"); code != 0 {
		t.Fatalf("kill of the unloaded job: %d %s", code, out)
	}
	if !eventually(5*time.Second, func() bool { return !alive(pid) }) {
		t.Fatal("the process survived kill KILL")
	}
	if !eventually(5*time.Second, func() bool {
		_, _, a := d.ctl(t, nil, "list")
		_, ok := jobOf(a, "test.stub")
		return !ok
	}) {
		t.Error("the job is still listed once its process is gone")
	}
}

// TestControlStartProxy: sockd start brings a proxy job's backend up now,
// before any client, and waits until it is ready; the first client is
// served by that process. kickstart -k replaces it.
func TestControlStartProxy(t *testing.T) {
	needProgram(t, "socat")
	dir := t.TempDir()
	pub, priv := freePort(t, "tcp"), freePort(t, "tcp")
	writeJob(t, dir, "job", map[string]any{
		"Label": "test.pxstart",
		"ProgramArguments": []string{"socat",
			fmt.Sprintf("TCP4-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", priv), "SYSTEM:'echo px'"},
		"ExitTimeOut": 2,
		"Sockets":     map[string]any{"Listeners": tcpSocket(pub)},
		"SockdProxy":  map[string]any{"Backend": fmt.Sprintf("127.0.0.1:%d", priv)},
	})
	d := startSockd(t, dir)
	code, out, a := d.ctl(t, nil, "start", "test.pxstart")
	if code != 0 || len(a.Done) < 2 || !strings.Contains(a.Done[1], "started test.pxstart (pid") {
		t.Fatalf("start of a proxy job: exit %d\n%s", code, out)
	}
	pid := waitPid(t, d, "test.pxstart", 0)
	if c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", priv), 2*time.Second); err != nil {
		t.Fatalf("the backend does not listen after sockd start answered: %v", err)
	} else {
		c.Close()
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", pub), ""); got != "px\n" {
		t.Fatalf("through the proxy: %q", got)
	}
	_, _, a = d.ctl(t, nil, "list")
	if i, ok := jobOf(a, "test.pxstart"); !ok || a.Jobs[i].Pid != pid || a.Jobs[i].Runs != 1 {
		t.Fatalf("the client did not reuse the started backend: %+v", a.Jobs)
	} else if why := a.Jobs[i].LastStartReason; !strings.HasPrefix(why, "start by uid 0") {
		t.Errorf("blame after sockd start: %q", why)
	}
	code, out, _ = d.ctl(t, nil, "kickstart", "-k", "test.pxstart")
	if code != 0 {
		t.Fatalf("kickstart -k of a proxy job: exit %d\n%s", code, out)
	}
	npid := waitPid(t, d, "test.pxstart", pid)
	if alive(pid) || npid == pid {
		t.Errorf("kickstart -k: old backend %d alive %v, new %d", pid, alive(pid), npid)
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", pub), ""); got != "px\n" {
		t.Fatalf("through the proxy after kickstart -k: %q", got)
	}
}

// TestSecondSockdOnTakenControlSocket: a second sockd given the control
// socket a running one serves exits at once with an error that says so,
// before it binds anything; the first goes on serving (it used to keep
// running, without control commands, beside the first).
func TestSecondSockdOnTakenControlSocket(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "inetd", nowaitJob("test.first", port, []string{"/bin/echo", "first"}))
	d := startSockd(t, dir)

	dir2 := t.TempDir()
	port2 := freePort(t, "tcp")
	writeJob(t, dir2, "inetd", nowaitJob("test.second", port2, []string{"/bin/echo", "second"}))
	cmd := exec.Command(sockdBin, "serve", "--jobs", dir2, "--control", d.control,
		"--overrides", filepath.Join(t.TempDir(), "overrides.json"))
	done := make(chan error, 1)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("the second sockd exited 0:\n%s", out.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the second sockd kept running on a taken control socket:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "another sockd serves this control socket") {
		t.Errorf("the second sockd's error does not say why:\n%s", out.String())
	}
	if c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port2), time.Second); err == nil {
		c.Close()
		t.Error("the second sockd's job port is still open")
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), ""); got != "first\n" {
		t.Errorf("the first sockd: %q", got)
	}
	if code, _, a := d.ctl(t, nil, "list"); code != 0 {
		t.Errorf("the first sockd's control socket: exit %d", code)
	} else if _, ok := jobOf(a, "test.first"); !ok {
		t.Errorf("the first sockd's list lacks its job: %+v", a.Jobs)
	}
}

// TestControlEnableFileDisabled: a job its file disables is listed as
// disabled by the file, and sockd enable says that it stays off (it used
// to answer "already enabled").
func TestControlEnableFileDisabled(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	j := nowaitJob("test.off", port, []string{"/bin/echo", "off"})
	j["Disabled"] = true
	writeJob(t, dir, "off", j)
	d := startSockd(t, dir)
	_, _, a := d.ctl(t, nil, "list")
	if i, ok := jobOf(a, "test.off"); !ok || a.Jobs[i].DisabledBy != "file" {
		t.Errorf("list: %+v, want test.off disabled by the file", a.Jobs)
	}
	code, out, a := d.ctl(t, nil, "enable", "test.off")
	if code != 0 || !strings.Contains(strings.Join(a.Done, "\n"), "stays off: its job file says Disabled") {
		t.Errorf("enable of a job its file disables: exit %d\n%s", code, out)
	}
	if _, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		t.Error("the job file's Disabled key was overridden")
	}
}

// TestProxyStartingState: a proxy backend that runs and is not ready yet
// is listed as starting, not running.
func TestProxyStartingState(t *testing.T) {
	dir := t.TempDir()
	pub, priv := freePort(t, "tcp"), freePort(t, "tcp")
	writeJob(t, dir, "job", map[string]any{
		"Label":            "test.pxslow",
		"ProgramArguments": []string{"/bin/sleep", "30"}, // never listens
		"ExitTimeOut":      1,
		"Sockets":          map[string]any{"Listeners": tcpSocket(pub)},
		"SockdProxy":       map[string]any{"Backend": fmt.Sprintf("127.0.0.1:%d", priv), "ReadyTimeout": 20},
	})
	d := startSockd(t, dir)
	c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", pub), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	state := ""
	if !eventually(10*time.Second, func() bool {
		_, _, a := d.ctl(t, nil, "list")
		if i, ok := jobOf(a, "test.pxslow"); ok {
			state = a.Jobs[i].State
		}
		return state == "starting"
	}) {
		t.Errorf("a backend that is not ready: state %q, want starting", state)
	}
}

// TestBootstrapConflictBlamesNewFile: a bootstrapped file that claims the
// address of a loaded job is the one refused and named (the diagnostic
// used to name the loaded job's file, as if it were the one dropped).
func TestBootstrapConflictBlamesNewFile(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "zz-held", nowaitJob("test.held", port, []string{"/bin/echo", "held"}))
	d := startSockd(t, dir)
	clash := writeJob(t, t.TempDir(), "aa-clash", nowaitJob("test.clash", port, []string{"/bin/echo", "clash"}))
	code, out, a := d.ctl(t, nil, "bootstrap", clash)
	if code != 1 {
		t.Fatalf("bootstrap of a clashing file: exit %d\n%s", code, out)
	}
	diags := strings.Join(a.Diags, "\n")
	if !strings.Contains(diags, "aa-clash.plist") || strings.Contains(diags, "zz-held.plist: ") {
		t.Errorf("the diagnostic does not name the new file as the one refused:\n%s", diags)
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), ""); got != "held\n" {
		t.Errorf("the loaded job after the refused bootstrap: %q", got)
	}
}
