package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// buildVersion builds sockd as version v into dir.
func buildVersion(t *testing.T, dir, v string) string {
	t.Helper()
	out := filepath.Join(dir, "sockd-"+v)
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+v, "-o", out, "../cmd/sockd")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", v, err, b)
	}
	return out
}

// daemonVersion asks d's control socket for its version.
func daemonVersion(t *testing.T, d *daemon) (version string, pid int) {
	t.Helper()
	out, err := exec.Command(sockdBin, "version", "--daemon", "--control", d.control, "--json").Output()
	if err != nil {
		t.Fatalf("sockd version --daemon: %v\n%s", err, out)
	}
	var a struct {
		Daemon struct {
			Version string `json:"version"`
			Pid     int    `json:"pid"`
		} `json:"daemon"`
	}
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("sockd version --daemon: %v\n%s", err, out)
	}
	return a.Daemon.Version, a.Daemon.Pid
}

// upgrade runs sockd upgrade --binary bin against d.
func upgrade(d *daemon, bin string) (int, string) {
	cmd := exec.Command(sockdBin, "upgrade", "--control", d.control, "--binary", bin)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		return -1, err.Error()
	}
	return 0, string(out)
}

func threads(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// upgradeJobs writes the three jobs of TestUpgradeInPlace: an inetd job,
// a handoff service (echo-lines) and a proxy job whose backend streams.
func upgradeJobs(t *testing.T, dir string) (inetdPort, handPort, pxPort int, handPid, counts string) {
	inetdPort, handPort, pxPort = freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp")
	bePort := freePort(t, "tcp")
	handPid, counts = filepath.Join(dir, "hand.pid"), filepath.Join(dir, "bulk.count")
	writeJob(t, dir, "inetd", nowaitJob("up.inetd", inetdPort, []string{"/bin/echo", "hi"}))
	writeJob(t, dir, "hand", map[string]any{"Label": "up.hand", "ProgramArguments": helperArgv("echo-lines", handPid),
		"EnvironmentVariables": helperEnv(), "Sockets": map[string]any{"L": tcpSocket(handPort)}})
	writeJob(t, dir, "px", map[string]any{"Label": "up.px",
		"ProgramArguments":     helperArgv("bulk-backend", strconv.Itoa(bePort), counts),
		"EnvironmentVariables": helperEnv(),
		"SockdProxy":           map[string]any{"Backend": fmt.Sprintf("127.0.0.1:%d", bePort), "ReadyTimeout": 10},
		"SockdLimits":          map[string]any{"MaxPerSource": 1}, // the stream is the client's one
		"Sockets":              map[string]any{"L": tcpSocket(pxPort)}})
	return
}

// secondProxied opens one more connection to the proxy job and returns how
// many bytes it got before its end (0: refused by MaxPerSource).
func secondProxied(port int) int64 {
	c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		return 0
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	n, _ := io.Copy(io.Discard, io.LimitReader(c, 1<<20))
	return n
}

// loadResult counts what a load goroutine saw go wrong.
type loadResult struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   error
}

func (r *loadResult) fail(err error) {
	r.failed.Add(1)
	r.mu.Lock()
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.mu.Unlock()
}

// inetdLoop connects to the inetd job back to back until stop.
func inetdLoop(port int, stop <-chan struct{}, r *loadResult) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for {
		select {
		case <-stop:
			return
		default:
		}
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			r.fail(err)
			continue
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(b) != "hi\n" {
			r.fail(fmt.Errorf("inetd answer %q: %v", b, err))
			continue
		}
		r.ok.Add(1)
	}
}

// keptAlive sends a line every 20 ms on one connection to the handoff
// service and checks its echo, until stop.
func keptAlive(c net.Conn, stop <-chan struct{}, r *loadResult) {
	br := bufio.NewReader(c)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		line := fmt.Sprintf("line %d\n", i)
		if _, err := io.WriteString(c, line); err != nil {
			r.fail(err)
			return
		}
		got, err := br.ReadString('\n')
		if err != nil || got != line {
			r.fail(fmt.Errorf("kept-alive echo %q for %q: %v", got, line, err))
			return
		}
		r.ok.Add(1)
	}
}

