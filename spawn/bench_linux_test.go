//go:build linux && cgo

package spawn

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The benchmarks start a program and reap it, one at a time, for four
// spawners: Template.Start, Template.Start with inetd-style per-connection
// variables, os/exec and syscall.ForkExec. "true" is /bin/true (dynamic, so
// ld.so dominates); "static" is a static C program that returns 0.

const staticTrueSrc = "int main(void) { return 0; }\n"

func benchPrograms(b *testing.B) map[string]string {
	b.Helper()
	progs := map[string]string{"static": buildStatic(b, "true", staticTrueSrc)}
	if p, err := exec.LookPath("true"); err == nil {
		progs["true"] = p
	}
	return progs
}

// inetdEnv is what the supervisor adds per connection in nowait mode.
var inetdEnv = []string{
	"REMOTE_ADDR=127.0.0.1", "REMOTE_PORT=40312", "PROTO=TCP",
	"TCPREMOTEIP=127.0.0.1", "TCPREMOTEPORT=40312",
	"TCPLOCALIP=127.0.0.1", "TCPLOCALPORT=7000", "LAUNCH_JOB_LABEL=bench.job",
}

func benchStart(b *testing.B, extra []string) {
	for _, name := range []string{"static", "true"} {
		path, ok := benchPrograms(b)[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			j := programJob(b, path)
			tpl := newTemplate(b, j, Options{BaseEnv: os.Environ()})
			null := devNull(b)
			fds := []int{null, null, null}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				p, err := tpl.Start(fds, extra, false)
				if err != nil {
					b.Fatal(err)
				}
				// Block until exit via the pidfd, as the supervisor's
				// epoll would.
				pfd := []unix.PollFd{{Fd: int32(p.Pidfd()), Events: unix.POLLIN}}
				for {
					if _, err := unix.Poll(pfd, -1); err != unix.EINTR {
						break
					}
				}
				if st, done, err := p.Reap(); err != nil || !done || !st.Success() {
					b.Fatalf("%v %v %v", st, done, err)
				}
			}
		})
	}
}

func BenchmarkStart(b *testing.B) { benchStart(b, nil) }

func BenchmarkStartExtraEnv(b *testing.B) { benchStart(b, inetdEnv) }

func BenchmarkOSExec(b *testing.B) {
	for _, name := range []string{"static", "true"} {
		path, ok := benchPrograms(b)[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cmd := exec.Command(path)
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSyscallForkExec(b *testing.B) {
	for _, name := range []string{"static", "true"} {
		path, ok := benchPrograms(b)[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			null := devNull(b)
			attr := &syscall.ProcAttr{
				Env:   os.Environ(),
				Files: []uintptr{uintptr(null), uintptr(null), uintptr(null)},
				Sys:   &syscall.SysProcAttr{Setpgid: true},
			}
			b.ReportAllocs()
			for b.Loop() {
				pid, err := syscall.ForkExec(path, []string{path}, attr)
				if err != nil {
					b.Fatal(err)
				}
				var ws syscall.WaitStatus
				for {
					_, err := syscall.Wait4(pid, &ws, 0, nil)
					if err != syscall.EINTR {
						break
					}
				}
				if ws.ExitStatus() != 0 {
					b.Fatal("exit " + strconv.Itoa(ws.ExitStatus()))
				}
			}
		})
	}
}

// BenchmarkInterleaved runs the three spawners in turn in every iteration
// (static program, start and reap) and reports each one's time per start,
// so that their ratio holds even when the machine's load drifts during the
// run. ns/op is the sum of the three.
func BenchmarkInterleaved(b *testing.B) {
	path := buildStatic(b, "true", staticTrueSrc)
	tpl := newTemplate(b, programJob(b, path), Options{BaseEnv: os.Environ()})
	null := devNull(b)
	fds := []int{null, null, null}
	attr := &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{uintptr(null), uintptr(null), uintptr(null)},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	var tStart, tExec, tFork time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		p, err := tpl.Start(fds, inetdEnv, false)
		if err != nil {
			b.Fatal(err)
		}
		pfd := []unix.PollFd{{Fd: int32(p.Pidfd()), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(pfd, -1); err != unix.EINTR {
				break
			}
		}
		if st, done, err := p.Reap(); err != nil || !done || !st.Success() {
			b.Fatalf("%v %v %v", st, done, err)
		}
		t1 := time.Now()
		cmd := exec.Command(path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		pid, err := syscall.ForkExec(path, []string{path}, attr)
		if err != nil {
			b.Fatal(err)
		}
		var ws syscall.WaitStatus
		for {
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
				break
			}
		}
		t3 := time.Now()
		tStart += t1.Sub(t0)
		tExec += t2.Sub(t1)
		tFork += t3.Sub(t2)
		n++
	}
	b.ReportMetric(float64(tStart.Nanoseconds())/float64(n), "spawn-ns/start")
	b.ReportMetric(float64(tExec.Nanoseconds())/float64(n), "osexec-ns/start")
	b.ReportMetric(float64(tFork.Nanoseconds())/float64(n), "forkexec-ns/start")
}
