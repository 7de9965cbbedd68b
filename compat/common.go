package compat

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sockd/sockd/job"
)

// Limits applied to every input so that no file can make an importer hang
// or exhaust memory.
const (
	// MaxFileSize is the largest configuration file read (as job.MaxFileSize).
	MaxFileSize = 1 << 20
	// MaxIncludeDepth bounds nested xinetd include/includedir directives.
	MaxIncludeDepth = 8
	// MaxFiles bounds the number of files one xinetd load reads.
	MaxFiles = 4096
	// maxFields bounds the words of one inetd line or xinetd attribute.
	maxFields = 4096
)

// Defaults sockd applies where an imported configuration says nothing.
const (
	// DefaultMaxChildren is sockd's concurrent-children limit for
	// inetd-style jobs (SockdLimits.MaxChildren default).
	DefaultMaxChildren = 256
	// DefaultPause is how long accepting pauses when the spawn rate is
	// exhausted (SockdLimits.PauseSeconds default).
	DefaultPause = 5 * time.Second
	// InetdDefaultRate is inetd's default -R: 256 invocations per minute
	// and service (openbsd-inetd, FreeBSD inetd). It becomes a token bucket
	// of Rate 256/60 per second and Burst 256.
	InetdDefaultRate = 256
	// XinetdDefaultCPS and XinetdDefaultCPSWait are xinetd's built-in
	// "cps = 50 10", applied when neither the service nor defaults{} sets cps.
	XinetdDefaultCPS     = 50
	XinetdDefaultCPSWait = 10 * time.Second
	// Unlimited is what "UNLIMITED" instances (and FreeBSD max-child 0)
	// become in Limits.MaxChildren: the largest value SockdLimits accepts.
	Unlimited = 1 << 20
	// RLimInfinity is RLIM_INFINITY (an "UNLIMITED" rlimit_* value).
	RLimInfinity = ^uint64(0)
)

// internalServices are the services sockd serves itself (job.Internal).
var internalServices = map[string]int{
	"echo": 7, "discard": 9, "daytime": 13, "chargen": 19, "time": 37,
}

// internalByPort maps a well-known port back to its internal service.
func internalByPort(port int) string {
	for name, p := range internalServices {
		if p == port {
			return name
		}
	}
	return ""
}

// sink collects diagnostics for one load.
type sink struct {
	diags job.Diags
}

func (s *sink) add(sev job.Severity, file string, line int, key, format string, args ...any) {
	s.diags = append(s.diags, job.Diag{File: file, Line: line, Key: key, Severity: sev, Msg: fmt.Sprintf(format, args...)})
}

func (s *sink) warnf(file string, line int, key, format string, args ...any) {
	s.add(job.Warning, file, line, key, format, args...)
}

func (s *sink) errorf(file string, line int, key, format string, args ...any) {
	s.add(job.Error, file, line, key, format, args...)
}

// resolver is the seam for host name lookups: the real one asks the system
// resolver with a timeout; fuzz targets use one that never leaves the process.
type resolver func(host string) ([]netip.Addr, error)

// systemResolver looks a host name up with the system resolver (files then
// DNS), bounded in time.
func systemResolver(host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.Unmap())
	}
	return out, nil
}

