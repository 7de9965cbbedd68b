package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
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

	"github.com/sockd/sockd/internal/journal/journaltest"
)

// chattyJob is a handoff job on 127.0.0.1:port whose /bin/sh program
// writes lines to stdout and stderr when it starts, then waits.
func chattyJob(label string, port int, extra map[string]any) map[string]any {
	j := map[string]any{
		"Label": label,
		"ProgramArguments": []string{"/bin/sh", "-c", `echo "out: hello from $LAUNCH_JOB_LABEL"; echo "err: a warning" >&2; ` +
			`echo '{"level":"error","msg":"forged by the child"}'; printf 'half a line'; exec sleep 60`},
		"Sockets": map[string]any{"Listeners": tcpSocket(port)},
	}
	for k, v := range extra {
		j[k] = v
	}
	return j
}

// childLines counts the records of a job's output (stdout or stderr
// lines sockd logs for it) whose msg contains substr.
func (d *daemon) childLines(substr, jobLabel string) int {
	n := 0
	for _, m := range d.logs() {
		msg, _ := m["msg"].(string)
		if _, child := m["stream"]; child && m["job"] == jobLabel && strings.Contains(msg, substr) {
			n++
		}
	}
	return n
}

// poke connects once to start a handoff job.
func poke(t *testing.T, port int) {
	t.Helper()
	c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestChildOutputJSON: with --log-format json, a handoff service's stdout
// and stderr lines are records of their own (job, stream, pid), every line
// sockd writes is JSON, and a job with StandardOutPath still writes there.
func TestChildOutputJSON(t *testing.T) {
	dir := t.TempDir()
	port, port2 := freePort(t, "tcp"), freePort(t, "tcp")
	outFile := filepath.Join(t.TempDir(), "out.log")
	writeJob(t, dir, "chatty", chattyJob("test.chatty", port, nil))
	writeJob(t, dir, "filed", chattyJob("test.filed", port2, map[string]any{"StandardOutPath": outFile}))
	d := startSockd(t, dir) // --log-format json
	poke(t, port)
	poke(t, port2)

	want := map[string]string{
		"out: hello from test.chatty":                   "stdout",
		"err: a warning":                                "stderr",
		`{"level":"error","msg":"forged by the child"}`: "stdout",
	}
	var recs map[string]map[string]any
	if !eventually(10*time.Second, func() bool {
		recs = map[string]map[string]any{}
		for _, m := range d.logs() {
			if msg, _ := m["msg"].(string); m["job"] == "test.chatty" && want[msg] != "" {
				recs[msg] = m
			}
		}
		return len(recs) == len(want)
	}) {
		t.Fatalf("child records: %v", recs)
	}
	var pid any
	for _, m := range d.logs() {
		if m["msg"] == "started" && m["job"] == "test.chatty" {
			pid = m["pid"]
		}
	}
	for msg, m := range recs {
		if m["stream"] != want[msg] || m["pid"] != pid || m["level"] != "info" {
			t.Errorf("%q: %v; want stream %s, pid %v, level info", msg, m, want[msg], pid)
		}
	}

	// The file job: stdout in its file, stderr a record.
	if !eventually(10*time.Second, func() bool {
		b, _ := os.ReadFile(outFile)
		return strings.Contains(string(b), "out: hello from test.filed")
	}) {
		b, _ := os.ReadFile(outFile)
		t.Errorf("StandardOutPath holds %q", b)
	}
	if !eventually(5*time.Second, func() bool { return d.childLines("err: a warning", "test.filed") == 1 }) {
		t.Errorf("test.filed's stderr is not a record")
	}
	if n := d.childLines("hello from test.filed", "test.filed"); n != 0 {
		t.Errorf("test.filed's stdout logged %d times as well as in its file", n)
	}

	if err := d.stop(30 * time.Second); err != nil {
		t.Errorf("sockd exit: %v", err)
	}
	// A last line without its newline is logged when the child has gone.
	if n := d.childLines("half a line", "test.chatty"); n != 1 {
		t.Errorf("the unterminated line was logged %d times", n)
	}
	// Every line is one JSON object: nothing of the children's in between.
	sc := bufio.NewScanner(strings.NewReader(d.logBuf.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if line := sc.Bytes(); !json.Valid(line) || !bytes.HasPrefix(line, []byte("{")) {
			t.Errorf("line %d is not a JSON object: %q", n, line)
		}
	}
	if n < 10 {
		t.Errorf("only %d log lines", n)
	}
}

// rawDaemon is a sockd started by the test with its own stderr file and
// notify socket (for what startSockd fixes: --log-format json, a pipe).
type rawDaemon struct {
	cmd    *exec.Cmd
	stderr string // the file of sockd's stderr
	notify *net.UnixConn
}

// startRaw runs sockd serve with args and env, stderr to a file (its
// device and inode are known before the start: stderrEnv can name them),
// and NOTIFY_SOCKET to a socket the caller reads (ready waits for READY=1).
func startRaw(t *testing.T, env []string, stderrEnv func(dev, ino uint64) []string, args ...string) *rawDaemon {
	t.Helper()
	tmp := t.TempDir()
	ns := filepath.Join(tmp, "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	errPath := filepath.Join(tmp, "stderr")
	ef, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(ef.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"serve", "--control", filepath.Join(tmp, "control.sock"), "--overrides", filepath.Join(tmp, "overrides.json")}, args...)
	cmd := exec.Command(sockdBin, args...)
	cmd.Env = append(append(os.Environ(), "NOTIFY_SOCKET="+ns), env...)
	if stderrEnv != nil {
		cmd.Env = append(cmd.Env, stderrEnv(uint64(st.Dev), st.Ino)...)
	}
	cmd.Stdout, cmd.Stderr = ef, ef
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &rawDaemon{cmd: cmd, stderr: errPath, notify: nc}
	t.Cleanup(func() {
		// Closed first: a socket nobody reads would fill with pings and
		// block the STOPPING=1 that sockd sends as it stops.
		nc.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("sockd stderr:\n%s", d.stderrText())
		}
	})
	return d
}

func (d *rawDaemon) stderrText() string {
	b, _ := os.ReadFile(d.stderr)
	return string(b)
}

// next reads the next notify message before deadline ("" at the deadline).
func (d *rawDaemon) next(deadline time.Time) string {
	buf := make([]byte, 4096)
	_ = d.notify.SetReadDeadline(deadline)
	n, err := d.notify.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// ready waits for READY=1.
func (d *rawDaemon) ready(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := d.next(deadline)
		if m == "" {
			t.Fatalf("no READY=1; stderr:\n%s", d.stderrText())
		}
		if strings.Contains(m, "READY=1") {
			return
		}
	}
}

// TestJournalNativeLog: with --log-format journal, sockd's entries reach
// journald's native socket (a stand-in that decodes the protocol) with
// PRIORITY, SYSLOG_IDENTIFIER and each field upper-cased; a handoff
// service's output goes to a stream of its own named by its label; and
// nothing is written to stderr.
func TestJournalNativeLog(t *testing.T) {
	fj := journaltest.Start(t)
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "chatty", chattyJob("test.chatty", port, nil))
	writeJob(t, dir, "broken", map[string]any{"Label": "test.broken", "ProgramArguments": []string{"/nonexistent/prog"}, "RunAtLoad": true})
	d := startRaw(t, []string{"SOCKD_JOURNAL_DIR=" + fj.Dir}, nil, "--jobs", dir, "--log-format", "journal", "--log-level", "debug")
	d.ready(t)
	poke(t, port)

	started, ok := fj.Wait(10*time.Second, func(e journaltest.Entry) bool {
		return e.Get("MESSAGE") == "started" && e.Get("JOB") == "test.chatty"
	})
	if !ok {
		t.Fatalf("no started entry; entries: %v", fj.Entries())
	}
	if started.Get("PRIORITY") != "6" || started.Get("SYSLOG_IDENTIFIER") != "sockd" || started.Get("PID") == "" ||
		!strings.HasPrefix(started.Get("REASON"), "socket activity on ") || started.Transport != "journal" {
		t.Errorf("started entry %q", started.Fields)
	}
	if e, ok := fj.Wait(10*time.Second, func(e journaltest.Entry) bool {
		return e.Get("JOB") == "test.broken" && e.Get("PRIORITY") == "3"
	}); !ok || e.Get("ERROR") == "" || !strings.Contains(e.Get("ERROR"), "/nonexistent/prog") {
		t.Errorf("the failing job's error entry: %q (%v)", e.Fields, ok)
	}
	if e, ok := fj.Wait(5*time.Second, func(e journaltest.Entry) bool { return e.Get("MESSAGE") == "sockd ready" }); !ok || e.Get("JOBS") != "2" {
		t.Errorf("ready entry %q", e.Fields)
	}
	// Debug lines come at priority 7.
	if _, ok := fj.Wait(5*time.Second, func(e journaltest.Entry) bool {
		return e.Get("PRIORITY") == "7" && e.Get("SYSLOG_IDENTIFIER") == "sockd"
	}); !ok {
		t.Errorf("no debug entry at priority 7")
	}
	for line, prio := range map[string]string{"out: hello from test.chatty": "6", "err: a warning": "6"} {
		e, ok := fj.Wait(5*time.Second, func(e journaltest.Entry) bool { return e.Get("MESSAGE") == line })
		if !ok || e.Transport != "stdout" || e.Get("SYSLOG_IDENTIFIER") != "test.chatty" || e.Get("PRIORITY") != prio {
			t.Errorf("%q: entry %q (%v)", line, e.Fields, ok)
		}
	}
	for _, e := range fj.Entries() {
		if e.Transport == "journal" && e.Get("JOB") == "test.chatty" && strings.Contains(e.Get("MESSAGE"), "hello") {
			t.Errorf("the child's line was copied by sockd too: %q", e.Fields)
		}
	}
	if s := d.stderrText(); s != "" {
		t.Errorf("stderr is not empty:\n%s", s)
	}
}

