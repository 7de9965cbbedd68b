package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func countLines(path string) int {
	data, _ := os.ReadFile(path)
	return len(strings.Split(strings.TrimSpace(string(data)), "\n")) - btoi(len(strings.TrimSpace(string(data))) == 0)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestHandoffActivation: a real Go service using go-systemd's
// activation.ListenersWithNames gets the right sockets by name (it ignores
// them unless LISTEN_PID is its own pid), is started once for many requests,
// and no client of the first burst is refused while it starts.
func TestHandoffActivation(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "starts")
	p1, p2 := freePort(t, "tcp"), freePort(t, "tcp")
	writeJob(t, dir, "act", map[string]any{
		"Label":                "test.activation",
		"ProgramArguments":     helperArgv("activation", counter),
		"EnvironmentVariables": helperEnv(),
		"Sockets": map[string]any{
			"Web":   tcpSocket(p1),
			"Admin": tcpSocket(p2),
		},
	})
	d := startSockd(t, dir)
	if countLines(counter) != 0 {
		t.Fatal("service started before any demand")
	}

	// A burst of clients at a service that is not running yet.
	const burst = 20
	var wg sync.WaitGroup
	replies := make(chan string, burst)
	for i := 0; i < burst; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			port := p1
			if i%2 == 1 {
				port = p2
			}
			c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
			if err != nil {
				replies <- "dial: " + err.Error()
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			b, err := io.ReadAll(c)
			if err != nil {
				replies <- "read: " + err.Error()
				return
			}
			replies <- string(b)
		}(i)
	}
	wg.Wait()
	close(replies)
	var pid string
	for r := range replies {
		if !strings.HasPrefix(r, "pid=") || !strings.Contains(r, "names=Admin:1,Web:1") {
			t.Errorf("reply %q", r)
			continue
		}
		p := strings.Fields(r)[0]
		if pid != "" && p != pid {
			t.Errorf("served by two processes: %s and %s", pid, p)
		}
		pid = p
	}
	// More requests later: still the same single process.
	for i := 0; i < 30; i++ {
		r := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", p1), "")
		if !strings.HasPrefix(r, pid+" ") {
			t.Fatalf("request %d served by %q, want %s", i, r, pid)
		}
	}
	if n := countLines(counter); n != 1 {
		t.Errorf("service started %d times, want 1", n)
	}
	_ = d
}

// TestHandoffLaunchPackage: the launch package gets two named sockets, one
// of them dual-stack (localhost gives ::1 and 127.0.0.1).
func TestHandoffLaunchPackage(t *testing.T) {
	if c, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback here")
	} else {
		c.Close()
	}
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "starts")
	p1, p2 := freePort(t, "tcp"), freePort(t, "tcp")
	writeJob(t, dir, "launch", map[string]any{
		"Label":                "test.launch",
		"ProgramArguments":     helperArgv("launch", counter, "Dual", "Single"),
		"EnvironmentVariables": helperEnv(),
		"Sockets": map[string]any{
			"Dual":   map[string]any{"SockNodeName": "localhost", "SockServiceName": strconv.Itoa(p1)},
			"Single": tcpSocket(p2),
		},
	})
	startSockd(t, dir)
	got4 := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", p1), "")
	got6 := dialRead(t, "tcp6", fmt.Sprintf("[::1]:%d", p1), "")
	gotS := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", p2), "")
	if !strings.HasPrefix(got4, "name=Dual local=127.0.0.1:") {
		t.Errorf("IPv4 Dual: %q", got4)
	}
	if !strings.HasPrefix(got6, "name=Dual local=[::1]:") {
		t.Errorf("IPv6 Dual: %q", got6)
	}
	if !strings.HasPrefix(gotS, "name=Single local=127.0.0.1:") {
		t.Errorf("Single: %q", gotS)
	}
	if n := countLines(counter); n != 1 {
		t.Errorf("started %d times, want 1", n)
	}
}

// TestHandoffEnvBlockingAndRearm: the passed sockets are blocking (sockd's
// documented decision), the environment follows sd_listen_fds(3) and the
// LAUNCH_ convention, and after a child that set O_NONBLOCK exits without
// accepting, sockd watches again and the next child again gets blocking
// sockets.
func TestHandoffEnvBlockingAndRearm(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "reports")
	port := freePort(t, "tcp")
	writeJob(t, dir, "rep", map[string]any{
		"Label":                "test.rep",
		"ProgramArguments":     helperArgv("report-nonblock", out),
		"EnvironmentVariables": helperEnv(),
		"ThrottleInterval":     1,
		"Sockets":              map[string]any{"Listeners": tcpSocket(port)},
	})
	startSockd(t, dir)
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !eventually(10*time.Second, func() bool { return countLines(out) >= 2 }) {
		t.Fatalf("the pending connection did not start the job twice (reports: %d)", countLines(out))
	}
	data, _ := os.ReadFile(out)
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n")[:2] {
		r := parseReport(strings.ReplaceAll(line, " ", "\n"))
		if r["LISTEN_FDS"] != "1" || r["LISTEN_FDNAMES"] != "Listeners" || r["LISTEN_PID"] != r["PID"] {
			t.Errorf("start %d: LISTEN_ vars wrong: %s", i+1, line)
		}
		if r["NONBLOCK3"] != "false" {
			t.Errorf("start %d: fd 3 non-blocking = %s, want false (blocking)", i+1, r["NONBLOCK3"])
		}
		if r["LAUNCH_JOB_LABEL"] != "test.rep" {
			t.Errorf("start %d: LAUNCH_JOB_LABEL %q", i+1, r["LAUNCH_JOB_LABEL"])
		}
	}
}