// offlineResolver resolves only "localhost" (as /etc/hosts does on
// Debian) and fails for every other name. Used by the fuzz targets.
func offlineResolver(host string) ([]netip.Addr, error) {
	if strings.EqualFold(host, "localhost") {
		return []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, fmt.Errorf("lookup %s: no network lookups here", host)
}

// newJob returns a job with launchd's and sockd's defaults filled in, as
// the launchd loader fills them for a job file that says nothing.
func newJob(source, file string, line int, label string) *job.Job {
	return &job.Job{
		File:             fmt.Sprintf("%s:%d", file, line),
		Source:           source,
		Label:            label,
		InitGroups:       true,
		ThrottleInterval: job.DefaultThrottleInterval,
		ExitTimeOut:      job.DefaultExitTimeOut,
		TimeOut:          job.DefaultTimeOut,
		Limits:           job.Limits{MaxChildren: DefaultMaxChildren, Pause: DefaultPause},
	}
}

// dropWaitLimits leaves a wait-mode job with the limits of a job file
// without SockdLimits: sockd hands such a server its socket and never
// accepts for it, so no SockdLimits key applies to it.
func dropWaitLimits(j *job.Job) {
	if j.Inetd != nil && j.Inetd.Wait {
		j.Limits = job.Limits{MaxChildren: DefaultMaxChildren, Pause: DefaultPause}
	}
}

// dropDatagramLimits leaves an internal service with only datagram sockets
// without MaxChildren and MaxPerSource, which a job file may not set for it
// (they would restrict nothing: sockd answers each datagram itself). inetd
// and xinetd answer such a service themselves too, with no server to count
// against max-child, instances or per_source, so this changes nothing. It
// reports whether a limit was set.
func dropDatagramLimits(j *job.Job, typ job.SockType) bool {
	if j.Internal == "" || typ != job.Dgram {
		return false
	}
	set := j.Limits.MaxChildren != DefaultMaxChildren || j.Limits.MaxPerSource != 0
	j.Limits.MaxChildren, j.Limits.MaxPerSource = DefaultMaxChildren, 0
	return set
}

// setProgram sets Program, ProgramArguments, Path and Argv for a server
// path (no PATH search, as launchd does for Program).
func setProgram(j *job.Job, server string, args []string) {
	j.Program = server
	j.ProgramArguments = args
	j.Path = server
	if len(args) > 0 {
		j.Argv = append([]string(nil), args...)
	} else {
		j.Argv = []string{server}
	}
}

// sockSpec is what an importer knows about the one socket of a service.
type sockSpec struct {
	typ     job.SockType
	family  job.Family // FamilyUnspec = IPv6 and IPv4
	proto   string     // "tcp", "udp"; "" for Unix sockets
	nodes   []string   // literal addresses or host names; empty = wildcard
	service string     // as written (name or number)
	port    int
	path    string // Unix socket path
}

// resolvePort resolves a service name or number for proto through the
// services database.
func resolvePort(proto, service string) (int, error) {
	if service == "" {
		return 0, fmt.Errorf("empty service name")
	}
	if n, err := strconv.Atoi(service); err == nil {
		if n < 0 || n > 65535 {
			return 0, fmt.Errorf("port %d out of range", n)
		}
		return n, nil
	}
	if p, ok := servicePort(proto, service); ok {
		return p, nil
	}
	return 0, fmt.Errorf("service %q is not in /etc/services for %s", service, proto)
}

// servicesFile is the services database read by servicePort.
const servicesFile = "/etc/services"

var services struct {
	once  sync.Once
	ports map[string]int // "name/proto" -> port, aliases included
	err   error
}

// servicePort looks a service name up in /etc/services, read once and
// cached. getaddrinfo through cgo can take milliseconds per call (NSS);
// this keeps big files and fuzzing fast. When the file cannot be read it
// falls back to the resolver.
func servicePort(proto, name string) (int, bool) {
	services.once.Do(func() {
		data, err := os.ReadFile(servicesFile)
		if err != nil {
			services.err = err
			return
		}
		services.ports = parseServices(data)
	})
	if services.err != nil {
		p, err := net.LookupPort(proto, name)
		return p, err == nil
	}
	p, ok := services.ports[name+"/"+proto]
	return p, ok
}

// parseServices parses services(5) text: "name port/proto [aliases] [# comment]".
// The first entry of a name wins, as getservbyname does.
func parseServices(data []byte) map[string]int {
	m := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		portStr, proto, ok := strings.Cut(f[1], "/")
		port, err := strconv.Atoi(portStr)
		if !ok || err != nil || port < 0 || port > 65535 {
			continue
		}
		for _, n := range append([]string{f[0]}, f[2:]...) {
			k := n + "/" + proto
			if _, dup := m[k]; !dup {
				m[k] = port
			}
		}
	}
	return m
}

