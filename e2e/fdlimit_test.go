package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fdLimit is the RLIMIT_NOFILE sockd runs under in the fd-exhaustion tests.
const fdLimit = 64

// fdCase is one kind of job under fd exhaustion: a job whose open
// connections hold sockd's fds (hold), and a job whose clients get an
// answer and are closed (flood).
type fdCase struct {
	name     string
	hold     func(port int) map[string]any
	flood    func(port int) map[string]any
	answered func(got []byte) bool // the flood client has its full answer
}

// TestFdExhaustionFlood: sockd under RLIMIT_NOFILE 64 gets floods of 600
// clients at once (more than nine times the limit), each client with a
// deadline: first at a job whose own connections reach the limit, then
// while the connections of another job hold all of sockd's fds. Every
// client gets its full answer, none sees EOF or a reset without it (none
// is accepted and closed: those sockd has no fds for wait in the backlog);
// while starved sockd stays near idle, and it serves normally afterwards,
// with no fd left over. For an inetd job (the test binary as the child), an
// internal service and a proxy job.
func TestFdExhaustionFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test in -short mode")
	}
	needProgram(t, "prlimit")
	backend := newHoldBackend(t)
	cases := []fdCase{
		{
			name: "inetd",
			hold: func(port int) map[string]any {
				j := nowaitJob("test.fd-hold", port, helperArgv("echo"))
				j["EnvironmentVariables"] = helperEnv()
				return j
			},
			flood: func(port int) map[string]any {
				j := nowaitJob("test.fd-flood", port, helperArgv("report"))
				j["EnvironmentVariables"] = helperEnv()
				return j
			},
			answered: func(got []byte) bool {
				return bytes.Contains(got, []byte("LAUNCH_JOB_LABEL=test.fd-flood\n")) && bytes.Contains(got, []byte("\nPGID="))
			},
		},
		{
			name:     "internal",
			hold:     func(port int) map[string]any { return internalJob("test.fd-hold", port, "echo") },
			flood:    func(port int) map[string]any { return internalJob("test.fd-flood", port, "daytime") },
			answered: func(got []byte) bool { return len(got) == 26 && bytes.HasSuffix(got, []byte("\r\n")) },
		},
		{
			name: "proxy",
			hold: func(port int) map[string]any {
				return proxyLimitJob("test.fd-hold", port, backend.addr(), map[string]any{})
			},
			flood: func(port int) map[string]any {
				return proxyLimitJob("test.fd-flood", port, backend.addr(), map[string]any{})
			},
			answered: func(got []byte) bool { return bytes.HasPrefix(got, []byte("backend\n")) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { testFdExhaustion(t, tc) })
	}
}

func internalJob(label string, port int, service string) map[string]any {
	return map[string]any{
		"Label":         label,
		"SockdInternal": service,
		"Sockets":       map[string]any{"Listeners": tcpSocket(port)},
	}
}

// floodClients is the size of each flood: more than nine times the limit.
const floodClients = 600

func testFdExhaustion(t *testing.T, tc fdCase) {
	dir := t.TempDir()
	holdPort, floodPort := freePort(t, "tcp"), freePort(t, "tcp")
	writeJob(t, dir, "hold", tc.hold(holdPort))
	writeJob(t, dir, "flood", tc.flood(floodPort))
	d := startSockdWith(t, []string{"prlimit", fmt.Sprintf("--nofile=%d:%d", fdLimit, fdLimit), "--"}, nil, nil, dir)
	floodAddr := fmt.Sprintf("127.0.0.1:%d", floodPort)
	if got := readAnswer(t, floodAddr, tc.answered); got.kind != "served" {
		t.Fatalf("before the flood: %s", got)
	}
	time.Sleep(200 * time.Millisecond)
	baseFDs := fdCount(t, d.pid())

	floodAtLimit(t, d, floodAddr, tc.answered)
	floodWhileStarved(t, d, fmt.Sprintf("127.0.0.1:%d", holdPort), floodAddr, tc.answered)

	if got := readAnswer(t, floodAddr, tc.answered); got.kind != "served" {
		t.Errorf("after the floods: %s", got)
	}
	if !eventually(10*time.Second, func() bool { return fdCount(t, d.pid()) <= baseFDs }) {
		t.Errorf("sockd holds %d fds after the floods, %d before: %v", fdCount(t, d.pid()), baseFDs, fdKinds(d.pid()))
	}
	if n := d.countLogs("connection closed", "test.fd-flood") + d.countLogs("closed unserved", "test.fd-flood"); n != 0 {
		t.Errorf("%d lines of connections closed unserved", n)
	}
	if d.countLogs("out of resources", "")+d.countLogs("out of file descriptors", "") == 0 {
		t.Errorf("fd exhaustion not logged")
	}
	for _, line := range d.rawLogLines() {
		if bytes.Contains(line, []byte(`"msg":"out of`)) {
			t.Logf("%s", line)
		}
	}
}

// floodAtLimit: floodClients clients at once; the job's own connections
// and children reach the fd limit. Every client is served, and sockd's CPU
// stays well below the time taken (no busy loop at the limit).
func floodAtLimit(t *testing.T, d *daemon, addr string, answered func([]byte) bool) {
	t.Helper()
	start, cpu0 := time.Now(), procCPU(t, d.pid())
	fl := startFlood(addr, floodClients, answered)
	res := fl.wait()
	wall, cpu := time.Since(start), procCPU(t, d.pid())-cpu0
	t.Logf("flood of %d clients, limit %d: %s in %v, sockd CPU %v", floodClients, fdLimit, res, wall.Round(time.Millisecond), cpu)
	if res["served"] != floodClients {
		t.Errorf("flood: %d of %d clients served (%s); none may be accepted and closed; examples: %v", res["served"], floodClients, res, fl.examples())
	}
	if cpu > 300*time.Millisecond+wall/2 {
		t.Errorf("flood: sockd used %v CPU in %v serving %d clients at the fd limit (busy loop?)", cpu, wall.Round(time.Millisecond), floodClients)
	}
}

