//go:build linux

package compat

import "golang.org/x/sys/unix"

// setrlimit resources of systemd's Limit*= directives that xinetd has no
// attribute for.
const (
	rlimitFsize   = unix.RLIMIT_FSIZE
	rlimitCore    = unix.RLIMIT_CORE
	rlimitNproc   = unix.RLIMIT_NPROC
	rlimitMemlock = unix.RLIMIT_MEMLOCK
)
