// Package e2e holds sockd's end-to-end tests: the real sockd binary, started
// as a daemon on job files written by the test, driven by real clients
// (ssh, tftp, socat, curl, nginx) and by the test binary itself as the
// service (the GO_WANT_HELPER_PROCESS pattern).
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/sockd/sockd/internal/freeport"
)

var sockdBin string

func TestMain(m *testing.M) {
	if os.Getenv("GO_WANT_HELPER_PROCESS") == "1" {
		initialFds = scanFds()
		runHelper()
		return
	}
	flag.Parse()
	dir, err := os.MkdirTemp("", "sockd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	sockdBin = filepath.Join(dir, "sockd")
	args := []string{"build", "-o", sockdBin}
	if os.Getenv("SOCKD_E2E_RACE") == "1" { // the daemon under the race detector
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/sockd")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building sockd:", err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	// The test binary is run by sockd as a job's program: make it reachable
	// for unprivileged job users too.
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// helperArgv is the argv of a job that runs the test binary as helper cmd.
func helperArgv(cmd string, args ...string) []string {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return append([]string{exe, cmd}, args...)
}

// helperEnv is the EnvironmentVariables that make the test binary a helper.
func helperEnv() map[string]any {
	return map[string]any{"GO_WANT_HELPER_PROCESS": "1"}
}

// needRoot skips a test that needs root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// needProgram skips (or, under CI, fails) when a Debian program is missing.
func needProgram(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not installed; .ci/run must install it", n)
			}
			t.Skipf("%s not installed (apt-get install the package that provides it)", n)
		}
	}
}

// freePort returns a loopback TCP (or UDP) port that is free right now.
func freePort(t *testing.T, network string) int {
	t.Helper()
	return freeport.Port(t, network)
}

// writeJob writes a launchd XML job file into dir.
func writeJob(t *testing.T, dir, name string, j map[string]any) string {
	t.Helper()
	data, err := plist.MarshalIndent(j, plist.XMLFormat, "\t")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".plist")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// tcpSocket is a Sockets entry for 127.0.0.1:port.
func tcpSocket(port int) map[string]any {
	return map[string]any{"SockNodeName": "127.0.0.1", "SockServiceName": strconv.Itoa(port), "SockFamily": "IPv4"}
}

// nowaitJob is an inetd-style (Wait=false) job running argv for every
// connection to 127.0.0.1:port.
func nowaitJob(label string, port int, argv []string) map[string]any {
	return map[string]any{
		"Label":              label,
		"ProgramArguments":   argv,
		"inetdCompatibility": map[string]any{"Wait": false},
		"Sockets":            map[string]any{"Listeners": tcpSocket(port)},
	}
}

// daemon is one running sockd.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	logBuf *lockedBuffer
	exited chan struct{}
	err    error
	// control is the daemon's control socket (--control).
	control string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSockd runs `sockd serve` on jobsDir and waits for READY=1 on a
// NOTIFY_SOCKET the test owns.
func startSockd(t *testing.T, jobsDir string, extra ...string) *daemon {
	t.Helper()
	return startSockdAs(t, nil, nil, jobsDir, extra...)
}

// startSockdAs is startSockd with the daemon run under cred (nil: as the
// test) and with extra environment.
func startSockdAs(t *testing.T, cred *syscall.Credential, env []string, jobsDir string, extra ...string) *daemon {
	t.Helper()
	return startSockdWith(t, nil, cred, env, jobsDir, extra...)
}

// startSockdWith runs sockd behind a command prefix (e.g. prlimit ... --).
func startSockdWith(t *testing.T, prefix []string, cred *syscall.Credential, env []string, jobsDir string, extra ...string) *daemon {
	t.Helper()
	nsDir := t.TempDir()
	bin := sockdBin
	if cred != nil {
		nsDir = publicTempDir(t)
		if err := os.Chmod(nsDir, 0o777); err != nil {
			t.Fatal(err)
		}
		bin = copyFile(t, sockdBin)
	}
	nsPath := filepath.Join(nsDir, "notify")
	ns, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: nsPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()

	args := append([]string{"serve", "--jobs", jobsDir, "--log-format", "json", "--log-level", "debug"}, extra...)
	if cred != nil {
		_ = os.Chmod(nsPath, 0o777)
	}
	if jobsDir == "" {
		args = args[3:]
		args = append([]string{"serve"}, args...)
	}
	// Each daemon has its own control socket and overrides file, in a
	// directory of the daemon's user.
	ctlDir := nsDir
	if cred != nil {
		ctlDir = publicTempDir(t)
		if err := os.Chown(ctlDir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	control := filepath.Join(ctlDir, "control.sock")
	if i := slices.Index(args, "--control"); i >= 0 && i+1 < len(args) {
		control = args[i+1]
	} else {
		args = append(args, "--control", control)
	}
	if !slices.Contains(args, "--overrides") {
		args = append(args, "--overrides", filepath.Join(ctlDir, "overrides.json"))
	}
	argv := append(append(append([]string{}, prefix...), bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "NOTIFY_SOCKET="+nsPath), env...)
	d := &daemon{t: t, cmd: cmd, logBuf: &lockedBuffer{}, exited: make(chan struct{}), control: control}
	cmd.Stdout = d.logBuf
	cmd.Stderr = d.logBuf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: cred}
	runtime.LockOSThread() // Pdeathsig follows the starting thread
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.exited:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-d.exited
			}
		}
		// Every line, in every test: a JSON log line names each field
		// once (zap appends a field added twice, e.g. by two With calls).
		for _, line := range d.rawLogLines() {
			if dup := duplicateKeys(line); len(dup) > 0 {
				t.Errorf("log line repeats field(s) %v: %s", dup, line)
			}
		}
		if t.Failed() {
			t.Logf("sockd log:\n%s", d.logBuf.String())
		}
	})

	_ = ns.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, _, err := ns.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("sockd did not send READY=1: %v\nlog:\n%s", err, d.logBuf.String())
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			return d
		}
	}
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

