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
	// Misspelt, when set, says what a misspelling of this key would do to
	// the job ("would let the socket listen wider than the file says"): an
	// unknown key close to this one is then an error, not a warning,
	// because the job would run wider than its file says.
	Misspelt string
	// Aliases are other programs' names for the key (systemd's and
	// xinetd's "User"), suggested like a misspelling.
	Aliases []string
}

// TopLevelKeys lists every top-level key the loader knows, launchd's and
// sockd's extensions (Sockd*), with what sockd does with it. Anything else
// is an unknown key: a warning, or an error when it is a near miss of a key
// with Misspelt set (see unknownKey).
var TopLevelKeys = []KeyInfo{
	{Name: "Label"},
	{Name: "Program", Misspelt: "would run a different program (ProgramArguments[0], looked up on PATH)"},
	{Name: "ProgramArguments", Misspelt: "would run the program without the file's arguments"},
	{Name: "EnableGlobbing"},
	{Name: "Disabled", Misspelt: "would serve a job the file disables"},
	{Name: "UserName", Misspelt: "would run the job as sockd's own user", Aliases: []string{"User"}},
	{Name: "GroupName", Misspelt: "would run the job with its user's primary group instead", Aliases: []string{"Group"}},
	{Name: "InitGroups", Misspelt: "would give the job its user's supplementary groups"},
	{Name: "WorkingDirectory"},
	{Name: "RootDirectory", Misspelt: "would run the job outside the chroot the file names", Aliases: []string{"Chroot"}},
	{Name: "EnvironmentVariables"},
	{Name: "Umask", Misspelt: "would create the job's files with sockd's umask"},
	{Name: "StandardInPath"},
	{Name: "StandardOutPath"},
	{Name: "StandardErrorPath"},
	{Name: "SoftResourceLimits", Misspelt: "would run the job without the resource limits the file sets"},
	{Name: "HardResourceLimits", Misspelt: "would run the job without the resource limits the file sets"},
	{Name: "Nice"},
	{Name: "SessionCreate"},
	{Name: "AbandonProcessGroup"},
	{Name: "KeepAlive", Misspelt: "would change when the job runs"},
	{Name: "OnDemand", Misspelt: "would change when the job runs"},
	{Name: "RunAtLoad", Misspelt: "would change when the job runs"},
	{Name: "ThrottleInterval"},
	{Name: "ExitTimeOut"},
	{Name: "TimeOut"},
	{Name: "inetdCompatibility", Misspelt: "would serve the job in handoff mode, which an inetd program cannot serve"},
	{Name: "Sockets", Misspelt: "would leave the job without the sockets the file describes"},
	{Name: "SockdLimits", Misspelt: "would serve the job without its limits and access lists"},
	{Name: "SockdInternal", Misspelt: "would change how the job is served"},
	{Name: "LimitLoadToHosts", Misspelt: "would load the job on hosts the file excludes"},
	{Name: "LimitLoadFromHosts", Misspelt: "would load the job on hosts the file excludes"},
	{Name: "SockdProxy", Misspelt: "would serve the job without its proxy"},
	{Name: "SockdLogConnections"},

	{Name: "StartInterval", Misspelt: "would change when the job runs"},
	{Name: "StartCalendarInterval", Misspelt: "would change when the job runs"},
	{Name: "WatchPaths", Misspelt: "would change when the job runs"},
	{Name: "QueueDirectories", Misspelt: "would change when the job runs"},
	{Name: "StartOnMount", Misspelt: "would change when the job runs"},
	{Name: "LaunchOnlyOnce", Misspelt: "would change when the job runs"},
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
	{Name: "LimitLoadToHardware", Status: KeyIgnored, Why: "Darwin hardware filters"},
	{Name: "LimitLoadFromHardware", Status: KeyIgnored, Why: "Darwin hardware filters"},
}

// SocketKeys lists every key of a socket dictionary the loader knows.
var SocketKeys = []KeyInfo{
	{Name: "SockType", Misspelt: "would change the socket's type"},
	{Name: "SockPassive", Misspelt: "would make the socket listen instead of connect"},
	{Name: "SockNodeName", Misspelt: "would let the socket listen wider than the file says"},
	{Name: "SockServiceName", Misspelt: "would listen on a port the file does not name"},
	{Name: "SockFamily", Misspelt: "would let the socket listen on address families the file excludes"},
	{Name: "SockProtocol", Misspelt: "would change the socket's protocol"},
	{Name: "SockPathName", Misspelt: "would change where the socket listens"},
	{Name: "SockPathMode", Misspelt: "would change who may connect to the socket"},
	{Name: "SockPathOwner", Misspelt: "would change who may connect to the socket"},
	{Name: "SockPathGroup", Misspelt: "would change who may connect to the socket"},
	{Name: "MulticastGroup", Misspelt: "would change which datagrams the socket receives"},
	{Name: "SockdOptions", Misspelt: "would open the socket without the options the file sets"},
	{Name: "Bonjour", Status: KeyIgnored, Why: "Bonjour (mDNS) registration is not supported"},
	{Name: "SecureSocketWithKey", Status: KeyPlanned, Why: "random-path sockets are not implemented yet; this socket is skipped"},
}

