package job

import (
	"math"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sockd/sockd/internal/portrange"
)

// maxSeconds bounds the second counts of time keys.
const maxSeconds = 1 << 31

// build interprets the decoded tree as a job.
func (d *decoder) build(root map[string]any) *Job {
	j := &Job{
		File:             d.file,
		Source:           d.source,
		InitGroups:       true,
		ThrottleInterval: DefaultThrottleInterval,
		ExitTimeOut:      DefaultExitTimeOut,
		TimeOut:          DefaultTimeOut,
	}
	top := d.view("", root)

	if key, v, ok := top.get("Label"); ok {
		if s, ok := d.str(key, v); ok {
			j.Label = s
			d.checkLabel(key, s)
		}
	} else {
		d.errorf("Label", "missing: every job needs a Label, a unique name such as \"org.example.echo\"")
	}

	str := func(name string, dst *string) {
		if key, v, ok := top.get(name); ok {
			if s, ok := d.str(key, v); ok {
				*dst = s
			}
		}
	}
	boolean := func(name string, dst *bool) {
		if key, v, ok := top.get(name); ok {
			if b, ok := d.boolean(key, v); ok {
				*dst = b
			}
		}
	}
	seconds := func(name string, dst *time.Duration) {
		if key, v, ok := top.get(name); ok {
			if n, ok := d.intRange(key, v, 0, maxSeconds, name+" (seconds)"); ok {
				*dst = time.Duration(n) * time.Second
			}
		}
	}

	str("Program", &j.Program)
	if key, v, ok := top.get("Program"); ok && j.Program == "" {
		if _, isStr := v.(string); isStr {
			d.errorf(key, "is empty: give the absolute path of the program to run")
		}
	}
	if key, v, ok := top.get("ProgramArguments"); ok {
		if a, ok := d.strings(key, v); ok {
			j.ProgramArguments = a
		}
	}
	boolean("EnableGlobbing", &j.EnableGlobbing)
	if key, v, ok := top.get("Disabled"); ok {
		if _, isDict := v.(map[string]any); isDict {
			d.warnf(key, "the dictionary form of Disabled (by machine type) is Darwin-only; the job is treated as enabled")
		} else if b, ok := d.boolean(key, v); ok {
			j.Disabled = b
		}
	}
	// Whether UserName and GroupName exist here is the loader's question
	// (package jobset), asked for the sockd that would run the job.
	str("UserName", &j.UserName)
	str("GroupName", &j.GroupName)
	if j.GroupName == "wheel" {
		// launchd treats GroupName "wheel" as a no-op; Linux has no such
		// group by default.
		j.GroupName = ""
	}
	boolean("InitGroups", &j.InitGroups)
	str("WorkingDirectory", &j.WorkingDirectory)
	str("RootDirectory", &j.RootDirectory)
	if key, v, ok := top.get("EnvironmentVariables"); ok {
		j.EnvironmentVariables = d.environment(key, v)
	}
	if key, v, ok := top.get("Umask"); ok {
		if n, ok := d.intRange(key, v, 0, 0o777, "Umask (decimal, e.g. 18 for 022)"); ok {
			u := uint32(n)
			j.Umask = &u
		}
	}
	str("StandardInPath", &j.StandardInPath)
	str("StandardOutPath", &j.StandardOutPath)
	str("StandardErrorPath", &j.StandardErrorPath)
	if key, v, ok := top.get("SoftResourceLimits"); ok {
		j.SoftResourceLimits = d.rlimits(key, v)
	}
	if key, v, ok := top.get("HardResourceLimits"); ok {
		j.HardResourceLimits = d.rlimits(key, v)
	}
	if key, v, ok := top.get("Nice"); ok {
		if n, ok := d.intRange(key, v, -20, 19, "Nice"); ok {
			nice := int(n)
			j.Nice = &nice
		}
	}
	boolean("SessionCreate", &j.SessionCreate)
	boolean("AbandonProcessGroup", &j.AbandonProcessGroup)
	boolean("SockdLogConnections", &j.LogConnections)

	keepAliveSet := false
	if key, v, ok := top.get("KeepAlive"); ok {
		keepAliveSet = true
		j.KeepAlive = d.keepAlive(key, v)
	}
	if key, v, ok := top.get("OnDemand"); ok {
		if b, ok := d.boolean(key, v); ok {
			if keepAliveSet {
				d.warnf(key, "OnDemand is deprecated and KeepAlive is also set; KeepAlive wins: remove OnDemand")
			} else {
				j.KeepAlive.Always = !b
				d.warnf(key, "OnDemand is deprecated (Mac OS X 10.5); write KeepAlive %s instead", boolXML(!b))
			}
		}
	}
	boolean("RunAtLoad", &j.RunAtLoad)
	seconds("ThrottleInterval", &j.ThrottleInterval)
	seconds("ExitTimeOut", &j.ExitTimeOut)
	seconds("TimeOut", &j.TimeOut)
	j.Triggers = d.triggers(top, j.ThrottleInterval)

	if key, v, ok := top.get("inetdCompatibility"); ok {
		if dv, ok := d.dict(key, v); ok {
			j.Inetd = &Inetd{}
			if k, v, ok := dv.get("Wait"); ok {
				if b, ok := d.boolean(k, v); ok {
					j.Inetd.Wait = b
				}
			}
			if k, _, ok := dv.get("Instances"); ok {
				d.warnf(k, "ignored: launchd never implemented it; use SockdLimits.MaxChildren to bound concurrent children")
			}
			d.reportRest(dv, nil, "inetdCompatibility")
		}
	}
	if key, v, ok := top.get("Sockets"); ok {
		j.Sockets = d.sockets(key, v)
	}
	if key, v, ok := top.get("SockdLimits"); ok {
		j.Limits = d.limits(key, v)
	} else {
		j.Limits = defaultLimits()
	}
	if key, v, ok := top.get("SockdInternal"); ok {
		if s, ok := d.str(key, v); ok {
			switch strings.ToLower(s) {
			case "echo", "discard", "chargen", "daytime", "time":
				j.Internal = strings.ToLower(s)
			default:
				d.errorf(key, "unknown internal service %q: use echo, discard, chargen, daytime or time", s)
			}
		}
	}
	if key, v, ok := top.get("SockdProxy"); ok {
		j.Proxy = d.proxy(key, v)
	}
	j.Hosts = d.hostLimits(top)
	d.idKeys(top)
	d.reportRest(top, TopLevelKeys, "top-level")

	j.LinkEndpoints()
	d.checkModes(j, top)
	d.checkFIFOModes(j)
	d.checkLimitsApply(j, top)
	d.checkRecordsApply(j, top)
	d.checkTriggersApply(j, top)
	d.checkProxyExhaustion(j)
	d.resolveProgram(j)
	d.checkOwnAddresses(j)
	return j
}

