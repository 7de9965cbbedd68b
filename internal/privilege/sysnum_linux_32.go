//go:build linux && (386 || arm)

package privilege

import "golang.org/x/sys/unix"

// The system calls with 32-bit ids (the plain ones take 16-bit ids here).
const (
	sysSetresuid = unix.SYS_SETRESUID32
	sysSetresgid = unix.SYS_SETRESGID32
)
