//go:build linux

package supervisor

import (
	"testing"
	"time"
)

// queued waits until the loop's queue holds n closures (a fired timer has
// posted its run), at most 5 s.
func queued(t *testing.T, l *loop, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		got := len(l.queue)
		l.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the timer never fired")
}

// TestLoopTimerStopAfterFire: a timer stopped after its clock fired, while
// its run waits in the queue, does not run; stop means stop.
func TestLoopTimerStopAfterFire(t *testing.T) {
	l, err := newLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	ran := 0
	lt := l.after(time.Millisecond, func() { ran++ })
	queued(t, l, 1)
	if !lt.Stop() {
		t.Error("Stop of a fired but not yet run timer reported false")
	}
	l.runQueue()
	if ran != 0 {
		t.Fatalf("a stopped timer ran %d times", ran)
	}
	if lt.Stop() {
		t.Error("a second Stop reported true")
	}
}

// TestLoopTimerReplaced: a retry timer replaced while its run is queued:
// only the newer one runs, once, and the older cannot clear the newer's
// state.
func TestLoopTimerReplaced(t *testing.T) {
	l, err := newLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	var cur *loopTimer
	var runs []string
	arm := func(name string, d time.Duration) {
		cur.Stop()
		cur = l.after(d, func() { cur = nil; runs = append(runs, name) })
	}
	arm("old", time.Millisecond)
	queued(t, l, 1)
	arm("new", 200*time.Millisecond)
	newer := cur
	l.runQueue() // the old one's queued run
	if len(runs) != 0 || cur != newer {
		t.Fatalf("the replaced timer ran (%v) or cleared the newer one", runs)
	}
	queued(t, l, 1)
	l.runQueue()
	if len(runs) != 1 || runs[0] != "new" || cur != nil {
		t.Fatalf("runs %v, cur %v; want the newer timer once", runs, cur)
	}
	if newer.Stop() {
		t.Error("Stop after the run reported true")
	}
}
