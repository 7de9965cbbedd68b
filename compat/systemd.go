package compat

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sockd/sockd/job"
)

// SystemdOptions change how LoadSystemdWith reads units.
type SystemdOptions struct {
	// Files is the rule every file read (units, drop-ins, environment
	// files) obeys: job.CheckFile for the sockd of Files.UID.
	Files job.LoadOptions
	// OnRead, when set, is called with the path of every file read.
	OnRead func(path string)
	// UID is the user whose service manager sockd stands in for: 0 is
	// systemd's system manager (%t is /run, %h /root), another uid that
	// user's manager (%t is $XDG_RUNTIME_DIR or /run/user/UID).
	UID int
}

// LoadSystemd imports systemd socket units: each path is a UNIT.socket
// file (an instance NAME@INST.socket of a template file NAME@.socket beside
// it too) or a directory, whose every non-template *.socket is read. A
// socket unit is read with its drop-ins and the service it activates
// (NAME@.service for Accept=yes, Service= or NAME.service otherwise). An
// Accept=yes unit becomes an inetd nowait job labelled
// "systemd.NAME.socket"; the Accept=no units of one service become its
// handoff job labelled "systemd.SERVICE" (an inetd wait job when the
// service has StandardInput=socket). Every file read obeys the job files'
// rule for a sockd running as this process, and specifiers resolve for its
// service manager.
func LoadSystemd(paths ...string) ([]*job.Job, job.Diags) {
	return LoadSystemdWith(paths, SystemdOptions{Files: thisUser(), UID: os.Geteuid()})
}

// LoadSystemdWith is LoadSystemd with options.
func LoadSystemdWith(paths []string, opts SystemdOptions) ([]*job.Job, job.Diags) {
	return loadSystemd(paths, opts, systemdHost(opts.UID))
}

// systemdHost is the host as the service manager of uid sees it.
func systemdHost(uid int) *sdHost {
	h := &sdHost{uid: uid, arch: sdArch(), exists: func(p string) bool { _, err := os.Stat(p); return err == nil }}
	h.lookupUser = func(name string) (int, int, string, error) {
		u, err := user.Lookup(name)
		if err != nil {
			return 0, 0, "", err
		}
		id, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return id, gid, u.HomeDir, nil
	}
	h.lookupUserID = func(id int) (string, error) {
		u, err := user.LookupId(strconv.Itoa(id))
		if err != nil {
			return "", err
		}
		return u.Username, nil
	}
	h.lookupGroup = func(name string) (int, error) {
		g, err := user.LookupGroup(name)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(g.Gid)
	}
	h.lookupGroupID = func(id int) (string, error) {
		g, err := user.LookupGroupId(strconv.Itoa(id))
		if err != nil {
			return "", err
		}
		return g.Name, nil
	}
	h.hostname, _ = os.Hostname()
	if data, err := os.ReadFile("/etc/machine-id"); err == nil {
		h.machineID = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/proc/sys/net/ipv6/bindv6only"); err == nil {
		h.bindv6only = strings.TrimSpace(string(data)) == "1"
	}
	h.user, h.home, h.shell = "root", "/root", "/bin/sh"
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		h.user, h.home = u.Username, u.HomeDir
		h.gid, _ = strconv.Atoi(u.Gid)
		if g, err := user.LookupGroupId(u.Gid); err == nil {
			h.group = g.Name
		}
	}
	if sh := passwdShell(h.user); sh != "" {
		h.shell = sh
	}
	if uid == 0 {
		h.runtime, h.state, h.cache, h.logs, h.config = "/run", "/var/lib", "/var/cache", "/var/log", "/etc"
		if h.group == "" {
			h.group = "root"
		}
		return h
	}
	h.runtime = os.Getenv("XDG_RUNTIME_DIR")
	if h.runtime == "" || os.Geteuid() != uid {
		h.runtime = fmt.Sprintf("/run/user/%d", uid)
	}
	h.state = filepath.Join(h.home, ".local", "state")
	h.cache = filepath.Join(h.home, ".cache")
	h.logs = filepath.Join(h.home, ".local", "state", "log")
	h.config = filepath.Join(h.home, ".config")
	return h
}

// passwdShell is the login shell of name in /etc/passwd.
func passwdShell(name string) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ":")
		if len(fs) == 7 && fs[0] == name {
			return fs[6]
		}
	}
	return ""
}

// sdLoader is one load of socket units.
type sdLoader struct {
	s      *sink
	opts   SystemdOptions
	host   *sdHost
	nfiles int
	// services are the service units read, by directory and name.
	services map[string]*sdUnit
	// tried are the socket unit files read, imported or not.
	tried map[string]bool
}

// sdListen is one Listen*= line.
type sdListen struct {
	e    *sdEntry
	sock job.Socket
	ip   bool
}

// sdSock is one socket unit, read.
type sdSock struct {
	u        *sdUnit
	dirs     []string // where its service is looked up
	accept   bool
	listens  []sdListen
	fdname   string
	service  string   // the service it activates
	svcEntry *sdEntry // Service=, nil for the default
	limits   job.Limits
	allow    []string
	deny     []string
	access   *sdEntry // the first IPAddressAllow/Deny line, for messages
}

