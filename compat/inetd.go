package compat

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sockd/sockd/internal/cfgfile"
	"github.com/sockd/sockd/job"
)

// Diag keys of the inetd.conf fields.
const (
	keyService  = "service"
	keySockType = "socket type"
	keyProtocol = "protocol"
	keyWait     = "wait"
	keyUser     = "user"
	keyServer   = "server"
	keyArgs     = "arguments"
)

// LoadInetd reads an inetd.conf file and imports its entries. An entry
// that cannot be imported yields an error Diag and no job; the other
// entries still load. The file obeys the job files' rule for a sockd
// running as this process (job.CheckFile).
func LoadInetd(path string) ([]*job.Job, job.Diags) {
	return loadInetd(path, thisUser(), systemInfo())
}

// thisUser is the job files' rule for a sockd running as this process.
func thisUser() job.LoadOptions { return job.LoadOptions{UID: os.Geteuid()} }

func loadInetd(path string, files job.LoadOptions, sys sysInfo) ([]*job.Job, job.Diags) {
	data, d, err := readConfig(path, files)
	if d != nil {
		return nil, job.Diags{*d}
	}
	if err != nil {
		return nil, job.Diags{{File: path, Severity: job.Error, Msg: err.Error()}}
	}
	return parseInetd(data, path, sys)
}

// ParseInetd imports the inetd.conf text in data; name is used in every
// message and in Job.File ("name:line"). It reads no other configuration
// file; host names in address prefixes are resolved with the system
// resolver, and the TCP wrappers' tables are read to warn about rules that
// inetd applied when run with -l.
func ParseInetd(data []byte, name string) ([]*job.Job, job.Diags) {
	return parseInetd(data, name, systemInfo())
}

// readConfig reads a configuration file of at most MaxFileSize bytes
// under the job files' rule (job.CheckFile: not group- or world-writable,
// owned by root or files.UID, a link too): a file that fails it gives its
// Diag, naming it. It never blocks: a FIFO, a directory or a device is an
// error saying so.
func readConfig(path string, files job.LoadOptions) ([]byte, *job.Diag, error) {
	f, fi, err := cfgfile.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if d := job.CheckFile(path, fi, files); d != nil {
		return nil, d, nil
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > MaxFileSize {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes", path, MaxFileSize)
	}
	return data, nil, nil
}

// inetdEntry is one configuration line (with its continuation lines).
type inetdEntry struct {
	line   int
	fields []string
	host   string // address prefix in force ("" = all addresses)
	// explicitHost is true when the service field itself carried a prefix.
	explicitHost bool
}

// inetdProto is what a protocol field means.
type inetdProto struct {
	base   string // "tcp", "udp" or "unix"
	family job.Family
	dual   bool // plain tcp/udp: both families unless a tcp6 twin exists
}

func parseInetd(data []byte, name string, sys sysInfo) ([]*job.Job, job.Diags) {
	s := &sink{}
	if len(data) > MaxFileSize {
		s.errorf(name, 0, "", "larger than %d bytes", MaxFileSize)
		return nil, s.diags
	}
	entries := splitInetd(data, name, s)

	// A service declared with both tcp and tcp6 (udp and udp6) is the BSD
	// reading, where tcp means IPv4 only. Remember the explicit v6 twins.
	v6twin := map[string]int{}
	for _, e := range entries {
		if len(e.fields) < 3 {
			continue
		}
		proto, _, _ := strings.Cut(e.fields[2], ",")
		if proto == "tcp6" || proto == "udp6" {
			k := e.host + "\x00" + e.fields[0] + "\x00" + e.fields[1] + "\x00" + proto[:3]
			if _, ok := v6twin[k]; !ok {
				v6twin[k] = e.line
			}
		}
	}

	var jobs []*job.Job
	labels := map[string]int{}
	for _, e := range entries {
		j := importInetdEntry(e, name, s, v6twin, sys)
		if j == nil {
			continue
		}
		if first, dup := labels[j.Label]; dup {
			s.errorf(name, e.line, keyService, "duplicate entry %s (first on line %d); skipped", j.Label, first)
			continue
		}
		labels[j.Label] = e.line
		jobs = append(jobs, j)
	}
	return jobs, s.diags
}

// splitInetd splits the file into entries: comments ("#" as first
// non-blank character, including Debian "#:SECTION:" markers), blank lines,
// BSD continuation lines (a line starting with a blank continues the entry
// above it) and "host:" lines that set the address prefix for the lines
// that follow.
func splitInetd(data []byte, name string, s *sink) []inetdEntry {
	var out []inetdEntry
	host := ""
	cont := false // the previous line was part of an entry
	lines := bytes.Split(data, []byte("\n"))
	for i, raw := range lines {
		ln := i + 1
		text := strings.TrimSuffix(string(raw), "\r")
		trimmed := strings.TrimLeft(text, " \t")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			cont = false
			continue
		}
		fields := strings.Fields(trimmed)
		if len(fields) > maxFields {
			s.errorf(name, ln, "", "more than %d fields; line skipped", maxFields)
			cont = false
			continue
		}
		if cont && len(out) > 0 && (text[0] == ' ' || text[0] == '\t') {
			last := &out[len(out)-1]
			if len(last.fields)+len(fields) > maxFields {
				s.errorf(name, ln, "", "more than %d fields; continuation skipped", maxFields)
				continue
			}
			last.fields = append(last.fields, fields...)
			continue
		}
		if len(fields) == 1 && strings.HasSuffix(fields[0], ":") {
			h := strings.TrimSuffix(fields[0], ":")
			if h == "*" {
				h = ""
			}
			host = h
			cont = false
			continue
		}
		e := inetdEntry{line: ln, fields: fields, host: host}
		if len(fields) > 2 && fields[2] != "unix" && strings.Contains(fields[0], ":") {
			h, svc := splitHost(fields[0])
			if h == "*" {
				h = ""
			}
			e.host, e.explicitHost, e.fields[0] = h, true, svc
		}
		out = append(out, e)
		cont = true
	}
	return out
}

