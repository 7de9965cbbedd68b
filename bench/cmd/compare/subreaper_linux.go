//go:build linux

package main

import "golang.org/x/sys/unix"

// becomeSubreaper makes orphaned descendants of the servers (children that
// outlive a killed daemon) re-parent to the driver, so they can be found and
// reaped.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}