// TestJournalStreamDetected: with stderr the journal stream that
// JOURNAL_STREAM names (as systemd sets it), sockd's default format is the
// native protocol; the same stderr without JOURNAL_STREAM gets text.
func TestJournalStreamDetected(t *testing.T) {
	for _, named := range []bool{true, false} {
		fj := journaltest.Start(t)
		env := func(dev, ino uint64) []string {
			if !named {
				return []string{"JOURNAL_STREAM=" + strconv.FormatUint(dev, 10) + ":" + strconv.FormatUint(ino+1, 10)}
			}
			return []string{"JOURNAL_STREAM=" + strconv.FormatUint(dev, 10) + ":" + strconv.FormatUint(ino, 10)}
		}
		d := startRaw(t, []string{"SOCKD_JOURNAL_DIR=" + fj.Dir}, env, "--jobs", t.TempDir())
		d.ready(t)
		_, ok := fj.Wait(3*time.Second, func(e journaltest.Entry) bool { return e.Get("MESSAGE") == "sockd ready" })
		text := d.stderrText()
		if named && (!ok || text != "") {
			t.Errorf("JOURNAL_STREAM names stderr: in the journal %v, stderr %q", ok, text)
		}
		if !named && (ok || !strings.Contains(text, "sockd ready")) {
			t.Errorf("JOURNAL_STREAM names another stream: in the journal %v, stderr %q", ok, text)
		}
	}
}

