//go:build linux

package supervisor

import (
	"testing"
	"time"
)

// TestLineLimit: the first event is written at once; events inside the
// interval become one line with their count when it is over; flush writes
// what is owed at once; no count is lost.
func TestLineLimit(t *testing.T) {
	lp, err := newLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer lp.close()
	done := make(chan error, 1)
	go func() { done <- lp.run() }()

	lines := make(chan uint64, 10)
	var l *lineLimit
	onLoop := func(f func()) {
		ok := make(chan struct{})
		lp.post(func() { f(); close(ok) })
		<-ok
	}
	onLoop(func() {
		l = &lineLimit{every: 200 * time.Millisecond, write: func(n uint64) { lines <- n }}
		for range 4 {
			l.note(lp)
		}
	})
	next := func(within time.Duration) (uint64, bool) {
		select {
		case n := <-lines:
			return n, true
		case <-time.After(within):
			return 0, false
		}
	}
	if n, ok := next(time.Second); !ok || n != 1 {
		t.Fatalf("first line: %d (%v), want 1 at once", n, ok)
	}
	if n, ok := next(50 * time.Millisecond); ok {
		t.Fatalf("a second line (%d) inside the interval", n)
	}
	if n, ok := next(5 * time.Second); !ok || n != 3 {
		t.Fatalf("deferred line: %d (%v), want 3", n, ok)
	}
	// Owed events are written by flush without waiting for the interval.
	onLoop(func() {
		l.note(lp)
		l.note(lp)
		l.flush()
		l.flush() // nothing owed: no line
	})
	if n, ok := next(time.Second); !ok || n != 2 {
		t.Fatalf("flushed line: %d (%v), want 2", n, ok)
	}
	if n, ok := next(400 * time.Millisecond); ok {
		t.Fatalf("extra line %d after flush", n)
	}
	onLoop(lp.stop)
	lp.post(func() {}) // wake the loop so it sees stop
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
