package compat

import (
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sockd/sockd/job"
)

// ximport is one xinetd service being imported into a job. Each step
// reads some attributes into j and sp, and returns false when the service
// cannot be imported (it has then reported why, or warned that it is
// skipped).
type ximport struct {
	l    *xloader
	sv   *xservice
	s    *sink
	b    *xblock
	file string
	id   string
	j    *job.Job
	sp   sockSpec
	bind string // the bound address, "" for all addresses

	internal, unlisted bool
	flags              xflags
	nobody             bool // xinetd would serve nobody: see closeJob
	failed             bool
}

// xflags are the flags that change how a service is imported.
type xflags struct {
	v4, v6, nameInArgs, noLibwrap bool
	intercept                     int // line of INTERCEPT, 0 if not given
}

// service imports one resolved service block. It returns the job (nil
// when it cannot be imported), its bind address and its id.
func (l *xloader) service(sv *xservice, s *sink, enabled, disabled map[string]bool) (*job.Job, string, string) {
	x := &ximport{l: l, sv: sv, s: s, b: sv.b, file: sv.b.file}
	ok := x.identity() && x.types() && x.readFlags() && x.disable(enabled, disabled) &&
		x.socketType() && x.waitMode() && x.program() && x.dgramWait() && x.credentials() && x.port() &&
		x.listenOn() && x.limits() && x.access() && x.waitService() && x.refused() &&
		x.tcpWrappers() && x.environment() && x.process()
	if !ok {
		return nil, "", ""
	}
	x.unhonoured()
	x.connectionRecords()
	x.datagramLimits()
	if err := attachSocket(x.j, groupName(x.b.name), x.sp, l.sys.lookup); err != nil {
		x.fail(x.b.line, "bind", "%v", err)
		return nil, "", ""
	}
	return x.j, x.bind, x.id
}

// get returns the values of a single attribute and the line to report
// (the block's line when the attribute is not there).
func (x *ximport) get(name string) ([]string, int, bool) {
	a, ok := x.sv.single[name]
	if !ok {
		return nil, x.b.line, false
	}
	return a.vals, a.line, true
}

// one returns the only value of a single attribute; an attribute with
// another number of values is reported and reads as absent.
func (x *ximport) one(name string) (string, int, bool) {
	vals, ln, ok := x.get(name)
	if !ok {
		return "", ln, false
	}
	if len(vals) != 1 {
		x.fail(ln, name, "want exactly one value, found %d (%q)", len(vals), strings.Join(vals, " "))
		return "", ln, false
	}
	return vals[0], ln, true
}

// yesNo reads a yes/no attribute; def when it is absent.
func (x *ximport) yesNo(name string, def bool) bool {
	v, ln, ok := x.one(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "yes":
		return true
	case "no":
		return false
	}
	x.fail(ln, name, "%q: want yes or no", v)
	return def
}

// fail reports an error that keeps the service from being imported.
func (x *ximport) fail(ln int, key, format string, args ...any) bool {
	x.s.errorf(x.file, ln, key, format+"; service %s skipped", append(args, x.b.name)...)
	x.failed = true
	return false
}

func (x *ximport) warnf(ln int, key, format string, args ...any) {
	x.s.warnf(x.file, ln, key, format, args...)
}

// skip warns that the service is left out (a kind sockd does not serve).
func (x *ximport) skip(ln int, key, format string, args ...any) bool {
	x.warnf(ln, key, format+"; service %s skipped", append(args, x.b.name)...)
	return false
}

func (x *ximport) identity() bool {
	x.id = x.b.name
	if v, ln, ok := x.get("id"); ok {
		if len(v) != 1 {
			return x.fail(ln, "id", "want exactly one id")
		}
		x.id = v[0]
	}
	x.j = newJob("xinetd", x.file, x.b.line, "xinetd."+x.id)
	return true
}

