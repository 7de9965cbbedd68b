package compat

import (
	"strings"
)

// What sockd makes of each systemd directive it does not map itself. A
// directive that narrows who may connect, what is exposed or where the job
// runs, and that sockd cannot enforce, is an error for its unit (the job
// would run wider than the unit says); one that only narrows what the
// service itself may do (sandboxing, resource control) is a warning that
// sockd does not sandbox; the others that change nothing sockd does are
// warnings saying so, or silent when they are only descriptions, ordering
// or install-time information. Every directive not listed anywhere is a
// warning naming file and line.

// sdClass is how a directive sockd does not map is reported.
type sdClass int

const (
	// sdMapped: read by the importer itself.
	sdMapped sdClass = iota
	// sdSilent: a description, an ordering or install-time information.
	sdSilent
	// sdWarn: not honoured; warning with the reason.
	sdWarn
	// sdSandbox: narrows only what the service may do; warning that sockd
	// does not sandbox it.
	sdSandbox
	// sdRefuse: narrows access, exposure or where the job runs, and sockd
	// cannot enforce it: an error for the unit.
	sdRefuse
)

type sdDirective struct {
	class sdClass
	why   string
}

func mapped() sdDirective           { return sdDirective{class: sdMapped} }
func silent() sdDirective           { return sdDirective{class: sdSilent} }
func warnD(why string) sdDirective  { return sdDirective{class: sdWarn, why: why} }
func sandbox() sdDirective          { return sdDirective{class: sdSandbox} }
func refuse(why string) sdDirective { return sdDirective{class: sdRefuse, why: why} }
func sdSet(d sdDirective, keys ...string) map[string]sdDirective {
	m := map[string]sdDirective{}
	for _, k := range keys {
		m[k] = d
	}
	return m
}