// attachSocket gives j one socket group named group holding the socket
// of sp, and fills its endpoints the way the launchd loader does: one per
// address family for a wildcard (IPv6 first), one per resolved address of
// each node, or the Unix path.
func attachSocket(j *job.Job, group string, sp sockSpec, lookup resolver) error {
	key := "Sockets." + group
	var socks []job.Socket
	base := job.Socket{
		Type:        sp.typ,
		Passive:     true,
		ServiceName: sp.service,
		Port:        sp.port,
		Family:      sp.family,
		Protocol:    sp.proto,
		PathName:    sp.path,
	}
	switch {
	case sp.family == job.Unix:
		base.ServiceName, base.Port, base.Protocol = "", 0, ""
		socks = []job.Socket{base}
	case len(sp.nodes) == 0:
		socks = []job.Socket{base}
	default:
		for _, n := range sp.nodes {
			s := base
			s.NodeName = n
			socks = append(socks, s)
		}
	}
	for i := range socks {
		socks[i].Key = key
		if len(socks) > 1 {
			socks[i].Key = fmt.Sprintf("%s[%d]", key, i)
		}
	}
	j.Sockets = []job.SocketGroup{{Name: group, Sockets: socks}}
	for i := range j.Sockets[0].Sockets {
		s := &j.Sockets[0].Sockets[i]
		eps, err := endpointsOf(s, lookup)
		if err != nil {
			j.Sockets = nil
			return err
		}
		for k := range eps {
			eps[k].Passive = s.Passive
		}
		s.Endpoints = eps
	}
	j.LinkEndpoints()
	return nil
}

// groupName makes a usable socket name (no ':' or NUL, which
// LISTEN_FDNAMES cannot carry).
func groupName(s string) string {
	s = strings.NewReplacer(":", "_", "\x00", "_").Replace(s)
	if s == "" {
		s = "Listeners"
	}
	return s
}

func endpointsOf(s *job.Socket, lookup resolver) ([]job.Endpoint, error) {
	if s.Type == job.FIFO {
		return []job.Endpoint{{Network: "fifo", Address: s.PathName}}, nil
	}
	if s.Family == job.Unix {
		network := "unix"
		switch s.Type {
		case job.Dgram:
			network = "unixgram"
		case job.SeqPacket:
			network = "unixpacket"
		}
		return []job.Endpoint{{Network: network, Address: s.PathName}}, nil
	}
	proto := s.Protocol
	if proto == "" {
		proto = "tcp"
		if s.Type == job.Dgram {
			proto = "udp"
		}
	}
	var addrs []netip.Addr
	if s.NodeName == "" {
		if s.Family != job.IPv4 {
			addrs = append(addrs, netip.IPv6Unspecified())
		}
		if s.Family != job.IPv6 {
			addrs = append(addrs, netip.IPv4Unspecified())
		}
	} else if a, err := netip.ParseAddr(strings.Trim(s.NodeName, "[]")); err == nil {
		a = a.Unmap()
		if (s.Family == job.IPv4 && !a.Is4()) || (s.Family == job.IPv6 && !a.Is6()) {
			return nil, fmt.Errorf("address %s does not match family %s", s.NodeName, s.Family)
		}
		addrs = []netip.Addr{a}
	} else {
		ips, err := lookup(s.NodeName)
		if err != nil {
			return nil, fmt.Errorf("host %q: %w", s.NodeName, err)
		}
		var v6, v4 []netip.Addr
		seen := map[netip.Addr]bool{}
		for _, ip := range ips {
			ip = ip.Unmap()
			if seen[ip] {
				continue
			}
			seen[ip] = true
			if ip.Is4() && s.Family != job.IPv6 {
				v4 = append(v4, ip)
			} else if ip.Is6() && s.Family != job.IPv4 {
				v6 = append(v6, ip)
			}
		}
		addrs = append(v6, v4...)
		if len(addrs) == 0 {
			return nil, fmt.Errorf("host %q has no %s address", s.NodeName, s.Family)
		}
	}
	eps := make([]job.Endpoint, 0, len(addrs))
	for _, a := range addrs {
		fam := "4"
		if a.Is6() {
			fam = "6"
		}
		eps = append(eps, job.Endpoint{Network: proto + fam, Address: netip.AddrPortFrom(a, uint16(s.Port)).String()})
	}
	return eps, nil
}

