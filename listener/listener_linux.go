package listener

import (
	"errors"
	"fmt"
	"github.com/sockd/sockd/internal/handover"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/privilege"
	"github.com/sockd/sockd/internal/unixdial"
	"github.com/sockd/sockd/job"
)

// connectTimeout bounds the connect(2) of a SockPassive=false inet socket.
var connectTimeout = 5 * time.Second

// maxBacklog is passed to listen(2); the kernel caps it at
// net.core.somaxconn, which is what launchd's listen(fd, -1) means.
const maxBacklog = 1<<31 - 1

// Open creates the socket ep describes for the job label:
//
//   - inet (tcp4, tcp6, udp4, udp6): IPV6_V6ONLY=1 on every AF_INET6 socket
//     (0 on a dual-stack one: SockdOptions.IPv6Only false). Passive:
//     SO_REUSEADDR (SO_REUSEPORT instead, plus a group join, when the socket
//     has a MulticastGroup), the SockdOptions (applyOptions), bind, listen
//     with SockdOptions.Backlog or the maximum backlog for stream sockets.
//     SockPassive=false: the options, then connect(2) now, giving a
//     connected client socket.
//   - unix, unixgram, unixpacket: passive sockets get their options and are
//     bound at the path as described at bindUnix (node mode 0700), then
//     chmod SockPathMode, chown SockPathOwner/SockPathGroup, listen for
//     stream and seqpacket, and SockdOptions.Symlinks are made. Something
//     already at the path is removed only when it is a dead socket; see
//     clearStale. The parent directory is created only with
//     SockdOptions.DirectoryMode (parent).
//   - fifo: a named pipe, opened for reading and writing (openFIFO).
//
// The options are read back after listen (Socket.Options); an option the
// kernel refuses fails the socket with an error naming its key.
//
// The socket is close-on-exec and non-blocking. Errors are *OpenError.
func Open(label string, ep *job.Endpoint) (*Socket, error) {
	return open(label, ep, false)
}

// open is Open; onBindThread says the caller runs on the bind thread.
func open(label string, ep *job.Endpoint, onBindThread bool) (*Socket, error) {
	return openWith(label, ep, onBindThread, nil)
}

// openWith is open with the batch's walked directories (nil: none).
func openWith(label string, ep *job.Endpoint, onBindThread bool, dirs *dirCache) (*Socket, error) {
	if ep == nil {
		return nil, fmt.Errorf("job %s: socket: no endpoint", label)
	}
	o := &opener{label: label, ep: ep, direct: onBindThread, dirs: dirs}
	switch ep.Network {
	case "tcp4":
		return o.openInet(unix.AF_INET, unix.SOCK_STREAM)
	case "tcp6":
		return o.openInet(unix.AF_INET6, unix.SOCK_STREAM)
	case "udp4":
		return o.openInet(unix.AF_INET, unix.SOCK_DGRAM)
	case "udp6":
		return o.openInet(unix.AF_INET6, unix.SOCK_DGRAM)
	case "unix":
		return o.openUnix(unix.SOCK_STREAM)
	case "unixgram":
		return o.openUnix(unix.SOCK_DGRAM)
	case "unixpacket":
		return o.openUnix(unix.SOCK_SEQPACKET)
	case "fifo":
		return o.openFIFO()
	}
	return nil, o.fail("socket", fmt.Errorf("unknown network %q", ep.Network), "")
}

// opener carries one Open call, mostly for error messages.
type opener struct {
	direct bool      // running on the bind thread: bind Unix sockets in place
	dirs   *dirCache // the batch's walked directories, nil for none
	label  string
	ep     *job.Endpoint
	port   int
}

func (o *opener) fail(op string, err error, hint string) *OpenError {
	return &OpenError{
		Label:   o.label,
		Group:   o.ep.Group,
		Key:     o.ep.Key,
		Address: o.ep.Address,
		Op:      op,
		Err:     err,
		Hint:    hint,
	}
}

