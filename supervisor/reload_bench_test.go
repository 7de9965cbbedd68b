//go:build linux

package supervisor

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/job"
)

// reloadFixture is a supervisor serving n inetd jobs on Unix sockets and
// one internal echo job on TCP (the probe), whose Load returns the jobs
// with their program's argument set to the current generation: each
// reload changes all n jobs.
type reloadFixture struct {
	s      *Supervisor
	probe  string // host:port of the probe job
	gen    atomic.Int64
	cancel context.CancelFunc
	done   chan error
	n      int
	// control is the supervisor's control socket.
	control string
}

func decodeJob(tb testing.TB, plist string) *job.Job {
	tb.Helper()
	j, diags := job.Decode([]byte(plist), "reload.plist")
	if j == nil {
		tb.Fatalf("decode: %v", diags)
	}
	return j
}

// reloadFiles returns the job files of the n inetd jobs of generation gen
// and of the probe.
func reloadFiles(dir string, n int, gen int64, port int) []string {
	files := make([]string, 0, n+1)
	for i := 0; i < n; i++ {
		files = append(files, fmt.Sprintf(`<plist version="1.0"><dict>
<key>Label</key><string>scale.%d</string>
<key>ProgramArguments</key><array><string>/bin/echo</string><string>gen%d</string></array>
<key>inetdCompatibility</key><dict><key>Wait</key><false/></dict>
<key>Sockets</key><dict><key>L</key><dict><key>SockPathName</key><string>%s/s%d.sock</string></dict></dict>
</dict></plist>`, i, gen, dir, i))
	}
	return append(files, fmt.Sprintf(`<plist version="1.0"><dict>
<key>Label</key><string>probe</string>
<key>SockdInternal</key><string>echo</string>
<key>Sockets</key><dict><key>L</key><dict>
<key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>%d</string>
</dict></dict></dict></plist>`, port))
}

// decodeAll decodes files, as a reload does.
func decodeAll(tb testing.TB, files []string) []*job.Job {
	jobs := make([]*job.Job, len(files))
	for i, f := range files {
		jobs[i] = decodeJob(tb, f)
	}
	return jobs
}

