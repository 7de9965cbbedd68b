//go:build linux

package supervisor

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/trigger"
)

// The triggers of docs/triggers.md, wired into the loop. Every job's timed
// starts are on one schedule (a heap) behind one CLOCK_BOOTTIME timerfd
// armed at the nearest of them; one clock watch re-aims the calendars when
// the wall clock is set or the machine wakes; one inotify instance watches
// every path (WatchPaths, QueueDirectories, KeepAlive PathState) and one
// open mount table serves StartOnMount. No goroutine or thread per timer
// or watch: the loop owns all of them. Every start a trigger asks for goes
// through runJob.start and so through the throttle.

// settleDelay is how long path and mount events gather before the starts
// they ask for: a burst of changes (an editor's save, a copy into a queue,
// a mount and its propagation) starts a job once.
const settleDelay = 100 * time.Millisecond

// zoneFile is the system's time zone; calendars follow a change of it
// unless sockd's TZ names the zone.
const zoneFile = "/etc/localtime"

// pathUse says what a watched path is to a job (bits).
type pathUse uint8

const (
	useWatch pathUse = 1 << iota // WatchPaths
	useQueue                     // QueueDirectories
	useState                     // KeepAlive PathState
)

// triggers is the supervisor's trigger machinery. Loop goroutine only;
// each kernel object is made on first use.
type triggers struct {
	s       *Supervisor
	sched   *trigger.Schedule[*runJob]
	alarm   *trigger.Alarm
	clock   *trigger.ClockWatch
	watcher *trigger.Watcher
	paths   map[string]map[*runJob]pathUse
	zone    bool // zoneFile is watched
	cals    int  // jobs with a calendar
	mounts  *trigger.Mounts
	onMount map[*runJob]struct{}
	once    *trigger.Once

	settling    map[*runJob]string // starts gathering (settleDelay); queueCheck: look at the queues then
	settleTimer *loopTimer
}

// queueCheck in settling means: start if a queue directory is not empty
// by then.
const queueCheck = "\x00queue"

// jobTriggers is one job's armed triggers and their state.
type jobTriggers struct {
	armed armed
	// pending is a start a trigger asked for that the throttle holds;
	// pendingQueue: it is looked at again then (the queue may be empty).
	pending      string
	pendingQueue bool
	// queueMark fingerprints the queue directories at the last start.
	queueMark   uint64
	queueStuck  bool // the last exit left them as they were (logged)
	once        onceState
	onceAt      time.Time // the start LaunchOnlyOnce recorded
	onceFile    string
	onceClaimed bool // this sockd made the record (taken back if the start fails)
	onceLogged  bool
}

// armed is what a job's triggers watch: compared with the definition at
// every activation, so that an unchanged job keeps its timers' phase.
type armed struct {
	interval time.Duration
	calendar []job.CalendarInterval
	paths    map[string]pathUse
	mount    bool
}

// onceState is what the job's LaunchOnlyOnce record says.
type onceState uint8

const (
	onceUnknown onceState = iota // not looked at yet
	onceFree                     // no start this boot
	onceDone                     // started this boot: no more
)

// wanted is what j's definition asks the triggers to watch.
func wanted(j *job.Job) armed {
	t := j.Triggers
	a := armed{interval: t.StartInterval, calendar: t.Calendar, mount: t.StartOnMount}
	add := func(p string, u pathUse) {
		if a.paths == nil {
			a.paths = map[string]pathUse{}
		}
		a.paths[p] |= u
	}
	for _, p := range t.WatchPaths {
		add(p, useWatch)
	}
	for _, p := range t.QueueDirectories {
		add(p, useQueue)
	}
	for _, pc := range j.KeepAlive.PathState {
		add(cleanAbs(pc.Path), useState)
	}
	return a
}

// cleanAbs is a PathState path as the watcher takes it: absolute (a
// relative one is taken from /, as launchd's working directory), clean.
func cleanAbs(p string) string {
	if !filepath.IsAbs(p) {
		p = "/" + p
	}
	return filepath.Clean(p)
}

func (a armed) empty() bool {
	return a.interval == 0 && len(a.calendar) == 0 && len(a.paths) == 0 && !a.mount
}

