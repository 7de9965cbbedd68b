//go:build !unix

package compat

// Linux's setrlimit resource numbers, so that jobs converted elsewhere are
// still meant for Linux.
const (
	rlimitAS     = 9
	rlimitCPU    = 0
	rlimitData   = 2
	rlimitNofile = 7
	rlimitRSS    = 5
	rlimitStack  = 3
)
