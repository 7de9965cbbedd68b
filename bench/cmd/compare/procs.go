package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one server process started by the driver.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when Wait returned
	waitErr error
}

// startProc starts argv in its own process group with stdout and stderr in
// a log file under dir.
func startProc(dir, name string, argv []string, env []string) (*proc, error) {
	logPath := filepath.Join(dir, fmt.Sprintf("%s-%d.log", sanitize(name), time.Now().UnixNano()))
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", name, err)
	}
	defer lf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = nil
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", name, argv[0], err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	execMu.Lock()
	execChildren[p.pid()] = true
	execMu.Unlock()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == '=' {
			return '_'
		}
		return r
	}, s)
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logTail returns the last lines of the process log, for error messages.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return "\n\t" + strings.Join(lines, "\n\t")
}

// stop ends the process, its process group and every descendant (children
// started in their own sessions included): SIGTERM, up to 2 s, then SIGKILL.
func (p *proc) stop() {
	if p == nil {
		return
	}
	desc := descendants(p.pid())
	pgid := p.pid()
	_ = syscall.Kill(p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // leftovers in the group
	for _, d := range append(desc, descendants(os.Getpid())...) {
		if d == p.pid() {
			continue
		}
		_ = syscall.Kill(d, syscall.SIGKILL)
	}
	reapOrphans()
}

// reapOrphans reaps processes that were re-parented to the driver (it is a
// child subreaper) and have exited. It only waits for pids that are not
// direct children started through exec.Cmd, so their Wait is not disturbed.
func reapOrphans() {
	deadline := time.Now().Add(time.Second)
	for {
		var pending []int
		for _, pid := range children(os.Getpid()) {
			if isExecChild(pid) {
				continue
			}
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			if err == nil && got == 0 {
				pending = append(pending, pid)
			}
		}
		if len(pending) == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// execChildren are the pids of processes started by startProc.
var (
	execMu       sync.Mutex
	execChildren = map[int]bool{}
)

func isExecChild(pid int) bool {
	execMu.Lock()
	defer execMu.Unlock()
	return execChildren[pid]
}

// children lists the pids whose parent is ppid (from /proc/*/stat).
func children(ppid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err == nil && st.ppid == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// descendants lists every descendant of pid (breadth first).
func descendants(pid int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(p); err == nil {
			parent[p] = st.ppid
		}
	}
	var out []int
	frontier := []int{pid}
	for len(frontier) > 0 && len(out) < 100000 {
		var next []int
		for p, pp := range parent {
			for _, f := range frontier {
				if pp == f {
					next = append(next, p)
				}
			}
		}
		out = append(out, next...)
		frontier = next
	}
	return out
}

// procStat holds the fields of /proc/PID/stat the bench uses.
type procStat struct {
	ppid           int
	utime, stime   int64 // clock ticks, this process's own threads
	cutime, cstime int64 // clock ticks, waited-for children
	rssPages       int64
	threads        int
	state          byte
	startTimeTicks int64
	comm           string
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// comm may contain spaces and parentheses: split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	j := bytes.IndexByte(b, '(')
	if i < 0 || j < 0 || i+2 >= len(b) {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	n := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
	// f[0] is field 3 (state); field N is f[N-3].
	st := procStat{
		comm:           string(b[j+1 : i]),
		state:          f[0][0],
		ppid:           int(n(1)),
		utime:          n(11),
		stime:          n(12),
		cutime:         n(13),
		cstime:         n(14),
		threads:        int(n(17)),
		startTimeTicks: n(19),
		rssPages:       n(21),
	}
	return st, nil
}

// cpuSample is a process's CPU use at one moment, in clock ticks.
type cpuSample struct {
	own, withChildren int64
}

func sampleCPU(pid int) (cpuSample, error) {
	st, err := readStat(pid)
	if err != nil {
		return cpuSample{}, err
	}
	own := st.utime + st.stime
	return cpuSample{own: own, withChildren: own + st.cutime + st.cstime}, nil
}

// memKiB returns VmRSS and VmHWM of a process in KiB.
func memKiB(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &rss
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &hwm
		default:
			continue
		}
		fs := strings.Fields(line)
		if len(fs) >= 2 {
			*dst, _ = strconv.ParseInt(fs[1], 10, 64)
		}
	}
	return rss, hwm, sc.Err()
}

// tcpListening reports whether something listens on 127.0.0.1:port, from
// /proc/net/tcp, without connecting (a connect would activate the service).
func tcpListening(port int) (bool, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false, err
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == want && f[3] == "0A" {
			return true, nil
		}
	}
	return false, nil
}

// unixListening counts listening Unix sockets whose path starts with prefix,
// from /proc/net/unix.
func unixListening(prefix string) (int, error) {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		// Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 is
		// __SO_ACCEPTCON (listening).
		if len(fs) >= 8 && fs[3] == "00010000" && strings.HasPrefix(fs[7], prefix) {
			n++
		}
	}
	return n, sc.Err()
}