// TestJournalUnreachable: --log-format journal with no journald listening
// is one warning, then text on stderr.
func TestJournalUnreachable(t *testing.T) {
	d := startRaw(t, []string{"SOCKD_JOURNAL_DIR=" + t.TempDir()}, nil, "--jobs", t.TempDir(), "--log-format", "journal")
	d.ready(t)
	if !eventually(5*time.Second, func() bool { return strings.Contains(d.stderrText(), "sockd ready") }) {
		t.Fatalf("no text log")
	}
	if n := strings.Count(d.stderrText(), "the journal cannot be reached"); n != 1 {
		t.Errorf("%d warnings", n)
	}
}

// TestWatchdog: with WATCHDOG_USEC=400000 (WatchdogSec=0.4), a stand-in
// for systemd's notify socket sees WATCHDOG=1 at least every 200 ms; with
// WATCHDOG_PID naming another process, never.
func TestWatchdog(t *testing.T) {
	for _, pid := range []string{"", "self", "1"} {
		env := []string{"WATCHDOG_USEC=400000"}
		if pid == "1" {
			env = append(env, "WATCHDOG_PID=1")
		}
		var d *rawDaemon
		if pid == "self" {
			// WATCHDOG_PID is sockd's own pid: only known once started,
			// so this case runs sockd under a shell that sets it.
			d = startRawSelfPid(t)
		} else {
			d = startRaw(t, env, nil, "--jobs", t.TempDir())
		}
		d.ready(t)
		var pings []time.Time
		end := time.Now().Add(2 * time.Second)
		for len(pings) < 100 {
			m := d.next(end)
			if m == "" {
				break
			}
			if m == "WATCHDOG=1" {
				pings = append(pings, time.Now())
			}
		}
		if pid == "1" {
			if len(pings) != 0 {
				t.Errorf("WATCHDOG_PID=1: %d pings", len(pings))
			}
			continue
		}
		if len(pings) < 8 {
			t.Errorf("WATCHDOG_PID=%q: %d pings in 2 s, want one at least every 200 ms", pid, len(pings))
			continue
		}
		for i := 1; i < len(pings); i++ {
			if gap := pings[i].Sub(pings[i-1]); gap > 200*time.Millisecond {
				t.Errorf("WATCHDOG_PID=%q: ping %d came %v after the one before, over half the interval", pid, i, gap)
			}
		}
	}
}

