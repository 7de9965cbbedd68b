//go:build linux

package supervisor

import (
	"net/netip"
	"time"

	"github.com/sockd/sockd/spawn"
)

// history is what a job did, for list, print and blame: the last start of
// its main process (or per-connection child) and why, the last exit, and
// when its state last changed. Loop goroutine only; wall-clock times.
type history struct {
	changed    time.Time // the last start, exit, stop or (re)arm
	lastWhy    string    // what started it last
	lastStart  time.Time
	lastExit   string // "exit status 0", "signal SIGKILL", "start failed: ..."
	lastExitAt time.Time
	runs       uint64 // starts of the main process

	// The last per-connection child (inetd nowait), kept unformatted: the
	// accept path pays no more than a clock read for it.
	connAt   time.Time
	connFrom netip.AddrPort
	connIP   bool // connFrom is set (not a Unix socket)
}

// connStarted records a per-connection child's start.
func (h *history) connStarted(from netip.AddrPort, ip bool) {
	h.connAt, h.connFrom, h.connIP = time.Now(), from, ip
}

// why is what started the job last and when: the main process's start or
// the newest per-connection child's, whichever is later.
func (h *history) why() (string, time.Time) {
	if h.connAt.After(h.lastStart) {
		if h.connIP {
			return "connection from " + h.connFrom.String(), h.connAt
		}
		return "connection on a Unix socket", h.connAt
	}
	return h.lastWhy, h.lastStart
}

// started records a start of the main process, or of a per-connection
// child (why: "connection from 127.0.0.1:4711").
func (h *history) started(why string) {
	now := time.Now()
	h.changed, h.lastWhy, h.lastStart = now, why, now
	h.runs++
}

// exited records the main process's exit.
func (h *history) exited(st spawn.ExitStatus) {
	now := time.Now()
	h.changed, h.lastExit, h.lastExitAt = now, st.String(), now
	if st.StartErr != nil {
		h.lastExit = "start failed: " + st.StartErr.Error()
	}
}

// startFailed records a start that did not happen.
func (h *history) startFailed(err error) {
	now := time.Now()
	h.changed, h.lastExit, h.lastExitAt = now, "start failed: "+err.Error(), now
}

// mark records a change of state that is neither start nor exit.
func (h *history) mark() { h.changed = time.Now() }