// addrPattern converts one xinetd only_from/no_access entry that needs no
// name lookup into CIDR prefixes. ok is false when the entry is a host,
// domain or network name.
func addrPattern(v string) (out []string, ok bool, err error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, true, fmt.Errorf("bad address range %q", v)
		}
		return []string{p.Masked().String()}, true, nil
	}
	if a, err := netip.ParseAddr(v); err == nil {
		if a.Is6() && a.IsUnspecified() {
			return []string{"::/0"}, true, nil // xinetd: :: matches every IPv6 client
		}
		if a.Is6() {
			return []string{netip.PrefixFrom(a, 128).String()}, true, nil
		}
		// xinetd: rightmost zero components of an IPv4 address are
		// wildcards; 0.0.0.0 matches everything.
		b := a.As4()
		bits := 32
		for i := 3; i >= 0 && b[i] == 0; i-- {
			bits -= 8
		}
		return []string{netip.PrefixFrom(a, bits).String()}, true, nil
	}
	// Factorised form: a.b.c.{d,e,...}; fewer leading components allowed.
	if i := strings.IndexByte(v, '{'); i >= 0 && strings.HasSuffix(v, "}") {
		head := v[:i]
		if head != "" && !strings.HasSuffix(head, ".") {
			return nil, true, fmt.Errorf("bad factorised address %q", v)
		}
		lead := strings.Split(strings.TrimSuffix(head, "."), ".")
		if head == "" {
			lead = nil
		}
		if len(lead) > 3 {
			return nil, true, fmt.Errorf("bad factorised address %q", v)
		}
		for _, part := range strings.Split(v[i+1:len(v)-1], ",") {
			comps := append(append([]string(nil), lead...), strings.TrimSpace(part))
			var b [4]byte
			for k, c := range comps {
				n, err := strconv.Atoi(c)
				if err != nil || n < 0 || n > 255 {
					return nil, true, fmt.Errorf("bad factorised address %q", v)
				}
				b[k] = byte(n)
			}
			out = append(out, netip.PrefixFrom(netip.AddrFrom4(b), 8*len(comps)).String())
		}
		return out, true, nil
	}
	if looksNumeric(v) {
		return nil, true, fmt.Errorf("bad address %q", v)
	}
	return nil, false, nil
}

// looksNumeric reports whether v is made of digits, dots and colons only
// (a mistyped address rather than a name).
func looksNumeric(v string) bool {
	for _, c := range v {
		if (c < '0' || c > '9') && c != '.' && c != ':' {
			return false
		}
	}
	return v != ""
}

// sortedEnv returns env sorted by name, the last value of a name winning.
func sortedEnv(env []job.EnvVar) []job.EnvVar {
	last := map[string]string{}
	for _, e := range env {
		last[e.Name] = e.Value
	}
	out := make([]job.EnvVar, 0, len(last))
	for k, v := range last {
		out = append(out, job.EnvVar{Name: k, Value: v})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// checkServerPath warns about a server path launchd semantics would not
// run as the config author meant.
func checkServerPath(s *sink, file string, line int, key, server string) {
	if !filepath.IsAbs(server) {
		s.warnf(file, line, key, "server path %q is not absolute; sockd runs it relative to its working directory (no PATH search)", server)
	}
}
