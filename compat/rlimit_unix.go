//go:build unix

package compat

import "golang.org/x/sys/unix"

// setrlimit resources of xinetd's rlimit_* attributes.
const (
	rlimitAS     = unix.RLIMIT_AS
	rlimitCPU    = unix.RLIMIT_CPU
	rlimitData   = unix.RLIMIT_DATA
	rlimitNofile = unix.RLIMIT_NOFILE
	rlimitRSS    = unix.RLIMIT_RSS
	rlimitStack  = unix.RLIMIT_STACK
)
