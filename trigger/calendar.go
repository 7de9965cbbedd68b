package trigger

import (
	"time"

	"github.com/sockd/sockd/job"
)

// calendarHorizon bounds the search for the next calendar time: Feb 29 is
// at most 8 years away (2096 to 2104).
const calendarHorizon = 9

// maxShift is more than any daylight-saving shift (2 h at most): a wall
// time this much before another cannot come after it in real time.
const maxShift = 3 * time.Hour

// NextCalendar returns the first instant strictly after after at which
// one of cal matches, reading the wall clock in after's location; ok is
// false when none matches within the horizon (or cal is empty).
//
// Daylight-saving changes: a wall time that does not exist that day (the
// clocks spring forward over it) is run once, at the first instant after
// the gap, when the entry names an Hour; an entry with every Hour simply
// has one hour less that day. A wall time that comes twice (the clocks
// fall back) is run once, at its first occurrence, when the entry names an
// Hour; an entry with every Hour runs in both hours, which are two real
// hours.
func NextCalendar(cal []job.CalendarInterval, after time.Time) (time.Time, bool) {
	var best time.Time
	found := false
	for _, c := range cal {
		if t, ok := nextOne(c, after); ok && (!found || t.Before(best)) {
			best, found = t, true
		}
	}
	return best, found
}

// nextOne is NextCalendar for one entry.
func nextOne(c job.CalendarInterval, after time.Time) (time.Time, bool) {
	loc := after.Location()
	cursor := wallOf(after).Truncate(time.Minute)
	if transitionNear(after) {
		cursor = cursor.Add(-maxShift) // an earlier wall time may come later in real time
	} else {
		cursor = cursor.Add(time.Minute)
	}
	end := cursor.AddDate(calendarHorizon, 0, 0)
	for cursor.Before(end) {
		w, ok := nextWall(c, cursor, end)
		if !ok {
			return time.Time{}, false
		}
		for _, t := range occurrences(c, w, loc) {
			if t.After(after) {
				return t, true
			}
		}
		cursor = w.Add(time.Minute)
	}
	return time.Time{}, false
}

// wallOf is t's wall clock as a time in UTC, where days and hours step
// without daylight-saving changes.
func wallOf(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// transitionNear reports whether t's zone changes its offset within a day
// of t.
func transitionNear(t time.Time) bool {
	start, end := t.ZoneBounds()
	return (!start.IsZero() && t.Sub(start) < 27*time.Hour) || (!end.IsZero() && end.Sub(t) < 27*time.Hour)
}

// nextWall is the first wall time (in UTC, on the minute) at or after
// from and before end that c matches, ignoring time zones.
func nextWall(c job.CalendarInterval, from, end time.Time) (time.Time, bool) {
	t := from
	for t.Before(end) {
		y, mo, d := t.Date()
		switch {
		case c.Month != job.Any && int(mo) != c.Month:
			t = time.Date(y, mo+1, 1, 0, 0, 0, 0, time.UTC)
		case !dayMatches(c, t):
			t = time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
		case c.Hour != job.Any && t.Hour() != c.Hour:
			if t.Hour() < c.Hour {
				t = time.Date(y, mo, d, c.Hour, 0, 0, 0, time.UTC)
			} else {
				t = time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
			}
		case c.Minute != job.Any && t.Minute() != c.Minute:
			if t.Minute() < c.Minute {
				t = time.Date(y, mo, d, t.Hour(), c.Minute, 0, 0, time.UTC)
			} else {
				t = time.Date(y, mo, d, t.Hour()+1, 0, 0, 0, time.UTC)
			}
		default:
			return t, true
		}
	}
	return time.Time{}, false
}

// dayMatches applies Day and Weekday to the date of t: when both are
// given either one matches (cron's rule, and launchd's).
func dayMatches(c job.CalendarInterval, t time.Time) bool {
	dom := c.Day == job.Any || t.Day() == c.Day
	dow := c.Weekday == job.Any || int(t.Weekday()) == c.Weekday
	if c.Day != job.Any && c.Weekday != job.Any {
		return dom || dow
	}
	return dom && dow
}

// occurrences are the instants, earliest first, at which c runs for the
// wall time w (in UTC) in loc: usually one; in a gap, the end of the gap
// or none; in an overlap, the first or both (see NextCalendar).
func occurrences(c job.CalendarInterval, w time.Time, loc *time.Location) []time.Time {
	ts, gapEnd := instants(w, loc)
	switch {
	case len(ts) == 0 && c.Hour != job.Any:
		return []time.Time{gapEnd}
	case len(ts) > 1 && c.Hour != job.Any:
		return ts[:1]
	}
	return ts
}

// instants are the instants at which loc's wall clock reads w (a time in
// UTC), earliest first: none when w falls in a gap (gapEnd is then the
// instant the gap ends), two when it comes twice.
func instants(w time.Time, loc *time.Location) (ts []time.Time, gapEnd time.Time) {
	y, mo, d := w.Date()
	t := time.Date(y, mo, d, w.Hour(), w.Minute(), 0, 0, loc)
	start, end := t.ZoneBounds()
	cands := []time.Time{t}
	if !start.IsZero() {
		_, off := start.Add(-time.Nanosecond).Zone()
		cands = append(cands, w.Add(-time.Duration(off)*time.Second))
	}
	if !end.IsZero() {
		_, off := end.Zone()
		cands = append(cands, w.Add(-time.Duration(off)*time.Second))
	}
	for _, c := range cands {
		c = c.In(loc)
		if !wallOf(c).Equal(w) || contains(ts, c) {
			continue
		}
		ts = append(ts, c)
	}
	if len(ts) == 2 && ts[1].Before(ts[0]) {
		ts[0], ts[1] = ts[1], ts[0]
	}
	if len(ts) == 0 {
		// t was moved out of the gap, forward (it is past the change,
		// which began its zone) or back (the change ends its zone).
		gapEnd = end
		if wallOf(t).After(w) {
			gapEnd = start
		}
		gapEnd = gapEnd.In(loc)
	}
	return ts, gapEnd
}

func contains(ts []time.Time, t time.Time) bool {
	for _, x := range ts {
		if x.Equal(t) {
			return true
		}
	}
	return false
}
