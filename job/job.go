// Package job is sockd's typed model of a launchd job: what to run, how, and
// on which sockets. Every other package (listener, spawn, the supervisor,
// compat importers) reads jobs only through these types; none of them sees a
// property list.
//
// A Job is produced by the loader in this package (launchd job files in XML,
// binary or OpenStep encoding) or by the importers in package compat
// (inetd.conf, xinetd). Loading fills in launchd's defaults and resolves
// service names and node names, so a Job is ready to use: a consumer never
// applies a default of its own.
//
// The semantics follow launchd.plist(5) as launchd-842 implements it; where
// sockd differs on purpose (unknown SockType is an error, not "stream"; the
// listed sockd extension keys), docs/keys.md and docs/serving.md say so.
package job

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sockd/sockd/internal/privilege"
)

// Mode is how sockd serves a job's sockets.
type Mode int

const (
	// ModeNone: the job has no sockets. It runs by RunAtLoad/KeepAlive only.
	ModeNone Mode = iota
	// ModeInetdNowait: inetdCompatibility Wait=false. One child per accepted
	// connection, the connected socket on fds 0, 1 and 2.
	ModeInetdNowait
	// ModeInetdWait: inetdCompatibility Wait=true. The ready listening or
	// datagram socket itself on fds 0, 1 and 2; sockd stops watching it while
	// the child runs.
	ModeInetdWait
	// ModeHandoff: Sockets and no inetdCompatibility. The job is started on
	// the first activity and receives every socket as fds 3.. with
	// LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES and LAUNCH_ variables.
	ModeHandoff
	// ModeProxy: the SockdProxy extension. sockd accepts and forwards to a
	// backend it starts on demand.
	ModeProxy
	// ModeInternal: the SockdInternal extension. sockd itself answers
	// (echo, discard, chargen, daytime, time); no process is spawned.
	ModeInternal
)

