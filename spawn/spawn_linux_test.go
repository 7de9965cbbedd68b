//go:build linux && cgo

package spawn

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/job"
)

// ---------------------------------------------------------------------------
// Test plumbing.

func testExe(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// helperJob is a job running the test binary's helper command args.
func helperJob(t testing.TB, args ...string) *job.Job {
	exe := testExe(t)
	return &job.Job{
		File:       "test.plist",
		Label:      "test.helper",
		Path:       exe,
		Argv:       append([]string{exe}, args...),
		InitGroups: true,
		// The Go runtime would keep cgroup CPU files open to size
		// GOMAXPROCS; the fd tests want to see only what spawn passed.
		EnvironmentVariables: []job.EnvVar{{Name: "GODEBUG", Value: "containermaxprocs=0,updatemaxprocs=0"}, {Name: "GO_WANT_HELPER_PROCESS", Value: "1"}},
	}
}

// programJob runs a real program.
func programJob(t testing.TB, argv ...string) *job.Job {
	t.Helper()
	p, err := exec.LookPath(argv[0])
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed: %v", argv[0], err)
		}
		t.Skipf("needs %s: %v", argv[0], err)
	}
	return &job.Job{File: "test.plist", Label: "test." + filepath.Base(p), Path: p, Argv: argv, InitGroups: true}
}

func newTemplate(t testing.TB, j *job.Job, opts Options) *Template {
	t.Helper()
	tpl, warns, err := NewTemplate(j, opts)
	if err != nil {
		t.Fatalf("NewTemplate: %v", err)
	}
	for _, w := range warns {
		t.Logf("warning: %s", w)
	}
	return tpl
}

func devNull(t testing.TB) int {
	t.Helper()
	fd, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// outPipe returns a pipe: the write end for the child, and a reader that
// collects everything written until every write end is closed.
type outPipe struct {
	w    int
	r    *os.File
	done chan []byte
}

func newOutPipe(t testing.TB) *outPipe {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		t.Fatal(err)
	}
	o := &outPipe{w: p[1], r: os.NewFile(uintptr(p[0]), "out"), done: make(chan []byte, 1)}
	o.r.SetReadDeadline(time.Now().Add(20 * time.Second))
	go func() {
		b, _ := io.ReadAll(o.r)
		o.r.Close()
		o.done <- b
	}()
	t.Cleanup(func() {
		if o.w >= 0 {
			unix.Close(o.w)
		}
	})
	return o
}

// closeWrite closes the parent's write end (after Start).
func (o *outPipe) closeWrite() {
	unix.Close(o.w)
	o.w = -1
}

func (o *outPipe) output(t testing.TB) []byte {
	t.Helper()
	o.closeWrite()
	select {
	case b := <-o.done:
		return b
	case <-time.After(25 * time.Second):
		t.Fatal("timed out reading child output")
	}
	return nil
}

// wait polls the pidfd until the process exits, then reaps it.
func wait(t testing.TB, p *Process) ExitStatus {
	t.Helper()
	st, err := waitExit(p, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitExit polls the pidfd until the process exits (at most d; then it is
// killed) and reaps it. Safe from any goroutine.
func waitExit(p *Process, d time.Duration) (ExitStatus, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		pfd := []unix.PollFd{{Fd: int32(p.Pidfd()), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 1000)
		if err == unix.EINTR || (err == nil && n == 0) {
			continue
		}
		if err != nil {
			return ExitStatus{}, fmt.Errorf("poll pidfd: %v", err)
		}
		st, done, err := p.Reap()
		if err != nil {
			return st, fmt.Errorf("reap: %v", err)
		}
		if !done {
			return st, fmt.Errorf("pidfd readable but Reap says pid %d is still running", p.Pid)
		}
		return st, nil
	}
	p.Signal(unix.SIGKILL)
	return ExitStatus{}, fmt.Errorf("pid %d did not exit in time", p.Pid)
}

// asyncStarts makes runReport and runOutput use asynchronous starts
// (TestAsync).
var asyncStarts bool

// runReport starts tpl with fds (fd 1 replaced by a pipe when fds[1] < 0)
// and decodes the helper's report.
func runReport(t testing.TB, tpl *Template, fds []int, extra []string, listenPID bool) (*Process, report) {
	t.Helper()
	o := newOutPipe(t)
	fds = slices.Clone(fds)
	fds[1] = o.w
	p, err := tpl.start(fds, extra, listenPID, asyncStarts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	out := o.output(t)
	if st := wait(t, p); !st.Success() {
		t.Fatalf("helper: %v; output %q", st, out)
	}
	var r report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("decoding report %q: %v", out, err)
	}
	return p, r
}

// runOutput starts tpl with fds 0 and 2 on /dev/null and returns its
// standard output and status.
func runOutput(t testing.TB, tpl *Template) (string, ExitStatus) {
	t.Helper()
	null := devNull(t)
	o := newOutPipe(t)
	p, err := tpl.start([]int{null, o.w, null}, nil, false, asyncStarts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	out := o.output(t)
	return string(out), wait(t, p)
}

// procStatus parses "Key:\tvalue" lines.
func procStatus(s string) map[string]string {
	m := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			if _, dup := m[k]; !dup {
				m[k] = strings.TrimSpace(v)
			}
		}
	}
	return m
}

func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root: %s", why)
	}
}

