package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sockd/sockd/job"
)

// The socket options of a [Socket] section, as the SockdOptions of each
// of the unit's sockets (job.SockOptions).

// sdOption maps one systemd directive to a SockdOptions key.
type sdOption struct {
	directive, key string
	// applies says whether the key applies to a socket of this kind, as
	// the job loader judges it (an option on a socket where systemd too
	// does nothing is left out).
	applies func(c sdSockKind) bool
}

// sdSockKind is the kind of one socket of a unit.
type sdSockKind struct {
	tcp, udp, unix, abstract, fifo, listen bool
}

func kindOf(s *job.Socket) sdSockKind {
	switch {
	case s.Type == job.FIFO:
		return sdSockKind{fifo: true}
	case s.Family == job.Unix:
		return sdSockKind{unix: true, abstract: job.IsAbstract(s.PathName), listen: s.Type != job.Dgram}
	case s.Type == job.Dgram:
		return sdSockKind{udp: true}
	}
	return sdSockKind{tcp: true, listen: true}
}

var (
	onTCP    = func(c sdSockKind) bool { return c.tcp }
	onUDP    = func(c sdSockKind) bool { return c.udp }
	onInet   = func(c sdSockKind) bool { return c.tcp || c.udp }
	onSocket = func(c sdSockKind) bool { return !c.fifo }
	onListen = func(c sdSockKind) bool { return c.listen }
	onUnix   = func(c sdSockKind) bool { return c.unix }
	onFile   = func(c sdSockKind) bool { return c.fifo || c.unix && !c.abstract }
)

var sdOptions = []sdOption{
	{"KeepAlive", "KeepAlive", onTCP},
	{"KeepAliveTimeSec", "KeepAliveTime", onTCP},
	{"KeepAliveIntervalSec", "KeepAliveInterval", onTCP},
	{"KeepAliveProbes", "KeepAliveCount", onTCP},
	{"NoDelay", "NoDelay", onTCP},
	{"ReusePort", "ReusePort", onInet},
	{"FreeBind", "FreeBind", onInet},
	{"Transparent", "Transparent", onInet},
	{"BindToDevice", "BindToDevice", onInet},
	{"Mark", "Mark", onInet},
	{"Priority", "Priority", onInet},
	{"ReceiveBuffer", "ReceiveBuffer", onSocket},
	{"SendBuffer", "SendBuffer", onSocket},
	{"Backlog", "Backlog", onListen},
	{"DeferAcceptSec", "DeferAccept", onTCP},
	{"PassCredentials", "PassCredentials", onUnix},
	{"IPTTL", "TTL", onInet},
	{"IPTOS", "TOS", onInet},
	{"Broadcast", "Broadcast", onUDP},
	{"DirectoryMode", "DirectoryMode", onFile},
	{"Symlinks", "Symlinks", onFile},
}

// sdTOS are the names IPTOS= takes.
var sdTOS = map[string]int{"low-delay": 0x10, "throughput": 0x08, "reliability": 0x04, "low-cost": 0x02}

