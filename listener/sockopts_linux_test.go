package listener

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/job"
)

// loadJob decodes a job file whose Sockets dictionary is socks (XML).
func loadJob(t *testing.T, socks string) *job.Job {
	t.Helper()
	data := `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>` +
		`<key>Label</key><string>org.example.opts</string><key>ProgramArguments</key><array><string>/bin/true</string></array>` +
		`<key>Sockets</key><dict>` + socks + `</dict></dict></plist>`
	j, diags := job.Decode([]byte(data), "opts.plist")
	if j == nil {
		t.Fatalf("job does not load: %v", diags)
	}
	return j
}

// openFirst opens the first endpoint of a job made of socks.
func openFirst(t *testing.T, socks string) (*Socket, error) {
	t.Helper()
	j := loadJob(t, socks)
	s, err := Open(j.Label, j.Endpoints()[0])
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func mustOpenFirst(t *testing.T, socks string) *Socket {
	t.Helper()
	s, err := openFirst(t, socks)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// readBack is the socket's Options as "Name=Value" (with " (set X)").
func readBack(s *Socket) map[string]string {
	m := map[string]string{}
	for _, o := range s.Options {
		v := o.Value
		if o.Set != "" {
			v += " (set " + o.Set + ")"
		}
		m[o.Name] = v
	}
	return m
}

func tcpDict(port int, options string) string {
	return fmt.Sprintf(`<key>L</key><dict><key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>%d</string>`+
		`<key>SockdOptions</key><dict>%s</dict></dict>`, port, options)
}

// TestOptionsTCP: every TCP option is set before listen, as getsockopt
// reads it, and Socket.Options says what the kernel reports.
func TestOptionsTCP(t *testing.T) {
	s := mustOpenFirst(t, tcpDict(0, `<key>KeepAlive</key><true/><key>KeepAliveTime</key><integer>61</integer>`+
		`<key>KeepAliveInterval</key><integer>11</integer><key>KeepAliveCount</key><integer>4</integer><key>NoDelay</key><true/>`+
		`<key>ReusePort</key><true/><key>FreeBind</key><true/><key>Mark</key><integer>77</integer><key>Priority</key><integer>5</integer>`+
		`<key>ReceiveBuffer</key><integer>65536</integer><key>SendBuffer</key><integer>32768</integer><key>Backlog</key><integer>17</integer>`+
		`<key>DeferAccept</key><integer>5</integer><key>TTL</key><integer>33</integer><key>TOS</key><integer>16</integer>`+
		// IP_TOS 16 alone would set the priority to 6 (rt_tos2priority).

		`<key>BindToDevice</key><string>lo</string>`))
	fd := s.Fd
	for _, c := range []struct {
		name       string
		level, opt int
		want       int
	}{
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 61},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 11},
		{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 4},
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{"SO_REUSEPORT", unix.SOL_SOCKET, unix.SO_REUSEPORT, 1},
		{"IP_FREEBIND", unix.IPPROTO_IP, unix.IP_FREEBIND, 1},
		{"SO_MARK", unix.SOL_SOCKET, unix.SO_MARK, 77},
		{"SO_PRIORITY", unix.SOL_SOCKET, unix.SO_PRIORITY, 5},
		{"SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, 2 * 65536},
		{"SO_SNDBUF", unix.SOL_SOCKET, unix.SO_SNDBUF, 2 * 32768},
		{"TCP_DEFER_ACCEPT", unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 7},
		{"IP_TTL", unix.IPPROTO_IP, unix.IP_TTL, 33},
		{"IP_TOS", unix.IPPROTO_IP, unix.IP_TOS, 16},
	} {
		if os.Geteuid() != 0 && (c.name == "SO_MARK") {
			continue
		}
		if got := sockopt(t, fd, c.level, c.opt); got != c.want {
			t.Errorf("%s = %d, want %d", c.name, got, c.want)
		}
	}
	if dev, err := unix.GetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE); err != nil || strings.TrimRight(dev, "\x00") != "lo" {
		t.Errorf("SO_BINDTODEVICE = %q, %v", dev, err)
	}
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil || info.Sacked != 17 {
		t.Errorf("backlog (tcpi_sacked) = %d, %v; want 17", info.Sacked, err)
	}
	got := readBack(s)
	want := map[string]string{"KeepAlive": "true", "KeepAliveTime": "61", "NoDelay": "true", "Backlog": "17", "TTL": "33", "TOS": "16",
		"ReceiveBuffer": "131072 (set 65536)", "SendBuffer": "65536 (set 32768)", "DeferAccept": "7 (set 5)", "BindToDevice": "lo", "Mark": "77"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Options[%s] = %q, want %q", k, got[k], v)
		}
	}
	if len(s.Options) != 16 || s.Options[0].Name != "KeepAlive" || s.Options[15].Name != "TOS" {
		t.Errorf("Options %v", s.Options)
	}
	if len(s.Notes) != 0 {
		t.Errorf("notes %v", s.Notes)
	}
	// An accepted connection inherits what it should.
	c, err := net.Dial("tcp4", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("x")) // DeferAccept: accept only with data
	nfd := acceptOne(t, fd)
	defer unix.Close(nfd)
	if sockopt(t, nfd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE) != 61 || sockopt(t, nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY) != 1 || sockopt(t, nfd, unix.IPPROTO_IP, unix.IP_TTL) != 33 {
		t.Errorf("accepted connection does not inherit the options")
	}
}

