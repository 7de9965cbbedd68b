package main

import (
	"path/filepath"
	"time"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/trigger"
)

// fileTriggers is the file view of what starts j besides its sockets, in
// the live view's form, with the next calendar time after now (a
// StartInterval counts from load, which a file does not know); nil when
// it has none.
func fileTriggers(j *job.Job, now time.Time) *control.Triggers {
	tr := j.Triggers
	if !tr.Starts() && !tr.LaunchOnlyOnce && len(j.KeepAlive.PathState) == 0 {
		return nil
	}
	out := &control.Triggers{StartInterval: int(tr.StartInterval / time.Second), WatchPaths: tr.WatchPaths,
		QueueDirectories: tr.QueueDirectories, StartOnMount: tr.StartOnMount, LaunchOnlyOnce: tr.LaunchOnlyOnce}
	for _, c := range tr.Calendar {
		out.Calendar = append(out.Calendar, c.String())
	}
	for _, pc := range j.KeepAlive.PathState {
		p := pc.Path
		if !filepath.IsAbs(p) {
			p = "/" + p
		}
		out.PathState = append(out.PathState, filepath.Clean(p))
	}
	if next, ok := trigger.NextCalendar(tr.Calendar, now); ok {
		out.NextStart, out.NextStartBy = next.Format(time.RFC3339), trigger.Calendar.String()
	}
	return out
}