// trig returns the supervisor's trigger machinery, made on first use.
func (s *Supervisor) trig() *triggers {
	if s.triggers == nil {
		s.triggers = &triggers{s: s, sched: trigger.NewSchedule[*runJob](time.Local),
			paths: map[string]map[*runJob]pathUse{}, onMount: map[*runJob]struct{}{}, settling: map[*runJob]string{}}
		if s.cfg.OnceDir != "" {
			boot, err := trigger.BootID()
			if err != nil {
				s.log.Warn("LaunchOnlyOnce: no boot ID; records are kept for this sockd's life only", zap.Error(err))
			}
			s.triggers.once = trigger.NewOnce(s.cfg.OnceDir, boot)
		}
	}
	return s.triggers
}

// armTriggers makes the job's triggers watch what its definition asks,
// changing only what changed. Loop only.
func (rj *runJob) armTriggers() {
	want := wanted(rj.def)
	if rj.trig == nil {
		if want.empty() && !rj.def.Triggers.LaunchOnlyOnce {
			return
		}
		rj.trig = &jobTriggers{}
	}
	t := rj.s.trig()
	old := rj.trig.armed
	newQueue := false
	if old.interval != want.interval || !slices.Equal(old.calendar, want.calendar) {
		t.setTimers(rj, old, want)
	}
	for p, u := range old.paths {
		if want.paths[p] != u {
			t.unwatchPath(p, rj)
		}
	}
	for p, u := range want.paths {
		if old.paths[p] != u {
			t.watchPath(p, rj, u)
			newQueue = newQueue || u&useQueue != 0
		}
	}
	if old.mount != want.mount {
		t.setMount(rj, want.mount)
	}
	rj.trig.armed = want
	if newQueue {
		t.settle(rj, queueCheck) // start while a queue is not empty
	}
	if rj.def.Triggers.LaunchOnlyOnce && rj.trig.once == onceUnknown {
		rj.lookupOnce()
	}
}

// disarmTriggers stops every trigger of the job (removed, or sockd stops).
func (rj *runJob) disarmTriggers() {
	if rj.trig == nil {
		return
	}
	t := rj.s.trig()
	t.setTimers(rj, rj.trig.armed, armed{})
	for p := range rj.trig.armed.paths {
		t.unwatchPath(p, rj)
	}
	if rj.trig.armed.mount {
		t.setMount(rj, false)
	}
	rj.trig.armed = armed{}
	rj.trig.pending = ""
	delete(t.settling, rj)
}

// setTimers moves the job's StartInterval and StartCalendarInterval from
// old to want and re-arms the alarm.
func (t *triggers) setTimers(rj *runJob, old, want armed) {
	now := trigger.Now()
	if old.interval != want.interval {
		if want.interval > 0 {
			t.sched.SetInterval(rj, want.interval, now)
		} else {
			t.sched.Remove(rj, trigger.Interval)
		}
	}
	if !slices.Equal(old.calendar, want.calendar) {
		if len(want.calendar) > 0 {
			t.sched.SetCalendar(rj, want.calendar, now)
		} else {
			t.sched.Remove(rj, trigger.Calendar)
		}
		switch {
		case len(old.calendar) == 0 && len(want.calendar) > 0:
			t.cals++
		case len(old.calendar) > 0 && len(want.calendar) == 0:
			t.cals--
		}
		t.watchZone(t.cals > 0)
	}
	t.rearm()
}

// rearm sets the alarm at the nearest due time (opening it, and the clock
// watch, on first use) or clears it.
func (t *triggers) rearm() {
	due, ok := t.sched.Next()
	if !ok {
		if t.alarm != nil {
			_ = t.alarm.Clear()
		}
		return
	}
	if t.alarm == nil && !t.openClocks() {
		return
	}
	if err := t.alarm.Set(due); err != nil {
		t.s.log.Error("timed starts: arming the alarm", zap.Error(err))
	}
}

// openClocks opens the alarm and the clock watch and puts them on the
// loop.
func (t *triggers) openClocks() bool {
	a, err := trigger.NewAlarm()
	if err == nil {
		err = t.s.loop.watch(a.Fd(), handlerFunc(func(uint32) { t.alarmFired() }))
		if err != nil {
			a.Close()
		}
	}
	if err != nil {
		t.s.log.Error("timed starts (StartInterval, StartCalendarInterval) are off: no alarm", zap.Error(err))
		return false
	}
	t.alarm = a
	c, err := trigger.NewClockWatch()
	if err == nil {
		err = t.s.loop.watch(c.Fd(), handlerFunc(func(uint32) { t.clockChanged() }))
		if err != nil {
			c.Close()
		}
	}
	if err != nil {
		t.s.log.Warn("calendar starts will not notice the clock being set", zap.Error(err))
		return true
	}
	t.clock = c
	return true
}

