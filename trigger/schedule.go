package trigger

import (
	"container/heap"
	"time"

	"github.com/sockd/sockd/job"
)

// Instant is one reading of the three clocks a schedule needs. Reading
// them together lets the schedule tell a suspend (CLOCK_BOOTTIME moved
// ahead of CLOCK_MONOTONIC) from a step of the wall clock (CLOCK_REALTIME
// moved against CLOCK_BOOTTIME).
type Instant struct {
	// Wall is CLOCK_REALTIME, carrying no monotonic reading.
	Wall time.Time
	// Boot is CLOCK_BOOTTIME: time since boot, suspend included.
	Boot time.Duration
	// Mono is CLOCK_MONOTONIC: time since boot, suspend excluded.
	Mono time.Duration
}

// sleptSince is how long the machine was suspended between prev and i.
func (i Instant) sleptSince(prev Instant) time.Duration {
	return (i.Boot - i.Mono) - (prev.Boot - prev.Mono)
}

// steppedSince is how far the wall clock was set between prev and i:
// what it moved beyond the time that passed.
func (i Instant) steppedSince(prev Instant) time.Duration {
	return i.Wall.Sub(prev.Wall) - (i.Boot - prev.Boot)
}

// Kind tells timed triggers apart.
type Kind uint8

const (
	// Interval is StartInterval.
	Interval Kind = iota + 1
	// Calendar is StartCalendarInterval.
	Calendar
)

func (k Kind) String() string {
	if k == Interval {
		return "StartInterval"
	}
	return "StartCalendarInterval"
}

// MaxCatchUp is the largest forward step of the wall clock after which
// the calendar times it passed over still run (once): a correction. A
// larger step (a clock set right at boot) runs none of them. It also
// bounds how far back a step may go for a calendar time that ran not to
// run again once the clock reaches it a second time.
const MaxCatchUp = 3 * time.Hour

// suspendMin is the least sleep counted as a suspend: the two clocks
// are read one after the other.
const suspendMin = time.Second

// Fired is one start a schedule asks for: on time, or late with what made
// it late.
type Fired[K comparable] struct {
	Key  K
	Kind Kind
	// Due is the wall time the start was due; with Missed > 0, the first
	// of the times coalesced into this one start.
	Due time.Time
	// Missed counts the further due times that passed before it ran: each
	// is a start that does not happen, coalesced into this one.
	Missed int
	// Slept is how long the machine was suspended since the schedule
	// last looked (0: it was not).
	Slept time.Duration
	// Stepped is how far the wall clock was set forward over Due (0: it
	// was not).
	Stepped time.Duration
}

// Late reports whether the start comes after a suspend or a step of the
// clock, or stands for more than one due time.
func (f Fired[K]) Late() bool { return f.Missed > 0 || f.Slept > 0 || f.Stepped > 0 }

// entry is one timed trigger of one key.
type entry[K comparable] struct {
	key  K
	kind Kind
	due  time.Duration // on the boot clock
	idx  int           // in the heap

	every time.Duration // Interval: the period; due is a multiple of it after base
	base  time.Duration

	cal     []job.CalendarInterval // Calendar
	wall    time.Time              // the wall time due is for
	last    time.Time              // the wall time of the last start it asked for
	stepped time.Duration          // due now because a step passed over wall
}

// Schedule holds the timed triggers of every job, earliest first, on the
// boot clock, so that one timer (the supervisor's CLOCK_BOOTTIME timerfd,
// armed at Next) serves all of them. Calendar times are wall times in the
// schedule's location, converted to the boot clock when they are set and
// again after a step of the wall clock (ClockSet). Not safe for
// concurrent use: its owner is the supervisor's loop.
type Schedule[K comparable] struct {
	h     entries[K]
	byKey map[entryKey[K]]*entry[K]
	loc   *time.Location
	last  Instant // the last reading the schedule saw
}

type entryKey[K comparable] struct {
	key  K
	kind Kind
}

// NewSchedule returns an empty schedule reading calendars in loc.
func NewSchedule[K comparable](loc *time.Location) *Schedule[K] {
	return &Schedule[K]{byKey: map[entryKey[K]]*entry[K]{}, loc: loc}
}

// Len is the number of timed triggers.
func (s *Schedule[K]) Len() int { return len(s.h) }

// SetInterval (re)sets key's StartInterval: a start every every, the first
// one every after now.
func (s *Schedule[K]) SetInterval(key K, every time.Duration, now Instant) {
	s.see(now)
	e := s.put(key, Interval)
	e.every, e.base, e.due = every, now.Boot, now.Boot+every
	heap.Fix(&s.h, e.idx)
}

// SetCalendar (re)sets key's StartCalendarInterval. A calendar that never
// matches is removed.
func (s *Schedule[K]) SetCalendar(key K, cal []job.CalendarInterval, now Instant) {
	s.see(now)
	e := s.put(key, Calendar)
	e.cal = cal
	if !s.aimCalendar(e, now.Wall, now) {
		s.Remove(key, Calendar)
	}
}

// put returns key's entry of kind, added if new.
func (s *Schedule[K]) put(key K, kind Kind) *entry[K] {
	k := entryKey[K]{key, kind}
	if e, ok := s.byKey[k]; ok {
		return e
	}
	e := &entry[K]{key: key, kind: kind}
	s.byKey[k] = e
	heap.Push(&s.h, e)
	return e
}

// Remove drops key's trigger of kind, if any.
func (s *Schedule[K]) Remove(key K, kind Kind) {
	k := entryKey[K]{key, kind}
	if e, ok := s.byKey[k]; ok {
		heap.Remove(&s.h, e.idx)
		delete(s.byKey, k)
	}
}

