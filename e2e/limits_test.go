package e2e

import (
	"bufio"
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

// rssKiB is the resident set size of a process.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}

// TestFlood: 10,000 connections in bursts at an inetd job limited to 50
// children. Every client is served (the limit holds clients in the kernel
// backlog, it does not refuse them), none hangs past its timeout, at most 50
// children ever run, and sockd's fd count and memory return to baseline
// with no zombie left.
func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test in -short mode")
	}
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "flood", map[string]any{
		"Label":              "test.flood",
		"ProgramArguments":   []string{"/bin/sh", "-c", "sleep 0.01; echo ok"},
		"inetdCompatibility": map[string]any{"Wait": false},
		"Sockets":            map[string]any{"Listeners": tcpSocket(port)},
		"SockdLimits":        map[string]any{"MaxChildren": 50},
	})
	d := startSockd(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dialRead(t, "tcp4", addr, "")
	time.Sleep(200 * time.Millisecond)
	baseFD, baseRSS := fdCount(t, d.pid()), rssKiB(t, d.pid())

	const bursts, perBurst = 20, 500
	var served, failed atomic.Int64
	var maxChildren atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		// A scan of the children is not atomic; a pid seen in two
		// consecutive scans was alive at the instant between them, so the
		// size of the intersection is a true simultaneous count.
		defer sampler.Done()
		prev := map[int]bool{}
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			cur := map[int]bool{}
			both := 0
			for _, p := range children(d.pid()) {
				cur[p] = true
				if prev[p] {
					both++
				}
			}
			if int64(both) > maxChildren.Load() {
				maxChildren.Store(int64(both))
			}
			prev = cur
		}
	}()
	errKinds := map[string]int{}
	var mu sync.Mutex
	start := time.Now()
	for b := 0; b < bursts; b++ {
		var wg sync.WaitGroup
		for i := 0; i < perBurst; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp4", addr, 20*time.Second)
				if err == nil {
					_ = c.SetDeadline(time.Now().Add(30 * time.Second))
					var buf []byte
					buf, err = io.ReadAll(c)
					c.Close()
					if err == nil && string(buf) == "ok\n" {
						served.Add(1)
						return
					}
					if err == nil {
						err = fmt.Errorf("reply %q", buf)
					}
				}
				failed.Add(1)
				mu.Lock()
				errKinds[err.Error()]++
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	close(stop)
	sampler.Wait()
	t.Logf("%d served, %d failed in %v; at most %d children at once", served.Load(), failed.Load(), time.Since(start).Round(time.Millisecond), maxChildren.Load())
	if served.Load() != bursts*perBurst {
		t.Errorf("%d of %d served; failures: %v", served.Load(), bursts*perBurst, errKinds)
	}
	if maxChildren.Load() > 50 {
		t.Errorf("%d children at once, limit 50", maxChildren.Load())
	}
	if d.settledCount("limit reached: max children", "test.flood", 1) == 0 {
		t.Errorf("the max-children limit never triggered (or was not logged)")
	}
	// The limit is reached and left with every child; the line is written at
	// most once every 10 s (plus the deferred one), never once per toggle.
	elapsed := time.Since(start)
	if n, most := d.countLogs("limit reached: max children", "test.flood"), int(elapsed/(10*time.Second))+2; n > most {
		t.Errorf("%d max-children lines in %v, want at most %d", n, elapsed.Round(time.Millisecond), most)
	}
	if !eventually(10*time.Second, func() bool { return len(children(d.pid())) == 0 && len(zombies(d.pid())) == 0 }) {
		t.Errorf("children left: %v, zombies: %v", children(d.pid()), zombies(d.pid()))
	}
	if !eventually(5*time.Second, func() bool { return fdCount(t, d.pid()) <= baseFD }) {
		t.Errorf("fd count %d, baseline %d", fdCount(t, d.pid()), baseFD)
	}
	// Go's heap may keep some pages; allow 8 MiB over the baseline.
	if rss := rssKiB(t, d.pid()); rss > baseRSS+8*1024 {
		t.Errorf("RSS %d KiB after the flood, baseline %d KiB", rss, baseRSS)
	}
}

