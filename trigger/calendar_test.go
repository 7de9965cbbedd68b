package trigger

import (
	"testing"
	"time"

	"github.com/sockd/sockd/job"
)

const every = job.Any

// cal builds one calendar entry: Minute, Hour, Day, Weekday, Month.
func cal(minute, hour, day, weekday, month int) job.CalendarInterval {
	return job.CalendarInterval{Minute: minute, Hour: hour, Day: day, Weekday: weekday, Month: month}
}

// zone loads a time zone with daylight-saving changes for the test (the
// TZ of the computation is the location of the time passed in).
func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s not available (install tzdata): %v", name, err)
	}
	return loc
}

// TestNextCalendar is the next-calendar-time computation over fixed
// clocks: wildcards, arrays, Weekday, Feb 29, the last day of months,
// Day or Weekday, and daylight-saving changes forward and back.
func TestNextCalendar(t *testing.T) {
	ny := zone(t, "America/New_York")
	berlin := zone(t, "Europe/Berlin")
	at := func(loc *time.Location, y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, loc)
	}
	utc := func(y int, mo time.Month, d, h, mi int) time.Time { return time.Date(y, mo, d, h, mi, 0, 0, time.UTC) }
	cases := []struct {
		name  string
		cal   []job.CalendarInterval
		after time.Time
		want  time.Time // in UTC
	}{
		{"every minute", []job.CalendarInterval{cal(every, every, every, every, every)}, at(time.UTC, 2026, 1, 1, 10, 0, 30), utc(2026, 1, 1, 10, 1)},
		{"strictly after", []job.CalendarInterval{cal(every, every, every, every, every)}, at(time.UTC, 2026, 1, 1, 10, 0, 0), utc(2026, 1, 1, 10, 1)},
		{"minute 30 hourly", []job.CalendarInterval{cal(30, every, every, every, every)}, at(time.UTC, 2026, 1, 1, 10, 31, 0), utc(2026, 1, 1, 11, 30)},
		{"daily 03:35 tomorrow", []job.CalendarInterval{cal(35, 3, every, every, every)}, at(ny, 2026, 1, 1, 4, 0, 0), utc(2026, 1, 2, 8, 35)},
		{"every minute of one hour", []job.CalendarInterval{cal(every, 9, every, every, every)}, at(time.UTC, 2026, 1, 1, 9, 59, 0), utc(2026, 1, 2, 9, 0)},
		{"Weekday 1 (Monday)", []job.CalendarInterval{cal(0, 9, every, 1, every)}, at(time.UTC, 2026, 1, 1, 0, 0, 0), utc(2026, 1, 5, 9, 0)},
		{"Weekday 0 (Sunday)", []job.CalendarInterval{cal(0, 0, every, 0, every)}, at(time.UTC, 2026, 1, 1, 0, 0, 0), utc(2026, 1, 4, 0, 0)},
		{"Day 31 skips April", []job.CalendarInterval{cal(0, 0, 31, every, every)}, at(time.UTC, 2026, 4, 1, 0, 0, 0), utc(2026, 5, 31, 0, 0)},
		{"Day 31 skips February", []job.CalendarInterval{cal(0, 0, 31, every, every)}, at(time.UTC, 2026, 1, 31, 0, 1, 0), utc(2026, 3, 31, 0, 0)},
		{"Day 30 after February", []job.CalendarInterval{cal(0, 12, 30, every, every)}, at(time.UTC, 2026, 2, 1, 0, 0, 0), utc(2026, 3, 30, 12, 0)},
		{"Feb 29 in the next leap year", []job.CalendarInterval{cal(0, 0, 29, every, 2)}, at(time.UTC, 2026, 1, 1, 0, 0, 0), utc(2028, 2, 29, 0, 0)},
		{"Feb 29 across 2100", []job.CalendarInterval{cal(0, 0, 29, every, 2)}, at(time.UTC, 2096, 3, 1, 0, 0, 0), utc(2104, 2, 29, 0, 0)},
		{"Day or Weekday: the Monday first", []job.CalendarInterval{cal(0, 0, 1, 1, every)}, at(time.UTC, 2026, 1, 1, 0, 0, 30), utc(2026, 1, 5, 0, 0)},
		{"Day or Weekday: the 1st first", []job.CalendarInterval{cal(0, 0, 1, 1, every)}, at(time.UTC, 2026, 1, 27, 0, 0, 0), utc(2026, 2, 1, 0, 0)},
		{"Month narrows Weekday", []job.CalendarInterval{cal(0, 0, every, 1, 3)}, at(time.UTC, 2026, 1, 1, 0, 0, 0), utc(2026, 3, 2, 0, 0)},
		{"array: the earliest entry", []job.CalendarInterval{cal(0, 18, every, every, every), cal(0, 6, every, every, every)}, at(time.UTC, 2026, 1, 1, 7, 0, 0), utc(2026, 1, 1, 18, 0)},
		{"array: the other entry", []job.CalendarInterval{cal(0, 18, every, every, every), cal(0, 6, every, every, every)}, at(time.UTC, 2026, 1, 1, 19, 0, 0), utc(2026, 1, 2, 6, 0)},
		{"last day of the year", []job.CalendarInterval{cal(59, 23, 31, every, 12)}, at(time.UTC, 2026, 12, 31, 23, 59, 0), utc(2027, 12, 31, 23, 59)},

		// New York springs forward on 8 March 2026 at 02:00 EST to 03:00 EDT.
		{"spring forward: 02:30 runs at 03:00", []job.CalendarInterval{cal(30, 2, every, every, every)}, at(ny, 2026, 3, 7, 12, 0, 0), utc(2026, 3, 8, 7, 0)},
		{"spring forward: once, then the next day", []job.CalendarInterval{cal(30, 2, every, every, every)}, at(ny, 2026, 3, 8, 3, 0, 0), utc(2026, 3, 9, 6, 30)},
		{"spring forward: every minute of 02:xx, once", []job.CalendarInterval{cal(every, 2, every, every, every)}, at(ny, 2026, 3, 8, 3, 0, 0), utc(2026, 3, 9, 6, 0)},
		{"spring forward: hourly skips the missing hour", []job.CalendarInterval{cal(30, every, every, every, every)}, at(ny, 2026, 3, 8, 1, 31, 0), utc(2026, 3, 8, 7, 30)},
		{"spring forward: 03:30 as usual", []job.CalendarInterval{cal(30, 3, every, every, every)}, at(ny, 2026, 3, 8, 0, 0, 0), utc(2026, 3, 8, 7, 30)},
		// New York falls back on 1 November 2026 at 02:00 EDT to 01:00 EST.
		{"fall back: 01:30 at its first occurrence", []job.CalendarInterval{cal(30, 1, every, every, every)}, at(ny, 2026, 10, 31, 12, 0, 0), utc(2026, 11, 1, 5, 30)},
		{"fall back: not twice", []job.CalendarInterval{cal(30, 1, every, every, every)}, time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC).In(ny), utc(2026, 11, 2, 6, 30)},
		{"fall back: hourly runs in both hours", []job.CalendarInterval{cal(30, every, every, every, every)}, time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC).In(ny), utc(2026, 11, 1, 6, 30)},
		{"fall back: after the repeated hour", []job.CalendarInterval{cal(0, 2, every, every, every)}, at(ny, 2026, 11, 1, 0, 0, 0), utc(2026, 11, 1, 7, 0)},
		// Berlin falls back on 25 October 2026 at 03:00 CEST to 02:00 CET.
		{"Berlin fall back: 02:30 once", []job.CalendarInterval{cal(30, 2, every, every, every)}, time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC).In(berlin), utc(2026, 10, 26, 1, 30)},
		{"Berlin spring forward: 02:00 runs at 03:00", []job.CalendarInterval{cal(0, 2, 29, every, 3)}, at(berlin, 2026, 3, 1, 0, 0, 0), utc(2026, 3, 29, 1, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := NextCalendar(tc.cal, tc.after)
			if !ok || !got.Equal(tc.want) {
				t.Errorf("NextCalendar(%v, %v) = %v (%v), want %v", tc.cal, tc.after, got.UTC(), ok, tc.want)
			}
			if ok && got.Location() != tc.after.Location() {
				t.Errorf("location %v, want %v", got.Location(), tc.after.Location())
			}
		})
	}
}