func (o *opener) openInet(domain, typ int) (*Socket, error) {
	ap, err := netip.ParseAddrPort(o.ep.Address)
	if err != nil {
		return nil, o.fail("parse address", err, "")
	}
	o.port = int(ap.Port())
	addr := ap.Addr()
	if domain == unix.AF_INET {
		addr = addr.Unmap()
		if !addr.Is4() {
			return nil, o.fail("parse address", fmt.Errorf("%s is not an IPv4 address", addr), "")
		}
	} else if addr.Is4() {
		return nil, o.fail("parse address", fmt.Errorf("%s is not an IPv6 address", addr), "")
	}
	sa, err := inetSockaddr(netip.AddrPortFrom(addr, ap.Port()))
	if err != nil {
		return nil, o.fail("parse address", err, "")
	}
	var group netip.Addr
	if sock := o.ep.Socket; sock != nil && sock.MulticastGroup != "" && o.ep.Passive {
		if group, err = o.multicastGroup(domain, typ, sock.MulticastGroup); err != nil {
			return nil, err
		}
	}

	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, o.fail("socket", err, "")
	}
	s, err := o.setupInet(fd, domain, typ, sa, addr, group)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return s, nil
}

func (o *opener) setupInet(fd, domain, typ int, sa unix.Sockaddr, addr, group netip.Addr) (*Socket, error) {
	if domain == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, b2i(!o.ep.DualStack())); err != nil {
			return nil, o.fail("setsockopt IPV6_V6ONLY", err, "")
		}
	}
	if err := o.applyOptions(fd, domain); err != nil {
		return nil, err
	}
	s := &Socket{Endpoint: o.ep, Label: o.label, Fd: fd, Network: o.ep.Network}
	if o.ep.Passive {
		if group.IsValid() {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
				return nil, o.fail("setsockopt SO_REUSEPORT", err, "")
			}
		} else if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return nil, o.fail("setsockopt SO_REUSEADDR", err, "")
		}
		if err := unix.Bind(fd, sa); err != nil {
			return nil, o.fail("bind", err, o.inetBindHint(err, typ))
		}
		if group.IsValid() {
			if err := joinGroup(fd, group, addr); err != nil {
				return nil, o.fail("join multicast group "+group.String(), err,
					"the group needs a multicast route or an interface: bind SockNodeName to a local address to pick the interface")
			}
		}
		if typ == unix.SOCK_STREAM {
			if err := unix.Listen(fd, o.backlog()); err != nil {
				return nil, o.fail("listen", err, "")
			}
			s.Listening = true
		}
	} else if err := connectInet(fd, sa); err != nil {
		return nil, o.fail("connect", err, o.connectHint(err))
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		return nil, o.fail("getsockname", err, "")
	}
	s.Addr = sockaddrString(local)
	o.readOptions(s, domain)
	return s, nil
}

// multicastGroup parses and checks the MulticastGroup of a passive socket.
func (o *opener) multicastGroup(domain, typ int, name string) (netip.Addr, error) {
	op := "join multicast group " + name
	if typ != unix.SOCK_DGRAM {
		return netip.Addr{}, o.fail(op, errors.New("a multicast group needs a datagram socket"), "set SockType to dgram")
	}
	g, err := netip.ParseAddr(name)
	if err != nil {
		return netip.Addr{}, o.fail(op, err, "MulticastGroup must be a numeric IPv4 or IPv6 multicast address")
	}
	g = g.Unmap()
	if !g.IsMulticast() {
		return netip.Addr{}, o.fail(op, fmt.Errorf("%s is not a multicast address", g), "")
	}
	if g.Is4() != (domain == unix.AF_INET) {
		return netip.Addr{}, o.fail(op, fmt.Errorf("group %s does not match the socket's family (%s)", g, o.ep.Network),
			"set SockFamily to the group's family")
	}
	return g, nil
}