// TestOptionsUDP: the UDP options, and no listen.
func TestOptionsUDP(t *testing.T) {
	s := mustOpenFirst(t, `<key>U</key><dict><key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>0</string>`+
		`<key>SockType</key><string>dgram</string><key>SockdOptions</key><dict><key>Broadcast</key><true/><key>TTL</key><integer>9</integer>`+
		`<key>TOS</key><integer>32</integer><key>ReceiveBuffer</key><integer>8192</integer></dict></dict>`)
	if sockopt(t, s.Fd, unix.SOL_SOCKET, unix.SO_BROADCAST) != 1 || sockopt(t, s.Fd, unix.IPPROTO_IP, unix.IP_TTL) != 9 ||
		sockopt(t, s.Fd, unix.IPPROTO_IP, unix.IP_TOS) != 32 || sockopt(t, s.Fd, unix.SOL_SOCKET, unix.SO_RCVBUF) != 16384 {
		t.Errorf("UDP options not set: %v", s.Options)
	}
	if got := readBack(s); got["Broadcast"] != "true" || got["TTL"] != "9" {
		t.Errorf("Options %v", got)
	}
}

// TestOptionsDualStack: IPv6Only false makes one IPv6 wildcard socket that
// IPv4 clients reach; IPv6Only true is sockd's default, one socket per family.
func TestOptionsDualStack(t *testing.T) {
	if !haveIPv6Loopback() {
		t.Skip("no IPv6 loopback here")
	}
	port := freePort(t)
	j := loadJob(t, fmt.Sprintf(`<key>L</key><dict><key>SockServiceName</key><string>%d</string>`+
		`<key>SockdOptions</key><dict><key>IPv6Only</key><false/><key>TTL</key><integer>40</integer></dict></dict>`, port))
	eps := j.Endpoints()
	if len(eps) != 1 {
		t.Fatalf("endpoints %v", eps)
	}
	s, err := Open(j.Label, eps[0])
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if sockopt(t, s.Fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY) != 0 {
		t.Error("IPV6_V6ONLY is on")
	}
	if sockopt(t, s.Fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS) != 40 || sockopt(t, s.Fd, unix.IPPROTO_IP, unix.IP_TTL) != 40 {
		t.Error("TTL not set for both families")
	}
	if got := readBack(s); got["IPv6Only"] != "false" || got["TTL"] != "40" {
		t.Errorf("Options %v", got)
	}
	for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("[::1]:%d", port)} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		c.Close()
		unix.Close(acceptOne(t, s.Fd))
	}
	// IPv4 cannot bind the port beside it.
	if l, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port)); err == nil {
		l.Close()
		t.Error("an IPv4 wildcard could bind the dual-stack socket's port")
	}
}

