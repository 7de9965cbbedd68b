//go:build unix

package launch

import "syscall"

// closeOnExec keeps a passed fd from leaking into programs this one runs.
func closeOnExec(fd int) { syscall.CloseOnExec(fd) }
