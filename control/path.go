package control

import (
	"os"
	"path/filepath"
	"strconv"
)

// DefaultPath is the control socket of a sockd running as uid:
// /run/sockd/control.sock for root; for a user, under $XDG_RUNTIME_DIR
// (sockd/control.sock), else /run/user/UID when it exists and is the
// user's, else the user's config directory (~/.config/sockd/control.sock).
func DefaultPath(uid int) string {
	if uid == 0 {
		return SystemSocket
	}
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "sockd", "control.sock")
	}
	run := filepath.Join("/run/user", strconv.Itoa(uid))
	if ownedBy(run, uid) {
		return filepath.Join(run, "sockd", "control.sock")
	}
	if dir, err := os.UserConfigDir(); err == nil {
		return filepath.Join(dir, "sockd", "control.sock")
	}
	return filepath.Join(os.TempDir(), "sockd-"+strconv.Itoa(uid), "control.sock")
}

// ClientPath is the control socket the control commands ask by default
// when run as uid: root's for root; for a user, the user's own sockd's
// (DefaultPath) where that socket exists, else root's, which serves the
// user's domain.
func ClientPath(uid int) string {
	own := DefaultPath(uid)
	if uid == 0 {
		return own
	}
	if _, err := os.Lstat(own); err != nil {
		if _, err := os.Lstat(DefaultPath(0)); err == nil {
			return DefaultPath(0)
		}
	}
	return own
}