func loadSystemd(paths []string, opts SystemdOptions, host *sdHost) ([]*job.Job, job.Diags) {
	l := &sdLoader{s: &sink{}, opts: opts, host: host, services: map[string]*sdUnit{}, tried: map[string]bool{}}
	type cand struct{ name, path string }
	var cands []cand
	seen := map[string]bool{}
	add := func(name, path string) {
		k := filepath.Clean(path) + "\x00" + name
		if !seen[k] {
			seen[k] = true
			cands = append(cands, cand{name, path})
		}
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			if t := templateOf(filepath.Base(p)); t != "" && unitType(p) == "socket" {
				if _, terr := os.Stat(filepath.Join(filepath.Dir(p), t)); terr == nil {
					add(filepath.Base(p), filepath.Join(filepath.Dir(p), t))
					continue
				}
			}
			if os.IsNotExist(err) && isMasked(p) {
				l.s.warnf(p, 0, "", "masked (a link to /dev/null): not loaded")
				continue
			}
			l.s.errorf(p, 0, "", "%v", err)
			continue
		}
		if !fi.IsDir() {
			name := filepath.Base(p)
			switch unitType(name) {
			case "socket":
				if _, inst, tmpl := unitPrefix(name); tmpl && inst == "" {
					l.s.errorf(p, 0, "", "a template socket unit: name an instance of it (NAME@INSTANCE.socket) to load it")
					continue
				}
				add(name, p)
			case "service":
				l.s.errorf(p, 0, "", "a service unit: give the socket unit that activates it (its .socket); sockd imports socket units with their services")
			default:
				l.s.errorf(p, 0, "", "not a socket unit: a systemd socket unit's name ends in .socket")
			}
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			l.s.errorf(p, 0, "", "%v", err)
			continue
		}
		for _, e := range ents {
			name := e.Name()
			switch unitType(name) {
			case "socket":
				if _, inst, tmpl := unitPrefix(name); tmpl && inst == "" {
					l.s.warnf(filepath.Join(p, name), 0, "", "a template socket unit: not loaded from a directory (name an instance, NAME@INSTANCE.socket, to load one)")
					continue
				}
				if e.IsDir() {
					continue
				}
				add(name, filepath.Join(p, name))
			case "path", "timer", "automount":
				l.s.warnf(filepath.Join(p, name), 0, "", "not imported: sockd imports socket units (a %s unit's trigger has no socket)", unitType(name))
			}
		}
	}

	var socks []*sdSock
	for _, c := range cands {
		if isMasked(c.path) {
			l.s.warnf(c.path, 0, "", "masked (a link to /dev/null): not loaded")
			continue
		}
		dirs := l.searchDirs(filepath.Dir(c.path))
		if len(dirs) > 1 {
			if top, masked := findUnit(c.name, dirs); top != "" && filepath.Clean(top) != filepath.Clean(c.path) {
				if masked {
					l.s.warnf(c.path, 0, "", "masked by %s (a link to /dev/null): systemd does not run it, so sockd does not load it", top)
					continue
				}
				l.s.warnf(c.path, 0, "", "systemd reads %s instead (it has priority); sockd reads the file named", top)
			}
		}
		l.tried[filepath.Clean(c.path)+"\x00"+c.name] = true
		u := l.readUnit(c.name, c.path, dirs)
		if u == nil {
			continue
		}
		if sk := l.socketUnit(u, dirs); sk != nil {
			socks = append(socks, sk)
		}
	}

	// Accept=yes units are one job each; Accept=no units are grouped by the
	// service they activate.
	var jobs []*job.Job
	groups := map[string][]*sdSock{}
	var order []string
	for _, sk := range socks {
		if sk.accept {
			if j := l.nowaitJob(sk); j != nil {
				jobs = append(jobs, j)
			}
			continue
		}
		k := sk.dirs[0] + "\x00" + sk.service
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], sk)
	}
	for _, k := range order {
		if j := l.serviceJob(groups[k]); j != nil {
			jobs = append(jobs, j)
		}
	}
	return jobs, l.s.diags
}

// fail reports an error that keeps unit u from being imported.
func (l *sdLoader) fail(u *sdUnit, e *sdEntry, format string, args ...any) {
	file, line, key := u.file, 0, ""
	if e != nil {
		file, line, key = e.file, e.line, e.key
	}
	l.s.errorf(file, line, key, format+"; unit %s skipped", append(args, u.name)...)
}

func (l *sdLoader) warn(e *sdEntry, format string, args ...any) {
	l.s.warnf(e.file, e.line, e.key, format, args...)
}

// review reports every directive of u that the importer does not map,
// by its class, and returns false when one is an error. section is the
// unit type's own section ("Socket", "Service").
func (l *sdLoader) review(u *sdUnit, extra func(e *sdEntry) bool) bool {
	ok := true
	typ := unitType(u.name)
	// Only what is in force counts: an empty assignment resets what came
	// before it.
	last := map[string]int{}
	for i, e := range u.entries {
		if e.val == "" {
			last[e.section+"\x00"+e.key] = i
		}
	}
	warnedSection := map[string]bool{}
	for i, e := range u.entries {
		if r, reset := last[e.section+"\x00"+e.key]; reset && i <= r {
			continue
		}
		if extra != nil && extra(e) {
			continue
		}
		d, known := classify(typ, e.section, e.key)
		if !known {
			if own := map[string]string{"socket": "Socket", "service": "Service"}[typ]; e.section != own && e.section != "Unit" && e.section != "Install" {
				if strings.HasPrefix(e.section, "X-") {
					continue
				}
				if !warnedSection[e.file+e.section] {
					warnedSection[e.file+e.section] = true
					l.s.warnf(e.file, e.line, "", "section [%s] is not part of a %s unit; ignored", e.section, typ)
				}
				continue
			}
			l.warn(e, "unknown directive in [%s]; ignored", e.section)
			continue
		}
		switch d.class {
		case sdWarn:
			l.warn(e, "not honoured: %s", d.why)
		case sdSandbox:
			l.warn(e, "not honoured: sockd does not sandbox the service (this only narrows what the service itself may do)")
		case sdRefuse:
			l.fail(u, e, "%s", d.why)
			ok = false
		}
	}
	return ok
}

