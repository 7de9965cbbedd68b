//go:build linux

package supervisor

import "time"

// lineLimit writes the log line of a recurring event (a refusal, an accept
// failure) at most once per interval. Events after a line are counted and
// written together, as one line with the count, when the interval is over;
// flush writes them at once when the job goes. No count is lost. Loop
// goroutine only.
type lineLimit struct {
	every time.Duration
	write func(count uint64) // writes the line for count events
	last  time.Time          // of the last line
	count uint64             // events not yet in a line
	timer *loopTimer         // armed while events wait for the interval
}

// note counts one event and writes or schedules its line.
func (l *lineLimit) note(lp *loop) {
	l.count++
	l.due(lp)
}

// due writes the line if the interval since the last is over, or arms a
// timer for when it will be. The timer's function checks again: a line may
// have been written while it waited in the loop's queue.
func (l *lineLimit) due(lp *loop) {
	if l.count == 0 {
		return
	}
	wait := l.every - time.Since(l.last)
	if wait <= 0 {
		l.flush()
		return
	}
	if l.timer == nil {
		l.timer = lp.after(wait, func() {
			l.timer = nil
			l.due(lp)
		})
	}
}

// flush writes the line for the events counted so far, now.
func (l *lineLimit) flush() {
	if l.count == 0 {
		return
	}
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.write(l.count)
	l.last = time.Now()
	l.count = 0
}
