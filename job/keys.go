package job

import "strings"

// KeyStatus tells what sockd does with a launchd key.
type KeyStatus int

const (
	// KeySupported keys are implemented.
	KeySupported KeyStatus = iota
	// KeyIgnored keys are accepted with a warning and have no effect,
	// mostly because they are Darwin-only.
	KeyIgnored
	// KeyPlanned keys are launchd keys sockd does not implement yet; they
	// are accepted with a warning.
	KeyPlanned
)

func (s KeyStatus) String() string {
	switch s {
	case KeySupported:
		return "supported"
	case KeyIgnored:
		return "ignored"
	}
	return "planned"
}

// KeyInfo describes one key the loader knows.
type KeyInfo struct {
	Name   string
	Status KeyStatus
	// Why explains an ignored or planned key (used in warnings).
	Why string
}

// TopLevelKeys lists every top-level key the loader knows, launchd's and
// sockd's extensions (Sockd*), with what sockd does with it. Anything else
// is an unknown key and draws a warning.
var TopLevelKeys = []KeyInfo{
	{Name: "Label"},
	{Name: "Program"},
	{Name: "ProgramArguments"},
	{Name: "EnableGlobbing"},
	{Name: "Disabled"},
	{Name: "UserName"},
	{Name: "GroupName"},
	{Name: "InitGroups"},
	{Name: "WorkingDirectory"},
	{Name: "RootDirectory"},
	{Name: "EnvironmentVariables"},
	{Name: "Umask"},
	{Name: "StandardInPath"},
	{Name: "StandardOutPath"},
	{Name: "StandardErrorPath"},
	{Name: "SoftResourceLimits"},
	{Name: "HardResourceLimits"},
	{Name: "Nice"},
	{Name: "SessionCreate"},
	{Name: "AbandonProcessGroup"},
	{Name: "KeepAlive"},
	{Name: "OnDemand"},
	{Name: "RunAtLoad"},
	{Name: "ThrottleInterval"},
	{Name: "ExitTimeOut"},
	{Name: "TimeOut"},
	{Name: "inetdCompatibility"},
	{Name: "Sockets"},
	{Name: "SockdLimits"},
	{Name: "SockdInternal"},
	{Name: "SockdProxy"},

	{Name: "StartInterval", Status: KeyPlanned, Why: "timer-started jobs are not implemented yet"},
	{Name: "StartCalendarInterval", Status: KeyPlanned, Why: "calendar-started jobs are not implemented yet"},
	{Name: "WatchPaths", Status: KeyPlanned, Why: "path-watching triggers are not implemented yet"},
	{Name: "QueueDirectories", Status: KeyPlanned, Why: "queue-directory triggers are not implemented yet"},
	{Name: "StartOnMount", Status: KeyPlanned, Why: "mount triggers are not implemented yet"},
	{Name: "LaunchOnlyOnce", Status: KeyPlanned, Why: "run-once jobs are not implemented yet"},
	{Name: "UserEnvironmentVariables", Status: KeyPlanned, Why: "domain-wide environment variables are not implemented yet; use EnvironmentVariables"},
	{Name: "LowPriorityIO", Status: KeyPlanned, Why: "the Linux equivalent (idle I/O priority) is not implemented yet"},
	{Name: "LowPriorityBackgroundIO", Status: KeyPlanned, Why: "the Linux equivalent (idle I/O priority) is not implemented yet"},

	{Name: "UID", Status: KeyIgnored, Why: "UID is not a launchd key; use UserName"},
	{Name: "GID", Status: KeyIgnored, Why: "GID is not a launchd key; use GroupName"},
	{Name: "ServiceDescription", Status: KeyIgnored, Why: "it is a comment only"},
	{Name: "ProcessType", Status: KeyIgnored, Why: "Darwin scheduling class with no Linux equivalent; use Nice"},
	{Name: "MachServices", Status: KeyIgnored, Why: "Mach IPC is Darwin-only"},
	{Name: "LaunchEvents", Status: KeyIgnored, Why: "XPC events are Darwin-only"},
	{Name: "EnableTransactions", Status: KeyIgnored, Why: "XPC transactions are Darwin-only"},
	{Name: "EnablePressuredExit", Status: KeyIgnored, Why: "Darwin memory-pressure exits"},
	{Name: "TransactionTimeLimitEnabled", Status: KeyIgnored, Why: "XPC transactions are Darwin-only"},
	{Name: "BeginTransactionAtShutdown", Status: KeyIgnored, Why: "XPC transactions are Darwin-only"},
	{Name: "Debug", Status: KeyIgnored, Why: "launchd debugging aid"},
	{Name: "WaitForDebugger", Status: KeyIgnored, Why: "Darwin debugger attach"},
	{Name: "LegacyTimers", Status: KeyIgnored, Why: "Darwin timer coalescing"},
	{Name: "HopefullyExitsFirst", Status: KeyIgnored, Why: "Darwin shutdown ordering"},
	{Name: "HopefullyExitsLast", Status: KeyIgnored, Why: "Darwin shutdown ordering"},
	{Name: "ServiceIPC", Status: KeyIgnored, Why: "obsolete Darwin check-in flag"},
	{Name: "Policies", Status: KeyIgnored, Why: "Darwin-only"},
	{Name: "MultipleInstances", Status: KeyIgnored, Why: "Darwin-only"},
	{Name: "JetsamProperties", Status: KeyIgnored, Why: "Darwin memory limits (jetsam)"},
	{Name: "SandboxProfile", Status: KeyIgnored, Why: "Darwin sandbox"},
	{Name: "BinaryOrderPreference", Status: KeyIgnored, Why: "Darwin multi-architecture binaries"},
	{Name: "DisableASLR", Status: KeyIgnored, Why: "Darwin spawn attribute"},
	{Name: "POSIXSpawnType", Status: KeyIgnored, Why: "Darwin spawn attribute"},
	{Name: "MaterializeDatalessFiles", Status: KeyIgnored, Why: "Darwin file-provider attribute"},
	{Name: "AssociatedBundleIdentifiers", Status: KeyIgnored, Why: "Darwin app bundles"},
	{Name: "BundleProgram", Status: KeyIgnored, Why: "Darwin app bundles"},
	{Name: "SHAuthorizationRight", Status: KeyIgnored, Why: "Darwin authorization"},
	{Name: "ExecuteAllowed", Status: KeyIgnored, Why: "Darwin-only"},
	{Name: "LimitLoadToSessionType", Status: KeyIgnored, Why: "Darwin login sessions"},
	{Name: "LimitLoadToHosts", Status: KeyIgnored, Why: "host filters are not supported; install the file only where it should run"},
	{Name: "LimitLoadFromHosts", Status: KeyIgnored, Why: "host filters are not supported; install the file only where it should run"},
	{Name: "LimitLoadToHardware", Status: KeyIgnored, Why: "Darwin hardware filters"},
	{Name: "LimitLoadFromHardware", Status: KeyIgnored, Why: "Darwin hardware filters"},
}

