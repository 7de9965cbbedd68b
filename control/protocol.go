// Package control is sockd's control plane on the wire: the requests that
// `sockd list`, `print`, `start`, `stop`, `kickstart`, `kill`, `enable`,
// `disable`, `bootstrap`, `bootout`, `reload`, `blame`, `upgrade` and
// `version --daemon` send to a running
// `sockd serve` over its control socket, the answers, who may ask what
// (Authorize, by the peer's SO_PEERCRED credentials), and the client and
// server ends of the socket. It knows nothing of jobs' internals: the
// daemon answers through a Handler.
//
// One request per connection: the client writes one JSON object and a
// newline, the server answers with one JSON object and closes. The field
// names of every type here are the documented, stable --json output.
package control

import "fmt"

// Command names, as on the command line.
const (
	CmdList      = "list"
	CmdPrint     = "print"
	CmdBlame     = "blame"
	CmdStart     = "start"
	CmdStop      = "stop"
	CmdKickstart = "kickstart"
	CmdKill      = "kill"
	CmdEnable    = "enable"
	CmdDisable   = "disable"
	CmdBootstrap = "bootstrap"
	CmdBootout   = "bootout"
	CmdReload    = "reload"
	CmdUpgrade   = "upgrade"
	CmdVersion   = "version"
)

// readOnly are the commands any local user may send to any sockd.
var readOnly = map[string]bool{CmdList: true, CmdPrint: true, CmdBlame: true, CmdVersion: true}

// ReadOnly reports whether cmd only reads.
func ReadOnly(cmd string) bool { return readOnly[cmd] }

// domainScoped are the changing commands a user may send root's sockd for
// the jobs of their own user domain.
var domainScoped = map[string]bool{CmdStart: true, CmdStop: true, CmdKickstart: true, CmdKill: true,
	CmdEnable: true, CmdDisable: true, CmdBootstrap: true, CmdBootout: true}

// known are every command a server answers.
var known = map[string]bool{
	CmdList: true, CmdPrint: true, CmdBlame: true, CmdStart: true, CmdStop: true, CmdKickstart: true,
	CmdKill: true, CmdEnable: true, CmdDisable: true, CmdBootstrap: true, CmdBootout: true, CmdReload: true,
	CmdUpgrade: true, CmdVersion: true,
}

// Request is one control request.
type Request struct {
	Cmd    string   `json:"cmd"`
	Labels []string `json:"labels,omitempty"`
	// Files are the job files of bootstrap, absolute paths.
	Files []string `json:"files,omitempty"`
	// Domain is the domain bootstrap and bootout act on: "user/UID" (a
	// user domain of root's sockd), "system", or "" (the caller's own
	// domain for a user, else system).
	Domain string `json:"domain,omitempty"`
	// Kill: kickstart -k (stop a running instance first and wait).
	Kill bool `json:"kill,omitempty"`
	// Signal is the signal number of kill.
	Signal int `json:"signal,omitempty"`
	// Binary is the new sockd binary of upgrade (absolute; "" for the
	// one the daemon runs).
	Binary string `json:"binary,omitempty"`
}

// Status is the outcome of a request; each has its exit status (Exit).
type Status string

const (
	OK           Status = "ok"
	Failed       Status = "failed"        // the daemon tried and it did not work
	NoSuchJob    Status = "no-such-job"   // a label names no loaded job
	NotPermitted Status = "not-permitted" // the peer may not ask this
	BadRequest   Status = "usage"         // a malformed or unknown request
	Unreachable  Status = "unreachable"   // no daemon answers (said by the client)
)

// Exit statuses of the control commands (documented in sockd(8)).
const (
	ExitOK           = 0
	ExitFailed       = 1
	ExitUsage        = 2
	ExitNoSuchJob    = 3
	ExitNotPermitted = 4
	ExitUnreachable  = 5 // no daemon answers at the control socket
)

// Exit is the exit status of a command that got st.
func (st Status) Exit() int {
	switch st {
	case OK:
		return ExitOK
	case NoSuchJob:
		return ExitNoSuchJob
	case NotPermitted:
		return ExitNotPermitted
	case BadRequest:
		return ExitUsage
	case Unreachable:
		return ExitUnreachable
	}
	return ExitFailed
}

// Response is the answer to one request.
type Response struct {
	Status Status `json:"status"`
	// Error says what went wrong, naming the job; empty when Status is OK.
	Error string `json:"error,omitempty"`
	// Jobs: list (every job), print and blame (the one asked for).
	Jobs []Job `json:"jobs,omitempty"`
	// Diags: the problems reload and bootstrap found, as `sockd check`
	// prints them (FILE[:LINE]: KEY: error|warning: MESSAGE).
	Diags []string `json:"diags,omitempty"`
	// Done lists what a changing request did, one line each.
	Done []string `json:"done,omitempty"`
	// Daemon: version (the sockd that answers).
	Daemon *Daemon `json:"daemon,omitempty"`
}

// Daemon is the sockd that answers: its version, pid, and when this
// image of it started (an upgrade in place keeps the pid and changes
// the image).
type Daemon struct {
	Version string `json:"version"`
	Pid     int    `json:"pid"`
	Started string `json:"started"` // RFC 3339
	// UpgradedFrom is the version of the image this one upgraded from,
	// "" for a fresh start.
	UpgradedFrom string `json:"upgraded_from,omitempty"`
}

