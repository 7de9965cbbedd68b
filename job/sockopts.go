package job

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SockOptions is the SockdOptions dictionary of a socket dictionary (a
// sockd extension; systemd.socket(5) has the same options): socket options
// that sockd sets on the socket before bind and listen, and, for a Unix
// socket or FIFO with a path, the parent directories to create and the
// symbolic links to make. A nil pointer (an empty BindToDevice, a nil
// Symlinks) is an option the file does not set: the kernel's default, or
// sockd's own (IPV6_V6ONLY on, the largest backlog the kernel allows).
//
// Importers that build a Job by hand fill it like the loader does and
// call MergeDualStack on the socket's endpoints; CheckSockets reports what
// the loader would refuse.
type SockOptions struct {
	KeepAlive         *bool // SO_KEEPALIVE (TCP)
	KeepAliveTime     *int  // TCP_KEEPIDLE, seconds
	KeepAliveInterval *int  // TCP_KEEPINTVL, seconds
	KeepAliveCount    *int  // TCP_KEEPCNT
	NoDelay           *bool // TCP_NODELAY
	ReusePort         *bool // SO_REUSEPORT
	FreeBind          *bool // IP_FREEBIND, IPV6_FREEBIND
	Transparent       *bool // IP_TRANSPARENT, IPV6_TRANSPARENT
	BindToDevice      string
	Mark              *int // SO_MARK
	Priority          *int // SO_PRIORITY
	ReceiveBuffer     *int // SO_RCVBUF(FORCE), bytes
	SendBuffer        *int // SO_SNDBUF(FORCE), bytes
	Backlog           *int // listen(2) backlog
	DeferAccept       *int // TCP_DEFER_ACCEPT, seconds
	IPv6Only          *bool
	PassCredentials   *bool // SO_PASSCRED (Unix)
	TTL               *int  // IP_TTL, IPV6_UNICAST_HOPS
	TOS               *int  // IP_TOS, IPV6_TCLASS
	Broadcast         *bool // SO_BROADCAST (UDP)
	// DirectoryMode creates the missing parent directories of SockPathName
	// (and of each of Symlinks) with this mode, owned by sockd's user.
	DirectoryMode *os.FileMode
	// Symlinks are absolute paths made symbolic links to SockPathName
	// when the socket is opened and removed when it is closed.
	Symlinks []string
}

// IsZero reports whether the dictionary sets nothing.
func (o *SockOptions) IsZero() bool { return len(o.Values()) == 0 }

// optKind is the plist type of an option.
type optKind uint8

const (
	optBool optKind = iota
	optInt
	optString
	optMode
	optPaths
)

// optScope is the kind of socket an option applies to.
type optScope uint8

const (
	scopeTCP    optScope = iota // TCP sockets
	scopeUDP                    // UDP sockets
	scopeInet                   // TCP and UDP sockets
	scopeListen                 // sockets that listen: TCP, Unix stream and seqpacket
	scopeSocket                 // every socket, not a FIFO
	scopeUnix                   // Unix sockets
	scopeIPv6                   // inet sockets with an IPv6 address
	scopePath                   // Unix sockets with a file, and FIFOs
)

func (sc optScope) String() string {
	return [...]string{
		scopeTCP:    "TCP sockets",
		scopeUDP:    "UDP sockets",
		scopeInet:   "TCP and UDP sockets",
		scopeListen: "listening stream and seqpacket sockets (TCP, Unix stream, Unix seqpacket)",
		scopeSocket: "sockets",
		scopeUnix:   "Unix sockets (SockPathName)",
		scopeIPv6:   "IPv6 sockets",
		scopePath:   "Unix sockets with a file (SockPathName, not @abstract) and FIFOs",
	}[sc]
}

// OptionSpec describes one SockdOptions key.
type OptionSpec struct {
	Name string
	kind optKind
	lo   int64
	hi   int64
	unit string // "seconds", "bytes" or ""
	// scope is the kind of socket it applies to; passive, that it applies
	// only to a socket that listens (SockPassive true).
	scope   optScope
	passive bool
	b       func(*SockOptions) **bool
	i       func(*SockOptions) **int
}

// MaxSocketBuffer is the largest ReceiveBuffer or SendBuffer: the kernel
// doubles the value into an int.
const MaxSocketBuffer = math.MaxInt32 / 2

// OptionSpecs are the SockdOptions keys in the order sockd applies,
// prints and identifies them.
var OptionSpecs = []OptionSpec{
	{Name: "KeepAlive", kind: optBool, scope: scopeTCP, b: func(o *SockOptions) **bool { return &o.KeepAlive }},
	{Name: "KeepAliveTime", kind: optInt, lo: 1, hi: 32767, unit: "seconds", scope: scopeTCP, i: func(o *SockOptions) **int { return &o.KeepAliveTime }},
	{Name: "KeepAliveInterval", kind: optInt, lo: 1, hi: 32767, unit: "seconds", scope: scopeTCP, i: func(o *SockOptions) **int { return &o.KeepAliveInterval }},
	{Name: "KeepAliveCount", kind: optInt, lo: 1, hi: 127, scope: scopeTCP, i: func(o *SockOptions) **int { return &o.KeepAliveCount }},
	{Name: "NoDelay", kind: optBool, scope: scopeTCP, b: func(o *SockOptions) **bool { return &o.NoDelay }},
	{Name: "ReusePort", kind: optBool, scope: scopeInet, passive: true, b: func(o *SockOptions) **bool { return &o.ReusePort }},
	{Name: "FreeBind", kind: optBool, scope: scopeInet, passive: true, b: func(o *SockOptions) **bool { return &o.FreeBind }},
	{Name: "Transparent", kind: optBool, scope: scopeInet, passive: true, b: func(o *SockOptions) **bool { return &o.Transparent }},
	{Name: "BindToDevice", kind: optString, scope: scopeInet},
	{Name: "Mark", kind: optInt, lo: 0, hi: math.MaxUint32, scope: scopeInet, i: func(o *SockOptions) **int { return &o.Mark }},
	{Name: "Priority", kind: optInt, lo: 0, hi: math.MaxInt32, scope: scopeInet, i: func(o *SockOptions) **int { return &o.Priority }},
	{Name: "ReceiveBuffer", kind: optInt, lo: 1, hi: MaxSocketBuffer, unit: "bytes", scope: scopeSocket, i: func(o *SockOptions) **int { return &o.ReceiveBuffer }},
	{Name: "SendBuffer", kind: optInt, lo: 1, hi: MaxSocketBuffer, unit: "bytes", scope: scopeSocket, i: func(o *SockOptions) **int { return &o.SendBuffer }},
	{Name: "Backlog", kind: optInt, lo: 1, hi: math.MaxInt32, scope: scopeListen, passive: true, i: func(o *SockOptions) **int { return &o.Backlog }},
	{Name: "DeferAccept", kind: optInt, lo: 0, hi: math.MaxInt32, unit: "seconds", scope: scopeTCP, passive: true, i: func(o *SockOptions) **int { return &o.DeferAccept }},
	{Name: "IPv6Only", kind: optBool, scope: scopeIPv6, passive: true, b: func(o *SockOptions) **bool { return &o.IPv6Only }},
	{Name: "PassCredentials", kind: optBool, scope: scopeUnix, b: func(o *SockOptions) **bool { return &o.PassCredentials }},
	{Name: "TTL", kind: optInt, lo: 1, hi: 255, scope: scopeInet, i: func(o *SockOptions) **int { return &o.TTL }},
	{Name: "TOS", kind: optInt, lo: 0, hi: 255, scope: scopeInet, i: func(o *SockOptions) **int { return &o.TOS }},
	{Name: "Broadcast", kind: optBool, scope: scopeUDP, b: func(o *SockOptions) **bool { return &o.Broadcast }},
	{Name: "DirectoryMode", kind: optMode, lo: 0, hi: 0o1777, scope: scopePath, passive: true},
	{Name: "Symlinks", kind: optPaths, scope: scopePath, passive: true},
}

// SockdOptionsKeys lists the keys of the SockdOptions dictionary.
var SockdOptionsKeys = func() []KeyInfo {
	out := make([]KeyInfo, 0, len(OptionSpecs))
	for _, sp := range OptionSpecs {
		k := KeyInfo{Name: sp.Name}
		if sp.Name == "BindToDevice" {
			k.Misspelt = "would let the socket listen on every interface instead of one"
		}
		out = append(out, k)
	}
	return out
}()

// OptionValue is one option a SockdOptions dictionary sets, with its value
// as text (a decimal number, true or false, an octal mode, paths joined by
// commas).
type OptionValue struct {
	Name, Value string
}

// Values returns the options o sets, in OptionSpecs order.
func (o *SockOptions) Values() []OptionValue {
	var out []OptionValue
	for _, sp := range OptionSpecs {
		if v, ok := sp.text(o); ok {
			out = append(out, OptionValue{sp.Name, v})
		}
	}
	return out
}

// text is the value of sp in o as text; ok is false when o does not set it.
func (sp *OptionSpec) text(o *SockOptions) (string, bool) {
	switch sp.kind {
	case optBool:
		if p := *sp.b(o); p != nil {
			return strconv.FormatBool(*p), true
		}
	case optInt:
		if p := *sp.i(o); p != nil {
			return strconv.Itoa(*p), true
		}
	case optString:
		if o.BindToDevice != "" {
			return o.BindToDevice, true
		}
	case optMode:
		if o.DirectoryMode != nil {
			return fmt.Sprintf("%#o", uint32(*o.DirectoryMode)), true
		}
	case optPaths:
		if len(o.Symlinks) > 0 {
			return strings.Join(o.Symlinks, ","), true
		}
	}
	return "", false
}

// Dict is o as a SockdOptions dictionary for a job file (bool, int64,
// string and []string values; DirectoryMode as its decimal integer), or
// nil when o sets nothing.
func (o *SockOptions) Dict() map[string]any {
	m := map[string]any{}
	for _, sp := range OptionSpecs {
		switch sp.kind {
		case optBool:
			if p := *sp.b(o); p != nil {
				m[sp.Name] = *p
			}
		case optInt:
			if p := *sp.i(o); p != nil {
				m[sp.Name] = int64(*p)
			}
		case optString:
			if o.BindToDevice != "" {
				m[sp.Name] = o.BindToDevice
			}
		case optMode:
			if o.DirectoryMode != nil {
				m[sp.Name] = int64(*o.DirectoryMode)
			}
		case optPaths:
			if len(o.Symlinks) > 0 {
				m[sp.Name] = append([]string(nil), o.Symlinks...)
			}
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// identity is the part of Endpoint.ID the options make: every option set,
// so that a reload that changes one reopens the socket.
func (o *SockOptions) identity() string {
	vs := o.Values()
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Name + "=" + strconv.Quote(v.Value)
	}
	return strings.Join(parts, ",")
}

// DualStack reports whether the endpoint is one IPv6 wildcard socket that
// also accepts IPv4 (SockdOptions.IPv6Only false): IPV6_V6ONLY off.
func (e *Endpoint) DualStack() bool {
	if e.Socket == nil || e.Socket.Options.IPv6Only == nil || *e.Socket.Options.IPv6Only {
		return false
	}
	if e.Network != "tcp6" && e.Network != "udp6" {
		return false
	}
	ap, err := netip.ParseAddrPort(e.Address)
	return err == nil && ap.Addr().IsUnspecified()
}

// MergeDualStack is the endpoints of a socket dictionary whose options
// are o: with IPv6Only false, one IPv6 wildcard socket takes IPv4 too, so
// the dictionary's IPv4 wildcard endpoints are left out.
func MergeDualStack(eps []Endpoint, o *SockOptions) []Endpoint {
	if o.IPv6Only == nil || *o.IPv6Only {
		return eps
	}
	wild6 := false
	for _, e := range eps {
		if ap, err := netip.ParseAddrPort(e.Address); err == nil && ap.Addr().Is6() && ap.Addr().IsUnspecified() {
			wild6 = true
		}
	}
	if !wild6 {
		return eps
	}
	out := eps[:0:0]
	for _, e := range eps {
		if ap, err := netip.ParseAddrPort(e.Address); err == nil && ap.Addr().Is4() && ap.Addr().IsUnspecified() {
			continue
		}
		out = append(out, e)
	}
	return out
}

// sockOptions parses a SockdOptions dictionary at key. keys maps each
// option it sets to its key path as written.
func (d *decoder) sockOptions(key string, v any) (SockOptions, map[string]string) {
	var o SockOptions
	keys := map[string]string{}
	dv, ok := d.dict(key, v)
	if !ok {
		return o, keys
	}
	for _, sp := range OptionSpecs {
		k, val, ok := dv.get(sp.Name)
		if !ok {
			continue
		}
		keys[sp.Name] = k
		switch sp.kind {
		case optBool:
			if b, ok := d.boolean(k, val); ok {
				*sp.b(&o) = &b
			}
		case optInt:
			what := sp.Name
			if sp.unit != "" {
				what += " (" + sp.unit + ")"
			}
			hi := min(sp.hi, int64(math.MaxInt))
			if n, ok := d.intRange(k, val, sp.lo, hi, what); ok {
				x := int(n)
				*sp.i(&o) = &x
			}
		case optString:
			if s, ok := d.str(k, val); ok {
				if err := checkDeviceName(s); err != nil {
					d.errorf(k, "%v", err)
				} else {
					o.BindToDevice = s
				}
			}
		case optMode:
			if n, ok := d.intRange(k, val, sp.lo, sp.hi, "DirectoryMode (decimal, e.g. 493 for 0755; the permission bits and the sticky bit)"); ok {
				m := os.FileMode(n)
				o.DirectoryMode = &m
			}
		case optPaths:
			if ps, ok := d.strings(k, val); ok {
				o.Symlinks = d.symlinks(k, ps)
			}
		}
	}
	d.reportRest(dv, nil, "SockdOptions")
	return o, keys
}

// checkDeviceName applies the kernel's rules for an interface name
// (dev_valid_name): 1 to 15 bytes, not "." or "..", no '/', ':' or white
// space.
func checkDeviceName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is empty: give the name of a network interface (ip link shows them), or remove BindToDevice")
	case len(s) > 15:
		return fmt.Errorf("%q is %d bytes long; interface names have at most 15", s, len(s))
	case s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n\r\v\f\x00"):
		return fmt.Errorf("%q is not an interface name: it may not be . or .., nor contain '/', ':' or white space", s)
	}
	return nil
}

// symlinks checks the Symlinks array at key: absolute, clean paths, each
// once.
func (d *decoder) symlinks(key string, ps []string) []string {
	var out []string
	seen := map[string]bool{}
	for i, p := range ps {
		k := index(key, i)
		switch {
		case p == "":
			d.errorf(k, "is empty: give the absolute path of a symbolic link to make")
			continue
		case !filepath.IsAbs(p):
			d.errorf(k, "%q is not an absolute path: write the link's full path", p)
			continue
		case filepath.Clean(p) != p:
			d.errorf(k, "%q is not a clean path: write %q", p, filepath.Clean(p))
			continue
		case p == "/":
			d.errorf(k, "/ cannot be a symbolic link")
			continue
		case seen[p]:
			d.errorf(k, "%q is listed twice: keep one", p)
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}

// sockClass is what kind of socket a dictionary makes, for the options
// that apply to it.
type sockClass struct {
	tcp, udp, unix, fifo, abstract bool
	listen                         bool // a passive stream or seqpacket socket
	passive                        bool
	v6, v6Wild                     bool // an IPv6 endpoint; an IPv6 wildcard
	v4                             bool // an IPv4 endpoint
}

func classOf(s *Socket) sockClass {
	c := sockClass{passive: s.Passive}
	switch {
	case s.Type == FIFO:
		c.fifo = true
	case s.Family == Unix || s.PathName != "":
		c.unix, c.abstract = true, IsAbstract(s.PathName)
		c.listen = s.Passive && s.Type != Dgram
	default:
		c.tcp, c.udp = s.Type == Stream, s.Type == Dgram
		c.listen = s.Passive && c.tcp
		for _, e := range s.Endpoints {
			ap, err := netip.ParseAddrPort(e.Address)
			if err != nil {
				continue
			}
			if ap.Addr().Is4() {
				c.v4 = true
				continue
			}
			c.v6 = true
			if ap.Addr().IsUnspecified() {
				c.v6Wild = true
			}
		}
	}
	return c
}

// describe names the kind of socket for messages: "a UDP socket".
func (c sockClass) describe(s *Socket) string {
	var what string
	switch {
	case c.fifo:
		return "a FIFO"
	case c.abstract:
		what = "an abstract Unix " + s.Type.String() + " socket"
	case c.unix:
		what = "a Unix " + s.Type.String() + " socket"
	case c.tcp:
		what = "a TCP socket"
	default:
		what = "a UDP socket"
	}
	if !c.passive {
		what += " that connects (SockPassive false)"
	}
	return what
}

func (c sockClass) in(sc optScope) bool {
	switch sc {
	case scopeTCP:
		return c.tcp
	case scopeUDP:
		return c.udp
	case scopeInet:
		return c.tcp || c.udp
	case scopeListen:
		return c.listen
	case scopeSocket:
		return !c.fifo
	case scopeUnix:
		return c.unix
	case scopeIPv6:
		return (c.tcp || c.udp) && c.v6
	case scopePath:
		return (c.unix && !c.abstract) || c.fifo
	}
	return false
}

// optionProblem is one SockdOptions key that does not fit its socket.
type optionProblem struct {
	name, msg string
}

// optionProblems checks the options of a resolved socket dictionary
// against the socket it makes: an option that does not apply to it (NoDelay
// on UDP, DirectoryMode on TCP) is a problem naming both.
func optionProblems(s *Socket) []optionProblem {
	o := &s.Options
	c := classOf(s)
	var out []optionProblem
	add := func(name, format string, args ...any) {
		out = append(out, optionProblem{name, fmt.Sprintf(format, args...)})
	}
	for _, sp := range OptionSpecs {
		if _, set := sp.text(o); !set {
			continue
		}
		switch {
		case sp.scope == scopeIPv6 && (c.tcp || c.udp) && !c.v6:
			add(sp.Name, "%s applies only to %s, and this socket has only IPv4 addresses (SockFamily IPv4, or an IPv4 SockNodeName): remove %s", sp.Name, sp.scope, sp.Name)
		case !c.in(sp.scope):
			add(sp.Name, "%s applies only to %s; this is %s, where it would do nothing: remove %s", sp.Name, sp.scope, c.describe(s), sp.Name)
		case sp.passive && !c.passive:
			add(sp.Name, "%s applies only to a socket that listens; this is %s: remove %s, or SockPassive", sp.Name, c.describe(s), sp.Name)
		}
	}
	if o.IPv6Only != nil && c.v6 && c.passive {
		switch {
		case s.MulticastGroup != "":
			add("IPv6Only", "a multicast socket (MulticastGroup) receives the group of its own family; remove IPv6Only")
		case !*o.IPv6Only && !c.v6Wild:
			add("IPv6Only", "false makes an IPv6 wildcard socket (no SockNodeName, or \"::\") take IPv4 clients too; this socket's IPv6 addresses are specific, which IPv4 clients cannot reach anyway: remove IPv6Only")
		}
	}
	if o.ReusePort != nil && !*o.ReusePort && s.MulticastGroup != "" {
		add("ReusePort", "a multicast socket (MulticastGroup) always has SO_REUSEPORT, so that several receivers can join the group: remove ReusePort")
	}
	if o.KeepAlive == nil || !*o.KeepAlive {
		for _, p := range []struct {
			name string
			v    *int
		}{{"KeepAliveTime", o.KeepAliveTime}, {"KeepAliveInterval", o.KeepAliveInterval}, {"KeepAliveCount", o.KeepAliveCount}} {
			if p.v != nil && c.tcp {
				out = append(out, optionProblem{p.name, "warning:" + p.name + " has no effect while KeepAlive is not true (unless the service turns SO_KEEPALIVE on itself): set KeepAlive to true"})
			}
		}
	}
	for _, l := range o.Symlinks {
		if l == s.PathName || l == filepath.Clean(s.PathName) {
			add("Symlinks", "%q is the socket's own path (SockPathName): a link cannot replace the socket; remove it from Symlinks", l)
		}
	}
	return out
}

// checkSockOptions reports the option problems of s at the keys as written
// (keys from sockOptions); it reports whether there was no error.
func (d *decoder) checkSockOptions(s *Socket, keys map[string]string) bool {
	ok := true
	for _, p := range optionProblems(s) {
		k := keys[p.name]
		if k == "" {
			k = s.Key + ".SockdOptions." + p.name
		}
		if msg, warn := strings.CutPrefix(p.msg, "warning:"); warn {
			d.warnf(k, "%s", msg)
			continue
		}
		d.errorf(k, "%s", p.msg)
		ok = false
	}
	return ok
}

// CheckSockets reports what the job file loader refuses in the sockets of
// a job built by hand (an importer's): options that do not apply to their
// socket, and FIFOs in a mode that cannot serve them. Jobs from Decode
// never have any.
func CheckSockets(j *Job) Diags {
	d := &decoder{file: j.File}
	for gi := range j.Sockets {
		for si := range j.Sockets[gi].Sockets {
			d.checkSockOptions(&j.Sockets[gi].Sockets[si], nil)
		}
	}
	d.checkFIFOModes(j)
	return d.diags
}

// checkFIFOModes refuses a FIFO in a job whose mode has something to
// accept: a FIFO has no connections and no datagrams, only bytes.
func (d *decoder) checkFIFOModes(j *Job) {
	why := ""
	switch j.Mode() {
	case ModeInetdNowait:
		why = "inetdCompatibility Wait=false accepts a connection per child, and a FIFO has none: set Wait to true (the child gets the FIFO on fds 0, 1 and 2), or leave out inetdCompatibility (the service gets it as fd 3 and on)"
	case ModeProxy:
		why = "a proxy forwards connections and datagrams, and a FIFO has neither: serve the FIFO from a job of its own"
	case ModeInternal:
		why = "sockd's internal services answer connections and datagrams, and a FIFO has neither"
	default:
		return
	}
	for _, g := range j.Sockets {
		for _, s := range g.Sockets {
			if s.Type == FIFO {
				d.errorf(s.Key+".SockType", "a FIFO cannot be served in %s mode: %s", j.Mode(), why)
			}
		}
	}
}

// resolveFIFO checks a SockType fifo dictionary and gives it its one
// endpoint.
func (d *decoder) resolveFIFO(s *Socket, familySet bool) bool {
	nerr := len(d.diags)
	switch {
	case s.PathName == "":
		d.errorf(s.Key+".SockType", "fifo needs SockPathName, the path of the FIFO: add SockPathName")
		return false
	case IsAbstract(s.PathName):
		d.errorf(s.Key+".SockPathName", "%q names an abstract socket; a FIFO is a file: give its absolute path", s.PathName)
	case !filepath.IsAbs(s.PathName):
		d.warnf(s.Key+".SockPathName", "%q is not an absolute path; it is relative to sockd's working directory", s.PathName)
	}
	if familySet && s.Family != Unix {
		d.errorf(s.Key+".SockFamily", "%s does not apply to a FIFO: remove SockFamily", s.Family)
	}
	s.Family = Unix
	for _, k := range []struct{ key, val string }{{"SockNodeName", s.NodeName}, {"SockServiceName", s.ServiceName}, {"SockProtocol", s.Protocol}, {"MulticastGroup", s.MulticastGroup}} {
		if k.val != "" {
			d.errorf(s.Key+"."+k.key, "a FIFO has no %s: remove %s", strings.TrimPrefix(k.key, "Sock"), k.key)
		}
	}
	if !s.Passive {
		d.errorf(s.Key+".SockPassive", "a FIFO cannot connect: sockd creates it and reads demand from it; remove SockPassive false")
	}
	if d.diags[nerr:].HasErrors() {
		return false
	}
	s.Endpoints = []Endpoint{{Network: "fifo", Address: s.PathName, Passive: true}}
	return true
}
