//go:build linux

package supervisor

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/trigger"
)

// TestTimedReason: the reason of a timed start names the trigger and,
// when it is late, why and how many due times it stands for.
func TestTimedReason(t *testing.T) {
	j := &job.Job{Triggers: job.Triggers{StartInterval: 30 * time.Second, Calendar: []job.CalendarInterval{
		{Minute: 0, Hour: 3, Day: job.Any, Weekday: job.Any, Month: job.Any},
		{Minute: 30, Hour: job.Any, Day: job.Any, Weekday: job.Any, Month: job.Any},
	}}}
	due := time.Date(2026, 12, 3, 4, 30, 0, 0, time.UTC)
	cases := []struct {
		f    trigger.Fired[*runJob]
		want string
	}{
		{trigger.Fired[*runJob]{Kind: trigger.Interval, Due: due}, "StartInterval (every 30s)"},
		{trigger.Fired[*runJob]{Kind: trigger.Calendar, Due: due}, "StartCalendarInterval (Minute 30)"},
		{trigger.Fired[*runJob]{Kind: trigger.Calendar, Due: due.Add(-90 * time.Minute), Missed: 3, Slept: 4*time.Hour + 10*time.Minute},
			"StartCalendarInterval (Hour 3 Minute 0), due 2026-12-03 03:00:00 UTC, missed while the machine slept 4h10m0s (3 more due times coalesced into this start)"},
		{trigger.Fired[*runJob]{Kind: trigger.Calendar, Due: due, Stepped: 2 * time.Hour},
			"StartCalendarInterval (Minute 30), due 2026-12-03 04:30:00 UTC, passed over when the clock was set 2h0m0s ahead"},
	}
	for _, tc := range cases {
		if got := timedReason(tc.f, j); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

// TestTriggersKeptAcrossReload: a reload that leaves a job's timers as
// they were keeps their phase, one that changes StartInterval counts from
// the reload, and a removed job leaves no timer, watch or mount behind.
func TestTriggersKeptAcrossReload(t *testing.T) {
	dir := t.TempDir()
	var gen atomic.Int64
	plists := []string{
		`<key>StartInterval</key><integer>3600</integer><key>WatchPaths</key><array><string>` + dir + `/a</string></array><key>StartOnMount</key><true/>`,
		`<key>StartInterval</key><integer>3600</integer><key>WatchPaths</key><array><string>` + dir + `/a</string></array><key>StartOnMount</key><true/><key>EnvironmentVariables</key><dict><key>X</key><string>1</string></dict>`,
		`<key>StartInterval</key><integer>1800</integer><key>WatchPaths</key><array><string>` + dir + `/b</string></array>`,
	}
	load := func() ([]*job.Job, job.Diags) {
		g := gen.Load()
		if g >= int64(len(plists)) {
			return nil, nil // removed
		}
		return timedJobs(t, 1, "reload", plists[g]), nil
	}
	s, err := New(Config{Load: load, Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	stop := runUntilLoaded(t, s, 1)
	defer stop()

	nextOf := func() (time.Time, []string, bool) {
		var w time.Time
		var paths []string
		var mount bool
		s.onLoop(func() {
			rj := s.jobs["reload.0"]
			w, _ = s.triggers.sched.NextWall(rj, trigger.Interval, trigger.Now())
			for p := range s.triggers.paths {
				paths = append(paths, p)
			}
			_, mount = s.triggers.onMount[rj]
		})
		return w, paths, mount
	}
	first, paths, mount := nextOf()
	if len(paths) != 1 || !strings.HasSuffix(paths[0], "/a") || !mount {
		t.Fatalf("paths %v mount %v", paths, mount)
	}
	reload := func() {
		gen.Add(1)
		applied := make(chan struct{})
		s.loop.post(func() { s.reloadDone = func() { close(applied) } })
		s.Reload()
		select {
		case <-applied:
		case <-time.After(10 * time.Second):
			t.Fatal("reload not applied")
		}
	}
	time.Sleep(20 * time.Millisecond)
	reload() // the environment changed, not the triggers
	if again, _, _ := nextOf(); again.Sub(first).Abs() > time.Millisecond {
		t.Errorf("the interval's next start moved from %v to %v on a reload that kept it", first, again)
	}
	reload() // StartInterval, WatchPaths and StartOnMount changed
	next, paths, mount := nextOf()
	if d := time.Until(next); d < 29*time.Minute || d > 30*time.Minute {
		t.Errorf("next start in %v, want 30 minutes from the reload", d)
	}
	if len(paths) != 1 || !strings.HasSuffix(paths[0], "/b") || mount {
		t.Errorf("paths %v mount %v", paths, mount)
	}
	reload() // removed
	s.onLoop(func() {
		tr := s.triggers
		if tr.sched.Len() != 0 || len(tr.paths) != 0 || len(tr.onMount) != 0 || tr.mounts != nil || tr.watcher.Len() != 0 {
			t.Errorf("left behind: %d timers, paths %v, %d mount users (table open %v), %d watched", tr.sched.Len(), tr.paths, len(tr.onMount), tr.mounts != nil, tr.watcher.Len())
		}
	})
}

// runUntilLoaded runs s until stop, once n jobs are loaded.
func runUntilLoaded(t *testing.T, s *Supervisor, n int) (stop func()) {
	t.Helper()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- s.Run(ctx) }()
	for i := 0; s.JobCount() != n; i++ {
		if i > 1000 {
			t.Fatalf("%d jobs loaded, want %d", s.JobCount(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return func() {
		cancel()
		<-done
	}
}
