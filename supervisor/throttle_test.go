//go:build linux

package supervisor

import (
	"testing"
	"time"

	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/spawn"
)

// fakeClock is the time the decisions below are asked at.
type fakeClock struct{ now time.Time }

func (c *fakeClock) advance(d time.Duration) time.Time {
	c.now = c.now.Add(d)
	return c.now
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)} }

func TestThrottleWait(t *testing.T) {
	clk := newFakeClock()
	var th throttle
	if w := th.wait(10*time.Second, clk.now); w != 0 {
		t.Fatalf("first start waits %v, want 0", w)
	}
	th.started(clk.now)
	for _, c := range []struct {
		after    time.Duration
		interval time.Duration
		want     time.Duration
	}{
		{0, 10 * time.Second, 10 * time.Second},
		{3 * time.Second, 10 * time.Second, 7 * time.Second},
		{7 * time.Second, 10 * time.Second, 0}, // 10 s after the start
		{time.Minute, 10 * time.Second, 0},
		{0, 0, 0}, // ThrottleInterval 0: never waits
	} {
		now := clk.advance(c.after)
		if got := th.wait(c.interval, now); got != c.want {
			t.Errorf("%v after the start, interval %v: wait %v, want %v", now.Sub(th.last), c.interval, got, c.want)
		}
	}
	th.forget()
	if w := th.wait(10*time.Second, clk.now); w != 0 {
		t.Errorf("after forget (kickstart): wait %v, want 0", w)
	}
}

// A job whose run left its input as it found it never restarts sooner
// than minLoopWait, nor sooner than minRetry after its last start.
func TestThrottleLoopWait(t *testing.T) {
	clk := newFakeClock()
	var th throttle
	th.started(clk.now)
	if w := th.loopWait(0, clk.advance(10*time.Millisecond)); w != minRetry-10*time.Millisecond {
		t.Errorf("ThrottleInterval 0, 10 ms after the start: %v, want minRetry less 10 ms", w)
	}
	if w := th.loopWait(0, clk.advance(5*time.Second)); w != minLoopWait {
		t.Errorf("long after the start: %v, want %v", w, minLoopWait)
	}
	if w := failWait(0); w != minRetry {
		t.Errorf("failWait(0) = %v, want %v", w, minRetry)
	}
	if w := failWait(30 * time.Second); w != 30*time.Second {
		t.Errorf("failWait(30s) = %v", w)
	}
}

func TestStartPlan(t *testing.T) {
	clk := newFakeClock()
	var th throttle
	th.started(clk.now)
	now := clk.advance(2 * time.Second)
	for _, c := range []struct {
		mode     job.Mode
		hasInput bool
		want     startVerdict
		wait     time.Duration
	}{
		{job.ModeHandoff, false, startThrottled, 8 * time.Second},
		{job.ModeNone, false, startThrottled, 8 * time.Second},
		{job.ModeProxy, false, startThrottled, 8 * time.Second},
		// A wait-mode start has a connection or datagram waiting: the
		// exit path throttles a child that leaves it unread (exitUnread).
		{job.ModeInetdWait, true, startNow, 0},
		{job.ModeInetdWait, false, startOnInput, 0},
	} {
		got, wait := startPlan(c.mode, &th, 10*time.Second, c.hasInput, now)
		if got != c.want || wait != c.wait {
			t.Errorf("%v (input %v): %v, wait %v; want %v, wait %v", c.mode, c.hasInput, got, wait, c.want, c.wait)
		}
	}
	if got, _ := startPlan(job.ModeHandoff, &th, 10*time.Second, false, clk.advance(8*time.Second)); got != startNow {
		t.Errorf("10 s after the start: %v, want startNow", got)
	}
}

