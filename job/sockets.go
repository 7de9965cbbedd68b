package job

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxUnixPath is the longest Unix socket path Linux accepts (sun_path less
// the terminating NUL).
const MaxUnixPath = 107

// lookupHost resolves SockNodeName host names (a variable so that fuzzing
// never queries the network).
var lookupHost = func(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// resolveTimeout bounds the lookup of one SockNodeName host name.
const resolveTimeout = 3 * time.Second

// sockets parses the Sockets dictionary: name -> socket dict, or name ->
// array of socket dicts. Groups come out sorted by name in byte order, the
// documented hand-off order.
func (d *decoder) sockets(key string, v any) []SocketGroup {
	m, names, ok := d.rawDict(key, v) // names sorted in byte order
	if !ok {
		return nil
	}
	var groups []SocketGroup
	for _, name := range names {
		e := dictEntry{name: name, val: m[name]}
		gk := join(key, e.name)
		if e.name == "" || strings.ContainsAny(e.name, ":\x00") {
			d.errorf(gk, "socket name %q is not usable: it must be non-empty and contain no ':' (LISTEN_FDNAMES separates names with colons)", e.name)
			continue
		}
		g := SocketGroup{Name: e.name}
		switch val := e.val.(type) {
		case map[string]any:
			if s, ok := d.socket(gk, val); ok {
				g.Sockets = append(g.Sockets, s)
			}
		case []any:
			if len(val) == 0 {
				d.warnf(gk, "empty array: this socket name has no sockets")
			}
			for i, el := range val {
				ek := index(gk, i)
				m, ok := el.(map[string]any)
				if !ok {
					d.errorf(ek, "must be a socket dictionary, not %s", describe(el))
					continue
				}
				if s, ok := d.socket(ek, m); ok {
					g.Sockets = append(g.Sockets, s)
				}
			}
		default:
			d.errorf(gk, "must be a socket dictionary or an array of socket dictionaries, not %s", describe(e.val))
			continue
		}
		if len(g.Sockets) > 0 {
			groups = append(groups, g)
		}
	}
	d.checkSocketCount(key, groups)
	seen := map[string]string{}
	for _, g := range groups {
		v := LaunchSocketVar(g.Name)
		if other, dup := seen[v]; dup {
			d.warnf(join(key, g.Name), "socket names %q and %q share the variable %s; it lists the fds of both (LISTEN_FDNAMES and the launch package keep them apart)", other, g.Name, v)
		}
		seen[v] = g.Name
	}
	return groups
}

// MaxSocketsPerJob is the most sockets one job may have, counted as
// endpoints (one fd each: a socket dictionary without SockNodeName has two,
// IPv6 and IPv4). A job past it is refused when loaded rather than holding
// thousands of fds and handing them all to one process.
const MaxSocketsPerJob = 1024

// checkSocketCount refuses a Sockets dictionary (at key) whose groups have
// more than MaxSocketsPerJob endpoints, naming the first one past the cap.
func (d *decoder) checkSocketCount(key string, groups []SocketGroup) {
	n, past := 0, ""
	for _, g := range groups {
		for _, s := range g.Sockets {
			n += len(s.Endpoints)
			if n > MaxSocketsPerJob && past == "" {
				past = s.Key
			}
		}
	}
	if n > MaxSocketsPerJob {
		d.errorf(key, "the job has %d sockets, more than the %d sockd accepts in one job (%s is past the limit; a socket dictionary without SockNodeName has two, IPv6 and IPv4): split the sockets over several jobs, or give them fewer addresses",
			n, MaxSocketsPerJob, past)
	}
}

// LaunchSocketVar is the environment variable that carries the fds of one
// Sockets key for a handoff job: LAUNCH_SOCKET_ and the name upper-cased,
// every byte outside [A-Z0-9_] replaced by '_'.
func LaunchSocketVar(name string) string {
	b := []byte(strings.ToUpper(name))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return "LAUNCH_SOCKET_" + string(b)
}

// socket parses one socket dictionary and resolves its endpoints. ok is
// false when the socket is skipped (SecureSocketWithKey) or broken.
func (d *decoder) socket(key string, m map[string]any) (Socket, bool) {
	sv := d.view(key, m)
	s := Socket{Key: key, Passive: true}
	if k, _, ok := sv.get("SecureSocketWithKey"); ok {
		d.warnf(k, "not supported by sockd yet: launchd would create a socket at a random path and export it in this variable; this socket is skipped")
		for _, e := range sv.rest() {
			sv.get(e.name)
		}
		return s, false
	}
	nerr := len(d.diags)
	typeSet := false
	if k, v, ok := sv.get("SockType"); ok {
		if t, ok := d.str(k, v); ok {
			switch strings.ToLower(t) {
			case "stream":
				s.Type = Stream
			case "dgram":
				s.Type = Dgram
			case "seqpacket":
				s.Type = SeqPacket
			case "fifo":
				s.Type = FIFO
			default:
				d.errorf(k, "unknown SockType %q: use stream, dgram, seqpacket or fifo (launchd would silently use stream)", t)
			}
			typeSet = true
		}
	}
	if k, v, ok := sv.get("SockPassive"); ok {
		if b, ok := d.boolean(k, v); ok {
			s.Passive = b
		}
	}
	if k, v, ok := sv.get("SockNodeName"); ok {
		if n, ok := d.str(k, v); ok {
			s.NodeName = n
		}
	}
	if k, v, ok := sv.get("SockServiceName"); ok {
		switch v := v.(type) {
		case string:
			s.ServiceName = v
		case int64, uint64:
			n, _ := d.integer(k, v)
			s.ServiceName = strconv.FormatInt(n, 10)
		default:
			d.errorf(k, "must be a service name or port number (string or integer), not %s", describe(v))
		}
	}
	familySet := false
	if k, v, ok := sv.get("SockFamily"); ok {
		if f, ok := d.str(k, v); ok {
			familySet = true
			switch strings.ToLower(f) {
			case "ipv4":
				s.Family = IPv4
			case "ipv6":
				s.Family = IPv6
			case "ipv4v6":
				s.Family = FamilyUnspec
			case "unix":
				s.Family = Unix
			default:
				d.errorf(k, "unknown SockFamily %q: use IPv4, IPv6, IPv4v6 (both) or Unix (launchd would silently use both IPv4 and IPv6)", f)
			}
		}
	}
	if k, v, ok := sv.get("SockProtocol"); ok {
		if p, ok := d.str(k, v); ok {
			switch strings.ToLower(p) {
			case "tcp", "udp":
				s.Protocol = strings.ToLower(p)
			default:
				d.errorf(k, "unknown SockProtocol %q: use TCP or UDP", p)
			}
		}
	}
	if k, v, ok := sv.get("SockPathName"); ok {
		if p, ok := d.str(k, v); ok {
			s.PathName = p
			if p == "" {
				d.errorf(k, "is empty: give the path of the Unix socket")
			}
		}
	}
	if k, v, ok := sv.get("SockPathMode"); ok {
		if n, ok := d.intRange(k, v, 0, 0o177777, "SockPathMode (decimal, e.g. 438 for 0666)"); ok {
			perm := os.FileMode(n) & 0o777
			if int64(perm) != n {
				d.warnf(k, "%d is octal %#o, which has bits beyond the permission bits (file type or setuid/sticky); using %#o", n, n, uint32(perm))
			}
			s.PathMode = &perm
		}
	}
	s.PathOwner = d.socketID(sv, "SockPathOwner", false)
	s.PathGroup = d.socketID(sv, "SockPathGroup", true)
	if k, v, ok := sv.get("MulticastGroup"); ok {
		if g, ok := d.str(k, v); ok {
			s.MulticastGroup = g
		}
	}
	var optKeys map[string]string
	if k, v, ok := sv.get("SockdOptions"); ok {
		s.Options, optKeys = d.sockOptions(k, v)
	}
	d.reportRest(sv, SocketKeys, "socket")

	if s.Protocol == "udp" {
		if typeSet && s.Type != Dgram {
			d.errorf(key+".SockProtocol", "UDP needs SockType dgram, but SockType is %s: set SockType to dgram", s.Type)
		}
		s.Type = Dgram
	}
	if s.Protocol == "tcp" && s.Type == Dgram {
		d.errorf(key+".SockProtocol", "TCP needs SockType stream, but SockType is dgram: remove SockProtocol or set SockType to stream")
	}
	if len(d.diags) > nerr && d.diags[nerr:].HasErrors() {
		return s, false
	}
	if !d.resolveSocket(&s, familySet) || !d.checkSockOptions(&s, optKeys) {
		return s, false
	}
	s.Endpoints = MergeDualStack(s.Endpoints, &s.Options)
	return s, true
}

// socketID reads SockPathOwner or SockPathGroup: a numeric id, or a user
// or group name resolved at load.
func (d *decoder) socketID(sv *dictView, name string, group bool) *int {
	k, v, ok := sv.get(name)
	if !ok {
		return nil
	}
	if s, isStr := v.(string); isStr {
		if n, err := strconv.Atoi(s); err == nil {
			if n < 0 || n > 1<<32-2 {
				d.errorf(k, "%d is out of range for a %s", n, name)
				return nil
			}
			return &n
		}
		{
			var id string
			var err error
			if group {
				var g *user.Group
				if g, err = user.LookupGroup(s); err == nil {
					id = g.Gid
				}
			} else {
				var u *user.User
				if u, err = user.Lookup(s); err == nil {
					id = u.Uid
				}
			}
			if err != nil {
				d.errorf(k, "cannot resolve %q: %v; give a numeric id or an existing name", s, err)
				return nil
			}
			n, _ := strconv.Atoi(id)
			return &n
		}
	}
	n, ok := d.intRange(k, v, 0, 1<<32-2, name)
	if !ok {
		return nil
	}
	id := int(n)
	return &id
}

// IsPathNetwork reports whether an endpoint of network is a file path: a
// Unix socket ("unix", "unixgram", "unixpacket") or a FIFO ("fifo").
func IsPathNetwork(network string) bool {
	return strings.HasPrefix(network, "unix") || network == "fifo"
}

// IsAbstract reports whether a SockPathName names a socket in Linux's
// abstract namespace ("@name"): no file, gone when the socket closes.
func IsAbstract(path string) bool { return strings.HasPrefix(path, "@") }

// pathKeys lists the file keys (SockPathMode, SockPathOwner, SockPathGroup)
// that a socket dictionary sets.
func pathKeys(s *Socket) []string {
	var keys []string
	if s.PathMode != nil {
		keys = append(keys, "SockPathMode")
	}
	if s.PathOwner != nil {
		keys = append(keys, "SockPathOwner")
	}
	if s.PathGroup != nil {
		keys = append(keys, "SockPathGroup")
	}
	return keys
}

// checkAbstract validates an abstract socket name. The abstract namespace
// has no file, so no mode or owner restricts who connects: a key that would
// narrow access cannot be honoured and is an error.
func (d *decoder) checkAbstract(s *Socket) {
	if s.PathName == "@" {
		d.errorf(s.Key+".SockPathName", "an abstract socket name needs at least one character after @")
	}
	for _, k := range pathKeys(s) {
		d.errorf(s.Key+"."+k, "an abstract socket (%s) has no file, so %s cannot restrict who connects: any process in sockd's network namespace can; "+
			"remove %s, or use a socket path in a directory with the access you want", s.PathName, k, k)
	}
}

// resolveSocket fills Port and Endpoints of a parsed socket dictionary.
func (d *decoder) resolveSocket(s *Socket, familySet bool) bool {
	nerr := len(d.diags)
	if s.Type == FIFO {
		return d.resolveFIFO(s, familySet)
	}
	if s.PathName != "" {
		if familySet && s.Family != Unix {
			d.errorf(s.Key+".SockFamily", "%s conflicts with SockPathName, which makes a Unix socket: remove SockFamily or SockPathName", s.Family)
		}
		s.Family = Unix
		if s.NodeName != "" {
			d.errorf(s.Key+".SockNodeName", "a Unix socket (SockPathName) has no node name: remove SockNodeName or SockPathName")
		}
		if s.ServiceName != "" {
			d.warnf(s.Key+".SockServiceName", "ignored: a Unix socket (SockPathName) has no port")
		}
		if s.Protocol != "" {
			d.warnf(s.Key+".SockProtocol", "ignored for a Unix socket (SockPathName)")
			s.Protocol = ""
		}
		if s.MulticastGroup != "" {
			d.errorf(s.Key+".MulticastGroup", "a Unix socket (SockPathName) cannot join a multicast group")
		}
		switch {
		case len(s.PathName) > MaxUnixPath:
			d.errorf(s.Key+".SockPathName", "path is %d bytes long; Unix socket paths are limited to %d bytes: choose a shorter path", len(s.PathName), MaxUnixPath)
		case IsAbstract(s.PathName):
			d.checkAbstract(s)
		case !filepath.IsAbs(s.PathName):
			d.warnf(s.Key+".SockPathName", "%q is not an absolute path; it is relative to sockd's working directory", s.PathName)
		}
		if d.diags[nerr:].HasErrors() {
			return false
		}
		network := map[SockType]string{Stream: "unix", Dgram: "unixgram", SeqPacket: "unixpacket"}[s.Type]
		s.Endpoints = []Endpoint{{Network: network, Address: s.PathName, Passive: s.Passive}}
		return true
	}

	if s.Family == Unix {
		d.errorf(s.Key+".SockFamily", "Unix needs SockPathName (the path of the socket): add SockPathName")
		return false
	}
	for _, k := range pathKeys(s) {
		d.errorf(s.Key+"."+k, "applies only to Unix sockets (SockPathName); an inet socket has no file mode or owner, so it would be open to every client that reaches it: "+
			"remove %s, or restrict clients with SockNodeName or SockdLimits.Allow", k)
	}
	if s.Type == SeqPacket {
		d.errorf(s.Key+".SockType", "seqpacket is only available for Unix sockets on Linux: add SockPathName or use stream")
		return false
	}
	transport := "tcp"
	if s.Type == Dgram {
		transport = "udp"
	}
	switch {
	case s.ServiceName != "":
		port, err := lookupPort(transport, s.ServiceName)
		if err != nil {
			d.errorf(s.Key+".SockServiceName", "%v", err)
			return false
		}
		s.Port = port
	case s.NodeName == "":
		d.errorf(s.Key, "the socket has neither SockServiceName nor SockPathName: add SockServiceName (a port number or service name) or SockPathName (a Unix socket path)")
		return false
	default:
		// launchd would bind (or connect to) port 0: a random port nobody
		// knows, most often from a misspelt SockServiceName. Port 0 stays
		// available when written out.
		d.errorf(s.Key, "the socket has SockNodeName %q but no SockServiceName, so it would get a random port: add SockServiceName (a port number or service name; \"0\" if a random port is really meant)", s.NodeName)
		return false
	}

	fam := s.Family
	if s.MulticastGroup != "" {
		g, err := netip.ParseAddr(s.MulticastGroup)
		switch {
		case err != nil || !g.IsMulticast():
			d.errorf(s.Key+".MulticastGroup", "%q is not a multicast IP address (224.0.0.0/4 or ff00::/8)", s.MulticastGroup)
			return false
		case s.Type != Dgram:
			d.errorf(s.Key+".MulticastGroup", "multicast needs a datagram socket: set SockType to dgram")
			return false
		case g.Is4() && fam == IPv6, !g.Is4() && fam == IPv4:
			d.errorf(s.Key+".MulticastGroup", "group %s does not match SockFamily %s", g, fam)
			return false
		}
		if fam == FamilyUnspec {
			fam = IPv6
			if g.Is4() {
				fam = IPv4
			}
		}
	}
	addrs, err := resolveNode(s.NodeName, fam, s.Passive)
	if err != nil {
		d.errorf(s.Key+".SockNodeName", "%v", err)
		return false
	}
	for _, a := range addrs {
		network := transport + "6"
		if a.Is4() {
			network = transport + "4"
		}
		s.Endpoints = append(s.Endpoints, Endpoint{
			Network: network,
			Address: netip.AddrPortFrom(a, uint16(s.Port)).String(),
			Passive: s.Passive,
		})
	}
	return true
}

// lookupPort resolves a SockServiceName: a decimal port, or a name in the
// services database (/etc/services).
func lookupPort(transport, service string) (int, error) {
	if t := strings.TrimSpace(service); t != service && t != "" {
		// getaddrinfo would take " 80" as 80; the file says something else.
		return 0, fmt.Errorf("%q has blanks around it: write the port number or service name alone (%q)", service, t)
	}
	if n, err := strconv.Atoi(service); err == nil {
		if n < 0 || n > 65535 {
			return 0, fmt.Errorf("port %d is out of range (0-65535)", n)
		}
		return n, nil
	}
	if strings.TrimSpace(service) == "" {
		return 0, fmt.Errorf("is empty: give a port number or a service name from /etc/services")
	}
	port, err := net.LookupPort(transport, service)
	if err != nil {
		return 0, fmt.Errorf("unknown service name %q: it is not in the services database (/etc/services) for %s; use a port number instead, or add the name to /etc/services", service, transport)
	}
	return port, nil
}

// resolveNode turns a SockNodeName into addresses, IPv6 first, then IPv4.
func resolveNode(node string, fam Family, passive bool) ([]netip.Addr, error) {
	var addrs []netip.Addr
	switch {
	case node == "" && passive:
		addrs = []netip.Addr{netip.IPv6Unspecified(), netip.IPv4Unspecified()}
	case node == "" || strings.EqualFold(node, "localhost"):
		// getaddrinfo without AI_PASSIVE and a NULL node gives the loopback
		// addresses, as "localhost" does.
		addrs = []netip.Addr{netip.IPv6Loopback(), netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	default:
		if a, err := netip.ParseAddr(node); err == nil {
			if fam == IPv4 && !a.Is4() || fam == IPv6 && a.Is4() {
				return nil, fmt.Errorf("%s is not an %s address, but SockFamily is %s: fix SockFamily or SockNodeName", node, fam, fam)
			}
			return []netip.Addr{a}, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
		defer cancel()
		ips, err := lookupHost(ctx, node)
		if err != nil {
			return nil, fmt.Errorf("cannot resolve host name %q: %v; use an IP address or a name in /etc/hosts", node, err)
		}
		var v6, v4 []netip.Addr
		seen := map[netip.Addr]bool{}
		for _, a := range ips {
			a = a.Unmap()
			if seen[a] {
				continue
			}
			seen[a] = true
			if a.Is4() {
				v4 = append(v4, a)
			} else {
				v6 = append(v6, a)
			}
		}
		addrs = append(v6, v4...)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if fam == IPv4 && !a.Is4() || fam == IPv6 && a.Is4() {
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q has no %s address", node, fam)
	}
	return out, nil
}

// LinkEndpoints fills Endpoint.Group, Endpoint.Key and the Endpoint.Socket
// back-pointers from the enclosing groups and sockets. The loader calls it;
// code that builds a Job by hand (importers) must call it after the last
// change to j.Sockets, since the pointers refer into those slices.
func (j *Job) LinkEndpoints() {
	for gi := range j.Sockets {
		g := &j.Sockets[gi]
		for si := range g.Sockets {
			s := &g.Sockets[si]
			for ei := range s.Endpoints {
				e := &s.Endpoints[ei]
				e.Group, e.Key, e.Socket = g.Name, s.Key, s
			}
		}
	}
}

// SortSockets sorts j.Sockets by group name in byte order, the hand-off
// order, and relinks the endpoints.
func (j *Job) SortSockets() {
	sort.SliceStable(j.Sockets, func(a, b int) bool { return j.Sockets[a].Name < j.Sockets[b].Name })
	j.LinkEndpoints()
}

// conflict reports whether two endpoints claim the same address: the same
// transport and address, or a wildcard and a specific address of the same
// family and port. Port 0 never conflicts; neither do connected
// (non-passive) or multicast sockets.
func conflict(a, b *Endpoint) bool {
	if !a.Passive || !b.Passive {
		return false
	}
	ua, ub := IsPathNetwork(a.Network), IsPathNetwork(b.Network)
	if ua || ub {
		return ua && ub && a.Address == b.Address
	}
	if a.Network != b.Network {
		return false
	}
	if (a.Socket != nil && a.Socket.MulticastGroup != "") || (b.Socket != nil && b.Socket.MulticastGroup != "") {
		return false
	}
	pa, err1 := netip.ParseAddrPort(a.Address)
	pb, err2 := netip.ParseAddrPort(b.Address)
	if err1 != nil || err2 != nil {
		return a.Address == b.Address
	}
	if pa.Port() == 0 || pa.Port() != pb.Port() {
		return false
	}
	return pa.Addr() == pb.Addr() || pa.Addr().IsUnspecified() || pb.Addr().IsUnspecified()
}