// joinGroup joins group (IP_ADD_MEMBERSHIP or IPV6_JOIN_GROUP). When the
// socket is bound to a local unicast address, the group is joined on that
// address's interface; otherwise the kernel picks the interface by route.
func joinGroup(fd int, group, bound netip.Addr) error {
	specific := bound.IsValid() && !bound.IsUnspecified() && !bound.IsMulticast()
	if group.Is4() {
		mreq := &unix.IPMreqn{Multiaddr: group.As4()}
		if specific {
			mreq.Address = bound.As4()
		}
		return unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq)
	}
	mreq := &unix.IPv6Mreq{Multiaddr: group.As16()}
	if specific {
		idx, err := interfaceOf(bound)
		if err != nil {
			return err
		}
		mreq.Interface = uint32(idx)
	}
	return unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq)
}

// interfaceOf returns the index of the interface that has addr.
func interfaceOf(addr netip.Addr) (int, error) {
	if z := addr.Zone(); z != "" {
		return zoneIndex(z)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, err
	}
	for _, ifi := range ifs {
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == addr.WithZone("") {
					return ifi.Index, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no interface has address %s", addr)
}

// connectInet connects a non-blocking inet socket and waits (at most
// connectTimeout) for the connection to complete.
func connectInet(fd int, sa unix.Sockaddr) error {
	err := unix.Connect(fd, sa)
	if err != unix.EINPROGRESS {
		return err
	}
	deadline := time.Now().Add(connectTimeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return unix.ETIMEDOUT
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.ETIMEDOUT
		}
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return err
		}
		if soerr != 0 {
			return unix.Errno(soerr)
		}
		return nil
	}
}

func (o *opener) inetBindHint(err error, typ int) string {
	switch {
	case errors.Is(err, unix.EADDRINUSE):
		ss := "ss -ltnp"
		if typ == unix.SOCK_DGRAM {
			ss = "ss -lunp"
		}
		return fmt.Sprintf("another process or job listens there; `%s 'sport = :%d'` shows it", ss, o.port)
	case errors.Is(err, unix.EACCES) && o.port > 0 && o.port < unprivilegedPortStart():
		start := unprivilegedPortStart()
		return fmt.Sprintf("ports below %d need root or CAP_NET_BIND_SERVICE; use a port >= %d for a per-user job", start, start)
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return "no local interface has this address; check SockNodeName"
	}
	return ""
}

func (o *opener) connectHint(err error) string {
	switch {
	case errors.Is(err, unix.ECONNREFUSED):
		return "nothing listens there; SockPassive=false connects when the job is loaded"
	case errors.Is(err, unix.ETIMEDOUT):
		return fmt.Sprintf("no answer within %s; SockPassive=false connects when the job is loaded", connectTimeout)
	case errors.Is(err, unix.ENOENT):
		return "no socket at this path; SockPassive=false connects when the job is loaded"
	case errors.Is(err, unix.EAGAIN):
		return "the listener's backlog is full"
	}
	return ""
}

// unprivilegedPortStart reads net.ipv4.ip_unprivileged_port_start (1024 if
// it cannot be read).
func unprivilegedPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

func inetSockaddr(ap netip.AddrPort) (unix.Sockaddr, error) {
	addr := ap.Addr()
	if addr.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: addr.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: addr.As16()}
	if z := addr.Zone(); z != "" {
		idx, err := zoneIndex(z)
		if err != nil {
			return nil, err
		}
		sa.ZoneId = uint32(idx)
	}
	return sa, nil
}

func zoneIndex(zone string) (int, error) {
	if n, err := strconv.Atoi(zone); err == nil {
		return n, nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, fmt.Errorf("zone %q: %w", zone, err)
	}
	return ifi.Index, nil
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		addr := netip.AddrFrom16(a.Addr)
		if a.ZoneId != 0 {
			zone := strconv.Itoa(int(a.ZoneId))
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				zone = ifi.Name
			}
			addr = addr.WithZone(zone)
		}
		return netip.AddrPortFrom(addr, uint16(a.Port)).String()
	case *unix.SockaddrUnix:
		return a.Name
	}
	return fmt.Sprintf("%v", sa)
}

