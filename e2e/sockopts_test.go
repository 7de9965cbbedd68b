package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	// sockopts reports getsockopt of every passed socket (fds 3...) into
	// args[0], one line per fd, then answers one connection on the socket
	// named args[1]: it reads what the client sent and answers "ok\n".
	helpers["sockopts"] = func(args []string) int {
		names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
		var b strings.Builder
		serve := -1
		for i := 0; i < atoiEnv("LISTEN_FDS"); i++ {
			fd := 3 + i
			fmt.Fprintf(&b, "name=%s %s\n", names[i], sockoptReport(fd))
			if names[i] == args[1] {
				serve = fd
			}
		}
		if err := os.WriteFile(args[0]+".tmp", []byte(b.String()), 0o644); err != nil {
			return 3
		}
		if err := os.Rename(args[0]+".tmp", args[0]); err != nil {
			return 3
		}
		if serve < 0 {
			return 4
		}
		nfd, _, err := unix.Accept(serve)
		if err != nil {
			return 5
		}
		buf := make([]byte, 64)
		_, _ = unix.Read(nfd, buf) // what the client sent (unread, close would reset)
		_, _ = unix.Write(nfd, []byte("ok\n"))
		unix.Close(nfd)
		return 0
	}
	// fifo-read reads what waits in the FIFO (fd 3, or fd 0 with args[1]
	// "stdin") and appends it, with its pid, to args[0].
	helpers["fifo-read"] = func(args []string) int {
		fd := 3
		if len(args) > 1 && args[1] == "stdin" {
			fd = 0
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
			appendLine(args[0], fmt.Sprintf("fd %d is not a FIFO: %v", fd, err))
			return 3
		}
		buf := make([]byte, 4096)
		n, err := unix.Read(fd, buf) // blocking: sockd hands it over blocking
		if err != nil {
			appendLine(args[0], "read: "+err.Error())
			return 3
		}
		appendLine(args[0], fmt.Sprintf("pid=%d names=%s data=%q", os.Getpid(), os.Getenv("LISTEN_FDNAMES"), buf[:n]))
		return 0
	}
}