// holdConn opens a connection from src to addr served by a /bin/cat job
// and proves it is served by an echo round trip. It returns nil if sockd
// closed the connection instead.
func holdConn(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	dl := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := dl.Dial("tcp4", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("probe\n")); err != nil {
		c.Close()
		return nil
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "probe\n" {
		c.Close()
		return nil
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

// TestPerSourceLimit: two distinct loopback sources, MaxPerSource 2.
func TestPerSourceLimit(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "ps", map[string]any{
		"Label":              "test.persource",
		"ProgramArguments":   []string{"/bin/cat"},
		"inetdCompatibility": map[string]any{"Wait": false},
		"Sockets":            map[string]any{"Listeners": tcpSocket(port)},
		"SockdLimits":        map[string]any{"MaxPerSource": 2},
	})
	d := startSockd(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	a1, a2 := holdConn(t, "127.0.0.1", addr), holdConn(t, "127.0.0.1", addr)
	if a1 == nil || a2 == nil {
		t.Fatal("first two connections from 127.0.0.1 not served")
	}
	if c := holdConn(t, "127.0.0.1", addr); c != nil {
		c.Close()
		t.Errorf("third connection from 127.0.0.1 served, limit 2")
	}
	b1, b2 := holdConn(t, "127.0.0.2", addr), holdConn(t, "127.0.0.2", addr)
	if b1 == nil || b2 == nil {
		t.Errorf("connections from 127.0.0.2 refused while 127.0.0.1 is at its limit")
	}
	// Releasing one slot of 127.0.0.1 lets a new one in.
	a1.Close()
	if !eventually(5*time.Second, func() bool {
		c := holdConn(t, "127.0.0.1", addr)
		if c != nil {
			c.Close()
			return true
		}
		return false
	}) {
		t.Errorf("slot of 127.0.0.1 not released after its connection closed")
	}
	// A burst of refusals inside one second: the lines are rate-limited,
	// but their counts add up to every refusal (the ones after a line are
	// logged when the second is over, not dropped).
	var a3 net.Conn
	if !eventually(5*time.Second, func() bool { a3 = holdConn(t, "127.0.0.1", addr); return a3 != nil }) {
		t.Fatal("second slot of 127.0.0.1 not served again")
	}
	for range 5 {
		if c := holdConn(t, "127.0.0.1", addr); c != nil {
			c.Close()
			t.Errorf("connection over the limit served")
		}
	}
	a3.Close()
	a2.Close()
	for _, c := range []net.Conn{b1, b2} {
		if c != nil {
			c.Close()
		}
	}
	if d.settledCount("per-source limit reached", "test.persource", 1) == 0 {
		t.Errorf("the per-source refusal was not logged")
	}
	// SIGUSR1: one summary line per job, readable without a debugger.
	d.signal(syscall.SIGUSR1)
	if !eventually(5*time.Second, func() bool { return d.countLogs("job stats", "test.persource") == 1 }) {
		t.Fatal("no stats line after SIGUSR1")
	}
	var refused float64
	for _, m := range d.logs() {
		if m["msg"] == "job stats" {
			refused = m["refused"].(float64)
			if refused < 6 || m["accepted"].(float64) < 12 || m["spawned"].(float64) < 5 {
				t.Errorf("stats line %v", m)
			}
		}
	}
	sum := func() (n float64) {
		for _, m := range d.logs() {
			if msg, _ := m["msg"].(string); strings.Contains(msg, "per-source limit reached") {
				n += m["refused_since_last_line"].(float64)
			}
		}
		return n
	}
	if !eventually(3*time.Second, func() bool { return sum() == refused }) {
		t.Errorf("refusal lines count %v refusals, the stats %v", sum(), refused)
	}
}

// TestRefusalsLoggedAtShutdown: refusals still owed a log line (inside
// the one-line-a-second window) are logged when sockd shuts down, not
// lost, and each line carries the source's count at refusal time.
func TestRefusalsLoggedAtShutdown(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	j := nowaitJob("test.owed", port, []string{"/bin/cat"})
	j["SockdLimits"] = map[string]any{"MaxPerSource": 1}
	writeJob(t, dir, "owed", j)
	d := startSockd(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	held := holdConn(t, "127.0.0.1", addr)
	if held == nil {
		t.Fatal("first connection not served")
	}
	defer held.Close()
	for range 3 {
		if c := holdConn(t, "127.0.0.1", addr); c != nil {
			c.Close()
			t.Fatal("connection over MaxPerSource 1 served")
		}
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatalf("sockd exit: %v", err)
	}
	var sum float64
	for _, m := range d.logs() {
		if msg, _ := m["msg"].(string); strings.Contains(msg, "per-source limit reached") {
			sum += m["refused_since_last_line"].(float64)
			if m["source_connections"] != 1.0 {
				t.Errorf("refusal line with source_connections %v, want 1 (the held connection)", m["source_connections"])
			}
		}
	}
	if sum != 3 {
		t.Errorf("refusal lines account for %v refusals, want 3", sum)
	}
}

// TestRateLimitPausesAndResumes: Rate 5/s with burst 5 and a 2 s pause.
// 30 clients at once: a first wave of about 5, a pause, then the rest,
// all served without an operator.
func TestRateLimitPausesAndResumes(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "rate", map[string]any{
		"Label":              "test.rate",
		"ProgramArguments":   []string{"/bin/echo", "ok"},
		"inetdCompatibility": map[string]any{"Wait": false},
		"Sockets":            map[string]any{"Listeners": tcpSocket(port)},
		"SockdLimits":        map[string]any{"Rate": 5, "Burst": 5, "PauseSeconds": 2},
	})
	d := startSockd(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	const n = 30
	times := make([]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.DialTimeout("tcp4", addr, 10*time.Second)
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			b, err := io.ReadAll(c)
			if err != nil || string(b) != "ok\n" {
				failed.Add(1)
				return
			}
			times[i] = time.Since(start)
		}(i)
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d clients failed", failed.Load(), n)
	}
	early := 0
	var last time.Duration
	for _, d := range times {
		if d < time.Second {
			early++
		}
		if d > last {
			last = d
		}
	}
	t.Logf("%d served in the first second, last after %v", early, last.Round(time.Millisecond))
	if early > 8 {
		t.Errorf("%d spawns in the first second; rate 5/s burst 5 should allow about 5", early)
	}
	if last < 2*time.Second || last > 30*time.Second {
		t.Errorf("last client served after %v; expected pauses of 2 s and automatic resumption", last)
	}
	if d.settledCount("limit reached: spawn rate", "test.rate", 1) == 0 || d.settledCount("accepting again", "test.rate", 1) == 0 {
		t.Errorf("rate pause/resume not logged")
	}
}

// TestEMFILE: sockd with a low RLIMIT_NOFILE under a burst of held
// connections survives, stays near idle while starved, and serves again
// when the load drops.
func TestEMFILE(t *testing.T) {
	needProgram(t, "prlimit")
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "cat", nowaitJob("test.emfile", port, []string{"/bin/cat"}))
	d := startSockdWith(t, []string{"prlimit", "--nofile=40:40", "--"}, nil, nil, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var held []net.Conn
	for i := 0; i < 80; i++ {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		held = append(held, c)
	}
	time.Sleep(time.Second)
	cpu0 := procCPU(t, d.pid())
	time.Sleep(3 * time.Second)
	cpu := procCPU(t, d.pid()) - cpu0
	if cpu > 500*time.Millisecond {
		t.Errorf("sockd used %v CPU in 3 s while starved of fds", cpu)
	}
	if d.countLogs("out of resources", "test.emfile")+d.settledCount("cannot start child", "test.emfile", 1) == 0 {
		t.Errorf("fd exhaustion not logged")
	}
	if n := d.countLogs("out of resources", "test.emfile"); n > 3 {
		t.Errorf("exhaustion logged %d times; want once per episode", n)
	}
	for _, c := range held {
		c.Close()
	}
	if !eventually(15*time.Second, func() bool {
		c := holdConn(t, "127.0.0.1", addr)
		if c != nil {
			c.Close()
			return true
		}
		return false
	}) {
		t.Fatalf("sockd does not serve again after the load dropped")
	}
	t.Logf("sockd CPU while starved: %v over 3 s", cpu)
}

// TestSlotAccounting: children that crash, exit with an error, fail to
// exec or are killed all release their slots: the limit can be filled
// again afterwards. Clients that reset at once do no harm.
func TestSlotAccounting(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	script := `read cmd; case "$cmd" in crash) kill -SEGV $$;; fail) exit 3;; probe) echo probe; exec cat;; esac`
	writeJob(t, dir, "slots", map[string]any{
		"Label":              "test.slots",
		"ProgramArguments":   []string{"/bin/sh", "-c", script},
		"inetdCompatibility": map[string]any{"Wait": false},
		"Sockets":            map[string]any{"Listeners": tcpSocket(port)},
		"SockdLimits":        map[string]any{"MaxChildren": 2},
	})
	missingPort := freePort(t, "tcp")
	writeJob(t, dir, "missing", map[string]any{
		"Label":              "test.missing",
		"ProgramArguments":   []string{"/nonexistent/program"},
		"inetdCompatibility": map[string]any{"Wait": false},
		"Sockets":            map[string]any{"Listeners": tcpSocket(missingPort)},
		"SockdLimits":        map[string]any{"MaxChildren": 2},
	})
	d := startSockd(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	for _, cmd := range []string{"crash", "fail", "crash", "fail", "crash", "fail"} {
		dialRead(t, "tcp4", addr, cmd+"\n")
	}
	// Clients that connect and reset at once.
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	// Kill two held children.
	k1, k2 := holdConn(t, "127.0.0.1", addr), holdConn(t, "127.0.0.1", addr)
	if k1 == nil || k2 == nil {
		t.Fatal("slots not free after crashes, failures and resets")
	}
	for _, pid := range children(d.pid()) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	k1.Close()
	k2.Close()
	// Exec failures on the other job.
	for i := 0; i < 10; i++ {
		if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", missingPort), ""); got != "" {
			t.Errorf("missing program: got %q", got)
		}
	}
	if n := d.settledCount("cannot start child", "test.missing", 1); n < 1 || n > 3 {
		t.Errorf("exec failure logged %d times for 10 connections; want at most once a second", n)
	}
	// Both slots can be filled again.
	if !eventually(5*time.Second, func() bool {
		a := holdConn(t, "127.0.0.1", addr)
		if a == nil {
			return false
		}
		defer a.Close()
		b := holdConn(t, "127.0.0.1", addr)
		if b == nil {
			return false
		}
		b.Close()
		return true
	}) {
		t.Errorf("the limit of 2 cannot be filled again: slots leaked")
	}
}

// TestGrandchildrenCleanedUp: a child that forks a grandchild and exits:
// its process group is signalled, so the grandchild does not linger.
func TestGrandchildrenCleanedUp(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	mark := "sockd-grandchild-" + strconv.Itoa(os.Getpid())
	writeJob(t, dir, "gc", nowaitJob("test.grandchild", port, []string{"/bin/sh", "-c", `sh -c "exec -a ` + mark + ` sleep 60" </dev/null >/dev/null 2>&1 & echo started`}))
	startSockd(t, dir)
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), ""); got != "started\n" {
		t.Fatalf("got %q", got)
	}
	if !eventually(5*time.Second, func() bool {
		out, _ := exec.Command("pgrep", "-f", mark).Output()
		return len(strings.TrimSpace(string(out))) == 0
	}) {
		_ = exec.Command("pkill", "-f", mark).Run()
		t.Errorf("grandchild still running after its parent exited")
	}
}

// TestBindFailuresAffectOnlyTheirJob: a port already in use and a Unix
// socket path that is a regular file fail their job with a clear message
// (the file untouched); other jobs serve; a reload after the port is freed
// binds it.
func TestBindFailuresAffectOnlyTheirJob(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	busyPort := busy.Addr().(*net.TCPAddr).Port
	regular := filepath.Join(t.TempDir(), "not-a-socket")
	if err := os.WriteFile(regular, []byte("precious data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	okPort := freePort(t, "tcp")
	writeJob(t, dir, "busy", map[string]any{
		"Label": "test.busy", "ProgramArguments": []string{"/bin/echo", "busy-job"},
		"inetdCompatibility": map[string]any{"Wait": false},
		"Sockets":            map[string]any{"Listeners": tcpSocket(busyPort)},
	})
	writeJob(t, dir, "file", map[string]any{
		"Label": "test.file", "ProgramArguments": []string{"/bin/echo"},
		"inetdCompatibility": map[string]any{"Wait": false},
		"Sockets":            map[string]any{"Local": map[string]any{"SockPathName": regular}},
	})
	writeJob(t, dir, "ok", map[string]any{
		"Label": "test.ok", "ProgramArguments": []string{"/bin/echo", "fine"},
		"inetdCompatibility": map[string]any{"Wait": false},
		"Sockets":            map[string]any{"Listeners": tcpSocket(okPort)},
	})
	d := startSockd(t, dir)
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", okPort), ""); got != "fine\n" {
		t.Errorf("other job: %q", got)
	}
	logs := d.logBuf.String()
	if !strings.Contains(logs, fmt.Sprintf("127.0.0.1:%d", busyPort)) || !strings.Contains(logs, "address already in use") {
		t.Errorf("port in use not reported with its address and reason")
	}
	if !strings.Contains(logs, regular) || !strings.Contains(logs, "regular file") {
		t.Errorf("regular file at the socket path not reported")
	}
	// Once each, at error level, with what it means for the job.
	for _, label := range []string{"test.busy", "test.file"} {
		n := 0
		for _, m := range d.logs() {
			if m["level"] == "error" && m["job"] == label {
				n++
				if msg, _ := m["msg"].(string); !strings.Contains(msg, "no socket open, a reload (SIGHUP) retries") {
					t.Errorf("%s: %q", label, msg)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: %d error lines for one failed socket, want 1", label, n)
		}
	}
	if b, _ := os.ReadFile(regular); string(b) != "precious data\n" {
		t.Errorf("regular file changed: %q", b)
	}
	busy.Close()
	d.signal(syscall.SIGHUP)
	if !eventually(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", busyPort), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}) {
		t.Errorf("after the port was freed, a reload did not bind it")
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", busyPort), ""); got != "busy-job\n" {
		t.Errorf("busy job after reload: %q", got)
	}
}

// TestJobFileBrokenWhileRunning: a job file truncated while sockd runs (a
// half-saved edit) and a reload: the job keeps serving under its last good
// definition, the log names the file; deleted and reloaded, the job stops
// and the others go on.
func TestJobFileBrokenWhileRunning(t *testing.T) {
	dir := t.TempDir()
	p1, p2 := freePort(t, "tcp"), freePort(t, "tcp")
	victim := writeJob(t, dir, "victim", map[string]any{
		"Label": "test.victim", "ProgramArguments": []string{"/bin/echo", "victim"},
		"inetdCompatibility": map[string]any{"Wait": false},
		"Sockets":            map[string]any{"Listeners": tcpSocket(p1)},
	})
	writeJob(t, dir, "other", map[string]any{
		"Label": "test.other", "ProgramArguments": []string{"/bin/echo", "other"},
		"inetdCompatibility": map[string]any{"Wait": false},
		"Sockets":            map[string]any{"Listeners": tcpSocket(p2)},
	})
	d := startSockd(t, dir)
	if err := os.WriteFile(victim, []byte("<?xml version=\"1.0\"?><plist><dict><key>Label</key>"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.signal(syscall.SIGHUP)
	if !d.waitLog("last good definition", 10*time.Second) {
		t.Fatalf("no line says the job keeps its last good definition")
	}
	if !strings.Contains(d.logBuf.String(), "victim.plist") {
		t.Errorf("the broken file is not named in the log")
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", p1), ""); got != "victim\n" {
		t.Errorf("the job of the broken file: %q, want it still served", got)
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", p2), ""); got != "other\n" {
		t.Errorf("other job: %q", got)
	}
	os.Remove(victim)
	d.signal(syscall.SIGHUP)
	if !eventually(10*time.Second, func() bool {
		_, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", p1), time.Second)
		return errors.Is(err, syscall.ECONNREFUSED)
	}) {
		t.Errorf("job of the deleted file still listening")
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", p2), ""); got != "other\n" {
		t.Errorf("other job after delete: %q", got)
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Errorf("sockd exit: %v", err)
	}
}
