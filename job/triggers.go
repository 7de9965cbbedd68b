package job

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Triggers are the launchd keys that start a job besides its sockets and
// KeepAlive: a timer, a calendar, watched paths, queue directories and
// mounts; and LaunchOnlyOnce, which bounds every start of the job
// (docs/triggers.md). The zero value starts nothing.
type Triggers struct {
	// StartInterval: a start every so often, counted from load (0: none).
	StartInterval time.Duration
	// Calendar is StartCalendarInterval: a start at every minute of local
	// time that one of the entries matches.
	Calendar []CalendarInterval
	// WatchPaths: a start when one of these paths is created, written,
	// renamed or removed (cleaned absolute paths, in file order).
	WatchPaths []string
	// QueueDirectories: a start while one of these directories is not
	// empty (cleaned absolute paths, in file order).
	QueueDirectories []string
	// StartOnMount: a start whenever a file system is mounted.
	StartOnMount bool
	// LaunchOnlyOnce: at most one start per boot, whatever starts it.
	LaunchOnlyOnce bool
}

// Starts reports whether any key of t starts the job (LaunchOnlyOnce
// starts nothing by itself).
func (t Triggers) Starts() bool {
	return t.StartInterval > 0 || len(t.Calendar) > 0 || len(t.WatchPaths) > 0 ||
		len(t.QueueDirectories) > 0 || t.StartOnMount
}

// Any is the value of a CalendarInterval field that matches every value:
// the key is missing, as cron's "*".
const Any = -1

// CalendarInterval is one StartCalendarInterval dictionary. Each field is
// a value or Any. Weekday 0 is Sunday (launchd's 7 is read as 0). When
// both Day and Weekday are given, either matches (cron's rule, and
// launchd's); Month narrows both.
type CalendarInterval struct {
	Minute, Hour, Day, Weekday, Month int
}

// calendarFields are the keys of a StartCalendarInterval dictionary, with
// their ranges.
var calendarFields = []struct {
	name   string
	lo, hi int64
	field  func(*CalendarInterval) *int
}{
	{"Minute", 0, 59, func(c *CalendarInterval) *int { return &c.Minute }},
	{"Hour", 0, 23, func(c *CalendarInterval) *int { return &c.Hour }},
	{"Day", 1, 31, func(c *CalendarInterval) *int { return &c.Day }},
	{"Weekday", 0, 7, func(c *CalendarInterval) *int { return &c.Weekday }},
	{"Month", 1, 12, func(c *CalendarInterval) *int { return &c.Month }},
}

// String writes the entry as a job file would, in words: "Hour 3 Minute
// 35", "Weekday 1 Hour 9 Minute 0"; "every minute" when all are Any.
func (c CalendarInterval) String() string {
	var parts []string
	for _, f := range []struct {
		name string
		v    int
	}{{"Month", c.Month}, {"Day", c.Day}, {"Weekday", c.Weekday}, {"Hour", c.Hour}, {"Minute", c.Minute}} {
		if f.v != Any {
			parts = append(parts, fmt.Sprintf("%s %d", f.name, f.v))
		}
	}
	if len(parts) == 0 {
		return "every minute"
	}
	return strings.Join(parts, " ")
}

// CalendarKeys lists the keys of a StartCalendarInterval dictionary.
var CalendarKeys = []KeyInfo{
	{Name: "Minute", Misspelt: "would change when the job runs"},
	{Name: "Hour", Misspelt: "would change when the job runs"},
	{Name: "Day", Misspelt: "would change when the job runs"},
	{Name: "Weekday", Misspelt: "would change when the job runs"},
	{Name: "Month", Misspelt: "would change when the job runs"},
}

// triggers decodes the trigger keys of the top-level dictionary.
func (d *decoder) triggers(top *dictView, throttle time.Duration) Triggers {
	var t Triggers
	if key, v, ok := top.get("StartInterval"); ok {
		if n, ok := d.intRange(key, v, 1, maxSeconds, "StartInterval (seconds)"); ok {
			t.StartInterval = time.Duration(n) * time.Second
			if t.StartInterval < throttle {
				d.warnf(key, "%d s is shorter than ThrottleInterval (%v), the least time between two starts: the job starts every %v; set ThrottleInterval to %d or less for a start every %d s",
					n, throttle, throttle, n, n)
			}
		}
	}
	if key, v, ok := top.get("StartCalendarInterval"); ok {
		t.Calendar = d.calendar(key, v)
	}
	if key, v, ok := top.get("WatchPaths"); ok {
		t.WatchPaths = d.absPaths(key, v)
	}
	if key, v, ok := top.get("QueueDirectories"); ok {
		t.QueueDirectories = d.absPaths(key, v)
	}
	if key, v, ok := top.get("StartOnMount"); ok {
		t.StartOnMount, _ = d.boolean(key, v)
	}
	if key, v, ok := top.get("LaunchOnlyOnce"); ok {
		t.LaunchOnlyOnce, _ = d.boolean(key, v)
	}
	return t
}