// socketUnit reads a socket unit's [Socket] section. It returns nil when
// the unit cannot be imported (reported).
func (l *sdLoader) socketUnit(u *sdUnit, dirs []string) *sdSock {
	sk := &sdSock{u: u, dirs: dirs}
	ok := l.review(u, nil)
	if e := u.get("Socket", "Accept"); e != nil {
		b, err := sdBool(e.val)
		if err != nil {
			l.fail(u, e, "%v", err)
			return nil
		}
		sk.accept = b
	}
	if !l.listens(sk) {
		ok = false
	}
	prefix, inst, _ := unitPrefix(u.name)
	if e := u.get("Socket", "Service"); e != nil {
		v, err := l.expand(u, e.val)
		switch {
		case err != nil:
			l.fail(u, e, "%v", err)
			ok = false
		case sk.accept:
			l.fail(u, e, "Service= cannot be used with Accept=yes (systemd refuses it too: each connection gets an instance of %s@.service)", prefix)
			ok = false
		case unitType(v) != "service" || strings.Contains(v, "/"):
			l.fail(u, e, "%q is not a service unit name (NAME.service)", v)
			ok = false
		default:
			sk.service, sk.svcEntry = v, e
		}
	} else if sk.accept {
		sk.service = prefix + "@.service"
	} else {
		sk.service = prefix + ".service"
		if inst != "" {
			sk.service = prefix + "@" + inst + ".service"
		}
	}
	sk.fdname = u.name
	if e := u.get("Socket", "FileDescriptorName"); e != nil {
		v, err := l.expand(u, e.val)
		switch {
		case err != nil:
			l.fail(u, e, "%v", err)
			ok = false
		case sk.accept:
			l.warn(e, "no effect with Accept=yes: the service gets the connection, not the listening socket")
		case !validFDName(v):
			l.fail(u, e, "%q is not a usable name: up to 255 printable characters without ':'", v)
			ok = false
		default:
			sk.fdname = v
		}
	}
	if !l.socketFiles(sk) || !l.socketLimits(sk) || !l.socketAccess(sk) || !l.socketOptions(sk) {
		ok = false
	}
	if !ok {
		return nil
	}
	return sk
}

func validFDName(v string) bool {
	if v == "" || len(v) > 255 {
		return false
	}
	for _, c := range v {
		if c < 0x21 || c > 0x7e || c == ':' {
			return false
		}
	}
	return true
}

// listens reads the Listen*= lines.
func (l *sdLoader) listens(sk *sdSock) bool {
	u := sk.u
	bind := "default"
	if e := u.get("Socket", "BindIPv6Only"); e != nil {
		switch e.val {
		case "default", "both", "ipv6-only":
			bind = e.val
		default:
			l.fail(u, e, "%q: want default, both or ipv6-only", e.val)
			return false
		}
	}
	if e := u.get("Socket", "SocketProtocol"); e != nil {
		l.fail(u, e, "%s sockets are not supported: sockd opens TCP and UDP sockets only", e.val)
		return false
	}
	var kinds []*sdEntry
	for _, e := range u.entries {
		if e.section == "Socket" && strings.HasPrefix(e.key, "Listen") {
			if e.val == "" {
				// An empty Listen*= resets every Listen*= before it.
				kinds = nil
				continue
			}
			kinds = append(kinds, e)
		}
	}
	if len(kinds) == 0 {
		l.fail(u, nil, "the unit has no Listen*= directive, so it has no socket")
		return false
	}
	ok := true
	for _, e := range kinds {
		ls, good := l.listen(sk, e, bind)
		if !good {
			ok = false
			continue
		}
		sk.listens = append(sk.listens, ls...)
	}
	return ok
}