// bulkRead reads the proxied stream, checking every byte, until EOF.
func bulkRead(c *net.TCPConn, total *int64, r *loadResult) {
	buf := make([]byte, 256<<10)
	var off int64
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		for i := 0; i < n; i++ {
			if buf[i] != bulkByte(off+int64(i)) {
				r.fail(fmt.Errorf("bulk byte %d is %d, want %d", off+int64(i), buf[i], bulkByte(off+int64(i))))
				*total = off
				return
			}
		}
		off += int64(n)
		if err != nil {
			if err != io.EOF {
				r.fail(fmt.Errorf("bulk read after %d bytes: %w", off, err))
			}
			*total = off
			return
		}
	}
}

// TestUpgradeInPlace: under continuous load (an inetd client loop, a
// handoff service with a kept-alive connection, a proxied bulk transfer
// in flight), 20 upgrades in a row alternating two builds: no failed
// connection, the handoff service's pid and sockd's unchanged, the bulk
// transfer byte-exact, fds and threads back to the baseline, no zombie; a
// child exiting afterwards is reaped and logged by the new image, and the
// daemon reports the new version.
func TestUpgradeInPlace(t *testing.T) {
	bins := t.TempDir()
	a, b := buildVersion(t, bins, "e2e-a"), buildVersion(t, bins, "e2e-b")
	dir := t.TempDir()
	inetdPort, handPort, pxPort, handPidFile, counts := upgradeJobs(t, dir)
	d := startSockd(t, dir)
	pid := d.pid()

	// Warm up every job, then take the baseline.
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", inetdPort), ""); got != "hi\n" {
		t.Fatalf("inetd job: %q", got)
	}
	hc, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", handPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	var handPid string
	eventually(10*time.Second, func() bool { b, _ := os.ReadFile(handPidFile); handPid = string(b); return handPid != "" })
	pc, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", pxPort), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	time.Sleep(300 * time.Millisecond) // the bulk stream flows
	baseFds, baseThreads := fdCount(t, pid), threads(t, pid)

	stop := make(chan struct{})
	var inetdR, keptR, bulkR loadResult
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); inetdLoop(inetdPort, stop, &inetdR) }()
	go func() { defer wg.Done(); keptAlive(hc, stop, &keptR) }()
	var received int64
	go func() { defer wg.Done(); bulkRead(pc.(*net.TCPConn), &received, &bulkR) }()

	for i := 0; i < 20; i++ {
		bin, want := a, "e2e-a"
		if i%2 == 0 {
			bin, want = b, "e2e-b"
		}
		if code, out := upgrade(d, bin); code != 0 || !strings.Contains(out, "-> "+want) {
			t.Fatalf("upgrade %d to %s: exit %d: %s", i+1, want, code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := secondProxied(pxPort); n != 0 {
		t.Errorf("a second connection to the proxy job (MaxPerSource 1) got %d bytes beside the handed stream: adopted connections must count", n)
	}
	close(stop)
	_ = pc.(*net.TCPConn).CloseWrite() // the backend stops streaming
	wg.Wait()

	for name, r := range map[string]*loadResult{"inetd loop": &inetdR, "kept-alive connection": &keptR, "bulk transfer": &bulkR} {
		if r.failed.Load() > 0 {
			t.Errorf("%s: %d failures (ok %d), first: %v", name, r.failed.Load(), r.ok.Load(), r.firstErr)
		}
	}
	if inetdR.ok.Load() < 100 || keptR.ok.Load() < 20 {
		t.Errorf("too little load ran: %d inetd connections, %d kept-alive echoes", inetdR.ok.Load(), keptR.ok.Load())
	}
	var sent string
	eventually(10*time.Second, func() bool { b, _ := os.ReadFile(counts); sent = strings.TrimSpace(string(b)); return sent != "" })
	if sent != strconv.FormatInt(received, 10) || received < 1<<20 {
		t.Errorf("bulk transfer: the backend sent %q bytes, the client received %d", sent, received)
	}
	if v, p := daemonVersion(t, d); v != "e2e-a" || p != pid {
		t.Errorf("after 20 upgrades: version %q pid %d, want e2e-a pid %d", v, p, pid)
	}
	if n := d.countLogs("upgraded in place", ""); n != 20 {
		t.Errorf("%d 'upgraded in place' lines, want 20", n)
	}
	_, _, list := d.ctl(t, nil, "list")
	if i, ok := jobOf(list, "up.hand"); !ok || strconv.Itoa(list.Jobs[i].Pid) != handPid {
		t.Errorf("handoff service: pid %v in list, %s at the start", list.Jobs, handPid)
	}
	// Threads: Go's runtime keeps the idle threads it made (each image
	// grows its own after the exec), so the count is allowed to wander by
	// two; a thread or fd kept per upgrade would show 20 more.
	if !eventually(10*time.Second, func() bool {
		return fdCount(t, pid) <= baseFds && threads(t, pid) <= baseThreads+2 && len(zombies(pid)) == 0
	}) {
		t.Errorf("after the upgrades: %d fds (baseline %d), %d threads (baseline %d), zombies %v",
			fdCount(t, pid), baseFds, threads(t, pid), baseThreads, zombies(pid))
	}

	// A child that exits now is reaped and logged by the new image.
	hp, _ := strconv.Atoi(handPid)
	if err := syscall.Kill(hp, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !eventually(10*time.Second, func() bool { return exitLogged(d, "up.hand", hp) }) {
		t.Errorf("the handoff service's exit (pid %d) was not logged after the upgrades", hp)
	}
	if z := zombies(pid); len(z) > 0 {
		t.Errorf("zombies %v", z)
	}
}

// exitLogged reports an "exited" line of label's pid with its status.
func exitLogged(d *daemon, label string, pid int) bool {
	for _, l := range d.logs() {
		if l["job"] == label && l["msg"] == "exited" && l["pid"] == float64(pid) && l["status"] != nil {
			return true
		}
	}
	return false
}

// TestUpgradeRefused: a binary that fails its check (exits 1) and one that
// is not executable are refused, with why; the old image serves on.
func TestUpgradeRefused(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "inetd", nowaitJob("up.inetd", port, []string{"/bin/echo", "hi"}))
	d := startSockd(t, dir)
	before, pid := daemonVersion(t, d)

	bins := t.TempDir()
	failing := filepath.Join(bins, "fails")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\necho broken build >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(bins, "not-executable")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for bin, want := range map[string]string{failing: "broken build", plain: "not an executable file"} {
		code, out := upgrade(d, bin)
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("upgrade to %s: exit %d, %q; want exit 1 saying %q", filepath.Base(bin), code, out, want)
		}
		if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), ""); got != "hi\n" {
			t.Errorf("after the refused upgrade to %s the job answers %q", filepath.Base(bin), got)
		}
	}
	if v, p := daemonVersion(t, d); v != before || p != pid {
		t.Errorf("after refused upgrades: version %q pid %d, want %q pid %d", v, p, before, pid)
	}
	if n := d.countLogs("upgrade refused", ""); n != 2 {
		t.Errorf("%d 'upgrade refused' lines, want 2 (the failing check, the file that cannot run)", n)
	}
	if bytes.Contains([]byte(d.logBuf.String()), []byte("upgraded in place")) {
		t.Error("a refused upgrade logged 'upgraded in place'")
	}
}

