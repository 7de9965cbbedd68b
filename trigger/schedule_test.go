package trigger

import (
	"testing"
	"time"

	"github.com/sockd/sockd/job"
)

// fakeClock reads the three clocks of a machine the test drives: time
// passes (all three), the machine sleeps (boot and wall, not mono), the
// wall clock is set (wall only).
type fakeClock struct{ now Instant }

func newFakeClock(wall time.Time) *fakeClock {
	return &fakeClock{Instant{Wall: wall, Boot: time.Hour, Mono: time.Hour}}
}

func (c *fakeClock) pass(d time.Duration) Instant {
	c.now.Wall, c.now.Boot, c.now.Mono = c.now.Wall.Add(d), c.now.Boot+d, c.now.Mono+d
	return c.now
}

func (c *fakeClock) sleep(d time.Duration) Instant {
	c.now.Wall, c.now.Boot = c.now.Wall.Add(d), c.now.Boot+d
	return c.now
}

func (c *fakeClock) set(d time.Duration) Instant {
	c.now.Wall = c.now.Wall.Add(d)
	return c.now
}

// untilNext moves the clock to the schedule's next due time.
func (c *fakeClock) untilNext(t *testing.T, s *Schedule[string]) Instant {
	t.Helper()
	due, ok := s.Next()
	if !ok {
		t.Fatal("schedule is empty")
	}
	return c.pass(due - c.now.Boot)
}

func one(t *testing.T, fired []Fired[string]) Fired[string] {
	t.Helper()
	if len(fired) != 1 {
		t.Fatalf("fired %d starts, want 1: %+v", len(fired), fired)
	}
	return fired[0]
}

// TestScheduleInterval: a start every period from load, on the boot
// clock; a suspend over several periods is one start on wake.
func TestScheduleInterval(t *testing.T) {
	clk := newFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	s := NewSchedule[string](time.UTC)
	s.SetInterval("j", 10*time.Second, clk.now)
	for i := 0; i < 3; i++ {
		if f := s.Due(clk.pass(9 * time.Second)); len(f) != 0 {
			t.Fatalf("early start %+v", f)
		}
		f := one(t, s.Due(clk.pass(time.Second)))
		if f.Late() || f.Kind != Interval || !f.Due.Equal(clk.now.Wall) {
			t.Errorf("start %d: %+v", i, f)
		}
	}
	// Asleep for an hour: 360 due times, one start on wake.
	f := one(t, s.Due(clk.sleep(time.Hour+5*time.Second)))
	if f.Missed != 359 || f.Slept != time.Hour+5*time.Second {
		t.Errorf("after sleep: missed %d slept %v, want 359 more (360 due times) and 1h0m5s", f.Missed, f.Slept)
	}
	if due, _ := s.Next(); due-clk.now.Boot != 5*time.Second {
		t.Errorf("next start in %v, want 5s (the period keeps its phase)", due-clk.now.Boot)
	}
	// A wall-clock step does not move an interval.
	clk.set(-2 * time.Hour)
	if f := s.ClockSet(clk.now); len(f) != 0 {
		t.Errorf("clock set: %+v", f)
	}
	if due, _ := s.Next(); due-clk.now.Boot != 5*time.Second {
		t.Errorf("next start in %v after a clock step, want 5s", due-clk.now.Boot)
	}
}

// TestScheduleCalendarMissed: the hourly times that passed while the
// machine slept are coalesced into one start on wake.
func TestScheduleCalendarMissed(t *testing.T) {
	ny := zone(t, "America/New_York")
	clk := newFakeClock(time.Date(2026, 3, 2, 2, 30, 0, 0, ny))
	s := NewSchedule[string](ny)
	s.SetCalendar("hourly", []job.CalendarInterval{cal(0, every, every, every, every)}, clk.now)
	if w, _ := s.NextWall("hourly", Calendar, clk.now); !w.Equal(time.Date(2026, 3, 2, 3, 0, 0, 0, ny)) {
		t.Errorf("next %v", w)
	}
	f := one(t, s.Due(clk.untilNext(t, s)))
	if f.Late() || !f.Due.Equal(time.Date(2026, 3, 2, 3, 0, 0, 0, ny)) {
		t.Errorf("on time: %+v", f)
	}
	// Asleep from 03:10 to 07:10: 04:00, 05:00, 06:00 and 07:00 passed.
	clk.pass(10 * time.Minute)
	f = one(t, s.Due(clk.sleep(4*time.Hour)))
	if !f.Due.Equal(time.Date(2026, 3, 2, 4, 0, 0, 0, ny)) || f.Missed != 3 || f.Slept != 4*time.Hour {
		t.Errorf("on wake: %+v, want due 04:00, 3 more missed, slept 4h", f)
	}
	if w, _ := s.NextWall("hourly", Calendar, clk.now); !w.Equal(time.Date(2026, 3, 2, 8, 0, 0, 0, ny)) {
		t.Errorf("next after wake %v, want 08:00", w)
	}
	if f := s.Due(clk.pass(time.Minute)); len(f) != 0 {
		t.Errorf("a second start: %+v", f)
	}
}

