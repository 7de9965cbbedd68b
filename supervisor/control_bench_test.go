//go:build linux

package supervisor

import (
	"sync"
	"testing"
	"time"

	"github.com/sockd/sockd/control"
)

// listOnce asks the fixture's supervisor for list and checks the answer.
func listOnce(tb testing.TB, f *reloadFixture) time.Duration {
	t0 := time.Now()
	resp, err := control.Do(f.control, control.Request{Cmd: control.CmdList}, 30*time.Second)
	if err != nil || resp.Status != control.OK || len(resp.Jobs) != f.n+1 {
		tb.Fatalf("list: %v, status %s, %d jobs", err, resp.Status, len(resp.Jobs))
	}
	return time.Since(t0)
}

// probeFor runs the probe loop for d and returns its latencies.
func probeFor(tb testing.TB, f *reloadFixture, d time.Duration) []time.Duration {
	stop := make(chan struct{})
	time.AfterFunc(d, func() { close(stop) })
	lat, errs := probeLoop(f.probe, stop)
	if len(errs) > 0 {
		tb.Fatalf("probe failed %d times: %v", len(errs), errs[0])
	}
	return lat
}

// BenchmarkControlList10000 measures `sockd list --json`'s request with
// 10,000 jobs loaded (the answer is about 3 MB) and what a list loop costs
// another job: the p99 of a client looping on an internal echo job, alone
// and while list runs back to back (issue 16: under 100 ms, and the p99
// within noise).
func BenchmarkControlList10000(b *testing.B) {
	f := startReloadFixture(b, 10000)
	defer f.stop(b)
	alone := probeFor(b, f, time.Second)
	var lists []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lists = append(lists, listOnce(b, f))
	}
	b.StopTimer()
	var busy []time.Duration
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				listOnce(b, f)
			}
		}
	}()
	busy = probeFor(b, f, time.Second)
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(quantile(lists, 0.5).Microseconds())/1000, "list-median-ms")
	b.ReportMetric(float64(quantile(alone, 0.99).Microseconds())/1000, "probe-p99-alone-ms")
	b.ReportMetric(float64(quantile(busy, 0.99).Microseconds())/1000, "probe-p99-listing-ms")
}