// SocketKeys lists every key of a socket dictionary the loader knows.
var SocketKeys = []KeyInfo{
	{Name: "SockType"},
	{Name: "SockPassive"},
	{Name: "SockNodeName"},
	{Name: "SockServiceName"},
	{Name: "SockFamily"},
	{Name: "SockProtocol"},
	{Name: "SockPathName"},
	{Name: "SockPathMode"},
	{Name: "SockPathOwner"},
	{Name: "SockPathGroup"},
	{Name: "MulticastGroup"},
	{Name: "Bonjour", Status: KeyIgnored, Why: "Bonjour (mDNS) registration is not supported"},
	{Name: "SecureSocketWithKey", Status: KeyPlanned, Why: "random-path sockets are not implemented yet; this socket is skipped"},
}

func lookupKey(table []KeyInfo, name string) (KeyInfo, bool) {
	for _, k := range table {
		if strings.EqualFold(k.Name, name) {
			return k, true
		}
	}
	return KeyInfo{}, false
}

// reportRest warns once about every key of v the loader did not use:
// ignored, planned or unknown.
func (d *decoder) reportRest(v *dictView, table []KeyInfo, what string) {
	for _, e := range v.rest() {
		key := join(v.path, e.name)
		info, ok := lookupKey(table, e.name)
		switch {
		case !ok:
			d.warnf(key, "unknown %s key; it is ignored (check the spelling)", what)
		case info.Status == KeyIgnored:
			d.warnf(key, "ignored: %s", info.Why)
		case info.Status == KeyPlanned:
			d.warnf(key, "not supported by sockd yet and ignored: %s", info.Why)
		}
	}
}