func (o *opener) openUnix(typ int) (*Socket, error) {
	path := o.ep.Address
	if path == "" {
		return nil, o.fail("bind", errors.New("empty socket path"), "")
	}
	if !o.ep.Passive {
		return o.connectUnix(typ, path)
	}
	if job.IsAbstract(path) {
		return o.openAbstract(typ, path)
	}
	dir, err := o.parent(path)
	if err != nil {
		return nil, o.fail("bind", err, o.dirHint(err, path))
	}
	defer dir.close()
	if err := o.clearStale(dir, path); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, o.fail("socket", err, "")
	}
	if err := o.applyOptions(fd, unix.AF_UNIX); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if testHookBeforeBind != nil {
		testHookBeforeBind(path)
	}
	modeSet, err := bindUnix(fd, dir, path, o.bindMode(), o.direct)
	if err != nil {
		unix.Close(fd)
		return nil, o.fail("bind", err, unixBindHint(err, path))
	}
	s := &Socket{Endpoint: o.ep, Label: o.label, Fd: fd, Network: o.ep.Network, Addr: path}
	node, err := nodeOf(fd, dir)
	if err != nil {
		// We cannot tell which node is ours, so we will not remove
		// anything at this path later.
		unix.Close(fd)
		return nil, o.fail("check bound node", err, "")
	}
	defer node.close()
	s.created = &createdPath{path: path, dev: node.dev, ino: node.ino, dirDev: dir.dev, dirIno: dir.ino}
	if err := o.finishUnix(s, typ, dir, node, modeSet); err != nil {
		s.Close()
		return nil, err
	}
	if err := o.makeSymlinks(s); err != nil {
		s.Close()
		return nil, err
	}
	o.readOptions(s, unix.AF_UNIX)
	return s, nil
}

// bindMode is the node's final permission bits: SockPathMode, or 0700.
func (o *opener) bindMode() uint32 {
	if sock := o.ep.Socket; sock != nil && sock.PathMode != nil {
		return uint32(sock.PathMode.Perm())
	}
	return 0o700
}

// openAbstract binds a socket in the abstract namespace (SockPathName
// "@name"): there is no file, so nothing to clear, chmod, chown or remove.
func (o *opener) openAbstract(typ int, name string) (*Socket, error) {
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, o.fail("socket", err, "")
	}
	if err := o.applyOptions(fd, unix.AF_UNIX); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		unix.Close(fd)
		hint := ""
		if errors.Is(err, unix.EADDRINUSE) {
			hint = "another socket holds this abstract name; `ss -xlp | grep '" + name + "'` shows it"
		}
		return nil, o.fail("bind", err, hint)
	}
	s := &Socket{Endpoint: o.ep, Label: o.label, Fd: fd, Network: o.ep.Network, Addr: name}
	if err := o.listenUnix(s, typ); err != nil {
		s.Close()
		return nil, err
	}
	o.readOptions(s, unix.AF_UNIX)
	return s, nil
}

// finishUnix applies SockPathMode (when the bind could not create the node
// with it), SockPathOwner/SockPathGroup, and listens. Until listen(2) a
// stream or seqpacket socket refuses every connection, so nobody connects
// before the final mode and owner are in place. Every change goes through
// the node sockd bound (see unixpath_linux.go), never through the path.
func (o *opener) finishUnix(s *Socket, typ int, dir *parentDir, node *boundNode, modeSet bool) error {
	if !modeSet {
		if err := node.chmod(dir, o.bindMode()); err != nil {
			return o.fail("chmod", err, "")
		}
	}
	if sock := o.ep.Socket; sock != nil && (sock.PathOwner != nil || sock.PathGroup != nil) {
		uid, gid := -1, -1
		if sock.PathOwner != nil {
			uid = *sock.PathOwner
		}
		if sock.PathGroup != nil {
			gid = *sock.PathGroup
		}
		if err := node.chown(dir, uid, gid); err != nil {
			hint := ""
			if errors.Is(err, unix.EPERM) {
				hint = "SockPathOwner and SockPathGroup need root or CAP_CHOWN"
			}
			return o.fail(fmt.Sprintf("chown %d:%d", uid, gid), err, hint)
		}
	}
	return o.listenUnix(s, typ)
}