// zombies lists our children that are zombies.
func zombies(t testing.TB) []int {
	t.Helper()
	me := strconv.Itoa(os.Getpid())
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		st := procStatus(string(b))
		if st["PPid"] == me && strings.HasPrefix(st["State"], "Z") {
			out = append(out, pid)
		}
	}
	return out
}

func openFdCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// ---------------------------------------------------------------------------
// argv, environment, LISTEN_PID.

func TestArgvAndEnv(t *testing.T) {
	j := helperJob(t, "activation", "two words", "")
	j.EnvironmentVariables = append(j.EnvironmentVariables,
		job.EnvVar{Name: "JOBVAR", Value: "j"}, job.EnvVar{Name: "OVERRIDE", Value: "job"})
	base := []string{
		"PATH=/usr/bin:/bin", "NOTIFY_SOCKET=/run/x", "LISTEN_FDS=9", "LISTEN_PID=1",
		"LAUNCH_JOB_LABEL=old", "REMOTE_ADDR=1.2.3.4", "REMOTE_PORT=9", "PROTO=TCP",
		"TCPREMOTEIP=1.2.3.4", "UNIXREMOTEPID=7", "KEEP=base", "OVERRIDE=base",
		"DUP=first", "DUP=second", "REPLACED=base", "GO_WANT_HELPER_PROCESS=0",
		"WATCHDOG_USEC=30000000", "WATCHDOG_PID=1", "JOURNAL_STREAM=8:1234",
	}
	tpl := newTemplate(t, j, Options{BaseEnv: base})

	null := devNull(t)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 8); err != nil {
		t.Fatal(err)
	}

	extra := []string{"LISTEN_FDS=2", "LISTEN_FDNAMES=Listeners:Other", "REPLACED=extra", "LISTEN_PID=999", "EXTRA=1"}
	p, r := runReport(t, tpl, []int{null, -1, null, ln, sp[0]}, extra, true)

	wantArgs := []string{testExe(t), "activation", "two words", ""}
	if !slices.Equal(r.Args, wantArgs) {
		t.Errorf("argv = %q, want %q", r.Args, wantArgs)
	}
	wantEnv := []string{
		"PATH=/usr/bin:/bin", "KEEP=base", "OVERRIDE=job", "DUP=first", "GO_WANT_HELPER_PROCESS=1",
		"GODEBUG=containermaxprocs=0,updatemaxprocs=0", "JOBVAR=j", "LISTEN_FDS=2", "LISTEN_FDNAMES=Listeners:Other", "REPLACED=extra", "EXTRA=1",
		"LISTEN_PID=" + strconv.Itoa(p.Pid),
	}
	// (The helper reads its environment before activation.Files unsets
	// the LISTEN_ variables.)
	if !slices.Equal(r.Env, wantEnv) {
		t.Errorf("env =\n%q\nwant\n%q", r.Env, wantEnv)
	}
	if r.Pid != p.Pid || r.ListenPID != strconv.Itoa(r.Pid) {
		t.Errorf("child pid %d, Process.Pid %d, LISTEN_PID %q", r.Pid, p.Pid, r.ListenPID)
	}
	if r.ActFiles != 2 || !slices.Equal(r.ActNames, []string{"Listeners", "Other"}) || !slices.Equal(r.ActSocket, []bool{true, true}) {
		t.Errorf("activation.Files: %d files, names %q, sockets %v; want 2 sockets Listeners, Other", r.ActFiles, r.ActNames, r.ActSocket)
	}
	if r.Ppid != os.Getpid() {
		t.Errorf("ppid = %d, want %d", r.Ppid, os.Getpid())
	}
}

