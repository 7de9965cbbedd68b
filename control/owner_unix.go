//go:build unix

package control

import (
	"os"
	"syscall"
)

// ownedBy reports whether dir is a directory owned by uid.
func ownedBy(dir string, uid int) bool {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == uid
}