// splitHost splits "host:service" at the last colon (as OpenBSD inetd
// does); "[::1]:comsat" gives "[::1]" and "comsat".
func splitHost(f string) (host, service string) {
	i := strings.LastIndexByte(f, ':')
	if i < 0 {
		return "", f
	}
	return f[:i], f[i+1:]
}

func importInetdEntry(e inetdEntry, file string, s *sink, v6twin map[string]int, sys sysInfo) *job.Job {
	f := e.fields
	if len(f) < 6 {
		s.errorf(file, e.line, "", "expected at least 6 fields (service, socket type, protocol, wait/nowait, user, server), found %d; skipped", len(f))
		return nil
	}
	service, sockType, protoField, waitField, userField, server := f[0], f[1], f[2], f[3], f[4], f[5]
	args := f[6:]

	protoName, opts, _ := strings.Cut(protoField, ",")
	if strings.HasPrefix(protoName, "rpc/") {
		s.warnf(file, e.line, keyProtocol, "RPC services are not supported (%s %s); skipped", service, protoName)
		return nil
	}
	var typ job.SockType
	switch sockType {
	case "stream":
		typ = job.Stream
	case "dgram":
		typ = job.Dgram
	case "seqpacket":
		typ = job.SeqPacket
	case "raw", "rdm":
		s.warnf(file, e.line, keySockType, "socket type %s is not supported; skipped", sockType)
		return nil
	default:
		s.errorf(file, e.line, keySockType, "unknown socket type %q (want stream, dgram or seqpacket); skipped", sockType)
		return nil
	}
	p, ok := parseInetdProto(protoName)
	if !ok {
		s.errorf(file, e.line, keyProtocol, "unknown protocol %q (want tcp, tcp4, tcp6, udp, udp4, udp6, unix or rpc/*); skipped", protoName)
		return nil
	}
	if opts != "" {
		s.warnf(file, e.line, keyProtocol, "socket buffer options %q are not honoured", opts)
	}
	switch {
	case p.base == "tcp" && typ != job.Stream, p.base == "udp" && typ != job.Dgram:
		s.errorf(file, e.line, keyProtocol, "protocol %s does not go with socket type %s; skipped", protoName, sockType)
		return nil
	}
	if p.base != "unix" && strings.ContainsRune(service, '/') {
		s.warnf(file, e.line, keyService, "service %q: TCPMUX and other slash forms are not supported; skipped", service)
		return nil
	}

	label := "inetd." + service + "." + protoName
	if e.explicitHost && e.host != "" {
		label += "@" + strings.Trim(e.host, "[]")
	}
	j := newJob("inetd", file, e.line, label)

	sp := sockSpec{typ: typ, family: p.family}
	group := groupName(service)
	if p.base == "unix" {
		if service == "" || !filepath.IsAbs(service) {
			s.errorf(file, e.line, keyService, "unix socket path %q is not absolute; skipped", service)
			return nil
		}
		if len(service) > job.MaxUnixPath {
			s.errorf(file, e.line, keyService, "unix socket path is %d bytes long; Unix socket paths are limited to %d bytes: choose a shorter path; skipped", len(service), job.MaxUnixPath)
			return nil
		}
		sp.path = service
		group = groupName(filepath.Base(service))
	} else {
		sp.proto = p.base
		port, err := resolvePort(p.base, service)
		if err != nil {
			s.errorf(file, e.line, keyService, "%v; skipped", err)
			return nil
		}
		sp.service, sp.port = service, port
		if p.dual {
			k := e.host + "\x00" + service + "\x00" + sockType + "\x00" + p.base
			if twin, ok := v6twin[k]; ok {
				sp.family = job.IPv4
				s.warnf(file, e.line, keyProtocol, "%s taken as IPv4 only because line %d declares the same service on %s6 (the BSD meaning; alone, %s means IPv6 and IPv4 as in Debian's openbsd-inetd)", protoName, twin, p.base, protoName)
			}
		}
		if e.host != "" {
			for _, h := range strings.Split(e.host, ",") {
				h = strings.Trim(h, "[]")
				if h == "" || h == "*" {
					sp.nodes = nil
					break
				}
				sp.nodes = append(sp.nodes, h)
			}
		}
	}

	// wait/nowait[.max] | wait/nowait[/max-child[/per-ip-per-minute[/child-per-ip]]]
	if !applyInetdWait(j, waitField, file, e.line, s) {
		return nil
	}

	user, group2, class := splitUser(userField)
	if class != "" {
		s.warnf(file, e.line, keyUser, "login class %q is not honoured", class)
	}
	if user == "" {
		s.errorf(file, e.line, keyUser, "empty user name in %q; skipped", userField)
		return nil
	}
	j.UserName, j.GroupName = user, group2

	if server == "internal" {
		name := service
		if _, ok := internalServices[name]; !ok {
			name = internalByPort(sp.port)
		}
		if p.base == "unix" || name == "" {
			s.errorf(file, e.line, keyServer, "internal service %q is not provided by sockd (it serves echo, discard, chargen, daytime and time); skipped", service)
			return nil
		}
		if len(args) > 0 {
			s.warnf(file, e.line, keyArgs, "arguments of internal service %s are ignored: %s", name, strings.Join(args, " "))
		}
		j.Internal = name
		j.Inetd = nil // sockd answers itself; wait/nowait does not apply
	} else {
		checkServerPath(s, file, e.line, keyServer, server)
		if len(args) == 0 {
			s.warnf(file, e.line, keyArgs, "no arguments: argv[0] will be the server path")
		}
		setProgram(j, server, args)
		warnWrapped(s, file, e.line, j, sys.wrap)
	}
	if j.Inetd != nil && !j.Inetd.Wait && typ == job.Dgram {
		s.errorf(file, e.line, keyWait, "%s %s nowait: a datagram socket has no connection to accept, so sockd would never start %s and its datagrams would go unanswered: write wait (as inetd runs every dgram service); skipped", sockType, protoName, server)
		return nil
	}
	dropWaitLimits(j) // inetd's rate for a wait server is a restart guard, which sockd's wait mode has too
	if dropDatagramLimits(j, typ) {
		s.warnf(file, e.line, keyWait, "the child limits of %s are not applied: inetd answers internal datagram services itself, with no child to count, and so does sockd", waitField)
	}

	if err := attachSocket(j, group, sp, sys.lookup); err != nil {
		s.errorf(file, e.line, keyService, "%v; skipped", err)
		return nil
	}
	return j
}