// listen reads one Listen*= line into its sockets.
func (l *sdLoader) listen(sk *sdSock, e *sdEntry, bind string) ([]sdListen, bool) {
	u := sk.u
	v, err := l.expand(u, e.val)
	if err != nil {
		l.fail(u, e, "%v", err)
		return nil, false
	}
	var typ job.SockType
	switch e.key {
	case "ListenStream":
		typ = job.Stream
	case "ListenDatagram":
		typ = job.Dgram
	case "ListenSequentialPacket":
		typ = job.SeqPacket
	case "ListenFIFO":
		switch {
		case sk.accept:
			l.fail(u, e, "Accept=yes needs a stream or sequential-packet socket: a FIFO has no connection to accept (systemd refuses it too)")
			return nil, false
		case !filepath.IsAbs(v):
			l.fail(u, e, "%q is not an absolute path", v)
			return nil, false
		}
		return []sdListen{{e: e, sock: job.Socket{Type: job.FIFO, Family: job.Unix, PathName: filepath.Clean(v), Passive: true}}}, true
	case "ListenSpecial":
		l.fail(u, e, "special files (%s) are not supported: sockd opens sockets only", v)
		return nil, false
	case "ListenNetlink":
		l.fail(u, e, "netlink sockets (%s) are not supported: sockd opens TCP, UDP and Unix sockets only", v)
		return nil, false
	case "ListenMessageQueue":
		l.fail(u, e, "POSIX message queues (%s) are not supported: sockd opens sockets only", v)
		return nil, false
	case "ListenUSBFunction":
		l.fail(u, e, "USB FunctionFS endpoints are not supported: sockd opens sockets only")
		return nil, false
	default:
		l.fail(u, e, "unknown Listen directive")
		return nil, false
	}
	if sk.accept && typ == job.Dgram {
		l.fail(u, e, "Accept=yes needs a stream or sequential-packet socket: a datagram socket has no connection to accept (systemd refuses it too)")
		return nil, false
	}
	s := job.Socket{Type: typ, Passive: true}
	switch {
	case strings.HasPrefix(v, "/") || strings.HasPrefix(v, "@"):
		if len(v) > job.MaxUnixPath {
			l.fail(u, e, "path is %d bytes long; Unix socket paths are limited to %d bytes", len(v), job.MaxUnixPath)
			return nil, false
		}
		if v == "@" {
			l.fail(u, e, "an abstract socket name needs at least one character after @")
			return nil, false
		}
		s.Family, s.PathName = job.Unix, filepath.Clean(v)
		if v[0] == '@' {
			s.PathName = v
		}
		return []sdListen{{e: e, sock: s}}, true
	case strings.HasPrefix(v, "vsock:"):
		l.fail(u, e, "AF_VSOCK sockets (%s) are not supported: sockd opens TCP, UDP and Unix sockets, and a vsock address has no equivalent among them", v)
		return nil, false
	}
	if typ == job.SeqPacket {
		l.fail(u, e, "sequential-packet sockets are Unix sockets: give a path (or @name), not %q", v)
		return nil, false
	}
	s.Protocol = "tcp"
	if typ == job.Dgram {
		s.Protocol = "udp"
	}
	host, port, err := sdAddress(v)
	if err != nil {
		l.fail(u, e, "%v", err)
		return nil, false
	}
	s.Port, s.ServiceName = port, strconv.Itoa(port)
	switch {
	case !host.IsValid():
		// A port alone: systemd's one dual-stack socket, or IPv6 only.
		s.Family = job.FamilyUnspec
		if bind == "ipv6-only" || bind == "default" && l.host.bindv6only {
			s.Family = job.IPv6
		}
	case host.Is6() && host.IsUnspecified():
		s.Family = job.FamilyUnspec
		if bind == "ipv6-only" || bind == "default" && l.host.bindv6only {
			s.Family = job.IPv6
		}
	case host.Is4():
		s.Family, s.NodeName = job.IPv4, host.String()
	default:
		s.Family, s.NodeName = job.IPv6, host.String()
	}
	return []sdListen{{e: e, sock: s, ip: true}}, true
}

// sdAddress parses an inet Listen*= address: PORT, ADDR:PORT or
// [ADDR]:PORT. An address with an interface (%dev) is refused.
func sdAddress(v string) (netip.Addr, int, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 1 || n > 65535 {
			return netip.Addr{}, 0, fmt.Errorf("port %d is out of range (1-65535)", n)
		}
		return netip.Addr{}, n, nil
	}
	ap, err := netip.ParseAddrPort(v)
	if err != nil {
		if strings.Contains(v, "%") {
			return netip.Addr{}, 0, fmt.Errorf("%q names an interface: sockd cannot bind a socket to one device, so it would listen on every interface; give the address alone, or restrict the clients with IPAddressAllow= on an Accept=yes unit", v)
		}
		return netip.Addr{}, 0, fmt.Errorf("%q is not a port, ADDRESS:PORT or [IPv6]:PORT (systemd takes no host names)", v)
	}
	if ap.Addr().Zone() != "" {
		return netip.Addr{}, 0, fmt.Errorf("%q names an interface (%%%s): sockd cannot bind a socket to one device; give the address without it", v, ap.Addr().Zone())
	}
	if ap.Port() == 0 {
		return netip.Addr{}, 0, fmt.Errorf("%q has port 0", v)
	}
	return ap.Addr().Unmap(), int(ap.Port()), nil
}

