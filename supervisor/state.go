//go:build linux

package supervisor

// jobState is what a job is doing, as list, print and SIGUSR1 report it.
type jobState uint8

const (
	// stateWaiting: armed, waiting for a connection or another trigger.
	stateWaiting jobState = iota
	// stateRunning: the main process (or proxy backend) runs.
	stateRunning
	// stateStarting: a proxy backend runs and is not ready yet.
	stateStarting
	// stateThrottled: the next start waits for ThrottleInterval or a retry.
	stateThrottled
	// stateStopping: sockd asked the main process to exit.
	stateStopping
	// statePaused: accepting is paused (MaxChildren, no fds, spawn failures).
	statePaused
	// stateBindFailed: the job has sockets and none of them is open.
	stateBindFailed
	// stateDisabled: an override (sockd disable) or the file's Disabled
	// key keeps it off.
	stateDisabled
	// stateDone: LaunchOnlyOnce, and the job has had its one start this
	// boot.
	stateDone
)

var stateNames = [...]string{
	stateWaiting:    "waiting",
	stateRunning:    "running",
	stateStarting:   "starting",
	stateThrottled:  "throttled",
	stateStopping:   "stopping",
	statePaused:     "paused",
	stateBindFailed: "failed-to-bind",
	stateDisabled:   "disabled",
	stateDone:       "done",
}

func (s jobState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// stateFacts are what decide a job's state.
type stateFacts struct {
	serverPhase
	onceDone   bool // LaunchOnlyOnce, and it has had its start
	bindFailed bool // it has sockets and none of them is open
}

// stateOf decides a job's state from what it holds: the one place that
// does. detail says why a paused job is paused.
func stateOf(f stateFacts) (jobState, string) {
	switch {
	case f.mainStopping:
		return stateStopping, ""
	case f.mainRunning && f.mainStarting:
		return stateStarting, ""
	case f.mainRunning:
		return stateRunning, ""
	case f.throttled:
		return stateThrottled, ""
	case f.onceDone:
		return stateDone, ""
	case f.hold != holdNone:
		return statePaused, f.hold.String()
	case f.bindFailed:
		return stateBindFailed, ""
	}
	return stateWaiting, ""
}

// jobState is the job's state now (see stateOf).
func (rj *runJob) jobState() (jobState, string) {
	return stateOf(stateFacts{serverPhase: rj.srv.phase(), onceDone: rj.onceDone(),
		bindFailed: len(rj.socks) == 0 && len(rj.def.Endpoints()) > 0})
}

// stateText is the state as one word, with the pause reason.
func (rj *runJob) stateText() string {
	st, detail := rj.jobState()
	if detail != "" {
		return st.String() + ": " + detail
	}
	return st.String()
}