// shmDir is a directory on tmpfs when there is one: on a disk file system
// each bind is an inode creation that can cost a millisecond.
func shmDir(tb testing.TB) string {
	dir, err := os.MkdirTemp("/dev/shm", "sockd-reload-")
	if err != nil {
		return tb.TempDir()
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func startReloadFixture(tb testing.TB, n int) *reloadFixture {
	dir := shmDir(tb)
	port := freeTCPPort(tb)
	f := &reloadFixture{probe: fmt.Sprintf("127.0.0.1:%d", port), n: n, done: make(chan error, 1)}
	// Decoding is part of every reload (the files are in memory: the
	// fixture leaves the disk out).
	gens := [2][]string{reloadFiles(dir, n, 0, port), reloadFiles(dir, n, 1, port)}
	f.control = filepath.Join(dir, "control.sock")
	s, err := New(Config{Load: func() ([]*job.Job, job.Diags) {
		return decodeAll(tb, gens[f.gen.Load()%2]), nil
	}, Log: zap.NewNop(), Control: f.control})
	if err != nil {
		tb.Fatal(err)
	}
	f.s = s
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	// The initial load counts as applied only at its very end: a reload
	// the test asks for while the initial one still applies its last jobs
	// would otherwise take the initial one's end for its own.
	loaded := make(chan struct{})
	s.reloadDone = func() { close(loaded); s.reloadDone = nil } // before Run: no loop yet
	go func() { f.done <- s.Run(ctx) }()
	select {
	case <-loaded:
	case <-time.After(60 * time.Second):
		tb.Fatalf("jobs not loaded after 60s: %d", s.JobCount())
	}
	if got := s.JobCount(); got != n+1 {
		tb.Fatalf("%d jobs loaded, want %d", got, n+1)
	}
	return f
}

func (f *reloadFixture) stop(tb testing.TB) {
	f.cancel()
	select {
	case err := <-f.done:
		if err != nil {
			tb.Error(err)
		}
	case <-time.After(60 * time.Second):
		tb.Error("supervisor did not stop within 60s")
	}
}

// reload changes every job and returns once the supervisor has applied it.
func (f *reloadFixture) reload(tb testing.TB) {
	f.gen.Add(1)
	applied := make(chan struct{})
	f.s.loop.post(func() { f.s.reloadDone = func() { close(applied) } })
	f.s.Reload()
	select {
	case <-applied:
	case <-time.After(120 * time.Second):
		tb.Fatal("reload not applied within 120s")
	}
}

// echoOnce connects to the probe, writes a byte and reads it back.
func echoOnce(addr string) (time.Duration, error) {
	t0 := time.Now()
	c, err := net.DialTimeout("tcp4", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte{'x'}); err != nil {
		return 0, err
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// probeLoop runs echoOnce until stop is closed and returns every latency
// and the errors seen.
func probeLoop(addr string, stop <-chan struct{}) (lat []time.Duration, errs []error) {
	for i := 0; i < 1_000_000; i++ {
		select {
		case <-stop:
			return lat, errs
		default:
		}
		d, err := echoOnce(addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lat = append(lat, d)
	}
	return lat, errs
}

// duringReloads runs the probe loop while count reloads are applied.
func duringReloads(tb testing.TB, f *reloadFixture, count int) ([]time.Duration, []error) {
	stop := make(chan struct{})
	var lat []time.Duration
	var errs []error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		lat, errs = probeLoop(f.probe, stop)
	}()
	for i := 0; i < count; i++ {
		f.reload(tb)
	}
	close(stop)
	wg.Wait()
	return lat, errs
}

func quantile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	return s[int(q*float64(len(s)-1))]
}

// benchReloadStall reloads n changed inetd jobs while a client loops on
// the probe job; it reports the probe's p99 and worst round trip during
// the reloads (the stall other jobs see) and the reload time.
func benchReloadStall(b *testing.B, n int) {
	f := startReloadFixture(b, n)
	defer f.stop(b)
	var all []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lat, errs := duringReloads(b, f, 1)
		if len(errs) > 0 {
			b.Fatalf("probe failed %d times during a reload: %v", len(errs), errs[0])
		}
		all = append(all, lat...)
	}
	b.StopTimer()
	b.ReportMetric(float64(quantile(all, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(quantile(all, 1).Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(len(all))/float64(b.N), "probes/op")
}

// BenchmarkReloadStall3000 and BenchmarkReloadStall10000 measure what a
// reload changing 3,000 or 10,000 inetd jobs costs another job: the p99
// and the worst round trip of a client looping on an internal echo job
// meanwhile (issue 15: under 50 ms).
func BenchmarkReloadStall3000(b *testing.B)  { benchReloadStall(b, 3000) }
func BenchmarkReloadStall10000(b *testing.B) { benchReloadStall(b, 10000) }

// readUnix reads what the inetd job on a Unix socket path answers.
func readUnix(path string) (string, error) {
	c, err := net.DialTimeout("unix", path, 10*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// TestReloadKeepsServing reloads 10,000 changed inetd jobs while a
// client loops on another job: no probe connection fails, the probe gets
// answers during the reloads (the loop is not held for the whole reload),
// and the changed jobs answer with their new definition afterwards.
func TestReloadKeepsServing(t *testing.T) {
	if testing.Short() {
		t.Skip("binds 10,000 sockets; skipped with -short")
	}
	n := 10000
	if raceEnabled {
		n = 500
	}
	f := startReloadFixture(t, n)
	defer f.stop(t)
	lat, errs := duringReloads(t, f, 1)
	if len(errs) > 0 {
		t.Fatalf("%d probe connections failed during the reloads, first: %v", len(errs), errs[0])
	}
	if len(lat) < 2 {
		t.Errorf("the probe got %d answers during a reload of %d jobs: the loop was held", len(lat), n)
	}
	t.Logf("%d probes during a reload of %d jobs: p99 %v, max %v", len(lat), n, quantile(lat, 0.99), quantile(lat, 1))
	dir := f.s.reg.Sockets("scale.0")[0].Addr
	for _, i := range []int{0, n / 2, n - 1} {
		path := filepath.Join(filepath.Dir(dir), fmt.Sprintf("s%d.sock", i))
		got, err := readUnix(path)
		if err != nil || got != "gen1\n" {
			t.Errorf("job %d after the reload: %q, %v; want gen1", i, got, err)
		}
	}
}