// socketFiles reads SocketUser=, SocketGroup= and SocketMode= into the
// unit's Unix sockets. SocketMode defaults to 0666, as in systemd.
func (l *sdLoader) socketFiles(sk *sdSock) bool {
	u := sk.u
	mode := os.FileMode(0o666)
	var owner, group *int
	ok := true
	if e := u.get("Socket", "SocketMode"); e != nil {
		m, err := sdMode(e.val)
		if err != nil {
			l.fail(u, e, "%v", err)
			ok = false
		} else {
			if m&^0o777 != 0 {
				l.warn(e, "%#o has bits beyond the permission bits; using %#o", uint32(m), uint32(m&0o777))
			}
			mode = m & 0o777
		}
	}
	if e := u.get("Socket", "SocketUser"); e != nil {
		v, err := l.expand(u, e.val)
		if err == nil {
			var id int
			if id, err = strconv.Atoi(v); err != nil {
				id, _, _, err = l.host.lookupUser(v)
			}
			owner = &id
		}
		if err != nil {
			l.fail(u, e, "cannot resolve %q: %v", e.val, err)
			ok = false
		}
	}
	if e := u.get("Socket", "SocketGroup"); e != nil {
		v, err := l.expand(u, e.val)
		if err == nil {
			var id int
			if id, err = strconv.Atoi(v); err != nil {
				id, err = l.host.lookupGroup(v)
			}
			group = &id
		}
		if err != nil {
			l.fail(u, e, "cannot resolve %q: %v", e.val, err)
			ok = false
		}
	}
	files := false
	for i := range sk.listens {
		s := &sk.listens[i].sock
		if s.Family != job.Unix || job.IsAbstract(s.PathName) {
			continue
		}
		files = true
		m := mode
		s.PathMode, s.PathOwner, s.PathGroup = &m, owner, group
	}
	if !files {
		for _, k := range []string{"SocketMode", "SocketUser", "SocketGroup", "DirectoryMode"} {
			if e := u.get("Socket", k); e != nil {
				l.warn(e, "no effect: the unit has no socket file (systemd ignores it too on inet and abstract sockets)")
			}
		}
	}
	return ok
}

// socketLimits reads MaxConnections=, MaxConnectionsPerSource=,
// TriggerLimit*= and PollLimit*= into SockdLimits (Accept=yes units).
func (l *sdLoader) socketLimits(sk *sdSock) bool {
	u := sk.u
	lim := job.Limits{MaxChildren: 64, Pause: DefaultPause}
	ok := true
	num := func(key string, min, max int) (int, *sdEntry) {
		e := u.get("Socket", key)
		if e == nil {
			return -1, nil
		}
		n, err := strconv.Atoi(e.val)
		if err != nil || n < min || n > max {
			l.fail(u, e, "%q: want a number from %d to %d", e.val, min, max)
			ok = false
			return -1, e
		}
		return n, e
	}
	dur := func(key string) (time.Duration, *sdEntry) {
		e := u.get("Socket", key)
		if e == nil {
			return -1, nil
		}
		d, err := sdTime(e.val, time.Second)
		if err != nil {
			l.fail(u, e, "%v", err)
			ok = false
			return -1, e
		}
		return d, e
	}
	maxc, me := num("MaxConnections", 1, Unlimited)
	perSrc, pe := num("MaxConnectionsPerSource", 0, Unlimited)
	tInt, te := dur("TriggerLimitIntervalSec")
	tBurst, tbe := num("TriggerLimitBurst", 0, 1<<30)
	pInt, pie := dur("PollLimitIntervalSec")
	pBurst, pbe := num("PollLimitBurst", 0, 1<<30)
	if !sk.accept {
		for _, e := range []*sdEntry{me, pe, te, tbe, pie, pbe} {
			if e != nil {
				l.warn(e, "not honoured with Accept=no: sockd hands the socket to the service and never accepts for it (ThrottleInterval, from RestartSec=, spaces the service's starts)")
			}
		}
		sk.limits = job.Limits{MaxChildren: DefaultMaxChildren, Pause: DefaultPause}
		return ok
	}
	if maxc > 0 {
		lim.MaxChildren = maxc
	}
	if perSrc > 0 {
		lim.MaxPerSource = perSrc
	}
	// TriggerLimit*: systemd's defaults for Accept=yes are 200 in 2 s,
	// after which it fails the socket until restarted; sockd pauses
	// accepting for PauseSeconds and resumes by itself.
	if tInt < 0 {
		tInt = 2 * time.Second
	}
	if tBurst < 0 {
		tBurst = 200
	}
	if tInt > 0 && tBurst > 0 && tInt != sdInfinity {
		lim.Rate = float64(tBurst) / tInt.Seconds()
		lim.Burst = tBurst
	}
	// PollLimit*: systemd pauses the socket for the rest of the interval;
	// so does sockd, for PauseSeconds. The stricter of the two limits wins.
	if pInt > 0 && pBurst > 0 && pInt != sdInfinity {
		r := float64(pBurst) / pInt.Seconds()
		if lim.Rate == 0 || r < lim.Rate {
			lim.Rate = r
		}
		if lim.Burst == 0 || pBurst < lim.Burst {
			lim.Burst = pBurst
		}
		lim.Pause = time.Duration(max(1, int64((pInt+time.Second-1)/time.Second))) * time.Second
	}
	sk.limits = lim
	return ok
}

// socketAccess reads IPAddressAllow= and IPAddressDeny=.
func (l *sdLoader) socketAccess(sk *sdSock) bool {
	u := sk.u
	var allow, deny []netip.Prefix
	ok := true
	for _, k := range []string{"IPAddressAllow", "IPAddressDeny"} {
		for _, e := range u.all("Socket", k) {
			if sk.access == nil || e.file == sk.access.file && e.line < sk.access.line {
				sk.access = e
			}
			ps, err := sdPrefixes(e.val)
			if err != nil {
				l.fail(u, e, "%v", err)
				ok = false
				continue
			}
			if k == "IPAddressAllow" {
				allow = append(allow, ps...)
			} else {
				deny = append(deny, ps...)
			}
		}
	}
	if !ok || sk.access == nil {
		return ok
	}
	ip := false
	for _, ls := range sk.listens {
		ip = ip || ls.ip
	}
	if !ip {
		l.warn(sk.access, "no effect: the unit has no IP socket")
		return true
	}
	sk.allow, sk.deny = sdAccess(allow, deny)
	if len(sk.allow)+len(sk.deny) > 0 && !sk.accept {
		l.fail(u, sk.access, "cannot be enforced with Accept=no: sockd hands the socket to the service and never sees its clients (systemd filters their packets); use Accept=yes, or restrict access in the service or a firewall")
		return false
	}
	return true
}