// socketOptions reads the socket options into each socket of the unit
// that they apply to. A wildcard socket of both families becomes systemd's
// one dual-stack socket (IPv6Only false); a socket file's missing parent
// directories are created with DirectoryMode (0755 unless set), as
// systemd creates them.
func (l *sdLoader) socketOptions(sk *sdSock) bool {
	u := sk.u
	ok := true
	var o job.SockOptions
	bad := func(e *sdEntry, format string, args ...any) {
		l.fail(u, e, format, args...)
		ok = false
	}
	boolean := func(key string, dst **bool) {
		if e := u.get("Socket", key); e != nil {
			b, err := sdBool(e.val)
			if err != nil {
				bad(e, "%v", err)
				return
			}
			*dst = &b
		}
	}
	number := func(key string, lo, hi int64, dst **int) {
		if e := u.get("Socket", key); e != nil {
			n, err := strconv.ParseInt(e.val, 0, 64)
			if err != nil || n < lo || n > hi {
				bad(e, "%q: want a number from %d to %d", e.val, lo, hi)
				return
			}
			v := int(n)
			*dst = &v
		}
	}
	seconds := func(key string, lo, hi int64, dst **int) {
		if e := u.get("Socket", key); e != nil {
			d, err := sdTime(e.val, time.Second)
			if err != nil {
				bad(e, "%v", err)
				return
			}
			n := wholeSeconds(d)
			if n < lo || n > hi {
				bad(e, "%q: want from %d to %d seconds", e.val, lo, hi)
				return
			}
			if time.Duration(n)*time.Second != d {
				l.warn(e, "sockd sets it in whole seconds: %v becomes %d s", d, n)
			}
			v := int(n)
			*dst = &v
		}
	}
	size := func(key string, dst **int) {
		if e := u.get("Socket", key); e != nil {
			n, err := sdSize(e.val, false)
			if err != nil || n < 1 || n > job.MaxSocketBuffer {
				bad(e, "%q: want a size from 1 to %d bytes", e.val, job.MaxSocketBuffer)
				return
			}
			v := int(n)
			*dst = &v
		}
	}
	boolean("KeepAlive", &o.KeepAlive)
	seconds("KeepAliveTimeSec", 1, 32767, &o.KeepAliveTime)
	seconds("KeepAliveIntervalSec", 1, 32767, &o.KeepAliveInterval)
	number("KeepAliveProbes", 1, 127, &o.KeepAliveCount)
	boolean("NoDelay", &o.NoDelay)
	boolean("ReusePort", &o.ReusePort)
	boolean("FreeBind", &o.FreeBind)
	boolean("Transparent", &o.Transparent)
	if e := u.get("Socket", "BindToDevice"); e != nil {
		v, err := l.expand(u, e.val)
		switch {
		case err != nil:
			bad(e, "%v", err)
		case len(v) > 15 || strings.ContainsAny(v, "/ \t:") || v == "." || v == "..":
			bad(e, "%q is not a network interface name", v)
		default:
			o.BindToDevice = v
		}
	}
	number("Mark", 0, 1<<32-1, &o.Mark)
	number("Priority", 0, 1<<31-1, &o.Priority)
	size("ReceiveBuffer", &o.ReceiveBuffer)
	size("SendBuffer", &o.SendBuffer)
	number("Backlog", 1, 1<<31-1, &o.Backlog)
	seconds("DeferAcceptSec", 0, 1<<31-1, &o.DeferAccept)
	boolean("PassCredentials", &o.PassCredentials)
	number("IPTTL", 1, 255, &o.TTL)
	if e := u.get("Socket", "IPTOS"); e != nil {
		if n, named := sdTOS[e.val]; named {
			o.TOS = &n
		} else {
			number("IPTOS", 0, 255, &o.TOS)
		}
	}
	boolean("Broadcast", &o.Broadcast)
	dirMode := os.FileMode(0o755)
	if e := u.get("Socket", "DirectoryMode"); e != nil {
		m, err := sdMode(e.val)
		if err != nil || m > 0o1777 {
			bad(e, "%q: want an octal mode such as 0755", e.val)
		} else {
			dirMode = m
		}
	}
	for _, e := range u.all("Socket", "Symlinks") {
		v, err := l.expand(u, e.val)
		if err != nil {
			bad(e, "%v", err)
			continue
		}
		for _, p := range strings.Fields(v) {
			if !filepath.IsAbs(p) {
				bad(e, "%q is not an absolute path", p)
				continue
			}
			o.Symlinks = append(o.Symlinks, filepath.Clean(p))
		}
	}
	if e := u.get("Socket", "RemoveOnStop"); e != nil {
		// sockd removes the socket files (and links) it made when it
		// stops, whatever RemoveOnStop says.
		if _, err := sdBool(e.val); err != nil {
			bad(e, "%v", err)
		}
	}
	if !ok {
		return false
	}
	set := map[string]bool{}
	for _, v := range o.Values() {
		set[v.Name] = true
	}
	used := map[string]bool{}
	for i := range sk.listens {
		s := &sk.listens[i].sock
		c := kindOf(s)
		s.Options = o
		for _, op := range sdOptions {
			if op.key == "DirectoryMode" {
				continue
			}
			if !set[op.key] {
				continue
			}
			if op.applies(c) {
				used[op.key] = true
				continue
			}
			clearOption(&s.Options, op.key)
		}
		if onFile(c) {
			m := dirMode
			s.Options.DirectoryMode = &m
		}
		if s.Family == job.FamilyUnspec && s.NodeName == "" {
			// systemd's one socket for both families.
			f := false
			s.Options.IPv6Only = &f
		}
	}
	for _, op := range sdOptions {
		if e := u.get("Socket", op.directive); e != nil && set[op.key] && !used[op.key] {
			l.warn(e, "no effect on the unit's sockets: it applies to %s", optionScope(op))
		}
	}
	// What the job loader would still refuse in these sockets.
	var socks []job.Socket
	for i := range sk.listens {
		s := sk.listens[i].sock
		s.Key = fmt.Sprintf("%s#%d", u.name, i)
		eps, _ := endpointsOf(&s, offlineResolver)
		s.Endpoints = job.MergeDualStack(eps, &s.Options)
		socks = append(socks, s)
	}
	tmp := &job.Job{File: u.file, Sockets: []job.SocketGroup{{Name: "x", Sockets: socks}}}
	tmp.LinkEndpoints()
	for _, d := range job.CheckSockets(tmp) {
		i, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(d.Key, ".", 2)[0], u.name+"#"))
		e := sk.listens[min(i, len(sk.listens)-1)].e
		if _, name, found := strings.Cut(d.Key, ".SockdOptions."); found {
			for _, op := range sdOptions {
				if op.key == name {
					if de := u.get("Socket", op.directive); de != nil {
						e = de
					}
				}
			}
		}
		if d.Severity == job.Error {
			bad(e, "%s", d.Msg)
		} else {
			l.warn(e, "%s", d.Msg)
		}
	}
	return ok
}