// TestScheduleCalendarClockSteps: the wall clock set forward over a time
// runs it once when the step is a correction (at most MaxCatchUp) and not
// at all when it is larger; set back over a time that ran, it does not run
// that time again.
func TestScheduleCalendarClockSteps(t *testing.T) {
	daily := []job.CalendarInterval{cal(0, 3, every, every, every)}
	start := time.Date(2026, 5, 4, 2, 0, 0, 0, time.UTC)

	clk := newFakeClock(start)
	s := NewSchedule[string](time.UTC)
	s.SetCalendar("d", daily, clk.now)
	f := one(t, s.ClockSet(clk.set(2*time.Hour))) // 02:00 -> 04:00 over 03:00
	if f.Stepped != 2*time.Hour || !f.Due.Equal(start.Add(time.Hour)) {
		t.Errorf("step over 03:00: %+v", f)
	}
	if w, _ := s.NextWall("d", Calendar, clk.now); !w.Equal(start.Add(25 * time.Hour)) {
		t.Errorf("next %v, want the next day's 03:00", w)
	}

	clk = newFakeClock(start)
	s = NewSchedule[string](time.UTC)
	s.SetCalendar("d", daily, clk.now)
	if f := s.ClockSet(clk.set(6 * time.Hour)); len(f) != 0 { // a clock set at boot
		t.Errorf("a large step ran %+v", f)
	}
	if w, _ := s.NextWall("d", Calendar, clk.now); !w.Equal(start.Add(25 * time.Hour)) {
		t.Errorf("next %v, want the next day's 03:00", w)
	}

	clk = newFakeClock(start)
	s = NewSchedule[string](time.UTC)
	s.SetCalendar("d", daily, clk.now)
	one(t, s.Due(clk.untilNext(t, s))) // 03:00 runs
	clk.pass(5 * time.Minute)
	if f := s.ClockSet(clk.set(-35 * time.Minute)); len(f) != 0 { // back to 02:30
		t.Errorf("clock set back: %+v", f)
	}
	if f := s.Due(clk.pass(31 * time.Minute)); len(f) != 0 { // 03:01 again
		t.Errorf("03:00 ran twice: %+v", f)
	}
	if w, _ := s.NextWall("d", Calendar, clk.now); !w.Equal(start.Add(25 * time.Hour)) {
		t.Errorf("next %v, want the next day's 03:00", w)
	}

	// The boot clock ahead of the wall clock (a step not seen yet): not
	// run early, aimed again.
	clk = newFakeClock(start)
	s = NewSchedule[string](time.UTC)
	s.SetCalendar("d", daily, clk.now)
	clk.set(-10 * time.Minute)
	if f := s.Due(clk.pass(time.Hour)); len(f) != 0 {
		t.Errorf("ran by the boot clock at wall %v: %+v", clk.now.Wall, f)
	}
	f = one(t, s.Due(clk.pass(10*time.Minute)))
	if !f.Due.Equal(start.Add(time.Hour)) {
		t.Errorf("late start %+v", f)
	}
}

// TestScheduleHeap: many triggers, one nearest deadline; removing and
// re-setting them keeps the order.
func TestScheduleHeap(t *testing.T) {
	clk := newFakeClock(time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC))
	s := NewSchedule[string](time.UTC)
	for i := 1; i <= 100; i++ {
		s.SetInterval(string(rune('a'+i%26))+string(rune('0'+i/26)), time.Duration(i)*time.Second, clk.now)
	}
	s.SetCalendar("cal", []job.CalendarInterval{cal(every, every, every, every, every)}, clk.now)
	if s.Len() != 101 {
		t.Fatalf("len %d", s.Len())
	}
	if due, _ := s.Next(); due-clk.now.Boot != time.Second {
		t.Errorf("nearest in %v, want 1s", due-clk.now.Boot)
	}
	s.Remove("b0", Interval) // the 1 s one
	if due, _ := s.Next(); due-clk.now.Boot != 2*time.Second {
		t.Errorf("nearest in %v, want 2s", due-clk.now.Boot)
	}
	fired := s.Due(clk.pass(30 * time.Second)) // 00:01:00: the calendar too
	if len(fired) != 29+1 {
		t.Errorf("fired %d, want 30", len(fired))
	}
	for s.Len() > 0 {
		due, _ := s.Next()
		for _, f := range s.Due(clk.pass(due - clk.now.Boot)) {
			s.Remove(f.Key, f.Kind)
		}
	}
	if _, ok := s.Next(); ok {
		t.Error("not empty")
	}
}

// TestScheduleSetLocation: a change of the system's time zone moves the
// calendar's next time.
func TestScheduleSetLocation(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	clk := newFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := NewSchedule[string](time.UTC)
	s.SetCalendar("d", []job.CalendarInterval{cal(0, 3, every, every, every)}, clk.now)
	s.SetLocation(berlin, clk.now)
	if w, _ := s.NextWall("d", Calendar, clk.now); !w.Equal(time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("next %v, want 03:00 in Berlin (02:00 UTC)", w)
	}
}