// loadService reads the service unit name, looked up in dirs (cached).
// It returns nil when it is missing or cannot be read (reported against
// the socket unit, at its Service= line when given).
func (l *sdLoader) loadService(sk *sdSock) *sdUnit {
	k := sk.dirs[0] + "\x00" + sk.service
	if u, ok := l.services[k]; ok {
		return u
	}
	path, masked := findUnit(sk.service, sk.dirs)
	var u *sdUnit
	switch {
	case path == "":
		l.fail(sk.u, sk.svcEntry, "the service it activates, %s, is not in %s", sk.service, strings.Join(sk.dirs, ", "))
	case masked:
		l.fail(sk.u, sk.svcEntry, "the service it activates, %s, is masked (%s is a link to /dev/null)", sk.service, path)
	default:
		u = l.readUnit(sk.service, path, sk.dirs)
		if u == nil {
			l.fail(sk.u, sk.svcEntry, "the service it activates, %s, cannot be read", sk.service)
		}
	}
	l.services[k] = u
	return u
}

// nowaitJob makes the inetd nowait job of an Accept=yes socket unit.
func (l *sdLoader) nowaitJob(sk *sdSock) *job.Job {
	svc := l.loadService(sk)
	if svc == nil {
		return nil
	}
	j := newJob("systemd", sk.u.file, 0, "systemd."+sk.u.name)
	j.File = sk.u.file
	j.Inetd = &job.Inetd{Wait: false}
	j.Limits = sk.limits
	j.Limits.Allow, j.Limits.Deny = sk.allow, sk.deny
	stdin := svc.get("Service", "StandardInput")
	if stdin == nil || stdin.val != "socket" {
		at := stdin
		if at == nil {
			l.fail(svc, nil, "with Accept=yes and no StandardInput=socket, systemd passes the connection as fd 3 (LISTEN_FDS=1); sockd's inetd mode passes it on fds 0, 1 and 2 only: if the program reads its connection on standard input, add StandardInput=socket")
		} else {
			l.fail(svc, at, "with Accept=yes and StandardInput=%s, systemd passes the connection as fd 3 (LISTEN_FDS=1); sockd's inetd mode passes it on fds 0, 1 and 2 only: if the program reads its connection on standard input, set StandardInput=socket", at.val)
		}
		return nil
	}
	if !l.service(j, svc, job.ModeInetdNowait, []*sdSock{sk}) {
		return nil
	}
	l.attach(j, []*sdSock{sk})
	return j
}

// serviceJob makes the job of the service that the Accept=no units socks
// activate: inetd wait when it takes its socket on standard input, else
// handoff with every socket of the units.
func (l *sdLoader) serviceJob(socks []*sdSock) *job.Job {
	first := socks[0]
	svc := l.loadService(first)
	if svc == nil {
		for _, sk := range socks[1:] {
			l.fail(sk.u, sk.svcEntry, "the service it activates, %s, is not loaded", sk.service)
		}
		return nil
	}
	j := newJob("systemd", first.u.file, 0, "systemd."+svc.name)
	j.File = first.u.file
	j.Limits = job.Limits{MaxChildren: DefaultMaxChildren, Pause: DefaultPause}
	mode := job.ModeHandoff
	if e := svc.get("Service", "StandardInput"); e != nil && e.val == "socket" {
		mode = job.ModeInetdWait
		n := 0
		for _, sk := range socks {
			n += len(sk.listens)
		}
		if n != 1 {
			l.fail(svc, e, "StandardInput=socket with Accept=no takes exactly one socket, and %d are configured (systemd refuses it too)", n)
			return nil
		}
		j.Inetd = &job.Inetd{Wait: true}
		j.Label = "systemd." + svc.name
	}
	if e := svc.get("Service", "Sockets"); e != nil && mode == job.ModeHandoff {
		socks = l.extraSockets(svc, e, socks)
	}
	if !l.service(j, svc, mode, socks) {
		return nil
	}
	l.attach(j, socks)
	return j
}

// extraSockets adds the socket units a service names in Sockets= that
// are not among socks yet (read from the directories of the first).
func (l *sdLoader) extraSockets(svc *sdUnit, e *sdEntry, socks []*sdSock) []*sdSock {
	have := map[string]bool{}
	for _, sk := range socks {
		have[sk.u.name] = true
	}
	for _, e := range svc.all("Service", "Sockets") {
		v, err := l.expand(svc, e.val)
		if err != nil {
			l.warn(e, "%v; ignored", err)
			continue
		}
		for _, name := range strings.Fields(v) {
			if have[name] {
				continue
			}
			have[name] = true
			path, masked := findUnit(name, socks[0].dirs)
			if path == "" || masked {
				l.warn(e, "%s is not in %s (or masked): its sockets are not passed", name, strings.Join(socks[0].dirs, ", "))
				continue
			}
			if k := filepath.Clean(path) + "\x00" + name; l.tried[k] {
				continue // read already: imported with another service, or reported
			} else {
				l.tried[k] = true
			}
			u := l.readUnit(name, path, socks[0].dirs)
			if u == nil {
				continue
			}
			if sk := l.socketUnit(u, socks[0].dirs); sk != nil {
				if sk.accept {
					l.warn(e, "%s has Accept=yes: its connections go to instances of its own template; not passed", name)
					continue
				}
				socks = append(socks, sk)
			}
		}
	}
	return socks
}