func boolXML(b bool) string {
	if b {
		return "<true/>"
	}
	return "<false/>"
}

// checkLabel applies launchd's label rules.
func (d *decoder) checkLabel(key, s string) {
	if s == "" {
		d.errorf(key, "is empty: give the job a unique name such as \"org.example.echo\"")
		return
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			d.errorf(key, "%q contains a control character; labels must be printable", s)
			return
		}
	}
}

func (d *decoder) environment(key string, v any) []EnvVar {
	m, names, ok := d.rawDict(key, v)
	if !ok {
		return nil
	}
	var env []EnvVar
	for _, name := range names {
		e := dictEntry{name: name, val: m[name]}
		k := join(key, e.name)
		if e.name == "" || strings.ContainsAny(e.name, "=\x00") {
			d.errorf(k, "%q is not a valid environment variable name", e.name)
			continue
		}
		s, ok := d.str(k, e.val)
		if !ok {
			continue
		}
		if strings.ContainsRune(s, 0) {
			d.errorf(k, "value contains a NUL byte")
			continue
		}
		env = append(env, EnvVar{Name: e.name, Value: s})
	}
	sort.Slice(env, func(a, b int) bool { return env[a].Name < env[b].Name })
	return env
}

func (d *decoder) rlimits(key string, v any) []RLimit {
	dv, ok := d.dict(key, v)
	if !ok {
		return nil
	}
	var out []RLimit
	for _, r := range rlimitNames {
		k, val, ok := dv.get(r.name)
		if !ok {
			continue
		}
		var n uint64
		switch val := val.(type) {
		case uint64:
			n = val
		default:
			m, ok := d.integer(k, val)
			if !ok {
				continue
			}
			if m < 0 {
				d.errorf(k, "%d is negative: resource limits are 0 or more", m)
				continue
			}
			n = uint64(m)
		}
		if r.resource < 0 {
			d.warnf(k, "resource limit %s is not available on this platform and is ignored", r.name)
			continue
		}
		out = append(out, RLimit{Name: r.name, Resource: r.resource, Value: n})
	}
	for _, e := range dv.rest() {
		d.unknownKey(join(key, e.name), e.name, resourceLimitKeys(), "resource limit",
			"it is ignored (known: Core, CPU, Data, FileSize, MemoryLock, NumberOfFiles, NumberOfProcesses, ResidentSetSize, Stack)")
	}
	return out
}