// TestNextCalendarHalfHourShift: Lord Howe Island moves its clocks by
// 30 minutes; a time in the gap runs once, at its end.
func TestNextCalendarHalfHourShift(t *testing.T) {
	lh := zone(t, "Australia/Lord_Howe")
	// Find the October change: the wall clock goes from 02:00 to 02:30.
	day := time.Date(2026, 10, 1, 12, 0, 0, 0, lh)
	for day.Month() == 10 && day.Weekday() != time.Sunday {
		day = day.AddDate(0, 0, 1)
	}
	_, end := time.Date(day.Year(), day.Month(), day.Day(), 1, 0, 0, 0, lh).ZoneBounds()
	if end.In(lh).Hour() != 2 || end.In(lh).Minute() != 30 {
		t.Skipf("tzdata has no 02:00 -> 02:30 change on %v (end of zone %v)", day, end.In(lh))
	}
	after := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, lh)
	got, ok := NextCalendar([]job.CalendarInterval{cal(15, 2, every, every, every)}, after)
	if !ok || !got.Equal(end) {
		t.Errorf("02:15 in the gap: got %v, want %v (the end of the gap)", got, end.In(lh))
	}
	next, _ := NextCalendar([]job.CalendarInterval{cal(15, 2, every, every, every)}, got)
	if want := time.Date(day.Year(), day.Month(), day.Day()+1, 2, 15, 0, 0, lh); !next.Equal(want) {
		t.Errorf("then %v, want %v", next, want)
	}
}

// TestNextCalendarNever: an empty calendar never matches.
func TestNextCalendarNever(t *testing.T) {
	if got, ok := NextCalendar(nil, time.Now()); ok {
		t.Errorf("empty calendar: %v", got)
	}
}

// TestNextCalendarEveryZoneDay walks every minute-0 time of a year in
// zones with changes and checks the rule: each result is after the
// previous, hourly runs are at most 2 hours apart, and the wall clock of
// each is the hour's minute 0 (or the end of a gap).
func TestNextCalendarEveryZoneDay(t *testing.T) {
	for _, name := range []string{"America/New_York", "Europe/Berlin", "Australia/Sydney"} {
		loc := zone(t, name)
		c := []job.CalendarInterval{cal(0, every, every, every, every)}
		tm := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
		for i := 0; i < 24*366; i++ {
			next, ok := NextCalendar(c, tm)
			if !ok || !next.After(tm) || next.Sub(tm) > 2*time.Hour {
				t.Fatalf("%s: after %v got %v", name, tm, next)
			}
			if next.Minute() != 0 {
				t.Fatalf("%s: after %v got %v, not on the hour", name, tm, next)
			}
			tm = next
		}
	}
}

func BenchmarkNextCalendarDaily(b *testing.B) {
	c := []job.CalendarInterval{cal(35, 3, every, every, every)}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.Local)
	for i := 0; i < b.N; i++ {
		NextCalendar(c, now)
	}
}
