//go:build linux && cgo

package spawn

import (
	"os"
	"os/exec"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestTmpDiag(t *testing.T) {
	path := buildStatic(t, "true", staticTrueSrc)
	tpl := newTemplate(t, programJob(t, path), Options{BaseEnv: os.Environ()})
	null := devNull(t)
	for _, fb := range []bool{false, true, false, true} {
		setForceFallback(fb)
		var a, b, c, d []time.Duration
		for i := 0; i < 500; i++ {
			t0 := time.Now()
			p, err := tpl.Start([]int{null, null, null}, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			pfd := []unix.PollFd{{Fd: int32(p.Pidfd()), Events: unix.POLLIN}}
			unix.Poll(pfd, -1)
			p.Reap()
			t2 := time.Now()
			a = append(a, t1.Sub(t0))
			b = append(b, t2.Sub(t1))
			t3 := time.Now()
			cmd := exec.Command(path)
			cmd.Start()
			t4 := time.Now()
			cmd.Wait()
			t5 := time.Now()
			c = append(c, t4.Sub(t3))
			d = append(d, t5.Sub(t4))
		}
		med := func(x []time.Duration) time.Duration {
			sort.Slice(x, func(i, j int) bool { return x[i] < x[j] })
			return x[len(x)/2]
		}
		t.Logf("fallback=%v spawn start %v wait %v | os/exec start %v wait %v", fb, med(a), med(b), med(c), med(d))
	}
	setForceFallback(false)
}

func BenchmarkTmpIgnored(b *testing.B) {
	for b.Loop() {
		ignoredSignals()
	}
}

var sinkTmp uint64

func BenchmarkTmpLoop(b *testing.B) {
	for b.Loop() {
		var m uint64
		for i := 0; i < 64; i++ {
			m += uint64(i) * sinkTmp
		}
		sinkTmp += m
	}
}