func (d *decoder) keepAlive(key string, v any) KeepAlive {
	var k KeepAlive
	if _, isDict := v.(map[string]any); !isDict {
		_, isBool := v.(bool)
		_, isStr := v.(string)
		if isBool || (d.text && isStr) {
			k.Always, _ = d.boolean(key, v)
		} else {
			d.errorf(key, "must be a boolean or a dictionary, not %s", describe(v))
		}
		return k
	}
	dv, _ := d.dict(key, v)
	optBool := func(name string) *bool {
		kk, val, ok := dv.get(name)
		if !ok {
			return nil
		}
		b, ok := d.boolean(kk, val)
		if !ok {
			return nil
		}
		return &b
	}
	k.SuccessfulExit = optBool("SuccessfulExit")
	k.Crashed = optBool("Crashed")
	if b := optBool("AfterInitialDemand"); b != nil {
		k.AfterInitialDemand = *b
	}
	boolMap := func(name string, add func(string, bool)) {
		kk, val, ok := dv.get(name)
		if !ok {
			return
		}
		m, names, ok := d.rawDict(kk, val)
		if !ok {
			return
		}
		for _, name := range names {
			if b, ok := d.boolean(join(kk, name), m[name]); ok {
				add(name, b)
			}
		}
	}
	boolMap("PathState", func(p string, b bool) { k.PathState = append(k.PathState, PathCond{Path: p, Exists: b}) })
	boolMap("OtherJobEnabled", func(l string, b bool) { k.OtherJobEnabled = append(k.OtherJobEnabled, LabelCond{Label: l, Enabled: b}) })
	if kk, _, ok := dv.get("NetworkState"); ok {
		d.warnf(kk, "ignored: sockd does not track network state (launchd itself stopped honouring it in 10.10)")
	}
	if kk, _, ok := dv.get("OtherJobActive"); ok {
		d.warnf(kk, "ignored: not supported by sockd; use OtherJobEnabled")
	}
	d.reportRest(dv, nil, "KeepAlive")
	return k
}

func defaultLimits() Limits {
	return Limits{MaxChildren: 256, Pause: 5 * time.Second}
}