func (o *opener) listenUnix(s *Socket, typ int) error {
	if typ != unix.SOCK_DGRAM {
		if err := unix.Listen(s.Fd, o.backlog()); err != nil {
			return o.fail("listen", err, "")
		}
		s.Listening = true
	}
	return nil
}

// connectUnix connects a SockPassive=false Unix socket. As root it connects
// only along a path no other user can change (unixdial.CheckPath): through
// a directory a user controls, a root connect could reach a socket that
// user may not reach.
func (o *opener) connectUnix(typ int, path string) (*Socket, error) {
	if unix.Geteuid() == 0 && !job.IsAbstract(path) {
		if err := checkConnectPath(path); err != nil {
			return nil, o.fail("connect", err, "")
		}
	}
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, o.fail("socket", err, "")
	}
	if err := o.applyOptions(fd, unix.AF_UNIX); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, o.fail("connect", err, o.connectHint(err))
	}
	s := &Socket{Endpoint: o.ep, Label: o.label, Fd: fd, Network: o.ep.Network, Addr: path}
	o.readOptions(s, unix.AF_UNIX)
	return s, nil
}

// checkConnectPath refuses a path that a user other than root could
// redirect: the proxy's rule for a Unix Backend of a job run as root
// (unixdial.CheckPath), one rule for every connect root makes.
func checkConnectPath(path string) error {
	if err := unixdial.CheckPath(path); err != nil {
		return fmt.Errorf("%w, so the path could lead root sockd to a socket that user may not reach: put the socket in a directory only root can change", err)
	}
	return nil
}

// clearStale makes room at path for a new socket, the way launchd unlinks
// the path before bind, but safely: it removes only a socket that is provably
// dead, through the directory resolved once. A live socket, a regular file,
// a directory, a symbolic link or anything else is left untouched and
// reported.
func (o *opener) clearStale(dir *parentDir, path string) error {
	var st unix.Stat_t
	err := dir.lstat(&st)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return o.fail("lstat", err, unixBindHint(err, path))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return o.fail("bind", unix.EEXIST,
			fmt.Sprintf("%s is in the way; sockd removes only dead sockets and left it untouched", fileKind(st.Mode)))
	}
	dead, err := socketIsDead(dir.connectPath(path))
	if err != nil {
		return o.fail("probe existing socket", err,
			"cannot tell whether the socket there is still in use; left untouched")
	}
	if !dead {
		return o.fail("bind", unix.EADDRINUSE,
			"a live socket is there, in use by another process; stop it or choose another SockPathName")
	}
	// Remove it only if it is still the node we probed.
	removed, err := dir.unlinkIf(st.Dev, st.Ino, unix.S_IFSOCK)
	if err != nil {
		return o.fail("remove dead socket", err, "")
	}
	if !removed {
		var again unix.Stat_t
		if err := dir.lstat(&again); !errors.Is(err, unix.ENOENT) {
			return o.fail("bind", unix.EEXIST, "the path changed while sockd checked it; left untouched")
		}
	}
	return nil
}

// socketIsDead reports whether no socket is bound to the socket node at
// path. It connects a datagram socket: the kernel answers ECONNREFUSED when
// no socket owns the node, before it compares socket types, so a live socket
// of any type gives success (datagram), EPROTOTYPE (stream, seqpacket) or
// EPERM (a datagram socket connected elsewhere). Only ECONNREFUSED is
// proof of death.
func socketIsDead(path string) (bool, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	switch {
	case err == nil, errors.Is(err, unix.EPROTOTYPE), errors.Is(err, unix.EPERM), errors.Is(err, unix.EAGAIN):
		return false, nil
	case errors.Is(err, unix.ECONNREFUSED):
		return true, nil
	}
	return false, err
}

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	}
	return "a file that is not a socket"
}