// alarmFired starts what is due.
func (t *triggers) alarmFired() {
	t.alarm.Ack()
	t.fire(t.sched.Due(trigger.Now()))
	t.rearm()
}

// clockChanged re-aims the calendars after the wall clock was set or the
// machine woke, and starts what that made due.
func (t *triggers) clockChanged() {
	changed, err := t.clock.Changed()
	if err != nil {
		t.s.log.Warn("clock watch", zap.Error(err))
	}
	if !changed {
		return
	}
	now := trigger.Now()
	t.s.log.Debug("the wall clock was set, or the machine woke: calendars re-aimed", zap.Time("now", now.Wall))
	t.fire(t.sched.ClockSet(now))
	t.rearm()
}

// fire asks each job for its start.
func (t *triggers) fire(fired []trigger.Fired[*runJob]) {
	now := time.Now()
	for _, f := range fired {
		f.Key.log().Debug("timed trigger due", zap.Stringer("trigger", f.Kind), zap.Time("due", f.Due), zap.Duration("late", now.Sub(f.Due)))
		f.Key.triggerStart(timedReason(f, f.Key.def))
	}
}

// timedReason is the reason of a timed start, for the log and blame:
// "StartInterval (every 30s)", "StartCalendarInterval (Hour 3 Minute 0)",
// with what made it late.
func timedReason(f trigger.Fired[*runJob], j *job.Job) string {
	why := fmt.Sprintf("StartInterval (every %v)", j.Triggers.StartInterval)
	if f.Kind == trigger.Calendar {
		why = "StartCalendarInterval (" + matching(j.Triggers.Calendar, f.Due) + ")"
	}
	if !f.Late() {
		return why
	}
	why += ", due " + f.Due.Format("2006-01-02 15:04:05 MST")
	switch {
	case f.Slept > 0:
		why += fmt.Sprintf(", missed while the machine slept %v", f.Slept.Round(time.Second))
	case f.Stepped > 0:
		why += fmt.Sprintf(", passed over when the clock was set %v ahead", f.Stepped.Round(time.Second))
	}
	if f.Missed > 0 {
		why += fmt.Sprintf(" (%d more due times coalesced into this start)", f.Missed)
	}
	return why
}

// matching names the calendar entry that due is a time of.
func matching(cal []job.CalendarInterval, due time.Time) string {
	for _, c := range cal {
		if next, ok := trigger.NextCalendar([]job.CalendarInterval{c}, due.Add(-time.Nanosecond)); ok && next.Equal(due) {
			return c.String()
		}
	}
	if len(cal) > 0 {
		return cal[0].String()
	}
	return ""
}

// watchPath adds the job's use of path, opening the watcher on first use.
func (t *triggers) watchPath(path string, rj *runJob, u pathUse) {
	if t.watcher == nil && !t.openWatcher() {
		return
	}
	users := t.paths[path]
	if users == nil {
		users = map[*runJob]pathUse{}
		t.paths[path] = users
		if err := t.watcher.Add(path); err != nil {
			rj.log().Error("cannot watch the path fully; changes below the failing directory go unnoticed", zap.String("path", path), zap.Error(err))
		}
	}
	users[rj] = u
}

// unwatchPath ends the job's use of path; a path nobody uses is no longer
// watched.
func (t *triggers) unwatchPath(path string, rj *runJob) {
	users := t.paths[path]
	delete(users, rj)
	if len(users) == 0 && t.watcher != nil {
		delete(t.paths, path)
		if !(t.zone && path == zoneFile) {
			t.watcher.Remove(path)
		}
	}
}

// openWatcher opens the inotify watcher and puts it on the loop.
func (t *triggers) openWatcher() bool {
	w, err := trigger.NewWatcher()
	if err == nil {
		err = t.s.loop.watch(w.Fd(), handlerFunc(func(uint32) { t.pathsChanged() }))
		if err != nil {
			w.Close()
		}
	}
	if err != nil {
		t.s.log.Error("path triggers (WatchPaths, QueueDirectories, KeepAlive PathState) are off: no inotify", zap.Error(err))
		return false
	}
	t.watcher = w
	return true
}