// floodWhileStarved: connections of the hold job take every fd of sockd,
// then floodClients clients come. While starved, sockd stays near idle and
// no client ends unserved (they wait in the backlog); once the held
// connections close, every client is served.
func floodWhileStarved(t *testing.T, d *daemon, holdAddr, addr string, answered func([]byte) bool) {
	t.Helper()
	held := holdAll(t, holdAddr, 2*fdLimit)
	if !eventually(10*time.Second, func() bool { return fdCount(t, d.pid()) >= fdLimit-2 }) {
		t.Fatalf("sockd holds %d fds with %d connections open; the test needs it starved (limit %d)", fdCount(t, d.pid()), len(held), fdLimit)
	}
	fl := startFlood(addr, floodClients, answered)
	time.Sleep(500 * time.Millisecond) // the clients connect
	cpu0 := procCPU(t, d.pid())
	time.Sleep(2 * time.Second)
	starvedCPU := procCPU(t, d.pid()) - cpu0
	early := fl.counts()

	start, cpu0 := time.Now(), procCPU(t, d.pid())
	for _, c := range held {
		c.Close()
	}
	res := fl.wait()
	wall, cpu := time.Since(start), procCPU(t, d.pid())-cpu0
	t.Logf("flood of %d clients while starved: in the 2.5 s starved: %s, sockd CPU %v; once the held connections closed: %s in %v, sockd CPU %v",
		floodClients, early, starvedCPU, res, wall.Round(time.Millisecond), cpu)
	if n := early.sum() - early["served"]; n != 0 {
		t.Errorf("starved: %d clients ended unserved (%s); all must wait in the backlog", n, early)
	}
	if starvedCPU > 200*time.Millisecond {
		t.Errorf("starved: sockd used %v CPU in 2 s (busy loop?)", starvedCPU)
	}
	if res["served"] != floodClients {
		t.Errorf("starved: %d of %d clients served (%s); none may be accepted and closed; examples: %v", res["served"], floodClients, res, fl.examples())
	}
	if cpu > 300*time.Millisecond+wall/2 {
		t.Errorf("starved: sockd used %v CPU in %v serving %d clients once fds were freed (busy loop?)", cpu, wall.Round(time.Millisecond), floodClients)
	}
}

// fdKinds counts the open fds of a process by what they are.
func fdKinds(pid int) map[string]int {
	kinds := map[string]int{}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, e := range ents {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if i := strings.IndexAny(l, ":["); i > 0 {
			l = l[:i]
		}
		kinds[l]++
	}
	return kinds
}

// holdAll opens n connections to addr and keeps them open until closed or
// the test ends; they are not waited for (those past sockd's fds wait in
// the backlog).
func holdAll(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var held []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("hold %d: %v", i, err)
		}
		held = append(held, c)
	}
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	return held
}

// outcome is how one client ended.
type outcome struct {
	kind string // served, unserved (EOF or reset without the answer), timeout, dial
	got  []byte
	err  error
}

func (o outcome) String() string {
	return fmt.Sprintf("%s (read %q, %v)", o.kind, o.got, o.err)
}

// readAnswer connects to addr and reads until answered or the end, for at
// most 60 s.
func readAnswer(t *testing.T, addr string, answered func([]byte) bool) outcome {
	t.Helper()
	return client(addr, answered)
}

func client(addr string, answered func([]byte) bool) outcome {
	c, err := net.DialTimeout("tcp4", addr, 30*time.Second)
	if err != nil {
		return outcome{kind: "dial", err: err}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if answered(got) {
			return outcome{kind: "served", got: got}
		}
		if err != nil {
			kind := "unserved"
			if errors.Is(err, os.ErrDeadlineExceeded) {
				kind = "timeout"
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				kind = "error"
			}
			return outcome{kind: kind, got: got, err: err}
		}
	}
}

// flood is a set of concurrent clients.
type flood struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	kinds map[string]int
	first map[string]outcome
}

// startFlood starts n clients of addr at once.
func startFlood(addr string, n int, answered func([]byte) bool) *flood {
	f := &flood{kinds: map[string]int{}, first: map[string]outcome{}}
	for i := 0; i < n; i++ {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			o := client(addr, answered)
			f.mu.Lock()
			f.kinds[o.kind]++
			if _, ok := f.first[o.kind]; !ok {
				f.first[o.kind] = o
			}
			f.mu.Unlock()
		}()
	}
	return f
}

// examples are the first client of each outcome other than served.
func (f *flood) examples() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k, o := range f.first {
		if k != "served" {
			out = append(out, o.String())
		}
	}
	return out
}

// floodResult counts the clients by outcome.
type floodResult map[string]int

func (r floodResult) sum() int {
	n := 0
	for _, v := range r {
		n += v
	}
	return n
}

func (r floodResult) String() string {
	if r.sum() == 0 {
		return "none ended"
	}
	var parts []string
	for _, k := range []string{"served", "unserved", "timeout", "error", "dial"} {
		if r[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", r[k], k))
		}
	}
	return strings.Join(parts, ", ")
}

// wait waits for every client (each ends within 90 s) and counts them.
func (f *flood) wait() floodResult {
	f.wg.Wait()
	return f.counts()
}

// counts counts the clients that ended so far by outcome.
func (f *flood) counts() floodResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := floodResult{}
	for k, n := range f.kinds {
		r[k] = n
	}
	return r
}