func unixBindHint(err error, path string) string {
	dir := filepath.Dir(path)
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Sprintf("parent directory %s does not exist; create it first, or set SockdOptions.DirectoryMode to have sockd create it", dir)
	case errors.Is(err, unix.EACCES):
		return fmt.Sprintf("no permission to create a socket in %s", dir)
	case errors.Is(err, unix.ENOTDIR):
		return "a component of the path is not a directory"
	case errors.Is(err, unix.EINVAL) && len(path) >= len(unix.RawSockaddrUnix{}.Path):
		return fmt.Sprintf("Unix socket paths are limited to %d bytes", len(unix.RawSockaddrUnix{}.Path)-1)
	case errors.Is(err, unix.EADDRINUSE):
		return "something was created at the path meanwhile"
	}
	return ""
}

// Binding Unix sockets under umask 077.
//
// bind(2) creates the socket node with mode 0777 &^ umask, and the umask is
// a process attribute shared by every thread of a Go program. launchd binds
// under umask 077 so the node starts as srwx------ and then applies
// SockPathMode; sockd does the same without touching the process umask:
// bindUnix hands the bind to a dedicated OS thread that left the shared
// filesystem attributes (unshare(CLONE_FS)) and set its own umask to 077.
// Those goroutines stay locked to their threads for the life of the
// process and serve every Unix bind (one per CPU, up to four, not one per
// socket: holding 10,000 sockets must not create 10,000 threads; a large
// batch opens in parts on all of them at once). The socket is bound at its final
// path, so getsockname (and sd_is_socket_unix style checks in services)
// report the real path; binding in a temporary directory and renaming it
// into place would leave the temporary name as the socket's address.
//
// Where unshare is refused (seccomp profiles that block it), bindUnix falls
// back to switching the process umask to 077 around bind, serialised by a
// mutex. In that brief window, files other goroutines create get a tighter
// mode than usual, never a looser one.
var (
	forceProcessUmask bool // tests: exercise the fallback
	processUmaskMu    sync.Mutex

	binderOnce sync.Once
	binderReqs chan func() // nil when the private-umask thread is unavailable
)

// startBinder starts the private-umask bind threads (binderThreads of
// them), or leaves binderReqs nil when unshare(CLONE_FS) is refused.
func startBinder() {
	reqs := make(chan func())
	n := 0
	for range binderThreads() {
		if !startBindThread(reqs) {
			break
		}
		n++
	}
	if n > 0 {
		binderReqs, binders = reqs, n
	}
}

// binderThreads is how many bind threads there are: one per CPU, up to
// four (a large batch opens in that many parts at once).
func binderThreads() int { return min(runtime.GOMAXPROCS(0), 4) }

// binders is how many bind threads run (0: none).
var binders int

// maxParts is how many parts a batch of opens may run in at once.
func maxParts() int {
	binderOnce.Do(startBinder)
	return max(binders, 1)
}

// startBindThread starts one bind thread serving reqs; false when
// unshare(CLONE_FS) is refused.
func startBindThread(reqs chan func()) bool {
	ready := make(chan bool)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			runtime.UnlockOSThread() // nothing changed on this thread
			ready <- false
			return
		}
		// The thread's umask now differs from the process's: it never
		// unlocks, so the runtime never runs another goroutine on it.
		unix.Umask(0o077)
		ready <- true
		for f := range reqs {
			f()
		}
	}()
	return <-ready
}

// onBinder runs f on a bind thread and reports true, or reports false
// without running f when there is no bind thread. Registry.Sync runs its
// whole batch of opens there (in parts on several threads when it is
// large), so a reload pays one thread hand-off, not one per Unix socket.
func onBinder(f func()) bool {
	if forceProcessUmask {
		return false
	}
	binderOnce.Do(startBinder)
	if binderReqs == nil {
		return false
	}
	done := make(chan struct{})
	binderReqs <- func() { f(); close(done) }
	<-done
	return true
}