// sockoptReport is "KEY=value ..." of the socket options of fd, as
// getsockopt reads them, for the kind of socket fd is.
func sockoptReport(fd int) string {
	var parts []string
	get := func(name string, level, opt int) {
		if v, err := unix.GetsockoptInt(fd, level, opt); err == nil {
			parts = append(parts, fmt.Sprintf("%s=%d", name, v))
		}
	}
	domain, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	typ, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	parts = append(parts, fmt.Sprintf("domain=%d type=%d", domain, typ))
	get("SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF)
	get("SO_SNDBUF", unix.SOL_SOCKET, unix.SO_SNDBUF)
	if domain == unix.AF_UNIX {
		get("SO_PASSCRED", unix.SOL_SOCKET, unix.SO_PASSCRED)
		return strings.Join(parts, " ")
	}
	get("SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE)
	get("SO_REUSEPORT", unix.SOL_SOCKET, unix.SO_REUSEPORT)
	get("SO_MARK", unix.SOL_SOCKET, unix.SO_MARK)
	get("SO_PRIORITY", unix.SOL_SOCKET, unix.SO_PRIORITY)
	get("SO_BROADCAST", unix.SOL_SOCKET, unix.SO_BROADCAST)
	if dev, err := unix.GetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE); err == nil && strings.TrimRight(dev, "\x00") != "" {
		parts = append(parts, "SO_BINDTODEVICE="+strings.TrimRight(dev, "\x00"))
	}
	if domain == unix.AF_INET6 {
		get("IPV6_V6ONLY", unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		get("IPV6_FREEBIND", unix.IPPROTO_IPV6, unix.IPV6_FREEBIND)
		get("IPV6_TRANSPARENT", unix.IPPROTO_IPV6, unix.IPV6_TRANSPARENT)
		get("IPV6_UNICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS)
		get("IPV6_TCLASS", unix.IPPROTO_IPV6, unix.IPV6_TCLASS)
	}
	get("IP_FREEBIND", unix.IPPROTO_IP, unix.IP_FREEBIND)
	get("IP_TRANSPARENT", unix.IPPROTO_IP, unix.IP_TRANSPARENT)
	get("IP_TTL", unix.IPPROTO_IP, unix.IP_TTL)
	get("IP_TOS", unix.IPPROTO_IP, unix.IP_TOS)
	if typ == unix.SOCK_STREAM {
		get("TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		get("TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
		get("TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
		get("TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY)
		get("TCP_DEFER_ACCEPT", unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT)
		if info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			parts = append(parts, fmt.Sprintf("backlog=%d", info.Sacked))
		}
	}
	return strings.Join(parts, " ")
}

// readReport parses the sockopts helper's report: name -> key -> value.
func readReport(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	var data []byte
	if !eventually(10*time.Second, func() bool {
		var err error
		data, err = os.ReadFile(path)
		return err == nil
	}) {
		t.Fatalf("the service wrote no report at %s", path)
	}
	out := map[string]map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		m := map[string]string{}
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				m[k] = v
			}
		}
		out[m["name"]] = m
	}
	return out
}

// ssLine is the line of `ss ARGS FILTER` about one socket (without the
// header).
func ssLine(t *testing.T, args ...string) string {
	t.Helper()
	line, err := ssFind(args...)
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// ssFind is ssLine's socket line, or an error when ss fails or finds none
// (a socket a reload is reopening, say).
func ssFind(args ...string) (string, error) {
	out, err := exec.Command("ss", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ss %v: %v\n%s", args, err, out)
	}
	lines := strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)
	if len(lines) < 2 {
		return "", fmt.Errorf("ss %v: no socket\n%s", args, out)
	}
	return lines[1], nil
}

// liveSockets is `sockd print --json LABEL`'s sockets of the live job.
func (d *daemon) liveSockets(t *testing.T, label string) []struct {
	Name    string `json:"name"`
	Network string `json:"network"`
	Address string `json:"address"`
	Options []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
		Set   string `json:"set"`
	} `json:"options"`
} {
	t.Helper()
	out, err := exec.Command(sockdBin, "print", "--control", d.control, "--json", label).Output()
	if err != nil {
		t.Fatalf("sockd print %s: %v", label, err)
	}
	var a struct {
		Jobs []struct {
			Sockets []struct {
				Name    string `json:"name"`
				Network string `json:"network"`
				Address string `json:"address"`
				Options []struct {
					Name  string `json:"name"`
					Value string `json:"value"`
					Set   string `json:"set"`
				} `json:"options"`
			} `json:"sockets"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out, &a); err != nil || len(a.Jobs) != 1 {
		t.Fatalf("sockd print %s: %v\n%s", label, err, out)
	}
	return a.Jobs[0].Sockets
}

// TestSockOptionsHandoff: every SockdOptions key is set on the socket the
// service gets, as getsockopt in the service reads it; ss shows the
// listening side (backlog, mark, buffer); a Unix socket's directories and
// links are made; print shows the kernel's values; and a dual-stack
// socket takes IPv4 clients.
func TestSockOptionsHandoff(t *testing.T) {
	needRoot(t) // Mark, Transparent and forced buffers need CAP_NET_ADMIN
	needProgram(t, "ss")
	ipv6 := true
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		ipv6 = false
	} else {
		l.Close()
	}
	dir, run := t.TempDir(), t.TempDir()
	report := filepath.Join(t.TempDir(), "report")
	pT, pU, pD := freePort(t, "tcp"), freePort(t, "udp"), freePort(t, "tcp")
	unixPath := filepath.Join(run, "a", "b", "s.sock")
	link := filepath.Join(run, "links", "s.sock")
	sockets := map[string]any{
		"T": map[string]any{"SockNodeName": "127.0.0.1", "SockServiceName": strconv.Itoa(pT), "SockdOptions": map[string]any{
			"KeepAlive": true, "KeepAliveTime": 61, "KeepAliveInterval": 11, "KeepAliveCount": 4, "NoDelay": true,
			"ReusePort": true, "FreeBind": true, "Transparent": true, "BindToDevice": "lo", "Mark": 77, "Priority": 7,
			"ReceiveBuffer": 65536, "SendBuffer": 32768, "Backlog": 17, "DeferAccept": 5, "TTL": 33, "TOS": 8,
		}},
		"U": map[string]any{"SockNodeName": "127.0.0.1", "SockServiceName": strconv.Itoa(pU), "SockType": "dgram", "SockdOptions": map[string]any{
			"Broadcast": true, "TTL": 9, "TOS": 32, "ReceiveBuffer": 8192,
		}},
		"X": map[string]any{"SockPathName": unixPath, "SockPathMode": 438, "SockdOptions": map[string]any{
			"PassCredentials": true, "Backlog": 5, "DirectoryMode": 0o751, "Symlinks": []string{link},
		}},
	}
	serve, dialAddr := "T", fmt.Sprintf("127.0.0.1:%d", pT)
	if ipv6 {
		sockets["D"] = map[string]any{"SockServiceName": strconv.Itoa(pD), "SockdOptions": map[string]any{"IPv6Only": false, "TTL": 40}}
		serve, dialAddr = "D", fmt.Sprintf("127.0.0.1:%d", pD) // IPv4 to the one IPv6 socket
	}
	writeJob(t, dir, "opts", map[string]any{
		"Label":                "test.sockopts",
		"ProgramArguments":     helperArgv("sockopts", report, serve),
		"EnvironmentVariables": helperEnv(),
		"Sockets":              sockets,
	})
	d := startSockd(t, dir)

	// The listening side, before the service runs.
	ss := ssLine(t, "-ltnoe", fmt.Sprintf("sport = :%d", pT))
	if f := strings.Fields(ss); len(f) < 3 || f[2] != "17" || !strings.Contains(ss, "fwmark:0x4d") {
		t.Errorf("ss -ltnoe: want Send-Q (backlog) 17 and fwmark:0x4d:\n%s", ss)
	}
	if mem := ssLine(t, "-ltnm", fmt.Sprintf("sport = :%d", pT)); !strings.Contains(mem, "rb131072") {
		t.Errorf("ss -ltnm: want rb131072:\n%s", mem)
	}
	if f := strings.Fields(ssLine(t, "-lxn", "src", unixPath)); len(f) < 4 || f[3] != "5" {
		t.Errorf("ss -lxn: want Send-Q (backlog) 5: %v", f)
	}
	for _, p := range []string{filepath.Join(run, "a"), filepath.Join(run, "a", "b"), filepath.Join(run, "links")} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o751 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("%s: %v %v, want a directory of root, mode 0751", p, fi.Mode(), err)
		}
	}
	if target, err := os.Readlink(link); err != nil || target != unixPath {
		t.Errorf("%s -> %q, %v", link, target, err)
	}
	if ipv6 {
		if l, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", pD)); err == nil {
			l.Close()
			t.Error("an IPv4 socket could bind the dual-stack socket's port")
		}
	}

	// The service gets the options (DeferAccept: the client speaks first).
	if got := dialRead(t, "tcp4", dialAddr, "hello"); got != "ok\n" {
		t.Fatalf("service answered %q", got)
	}
	r := readReport(t, report)
	want := map[string]map[string]string{
		"T": {"domain": "2", "type": "1", "SO_KEEPALIVE": "1", "TCP_KEEPIDLE": "61", "TCP_KEEPINTVL": "11", "TCP_KEEPCNT": "4",
			"TCP_NODELAY": "1", "SO_REUSEPORT": "1", "IP_FREEBIND": "1", "IP_TRANSPARENT": "1", "SO_BINDTODEVICE": "lo",
			"SO_MARK": "77", "SO_PRIORITY": "7", "SO_RCVBUF": "131072", "SO_SNDBUF": "65536", "backlog": "17",
			"TCP_DEFER_ACCEPT": "7", "IP_TTL": "33", "IP_TOS": "8", "SO_BROADCAST": "0"},
		"U": {"domain": "2", "type": "2", "SO_BROADCAST": "1", "IP_TTL": "9", "IP_TOS": "32", "SO_RCVBUF": "16384", "SO_KEEPALIVE": "0"},
		"X": {"domain": "1", "type": "1", "SO_PASSCRED": "1"},
	}
	if ipv6 {
		want["D"] = map[string]string{"domain": "10", "IPV6_V6ONLY": "0", "IPV6_UNICAST_HOPS": "40", "IP_TTL": "40"}
	}
	for name, kv := range want {
		for k, v := range kv {
			if got := r[name][k]; got != v {
				t.Errorf("socket %s: %s = %q, want %q", name, k, got, v)
			}
		}
	}

	// print shows what the kernel reports.
	live := map[string]string{}
	for _, s := range d.liveSockets(t, "test.sockopts") {
		for _, o := range s.Options {
			v := o.Value
			if o.Set != "" {
				v += " (set " + o.Set + ")"
			}
			live[s.Name+"."+o.Name] = v
		}
	}
	for k, v := range map[string]string{"T.Backlog": "17", "T.Mark": "77", "T.ReceiveBuffer": "131072 (set 65536)",
		"T.DeferAccept": "7 (set 5)", "T.BindToDevice": "lo", "U.Broadcast": "true", "X.DirectoryMode": "0751", "X.Symlinks": link} {
		if live[k] != v {
			t.Errorf("print: %s = %q, want %q (all: %v)", k, live[k], v, live)
		}
	}
	out, err := exec.Command(sockdBin, "print", "--control", d.control, "test.sockopts").Output()
	if err != nil || !strings.Contains(string(out), "KeepAlive=true, KeepAliveTime=61") || !strings.Contains(string(out), "DeferAccept=7 (set 5)") {
		t.Errorf("print text: %v\n%s", err, out)
	}

	// sockd removes its links and socket, not its directories.
	if err := d.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); err == nil {
		t.Error("the link outlived sockd")
	}
	if _, err := os.Lstat(unixPath); err == nil {
		t.Error("the socket outlived sockd")
	}
}

// TestSockOptionRefused: an option the kernel refuses fails that socket
// only: the job serves its other socket, the log names the key; a reload
// that changes an option reopens the socket with it.
func TestSockOptionRefused(t *testing.T) {
	needProgram(t, "ss")
	dir := t.TempDir()
	good, bad := freePort(t, "tcp"), freePort(t, "tcp")
	jobOf := func(backlog int) map[string]any {
		return map[string]any{
			"Label":                "test.refused",
			"ProgramArguments":     helperArgv("echo"),
			"EnvironmentVariables": helperEnv(),
			"inetdCompatibility":   map[string]any{"Wait": false},
			"Sockets": map[string]any{
				"Good": map[string]any{"SockNodeName": "127.0.0.1", "SockServiceName": strconv.Itoa(good),
					"SockdOptions": map[string]any{"Backlog": backlog, "NoDelay": true}},
				"Bad": map[string]any{"SockNodeName": "127.0.0.1", "SockServiceName": strconv.Itoa(bad),
					"SockdOptions": map[string]any{"BindToDevice": "nosuchdev0"}},
			},
		}
	}
	writeJob(t, dir, "refused", jobOf(11))
	d := startSockd(t, dir)
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", good), "one\n"); got != "one\n" {
		t.Fatalf("the good socket answered %q", got)
	}
	if !d.waitLog("SockdOptions.BindToDevice: setsockopt SO_BINDTODEVICE: no such device (no network interface has this name", 5*time.Second) {
		t.Error("the refused option is not logged with its key")
	}
	if c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", bad), time.Second); err == nil {
		c.Close()
		t.Error("the socket whose option failed listens")
	}
	if f := strings.Fields(ssLine(t, "-ltn", fmt.Sprintf("sport = :%d", good))); f[2] != "11" {
		t.Errorf("backlog %s, want 11", f[2])
	}
	writeJob(t, dir, "refused", jobOf(23))
	d.signal(syscall.SIGHUP)
	if !eventually(10*time.Second, func() bool {
		// The reload closes the socket and opens it again with the new
		// backlog: for a moment there is none.
		line, err := ssFind("-ltn", fmt.Sprintf("sport = :%d", good))
		f := strings.Fields(line)
		return err == nil && len(f) > 2 && f[2] == "23"
	}) {
		t.Errorf("after the reload: %s", ssLine(t, "-ltn", fmt.Sprintf("sport = :%d", good)))
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", good), "two\n"); got != "two\n" {
		t.Fatalf("after the reload the good socket answered %q", got)
	}
}

// TestFIFOHandoff: writing to a FIFO starts the handoff job, which gets it
// as fd 3 and reads the data; data written later starts it again; the
// FIFO (in a directory sockd made) is removed when sockd stops.
func TestFIFOHandoff(t *testing.T) {
	dir, run := t.TempDir(), t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	fifo := filepath.Join(run, "sub", "in.fifo")
	writeJob(t, dir, "fifo", map[string]any{
		"Label":                "test.fifo",
		"ProgramArguments":     helperArgv("fifo-read", out),
		"EnvironmentVariables": helperEnv(),
		"ThrottleInterval":     1,
		"Sockets": map[string]any{"In": map[string]any{"SockType": "fifo", "SockPathName": fifo, "SockPathMode": 0o620,
			"SockdOptions": map[string]any{"DirectoryMode": 0o700}}},
	})
	d := startSockd(t, dir)
	fi, err := os.Lstat(fifo)
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 || fi.Mode().Perm() != 0o620 {
		t.Fatalf("FIFO: %v %v", fi, err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(out); err == nil {
		t.Fatal("the job started before any data")
	}
	write := func(s string) {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // sockd holds a reader: no wait
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, s); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	write("first\n")
	if !eventually(10*time.Second, func() bool { return countLines(out) == 1 }) {
		t.Fatalf("the job did not read the FIFO: %d lines", countLines(out))
	}
	write("second\n")
	if !eventually(10*time.Second, func() bool { return countLines(out) == 2 }) {
		t.Fatalf("the second write did not start the job: %d lines", countLines(out))
	}
	data, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if !strings.HasSuffix(lines[0], `names=In data="first\n"`) || !strings.HasSuffix(lines[1], `names=In data="second\n"`) {
		t.Errorf("the job read:\n%s", data)
	}
	socks := d.liveSockets(t, "test.fifo")
	if len(socks) != 1 || socks[0].Network != "fifo" || socks[0].Address != fifo {
		t.Errorf("print: %+v", socks)
	}
	if err := d.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(fifo); err == nil {
		t.Error("the FIFO outlived sockd")
	}
}

// TestFIFOWait: an inetd Wait=true job gets the FIFO on fd 0 and reads it.
func TestFIFOWait(t *testing.T) {
	dir, run := t.TempDir(), t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	fifo := filepath.Join(run, "w.fifo")
	writeJob(t, dir, "fifo", map[string]any{
		"Label":                "test.fifo.wait",
		"ProgramArguments":     helperArgv("fifo-read", out, "stdin"),
		"EnvironmentVariables": helperEnv(),
		"inetdCompatibility":   map[string]any{"Wait": true},
		"Sockets":              map[string]any{"In": map[string]any{"SockType": "fifo", "SockPathName": fifo}},
	})
	startSockd(t, dir)
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(w, "waited\n")
	w.Close()
	if !eventually(10*time.Second, func() bool { return countLines(out) == 1 }) {
		t.Fatalf("the wait-mode child did not read the FIFO")
	}
	if data, _ := os.ReadFile(out); !strings.Contains(string(data), `data="waited\n"`) {
		t.Errorf("the child read %s", data)
	}
}