// attach gives j the sockets of socks: one group per FileDescriptorName
// (the socket unit's name by default), in the order of the Listen lines.
func (l *sdLoader) attach(j *job.Job, socks []*sdSock) {
	byName := map[string]int{}
	for _, sk := range socks {
		gi, ok := byName[sk.fdname]
		if !ok {
			gi = len(j.Sockets)
			byName[sk.fdname] = gi
			j.Sockets = append(j.Sockets, job.SocketGroup{Name: sk.fdname})
		}
		for _, ls := range sk.listens {
			j.Sockets[gi].Sockets = append(j.Sockets[gi].Sockets, ls.sock)
		}
	}
	sort.SliceStable(j.Sockets, func(a, b int) bool { return j.Sockets[a].Name < j.Sockets[b].Name })
	for gi := range j.Sockets {
		g := &j.Sockets[gi]
		for si := range g.Sockets {
			s := &g.Sockets[si]
			s.Key = "Sockets." + g.Name
			if len(g.Sockets) > 1 {
				s.Key = fmt.Sprintf("Sockets.%s[%d]", g.Name, si)
			}
			eps, _ := endpointsOf(s, offlineResolver)
			for k := range eps {
				eps[k].Passive = true
			}
			s.Endpoints = job.MergeDualStack(eps, &s.Options)
		}
	}
	j.LinkEndpoints()
}

// sdStdio is what a StandardInput/Output/Error= value says.
type sdStdio struct {
	kind string // "null", "socket", "inherit", "journal", "file", "tty", "fd", "data"
	path string
	mode string // "file", "append", "truncate"
}

func parseStdio(v string) sdStdio {
	for _, p := range []string{"file:", "append:", "truncate:"} {
		if strings.HasPrefix(v, p) {
			return sdStdio{kind: "file", path: v[len(p):], mode: strings.TrimSuffix(p, ":")}
		}
	}
	switch {
	case strings.HasPrefix(v, "fd:"):
		return sdStdio{kind: "fd"}
	case v == "journal" || v == "syslog" || v == "kmsg" || strings.HasSuffix(v, "+console"):
		return sdStdio{kind: "journal"}
	case v == "tty" || v == "tty-force" || v == "tty-fail":
		return sdStdio{kind: "tty"}
	}
	return sdStdio{kind: v}
}

// service reads the service unit into j, for the mode j is served in.
// It returns false when the service cannot be imported (reported).
func (l *sdLoader) service(j *job.Job, u *sdUnit, mode job.Mode, socks []*sdSock) bool {
	ok := l.review(u, func(e *sdEntry) bool {
		// A dependency on one of the job's own socket units says nothing more.
		if e.section == "Unit" && (e.key == "Requires" || e.key == "Wants" || e.key == "BindsTo" || e.key == "Also") {
			for _, w := range strings.Fields(e.val) {
				own := false
				for _, sk := range socks {
					own = own || sk.u.name == w
				}
				if !own {
					return false
				}
			}
			return true
		}
		return false
	})
	if e := u.get("Service", "Type"); e != nil {
		switch e.val {
		case "simple", "exec", "notify", "notify-reload", "idle", "dbus", "oneshot":
		case "forking":
			l.fail(u, e, "a forking service's first process exits at once, leaving a daemon sockd does not track: sockd would start it again at the next connection while the daemon still holds the sockets; run it in the foreground (most daemons have an option for it) and remove Type=forking")
			ok = false
		default:
			l.fail(u, e, "unknown service type %q", e.val)
			ok = false
		}
	}
	env, envOK := l.environment(u)
	ok = ok && envOK
	cmdOK, root := l.command(j, u, env)
	ok = cmdOK && ok
	ok = l.credentials(j, u, root) && ok
	ok = l.process(j, u) && ok
	ok = l.stdio(j, u, mode) && ok
	ok = l.lifecycle(j, u, mode) && ok
	if len(env) > 0 {
		j.EnvironmentVariables = sortedEnv(env)
	}
	return ok
}

