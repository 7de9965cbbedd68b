//go:build unix && !linux

package handover

import "syscall"

// CloseOnExec sets close-on-exec on every fd in fds.
func CloseOnExec(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			syscall.CloseOnExec(fd)
		}
	}
}
