package handover

import (
	"slices"

	"golang.org/x/sys/unix"
)

// CloseOnExec sets close-on-exec on every fd in fds: one close_range(2)
// per run of consecutive numbers (an upgrade hands 10,000 sockets in a
// few runs), one fcntl(2) per fd on a kernel without CLOSE_RANGE_CLOEXEC
// (before 5.11). Numbers that are not open are left alone.
func CloseOnExec(fds []int) {
	sorted := slices.Clone(fds)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	for len(sorted) > 0 {
		if sorted[0] < 0 {
			sorted = sorted[1:]
			continue
		}
		n := 1
		for n < len(sorted) && sorted[n] == sorted[0]+n {
			n++
		}
		closeOnExecRun(sorted[:n])
		sorted = sorted[n:]
	}
}

func closeOnExecRun(run []int) {
	first, last := uint(run[0]), uint(run[len(run)-1])
	if unix.CloseRange(first, last, unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	for _, fd := range run {
		unix.CloseOnExec(fd)
	}
}