func TestListenPIDOff(t *testing.T) {
	tpl := newTemplate(t, helperJob(t, "report"), Options{BaseEnv: []string{"LISTEN_PID=5"}})
	null := devNull(t)
	_, r := runReport(t, tpl, []int{null, -1, null}, []string{"LISTEN_PID=7"}, false)
	// Without listenPID an extra LISTEN_PID is passed as given; the base
	// one is always stripped.
	if r.ListenPID != "7" {
		t.Errorf("LISTEN_PID = %q, want the extra value 7", r.ListenPID)
	}
}

func TestGlobbing(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.txt", "a.txt", ".hidden.txt", "c.dat"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	j := helperJob(t, "report", dir+"/*.txt", dir+"/nomatch*", "~/c.dat", "~/missing", "~", "plain")
	j.EnableGlobbing = true
	tpl := newTemplate(t, j, Options{BaseEnv: []string{"HOME=" + dir}})
	null := devNull(t)
	_, r := runReport(t, tpl, []int{null, -1, null}, nil, false)
	want := []string{testExe(t), "report", dir + "/a.txt", dir + "/b.txt", dir + "/nomatch*", dir + "/c.dat", "~/missing", dir, "plain"}
	if !slices.Equal(r.Args, want) {
		t.Errorf("argv =\n%q\nwant\n%q", r.Args, want)
	}
}

// ---------------------------------------------------------------------------
// Descriptors.

// TestFdLayout runs the layout check on both start paths: sharing the fd
// table with the low slots (the daemon's path after ReserveLowFds, which
// TestMain calls) and copying the whole table.
func TestFdLayout(t *testing.T) {
	t.Run("shared-table", func(t *testing.T) {
		if lowSlots.disabled.Load() {
			t.Fatal("low slots not reserved")
		}
		old := smallTable
		smallTable = 0 // every source goes through a slot
		defer func() { smallTable = old }()
		testFdLayout(t)
	})
	t.Run("copied-table", func(t *testing.T) {
		lowSlots.disabled.Store(true)
		defer lowSlots.disabled.Store(false)
		testFdLayout(t)
	})
}

// TestSharedTableManyFds: with 3,000 extra fds open in the parent, a child
// started on the shared-table path sees exactly its fds, and the slots go
// back to /dev/null afterwards (no reference to the source lingers).
func TestSharedTableManyFds(t *testing.T) {
	var extra []int
	for i := 0; i < 1500; i++ {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Skipf("cannot open many fds here: %v", err)
		}
		extra = append(extra, p[0], p[1])
	}
	defer func() {
		for _, fd := range extra {
			unix.Close(fd)
		}
	}()
	null := devNull(t)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	tpl := newTemplate(t, helperJob(t, "report"), Options{})
	_, r := runReport(t, tpl, []int{null, -1, null, sp[1]}, nil, false)
	if len(r.Fds) != 4 {
		t.Errorf("child has %d fds, want 4: %+v", len(r.Fds), r.Fds)
	}
	var st unix.Stat_t
	if err := unix.Fstat(sp[1], &st); err != nil {
		t.Fatal(err)
	}
	if len(r.Fds) == 4 && (r.Fds[3].Dev != st.Dev || r.Fds[3].Ino != st.Ino) {
		t.Errorf("child fd 3 is not the socket")
	}
	unix.Close(sp[1])
	// Only the child (now exited) and no slot held the other end: EOF.
	buf := make([]byte, 1)
	_ = unix.SetNonblock(sp[0], false)
	tv := unix.Timeval{Sec: 5}
	_ = unix.SetsockoptTimeval(sp[0], unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if n, err := unix.Read(sp[0], buf); n != 0 || err != nil {
		t.Errorf("peer not closed after the start (read %d, %v): a slot still holds it", n, err)
	}
}

func testFdLayout(t *testing.T) {
	null := devNull(t)

	// Descriptors to place, some at numbers that are also targets.
	dir := t.TempDir()
	var files []int
	for i := range 4 {
		fd, err := unix.Open(filepath.Join(dir, fmt.Sprint("f", i)), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		files = append(files, fd)
	}
	// A descriptor that is not close-on-exec and must not leak.
	leak, err := unix.Dup(null)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leak)
	if fl, _ := unix.FcntlInt(uintptr(leak), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC != 0 {
		t.Fatal("dup'd fd is close-on-exec")
	}
	// A non-blocking and a blocking socket.
	nb, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nb[0])
	defer unix.Close(nb[1])
	if err := unix.SetNonblock(nb[1], false); err != nil {
		t.Fatal(err)
	}

	// n is past every number we use, so sources below n overlap targets.
	n := max(slices.Max(files), nb[0], nb[1], null) + 2
	fds := make([]int, n)
	for i := range fds {
		fds[i] = null
	}
	fds[1] = -1 // the report pipe
	// Swap the first two files: each lands on the other's number.
	fds[files[0]] = files[1]
	fds[files[1]] = files[0]
	fds[files[2]] = files[3]
	fds[n-1] = nb[0] // non-blocking
	fds[n-2] = nb[1] // blocking
	if n-2 == files[2] || n-1 == files[2] {
		t.Fatalf("layout collision; n=%d files=%v", n, files)
	}
	fds[3] = files[2]

	flBefore, _ := unix.FcntlInt(uintptr(nb[0]), unix.F_GETFL, 0)
	tpl := newTemplate(t, helperJob(t, "report"), Options{})
	_, r := runReport(t, tpl, fds, nil, false)

	if len(r.Fds) != n {
		t.Errorf("child has %d fds, want %d: %+v", len(r.Fds), n, r.Fds)
	}
	for i, fi := range r.Fds {
		if fi.Fd != i {
			t.Errorf("child fd list[%d] = fd %d, want exactly 0..%d", i, fi.Fd, n-1)
			continue
		}
		if i == 1 {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(fds[i], &st); err != nil {
			t.Fatal(err)
		}
		if fi.Dev != st.Dev || fi.Ino != st.Ino {
			t.Errorf("child fd %d is %d:%d, want parent fd %d (%d:%d)", i, fi.Dev, fi.Ino, fds[i], st.Dev, st.Ino)
		}
		if fi.FdFlags&unix.FD_CLOEXEC != 0 {
			t.Errorf("child fd %d is close-on-exec", i)
		}
	}
	if len(r.Fds) == n {
		if r.Fds[n-1].FlFlags&unix.O_NONBLOCK == 0 {
			t.Errorf("non-blocking socket arrived blocking (flags %#x)", r.Fds[n-1].FlFlags)
		}
		if r.Fds[n-2].FlFlags&unix.O_NONBLOCK != 0 {
			t.Errorf("blocking socket arrived non-blocking (flags %#x)", r.Fds[n-2].FlFlags)
		}
	}
	if flAfter, _ := unix.FcntlInt(uintptr(nb[0]), unix.F_GETFL, 0); flAfter != flBefore {
		t.Errorf("parent socket flags changed: %#x -> %#x", flBefore, flAfter)
	}
}

func TestFdsRequired(t *testing.T) {
	tpl := newTemplate(t, helperJob(t, "exit", "0"), Options{})
	if _, err := tpl.Start([]int{0, 1}, nil, false); err == nil {
		t.Fatal("Start with 2 fds succeeded")
	}
	var se *StartError
	if _, err := tpl.Start([]int{0, 1, 999999}, nil, false); !errors.As(err, &se) || !errors.Is(err, unix.EBADF) {
		t.Fatalf("Start with a closed fd: %v, want StartError EBADF", err)
	} else {
		t.Log(err)
	}
	if z := zombies(t); len(z) > 0 {
		t.Errorf("zombies left: %v", z)
	}
}

// ---------------------------------------------------------------------------
// Process attributes, seen by real programs (a Go child would reset some:
// the Go runtime installs its own signal handlers and raises RLIMIT_NOFILE).

func TestSignalsReset(t *testing.T) {
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP, syscall.SIGUSR2)
	defer signal.Reset(syscall.SIGPIPE, syscall.SIGHUP, syscall.SIGUSR2)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGUSR1) // a caught signal
	defer signal.Reset(syscall.SIGUSR1)
	if m := ignoredSignals(); m&(1<<(unix.SIGPIPE-1)) == 0 || m&(1<<(unix.SIGUSR2-1)) == 0 {
		t.Fatalf("ignoredSignals() = %#x misses SIGPIPE or SIGUSR2", m)
	}

	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprint("fallback=", fallback), func(t *testing.T) {
			setForceFallback(fallback)
			defer setForceFallback(false)
			tpl := newTemplate(t, programJob(t, "cat", "/proc/self/status"), Options{})
			out, st := runOutput(t, tpl)
			if !st.Success() {
				t.Fatalf("cat: %v", st)
			}
			s := procStatus(out)
			for _, k := range []string{"SigIgn", "SigBlk", "SigCgt"} {
				v, err := strconv.ParseUint(s[k], 16, 64)
				if err != nil {
					t.Fatalf("%s: %q: %v", k, s[k], err)
				}
				if v != 0 {
					t.Errorf("%s = %#x, want 0", k, v)
				}
			}
		})
	}
}

// TestFallbackPath runs the fd layout and environment through the clone
// path used where clone3 with CLONE_CLEAR_SIGHAND is not available.
func TestFallbackPath(t *testing.T) {
	setForceFallback(true)
	defer setForceFallback(false)
	t.Run("FdLayout", TestFdLayout)
	t.Run("ArgvAndEnv", TestArgvAndEnv)
	t.Run("StartErrors", TestStartErrors)
}

func TestProcessGroupAndSession(t *testing.T) {
	mySid, _ := unix.Getsid(0)
	for _, session := range []bool{false, true} {
		t.Run(fmt.Sprint("SessionCreate=", session), func(t *testing.T) {
			j := helperJob(t, "report")
			j.SessionCreate = session
			tpl := newTemplate(t, j, Options{})
			null := devNull(t)
			p, r := runReport(t, tpl, []int{null, -1, null}, nil, false)
			if r.Pgid != p.Pid {
				t.Errorf("pgid = %d, want own pid %d", r.Pgid, p.Pid)
			}
			wantSid := mySid
			if session {
				wantSid = p.Pid
			}
			if r.Sid != wantSid {
				t.Errorf("sid = %d, want %d", r.Sid, wantSid)
			}
		})
	}
}

func TestUmaskNiceLimits(t *testing.T) {
	j := programJob(t, "cat", "/proc/self/status", "/proc/self/limits", "/proc/self/stat")
	umask := uint32(0o027)
	nice := 7
	j.Umask = &umask
	j.Nice = &nice
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	j.SoftResourceLimits = []job.RLimit{{Name: "NumberOfFiles", Resource: unix.RLIMIT_NOFILE, Value: 100}, {Name: "Core", Resource: unix.RLIMIT_CORE, Value: 0}}
	j.HardResourceLimits = []job.RLimit{{Name: "Core", Resource: unix.RLIMIT_CORE, Value: 4096}}
	tpl := newTemplate(t, j, Options{})
	out, st := runOutput(t, tpl)
	if !st.Success() {
		t.Fatalf("cat: %v", st)
	}
	if s := procStatus(out); s["Umask"] != "0027" {
		t.Errorf("Umask = %q, want 0027", s["Umask"])
	}
	wantFiles := fmt.Sprintf("Max open files 100 %d files", cur.Max)
	wantCore := "Max core file size 0 4096 bytes"
	var gotFiles, gotCore, stat string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Join(strings.Fields(line), " ")
		switch {
		case strings.HasPrefix(f, "Max open files"):
			gotFiles = f
		case strings.HasPrefix(f, "Max core file size"):
			gotCore = f
		case strings.Contains(line, ") "):
			stat = line
		}
	}
	if gotFiles != wantFiles || gotCore != wantCore {
		t.Errorf("limits %q, %q; want %q, %q", gotFiles, gotCore, wantFiles, wantCore)
	}
	// /proc/self/stat field 19 is nice.
	_, rest, _ := strings.Cut(stat, ") ")
	fields := strings.Fields(rest)
	if len(fields) < 17 || fields[16] != "7" {
		t.Errorf("nice field of %q, want 7", stat)
	}
}

func TestWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	j := helperJob(t, "report")
	j.WorkingDirectory = dir
	tpl := newTemplate(t, j, Options{})
	null := devNull(t)
	_, r := runReport(t, tpl, []int{null, -1, null}, nil, false)
	if r.Cwd != dir {
		t.Errorf("cwd = %q, want %q", r.Cwd, dir)
	}

	j.WorkingDirectory = filepath.Join(dir, "missing")
	tpl = newTemplate(t, j, Options{})
	_, err := tpl.Start([]int{null, null, null}, nil, false)
	var se *StartError
	if !errors.As(err, &se) || !errors.Is(err, unix.ENOENT) || se.Stage != "chdir "+j.WorkingDirectory {
		t.Fatalf("missing WorkingDirectory: %v, want StartError chdir ENOENT", err)
	}
	if z := zombies(t); len(z) > 0 {
		t.Errorf("zombies left: %v", z)
	}
}

func TestStandardPaths(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, []byte("from stdin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	j := programJob(t, "cat")
	umask := uint32(0o022)
	j.Umask = &umask
	j.StandardInPath = in
	j.StandardOutPath = out
	j.StandardErrorPath = filepath.Join(dir, "nodir", "err") // cannot be opened: a warning
	tpl := newTemplate(t, j, Options{})
	null := devNull(t)
	for i := range 2 {
		p, err := tpl.Start([]int{null, null, null}, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Warnings) != 1 || !errors.Is(p.Warnings[0], unix.ENOENT) || !strings.Contains(p.Warnings[0].Error(), "StandardErrorPath") {
			t.Errorf("start %d warnings %v, want one StandardErrorPath ENOENT", i, p.Warnings)
		}
		if st := wait(t, p); !st.Success() {
			t.Fatalf("cat: %v", st)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "from stdin\nfrom stdin\n" {
		t.Errorf("StandardOutPath holds %q, want two appended copies", b)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("StandardOutPath mode %v (%v), want 0644", fi.Mode(), err)
	}
}

// ---------------------------------------------------------------------------
// Start failures.

// TestStartErrors: a program that cannot be exec'd gives a *StartError
// naming the job, the path, the stage and the errno: from Start at once,
// and for StartAsync from Reap (the child exits 127).
func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	null := devNull(t)
	for _, async := range []bool{false, true} {
		for _, tc := range []struct {
			path string
			want unix.Errno
		}{
			{filepath.Join(dir, "missing"), unix.ENOENT},
			{noexec, unix.EACCES},
		} {
			j := &job.Job{Label: "test.fail", Path: tc.path, Argv: []string{tc.path}}
			err := startFailure(t, newTemplate(t, j, Options{}), []int{null, null, null}, async)
			var se *StartError
			if !errors.As(err, &se) {
				t.Fatalf("%s (async %v): err %v, want *StartError", tc.path, async, err)
			}
			if se.Stage != "execve" || !errors.Is(err, tc.want) || se.Label != "test.fail" || se.Path != tc.path {
				t.Errorf("%s (async %v): %#v, want execve %v", tc.path, async, se, tc.want)
			}
			want := fmt.Sprintf("job test.fail: start %s: execve: %v", tc.path, tc.want)
			if err.Error() != want {
				t.Errorf("message %q, want %q", err, want)
			}
		}
	}
	if z := zombies(t); len(z) > 0 {
		t.Errorf("zombies left: %v", z)
	}
}

// startFailure starts tpl and returns its start error: Start's, or for an
// asynchronous start the one Reap reports (with exit status 127) — or,
// under the forced clone fallback, where StartAsync starts synchronously,
// the one it returns. A start that succeeds fails the test.
func startFailure(t *testing.T, tpl *Template, fds []int, async bool) error {
	t.Helper()
	if !async {
		p, err := tpl.Start(fds, nil, false)
		if err == nil {
			st := wait(t, p)
			t.Fatalf("start succeeded (%v), want a start error", st)
		}
		return err
	}
	p, err := tpl.StartAsync(fds, nil)
	if err != nil {
		if fallbackForced() {
			return err
		}
		t.Fatalf("StartAsync: %v (want the failure at Reap)", err)
	}
	st := wait(t, p)
	if st.Code != 127 || st.StartErr == nil {
		t.Fatalf("status %v, StartErr %v; want exit 127 with a start error", st, st.StartErr)
	}
	return st.StartErr
}

func TestNewTemplateErrors(t *testing.T) {
	if _, _, err := NewTemplate(&job.Job{Label: "x"}, Options{}); err == nil {
		t.Error("job without a program accepted")
	}
	j := programJob(t, "true")
	j.UserName = "sockd-no-such-user"
	_, _, err := NewTemplate(j, Options{AsRoot: true})
	if err == nil || !strings.Contains(err.Error(), "job test.true: UserName:") {
		t.Errorf("unknown user: %v, want an error naming the job and UserName", err)
	}
	j.UserName = "root"
	j.GroupName = "sockd-no-such-group"
	_, _, err = NewTemplate(j, Options{AsRoot: true})
	if err == nil || !strings.Contains(err.Error(), "job test.true: GroupName:") {
		t.Errorf("unknown group: %v, want an error naming the job and GroupName", err)
	}
	// Not root: refused, never ignored (the job would run as sockd).
	j.GroupName = ""
	for key, set := range map[string]func(){
		"UserName":      func() { j.UserName = "sockd-no-such-user" },
		"RootDirectory": func() { j.RootDirectory = "/nonexistent" },
	} {
		j.UserName, j.RootDirectory = "", ""
		set()
		if _, _, err := NewTemplate(j, Options{AsRoot: false}); err == nil || !strings.Contains(err.Error(), "job test.true: "+key+":") {
			t.Errorf("as non-root, %s: %v, want an error naming it", key, err)
		}
	}
	// Path empty: argv[0] looked up on PATH.
	tpl, _, err := NewTemplate(&job.Job{Label: "y", ProgramArguments: []string{"true"}}, Options{})
	if err != nil || !filepath.IsAbs(tpl.Path()) {
		t.Errorf("PATH lookup: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Exit statuses.

func TestExitStatus(t *testing.T) {
	null := devNull(t)
	start := func(args ...string) *Process {
		j := helperJob(t, args...)
		j.SoftResourceLimits = []job.RLimit{{Name: "Core", Resource: unix.RLIMIT_CORE, Value: 0}}
		p, err := newTemplate(t, j, Options{}).Start([]int{null, null, null}, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	st := wait(t, start("exit", "3"))
	if st.Code != 3 || st.Signal != 0 || st.Success() || st.Crashed() || st.String() != "exit status 3" {
		t.Errorf("exit 3: %+v %q", st, st)
	}
	st = wait(t, start("exit", "0"))
	if !st.Success() || st.String() != "exit status 0" {
		t.Errorf("exit 0: %+v", st)
	}
	st = wait(t, start("die", strconv.Itoa(int(unix.SIGSEGV))))
	if st.Signal != unix.SIGSEGV || !st.Crashed() || st.CoreDumped || st.String() != "signal SIGSEGV" {
		t.Errorf("SIGSEGV: %+v %q", st, st)
	}
	st = wait(t, start("die", strconv.Itoa(int(unix.SIGABRT))))
	if st.Signal != unix.SIGABRT || !st.Crashed() {
		t.Errorf("SIGABRT: %+v %q", st, st)
	}

	// Signal through the pidfd: not a crash.
	p := start("sleep")
	if _, done, err := p.Reap(); done || err != nil {
		t.Fatalf("Reap of a running process: done=%v err=%v", done, err)
	}
	if err := p.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st = wait(t, p)
	if st.Signal != unix.SIGTERM || st.Crashed() || st.Success() || st.String() != "signal SIGTERM" {
		t.Errorf("SIGTERM: %+v", st)
	}
	// Reaped: repeated calls are harmless.
	if st2, done, err := p.Reap(); !done || err != nil || st2 != st {
		t.Errorf("second Reap: %v %v %v", st2, done, err)
	}
	if err := p.Signal(unix.SIGTERM); err != nil {
		t.Errorf("Signal after reap: %v", err)
	}
	if p.Pidfd() != -1 {
		t.Errorf("pidfd %d after reap", p.Pidfd())
	}

	// The process group.
	p = start("sleep")
	if err := p.SignalGroup(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st = wait(t, p); st.Signal != unix.SIGKILL {
		t.Errorf("SignalGroup SIGKILL: %+v", st)
	}
	if err := p.SignalGroup(unix.SIGKILL); err != nil {
		t.Errorf("SignalGroup after exit: %v", err)
	}
	if s := (ExitStatus{Code: -1, Signal: unix.SIGSEGV, CoreDumped: true}).String(); s != "signal SIGSEGV (core dumped)" {
		t.Errorf("String = %q", s)
	}
}

// ---------------------------------------------------------------------------
// Leaks and concurrency.

func TestNoZombiesNoFdLeak(t *testing.T) {
	j := programJob(t, "true")
	tpl := newTemplate(t, j, Options{BaseEnv: os.Environ()})
	null := devNull(t)
	base := openFdCount(t)
	for i := range 200 {
		p, err := tpl.Start([]int{null, null, null}, []string{"N=" + strconv.Itoa(i)}, i%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		if st := wait(t, p); !st.Success() {
			t.Fatalf("start %d: %v", i, st)
		}
	}
	if z := zombies(t); len(z) > 0 {
		t.Errorf("zombies left: %v", z)
	}
	if n := openFdCount(t); n != base {
		t.Errorf("open fds %d, baseline %d", n, base)
	}
}

func TestConcurrentStarts(t *testing.T) {
	const workers, total = 8, 500
	null := devNull(t)
	tpls := make([]*Template, 7)
	for code := range tpls {
		tpls[code] = newTemplate(t, helperJob(t, "exit", strconv.Itoa(code)), Options{})
	}
	var wg sync.WaitGroup
	errs := make(chan error, total)
	next := make(chan int, total)
	for i := range total {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				code := i % len(tpls)
				p, err := tpls[code].Start([]int{null, null, null}, []string{"I=" + strconv.Itoa(i)}, i%3 == 0)
				if err != nil {
					errs <- err
					continue
				}
				st, err := waitExit(p, 30*time.Second)
				if err != nil || st.Code != code || st.Signal != 0 {
					errs <- fmt.Errorf("start %d: %v err=%v, want exit %d", i, st, err, code)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 10 {
			t.Error(err)
		}
	}
	if z := zombies(t); len(z) > 0 {
		t.Errorf("zombies left: %v", z)
	}
}

// TestTemplateEnvShared: templates built on one base environment share one
// copy of it when their own variables agree, and get their own when they
// do not; a second base with the same contents shares too.
func TestTemplateEnvShared(t *testing.T) {
	base := []string{"PATH=/usr/bin:/bin", "KEEP=base", "LISTEN_FDS=3"}
	mk := func(base []string, vars ...job.EnvVar) *Template {
		j := &job.Job{Label: "t", Path: "/bin/true", Argv: []string{"/bin/true"}, EnvironmentVariables: vars}
		return newTemplate(t, j, Options{BaseEnv: base})
	}
	a, b := mk(base), mk(base)
	c := mk(base, job.EnvVar{Name: "KEEP", Value: "job"})
	d := mk(base, job.EnvVar{Name: "KEEP", Value: "job"})
	e := mk(append([]string(nil), base...))
	same := func(x, y *Template) bool { return unsafe.SliceData(x.envbuf) == unsafe.SliceData(y.envbuf) }
	if !same(a, b) || !same(c, d) || !same(a, e) {
		t.Errorf("equal environments not shared: a=b %v, c=d %v, a=e %v", same(a, b), same(c, d), same(a, e))
	}
	if same(a, c) {
		t.Errorf("a job variable did not change the environment")
	}
	for _, c := range []struct {
		tpl  *Template
		want string
	}{{a, "PATH=/usr/bin:/bin KEEP=base"}, {c, "PATH=/usr/bin:/bin KEEP=job"}} {
		if got := strings.Join(c.tpl.Env(), " "); got != c.want {
			t.Errorf("Env() = %q, want %q", got, c.want)
		}
	}
}