// watchZone watches the system's time zone while a calendar needs it
// (and sockd's TZ does not name a zone).
func (t *triggers) watchZone(need bool) {
	if _, fixed := os.LookupEnv("TZ"); fixed || need == t.zone || (need && t.watcher == nil && !t.openWatcher()) {
		return
	}
	if !need {
		t.zone = false
		if _, used := t.paths[zoneFile]; !used {
			t.watcher.Remove(zoneFile)
		}
		return
	}
	t.zone = true
	_ = t.watcher.Add(zoneFile)
}

// pathsChanged hands each changed path to the jobs that use it.
func (t *triggers) pathsChanged() {
	changed, err := t.watcher.Read()
	if err != nil {
		t.s.log.Warn("path watch", zap.Error(err))
	}
	for _, p := range changed {
		if t.zone && p == zoneFile {
			t.zoneChanged()
		}
		for rj, u := range t.paths[p] {
			if u&useWatch != 0 {
				t.settle(rj, "WatchPaths: "+p+" changed")
			}
			if u&useQueue != 0 {
				t.settle(rj, queueCheck)
			}
			if u&useState != 0 {
				rj.checkConditions()
			}
		}
	}
}

// zoneChanged reads the system's time zone again and re-aims the
// calendars in it.
func (t *triggers) zoneChanged() {
	data, err := os.ReadFile(zoneFile)
	if err != nil {
		return // being replaced: the rename comes next
	}
	loc, err := time.LoadLocationFromTZData("Local", data)
	if err != nil {
		t.s.log.Warn("the system time zone changed and cannot be read; calendars keep the zone they had", zap.String("file", zoneFile), zap.Error(err))
		return
	}
	t.s.log.Info("the system time zone changed: calendars follow it", zap.String("file", zoneFile))
	t.sched.SetLocation(loc, trigger.Now())
	t.rearm()
}

// setMount adds or removes the job's StartOnMount.
func (t *triggers) setMount(rj *runJob, on bool) {
	if !on {
		delete(t.onMount, rj)
		if len(t.onMount) == 0 && t.mounts != nil {
			t.s.loop.unwatch(t.mounts.Fd())
			t.mounts.Close()
			t.mounts = nil
		}
		return
	}
	if t.mounts == nil {
		m, err := trigger.NewMounts()
		if err == nil {
			err = t.s.loop.watchEvents(m.Fd(), trigger.EpollEvents, handlerFunc(func(uint32) { t.mountsChanged() }))
			if err != nil {
				m.Close()
			}
		}
		if err != nil {
			rj.log().Error("StartOnMount is off: the mount table cannot be watched", zap.Error(err))
			return
		}
		t.mounts = m
	}
	t.onMount[rj] = struct{}{}
}

// mountsChanged starts the StartOnMount jobs when something was mounted
// (an unmount or a change of options starts nothing, as in launchd).
func (t *triggers) mountsChanged() {
	mounted, err := t.mounts.Mounted()
	if err != nil {
		t.s.log.Warn("reading the mount table", zap.Error(err))
		return
	}
	if len(mounted) == 0 {
		return
	}
	why := "StartOnMount: " + mounted[0] + " mounted"
	if len(mounted) > 1 {
		why += fmt.Sprintf(" (and %d more)", len(mounted)-1)
	}
	for rj := range t.onMount {
		t.settle(rj, why)
	}
}

// settle gathers a start for settleDelay, so that a burst of events
// starts the job once.
func (t *triggers) settle(rj *runJob, why string) {
	if cur, ok := t.settling[rj]; !ok || cur == queueCheck {
		t.settling[rj] = why
	}
	if t.settleTimer == nil {
		t.settleTimer = t.s.loop.after(settleDelay, t.settled)
	}
}

// settled asks for the starts gathered.
func (t *triggers) settled() {
	t.settleTimer = nil
	jobs := t.settling
	t.settling = map[*runJob]string{}
	for rj, why := range jobs {
		if why == queueCheck {
			if why = rj.queueReason(); why == "" {
				continue
			}
		}
		rj.triggerStart(why)
	}
}

