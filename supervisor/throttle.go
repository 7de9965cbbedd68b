//go:build linux

package supervisor

import (
	"time"

	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/spawn"
)

// minRetry is the shortest delay before retrying a start that failed or a
// wait-mode child that left its input unread, even with ThrottleInterval 0:
// sockd never spins.
const minRetry = time.Second

// minLoopWait is the shortest delay before restarting a job whose last run
// left its input as it found it (a wait-mode request, a queue directory).
const minLoopWait = 100 * time.Millisecond

// throttle spaces the starts of a job's main process (or proxy backend).
// It is the one place that decides how long a start must wait, and it
// holds the timer of the start it delays, so that what list and print
// show as the next start is the time the timer runs. Loop goroutine only.
type throttle struct {
	last  time.Time // of the last start attempt (monotonic)
	until time.Time // when the delayed start runs; zero when none waits
	timer *loopTimer
}

// wait is how long a start at now must still wait so that two starts are
// at least interval apart.
func (t *throttle) wait(interval time.Duration, now time.Time) time.Duration {
	if t.last.IsZero() || interval <= 0 {
		return 0
	}
	if w := interval - now.Sub(t.last); w > 0 {
		return w
	}
	return 0
}

// loopWait is the wait before a restart after a run that left its input as
// it found it: the throttle, at least minRetry apart, and never less than
// minLoopWait, so that such a job cannot restart in a loop.
func (t *throttle) loopWait(interval time.Duration, now time.Time) time.Duration {
	return maxDur(t.wait(maxDur(interval, minRetry), now), minLoopWait)
}

// failWait is the wait before retrying a start that failed.
func failWait(interval time.Duration) time.Duration { return maxDur(interval, minRetry) }

// started records a start attempt at now.
func (t *throttle) started(now time.Time) { t.last = now }

// forget makes the next start run at once (kickstart, a redefinition) and
// cancels a delayed one.
func (t *throttle) forget() {
	t.cancel()
	t.last = time.Time{}
}

// delay runs f on the loop after d, in place of a delayed start already
// waiting.
func (t *throttle) delay(l *loop, d time.Duration, now time.Time, f func()) {
	t.cancel()
	t.until = now.Add(d)
	t.timer = l.after(d, func() {
		t.timer, t.until = nil, time.Time{}
		f()
	})
}

// cancel drops the delayed start, if any.
func (t *throttle) cancel() {
	if t.timer != nil {
		t.timer.Stop()
		t.timer, t.until = nil, time.Time{}
	}
}

// waiting reports whether a delayed start waits.
func (t *throttle) waiting() bool { return t.timer != nil }

// startVerdict is what a start request of a main process comes to.
type startVerdict uint8

const (
	// startNow: start the process now.
	startNow startVerdict = iota
	// startThrottled: the throttle delays it (startPlan.wait).
	startThrottled
	// startOnInput: a wait-mode job woken without input (a timer,
	// KeepAlive) waits for its input instead.
	startOnInput
)

// startPlan decides a start of a job's main process that nothing else
// prevents (it does not run, sockd is not closing it, LaunchOnlyOnce
// allows it): the one place that decides a throttled start. hasInput says
// a wait-mode start has its ready socket.
func startPlan(mode job.Mode, th *throttle, interval time.Duration, hasInput bool, now time.Time) (startVerdict, time.Duration) {
	if mode == job.ModeHandoff || mode == job.ModeNone || mode == job.ModeProxy {
		if w := th.wait(interval, now); w > 0 {
			return startThrottled, w
		}
	}
	if mode == job.ModeInetdWait && !hasInput {
		return startOnInput, 0
	}
	return startNow, 0
}

// exitNext is what follows the exit of a main process that sockd did not
// end itself for a retirement, a redefinition, a shutdown or a kickstart.
type exitNext uint8

const (
	// exitWatch: watch the sockets again (or nothing, for a socketless job).
	exitWatch exitNext = iota
	// exitKeepAlive: KeepAlive starts it again, through the throttle.
	exitKeepAlive
	// exitQueue: its QueueDirectories decide (queueAfterExit).
	exitQueue
	// exitUnread: a wait-mode child left its request unread: watch again
	// only after loopWait, so that it does not restart in a loop.
	exitUnread
)

// exitFacts are what decide exitPlan.
type exitFacts struct {
	mode job.Mode
	// stoppedBySockd: sockd sent SIGTERM for its own reasons, not for a
	// sockd stop (after which KeepAlive still applies, as with launchctl
	// stop).
	stoppedBySockd bool
	keepAlive      func(st spawn.ExitStatus) bool // KeepAlive wants it again after st
	unread         bool                           // wait mode: the request is still there, unread
}

// exitPlan decides what follows a main process's exit with status st: the
// one place that does.
func exitPlan(f exitFacts, st spawn.ExitStatus) exitNext {
	if f.mode == job.ModeInetdWait {
		if f.unread {
			return exitUnread
		}
		return exitWatch
	}
	if f.stoppedBySockd {
		return exitWatch
	}
	if f.keepAlive(st) {
		return exitKeepAlive
	}
	return exitQueue
}