// bindUnix binds a Unix socket at path, in dir, so that its node is created
// with mode (the umask is 0777 &^ mode for the bind). direct says the caller
// already runs on the bind thread. It reports whether the node has its final
// mode: in the process-umask fallback it is bound under umask 077 (a looser
// process umask, even briefly, could let other goroutines create looser
// files) and the caller applies the mode through the node.
//
// Where another user could change a directory on the way to dir
// (!dir.chainSafe), the path is not looked up again: the bind thread, whose
// working directory is its own, binds the bare name in the held directory
// (getsockname then reports the name alone). Without a bind thread such a
// socket is refused.
func bindUnix(fd int, dir *parentDir, path string, mode uint32, direct bool) (bool, error) {
	sa := &unix.SockaddrUnix{Name: path}
	bindAs := func() error {
		unix.Umask(int(0o777 &^ mode))
		defer unix.Umask(0o077)
		if dir.chainSafe {
			return unix.Bind(fd, sa)
		}
		return bindInDir(fd, dir)
	}
	if direct {
		return true, bindAs()
	}
	var err error
	if onBinder(func() { err = bindAs() }) {
		return true, err
	}
	if !dir.chainSafe {
		return false, errNoBindThread
	}
	processUmaskMu.Lock()
	defer processUmaskMu.Unlock()
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	return mode == 0o700, unix.Bind(fd, sa)
}

// bindInDir binds fd to dir's name relative to the held directory. Bind
// thread only: it changes the thread's own working directory.
func bindInDir(fd int, dir *parentDir) error {
	if err := unix.Fchdir(dir.fd); err != nil {
		return err
	}
	defer unix.Chdir("/")
	return unix.Bind(fd, &unix.SockaddrUnix{Name: dir.name})
}

// errNoBindThread refuses a bind that is safe only on the bind thread.
var errNoBindThread = errors.New("a directory on the socket's path can be changed by a user other than root, " +
	"and without unshare(CLONE_FS) sockd cannot bind inside the directory it checked")

func closeSocket(s *Socket) error {
	var errs []error
	if err := unix.Close(s.Fd); err != nil {
		errs = append(errs, err)
	}
	for _, l := range s.links {
		if err := removeNode(l); err != nil {
			errs = append(errs, fmt.Errorf("remove link %s: %w", l.path, err))
		}
	}
	if c := s.created; c != nil {
		if err := removeNode(c); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", c.path, err))
		}
	}
	return errors.Join(errs...)
}

// SetBlocking clears (blocking=true) or sets O_NONBLOCK on fd. The flag lives
// on the open file description, so it changes every duplicate of fd too.
func SetBlocking(fd int, blocking bool) error {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil && (fl&unix.O_NONBLOCK == 0) != blocking {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl^unix.O_NONBLOCK)
	}
	if err != nil {
		return fmt.Errorf("fd %d: set O_NONBLOCK=%t: %w", fd, !blocking, err)
	}
	return nil
}

// IsBlocking reports whether O_NONBLOCK is clear on fd.
func IsBlocking(fd int) (bool, error) {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return false, fmt.Errorf("fd %d: F_GETFL: %w", fd, err)
	}
	return fl&unix.O_NONBLOCK == 0, nil
}

// openBatch opens every endpoint of a Sync in parts (at most maxParts),
// each on a bind thread when there are any, all at once; each(i, open)
// opens part i. Without bind threads the parts run one after the other.
func openBatch(parts int, each func(part int, open openFunc)) {
	if parts == 1 { // a reload of a few jobs: one hand-off, no goroutine
		if !onBinder(func() { openPart(0, each) }) {
			each(0, openAs)
		}
		return
	}
	var wg sync.WaitGroup
	onThread := make([]bool, parts)
	for i := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			onThread[i] = onBinder(func() { openPart(i, each) })
		}()
	}
	wg.Wait()
	for i, ok := range onThread {
		if !ok {
			each(i, openAs)
		}
	}
}

// openPart runs part i of a batch on the bind thread it is called on,
// with a directory cache of its own.
func openPart(i int, each func(part int, open openFunc)) {
	dirs := &dirCache{}
	defer dirs.close()
	each(i, func(label string, ep *job.Endpoint, as *job.Domain) (*Socket, error) {
		return openOnBinder(label, ep, as, dirs)
	})
}