// TestHandoffOnlyIntendedFds: a real program (the shell) started as a
// handoff job sees exactly fds 0, 1, 2 and 3 (the socket).
func TestHandoffOnlyIntendedFds(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	port := freePort(t, "tcp")
	writeJob(t, dir, "fds", map[string]any{
		"Label":            "test.hfds",
		"ProgramArguments": []string{"/bin/sh", "-c", `ls /proc/$$/fd && readlink /proc/$$/fd/3 | cut -d: -f1`},
		"StandardOutPath":  out,
		"ThrottleInterval": 60,
		"Sockets":          map[string]any{"Listeners": tcpSocket(port)},
	})
	startSockd(t, dir)
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !eventually(10*time.Second, func() bool { b, _ := os.ReadFile(out); return len(b) > 0 }) {
		t.Fatal("job did not run")
	}
	time.Sleep(100 * time.Millisecond)
	b, _ := os.ReadFile(out)
	if string(b) != "0\n1\n2\n3\nsocket\n" {
		t.Errorf("handoff child sees %q, want fds 0 1 2 3 with 3 a socket", b)
	}
}

// TestThrottle: a job that exits at once under steady demand, with
// ThrottleInterval 2 s over 9 s, starts 4-6 times, and sockd's CPU stays
// near idle meanwhile.
func TestThrottle(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "starts")
	port := freePort(t, "tcp")
	writeJob(t, dir, "flap", map[string]any{
		"Label":                "test.flap",
		"ProgramArguments":     helperArgv("count", counter),
		"EnvironmentVariables": helperEnv(),
		"ThrottleInterval":     2,
		"Sockets":              map[string]any{"Listeners": tcpSocket(port)},
	})
	d := startSockd(t, dir)
	cpu0 := procCPU(t, d.pid())
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port)) // never accepted: steady demand
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(9 * time.Second)
	starts := countLines(counter)
	cpu := procCPU(t, d.pid()) - cpu0
	if starts < 4 || starts > 6 {
		t.Errorf("started %d times in 9 s with ThrottleInterval 2 s, want 4-6", starts)
	}
	if cpu > 1500*time.Millisecond {
		t.Errorf("sockd used %v CPU in 9 s while throttling", cpu)
	}
	if d.settledCount("respawning too fast", "test.flap", 2) < 2 {
		t.Errorf("throttle not logged")
	}
	t.Logf("%d starts, sockd CPU %v over 9 s", starts, cpu)
}

// procCPU is utime+stime of a process.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

// TestKeepAlive covers the KeepAlive dictionary: SuccessfulExit true and
// false, Crashed, and PathState appearing and disappearing.
func TestKeepAlive(t *testing.T) {
	cases := []struct {
		name      string
		keepAlive map[string]any
		how       string // shell: how the program ends
		wantMin   int
		wantMax   int
	}{
		{"SuccessfulExit=true,exit0", map[string]any{"SuccessfulExit": true}, "exit 0", 3, 5},
		{"SuccessfulExit=true,exit1", map[string]any{"SuccessfulExit": true}, "exit 1", 1, 1},
		{"SuccessfulExit=false,exit1", map[string]any{"SuccessfulExit": false}, "exit 1", 3, 5},
		{"SuccessfulExit=false,exit0", map[string]any{"SuccessfulExit": false}, "exit 0", 1, 1},
		{"Crashed=true,crash", map[string]any{"Crashed": true}, "kill -SEGV $$", 3, 5},
		{"Crashed=true,exit1", map[string]any{"Crashed": true}, "exit 1", 1, 1},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			counter := filepath.Join(t.TempDir(), "starts")
			writeJob(t, dir, "ka", map[string]any{
				"Label":            "test.ka",
				"ProgramArguments": []string{"/bin/sh", "-c", "echo $$ >> " + counter + "; " + tc.how},
				"ThrottleInterval": 1,
				"KeepAlive":        tc.keepAlive,
			})
			startSockd(t, dir)
			time.Sleep(3500 * time.Millisecond)
			if n := countLines(counter); n < tc.wantMin || n > tc.wantMax {
				t.Errorf("started %d times in 3.5 s, want %d-%d", n, tc.wantMin, tc.wantMax)
			}
		})
	}

	t.Run("PathState", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		counter := filepath.Join(t.TempDir(), "starts")
		flag := filepath.Join(t.TempDir(), "flag")
		writeJob(t, dir, "ps", map[string]any{
			"Label":                "test.pathstate",
			"ProgramArguments":     helperArgv("count", counter),
			"EnvironmentVariables": helperEnv(),
			"ThrottleInterval":     1,
			"KeepAlive":            map[string]any{"PathState": map[string]any{flag: true}},
		})
		startSockd(t, dir)
		time.Sleep(2 * time.Second)
		if n := countLines(counter); n != 0 {
			t.Fatalf("started %d times while the path is missing", n)
		}
		if err := os.WriteFile(flag, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if !eventually(5*time.Second, func() bool { return countLines(counter) >= 2 }) {
			t.Fatalf("not kept alive while the path exists (starts %d)", countLines(counter))
		}
		os.Remove(flag)
		time.Sleep(1500 * time.Millisecond)
		n1 := countLines(counter)
		time.Sleep(2500 * time.Millisecond)
		if n2 := countLines(counter); n2 != n1 {
			t.Errorf("still restarted after the path disappeared: %d -> %d", n1, n2)
		}
	})
}
