package listener

// Socket options (SockdOptions): set on the new socket before bind, read
// back with getsockopt after listen.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/job"
)

// options is the SockdOptions of the socket being opened (nil: none).
func (o *opener) options() *job.SockOptions {
	if s := o.ep.Socket; s != nil && !s.Options.IsZero() {
		return &s.Options
	}
	return nil
}

// optFail is the error of an option the kernel refused: it names the key,
// the socket option and, for a privilege, the capability.
func (o *opener) optFail(key, sockopt string, err error) *OpenError {
	return o.fail("SockdOptions."+key+": setsockopt "+sockopt, err, optHint(key, err))
}

// optCaps are the capabilities the kernel checks for an option.
var optCaps = map[string]string{
	"Mark":         "CAP_NET_ADMIN",
	"Transparent":  "CAP_NET_ADMIN or CAP_NET_RAW",
	"BindToDevice": "CAP_NET_RAW (every SO_BINDTODEVICE before Linux 5.7)",
	"Priority":     "CAP_NET_ADMIN (for a Priority above 6)",
}

func optHint(key string, err error) string {
	switch {
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		if c, ok := optCaps[key]; ok {
			return fmt.Sprintf("%s needs %s, which this sockd lacks: run sockd as root or give it the capability, or remove %s", key, c, key)
		}
		return fmt.Sprintf("the kernel refuses %s to this sockd", key)
	case errors.Is(err, unix.ENODEV) && key == "BindToDevice":
		return "no network interface has this name; `ip link` lists them"
	case errors.Is(err, unix.ENOPROTOOPT):
		return fmt.Sprintf("this kernel does not know %s for this kind of socket", key)
	case errors.Is(err, unix.EINVAL):
		return fmt.Sprintf("the kernel refuses this value of %s", key)
	}
	return ""
}

// inetLevels are the option levels of an inet socket's IP options: IPv4's,
// IPv6's, or both for a dual-stack socket (whose IPv4 clients are
// IPv4-mapped and take the IPv4 options).
func inetLevels(domain int, dual bool) (v4, v6 bool) {
	return domain == unix.AF_INET || dual, domain == unix.AF_INET6
}