// dirCache is the parent directories of Unix sockets that one batch of
// opens on the bind thread walked (safepath.WalkDir), by path: 10,000
// sockets in one directory walk it once (the walk was a sixth of starting
// 10,000 jobs) and share its descriptor (no dup, fstat and close per
// socket). Only walks whose whole chain root alone can change are kept
// (chainSafe): the directory a later socket's path leads to is then the
// one walked. Sockd's own opens only (a user domain's walk with its
// user's rights). Bind thread only.
type dirCache struct {
	dirs map[string]*cachedDir
}

// cachedDir is one walked directory: its O_PATH descriptor, identity, and
// whether only root can change its entries (see parentDir.trusted).
type cachedDir struct {
	fd       int
	dev, ino uint64
	trusted  bool
}

// parent is openParent from the cache when it can be. The parentDir it
// returns may borrow the cache's descriptor: its close leaves it open.
func (c *dirCache) parent(path string) (*parentDir, error) {
	dir, name, err := splitSocketPath(path)
	if err != nil {
		return nil, err
	}
	if cd, ok := c.dirs[dir]; ok {
		return &parentDir{fd: cd.fd, path: dir, name: name, chainSafe: true, dev: cd.dev, ino: cd.ino,
			trusted: cd.trusted, borrowed: true}, nil
	}
	p, err := openParent(path)
	if err != nil || !p.chainSafe {
		return p, err
	}
	others, _, err := p.writableByOthers()
	if err != nil {
		return p, nil // not kept: the next socket walks again
	}
	if c.dirs == nil {
		c.dirs = map[string]*cachedDir{}
	}
	p.trusted = !others
	c.dirs[dir] = &cachedDir{fd: p.fd, dev: p.dev, ino: p.ino, trusted: p.trusted}
	p.borrowed = true
	return p, nil
}

func (c *dirCache) close() {
	for _, cd := range c.dirs {
		unix.Close(cd.fd)
	}
}

// openOnBinder opens ep on the bind thread: as sockd (through the batch's
// dirs), or, for a user domain's job (as), with the thread's credentials
// switched to that user's for the whole open, so that the kernel judges
// the bind, the socket's file, its owner and mode and every option as it
// would for the user.
func openOnBinder(label string, ep *job.Endpoint, as *job.Domain, dirs *dirCache) (*Socket, error) {
	if as == nil {
		return openWith(label, ep, true, dirs)
	}
	var s *Socket
	var err error
	tainted, cerr := privilege.OnLockedThread(as.CredFor(ep), func() { s, err = open(label, ep, true) })
	if tainted {
		// The bind thread would go on with the user's credentials; they
		// are narrower than sockd's, but nothing may bind as the wrong
		// user.
		panic("listener: bind thread: " + cerr.Error())
	}
	if cerr != nil {
		return nil, asUserFailed(label, ep, as, cerr)
	}
	return s, err
}

// openAs is Open, as the user of a user domain (as) when it is set.
func openAs(label string, ep *job.Endpoint, as *job.Domain) (*Socket, error) {
	if as == nil {
		return Open(label, ep)
	}
	var s *Socket
	var err error
	if cerr := privilege.RunAs(as.CredFor(ep), func() { s, err = Open(label, ep) }); cerr != nil {
		return nil, asUserFailed(label, ep, as, cerr)
	}
	return s, err
}

func asUserFailed(label string, ep *job.Endpoint, as *job.Domain, err error) error {
	o := &opener{label: label, ep: ep}
	return o.fail("become "+as.Name()+"'s user", err, "sockd opens a user domain's sockets with that user's rights, and could not take them on")
}

// checkInherited makes an inherited fd close-on-exec and checks that it
// is a socket (or a FIFO: SockType fifo).
func checkInherited(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFSOCK && t != unix.S_IFIFO {
		return fmt.Errorf("not a socket (mode %o)", st.Mode)
	}
	return nil
}

// closeOnExec makes adopted fds close-on-exec again, a few syscalls for
// thousands of fds (handover.CloseOnExec).
func closeOnExec(fds []int) { handover.CloseOnExec(fds) }