// TestUpgradeStateUnreadable: a sockd handed a state it cannot read (here
// garbage on the fd $SOCKD_HANDOVER_FD names) starts afresh: it says so,
// closes what it inherited, and serves its jobs.
func TestUpgradeStateUnreadable(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "inetd", nowaitJob("up.inetd", port, []string{"/bin/echo", "hi"}))
	garbage := filepath.Join(t.TempDir(), "state")
	if err := os.WriteFile(garbage, []byte("sockd-handover 1 x\nnot gob at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	prefix := []string{"/bin/sh", "-c", `exec 7<"$GARBAGE"; exec "$@"`, "sh"}
	d := startSockdWith(t, prefix, nil, []string{"GARBAGE=" + garbage, "SOCKD_HANDOVER_FD=7"}, dir)
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), ""); got != "hi\n" {
		t.Errorf("the job answers %q after a fresh start", got)
	}
	found := false
	for _, l := range d.logs() {
		if strings.Contains(fmt.Sprint(l["msg"]), "the handed state is not readable: starting afresh") && l["error"] != nil {
			found = true
		}
	}
	if !found {
		t.Error("no 'the handed state is not readable: starting afresh' line with the error")
	}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.pid()))
	for _, e := range ents {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", d.pid(), e.Name())); target == garbage {
			t.Errorf("sockd still holds the inherited fd %s (%s)", e.Name(), target)
		}
	}
}