func parseInetdProto(p string) (inetdProto, bool) {
	switch p {
	case "tcp", "udp":
		return inetdProto{base: p, family: job.FamilyUnspec, dual: true}, true
	case "tcp4", "udp4":
		return inetdProto{base: p[:3], family: job.IPv4}, true
	case "tcp6", "udp6", "tcp6only", "udp6only":
		return inetdProto{base: p[:3], family: job.IPv6}, true
	case "tcp46", "udp46":
		return inetdProto{base: p[:3], family: job.FamilyUnspec}, true
	case "unix":
		return inetdProto{base: "unix", family: job.Unix}, true
	}
	return inetdProto{}, false
}

// applyInetdWait parses the wait/nowait field into Inetd and Limits.
func applyInetdWait(j *job.Job, field, file string, line int, s *sink) bool {
	var rest string
	switch {
	case strings.HasPrefix(field, "nowait"):
		j.Inetd = &job.Inetd{Wait: false}
		rest = field[len("nowait"):]
	case strings.HasPrefix(field, "wait"):
		j.Inetd = &job.Inetd{Wait: true}
		rest = field[len("wait"):]
	default:
		s.errorf(file, line, keyWait, "%q: want wait or nowait; skipped", field)
		return false
	}
	j.Limits.Rate = float64(InetdDefaultRate) / 60
	j.Limits.Burst = InetdDefaultRate
	// NetBSD accept filter: nowait:dataready[.max]
	if strings.HasPrefix(rest, ":") {
		end := strings.IndexAny(rest, "./")
		if end < 0 {
			end = len(rest)
		}
		s.warnf(file, line, keyWait, "accept filter %q is not honoured", rest[1:end])
		rest = rest[end:]
	}
	num := func(v, what string) (int, bool) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.errorf(file, line, keyWait, "%q: %s must be a non-negative number; skipped", field, what)
			return 0, false
		}
		return n, true
	}
	switch {
	case rest == "":
	case rest[0] == '.':
		// BSD, Solaris, GNU: maximum invocations per minute.
		n, ok := num(rest[1:], "the invocation limit after the dot")
		if !ok {
			return false
		}
		if n == 0 {
			j.Limits.Rate, j.Limits.Burst = 0, 0
		} else {
			j.Limits.Rate, j.Limits.Burst = float64(n)/60, n
		}
	case rest[0] == '/':
		// FreeBSD: max-child[/max-connections-per-ip-per-minute[/max-child-per-ip]]
		parts := strings.Split(rest[1:], "/")
		if len(parts) > 3 {
			s.errorf(file, line, keyWait, "%q: at most three /-separated limits; skipped", field)
			return false
		}
		vals := make([]int, len(parts))
		for i, p := range parts {
			n, ok := num(p, "each /-separated limit")
			if !ok {
				return false
			}
			vals[i] = n
		}
		if vals[0] > 0 {
			j.Limits.MaxChildren = vals[0]
		} else {
			j.Limits.MaxChildren = Unlimited
		}
		perMin, perIP := 0, 0
		if len(vals) > 1 {
			perMin = vals[1]
		}
		if len(vals) > 2 {
			perIP = vals[2]
		}
		switch {
		case perIP > 0:
			j.Limits.MaxPerSource = perIP
			if perMin > 0 {
				s.warnf(file, line, keyWait, "max-connections-per-ip-per-minute %d is not honoured (sockd limits concurrent connections per source, set from max-child-per-ip %d)", perMin, perIP)
			}
		case perMin > 0:
			j.Limits.MaxPerSource = perMin
			s.warnf(file, line, keyWait, "max-connections-per-ip-per-minute %d approximated as at most %d concurrent connections per source address (sockd has no per-source rate)", perMin, perMin)
		}
	default:
		s.errorf(file, line, keyWait, "%q: want wait or nowait with an optional .max or /max-child suffix; skipped", field)
		return false
	}
	return true
}