// waitFor polls cond every interval until it is true, the process exits, or
// timeout passes.
func waitFor(ctx context.Context, p *proc, timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("%s: waiting for %s: %w", p.name, what, err)
		}
		if ok {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v) before %s:%s", p.name, p.waitErr, what, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %s after %v:%s", p.name, what, timeout, p.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// waitTCP waits until the server listens on 127.0.0.1:port.
func waitTCP(ctx context.Context, p *proc, port int) error {
	return waitFor(ctx, p, 10*time.Second, 2*time.Millisecond, fmt.Sprintf("listener on 127.0.0.1:%d", port),
		func() (bool, error) { return tcpListening(port) })
}

// freePort picks a port in 20000-29999 (below the ephemeral range, so
// client connections never take it) that is free on 127.0.0.1 for TCP.
func freePort() (int, error) {
	for range 200 {
		port := 20000 + rand.IntN(10000)
		if reserved[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		reserved[port] = true
		return port, nil
	}
	return 0, errors.New("no free port in 20000-29999")
}

// reserved holds ports handed out in this run, so two servers never share.
var reserved = map[int]bool{}

// machineBusy returns the busy and total CPU ticks of the whole machine from
// the first line of /proc/stat (busy excludes idle and iowait).
func machineBusy() (busy, total int64, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, errors.New("/proc/stat: empty")
	}
	fs := strings.Fields(sc.Text())
	if len(fs) < 6 || fs[0] != "cpu" {
		return 0, 0, errors.New("/proc/stat: no cpu line")
	}
	var idle int64
	for i, v := range fs[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		total += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return total - idle, total, nil
}

// bulkCPU samples, around a bulk case, the CPU of the forwarding process
// (none for a direct connection) and of the whole machine.
type bulkCPU struct {
	proc             *proc
	own              int64
	busy, total      int64
	okOwn, okMachine bool
}

func startBulkCPU(p *proc) bulkCPU {
	c := bulkCPU{proc: p}
	if p != nil {
		if s, err := sampleCPU(p.pid()); err == nil {
			c.own, c.okOwn = s.own, true
		}
	}
	var err error
	c.busy, c.total, err = machineBusy()
	c.okMachine = err == nil
	return c
}

// finish records CPU seconds per GiB moved (m.Result.Bytes) into m.
func (c bulkCPU) finish(m *measurement) {
	if m.Result == nil || m.Result.Bytes <= 0 {
		return
	}
	gib := float64(m.Result.Bytes) / (1 << 30)
	if c.okOwn {
		if s, err := sampleCPU(c.proc.pid()); err == nil {
			m.CPUSecPerGiB = float64(s.own-c.own) / clockTicks / gib
		}
	}
	if c.okMachine {
		if b, t, err := machineBusy(); err == nil && t > c.total {
			m.MachineCPUSecPerGiB = float64(b-c.busy) / clockTicks / gib
			m.MachineBusyPct = 100 * float64(b-c.busy) / float64(t-c.total)
		}
	}
}

// treeCPU returns the CPU ticks used by the driver and all its live
// descendants, including the children they have reaped.
func treeCPU() int64 {
	self := os.Getpid()
	var sum int64
	for _, pid := range append(descendants(self), self) {
		if st, err := readStat(pid); err == nil {
			sum += st.utime + st.stime + st.cutime + st.cstime
		}
	}
	return sum
}

// noiseMeter measures how much CPU processes outside the benchmark used
// during an interval, as a percentage of the machine.
type noiseMeter struct {
	busy, total, tree int64
	ok                bool
}

func startNoise() noiseMeter {
	b, t, err := machineBusy()
	return noiseMeter{busy: b, total: t, tree: treeCPU(), ok: err == nil}
}

// othersPct is the share of all CPU time since start used by processes
// outside the driver's tree.
func (n noiseMeter) othersPct() float64 {
	b, t, err := machineBusy()
	if err != nil || !n.ok || t <= n.total {
		return 0
	}
	others := float64((b - n.busy) - (treeCPU() - n.tree))
	if others < 0 {
		others = 0
	}
	return 100 * others / float64(t-n.total)
}