// environment reads Environment= and EnvironmentFile= (the files after,
// as systemd applies them).
func (l *sdLoader) environment(u *sdUnit) ([]job.EnvVar, bool) {
	var env []job.EnvVar
	ok := true
	for _, e := range u.all("Service", "Environment") {
		v, err := l.expand(u, e.val)
		if err != nil {
			l.fail(u, e, "%v", err)
			ok = false
			continue
		}
		words, _, err := sdWords(v)
		if err != nil {
			l.fail(u, e, "%v", err)
			ok = false
			continue
		}
		for _, w := range words {
			k, val, has := strings.Cut(w, "=")
			if !has || !sdEnvName(k) {
				l.warn(e, "%q is not NAME=value; ignored", w)
				continue
			}
			env = append(env, job.EnvVar{Name: k, Value: val})
		}
	}
	for _, e := range u.all("Service", "EnvironmentFile") {
		v, err := l.expand(u, e.val)
		if err != nil {
			l.fail(u, e, "%v", err)
			ok = false
			continue
		}
		optional := strings.HasPrefix(v, "-")
		path := strings.TrimPrefix(v, "-")
		if !filepath.IsAbs(path) {
			l.fail(u, e, "%q is not an absolute path", path)
			ok = false
			continue
		}
		if !l.host.exists(path) {
			if optional {
				continue
			}
			l.fail(u, e, "%s does not exist, and systemd does not start the service without it (a leading - makes it optional)", path)
			ok = false
			continue
		}
		data := l.readFile(path, "")
		if data == nil {
			l.fail(u, e, "%s cannot be read as sockd reads configuration (above)", path)
			ok = false
			continue
		}
		vars := parseEnvFile(data, path, l.s)
		if len(vars) > 0 {
			l.warn(e, "read now: the job has the values %s holds at this load (systemd reads it at each start; sockd serve --systemd reads it again at each reload)", path)
		}
		env = append(env, vars...)
	}
	return env, ok
}

// sdSearchPath is where systemd looks up an ExecStart= program named
// without a directory.
var sdSearchPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// command reads ExecStart=. root says the command runs as root whatever
// User= says (the + and ! prefixes).
func (l *sdLoader) command(j *job.Job, u *sdUnit, env []job.EnvVar) (ok, root bool) {
	lines := u.all("Service", "ExecStart")
	if len(lines) == 0 {
		l.fail(u, nil, "the service has no ExecStart=")
		return false, false
	}
	if len(lines) > 1 {
		l.fail(u, lines[1], "more than one ExecStart= (a Type=oneshot service's sequence): sockd runs one program per job")
		return false, false
	}
	e := lines[0]
	words, quoted, err := sdWords(e.val)
	if err != nil {
		l.fail(u, e, "%v", err)
		return false, false
	}
	for i, w := range words {
		if w == ";" && !quoted[i] {
			l.fail(u, e, "several commands separated by ';': sockd runs one program per job")
			return false, false
		}
	}
	if len(words) == 0 {
		l.fail(u, e, "empty command")
		return false, false
	}
	// Prefixes.
	first := words[0]
	var at, ignore, noEnv bool
	for len(first) > 0 && strings.IndexByte("-@+!:|", first[0]) >= 0 {
		switch first[0] {
		case '-':
			ignore = true
		case '@':
			at = true
		case ':':
			noEnv = true
		case '+':
			root = true
			first = first[1:]
			continue
		case '!':
			if strings.HasPrefix(first, "!!") {
				// Only for systems without ambient capabilities; Linux
				// has them, so the command runs as configured.
				first = first[2:]
				continue
			}
			root = true
		case '|':
			l.fail(u, e, "the '|' prefix (run through the user's shell) is not supported: write the shell command out (/bin/sh -c '...')")
			return false, false
		}
		first = first[1:]
	}
	_ = ignore // sockd never fails a job on its exit status
	words[0] = first
	// Specifiers, then environment variables.
	envm := map[string]string{}
	for _, ev := range env {
		envm[ev.Name] = ev.Value
	}
	unset := map[string]bool{}
	var argv []string
	for i, w := range words {
		x, err := l.expand(u, w)
		if err != nil {
			l.fail(u, e, "%v", err)
			return false, false
		}
		if noEnv || i == 0 {
			argv = append(argv, x)
			continue
		}
		if strings.HasPrefix(x, "$") && sdEnvName(x[1:]) {
			v, set := envm[x[1:]]
			if !set {
				unset[x[1:]] = true
			}
			argv = append(argv, strings.Fields(v)...)
			continue
		}
		argv = append(argv, substEnv(x, envm, unset))
	}
	if len(unset) > 0 {
		names := make([]string, 0, len(unset))
		for n := range unset {
			names = append(names, "$"+n)
		}
		sort.Strings(names)
		l.warn(e, "%s: not set by Environment= or EnvironmentFile=, so empty (as in systemd)", strings.Join(names, ", "))
	}
	prog := argv[0]
	if at {
		if len(argv) < 2 {
			l.fail(u, e, "the @ prefix needs argv[0] after the program")
			return false, false
		}
		argv = argv[1:]
	}
	if prog == "" {
		l.fail(u, e, "empty program")
		return false, false
	}
	if !filepath.IsAbs(prog) {
		if strings.Contains(prog, "/") {
			l.fail(u, e, "%q is not an absolute path", prog)
			return false, false
		}
		found := ""
		for _, d := range sdSearchPath {
			if p := filepath.Join(d, prog); l.host.exists(p) {
				found = p
				break
			}
		}
		if found == "" {
			l.fail(u, e, "%q is not in systemd's search path (%s)", prog, strings.Join(sdSearchPath, ":"))
			return false, false
		}
		if !at {
			argv[0] = prog
		}
		prog = found
	}
	setProgram(j, prog, argv)
	if root {
		l.warn(e, "the + or ! prefix runs the program as root, without the User=, Group= and SupplementaryGroups= of the service; sockd does so too")
	}
	return true, root
}
