//go:build linux

package supervisor

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/job"
)

// timedJobs are n socketless jobs running /bin/true: with keys (the
// trigger keys, "" for none) and a label prefix.
func timedJobs(tb testing.TB, n int, prefix, keys string) []*job.Job {
	jobs := make([]*job.Job, n)
	for i := range jobs {
		jobs[i] = decodeJob(tb, fmt.Sprintf(`<plist version="1.0"><dict>
<key>Label</key><string>%s.%d</string>
<key>ProgramArguments</key><array><string>/bin/true</string></array>
<key>ThrottleInterval</key><integer>0</integer>%s
</dict></plist>`, prefix, i, keys))
	}
	return jobs
}

// runJobs runs a supervisor over jobs until the returned stop is called.
func runJobs(tb testing.TB, jobs []*job.Job, log *zap.Logger) (s *Supervisor, stop func()) {
	s, err := New(Config{Load: func() ([]*job.Job, job.Diags) { return jobs, nil }, Log: log})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(120 * time.Second)
	for s.JobCount() != len(jobs) {
		if time.Now().After(deadline) {
			tb.Fatalf("jobs not loaded after 120s: %d of %d", s.JobCount(), len(jobs))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s, func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			tb.Error("supervisor did not stop within 60s")
		}
	}
}

// procStatus reads a field of /proc/self/status (VmRSS in KiB, Threads).
func procStatus(tb testing.TB, field string) int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleTimers: sockd holding 10,000 jobs that only timers start
// (StartInterval of a day; StartCalendarInterval at a minute 12 hours
// away), against 10,000 jobs without triggers and none: the CPU the
// process uses while idle, per second (one op is one idle second), its
// threads, and the RSS and heap the jobs add.
func BenchmarkIdleTimers(b *testing.B) {
	far := time.Now().Add(12 * time.Hour)
	cases := []struct {
		name string
		n    int
		keys string
	}{
		{"none", 0, ""},
		{"plain-10000", 10000, ""},
		{"interval-10000", 10000, `<key>StartInterval</key><integer>86400</integer>`},
		{"calendar-10000", 10000, fmt.Sprintf(`<key>StartCalendarInterval</key><dict><key>Hour</key><integer>%d</integer><key>Minute</key><integer>%d</integer></dict>`, far.Hour(), far.Minute())},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			runtime.GC()
			debug.FreeOSMemory()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			rss0 := procStatus(b, "VmRSS")
			jobs := timedJobs(b, tc.n, "idle", tc.keys)
			_, stop := runJobs(b, jobs, zap.NewNop())
			defer stop()
			runtime.GC()
			debug.FreeOSMemory()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			rss := procStatus(b, "VmRSS")
			time.Sleep(200 * time.Millisecond) // past the load's last work
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				time.Sleep(time.Second)
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/s")
			b.ReportMetric(float64(procStatus(b, "Threads")), "threads")
			b.ReportMetric(float64(rss-rss0)/1024, "rss-added-MiB")
			if tc.n > 0 {
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(tc.n), "heap-B/job")
			}
			runtime.KeepAlive(jobs)
		})
	}
}

// BenchmarkTimedStartLatency: how long after its due time a timed start
// is made (due -> process spawned, from the supervisor's own log lines) on
// an otherwise idle machine: one job with StartInterval 1, alone and among
// 10,000 jobs with timers further off. One op is one start; run it with
// -benchtime 30x.
func BenchmarkTimedStartLatency(b *testing.B) {
	for _, others := range []int{0, 10000} {
		b.Run(fmt.Sprintf("others-%d", others), func(b *testing.B) {
			core, logs := observer.New(zap.DebugLevel)
			jobs := append(timedJobs(b, 1, "tick", `<key>StartInterval</key><integer>1</integer>`),
				timedJobs(b, others, "far", `<key>StartInterval</key><integer>86400</integer>`)...)
			_, stop := runJobs(b, jobs, zap.New(core))
			defer stop()
			b.ResetTimer()
			deadline := time.Now().Add(time.Duration(b.N)*time.Second + 30*time.Second)
			for starts(logs) < b.N && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			b.StopTimer()
			lat := startLatencies(logs)
			if len(lat) < b.N {
				b.Fatalf("%d starts of %d", len(lat), b.N)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(quantile(lat, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		})
	}
}

// starts counts the "started" lines of the tick job.
func starts(logs *observer.ObservedLogs) int {
	return logs.Filter(func(e observer.LoggedEntry) bool {
		return e.Message == "started" && e.ContextMap()["job"] == "tick.0"
	}).Len()
}

// startLatencies pairs each "timed trigger due" line of the tick job with
// the "started" line after it: started time minus due time.
func startLatencies(logs *observer.ObservedLogs) []time.Duration {
	var out []time.Duration
	var due time.Time
	for _, e := range logs.All() {
		m := e.ContextMap()
		if m["job"] != "tick.0" {
			continue
		}
		switch e.Message {
		case "timed trigger due":
			due, _ = m["due"].(time.Time)
		case "started":
			if !due.IsZero() {
				out = append(out, e.Time.Sub(due))
				due = time.Time{}
			}
		}
	}
	return out
}