// Errorf returns a response of status st whose error is the formatted text.
func Errorf(st Status, format string, args ...any) Response {
	return Response{Status: st, Error: fmt.Sprintf(format, args...)}
}

// Job is one job as the daemon runs it now.
type Job struct {
	Label string `json:"label"`
	File  string `json:"file,omitempty"`
	Mode  string `json:"mode"`
	// State is one of waiting, starting, running, throttled, stopping,
	// disabled, failed-to-bind, paused, done (LaunchOnlyOnce: it had its
	// start this boot).
	State string `json:"state"`
	// Since is when the job entered State (RFC 3339).
	Since string `json:"since,omitempty"`
	// Pid is the main process (0: none).
	Pid int `json:"pid,omitempty"`
	// Disabled is true when the job is kept off; DisabledBy says what
	// keeps it off: "override" (sockd disable) or "file" (the job file's
	// Disabled key, which sockd enable does not change).
	Disabled   bool   `json:"disabled,omitempty"`
	DisabledBy string `json:"disabled_by,omitempty"`
	// Stale is true when the job file is now invalid and the job runs its
	// last good definition; StaleReason says what is wrong with the file.
	Stale       bool   `json:"stale,omitempty"`
	StaleReason string `json:"stale_reason,omitempty"`
	// LastExit is the last exit of the main process ("exit 0", "signal
	// SIGKILL", "start failed: ..."), LastExitTime when it happened.
	LastExit     string `json:"last_exit,omitempty"`
	LastExitTime string `json:"last_exit_time,omitempty"`
	// Runs counts the starts of the main process or of per-connection
	// children.
	Runs uint64 `json:"runs"`
	// LastStartReason says what started the job last (blame).
	LastStartReason string `json:"last_start_reason,omitempty"`
	LastStartTime   string `json:"last_start_time,omitempty"`
	// NextStart is the earliest time the throttle allows the next start.
	NextStart string   `json:"next_start,omitempty"`
	Sockets   []Socket `json:"sockets,omitempty"`
	// Counters.
	Accepted      uint64 `json:"accepted"`
	Refused       uint64 `json:"refused"`
	SpawnFailures uint64 `json:"spawn_failures"`
	// Children are the per-connection processes running now (inetd).
	Children []Child `json:"children,omitempty"`
	// Limits in force and their live counts.
	Limits *Limits `json:"limits,omitempty"`
	// Proxy figures (proxy jobs).
	Proxy *Proxy `json:"proxy,omitempty"`
	// Triggers are what starts the job besides its sockets (print).
	Triggers *Triggers `json:"triggers,omitempty"`
}

// Triggers are a job's StartInterval, StartCalendarInterval, WatchPaths,
// QueueDirectories, StartOnMount, LaunchOnlyOnce and KeepAlive PathState,
// with the next timed start.
type Triggers struct {
	// NextStart is the next StartInterval or StartCalendarInterval time
	// (RFC 3339), NextStartBy which of the two it is.
	NextStart   string `json:"next_start,omitempty"`
	NextStartBy string `json:"next_start_by,omitempty"`
	// StartInterval in seconds (0: none).
	StartInterval int `json:"start_interval,omitempty"`
	// Calendar is each StartCalendarInterval entry in words ("Hour 3
	// Minute 35").
	Calendar []string `json:"calendar,omitempty"`
	// The paths watched: WatchPaths, QueueDirectories, PathState.
	WatchPaths       []string `json:"watch_paths,omitempty"`
	QueueDirectories []string `json:"queue_directories,omitempty"`
	PathState        []string `json:"path_state,omitempty"`
	StartOnMount     bool     `json:"start_on_mount,omitempty"`
	LaunchOnlyOnce   bool     `json:"launch_only_once,omitempty"`
	// StartedOnce is when a LaunchOnlyOnce job had its start this boot.
	StartedOnce string `json:"started_once,omitempty"`
}

// Socket is one open socket of a job.
type Socket struct {
	Name    string `json:"name"`
	Network string `json:"network"`
	Address string `json:"address"`
	Fd      int    `json:"fd"`
	// Options are its SockdOptions as the kernel reports them.
	Options []SocketOption `json:"options,omitempty"`
}

// SocketOption is one SockdOptions key of an open socket: Value is what
// getsockopt reports (or the value set, where the kernel reports none),
// Set the job file's value when that differs.
type SocketOption struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Set   string `json:"set,omitempty"`
}

// Child is one per-connection process.
type Child struct {
	Pid    int    `json:"pid"`
	Source string `json:"source,omitempty"`
}

// Limits are a job's SockdLimits and their live counts.
type Limits struct {
	MaxChildren  int     `json:"max_children,omitempty"`
	MaxPerSource int     `json:"max_per_source,omitempty"`
	Rate         float64 `json:"rate,omitempty"`
	Running      int     `json:"running"`
	Sources      int     `json:"sources"`
}

// Proxy are a proxy job's figures.
type Proxy struct {
	Backend    string `json:"backend"`
	BackendPid int    `json:"backend_pid,omitempty"`
	Active     int64  `json:"active"`
	Total      uint64 `json:"total"`
}