// TestOptionRefused: an option the kernel refuses fails the socket with
// an error that names the key, the socket option and what to do.
func TestOptionRefused(t *testing.T) {
	_, err := openFirst(t, tcpDict(0, `<key>BindToDevice</key><string>nosuchdev0</string>`))
	if !errors.Is(err, unix.ENODEV) {
		t.Fatalf("err = %v, want ENODEV", err)
	}
	want := "job org.example.opts: socket L (Sockets.L) 127.0.0.1:0: SockdOptions.BindToDevice: setsockopt SO_BINDTODEVICE: no such device (no network interface has this name; `ip link` lists them)"
	if err.Error() != want {
		t.Errorf("error\n got %s\nwant %s", err, want)
	}
}

// TestOptionCapabilities: without CAP_NET_ADMIN and CAP_NET_RAW (dropped
// from one thread, as a sockd without them), Mark, Transparent and
// Priority above 6 fail their socket with the capability named, and a
// buffer beyond net.core.rmem_max is capped with a note.
func TestOptionCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to drop capabilities")
	}
	rmem, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip(err)
	}
	big, _ := strconv.Atoi(strings.TrimSpace(string(rmem)))
	cases := []struct {
		options, want string
	}{
		{`<key>Mark</key><integer>1</integer>`, "SockdOptions.Mark: setsockopt SO_MARK: operation not permitted (Mark needs CAP_NET_ADMIN, which this sockd lacks: run sockd as root or give it the capability, or remove Mark)"},
		{`<key>Transparent</key><true/>`, "SockdOptions.Transparent: setsockopt IP_TRANSPARENT: operation not permitted (Transparent needs CAP_NET_ADMIN or CAP_NET_RAW, which this sockd lacks"},
		{`<key>Priority</key><integer>7</integer>`, "SockdOptions.Priority: setsockopt SO_PRIORITY: operation not permitted (Priority needs CAP_NET_ADMIN (for a Priority above 6), which this sockd lacks"},
		{`<key>ReceiveBuffer</key><integer>` + strconv.Itoa(big*2) + `</integer>`, ""},
	}
	for _, c := range cases {
		j := loadJob(t, tcpDict(0, c.options))
		var s *Socket
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			// This thread loses the capabilities; it is never unlocked, so
			// it ends with the goroutine.
			runtime.LockOSThread()
			if e := dropNetCaps(); e != nil {
				err = e
				return
			}
			s, err = Open(j.Label, j.Endpoints()[0])
		}()
		<-done
		if c.want == "" {
			if err != nil {
				t.Fatalf("%s: %v", c.options, err)
			}
			if len(s.Notes) != 1 || !strings.Contains(s.Notes[0], "SockdOptions.ReceiveBuffer: the kernel gave the socket") || !strings.Contains(s.Notes[0], "net.core.rmem_max caps it for a sockd without CAP_NET_ADMIN") {
				t.Errorf("notes %v", s.Notes)
			}
			s.Close()
			continue
		}
		if err == nil {
			s.Close()
			t.Errorf("%s: opened without the capability", c.options)
			continue
		}
		if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant …%s…", c.options, err, c.want)
		}
	}
}

// dropNetCaps drops CAP_NET_ADMIN and CAP_NET_RAW from the calling thread.
func dropNetCaps() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	for _, c := range []uint{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW} {
		data[c/32].Effective &^= 1 << (c % 32)
		data[c/32].Permitted &^= 1 << (c % 32)
	}
	return unix.Capset(&hdr, &data[0])
}

