package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInetdConfRsync: a real inetd.conf line runs the real rsync daemon
// (inetd mode) for the real rsync client; the same file serves the echo
// and daytime internal services by name.
func TestInetdConfRsync(t *testing.T) {
	needRoot(t)
	needProgram(t, "/usr/bin/rsync")
	d := t.TempDir()
	data := filepath.Join(d, "data")
	if err := os.MkdirAll(filepath.Join(data, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"a.txt": "alpha\n", "sub/b.txt": strings.Repeat("beta\n", 1000)}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(data, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(d, "rsyncd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("use chroot = no\nuid = root\ngid = root\nlog file = %s/rsyncd.log\n[data]\n\tpath = %s\n\tread only = yes\n\tcomment = sockd test module\n", d, data)), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t, "tcp")
	inetdConf := filepath.Join(d, "inetd.conf")
	lines := fmt.Sprintf("# sockd e2e\n127.0.0.1:%d stream tcp4 nowait root /usr/bin/rsync rsync --daemon --config=%s\n"+
		"127.0.0.1:echo stream tcp4 nowait root internal\n127.0.0.1:echo dgram udp4 wait root internal\n"+
		"127.0.0.1:daytime stream tcp4 nowait root internal\n", port, conf)
	if err := os.WriteFile(inetdConf, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	dm := startSockd(t, t.TempDir(), "--inetd-conf", inetdConf)

	list, err := exec.Command("rsync", fmt.Sprintf("rsync://127.0.0.1:%d/", port)).CombinedOutput()
	if err != nil || !strings.Contains(string(list), "sockd test module") {
		t.Fatalf("rsync module list: %v\n%s", err, list)
	}
	out := filepath.Join(d, "out")
	if b, err := exec.Command("rsync", "-a", fmt.Sprintf("rsync://127.0.0.1:%d/data/", port), out+"/").CombinedOutput(); err != nil {
		t.Fatalf("rsync copy: %v\n%s", err, b)
	}
	for name, content := range files {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(got) != content {
			t.Errorf("%s copied as %d bytes (%v), want %d", name, len(got), err, len(content))
		}
	}
	// Internal services from the same file, by service name (ports 7, 13).
	if got := dialRead(t, "tcp4", "127.0.0.1:7", "ping\n"); got != "ping\n" {
		t.Errorf("internal echo/tcp: %q", got)
	}
	if got := udpRoundTrip(t, "127.0.0.1:7", "ping"); got != "ping" {
		t.Errorf("internal echo/udp: %q", got)
	}
	if got := dialRead(t, "tcp4", "127.0.0.1:13", ""); !daytimeRE.MatchString(got) {
		t.Errorf("internal daytime: %q", got)
	}
	if n := dmCountStarted(dm); n != 0 {
		t.Errorf("internal services spawned %d processes", n)
	}
}

func dmCountStarted(d *daemon) int { return d.countLogs("started", "") }

var daytimeRE = regexp.MustCompile(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] [0-9]{4}\r\n$`)

func udpRoundTrip(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for i := 0; i < 5; i++ {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err == nil {
			return string(buf[:n])
		}
	}
	return "(no reply)"
}

// TestXinetdGitDaemon: a real xinetd service file (type UNLISTED) runs
// the real git daemon in inetd mode for the real git client.
func TestXinetdGitDaemon(t *testing.T) {
	needRoot(t)
	needProgram(t, "git")
	d := t.TempDir()
	src := filepath.Join(d, "src")
	run := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@x", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@x")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	run(src, "git", "init", "-q")
	if err := os.WriteFile(filepath.Join(src, "README"), []byte("served through sockd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(src, "git", "add", "README")
	run(src, "git", "commit", "-q", "-m", "first")
	base := filepath.Join(d, "git")
	run(d, "git", "clone", "-q", "--bare", src, filepath.Join(base, "repo.git"))

	port := freePort(t, "tcp")
	xd := filepath.Join(d, "xinetd.d")
	if err := os.MkdirAll(xd, 0o755); err != nil {
		t.Fatal(err)
	}
	svc := fmt.Sprintf(`# git daemon through sockd
service sockd-git
{
	type        = UNLISTED
	socket_type = stream
	protocol    = tcp
	wait        = no
	user        = root
	bind        = 127.0.0.1
	port        = %d
	server      = /usr/bin/git
	server_args = daemon --inetd --export-all --base-path=%s
	log_on_failure += USERID
	instances   = 10
	per_source  = 5
}
`, port, base)
	if err := os.WriteFile(filepath.Join(xd, "git"), []byte(svc), 0o644); err != nil {
		t.Fatal(err)
	}
	dm := startSockd(t, t.TempDir(), "--xinetd", xd)
	if !strings.Contains(dm.logBuf.String(), "log_on_failure") {
		t.Errorf("the attribute sockd does not honour (log_on_failure) was not reported")
	}
	clone := filepath.Join(d, "clone")
	run(d, "git", "clone", "-q", fmt.Sprintf("git://127.0.0.1:%d/repo.git", port), clone)
	got, err := os.ReadFile(filepath.Join(clone, "README"))
	if err != nil || string(got) != "served through sockd\n" {
		t.Errorf("cloned README %q (%v)", got, err)
	}
}

// TestInternalServicesJobFile: SockdInternal in a job file, over TCP and
// UDP; RFC 868 time; UDP replies never go to a source port below 1024.
func TestInternalServicesJobFile(t *testing.T) {
	dir := t.TempDir()
	tcpPort, udpPort := freePort(t, "tcp"), freePort(t, "udp")
	writeJob(t, dir, "time", map[string]any{
		"Label":         "test.time",
		"SockdInternal": "time",
		"Sockets":       map[string]any{"Listeners": tcpSocket(tcpPort)},
	})
	writeJob(t, dir, "uecho", map[string]any{
		"Label":         "test.udp-echo",
		"SockdInternal": "echo",
		"Sockets": map[string]any{"Listeners": map[string]any{
			"SockNodeName": "127.0.0.1", "SockServiceName": strconv.Itoa(udpPort), "SockType": "dgram"}},
	})
	startSockd(t, dir)
	got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", tcpPort), "")
	if len(got) != 4 {
		t.Fatalf("time: %d bytes", len(got))
	}
	secs := int64(binary.BigEndian.Uint32([]byte(got))) - 2208988800
	if d := time.Now().Unix() - secs; d < -2 || d > 2 {
		t.Errorf("time service off by %d s", d)
	}
	if got := udpRoundTrip(t, fmt.Sprintf("127.0.0.1:%d", udpPort), "hello"); got != "hello" {
		t.Errorf("udp echo: %q", got)
	}
	if os.Geteuid() != 0 {
		return
	}
	// Amplification guard: a client on a privileged source port gets no reply.
	c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1019}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udpPort})
	if err != nil {
		if errorsIsAddrInUse(err) {
			t.Skip("port 1019 busy")
		}
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("loop?"))
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 64)
	if n, err := c.Read(buf); err == nil {
		t.Errorf("echo replied %q to source port 1019", bytes.TrimSpace(buf[:n]))
	}
}

func errorsIsAddrInUse(err error) bool {
	return strings.Contains(err.Error(), syscall.EADDRINUSE.Error())
}