func (m Mode) String() string {
	switch m {
	case ModeNone:
		return "none"
	case ModeInetdNowait:
		return "inetd-nowait"
	case ModeInetdWait:
		return "inetd-wait"
	case ModeHandoff:
		return "handoff"
	case ModeProxy:
		return "proxy"
	case ModeInternal:
		return "internal"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Defaults launchd applies (launchd-842 job_new, runtime.h).
const (
	DefaultThrottleInterval = 10 * time.Second
	DefaultExitTimeOut      = 20 * time.Second
	DefaultTimeOut          = 30 * time.Second
)

// Job is one loaded, validated and resolved job.
type Job struct {
	// File is where the job came from: a job file path, or "inetd.conf:12"
	// style for imported entries. Used in every message about the job.
	File string
	// Source names the format: "launchd-xml", "launchd-binary",
	// "launchd-openstep", "inetd", "xinetd".
	Source string

	Label string
	// Program as written (may be empty when ProgramArguments[0] is used).
	Program string
	// ProgramArguments is argv. When it is empty, argv is [Program].
	ProgramArguments []string
	// Path is the executable resolved at load: Program if set (no PATH
	// search, as launchd), else ProgramArguments[0] looked up on PATH.
	// Empty for jobs that run no program (internal services, external proxy).
	Path string
	// Argv is the final argv handed to execve (never empty when Path is set).
	Argv []string

	EnableGlobbing bool
	Disabled       bool
	// Hosts are LimitLoadToHosts and LimitLoadFromHosts: the hosts that
	// load the job (see HostLimits.LoadsOn and SelectForHost).
	Hosts HostLimits

	UserName   string
	GroupName  string
	InitGroups bool // default true

	WorkingDirectory string
	RootDirectory    string
	// EnvironmentVariables, in sorted key order for a stable environment.
	EnvironmentVariables []EnvVar
	// Umask is nil when the job does not set one (inherit sockd's).
	Umask *uint32

	StandardInPath    string
	StandardOutPath   string
	StandardErrorPath string

	SoftResourceLimits []RLimit
	HardResourceLimits []RLimit

	// Nice is nil when not set.
	Nice *int

	SessionCreate       bool
	AbandonProcessGroup bool

	// LogConnections (SockdLogConnections) has sockd log one record per
	// connection or datagram flow it serves, at its end, and one per
	// refusal by a limit (sockd serve --log-connections for every job).
	LogConnections bool

	// Domain is the user domain the job belongs to (sockd bootstrap
	// user/UID), nil for the system domain: its Label is then qualified
	// ("user/1000/org.example.agent"), it runs as the domain's user and
	// its sockets are made with that user's rights.
	Domain *Domain

	KeepAlive KeepAlive
	RunAtLoad bool
	// Triggers start the job besides its sockets: StartInterval,
	// StartCalendarInterval, WatchPaths, QueueDirectories, StartOnMount;
	// and LaunchOnlyOnce (triggers.go).
	Triggers Triggers

	ThrottleInterval time.Duration
	ExitTimeOut      time.Duration
	TimeOut          time.Duration

	// Inetd is nil when the job has no inetdCompatibility key.
	Inetd *Inetd

	// Sockets in their stable hand-off order: groups sorted by name (byte
	// order), within a group the array order, within an entry one endpoint
	// per address family (IPv6 first, then IPv4, as getaddrinfo orders them
	// on Linux).
	Sockets []SocketGroup

	// Limits are sockd's extension keys for inetd-style jobs (SockdLimits).
	Limits Limits

	// Internal names a built-in service (SockdInternal): "echo", "discard",
	// "chargen", "daytime", "time". Empty otherwise.
	Internal string

	// Proxy is set for proxy jobs (SockdProxy).
	Proxy *Proxy
}

// Mode tells how the job's sockets are served.
func (j *Job) Mode() Mode {
	switch {
	case j.Internal != "":
		return ModeInternal
	case j.Proxy != nil:
		return ModeProxy
	case len(j.Sockets) == 0:
		return ModeNone
	case j.Inetd != nil && j.Inetd.Wait:
		return ModeInetdWait
	case j.Inetd != nil:
		return ModeInetdNowait
	default:
		return ModeHandoff
	}
}

// Endpoints returns every endpoint of the job in hand-off order.
func (j *Job) Endpoints() []*Endpoint {
	var out []*Endpoint
	for gi := range j.Sockets {
		for si := range j.Sockets[gi].Sockets {
			s := &j.Sockets[gi].Sockets[si]
			for ei := range s.Endpoints {
				out = append(out, &s.Endpoints[ei])
			}
		}
	}
	return out
}

// Domain is the user a user domain's jobs belong to.
type Domain struct {
	UID, GID int   // the user and their primary group
	Groups   []int // every group of the user, the primary one included
	User     string
	Home     string
	// Ports are ports below ip_unprivileged_port_start the domain's jobs
	// may bind all the same: an admin's grant (sockd serve --domain-ports).
	Ports []int
}

// Name is the domain's name: "user/1000".
func (d *Domain) Name() string { return fmt.Sprintf("user/%d", d.UID) }

// CredFor is the identity ep's socket is made with: the domain's user's,
// with CAP_NET_BIND_SERVICE kept where the admin granted ep's port.
func (d *Domain) CredFor(ep *Endpoint) privilege.Cred {
	c := d.Cred()
	if !strings.HasPrefix(ep.Network, "tcp") && !strings.HasPrefix(ep.Network, "udp") {
		return c
	}
	if ap, err := netip.ParseAddrPort(ep.Address); err == nil && slices.Contains(d.Ports, int(ap.Port())) {
		c.Caps = 1 << privilege.CapNetBindService
	}
	return c
}

// Cred is the identity of the domain's user: uid, primary group and
// groups.
func (d *Domain) Cred() privilege.Cred {
	c := privilege.Cred{UID: uint32(d.UID), GID: uint32(d.GID)}
	for _, g := range d.Groups {
		c.Groups = append(c.Groups, uint32(g))
	}
	return c
}

// EnvVar is one environment variable of the job.
type EnvVar struct {
	Name, Value string
}

// RLimit is one resource limit. Resource is a unix.RLIMIT_* value; Name is
// the launchd key (Core, CPU, Data, FileSize, MemoryLock, NumberOfFiles,
// NumberOfProcesses, ResidentSetSize, Stack).
type RLimit struct {
	Name     string
	Resource int
	Value    uint64
}

// Inetd is the inetdCompatibility dictionary.
type Inetd struct {
	Wait bool
}

// KeepAlive is the KeepAlive key in both forms. The zero value is
// KeepAlive=false (on demand).
type KeepAlive struct {
	// Always is KeepAlive=true (or OnDemand=false).
	Always bool
	// SuccessfulExit: nil unset; true restart after exit 0; false restart
	// after a non-zero exit or death by signal.
	SuccessfulExit *bool
	// Crashed: nil unset; true restart after a crash signal (SIGILL, SIGABRT,
	// SIGFPE, SIGBUS, SIGSEGV, SIGSYS, SIGTRAP) not sent by sockd; false the
	// opposite.
	Crashed *bool
	// PathState: keep alive while the path exists (true) or is missing (false).
	PathState []PathCond
	// OtherJobEnabled: keep alive while the label is loaded (true) or not (false).
	OtherJobEnabled []LabelCond
	// AfterInitialDemand: do not evaluate KeepAlive until the first
	// demand start.
	AfterInitialDemand bool
}

// ImpliesRunAtLoad reports whether KeepAlive forces an initial start, as
// launchd does for SuccessfulExit and Crashed.
func (k KeepAlive) ImpliesRunAtLoad() bool {
	return k.Always || k.SuccessfulExit != nil || k.Crashed != nil
}

// PathCond is one PathState entry.
type PathCond struct {
	Path   string
	Exists bool
}

// LabelCond is one OtherJobEnabled entry.
type LabelCond struct {
	Label   string
	Enabled bool
}

// SocketGroup is one key of the Sockets dictionary: every socket under one
// name, handed out together.
type SocketGroup struct {
	Name    string
	Sockets []Socket
}

// SockType is SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET, or FIFO: a named
// pipe at SockPathName (SockType "fifo", sockd's counterpart of systemd's
// ListenFIFO), which is no socket at all.
type SockType int

const (
	Stream SockType = iota
	Dgram
	SeqPacket
	// FIFO is a named pipe that sockd creates at SockPathName and holds
	// open for reading and writing: readable means demand. Endpoint
	// network "fifo".
	FIFO
)

func (t SockType) String() string {
	switch t {
	case Stream:
		return "stream"
	case Dgram:
		return "dgram"
	case SeqPacket:
		return "seqpacket"
	case FIFO:
		return "fifo"
	}
	return fmt.Sprintf("SockType(%d)", int(t))
}

// Family is the address family requested by SockFamily (or implied by
// SockPathName).
type Family int

const (
	FamilyUnspec Family = iota // one socket per family
	IPv4
	IPv6
	Unix
)

func (f Family) String() string {
	switch f {
	case FamilyUnspec:
		return "unspec"
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	case Unix:
		return "Unix"
	}
	return fmt.Sprintf("Family(%d)", int(f))
}

// Socket is one socket dictionary.
type Socket struct {
	// Key is the key path of this dictionary in the job file, e.g.
	// "Sockets.Listeners[1]", for messages.
	Key string

	Type    SockType
	Passive bool // default true
	// NodeName as written ("" = wildcard).
	NodeName string
	// ServiceName as written (a name or a decimal number).
	ServiceName string
	// Port is ServiceName resolved through the services database; 0 when
	// unset (the kernel picks one) or for Unix sockets.
	Port   int
	Family Family
	// Protocol is "", "tcp" or "udp" (SockProtocol).
	Protocol string

	PathName string
	// PathMode is nil when SockPathMode is not set (the node stays 0700).
	PathMode *os.FileMode
	// PathOwner/PathGroup are nil when not set.
	PathOwner *int
	PathGroup *int

	MulticastGroup string

	// Options is the SockdOptions dictionary (sockopts.go): socket options
	// set before bind and listen, the parent directories and symbolic
	// links of a Unix socket or FIFO. The zero value sets nothing.
	Options SockOptions

	// Endpoints are the concrete sockets this dictionary makes: one per
	// address family for an unspecified family, one per resolved address of
	// NodeName, or one Unix path.
	Endpoints []Endpoint
}

// Endpoint is one concrete socket to create.
type Endpoint struct {
	// Group is the Sockets key this endpoint belongs to (LISTEN_FDNAMES).
	Group string
	// Key is the key path of the socket dictionary it came from.
	Key string
	// Network is a Go network name: "tcp4", "tcp6", "udp4", "udp6", "unix",
	// "unixgram" or "unixpacket"; or "fifo" for a named pipe (SockType fifo).
	Network string
	// Address is "ip:port" (with brackets for IPv6) or a Unix path.
	Address string
	// Passive is false for SockPassive=false (connect at load).
	Passive bool
	// Socket points back at the dictionary (mode, owner, multicast).
	Socket *Socket
}

// ID is a stable identity for the endpoint across reloads: a socket whose
// ID did not change is kept open.
func (e *Endpoint) ID() string {
	// Built by appending, not fmt: a reload and an upgrade compute it for
	// every socket (10,000 sockets: 2 µs each with fmt.Sprintf).
	b := make([]byte, 0, len(e.Network)+len(e.Address)+16)
	b = append(append(append(b, e.Network...), ' '), e.Address...)
	b = strconv.AppendBool(append(b, " passive="...), e.Passive)
	s := e.Socket
	if s == nil {
		return string(b)
	}
	if s.PathMode != nil {
		b = strconv.AppendUint(append(b, " mode="...), uint64(*s.PathMode), 8)
	}
	if s.PathOwner != nil {
		b = strconv.AppendInt(append(b, " owner="...), int64(*s.PathOwner), 10)
	}
	if s.PathGroup != nil {
		b = strconv.AppendInt(append(b, " group="...), int64(*s.PathGroup), 10)
	}
	if s.MulticastGroup != "" {
		b = append(append(b, " mcast="...), s.MulticastGroup...)
	}
	if o := s.Options.identity(); o != "" {
		b = append(append(b, " opts="...), o...)
	}
	return string(b)
}

// Limits are the SockdLimits extension keys (issue: limits and faults).
// Zero values mean "use the default"; the loader fills the defaults in.
type Limits struct {
	// MaxChildren: concurrent children of an inetd-style job; beyond it
	// sockd stops accepting and lets the kernel backlog hold clients.
	MaxChildren int
	// MaxPerSource: concurrent connections per source address; over it the
	// connection is accepted, logged and closed.
	MaxPerSource int
	// Rate and Burst: spawn-rate token bucket (connections per second). When
	// exhausted accepting pauses for Pause and resumes by itself.
	Rate  float64
	Burst int
	Pause time.Duration
	// Allow and Deny are address or CIDR lists checked before spawning.
	Allow []string
	Deny  []string
}

// Proxy is the SockdProxy extension (issue: proxy mode).
type Proxy struct {
	// Backend is "host:port" or a Unix socket path.
	Backend string
	// Notify: wait for READY=1 on NOTIFY_SOCKET instead of a connect probe.
	Notify bool
	// ReadyTimeout: how long clients wait for a backend to become ready.
	ReadyTimeout time.Duration
	// IdleTimeout: per-connection idle timeout (0 = none).
	IdleTimeout time.Duration
	// StopAfterIdle: stop the backend after this long with no connections
	// (0 = never).
	StopAfterIdle time.Duration
	// ProxyProtocol: "", "v1" or "v2".
	ProxyProtocol string
}

// Severity tells errors and warnings apart.
type Severity int

const (
	Warning Severity = iota
	Error
	// Info is a note that is no problem: a job this host does not load
	// (LimitLoadToHosts, LimitLoadFromHosts).
	Info
)

func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Info:
		return "info"
	}
	return "warning"
}

// Diag is one problem found in a job file. Its String form is
// "FILE: KEY: error: MESSAGE" (or "warning:"); KEY is a key path such as
// "Sockets.Listeners[1].SockServiceName" and is omitted for problems with the
// whole file. Line is 0 when the format carries no line numbers.
type Diag struct {
	File     string
	Line     int
	Key      string
	Severity Severity
	Msg      string
}

func (d Diag) String() string {
	where := d.File
	if d.Line > 0 {
		where = fmt.Sprintf("%s:%d", d.File, d.Line)
	}
	if d.Key != "" {
		return fmt.Sprintf("%s: %s: %s: %s", where, d.Key, d.Severity, d.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", where, d.Severity, d.Msg)
}

// Diags is a list of problems.
type Diags []Diag

// HasErrors reports whether any entry is an error.
func (ds Diags) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}
