//go:build linux && !386 && !arm

package privilege

import "golang.org/x/sys/unix"

// The system calls with 32-bit ids.
const (
	sysSetresuid = unix.SYS_SETRESUID
	sysSetresgid = unix.SYS_SETRESGID
)