func (x *ximport) types() bool {
	v, ln, _ := x.get("type")
	for _, t := range v {
		switch strings.ToUpper(t) {
		case "RPC":
			return x.skip(ln, "type", "RPC services are not supported")
		case "TCPMUX", "TCPMUXPLUS":
			return x.skip(ln, "type", "TCPMUX services are not supported")
		case "INTERNAL":
			x.internal = true
		case "UNLISTED":
			x.unlisted = true
		default:
			return x.fail(ln, "type", "unknown type %q (want RPC, INTERNAL, TCPMUX, TCPMUXPLUS or UNLISTED)", t)
		}
	}
	return true
}

func (x *ximport) readFlags() bool {
	v, ln, _ := x.get("flags")
	for _, f := range v {
		switch strings.ToUpper(f) {
		case "IPV4":
			x.flags.v4 = true
		case "IPV6":
			x.flags.v6 = true
		case "REUSE":
			// implied by xinetd and by sockd
		case "NOLIBWRAP":
			x.flags.noLibwrap = true
		case "NAMEINARGS":
			x.flags.nameInArgs = true
		case "DISABLE":
			x.j.Disabled = true
		case "INTERCEPT":
			x.flags.intercept = ln
		case "SENSOR":
			return x.fail(ln, "flags", "SENSOR services are not supported (xinetd would also refuse the clients that touch it, for deny_time, on every service; sockd keeps no such list)")
		case "IDONLY":
			return x.fail(ln, "flags", "IDONLY: xinetd serves only clients whose user an ident (RFC 1413) server names; sockd makes no ident queries, so it would serve everyone: remove the flag to serve everyone")
		case "LABELED":
			return x.fail(ln, "flags", "LABELED: xinetd runs the server in the SELinux context of the client's label; sockd does not, so the server would run with more rights: remove the flag, or confine the server in the policy")
		case "NORETRY", "NODELAY", "KEEPALIVE":
			x.warnf(ln, "flags", "flag %s is not honoured", strings.ToUpper(f))
		default:
			x.warnf(ln, "flags", "unknown flag %q; ignored", f)
		}
	}
	return true
}

// disable reads disable and the defaults' enabled/disabled lists.
func (x *ximport) disable(enabled, disabled map[string]bool) bool {
	if x.yesNo("disable", false) {
		x.j.Disabled = true
	}
	if disabled[x.id] || len(enabled) > 0 && !enabled[x.id] {
		x.j.Disabled = true
	}
	return !x.failed
}

func (x *ximport) socketType() bool {
	st, ln, ok := x.one("socket_type")
	if !ok {
		if x.failed {
			return false
		}
		return x.fail(x.b.line, "socket_type", "missing (want stream or dgram)")
	}
	switch st {
	case "stream":
		x.sp.typ, x.sp.proto = job.Stream, "tcp"
	case "dgram":
		x.sp.typ, x.sp.proto = job.Dgram, "udp"
	case "raw":
		return x.skip(ln, "socket_type", "raw sockets are not supported")
	case "seqpacket":
		return x.fail(ln, "socket_type", "seqpacket over IP (SCTP) is not supported")
	default:
		return x.fail(ln, "socket_type", "unknown socket type %q (want stream or dgram)", st)
	}
	p, ln, ok := x.one("protocol")
	if !ok {
		return !x.failed
	}
	p = strings.ToLower(p)
	if p != "tcp" && p != "udp" {
		return x.fail(ln, "protocol", "protocol %q is not supported (want tcp or udp)", p)
	}
	if p != x.sp.proto {
		return x.fail(ln, "protocol", "protocol %s does not go with socket_type %s", p, st)
	}
	return true
}

func (x *ximport) waitMode() bool {
	w, ln, ok := x.one("wait")
	if !ok {
		if x.failed {
			return false
		}
		return x.fail(x.b.line, "wait", "missing (want yes or no)")
	}
	switch strings.ToLower(w) {
	case "yes":
		x.j.Inetd = &job.Inetd{Wait: true}
	case "no":
		x.j.Inetd = &job.Inetd{Wait: false}
	default:
		return x.fail(ln, "wait", "%q: want yes or no", w)
	}
	return true
}

