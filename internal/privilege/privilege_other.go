//go:build !linux

package privilege

import (
	"errors"
	"os"
)

func geteuid() int                  { return os.Geteuid() }
func effectiveCaps() uint64         { return 0 }
func groups() []int                 { return nil }
func currentNice() int              { return 0 }
func currentLimits() map[int]Rlimit { return map[int]Rlimit{} }
func nrOpen() uint64                { return 0 }
func unprivilegedPortStart() int    { return 1024 }

// RunAs is Linux-only (per-thread credentials).
func RunAs(Cred, func()) error { return errors.ErrUnsupported }

// OnLockedThread is Linux-only (per-thread credentials).
func OnLockedThread(Cred, func()) (bool, error) { return false, errors.ErrUnsupported }