func merge(ms ...map[string]sdDirective) map[string]sdDirective {
	out := map[string]sdDirective{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

const (
	whyDeps     = "sockd has no unit dependencies: it neither starts nor stops other units"
	whyNoRun    = "sockd does not run the socket unit's own commands"
	whyNoDir    = "sockd does not create the service's directories: create it beforehand (a tmpfiles.d line)"
	whyLog      = "sockd logs a service's output through its own logger (the journal under systemd)"
	whyStart    = "sockd tracks the process it starts and does not wait for readiness"
	whyRestarts = "sockd never gives up on a job: ThrottleInterval spaces its starts"
	whyNetns    = "the service would run in sockd's network namespace, where any socket it opens itself is reachable from the network"
)

// sdUnitSection is [Unit].
var sdUnitSection = merge(
	sdSet(silent(), "Description", "Documentation", "After", "Before", "DefaultDependencies", "IgnoreOnIsolate",
		"AllowIsolate", "RefuseManualStart", "RefuseManualStop", "StopWhenUnneeded", "SourcePath", "CollectMode",
		"JobTimeoutSec", "JobRunningTimeoutSec", "JobTimeoutAction", "JobTimeoutRebootArgument"),
	sdSet(warnD(whyDeps), "Wants", "Requires", "Requisite", "BindsTo", "PartOf", "Upholds", "Conflicts",
		"OnFailure", "OnSuccess", "OnFailureJobMode", "PropagatesReloadTo", "ReloadPropagatedFrom",
		"PropagatesStopTo", "StopPropagatedFrom", "RequiresMountsFor", "WantsMountsFor", "OnFailureIsolate"),
	sdSet(warnD(whyRestarts), "StartLimitIntervalSec", "StartLimitInterval", "StartLimitBurst", "StartLimitAction",
		"FailureAction", "SuccessAction", "FailureActionExitStatus", "SuccessActionExitStatus", "RebootArgument"),
	sdSet(refuse("the service would share namespaces with another unit's processes; sockd runs it in its own: "+whyNetns), "JoinsNamespaceOf"),
)

// sdExecCommon are the execution and sandboxing directives of
// systemd.exec(5) and systemd.resource-control(5) that sockd does not map,
// as they read in a [Service] section.
var sdExecCommon = merge(
	sdSet(sandbox(), "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateUsers", "PrivateIPC",
		"PrivateMounts", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
		"ProtectClock", "ProtectHostname", "ProtectProc", "ProcSubset", "ReadWritePaths", "ReadOnlyPaths",
		"InaccessiblePaths", "ExecPaths", "NoExecPaths", "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths",
		"MountFlags", "MountAPIVFS", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
		"MemoryDenyWriteExecute", "SystemCallFilter", "SystemCallArchitectures", "SystemCallErrorNumber",
		"SystemCallLog", "RestrictAddressFamilies", "RestrictFileSystems", "RestrictNetworkInterfaces", "RemoveIPC",
		"KeyringMode", "NoNewPrivileges", "SecureBits", "CapabilityBoundingSet", "AmbientCapabilities",
		"SELinuxContext", "AppArmorProfile", "SmackProcessLabel", "IPAddressAllow", "IPAddressDeny",
		"IPIngressFilterPath", "IPEgressFilterPath", "SocketBindAllow", "SocketBindDeny", "DevicePolicy",
		"DeviceAllow", "ProtectSystemd", "UtmpIdentifier", "UtmpMode", "NoExecPaths", "MemoryKSM",
		"BPFProgram", "RestrictFileSystems", "ProtectHostnameMode", "PrivatePIDs"),
	sdSet(sandbox(), "CPUQuota", "CPUQuotaPeriodSec", "CPUWeight", "StartupCPUWeight", "CPUShares", "StartupCPUShares",
		"AllowedCPUs", "StartupAllowedCPUs", "AllowedMemoryNodes", "StartupAllowedMemoryNodes", "MemoryAccounting",
		"MemoryMin", "MemoryLow", "MemoryHigh", "MemoryMax", "MemorySwapMax", "MemoryZSwapMax", "MemoryLimit",
		"TasksAccounting", "TasksMax", "IOAccounting", "IOWeight", "StartupIOWeight", "IODeviceWeight",
		"IOReadBandwidthMax", "IOWriteBandwidthMax", "IOReadIOPSMax", "IOWriteIOPSMax", "IODeviceLatencyTargetSec",
		"BlockIOAccounting", "BlockIOWeight", "IPAccounting", "CPUAccounting", "Slice", "Delegate",
		"DelegateSubgroup", "ManagedOOMSwap", "ManagedOOMMemoryPressure", "ManagedOOMMemoryPressureLimit",
		"ManagedOOMPreference", "MemoryPressureWatch", "MemoryPressureThresholdSec", "CoredumpReceive",
		"DisableControllers", "RuntimeMaxSec", "RuntimeRandomizedExtraSec"),
	sdSet(warnD("sockd has no such setting"), "OOMScoreAdjust", "CPUSchedulingPolicy", "CPUSchedulingPriority",
		"CPUSchedulingResetOnFork", "CPUAffinity", "NUMAPolicy", "NUMAMask", "IOSchedulingClass",
		"IOSchedulingPriority", "TimerSlackNSec", "Personality", "IgnoreSIGPIPE", "TTYPath", "TTYReset",
		"TTYVHangup", "TTYVTDisallocate", "TTYRows", "TTYColumns", "StandardInputText", "StandardInputData",
		"CoredumpFilter", "OOMPolicy", "SetLoginEnvironment", "LoadCredential", "LoadCredentialEncrypted",
		"SetCredential", "SetCredentialEncrypted", "ImportCredential"),
	sdSet(warnD(whyLog), "SyslogIdentifier", "SyslogFacility", "SyslogLevel", "SyslogLevelPrefix", "LogLevelMax",
		"LogExtraFields", "LogRateLimitIntervalSec", "LogRateLimitBurst", "LogFilterPatterns", "LogNamespace"),
	sdSet(warnD(whyNoDir), "RuntimeDirectory", "StateDirectory", "CacheDirectory", "LogsDirectory",
		"ConfigurationDirectory", "RuntimeDirectoryMode", "StateDirectoryMode", "CacheDirectoryMode",
		"LogsDirectoryMode", "ConfigurationDirectoryMode", "RuntimeDirectoryPreserve"),
	sdSet(warnD("sockd passes its own environment to every child (less LISTEN_*, LAUNCH_*, NOTIFY_SOCKET and the connection variables); it cannot withhold the others"),
		"PassEnvironment", "UnsetEnvironment"),
	sdSet(refuse("the service would run in a network namespace of its own; sockd runs it in its own: "+whyNetns), "PrivateNetwork", "NetworkNamespacePath"),
	sdSet(refuse("systemd runs the service as a user allocated for it (and sandboxes it); sockd would run it as root: set User= to a system user (useradd --system) and remove DynamicUser="), "DynamicUser"),
	sdSet(refuse("the service would run on another root file system; sockd runs it on the host's: use RootDirectory= with the image mounted"), "RootImage",
		"RootImageOptions", "RootImagePolicy", "RootHash", "RootHashSignature", "RootVerity", "MountImages", "ExtensionImages",
		"ExtensionDirectories", "RootEphemeral"),
	sdSet(refuse("systemd opens a PAM session for the service, whose account and session modules (pam_access, pam_time, ...) can refuse or restrict it; sockd opens none"), "PAMName"),
)

// sdServiceSection is [Service].
var sdServiceSection = merge(sdExecCommon,
	sdSet(mapped(), "Type", "ExecStart", "User", "Group", "SupplementaryGroups", "WorkingDirectory", "RootDirectory",
		"Environment", "EnvironmentFile", "UMask", "Nice", "StandardInput", "StandardOutput", "StandardError",
		"Restart", "RestartSec", "TimeoutStopSec", "TimeoutSec", "KillMode", "SendSIGKILL", "Sockets",
		"LimitCPU", "LimitFSIZE", "LimitDATA", "LimitSTACK", "LimitCORE", "LimitRSS", "LimitNOFILE", "LimitAS",
		"LimitNPROC", "LimitMEMLOCK", "LimitLOCKS", "LimitSIGPENDING", "LimitMSGQUEUE", "LimitNICE",
		"LimitRTPRIO", "LimitRTTIME", "KillSignal", "NonBlocking"),
	sdSet(warnD("sockd does not run it"), "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost"),
	sdSet(refuse("systemd starts the service only when this command succeeds; sockd cannot run it before each start"), "ExecCondition"),
	sdSet(warnD(whyStart), "PIDFile", "BusName", "NotifyAccess", "GuessMainPID", "RemainAfterExit", "TimeoutStartSec",
		"TimeoutAbortSec", "WatchdogSec", "WatchdogSignal", "FileDescriptorStoreMax", "FileDescriptorStorePreserve",
		"USBFunctionDescriptors", "USBFunctionStrings", "ExitType", "ReloadSignal", "OpenFile", "RestartMode",
		"RestartSteps", "RestartMaxDelaySec"),
	sdSet(warnD(whyRestarts), "StartLimitIntervalSec", "StartLimitInterval", "StartLimitBurst", "StartLimitAction",
		"FailureAction", "RebootArgument"),
	sdSet(warnD("sockd restarts a job by its KeepAlive and on demand, not by exit statuses"), "SuccessExitStatus",
		"RestartPreventExitStatus", "RestartForceExitStatus"),
	sdSet(warnD("sockd stops a job with SIGTERM and, after ExitTimeOut, SIGKILL"), "RestartKillSignal", "FinalKillSignal", "SendSIGHUP"),
)

// sdSocketSection is [Socket]. The execution and sandboxing directives
// there apply to the socket unit's own commands (ExecStartPre= ...), which
// sockd does not run, except those that restrict the network use of the
// sockets themselves, which are errors.
var sdSocketSection = merge(
	sdSet(mapped(), "ListenStream", "ListenDatagram", "ListenSequentialPacket", "ListenFIFO", "ListenSpecial",
		"ListenNetlink", "ListenMessageQueue", "ListenUSBFunction", "Accept", "Service", "FileDescriptorName",
		"MaxConnections", "MaxConnectionsPerSource", "TriggerLimitIntervalSec", "TriggerLimitBurst",
		"PollLimitIntervalSec", "PollLimitBurst", "IPAddressAllow", "IPAddressDeny", "SocketUser", "SocketGroup",
		"SocketMode", "DirectoryMode", "BindIPv6Only", "RemoveOnStop", "SocketProtocol",
		"KeepAlive", "KeepAliveTimeSec", "KeepAliveIntervalSec", "KeepAliveProbes", "NoDelay", "ReusePort",
		"FreeBind", "Transparent", "BindToDevice", "Mark", "Priority", "ReceiveBuffer", "SendBuffer", "Backlog",
		"DeferAcceptSec", "PassCredentials", "IPTTL", "IPTOS", "Broadcast", "Symlinks"),
	sdSet(warnD(whyNoRun), "ExecStartPre", "ExecStartPost", "ExecStopPre", "ExecStopPost", "TimeoutSec",
		"User", "Group", "SupplementaryGroups", "WorkingDirectory", "RootDirectory", "Environment",
		"EnvironmentFile", "PassEnvironment", "UnsetEnvironment", "UMask", "Nice", "StandardInput",
		"StandardOutput", "StandardError", "KillMode", "KillSignal", "SendSIGKILL", "SendSIGHUP"),
	sdSet(warnD("sockd does not support it"), "Writable", "FlushPending", "PipeSize", "MessageQueueMaxMessages",
		"MessageQueueMessageSize", "PassSecurity", "PassPacketInfo", "PassFileDescriptorsToExec", "Timestamping",
		"TCPCongestion", "DeferTrigger", "DeferTriggerMaxSec", "SmackLabel", "SELinuxContext"),
	sdSet(refuse("it restricts the network use of the unit's sockets, which sockd cannot do"), "RestrictAddressFamilies",
		"RestrictNetworkInterfaces", "IPIngressFilterPath", "IPEgressFilterPath", "SocketBindAllow", "SocketBindDeny",
		"PrivateNetwork", "NetworkNamespacePath"),
	sdSet(refuse("the kernel's SMACK module would label the socket's packets and refuse clients by it; sockd applies no labels"), "SmackLabelIPIn", "SmackLabelIPOut"),
	sdSet(refuse("systemd runs the service in the SELinux context of the client's network label; sockd does not, so the service would run with more rights"), "SELinuxContextFromNet"),
)

// classify says what a directive of section is, for a unit of typ.
func classify(typ, section, key string) (sdDirective, bool) {
	if strings.HasPrefix(key, "X-") {
		return silent(), true
	}
	if section == "Unit" && (strings.HasPrefix(key, "Condition") || strings.HasPrefix(key, "Assert")) {
		what := "starts"
		if strings.HasPrefix(key, "Assert") {
			what = "starts (and fails the start otherwise)"
		}
		return refuse("systemd " + what + " the unit only when it holds; sockd cannot check it at each start: check it yourself, and clear it in a drop-in (" + key + "= alone) to serve always"), true
	}
	var m map[string]sdDirective
	switch {
	case section == "Unit":
		m = sdUnitSection
	case section == "Install":
		return silent(), true
	case section == "Socket" && typ == "socket":
		m = sdSocketSection
	case section == "Service" && typ == "service":
		m = sdServiceSection
	default:
		return sdDirective{}, false
	}
	d, ok := m[key]
	return d, ok
}

// systemdKeys name the directive a job key comes from.
var systemdKeys = map[string]string{
	"UserName": "User", "GroupName": "Group", "InitGroups": "User",
	"Program": "ExecStart", "ProgramArguments": "ExecStart", "WorkingDirectory": "WorkingDirectory",
	"RootDirectory": "RootDirectory", "Umask": "UMask", "Nice": "Nice", "EnvironmentVariables": "Environment",
	"StandardInPath": "StandardInput", "StandardOutPath": "StandardOutput", "StandardErrorPath": "StandardError",
	"ThrottleInterval": "RestartSec", "ExitTimeOut": "TimeoutStopSec", "KeepAlive": "Restart",
	"AbandonProcessGroup": "KillMode", "SockdLimits.MaxChildren": "MaxConnections",
	"SockdLimits.MaxPerSource": "MaxConnectionsPerSource", "SockdLimits.Allow": "IPAddressAllow",
	"SockdLimits.Deny": "IPAddressDeny",
}

// systemdKey is SourceKey for source "systemd": the directive that a job
// key (a problem found after import) comes from.
func systemdKey(key string) string {
	if k, ok := systemdKeys[key]; ok {
		return k
	}
	head, rest, _ := strings.Cut(key, ".")
	if i := strings.IndexByte(head, '['); i >= 0 {
		head = head[:i]
	}
	switch head {
	case "Sockets":
		switch {
		case strings.HasSuffix(rest, "SockPathMode"):
			return "SocketMode"
		case strings.HasSuffix(rest, "SockPathOwner"):
			return "SocketUser"
		case strings.HasSuffix(rest, "SockPathGroup"):
			return "SocketGroup"
		}
		return "ListenStream"
	case "ProgramArguments", "EnvironmentVariables":
		return systemdKeys[head]
	case "SoftResourceLimits", "HardResourceLimits":
		for _, r := range sdRlimits {
			if r.name == rest {
				return r.key
			}
		}
	case "SockdLimits":
		if k, ok := systemdKeys[head+"."+strings.Split(rest, "[")[0]]; ok {
			return k
		}
	}
	return key
}