// dgramWait refuses an external dgram service with wait = no, as the job
// file loader refuses inetdCompatibility Wait=false on a datagram socket:
// sockd accepts connections for such a job, and a datagram socket has none.
func (x *ximport) dgramWait() bool {
	if x.sp.typ != job.Dgram || x.j.Inetd == nil || x.wait() {
		return true
	}
	_, ln, _ := x.get("wait")
	return x.fail(ln, "wait", "a dgram service with wait = no has no connection to accept, so sockd would never start its server and its datagrams would go unanswered: set wait = yes")
}

// wait reports whether the service is an external wait = yes one.
func (x *ximport) wait() bool { return x.j.Inetd != nil && x.j.Inetd.Wait }

// program decides what runs: redirect, internal or server.
func (x *ximport) program() bool {
	server, sln, hasServer := x.one("server")
	if x.failed {
		return false
	}
	switch {
	case x.has("redirect"):
		return x.redirect(hasServer, sln)
	case x.internal:
		name := internalName(x.b.name, x.id)
		if name == "" {
			return x.fail(sln, "type", "internal service %q is not provided by sockd (it serves echo, discard, chargen, daytime and time)", x.b.name)
		}
		if hasServer {
			x.warnf(sln, "server", "ignored for an INTERNAL service")
		}
		x.j.Internal, x.j.Inetd = name, nil
		return true
	case !hasServer:
		return x.fail(x.b.line, "server", "missing (an external service needs server)")
	}
	checkServerPath(x.s, x.file, sln, "server", server)
	args, _, _ := x.get("server_args")
	argv := append([]string{filepath.Base(server)}, args...)
	if x.flags.nameInArgs {
		if len(args) == 0 {
			return x.fail(sln, "server_args", "flag NAMEINARGS needs server_args starting with argv[0]")
		}
		argv = append([]string(nil), args...)
	}
	setProgram(x.j, server, argv)
	return true
}

// has reports whether a single attribute is there.
func (x *ximport) has(name string) bool {
	_, ok := x.sv.single[name]
	return ok
}

func (x *ximport) redirect(hasServer bool, sln int) bool {
	redirect, rln, _ := x.get("redirect")
	if len(redirect) != 2 {
		return x.fail(rln, "redirect", "want host and port, found %q", strings.Join(redirect, " "))
	}
	if x.sp.typ != job.Stream {
		return x.fail(rln, "redirect", "only stream (tcp) services can be redirected")
	}
	if x.wait() {
		_, wln, _ := x.get("wait")
		return x.fail(wln, "wait", "a redirected service must have wait = no")
	}
	port, err := strconv.Atoi(redirect[1])
	if err != nil || port < 1 || port > 65535 {
		if port, err = resolvePort("tcp", redirect[1]); err != nil || port == 0 {
			return x.fail(rln, "redirect", "bad port %q", redirect[1])
		}
	}
	if hasServer {
		x.warnf(sln, "server", "ignored: redirect takes priority")
	}
	if x.internal {
		x.warnf(rln, "type", "INTERNAL ignored: redirect takes priority")
	}
	x.j.Inetd = nil
	x.j.Proxy = &job.Proxy{ReadyTimeout: job.DefaultProxyReadyTimeout}
	host := strings.Trim(redirect[0], "[]")
	if a, err := netip.ParseAddr(host); err == nil {
		x.j.Proxy.Backend = netip.AddrPortFrom(a, uint16(port)).String()
	} else {
		x.j.Proxy.Backend = host + ":" + strconv.Itoa(port)
	}
	return true
}

// credentials reads user, group and groups.
func (x *ximport) credentials() bool {
	if x.j.Internal != "" || x.j.Proxy != nil {
		// No program runs: a user is optional, and used when it is one name.
		if u, _, _ := x.get("user"); len(u) == 1 {
			x.j.UserName = u[0]
		}
	} else if u, _, ok := x.one("user"); ok {
		x.j.UserName = u
	} else if !x.failed {
		return x.fail(x.b.line, "user", "missing (an external service needs user)")
	}
	if g, _, ok := x.one("group"); ok {
		x.j.GroupName = g
	}
	if !x.failed {
		x.j.InitGroups = x.yesNo("groups", x.j.InitGroups)
	}
	return !x.failed
}