// clearOption unsets the SockdOptions key of o.
func clearOption(o *job.SockOptions, key string) {
	switch key {
	case "KeepAlive":
		o.KeepAlive = nil
	case "KeepAliveTime":
		o.KeepAliveTime = nil
	case "KeepAliveInterval":
		o.KeepAliveInterval = nil
	case "KeepAliveCount":
		o.KeepAliveCount = nil
	case "NoDelay":
		o.NoDelay = nil
	case "ReusePort":
		o.ReusePort = nil
	case "FreeBind":
		o.FreeBind = nil
	case "Transparent":
		o.Transparent = nil
	case "BindToDevice":
		o.BindToDevice = ""
	case "Mark":
		o.Mark = nil
	case "Priority":
		o.Priority = nil
	case "ReceiveBuffer":
		o.ReceiveBuffer = nil
	case "SendBuffer":
		o.SendBuffer = nil
	case "Backlog":
		o.Backlog = nil
	case "DeferAccept":
		o.DeferAccept = nil
	case "PassCredentials":
		o.PassCredentials = nil
	case "TTL":
		o.TTL = nil
	case "TOS":
		o.TOS = nil
	case "Broadcast":
		o.Broadcast = nil
	case "Symlinks":
		o.Symlinks = nil
	}
}

// optionScope names the sockets an option applies to, for messages.
func optionScope(op sdOption) string {
	switch {
	case op.applies(sdSockKind{fifo: true}) && !op.applies(sdSockKind{tcp: true, listen: true}):
		return "socket files and FIFOs"
	case op.applies(sdSockKind{unix: true}) && !op.applies(sdSockKind{tcp: true}):
		return "Unix sockets"
	case op.applies(sdSockKind{udp: true}) && !op.applies(sdSockKind{tcp: true}):
		return "UDP sockets"
	case op.applies(sdSockKind{tcp: true}) && !op.applies(sdSockKind{udp: true}) && !op.applies(sdSockKind{unix: true, listen: true}):
		return "TCP sockets"
	case op.applies(sdSockKind{tcp: true}) && op.applies(sdSockKind{udp: true}) && !op.applies(sdSockKind{unix: true}):
		return "TCP and UDP sockets (sockd sets it on those only)"
	case op.applies(sdSockKind{tcp: true, listen: true}) && !op.applies(sdSockKind{udp: true}):
		return "listening stream sockets"
	}
	return "sockets"
}