// applyOptions sets the SockdOptions of the socket on fd, before bind (or
// connect), in job.OptionSpecs order but for TOS, which comes before
// Priority (IP_TOS sets the priority too, rt_tos2priority, so Priority has
// the last word). Backlog is listen's argument (backlog); DirectoryMode and
// Symlinks are paths, not options.
func (o *opener) applyOptions(fd, domain int) error {
	opts := o.options()
	if opts == nil {
		return nil
	}
	a := &optSetter{o: o, fd: fd}
	a.v4, a.v6 = inetLevels(domain, o.ep.DualStack())
	a.flag("KeepAlive", "SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, opts.KeepAlive)
	a.num("KeepAliveTime", "TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, opts.KeepAliveTime)
	a.num("KeepAliveInterval", "TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, opts.KeepAliveInterval)
	a.num("KeepAliveCount", "TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, opts.KeepAliveCount)
	a.flag("NoDelay", "TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, opts.NoDelay)
	a.flag("ReusePort", "SO_REUSEPORT", unix.SOL_SOCKET, unix.SO_REUSEPORT, opts.ReusePort)
	a.ip("FreeBind", "IP_FREEBIND", unix.IP_FREEBIND, "IPV6_FREEBIND", unix.IPV6_FREEBIND, bitOf(opts.FreeBind))
	a.ip("Transparent", "IP_TRANSPARENT", unix.IP_TRANSPARENT, "IPV6_TRANSPARENT", unix.IPV6_TRANSPARENT, bitOf(opts.Transparent))
	a.device(opts.BindToDevice)
	a.ip("TOS", "IP_TOS", unix.IP_TOS, "IPV6_TCLASS", unix.IPV6_TCLASS, opts.TOS)
	a.num("Mark", "SO_MARK", unix.SOL_SOCKET, unix.SO_MARK, opts.Mark)
	a.num("Priority", "SO_PRIORITY", unix.SOL_SOCKET, unix.SO_PRIORITY, opts.Priority)
	a.buffer("ReceiveBuffer", "SO_RCVBUF", unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, opts.ReceiveBuffer)
	a.buffer("SendBuffer", "SO_SNDBUF", unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, opts.SendBuffer)
	a.num("DeferAccept", "TCP_DEFER_ACCEPT", unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, opts.DeferAccept)
	a.flag("PassCredentials", "SO_PASSCRED", unix.SOL_SOCKET, unix.SO_PASSCRED, opts.PassCredentials)
	a.ip("TTL", "IP_TTL", unix.IP_TTL, "IPV6_UNICAST_HOPS", unix.IPV6_UNICAST_HOPS, opts.TTL)
	a.flag("Broadcast", "SO_BROADCAST", unix.SOL_SOCKET, unix.SO_BROADCAST, opts.Broadcast)
	return a.err
}

// optSetter sets options on one socket in turn; after the first refusal
// (err) it sets nothing more. A nil value is an option the file leaves
// unset.
type optSetter struct {
	o      *opener
	fd     int
	v4, v6 bool // the IP levels an IP option is set at
	err    error
}

func (a *optSetter) set(key, name string, level, opt, v int) {
	if a.err != nil {
		return
	}
	if err := unix.SetsockoptInt(a.fd, level, opt, v); err != nil {
		a.err = a.o.optFail(key, name, err)
	}
}

func (a *optSetter) num(key, name string, level, opt int, v *int) {
	if v != nil {
		a.set(key, name, level, opt, *v)
	}
}

func (a *optSetter) flag(key, name string, level, opt int, v *bool) {
	a.num(key, name, level, opt, bitOf(v))
}

// ip sets an IP option at the IPv6 level, the IPv4 one or both (a
// dual-stack socket's IPv4 clients are IPv4-mapped and take the IPv4 one).
func (a *optSetter) ip(key, name4 string, opt4 int, name6 string, opt6 int, v *int) {
	if v == nil {
		return
	}
	if a.v6 {
		a.set(key, name6, unix.IPPROTO_IPV6, opt6, *v)
	}
	if a.v4 {
		a.set(key, name4, unix.IPPROTO_IP, opt4, *v)
	}
}

func (a *optSetter) device(name string) {
	if a.err != nil || name == "" {
		return
	}
	if err := unix.SetsockoptString(a.fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, name); err != nil {
		a.err = a.o.optFail("BindToDevice", "SO_BINDTODEVICE", err)
	}
}

// buffer sets a socket buffer size: with the FORCE option, which may go
// beyond net.core.rmem_max/wmem_max and needs CAP_NET_ADMIN, else with the
// plain one, which the kernel caps (readOptions notes a cap).
func (a *optSetter) buffer(key, name string, force, plain int, v *int) {
	if a.err != nil || v == nil {
		return
	}
	if unix.SetsockoptInt(a.fd, unix.SOL_SOCKET, force, *v) == nil {
		return
	}
	a.set(key, name, unix.SOL_SOCKET, plain, *v)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bitOf is a set boolean as 0 or 1, nil for one not set.
func bitOf(b *bool) *int {
	if b == nil {
		return nil
	}
	n := b2i(*b)
	return &n
}

// backlog is listen's backlog: SockdOptions.Backlog, or the largest the
// kernel takes (net.core.somaxconn caps it).
func (o *opener) backlog() int {
	if opts := o.options(); opts != nil && opts.Backlog != nil {
		return *opts.Backlog
	}
	return maxBacklog
}

// readOptions reads back every option the socket sets, after listen, and
// notes what the kernel changed on its own (a capped buffer or backlog).
func (o *opener) readOptions(s *Socket, domain int) {
	opts := o.options()
	if opts == nil {
		return
	}
	fd := s.Fd
	_, v6 := inetLevels(domain, false)
	getInt := func(level, opt int) (string, bool) {
		n, err := unix.GetsockoptInt(fd, level, opt)
		if err != nil {
			return "", false
		}
		return strconv.Itoa(n), true
	}
	getBool := func(level, opt int) (string, bool) {
		n, err := unix.GetsockoptInt(fd, level, opt)
		if err != nil {
			return "", false
		}
		return strconv.FormatBool(n != 0), true
	}
	// ip reads an IP option at the socket's own level, as get reads it.
	ip := func(get func(level, opt int) (string, bool), opt4, opt6 int) (string, bool) {
		if v6 {
			return get(unix.IPPROTO_IPV6, opt6)
		}
		return get(unix.IPPROTO_IP, opt4)
	}
	for _, v := range opts.Values() {
		var got string
		ok := false
		switch v.Name {
		case "KeepAlive":
			got, ok = getBool(unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		case "KeepAliveTime":
			got, ok = getInt(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		case "KeepAliveInterval":
			got, ok = getInt(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
		case "KeepAliveCount":
			got, ok = getInt(unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
		case "NoDelay":
			got, ok = getBool(unix.IPPROTO_TCP, unix.TCP_NODELAY)
		case "ReusePort":
			got, ok = getBool(unix.SOL_SOCKET, unix.SO_REUSEPORT)
		case "FreeBind":
			got, ok = ip(getBool, unix.IP_FREEBIND, unix.IPV6_FREEBIND)
		case "Transparent":
			got, ok = ip(getBool, unix.IP_TRANSPARENT, unix.IPV6_TRANSPARENT)
		case "BindToDevice":
			if name, err := unix.GetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE); err == nil {
				got, ok = strings.TrimRight(name, "\x00"), true
			}
		case "Mark":
			got, ok = getInt(unix.SOL_SOCKET, unix.SO_MARK)
		case "Priority":
			got, ok = getInt(unix.SOL_SOCKET, unix.SO_PRIORITY)
		case "ReceiveBuffer":
			got, ok = getInt(unix.SOL_SOCKET, unix.SO_RCVBUF)
			s.noteBuffer(v, got, "net.core.rmem_max")
		case "SendBuffer":
			got, ok = getInt(unix.SOL_SOCKET, unix.SO_SNDBUF)
			s.noteBuffer(v, got, "net.core.wmem_max")
		case "Backlog":
			got, ok = o.readBacklog(s, v)
		case "DeferAccept":
			got, ok = getInt(unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT)
		case "IPv6Only":
			got, ok = getBool(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		case "PassCredentials":
			got, ok = getBool(unix.SOL_SOCKET, unix.SO_PASSCRED)
		case "TTL":
			got, ok = ip(getInt, unix.IP_TTL, unix.IPV6_UNICAST_HOPS)
		case "TOS":
			got, ok = ip(getInt, unix.IP_TOS, unix.IPV6_TCLASS)
		case "Broadcast":
			got, ok = getBool(unix.SOL_SOCKET, unix.SO_BROADCAST)
		}
		op := Option{Name: v.Name, Value: v.Value}
		if ok && got != v.Value {
			op.Value, op.Set = got, v.Value
		}
		s.Options = append(s.Options, op)
	}
}

// noteBuffer notes a buffer the kernel gave less than asked: it keeps
// twice the value for its own bookkeeping, and caps a plain SO_RCVBUF or
// SO_SNDBUF (without CAP_NET_ADMIN) at a sysctl.
func (s *Socket) noteBuffer(v job.OptionValue, got, sysctl string) {
	want, err1 := strconv.Atoi(v.Value)
	n, err2 := strconv.Atoi(got)
	if err1 != nil || err2 != nil || n >= 2*want {
		return
	}
	s.Notes = append(s.Notes, fmt.Sprintf("SockdOptions.%s: the kernel gave the socket %d bytes, less than the %d asked (it reports twice the size it grants): %s caps it for a sockd without CAP_NET_ADMIN; raise the sysctl, or give sockd CAP_NET_ADMIN",
		v.Name, n/2, want, sysctl))
}

// readBacklog is the backlog the kernel keeps: TCP reports it (tcpi_sacked
// of a listening socket); for a Unix socket it is the value capped at
// net.core.somaxconn.
func (o *opener) readBacklog(s *Socket, v job.OptionValue) (string, bool) {
	want, _ := strconv.Atoi(v.Value)
	limit := somaxconn()
	if limit > 0 && want > limit {
		s.Notes = append(s.Notes, fmt.Sprintf("SockdOptions.Backlog: %d is above net.core.somaxconn (%d), which the kernel caps it at", want, limit))
	}
	if strings.HasPrefix(s.Network, "tcp") {
		info, err := unix.GetsockoptTCPInfo(s.Fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return "", false
		}
		return strconv.Itoa(int(info.Sacked)), true
	}
	if limit > 0 && want > limit {
		return strconv.Itoa(limit), true
	}
	return "", false
}

// somaxconn reads net.core.somaxconn (0 if it cannot).
func somaxconn() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