// TestOptionsUnix: the Unix socket options, DirectoryMode and Symlinks.
func TestOptionsUnix(t *testing.T) {
	old := unix.Umask(0o077) // DirectoryMode is exact whatever the umask
	defer unix.Umask(old)
	base := t.TempDir()
	path := filepath.Join(base, "a", "b", "s.sock")
	link1, link2 := filepath.Join(base, "l1.sock"), filepath.Join(base, "c", "l2.sock")
	s := mustOpenFirst(t, `<key>U</key><dict><key>SockPathName</key><string>`+path+`</string><key>SockdOptions</key><dict>`+
		`<key>PassCredentials</key><true/><key>Backlog</key><integer>9</integer><key>DirectoryMode</key><integer>489</integer>`+
		`<key>ReceiveBuffer</key><integer>20000</integer>`+
		`<key>Symlinks</key><array><string>`+link1+`</string><string>`+link2+`</string></array></dict></dict>`)
	if sockopt(t, s.Fd, unix.SOL_SOCKET, unix.SO_PASSCRED) != 1 {
		t.Error("SO_PASSCRED not set")
	}
	for _, d := range []string{filepath.Join(base, "a"), filepath.Join(base, "a", "b"), filepath.Join(base, "c")} {
		st := lstat(t, d)
		if st.Mode&0o7777 != 0o751 || st.Uid != uint32(os.Geteuid()) {
			t.Errorf("%s: mode %#o uid %d, want 0751 and sockd's user", d, st.Mode&0o7777, st.Uid)
		}
	}
	for _, l := range []string{link1, link2} {
		if target, err := os.Readlink(l); err != nil || target != path {
			t.Errorf("%s -> %q, %v; want %s", l, target, err, path)
		}
		c, err := net.Dial("unix", l)
		if err != nil {
			t.Fatalf("dial through %s: %v", l, err)
		}
		c.Close()
		unix.Close(acceptOne(t, s.Fd))
	}
	if got := readBack(s); got["Backlog"] != "9" || got["PassCredentials"] != "true" || got["DirectoryMode"] != "0751" ||
		got["Symlinks"] != link1+","+link2 || got["ReceiveBuffer"] != "40000 (set 20000)" {
		t.Errorf("Options %v", got)
	}
	s.Close()
	if exists(link1) || exists(link2) || exists(path) {
		t.Error("Close left the socket or a link behind")
	}
	if !exists(filepath.Join(base, "a", "b")) {
		t.Error("Close removed a directory")
	}
}

// TestSymlinkInTheWay: something else at a Symlinks path fails the socket,
// is left untouched, and the socket node is removed again; a link already
// there to the socket is taken over.
func TestSymlinkInTheWay(t *testing.T) {
	base := t.TempDir()
	path, link := filepath.Join(base, "s.sock"), filepath.Join(base, "l.sock")
	dict := `<key>U</key><dict><key>SockPathName</key><string>` + path + `</string><key>SockdOptions</key><dict>` +
		`<key>Symlinks</key><array><string>` + link + `</string></array></dict></dict>`
	if err := os.Symlink("/elsewhere", link); err != nil {
		t.Fatal(err)
	}
	_, err := openFirst(t, dict)
	if !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "SockdOptions.Symlinks: symlink "+link+": file exists (a symbolic link to /elsewhere is in the way; sockd left it untouched)") {
		t.Fatalf("err = %v", err)
	}
	if target, _ := os.Readlink(link); target != "/elsewhere" || exists(path) {
		t.Fatalf("link now -> %q; socket node left: %t", target, exists(path))
	}
	os.Remove(link)
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	s := mustOpenFirst(t, dict)
	s.Close()
	if exists(link) {
		t.Error("the link taken over was not removed with the socket")
	}
}

// TestDirectoryModeUntrustedLink: root creates no directory through a
// symbolic link another user owns.
func TestDirectoryModeUntrustedLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	base := t.TempDir()
	target := filepath.Join(base, "target")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := openFirst(t, `<key>U</key><dict><key>SockPathName</key><string>`+filepath.Join(link, "new", "s.sock")+`</string>`+
		`<key>SockdOptions</key><dict><key>DirectoryMode</key><integer>493</integer></dict></dict>`)
	if err == nil || !strings.Contains(err.Error(), "is a symbolic link and the link is owned by uid 65534: root sockd does not follow a link another user can change") {
		t.Fatalf("err = %v", err)
	}
	if exists(filepath.Join(target, "new")) {
		t.Error("a directory was created through the link")
	}
}