// Next is the earliest due time on the boot clock; ok is false when the
// schedule is empty.
func (s *Schedule[K]) Next() (time.Duration, bool) {
	if len(s.h) == 0 {
		return 0, false
	}
	return s.h[0].due, true
}

// NextWall is the wall time of key's next start of kind, for display.
func (s *Schedule[K]) NextWall(key K, kind Kind, now Instant) (time.Time, bool) {
	e, ok := s.byKey[entryKey[K]{key, kind}]
	if !ok {
		return time.Time{}, false
	}
	if kind == Calendar {
		return e.wall, true
	}
	return now.Wall.Add(e.due - now.Boot).In(s.loc), true
}

// Due takes every trigger due at now, sets each to its next time and
// returns the starts they ask for, one per trigger however many of its
// times passed (coalesced). Call it when the alarm fires.
func (s *Schedule[K]) Due(now Instant) []Fired[K] {
	slept := now.sleptSince(s.last)
	if slept < suspendMin {
		slept = 0
	}
	s.see(now)
	var out []Fired[K]
	for len(s.h) > 0 && s.h[0].due <= now.Boot {
		e := s.h[0]
		f, ok := s.fire(e, now)
		if !ok {
			continue // not due yet after all, or never again: e moved or went
		}
		f.Slept = slept
		out = append(out, f)
	}
	return out
}

// fire sets e to its next time and returns its start; ok is false when e
// is not due at now by the wall clock (it is aimed again).
func (s *Schedule[K]) fire(e *entry[K], now Instant) (Fired[K], bool) {
	f := Fired[K]{Key: e.key, Kind: e.kind}
	if e.kind == Interval {
		late := now.Boot - e.due
		f.Due = now.Wall.Add(-late).In(s.loc)
		f.Missed = int(late / e.every)
		e.due += time.Duration(f.Missed+1) * e.every
		heap.Fix(&s.h, e.idx)
		return f, true
	}
	if e.wall.After(now.Wall) {
		s.aimCalendar(e, now.Wall.Add(-time.Nanosecond), now) // the boot clock ran ahead
		return f, false
	}
	f.Due, f.Stepped = e.wall, e.stepped
	f.Missed = countBetween(e.cal, e.wall, now.Wall)
	e.last = e.wall
	if !s.aimCalendar(e, now.Wall, now) {
		s.Remove(e.key, Calendar)
	}
	return f, true
}

// aimCalendar sets e to its first time after from, on the boot clock
// read at now; false when there is none.
func (s *Schedule[K]) aimCalendar(e *entry[K], from time.Time, now Instant) bool {
	next, ok := NextCalendar(e.cal, from.In(s.loc))
	if !ok {
		return false
	}
	e.wall, e.stepped = next, 0
	e.due = now.Boot + next.Sub(now.Wall)
	heap.Fix(&s.h, e.idx)
	return true
}

// countBetween counts the times of cal after first up to and including
// until, at most 1000.
func countBetween(cal []job.CalendarInterval, first, until time.Time) int {
	n := 0
	for t := first; n < 1000; n++ {
		next, ok := NextCalendar(cal, t)
		if !ok || next.After(until) {
			break
		}
		t = next
	}
	return n
}

// ClockSet re-aims the calendars after the wall clock was set (or the
// machine woke: the clock watch cannot tell, the readings can) and
// returns what is due now, as Due does. A forward step of at most
// MaxCatchUp makes each calendar time it passed over due now, once; a
// larger one skips them. After a backward step a calendar time that ran
// does not run again when the clock comes back to it (unless the step went
// back more than MaxCatchUp).
func (s *Schedule[K]) ClockSet(now Instant) []Fired[K] {
	step := now.steppedSince(s.last)
	if step < -suspendMin || step > suspendMin {
		for _, e := range s.byKey {
			if e.kind == Calendar {
				s.reaim(e, step, now)
			}
		}
	}
	return s.Due(now)
}

// reaim aims a calendar trigger again after a step of the wall clock.
func (s *Schedule[K]) reaim(e *entry[K], step time.Duration, now Instant) {
	if !e.wall.After(now.Wall) && step > 0 && step <= MaxCatchUp {
		e.due, e.stepped = now.Boot, step // passed over: due now, once
		heap.Fix(&s.h, e.idx)
		return
	}
	from := now.Wall
	if !e.last.IsZero() && e.last.After(from) && e.last.Sub(from) <= MaxCatchUp {
		from = e.last // the clock went back over a time that ran
	}
	if !s.aimCalendar(e, from, now) {
		s.Remove(e.key, Calendar)
	}
}

// SetLocation reads calendars in loc from now on (the system's time zone
// changed) and re-aims them.
func (s *Schedule[K]) SetLocation(loc *time.Location, now Instant) {
	s.loc = loc
	s.see(now)
	for _, e := range s.byKey {
		if e.kind == Calendar && !s.aimCalendar(e, now.Wall, now) {
			s.Remove(e.key, Calendar)
		}
	}
}

// see records now as the last reading.
func (s *Schedule[K]) see(now Instant) { s.last = now }

// entries is a min-heap of entries by due time.
type entries[K comparable] []*entry[K]

func (h entries[K]) Len() int           { return len(h) }
func (h entries[K]) Less(a, b int) bool { return h[a].due < h[b].due }
func (h entries[K]) Swap(a, b int) {
	h[a], h[b] = h[b], h[a]
	h[a].idx, h[b].idx = a, b
}

func (h *entries[K]) Push(x any) {
	e := x.(*entry[K])
	e.idx = len(*h)
	*h = append(*h, e)
}

func (h *entries[K]) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}