func TestExitPlan(t *testing.T) {
	ok := spawn.ExitStatus{}
	failed := spawn.ExitStatus{Code: 1}
	always := func(spawn.ExitStatus) bool { return true }
	onFailure := func(st spawn.ExitStatus) bool { return !st.Success() }
	never := func(spawn.ExitStatus) bool { return false }
	for _, c := range []struct {
		name string
		f    exitFacts
		st   spawn.ExitStatus
		want exitNext
	}{
		{"keep alive", exitFacts{mode: job.ModeHandoff, keepAlive: always}, ok, exitKeepAlive},
		{"SuccessfulExit false, failed", exitFacts{mode: job.ModeNone, keepAlive: onFailure}, failed, exitKeepAlive},
		{"SuccessfulExit false, succeeded", exitFacts{mode: job.ModeNone, keepAlive: onFailure}, ok, exitQueue},
		{"stopped by sockd: KeepAlive does not apply", exitFacts{mode: job.ModeHandoff, stoppedBySockd: true, keepAlive: always}, ok, exitWatch},
		{"on demand", exitFacts{mode: job.ModeHandoff, keepAlive: never}, ok, exitQueue},
		{"wait mode, request read", exitFacts{mode: job.ModeInetdWait, keepAlive: always}, ok, exitWatch},
		{"wait mode, request unread", exitFacts{mode: job.ModeInetdWait, unread: true, keepAlive: never}, failed, exitUnread},
	} {
		if got := exitPlan(c.f, c.st); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestStateOf(t *testing.T) {
	for _, c := range []struct {
		f      stateFacts
		want   jobState
		detail string
	}{
		{stateFacts{}, stateWaiting, ""},
		{stateFacts{serverPhase: serverPhase{mainRunning: true}}, stateRunning, ""},
		{stateFacts{serverPhase: serverPhase{mainRunning: true, mainStopping: true}}, stateStopping, ""},
		{stateFacts{serverPhase: serverPhase{mainRunning: true, mainStarting: true}}, stateStarting, ""},
		{stateFacts{serverPhase: serverPhase{mainRunning: true, mainStarting: true, mainStopping: true}}, stateStopping, ""},
		{stateFacts{serverPhase: serverPhase{throttled: true}, onceDone: true}, stateThrottled, ""},
		{stateFacts{onceDone: true, bindFailed: true}, stateDone, ""},
		{stateFacts{serverPhase: serverPhase{hold: holdMaxChildren}}, statePaused, "max children"},
		{stateFacts{serverPhase: serverPhase{hold: holdRate}, bindFailed: true}, statePaused, "spawn rate"},
		{stateFacts{bindFailed: true}, stateBindFailed, ""},
	} {
		st, detail := stateOf(c.f)
		if st != c.want || detail != c.detail {
			t.Errorf("%+v: %v %q, want %v %q", c.f, st, detail, c.want, c.detail)
		}
	}
}

// A KeepAlive job that crashes at once, driven through the decisions with
// a fake clock and fake exits: the throttle spaces its starts
// ThrottleInterval apart, and a sockd stop's exit restarts it through the
// throttle too (launchctl stop), while sockd's own stop does not.
func TestCrashLoopThroughTheThrottle(t *testing.T) {
	const interval = 10 * time.Second
	clk := newFakeClock()
	var th throttle
	crashed := spawn.ExitStatus{Signal: 11}
	keepAlive := func(spawn.ExitStatus) bool { return true }
	var starts []time.Duration
	t0 := clk.now
	// Each round: a start is asked for; when the throttle delays it, the
	// timer runs it at the end of the wait; the process crashes 200 ms
	// after it started.
	for i := 0; i < 5; i++ {
		v, wait := startPlan(job.ModeHandoff, &th, interval, false, clk.now)
		if v == startThrottled {
			clk.advance(wait)
			if v, _ = startPlan(job.ModeHandoff, &th, interval, false, clk.now); v != startNow {
				t.Fatalf("round %d: after the throttle's wait: %v, want startNow", i, v)
			}
		}
		th.started(clk.now)
		starts = append(starts, clk.now.Sub(t0))
		clk.advance(200 * time.Millisecond)
		if next := exitPlan(exitFacts{mode: job.ModeHandoff, keepAlive: keepAlive}, crashed); next != exitKeepAlive {
			t.Fatalf("round %d: after a crash: %v, want exitKeepAlive", i, next)
		}
	}
	for i, at := range starts {
		if want := time.Duration(i) * interval; at != want {
			t.Errorf("start %d at %v, want %v (starts %v)", i, at, want, starts)
		}
	}
	byControl := exitFacts{mode: job.ModeHandoff, keepAlive: keepAlive}
	if next := exitPlan(byControl, spawn.ExitStatus{Signal: 15}); next != exitKeepAlive {
		t.Errorf("after sockd stop: %v, want exitKeepAlive", next)
	}
	bySockd := exitFacts{mode: job.ModeHandoff, stoppedBySockd: true, keepAlive: keepAlive}
	if next := exitPlan(bySockd, spawn.ExitStatus{Signal: 15}); next != exitWatch {
		t.Errorf("after sockd's own stop: %v, want exitWatch", next)
	}
}
