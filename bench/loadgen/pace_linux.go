//go:build linux

package loadgen

import (
	"errors"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// lockPacerThread pins the calling goroutine to its OS thread for good (the
// thread exits with the goroutine) and sets the thread's timer slack to 1 ns
// so that preciseSleep wakes close to the requested time.
func lockPacerThread() {
	runtime.LockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0) // best effort
}

// preciseSleep sleeps with nanosleep(2) on the locked thread. Go timers wake
// with millisecond granularity when the process is otherwise idle, which
// would add up to 1 ms of generator error to every open-loop sample.
func preciseSleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for {
		err := unix.Nanosleep(&ts, &ts)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}