func (d *daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
}

// stop sends SIGTERM and returns the exit error (nil for exit 0).
func (d *daemon) stop(timeout time.Duration) error {
	d.t.Helper()
	d.signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return d.err
	case <-time.After(timeout):
		d.t.Fatalf("sockd did not exit within %v after SIGTERM", timeout)
		return nil
	}
}

// rawLogLines returns sockd's JSON log lines as written.
func (d *daemon) rawLogLines() [][]byte {
	var out [][]byte
	sc := bufio.NewScanner(strings.NewReader(d.logBuf.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		// Children write to the same stderr; a line can start with a
		// child's partial write, so the JSON object is taken from its '{'.
		line := sc.Bytes()
		if i := bytes.IndexByte(line, '{'); i > 0 {
			line = line[i:]
		}
		if json.Valid(line) && len(line) > 0 && line[0] == '{' {
			out = append(out, bytes.Clone(line))
		}
	}
	return out
}

// logs returns the decoded JSON log lines.
func (d *daemon) logs() []map[string]any {
	var out []map[string]any
	for _, line := range d.rawLogLines() {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// duplicateKeys returns the top-level keys a JSON object names more than
// once (encoding/json keeps the last one silently).
func duplicateKeys(obj []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	var dup []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return dup
		}
		key, _ := tok.(string)
		if seen[key] {
			dup = append(dup, key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return dup
		}
	}
	return dup
}

// jobStats sends SIGUSR1 until the newest "job stats" line of jobLabel
// satisfies ok (nil: any line), for at most 5 s, and returns that line
// (nil if none came).
func (d *daemon) jobStats(jobLabel string, ok func(map[string]any) bool) map[string]any {
	d.t.Helper()
	var stats map[string]any
	eventually(5*time.Second, func() bool {
		d.signal(syscall.SIGUSR1)
		time.Sleep(100 * time.Millisecond)
		stats = nil
		for _, m := range d.logs() {
			if m["msg"] == "job stats" && m["job"] == jobLabel {
				stats = m
			}
		}
		return stats != nil && (ok == nil || ok(stats))
	})
	return stats
}

// countLogs counts sockd's log lines whose msg contains substr (and, if
// job is not empty, whose job field is job). A job's output lines (records
// with a stream field) are not counted: see childLines.
func (d *daemon) countLogs(substr, jobLabel string) int {
	n := 0
	for _, m := range d.logs() {
		msg, _ := m["msg"].(string)
		if _, child := m["stream"]; child || !strings.Contains(msg, substr) {
			continue
		}
		if jobLabel != "" && m["job"] != jobLabel {
			continue
		}
		n++
	}
	return n
}

// settledCount counts log lines like countLogs, after waiting (up to 5 s)
// for at least min of them: a service can answer its client before sockd's
// own "started" line has reached the log pipe.
func (d *daemon) settledCount(substr, jobLabel string, min int) int {
	eventually(5*time.Second, func() bool { return d.countLogs(substr, jobLabel) >= min })
	return d.countLogs(substr, jobLabel)
}

// waitLog waits until a log line containing substr appears.
func (d *daemon) waitLog(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(d.logBuf.String(), substr) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// fdCount is the number of open fds of a process.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// zombies lists the zombie children of pid.
func zombies(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 2 && f[0] == "Z" && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

// children lists the live children of pid (of all its threads: a child
// belongs to the thread that created it).
func children(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// eventually polls cond until it is true or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialRead connects, optionally writes, half-closes and reads to EOF.
func dialRead(t *testing.T, network, addr, send string) string {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if send != "" {
		if _, err := c.Write([]byte(send)); err != nil {
			t.Fatal(err)
		}
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(c); err != nil {
		t.Fatalf("read from %s: %v (got %q)", addr, err, b.String())
	}
	return b.String()
}

// publicTempDir is a temporary directory every user can traverse (the
// t.TempDir tree is 0700).
func publicTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sockd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testUser creates a user named prefix and the test's pid for the test
// (removed at cleanup) and returns its name, uid and gid. args are
// useradd's options before the name; none gives a system user with no
// home and no shell.
func testUser(t *testing.T, prefix string, args ...string) (string, int, int) {
	t.Helper()
	needRoot(t)
	needProgram(t, "useradd", "userdel")
	name := fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	if len(args) == 0 {
		args = []string{"-r", "-M", "-U", "-d", "/nonexistent", "-s", "/usr/sbin/nologin"}
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return name, uid, gid
}