// close stops and closes every kernel object (sockd ends). Loop only.
func (t *triggers) close() {
	if t == nil {
		return
	}
	if t.settleTimer != nil {
		t.settleTimer.Stop()
	}
	if t.alarm != nil {
		t.s.loop.unwatch(t.alarm.Fd())
		t.alarm.Close()
		t.alarm = nil
	}
	if t.clock != nil {
		t.s.loop.unwatch(t.clock.Fd())
		t.clock.Close()
		t.clock = nil
	}
	if t.watcher != nil {
		t.s.loop.unwatch(t.watcher.Fd())
		t.watcher.Close()
		t.watcher = nil
	}
	if t.mounts != nil {
		t.s.loop.unwatch(t.mounts.Fd())
		t.mounts.Close()
		t.mounts = nil
	}
}

// triggerStart is a start a trigger asks for. A job that runs is not
// started a second time (skipped, as in launchd); a throttled job starts
// when the throttle ends.
func (rj *runJob) triggerStart(why string) {
	ms := rj.mainSrv()
	if rj.closing() || rj.trig == nil || ms == nil {
		return
	}
	if ms.proc != nil {
		rj.log().Debug("trigger while the job runs: skipped, a job runs one instance", zap.String("trigger", why))
		return
	}
	if ms.th.waiting() {
		if rj.trig.pending == "" {
			rj.trig.pending, rj.trig.pendingQueue = why, false
		}
		rj.log().Debug("trigger while the job is throttled: it starts when the throttle ends", zap.String("trigger", why))
		return
	}
	rj.trig.pending, rj.trig.pendingQueue = why, false
	ms.start(why, rj.controlTrigger())
}

// pendingStart is the start a trigger asked for while the throttle held
// it ("" for none); a queue's is looked at again now.
func (rj *runJob) pendingStart() string {
	if rj.trig == nil || rj.trig.pending == "" {
		return ""
	}
	if rj.trig.pendingQueue && rj.queueReason() == "" {
		rj.trig.pending = ""
		return ""
	}
	return rj.trig.pending
}

// isTriggerStart reports whether why is the start a trigger asked for.
func (rj *runJob) isTriggerStart(why string) bool {
	return rj.trig != nil && rj.trig.pending == why
}

// triggersStarted is told by start once the main process runs.
func (rj *runJob) triggersStarted() {
	if rj.trig == nil {
		return
	}
	rj.trig.pending, rj.trig.pendingQueue = "", false
	if len(rj.def.Triggers.QueueDirectories) > 0 {
		rj.trig.queueMark = rj.queueFingerprint()
	}
}

// queueReason says which queue directory is not empty ("" when none).
func (rj *runJob) queueReason() string {
	for _, d := range rj.def.Triggers.QueueDirectories {
		full, err := trigger.NotEmpty(d)
		if err != nil {
			rj.log().Warn("QueueDirectories: cannot read the directory", zap.String("path", d), zap.Error(err))
			continue
		}
		if full {
			return "QueueDirectories: " + d + " is not empty"
		}
	}
	return ""
}

// queueFingerprint sums every queue directory of the job.
func (rj *runJob) queueFingerprint() uint64 {
	h := fnv.New64a()
	for _, d := range rj.def.Triggers.QueueDirectories {
		fp, _ := trigger.Fingerprint(d)
		fmt.Fprintf(h, "%s=%d;", d, fp)
	}
	return h.Sum64()
}

// queueAfterExit starts the job again when a queue directory is still
// not empty after it exited: through the throttle when the job changed
// its queues, and when it left them exactly as it found them after at
// least ThrottleInterval (1 s at least), saying so once, so that a job
// that cannot take its queue never runs in a loop. It reports whether it
// took the exit in hand.
func (rj *runJob) queueAfterExit() bool {
	if rj.trig == nil || len(rj.def.Triggers.QueueDirectories) == 0 {
		return false
	}
	why := rj.queueReason()
	if why == "" {
		rj.trig.queueStuck = false
		return false
	}
	if rj.queueFingerprint() != rj.trig.queueMark {
		rj.trig.queueStuck = false
		rj.triggerStart(why + " after the job exited")
		return true
	}
	ms := rj.mainSrv()
	wait := ms.th.loopWait(rj.def.ThrottleInterval, rj.s.now())
	fields := []zap.Field{zap.String("queue", why), zap.Duration("next_start_in", wait.Round(100*time.Millisecond))}
	if !rj.trig.queueStuck {
		rj.log().Warn("the job exited leaving its QueueDirectories as it found them; throttling so it does not restart in a loop", fields...)
	} else {
		rj.log().Debug("the job exited leaving its QueueDirectories as it found them again", fields...)
	}
	rj.trig.queueStuck = true
	ms.retryAfter(wait)
	rj.trig.pending, rj.trig.pendingQueue = why+" (left as it was by the last run)", true
	return true
}

