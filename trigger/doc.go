// Package trigger holds what starts a job besides its sockets, for the
// supervisor's loop: the schedule of timed starts (StartInterval and
// StartCalendarInterval) on one heap, with the calendar's next-time rule
// (wildcards, Day or Weekday, month ends, Feb 29, daylight-saving changes);
// and, on Linux, the kernel objects the loop watches: one CLOCK_BOOTTIME
// timerfd for the nearest deadline (it fires on wake-up when the deadline
// passed while the machine slept), one CLOCK_REALTIME timerfd that notices
// the wall clock being set (TFD_TIMER_CANCEL_ON_SET), one inotify instance
// for every watched path (WatchPaths, QueueDirectories, KeepAlive
// PathState), and /proc/self/mountinfo (StartOnMount). It also keeps the
// LaunchOnlyOnce records.
//
// Nothing here starts a goroutine or a thread: every type is driven by its
// owner, the supervisor's loop, which watches the fds and calls in when
// they are ready.
package trigger