func (d *decoder) limits(key string, v any) Limits {
	l := defaultLimits()
	dv, ok := d.dict(key, v)
	if !ok {
		return l
	}
	if k, val, ok := dv.get("MaxChildren"); ok {
		if n, ok := d.intRange(k, val, 1, 1<<20, "MaxChildren"); ok {
			l.MaxChildren = int(n)
		}
	}
	if k, val, ok := dv.get("MaxPerSource"); ok {
		if n, ok := d.intRange(k, val, 0, 1<<20, "MaxPerSource (0 = unlimited)"); ok {
			l.MaxPerSource = int(n)
		}
	}
	if k, val, ok := dv.get("Rate"); ok {
		if f, ok := d.number(k, val); ok {
			if f < 0 || f > 1e9 || math.IsNaN(f) {
				d.errorf(k, "%v is out of range: Rate is connections per second, 0 (unlimited) or more", f)
			} else {
				l.Rate = f
			}
		}
	}
	if k, val, ok := dv.get("Burst"); ok {
		if n, ok := d.intRange(k, val, 0, 1<<20, "Burst"); ok {
			l.Burst = int(n)
		}
	}
	if k, val, ok := dv.get("PauseSeconds"); ok {
		if f, ok := d.number(k, val); ok {
			if f < 0 || f > maxSeconds {
				d.errorf(k, "%v is out of range: PauseSeconds must be between 0 and %d", f, maxSeconds)
			} else {
				l.Pause = time.Duration(f * float64(time.Second))
			}
		}
	}
	addrList := func(name string) []string {
		k, val, ok := dv.get(name)
		if !ok {
			return nil
		}
		list, ok := d.strings(k, val)
		if !ok {
			return nil
		}
		out, bad := accessList(list)
		for i := range list {
			if err, ok := bad[i]; ok {
				d.errorf(index(k, i), "%v", err)
			}
		}
		return out
	}
	l.Allow = addrList("Allow")
	l.Deny = addrList("Deny")
	if l.Rate > 0 && l.Burst == 0 {
		l.Burst = int(math.Max(1, math.Ceil(l.Rate)))
	}
	d.reportRest(dv, nil, "SockdLimits")
	return l
}

func (d *decoder) proxy(key string, v any) *Proxy {
	dv, ok := d.dict(key, v)
	if !ok {
		return nil
	}
	p := &Proxy{ReadyTimeout: DefaultProxyReadyTimeout}
	if k, val, ok := dv.get("Backend"); ok {
		if s, ok := d.str(k, val); ok {
			p.Backend = s
			if err := CheckBackend(s); err != nil {
				d.errorf(k, "%v", err)
			}
		}
	} else {
		d.errorf(join(key, "Backend"), "missing: a proxy needs a Backend (host:port or a Unix socket path)")
	}
	if k, val, ok := dv.get("Notify"); ok {
		if b, ok := d.boolean(k, val); ok {
			p.Notify = b
		}
	}
	secs := func(name string, dst *time.Duration) {
		if k, val, ok := dv.get(name); ok {
			if n, ok := d.intRange(k, val, 0, maxSeconds, name+" (seconds)"); ok {
				*dst = time.Duration(n) * time.Second
			}
		}
	}
	secs("ReadyTimeout", &p.ReadyTimeout)
	secs("IdleTimeout", &p.IdleTimeout)
	secs("StopAfterIdle", &p.StopAfterIdle)
	if k, val, ok := dv.get("ProxyProtocol"); ok {
		if s, ok := d.str(k, val); ok {
			switch strings.ToLower(s) {
			case "", "v1", "v2":
				p.ProxyProtocol = strings.ToLower(s)
			default:
				d.errorf(k, "unknown PROXY protocol version %q: use \"v1\" or \"v2\"", s)
			}
		}
	}
	d.reportRest(dv, nil, "SockdProxy")
	return p
}

// DefaultProxyReadyTimeout is SockdProxy.ReadyTimeout when not set.
const DefaultProxyReadyTimeout = 10 * time.Second