// InetdKeys lists the keys of the inetdCompatibility dictionary.
var InetdKeys = []KeyInfo{
	{Name: "Wait", Misspelt: "would change how connections are handed to the program"},
	{Name: "Instances", Status: KeyIgnored, Why: "launchd never implemented it"},
}

// KeepAliveKeys lists the keys of the KeepAlive dictionary.
var KeepAliveKeys = []KeyInfo{
	{Name: "SuccessfulExit", Misspelt: "would change when the job runs"},
	{Name: "Crashed", Misspelt: "would change when the job runs"},
	{Name: "PathState", Misspelt: "would change when the job runs"},
	{Name: "OtherJobEnabled", Misspelt: "would change when the job runs"},
	{Name: "AfterInitialDemand", Misspelt: "would change when the job runs"},
	{Name: "NetworkState", Status: KeyIgnored, Why: "sockd does not track network state"},
	{Name: "OtherJobActive", Status: KeyIgnored, Why: "not supported by sockd; use OtherJobEnabled"},
}

// LimitsKeys lists the keys of the SockdLimits dictionary.
var LimitsKeys = []KeyInfo{
	{Name: "MaxChildren", Misspelt: "would serve the job without the limit the file sets"},
	{Name: "MaxPerSource", Misspelt: "would serve the job without the limit the file sets"},
	{Name: "Rate", Misspelt: "would serve the job without the limit the file sets"},
	{Name: "Burst", Misspelt: "would serve the job without the limit the file sets"},
	{Name: "PauseSeconds", Misspelt: "would serve the job without the limit the file sets"},
	{Name: "Allow", Misspelt: "would let clients connect that the file refuses"},
	{Name: "Deny", Misspelt: "would let clients connect that the file refuses"},
}

// ProxyKeys lists the keys of the SockdProxy dictionary.
var ProxyKeys = []KeyInfo{
	{Name: "Backend", Misspelt: "would leave the proxy without its backend"},
	{Name: "Notify"},
	{Name: "ReadyTimeout"},
	{Name: "IdleTimeout", Misspelt: "would let idle clients hold their connections for ever"},
	{Name: "StopAfterIdle"},
	{Name: "ProxyProtocol", Misspelt: "would hide the client's address from the backend"},
}

// subKeys holds the tables of the dictionaries whose decoders pass no table
// to reportRest, by the name they pass.
var subKeys = map[string][]KeyInfo{
	"inetdCompatibility":    InetdKeys,
	"KeepAlive":             KeepAliveKeys,
	"SockdLimits":           LimitsKeys,
	"SockdProxy":            ProxyKeys,
	"SockdOptions":          SockdOptionsKeys,
	"StartCalendarInterval": CalendarKeys,
}