// TestUpgradeStopsHandedStubborn: handed main processes that the new
// image's first load gives no job to (the job's file removed) or whose job
// now serves another way are stopped, and those that ignore SIGTERM are
// killed after their job's ExitTimeOut (the removed job's comes with the
// handed state), reaped and logged: an upgrade leaves no process behind.
// The files change between the check and the exec, as they may on a live
// machine: the new binary is a script that rewrites them, then execs sockd.
func TestUpgradeStopsHandedStubborn(t *testing.T) {
	dir := t.TempDir()
	pids := t.TempDir()
	stubborn := func(label string) map[string]any {
		return map[string]any{
			"Label": label,
			"ProgramArguments": []string{"/bin/sh", "-c", `trap "" TERM; echo $$ >"$0"; while :; do sleep 0.2; done`,
				filepath.Join(pids, label)},
			"KeepAlive":   true,
			"ExitTimeOut": 1,
		}
	}
	removed, changed := "up.removed", "up.changed"
	removedFile := writeJob(t, dir, "removed", stubborn(removed))
	writeJob(t, dir, "changed", stubborn(changed))
	d := startSockd(t, dir)
	pidOf := map[string]int{}
	for _, label := range []string{removed, changed} {
		for deadline := time.Now().Add(10 * time.Second); pidOf[label] == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			b, _ := os.ReadFile(filepath.Join(pids, label))
			pidOf[label], _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if pidOf[label] == 0 {
			t.Fatalf("%s never wrote its pid", label)
		}
	}

	port := freePort(t, "tcp")
	next := nowaitJob(changed, port, []string{"/bin/echo", "hi"})
	next["ExitTimeOut"] = 1
	staged := filepath.Join(t.TempDir(), "changed.plist")
	if err := os.Rename(writeJob(t, t.TempDir(), "changed", next), staged); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "sockd-next")
	body := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = serve ]; then rm -f %q; mv %q %q; fi\nexec %q \"$@\"\n",
		removedFile, staged, filepath.Join(dir, "changed.plist"), sockdBin)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if code, out := upgrade(d, script); code != 0 {
		t.Fatalf("upgrade: exit %d: %s", code, out)
	}
	for _, label := range []string{removed, changed} {
		pid := pidOf[label]
		for deadline := time.Now().Add(10 * time.Second); !exitLogged(d, label, pid) && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		if !exitLogged(d, label, pid) {
			t.Errorf("%s: the handed process %d that ignores SIGTERM never exited (or its exit was not logged)", label, pid)
			continue
		}
		if n := d.countLogs("exit timeout elapsed; killing", label); n != 1 {
			t.Errorf("%s: %d 'exit timeout elapsed; killing' lines, want 1", label, n)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s: process %d still exists after its logged exit: %v", label, pid, err)
		}
	}
	if took := time.Since(t0); took < time.Second {
		t.Errorf("they ended %v after the upgrade, before their ExitTimeOut of 1s", took)
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), ""); got != "hi\n" {
		t.Errorf("the changed job's new definition answers %q", got)
	}
}

// TestUpgradeRecordsAdoptedChild: a per-connection child that runs across
// an upgrade gets its connection record at its end from the new image,
// with the client's address and port and the local address, as if no
// upgrade had happened.
func TestUpgradeRecordsAdoptedChild(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	label := "up.rec"
	j := nowaitJob(label, port, []string{"/bin/sh", "-c", "read x; echo got $x; exit 3"})
	j["SockdLogConnections"] = true
	writeJob(t, dir, "rec", j)
	d := startSockd(t, dir)
	c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := c.LocalAddr().String()
	time.Sleep(300 * time.Millisecond) // the child starts and waits for its line
	if code, out := upgrade(d, sockdBin); code != 0 {
		t.Fatalf("upgrade: exit %d: %s", code, out)
	}
	if _, err := fmt.Fprintln(c, "x"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(c); string(b) != "got x\n" {
		t.Fatalf("the adopted child answered %q", b)
	}
	recs := d.waitRecords(t, label, "end", 1)
	if len(recs) != 1 {
		t.Fatalf("%d records for the connection that spanned the upgrade, want 1", len(recs))
	}
	r := recs[0]
	if r["peer"] != client || r["local"] != fmt.Sprintf("127.0.0.1:%d", port) || r["exit_code"] != float64(3) || r["duration"] == nil {
		t.Errorf("record %v: want peer %s, local 127.0.0.1:%d, exit_code 3 and a duration", r, client, port)
	}
}