func (x *ximport) port() bool {
	pv, pln, hasPort := x.one("port")
	if x.failed {
		return false
	}
	port := 0
	if hasPort {
		n, err := strconv.Atoi(pv)
		if err != nil || n < 1 || n > 65535 {
			return x.fail(pln, "port", "%q is not a port number (1-65535)", pv)
		}
		port = n
	}
	sp, name := &x.sp, x.b.name
	listed, lerr := resolvePort(sp.proto, name)
	switch {
	case x.unlisted && !hasPort:
		return x.fail(x.b.line, "port", "missing: an UNLISTED service needs port")
	case x.unlisted:
		sp.service = strconv.Itoa(port)
	case hasPort && lerr == nil && listed != port:
		x.warnf(pln, "port", "%d differs from /etc/services (%s is %d/%s); using %d", port, name, listed, sp.proto, port)
		sp.service = strconv.Itoa(port)
	case hasPort && lerr == nil:
		sp.service = name
	case hasPort:
		sp.service = strconv.Itoa(port)
	case lerr == nil:
		port, sp.service = listed, name
	case x.j.Internal != "":
		// Apple names its dgram internal services "chargen-udp" etc.
		port = internalServices[x.j.Internal]
		sp.service = x.j.Internal
		x.warnf(x.b.line, "port", "service %s is not in /etc/services; using the port of %s (%d)", name, x.j.Internal, port)
	default:
		return x.fail(x.b.line, "port", "%v; add port (and type = UNLISTED)", lerr)
	}
	sp.port = port
	return true
}

// environment reads env and passenv. passenv copies nothing into the job:
// sockd hands every child its own environment, so the server gets sockd's
// values when sockd starts it, whether sockd serves this file or a job file
// converted from it, and whoever converted it.
func (x *ximport) environment() bool {
	sv := x.sv
	if names, present := sv.lists["passenv"]; present {
		ln := lineOr(sv.listLn["passenv"], x.b.line)
		what := "xinetd passes the server none of its environment"
		if len(names) > 0 {
			what = "xinetd passes the server only " + strings.Join(names, " ") + " of its environment"
		}
		x.warnf(ln, "passenv", "%s; sockd writes no value into the job and passes its whole environment when it starts the server (less LISTEN_*, LAUNCH_*, NOTIFY_SOCKET and the connection variables; it cannot withhold the others)", what)
	}
	var env []job.EnvVar
	for _, kv := range sv.lists["env"] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			x.warnf(lineOr(sv.listLn["env"], x.b.line), "env", "%q is not NAME=value; ignored", kv)
			continue
		}
		env = append(env, job.EnvVar{Name: k, Value: v})
	}
	if len(env) > 0 {
		x.j.EnvironmentVariables = sortedEnv(env)
	}
	return true
}

// process reads nice, umask and rlimit_*.
func (x *ximport) process() bool {
	if v, ln, ok := x.one("nice"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < -20 || n > 19 {
			return x.fail(ln, "nice", "%q: want a number from -20 to 19", v)
		}
		x.j.Nice = &n
	} else if x.failed {
		return false
	}
	if v, ln, ok := x.one("umask"); ok {
		n, err := strconv.ParseUint(v, 8, 32)
		if err != nil || n > 0o777 {
			return x.fail(ln, "umask", "%q: want an octal mask such as 022", v)
		}
		u := uint32(n)
		x.j.Umask = &u
	} else if x.failed {
		return false
	}
	for _, r := range rlimitAttrs {
		v, ln, ok := x.one(r.attr)
		if x.failed {
			return false
		}
		if !ok {
			continue
		}
		n, err := parseRlimit(v, r.attr != "rlimit_cpu" && r.attr != "rlimit_files")
		if err != nil {
			return x.fail(ln, r.attr, "%v", err)
		}
		lim := job.RLimit{Name: r.name, Resource: r.resource, Value: n}
		x.j.SoftResourceLimits = append(x.j.SoftResourceLimits, lim)
		x.j.HardResourceLimits = append(x.j.HardResourceLimits, lim)
	}
	return true
}

