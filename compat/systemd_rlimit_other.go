//go:build !linux

package compat

// Linux's numbers for the resources of systemd's Limit*= directives that
// xinetd has no attribute for: systemd units are Linux's.
const (
	rlimitFsize   = 1
	rlimitCore    = 4
	rlimitNproc   = 6
	rlimitMemlock = 8
)