// checkModes validates the combination of mode keys.
func (d *decoder) checkModes(j *Job, top *dictView) {
	if j.Internal != "" && j.Proxy != nil {
		d.errorf("SockdProxy", "a job cannot be both SockdInternal and SockdProxy: keep one")
	}
	if j.Proxy != nil && j.Inetd != nil {
		d.errorf("inetdCompatibility", "a SockdProxy job cannot also use inetdCompatibility: remove one of them")
	}
	if j.Internal != "" && j.Inetd != nil {
		d.warnf("inetdCompatibility", "ignored for a SockdInternal job: sockd answers the connections itself")
	}
	if (j.Internal != "" || j.Proxy != nil) && len(j.Sockets) == 0 {
		key := "SockdInternal"
		if j.Internal == "" {
			key = "SockdProxy"
		}
		d.errorf(key, "the job has no Sockets to serve: add a Sockets dictionary")
	}
	if _, _, hasSockets := top.get("Sockets"); j.Inetd != nil && !hasSockets && j.Internal == "" {
		d.warnf("inetdCompatibility", "has no effect: the job has no Sockets")
	}
	if j.Inetd != nil && !j.Inetd.Wait && j.Internal == "" {
		for _, g := range j.Sockets {
			for _, s := range g.Sockets {
				if s.Type == Dgram {
					d.errorf(s.Key+".SockType", "a datagram socket cannot be served with inetdCompatibility Wait=false (there is no connection to accept): set Wait to true, or use SockType stream")
				}
			}
		}
	}
	if j.Proxy != nil && (len(j.ProgramArguments) > 0 || j.Program != "") {
		// sockd starts and stops this backend: while it is stopped its port
		// is free, and one in the ephemeral range can become the source
		// port of any outgoing connection meanwhile.
		if _, port, err := net.SplitHostPort(j.Proxy.Backend); err == nil {
			if n, err := strconv.Atoi(port); err == nil {
				if lo, hi, ok := portrange.Ephemeral(); ok && n >= lo && n <= hi {
					d.warnf("SockdProxy.Backend", "port %d is in the kernel's ephemeral port range (%d-%d): while sockd has the backend stopped, an outgoing connection may take it and the next start fail with \"address in use\"; pick a port below %d", n, lo, hi, lo)
				}
			}
		}
	}
	if j.Proxy != nil {
		unixBackend := strings.HasPrefix(j.Proxy.Backend, "/")
		for _, g := range j.Sockets {
			for _, s := range g.Sockets {
				if s.Type != Dgram {
					continue
				}
				switch {
				case s.PathName != "":
					d.errorf(s.Key+".SockPathName", "a proxy job cannot serve a Unix datagram socket: only UDP is proxied per client flow")
				case unixBackend:
					d.errorf("SockdProxy.Backend", "UDP sockets need a host:port backend, not a Unix socket path (%s)", j.Proxy.Backend)
				case j.Proxy.ProxyProtocol == "v1":
					d.errorf("SockdProxy.ProxyProtocol", "PROXY protocol v1 has no datagram form: use \"v2\" with UDP sockets")
				}
			}
		}
	}
	d.checkBackendPath(j)
	// launchd forces AbandonProcessGroup for inetd jobs (job_import_dictionary),
	// which leaves the grandchildren of a per-connection child running for
	// ever. sockd deliberately does not: every child's process group is
	// signalled when the child exits unless the job sets the key (docs/keys.md).
}

// checkLimitsApply refuses SockdLimits where sockd could not enforce them: on
// a job whose connections it never accepts, and address limits on a Unix
// socket, whose clients have no address. Either would let the job serve
// wider than the file says.
// checkRecordsApply warns about SockdLogConnections on a job whose clients
// sockd never sees: there is nothing to record.
func (d *decoder) checkRecordsApply(j *Job, top *dictView) {
	key, _, ok := top.get("SockdLogConnections")
	if !ok || !j.LogConnections {
		return
	}
	switch j.Mode() {
	case ModeHandoff, ModeInetdWait, ModeNone:
		d.warnf(key, "has no effect: sockd does not see this job's clients (%s accepts them); records are written for inetdCompatibility Wait=false, SockdInternal and SockdProxy jobs", j.Mode())
	}
}