// unhonoured warns about attributes sockd does not honour, at their own
// line (inherited defaults were reported once at the defaults block).
func (x *ximport) unhonoured() {
	var names []string
	for n := range unhonoured {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if a, ok := x.sv.single[n]; ok && a.line > 0 {
			x.warnf(a.line, n, "not honoured: %s", unhonoured[n])
		}
		if x.sv.listSet[n] && len(x.sv.lists[n]) > 0 && ownList(x.b, n) {
			x.warnf(x.sv.listLn[n], n, "not honoured: %s", unhonoured[n])
		}
	}
	for _, n := range []string{"rpc_version", "rpc_number"} {
		if a, ok := x.sv.single[n]; ok && a.line > 0 {
			x.warnf(a.line, n, "ignored: not an RPC service")
		}
	}
}

// unloggedValues are the log_on_success and log_on_failure values sockd's
// connection records do not cover, and why. HOST, PID, EXIT, DURATION,
// ATTEMPT, TRAFFIC (bytes, for a redirect: a proxy job) and RECORD are in
// every record.
var unloggedValues = map[string]string{
	"USERID": "sockd makes no ident (RFC 1413) lookups",
}

// connectionRecords turns xinetd's log_on_success and log_on_failure into
// SockdLogConnections: xinetd wrote a line per connection and per refused
// one, and so will sockd. A wait = yes service accepts its own clients,
// which sockd never sees.
func (x *ximport) connectionRecords() {
	var ln int
	var own bool
	for _, n := range []string{"log_on_success", "log_on_failure"} {
		if x.sv.listSet[n] && len(x.sv.lists[n]) > 0 {
			ln = x.sv.listLn[n]
			own = own || ownList(x.b, n)
			for _, v := range x.sv.lists[n] {
				if why, ok := unloggedValues[strings.ToUpper(v)]; ok && ownList(x.b, n) {
					x.warnf(x.sv.listLn[n], n, "%s: not honoured: %s", v, why)
				}
			}
		}
	}
	if ln == 0 {
		return
	}
	if x.wait() {
		if own {
			x.warnf(ln, "log_on_success", "not honoured: a wait = yes service accepts its own clients, which sockd never sees to log")
		}
		return
	}
	x.j.LogConnections = true
}

// ownList reports whether the block itself gives the list attribute with a
// non-empty value (an empty "log_on_success =" asks for nothing).
func ownList(b *xblock, name string) bool {
	for _, a := range b.attrs {
		if a.name == name && len(a.vals) > 0 && a.op != "-=" {
			return true
		}
	}
	return false
}

func lineOr(ln, def int) int {
	if ln != 0 {
		return ln
	}
	return def
}

// internalName finds the built-in service an INTERNAL entry means: its
// name, or its id or name less a -stream/-dgram/-tcp/-udp suffix.
func internalName(name, id string) string {
	for _, c := range []string{name, id} {
		for _, suf := range []string{"", "-stream", "-dgram", "-tcp", "-udp"} {
			base, ok := strings.CutSuffix(c, suf)
			if !ok {
				continue
			}
			if _, known := internalServices[base]; known {
				return base
			}
		}
	}
	return ""
}

// datagramLimits drops instances and per_source of an internal datagram
// service (dropDatagramLimits), with a warning where the service itself
// sets them (from defaults they apply to other services).
func (x *ximport) datagramLimits() {
	if !dropDatagramLimits(x.j, x.sp.typ) {
		return
	}
	for _, a := range x.b.attrs {
		if a.name == "instances" || a.name == "per_source" {
			x.warnf(a.line, a.name, "not applied: xinetd answers an internal datagram service itself, with no server to count, and so does sockd")
		}
	}
}