// resourceLimitKeys lists the keys of SoftResourceLimits and
// HardResourceLimits.
func resourceLimitKeys() []KeyInfo {
	out := make([]KeyInfo, 0, len(rlimitNames))
	for _, r := range rlimitNames {
		out = append(out, KeyInfo{Name: r.name, Misspelt: "would run the job without that limit"})
	}
	return out
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
// ignored, planned or unknown. what names the dictionary in messages
// ("top-level", "socket", "SockdLimits"); a nil table is looked up in
// subKeys by what.
func (d *decoder) reportRest(v *dictView, table []KeyInfo, what string) {
	if table == nil {
		table = subKeys[what]
	}
	for _, e := range v.rest() {
		key := join(v.path, e.name)
		info, ok := lookupKey(table, e.name)
		switch {
		case !ok:
			d.unknownKey(key, e.name, table, what+" key", "it is ignored (check the spelling)")
		case info.Status == KeyIgnored:
			d.warnf(key, "ignored: %s", info.Why)
		case info.Status == KeyPlanned:
			d.warnf(key, "not supported by sockd yet and ignored: %s", info.Why)
		}
	}
}

// keyHomes are the dictionaries a key can belong to, with where each is in
// a job file, for a key found in the wrong one.
var keyHomes = []struct {
	table []KeyInfo
	where string
}{
	{TopLevelKeys, "at the top level of the job"},
	{SocketKeys, "in a socket dictionary (Sockets.NAME)"},
	{InetdKeys, "in inetdCompatibility"},
	{KeepAliveKeys, "in the KeepAlive dictionary"},
	{LimitsKeys, "in SockdLimits"},
	{ProxyKeys, "in SockdProxy"},
	{SockdOptionsKeys, "in SockdOptions (Sockets.NAME.SockdOptions)"},
	{CalendarKeys, "in a StartCalendarInterval dictionary"},
	{resourceLimitKeys(), "in SoftResourceLimits or HardResourceLimits"},
}

// homeOf finds the dictionaries of other tables than the one a key was
// not found in that know name exactly (case-insensitively): one, or
// several for a name two dictionaries share (KeepAlive, at the top level
// and in SockdOptions). The KeyInfo is the first with Misspelt set.
func homeOf(name string) (KeyInfo, string, bool) {
	var info KeyInfo
	var wheres []string
	for _, h := range keyHomes {
		if k, ok := lookupKey(h.table, name); ok {
			if len(wheres) == 0 || (info.Misspelt == "" && k.Misspelt != "") {
				info = k
			}
			wheres = append(wheres, h.where)
		}
	}
	return info, strings.Join(wheres, " or "), len(wheres) > 0
}

// unknownKey reports a key that table does not know. A key another
// dictionary knows is misplaced: an error when, ignored there, it would
// make the job run wider than its file says (KeyInfo.Misspelt: it narrows
// access, exposure or identity), else a warning; both say where it belongs.
// A key within a few typos of a known one gets "did you mean ...?"; when a
// misspelling of that key would make the job run wider, it is an error. Any
// other unknown key is a warning ending in farOff.
func (d *decoder) unknownKey(key, name string, table []KeyInfo, noun, farOff string) {
	if k, where, ok := homeOf(name); ok {
		if k.Misspelt != "" {
			d.errorf(key, "%s belongs %s, not here: as %s it is ignored, and a misplaced %s %s; move it there", k.Name, where, withArticle(noun), k.Name, k.Misspelt)
		} else {
			d.warnf(key, "%s belongs %s, not here: as %s it is ignored; move it there", k.Name, where, withArticle(noun))
		}
		return
	}
	near := nearKeys(table, name)
	if len(near) == 0 {
		d.warnf(key, "unknown %s; %s", noun, farOff)
		return
	}
	names := make([]string, len(near))
	for i, k := range near {
		names[i] = k.Name
	}
	guess := strings.Join(names, " or ")
	for _, k := range near {
		if k.Misspelt != "" {
			d.errorf(key, "unknown %s; did you mean %s? a misspelt %s %s", noun, guess, k.Name, k.Misspelt)
			return
		}
	}
	d.warnf(key, "unknown %s; did you mean %s? it is ignored", noun, guess)
}

// withArticle puts "a" or "an" before noun.
func withArticle(noun string) string {
	if noun != "" && strings.ContainsRune("aeiouAEIOU", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

// nearKeys returns the keys of table closest to name (case-insensitive
// Damerau-Levenshtein distance; an alias counts as no distance), if any is
// within maxTypos of it.
func nearKeys(table []KeyInfo, name string) []KeyInfo {
	lname := strings.ToLower(name)
	best := -1
	var out []KeyInfo
	for _, k := range table {
		dist := editDistance(lname, strings.ToLower(k.Name))
		for _, a := range k.Aliases {
			if strings.EqualFold(a, name) {
				dist = 0
			}
		}
		if dist > maxTypos(k.Name) || (best >= 0 && dist > best) {
			continue
		}
		if dist < best || best < 0 {
			best, out = dist, out[:0]
		}
		out = append(out, k)
	}
	return out
}

// maxTypos is how many edits a misspelling of a key name may have: one for
// short names (a second edit turns "Rate" into most four-letter words),
// more for long ones.
func maxTypos(name string) int {
	switch n := len(name); {
	case n <= 4:
		return 1
	case n <= 10:
		return 2
	}
	return 3
}

// editDistance is the optimal-string-alignment form of the
// Damerau-Levenshtein distance: insertions, deletions, substitutions and
// transpositions of adjacent characters each count one.
func editDistance(a, b string) int {
	s, t := []rune(a), []rune(b)
	// rows i-2, i-1 and i of the distance matrix.
	prev2 := make([]int, len(t)+1)
	prev := make([]int, len(t)+1)
	cur := make([]int, len(t)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(s); i++ {
		cur[0] = i
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(t)]
}

// idKeys handles UID and GID, which are not launchd keys and which sockd
// does not apply. 0 asks for root, so ignoring it runs the job no wider
// than the file asks: a warning. Any other value would run the job as
// sockd's own user or group instead of the one the file names: an error.
func (d *decoder) idKeys(top *dictView) {
	for _, k := range []struct{ name, use, what string }{{"UID", "UserName", "user"}, {"GID", "GroupName", "group"}} {
		key, v, ok := top.get(k.name)
		if !ok {
			continue
		}
		if isZero(v, d.text) {
			d.warnf(key, "ignored: %s is not a launchd key; use %s", k.name, k.use)
			continue
		}
		d.errorf(key, "%s is not a launchd key and sockd does not apply it, so the job would run as sockd's own %s: name the %s in %s instead", k.name, k.what, k.what, k.use)
	}
}

// isZero reports whether v is the integer 0 (in a text plist, also "0").
func isZero(v any, text bool) bool {
	switch v := v.(type) {
	case int64:
		return v == 0
	case uint64:
		return v == 0
	case string:
		return text && strings.TrimSpace(v) == "0"
	}
	return false
}