func (d *decoder) checkLimitsApply(j *Job, top *dictView) {
	key, v, ok := top.get("SockdLimits")
	if !ok {
		return
	}
	switch m := j.Mode(); m {
	case ModeHandoff, ModeInetdWait, ModeNone:
		why := map[Mode]string{
			ModeHandoff:   "a handoff job: sockd passes its sockets to the service and never sees a client",
			ModeInetdWait: "an inetdCompatibility Wait=true job: the service gets the socket itself and accepts its clients",
			ModeNone:      "a job without Sockets: sockd accepts nothing for it",
		}[m]
		d.errorf(key, "applies only to jobs whose connections sockd accepts (inetdCompatibility Wait=false, SockdInternal, SockdProxy); this is %s, so the limits would restrict nothing: remove SockdLimits, or limit clients in the service itself", why)
		return
	}
	d.checkDatagramInternal(j, key, v)
	var addressKeys []string
	if len(j.Limits.Allow) > 0 {
		addressKeys = append(addressKeys, "Allow")
	}
	if j.Limits.MaxPerSource > 0 {
		addressKeys = append(addressKeys, "MaxPerSource")
	}
	for _, g := range j.Sockets {
		for _, s := range g.Sockets {
			if s.PathName == "" {
				continue
			}
			for _, k := range addressKeys {
				d.errorf(join(key, k), "%s is a Unix socket, whose clients have no address, so %s cannot restrict them: limit who may connect with SockPathMode/SockPathOwner/SockPathGroup, or serve the Unix socket from a job of its own", s.Key, k)
			}
		}
	}
}

// checkDatagramInternal refuses MaxChildren and MaxPerSource on an internal
// service with only datagram sockets: sockd answers each datagram itself,
// with no connection or child to count, so they would restrict nothing
// (Rate, Allow and Deny do apply).
func (d *decoder) checkDatagramInternal(j *Job, key string, limits any) {
	if j.Internal == "" || !DatagramOnly(j) {
		return
	}
	m, _ := limits.(map[string]any)
	for _, k := range []string{"MaxChildren", "MaxPerSource"} {
		for name := range m {
			if strings.EqualFold(name, k) {
				d.errorf(join(key, name), "an internal service with only datagram sockets answers each datagram itself, with no connection or child to count, so %s would restrict nothing: remove it (Rate, Allow and Deny do apply to datagrams)", k)
			}
		}
	}
}

// DatagramOnly reports whether every socket of j is a datagram socket
// (and it has one).
func DatagramOnly(j *Job) bool {
	n := 0
	for _, g := range j.Sockets {
		for _, s := range g.Sockets {
			if s.Type != Dgram {
				return false
			}
			n++
		}
	}
	return n > 0
}

// checkProxyExhaustion warns about a proxy job that clients beyond this host
// can reach and that neither closes idle clients nor bounds them per source:
// MaxChildren idle connections (256 by default), from one client, would hold
// every slot for ever.
func (d *decoder) checkProxyExhaustion(j *Job) {
	if j.Proxy == nil || j.Proxy.IdleTimeout > 0 || j.Limits.MaxPerSource > 0 || !reachableFromOutside(j) {
		return
	}
	d.warnf("SockdProxy", "this proxy job listens beyond loopback with neither SockdProxy.IdleTimeout nor SockdLimits.MaxPerSource: "+
		"%d idle connections from one client (MaxChildren) hold every slot and starve everyone else; set MaxPerSource (e.g. 32) and an IdleTimeout (e.g. 300)",
		j.Limits.MaxChildren)
}

// reachableFromOutside reports whether a stream socket of the job listens on
// an address that is not loopback (a wildcard counts).
func reachableFromOutside(j *Job) bool {
	for _, ep := range j.Endpoints() {
		if ep.Network != "tcp4" && ep.Network != "tcp6" {
			continue
		}
		ap, err := netip.ParseAddrPort(ep.Address)
		if err != nil || !ap.Addr().IsLoopback() {
			return true
		}
	}
	return false
}

// checkOwnAddresses reports sockets of one job claiming one address: one
// error per address, with a count, found in linear time (ownConflicts).
func (d *decoder) checkOwnAddresses(j *Job) {
	for _, c := range ownConflicts(claimEndpoints(j.Endpoints())) {
		d.errorf(c.Key, "%s", c.Msg)
	}
}