// TestFIFO: a FIFO is created with its mode, opened for reading and
// writing (readable while data waits, never at end of file), and removed
// on Close; an existing FIFO is taken over only when it is what the job
// asks for.
func TestFIFO(t *testing.T) {
	base := t.TempDir()
	path := filepath.Join(base, "d", "in.fifo")
	dict := func(extra string) string {
		return `<key>F</key><dict><key>SockType</key><string>fifo</string><key>SockPathName</key><string>` + path + `</string>` + extra +
			`<key>SockdOptions</key><dict><key>DirectoryMode</key><integer>448</integer></dict></dict>`
	}
	s := mustOpenFirst(t, dict(`<key>SockPathMode</key><integer>416</integer>`))
	st := lstat(t, path)
	if st.Mode&unix.S_IFMT != unix.S_IFIFO || st.Mode&0o7777 != 0o640 || s.Network != "fifo" || s.Listening {
		t.Fatalf("node mode %#o, socket %v", st.Mode, s)
	}
	if fl, _ := unix.FcntlInt(uintptr(s.Fd), unix.F_GETFL, 0); fl&unix.O_ACCMODE != unix.O_RDWR || fl&unix.O_NONBLOCK == 0 {
		t.Errorf("flags %#x, want O_RDWR|O_NONBLOCK", fl)
	}
	if n, _ := unix.Poll([]unix.PollFd{{Fd: int32(s.Fd), Events: unix.POLLIN}}, 0); n != 0 {
		t.Error("an empty FIFO is readable")
	}
	w, err := os.OpenFile(path, os.O_WRONLY, 0) // never blocks: sockd reads
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("demand"))
	w.Close() // the last other writer: no EOF, sockd holds it
	waitReadable(t, s.Fd)
	buf := make([]byte, 16)
	if n, err := unix.Read(s.Fd, buf); err != nil || string(buf[:n]) != "demand" {
		t.Errorf("read %q, %v", buf[:n], err)
	}
	if n, _ := unix.Poll([]unix.PollFd{{Fd: int32(s.Fd), Events: unix.POLLIN | unix.POLLHUP}}, 0); n != 0 {
		t.Error("a drained FIFO is readable or hung up")
	}
	s.Close()
	if exists(path) {
		t.Fatal("Close left the FIFO")
	}

	// A FIFO left behind with the job's mode and owner is taken over.
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	before := lstat(t, path)
	s = mustOpenFirst(t, dict(`<key>SockPathMode</key><integer>416</integer>`))
	if after := lstat(t, path); after.Ino != before.Ino {
		t.Error("the FIFO was replaced, not taken over")
	}
	s.Close()

	// One with another mode, or a regular file, is refused and left alone.
	if err := unix.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
	_, err = openFirst(t, dict(""))
	if !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "mode 0644 is there; sockd takes an existing FIFO only when its owner, group and mode are the ones the job asks for") {
		t.Errorf("err = %v", err)
	}
	os.Remove(path)
	os.WriteFile(path, nil, 0o600)
	_, err = openFirst(t, dict(""))
	if !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "a regular file is in the way") || !exists(path) {
		t.Errorf("err = %v", err)
	}
}

// TestOptionsReopen: a reload that changes an option reopens the socket;
// one that changes nothing keeps it.
func TestOptionsReopen(t *testing.T) {
	port := freePort(t)
	r := NewRegistry(nil)
	defer r.CloseAll()
	sync := func(backlog int) *Socket {
		j := loadJob(t, tcpDict(port, fmt.Sprintf(`<key>Backlog</key><integer>%d</integer>`, backlog)))
		socks, errs := r.Sync([]*job.Job{j})
		if errs != nil {
			t.Fatal(errs)
		}
		return socks[j.Label][0]
	}
	a := sync(8)
	if b := sync(8); b != a {
		t.Error("an unchanged definition reopened the socket")
	}
	c := sync(9)
	if c == a || readBack(c)["Backlog"] != "9" {
		t.Errorf("changed Backlog: same socket %t, options %v", c == a, c.Options)
	}
}