// calendar decodes StartCalendarInterval: one dictionary or an array of
// them.
func (d *decoder) calendar(key string, v any) []CalendarInterval {
	switch v := v.(type) {
	case map[string]any:
		if c, ok := d.calendarEntry(key, v); ok {
			return []CalendarInterval{c}
		}
		return nil
	case []any:
		if len(v) == 0 {
			d.warnf(key, "empty array: the calendar never starts the job")
		}
		var out []CalendarInterval
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				d.errorf(index(key, i), "must be a dictionary of Minute, Hour, Day, Weekday and Month, not %s", describe(e))
				continue
			}
			if c, ok := d.calendarEntry(index(key, i), m); ok {
				out = append(out, c)
			}
		}
		return out
	}
	d.errorf(key, "must be a dictionary or an array of dictionaries (Minute, Hour, Day, Weekday, Month), not %s", describe(v))
	return nil
}

// calendarEntry decodes one calendar dictionary; a missing key is Any.
func (d *decoder) calendarEntry(key string, m map[string]any) (CalendarInterval, bool) {
	c := CalendarInterval{Minute: Any, Hour: Any, Day: Any, Weekday: Any, Month: Any}
	dv := d.view(key, m)
	ok := true
	for _, f := range calendarFields {
		k, val, present := dv.get(f.name)
		if !present {
			continue
		}
		n, good := d.intRange(k, val, f.lo, f.hi, f.name)
		if !good {
			ok = false
			continue
		}
		*f.field(&c) = int(n)
	}
	if c.Weekday == 7 {
		c.Weekday = 0 // launchd and cron: 0 and 7 are both Sunday
	}
	d.reportRest(dv, nil, "StartCalendarInterval")
	if ok && c.Day != Any && c.Month != Any && c.Weekday == Any && c.Day > daysIn(c.Month) {
		d.errorf(join(key, "Day"), "Day %d never comes in Month %d (%s has at most %d days): the calendar would never start the job",
			c.Day, c.Month, time.Month(c.Month), daysIn(c.Month))
		ok = false
	}
	return c, ok
}

// daysIn is the most days a month has (February: 29).
func daysIn(month int) int {
	return time.Date(2024, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// absPaths decodes an array of absolute paths (WatchPaths,
// QueueDirectories), cleaned, without repeats.
func (d *decoder) absPaths(key string, v any) []string {
	list, ok := d.strings(key, v)
	if !ok {
		return nil
	}
	if len(list) == 0 {
		d.warnf(key, "empty array: it starts nothing")
	}
	var out []string
	seen := map[string]bool{}
	for i, p := range list {
		switch {
		case strings.ContainsRune(p, 0):
			d.errorf(index(key, i), "contains a NUL byte")
			continue
		case !filepath.IsAbs(p):
			d.errorf(index(key, i), "%q is not an absolute path: launchd would take it relative to its own working directory, /; write /%s", p, p)
			continue
		}
		p = filepath.Clean(p)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// checkTriggersApply refuses trigger keys on a job that has no process of
// its own to start: sockd starts one per connection (inetd Wait=false),
// none (SockdInternal), or its proxy starts the backend on demand.
func (d *decoder) checkTriggersApply(j *Job, top *dictView) {
	why := ""
	switch j.Mode() {
	case ModeInetdNowait:
		why = "an inetdCompatibility Wait=false job starts one child per connection, and there is no process to start at other times: serve it in handoff mode (without inetdCompatibility) or as Wait=true"
	case ModeInternal:
		why = "a SockdInternal job runs no process"
	case ModeProxy:
		why = "a SockdProxy job's backend is started by the proxy, on a client's demand"
	default:
		return
	}
	t := j.Triggers
	for _, k := range []struct {
		name string
		set  bool
	}{
		{"StartInterval", t.StartInterval > 0}, {"StartCalendarInterval", len(t.Calendar) > 0},
		{"WatchPaths", len(t.WatchPaths) > 0}, {"QueueDirectories", len(t.QueueDirectories) > 0},
		{"StartOnMount", t.StartOnMount}, {"LaunchOnlyOnce", t.LaunchOnlyOnce},
	} {
		if key, _, ok := top.get(k.name); ok && k.set {
			d.errorf(key, "has nothing to start: %s", why)
		}
	}
}