// splitUser splits user[:group][/class] or user.group.
func splitUser(f string) (user, group, class string) {
	if i := strings.IndexByte(f, '/'); i >= 0 {
		f, class = f[:i], f[i+1:]
	}
	if u, g, ok := strings.Cut(f, ":"); ok {
		return u, g, class
	}
	if u, g, ok := strings.Cut(f, "."); ok {
		return u, g, class
	}
	return f, "", class
}

// warnWrapped warns when hosts.allow or hosts.deny can refuse clients of
// the server: inetd applies them only when run with -l (Debian) or -w
// (FreeBSD), an option inetd.conf does not show, and sockd never does. A
// server that is tcpd applies them itself, under sockd as under inetd.
func warnWrapped(s *sink, file string, line int, j *job.Job, w *wrapRules) {
	if filepath.Base(j.Program) == "tcpd" {
		return
	}
	names := []string{filepath.Base(j.Program)}
	if len(j.Argv) > 0 && filepath.Base(j.Argv[0]) != names[0] {
		names = append(names, filepath.Base(j.Argv[0]))
	}
	for _, n := range names {
		if r := w.restricting(n); r != nil {
			s.warnf(file, line, keyServer, "%s:%d (%q) can refuse clients of %s, but only an inetd run with -l (Debian) or -w (FreeBSD) applied it, and sockd has no TCP wrappers: if yours did, put /usr/sbin/tcpd before the server (it applies the rule itself)", r.file, r.line, r.text, n)
			return
		}
	}
}