// lookupOnce reads the job's LaunchOnlyOnce record.
func (rj *runJob) lookupOnce() {
	rj.trig.once = onceFree
	o := rj.s.trig().once
	if o == nil {
		return
	}
	rec, found, err := o.Lookup(rj.def.Label)
	if err != nil {
		rj.log().Warn("LaunchOnlyOnce: reading the record", zap.Error(err))
	}
	if found {
		rj.trig.once, rj.trig.onceAt, rj.trig.onceFile = onceDone, rec.At, rec.File
	}
}

// onceAllows is asked by start first: false when the job has
// LaunchOnlyOnce and has had its start this boot (said once).
func (rj *runJob) onceAllows(why string) bool {
	if !rj.def.Triggers.LaunchOnlyOnce {
		return true
	}
	if rj.trig == nil {
		rj.trig = &jobTriggers{}
	}
	if rj.trig.once == onceUnknown {
		rj.lookupOnce()
	}
	if rj.trig.once != onceDone {
		return true
	}
	rj.trig.pending = ""
	fields := []zap.Field{zap.String("reason", why), zap.Time("started_at", rj.trig.onceAt), zap.String("record", rj.trig.onceFile)}
	if !rj.trig.onceLogged {
		rj.trig.onceLogged = true
		rj.log().Info("LaunchOnlyOnce: the job has started once this boot; not starting it again", fields...)
	} else {
		rj.log().Debug("LaunchOnlyOnce: not starting it again", fields...)
	}
	return false
}

// onceClaim records the start about to be made; false when the record
// shows a start this boot already (another sockd made it meanwhile).
func (rj *runJob) onceClaim(why string) bool {
	if !rj.def.Triggers.LaunchOnlyOnce {
		return true
	}
	now := time.Now()
	rj.trig.once, rj.trig.onceAt = onceDone, now
	o := rj.s.trig().once
	if o == nil {
		return true
	}
	claimed, rec, err := o.Claim(rj.def.Label, now)
	switch {
	case err != nil:
		rj.log().Error("LaunchOnlyOnce: cannot record the start; this sockd starts the job once, but a restart of sockd may start it again", zap.Error(err))
	case !claimed:
		rj.trig.onceAt, rj.trig.onceFile = rec.At, rec.File
		return rj.onceAllows(why)
	default:
		rj.trig.onceFile, rj.trig.onceClaimed = rec.File, true
	}
	return true
}

// onceRelease takes the record back after a start that failed.
func (rj *runJob) onceRelease() {
	if rj.trig == nil || !rj.def.Triggers.LaunchOnlyOnce {
		return
	}
	rj.trig.once = onceFree
	if rj.trig.onceClaimed {
		rj.trig.onceClaimed = false
		if o := rj.s.trig().once; o != nil {
			if err := o.Release(rj.def.Label); err != nil {
				rj.log().Warn("LaunchOnlyOnce: taking the record back", zap.Error(err))
			}
		}
	}
}

// onceDone reports whether LaunchOnlyOnce keeps the job from starting.
func (rj *runJob) onceDone() bool {
	return rj.def.Triggers.LaunchOnlyOnce && rj.trig != nil && rj.trig.once == onceDone
}

// onceRefusal is what start and kickstart answer a job that has had its
// one start ("" when it may start).
func (rj *runJob) onceRefusal() string {
	if !rj.def.Triggers.LaunchOnlyOnce {
		return ""
	}
	if rj.trig == nil {
		rj.trig = &jobTriggers{}
	}
	if rj.trig.once == onceUnknown {
		rj.lookupOnce()
	}
	if rj.trig.once != onceDone {
		return ""
	}
	msg := fmt.Sprintf("job %q has LaunchOnlyOnce and started once this boot already (at %s)", rj.def.Label, rj.trig.onceAt.Format(time.RFC3339))
	if rj.trig.onceFile != "" {
		msg += "; removing " + rj.trig.onceFile + " allows one more start"
	}
	return msg
}

// checkOtherJobs evaluates the KeepAlive OtherJobEnabled conditions after
// a reload, the only time the set of loaded jobs changes. Loop only.
func (s *Supervisor) checkOtherJobs() {
	for _, rj := range s.jobs {
		if len(rj.def.KeepAlive.OtherJobEnabled) > 0 {
			rj.checkConditions()
		}
	}
}