// startRawSelfPid is startRaw with WATCHDOG_USEC=400000 and WATCHDOG_PID
// set to sockd's own pid: /bin/sh exports its pid and execs sockd.
func startRawSelfPid(t *testing.T) *rawDaemon {
	t.Helper()
	tmp := t.TempDir()
	ns := filepath.Join(tmp, "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	errPath := filepath.Join(tmp, "stderr")
	ef, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	cmd := exec.Command("/bin/sh", "-c", `export WATCHDOG_PID=$$; exec "$0" serve --jobs "$1" --control "$2" --overrides "$3"`,
		sockdBin, t.TempDir(), filepath.Join(tmp, "control.sock"), filepath.Join(tmp, "overrides.json"))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns, "WATCHDOG_USEC=400000")
	cmd.Stdout, cmd.Stderr = ef, ef
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &rawDaemon{cmd: cmd, stderr: errPath, notify: nc}
	t.Cleanup(func() {
		// Closed first: a socket nobody reads would fill with pings and
		// block the STOPPING=1 that sockd sends as it stops.
		nc.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return d
}

// TestChildOutputProxyBackend: a proxy backend's stderr lines are records
// of its job, as a handoff service's are.
func TestChildOutputProxyBackend(t *testing.T) {
	needProgram(t, "socat")
	dir := t.TempDir()
	public, private := freePort(t, "tcp"), freePort(t, "tcp")
	writeJob(t, dir, "px", map[string]any{
		"Label": "test.px",
		"ProgramArguments": []string{"/bin/sh", "-c", fmt.Sprintf(`echo "backend starting on %d" >&2; `+
			`exec socat TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork SYSTEM:'echo hi'`, private, private)},
		"Sockets":    map[string]any{"Listeners": tcpSocket(public)},
		"SockdProxy": map[string]any{"Backend": fmt.Sprintf("127.0.0.1:%d", private), "ReadyTimeout": 10},
	})
	d := startSockd(t, dir)
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", public), ""); got != "hi\n" {
		t.Errorf("through the proxy: %q", got)
	}
	msg := fmt.Sprintf("backend starting on %d", private)
	if !eventually(5*time.Second, func() bool { return d.childLines(msg, "test.px") == 1 }) {
		t.Fatalf("no record of the backend's line")
	}
	for _, m := range d.logs() {
		if m["msg"] == msg && (m["stream"] != "stderr" || m["pid"] == nil) {
			t.Errorf("record %v", m)
		}
	}
}
