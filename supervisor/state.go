//go:build linux

package supervisor

// jobState is what a job is doing, as list, print and SIGUSR1 report it.
type jobState uint8

const (
	// stateWaiting: armed, waiting for a connection or another trigger.
	stateWaiting jobState = iota
	// stateRunning: the main process (or proxy backend) runs.
	stateRunning
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

// jobState decides the job's state from what it holds: the one place that
// does. detail says why a paused job is paused.
func (rj *runJob) jobState() (st jobState, detail string) {
	switch {
	case rj.main != nil && rj.main.stopping:
		return stateStopping, ""
	case rj.main != nil:
		return stateRunning, ""
	case rj.retryTimer != nil:
		return stateThrottled, ""
	case rj.onceDone():
		return stateDone, ""
	case rj.acceptHold != "":
		return statePaused, rj.acceptHold
	case len(rj.socks) == 0 && len(rj.def.Endpoints()) > 0:
		return stateBindFailed, ""
	}
	return stateWaiting, ""
}

// stateText is the state as one word, with the pause reason.
func (rj *runJob) stateText() string {
	st, detail := rj.jobState()
	if detail != "" {
		return st.String() + ": " + detail
	}
	return st.String()
}
