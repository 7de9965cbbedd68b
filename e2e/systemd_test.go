package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// systemdCorpusDir is a folder of the shared corpus's systemd units.
func systemdCorpusDir(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "shared", "corpus", "systemd", name)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpus missing: %v", err)
		}
		t.Skipf("corpus not found beside the repository: %v", err)
	}
	return dir
}

// writeUnit writes a unit file or drop-in (making its directory) into dir.
func writeUnit(t *testing.T, dir, name, text string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// sshLogin runs a command through a real ssh login to 127.0.0.1:port.
func sshLogin(key string, port int, word string) (string, error) {
	out, err := exec.Command("ssh", "-F", "/dev/null", "-i", key, "-p", strconv.Itoa(port), "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "root@127.0.0.1", "echo", word).CombinedOutput()
	return string(out), err
}

// TestSystemdSSHD: Debian's per-connection ssh pair (ssh.socket with
// Accept=yes and ssh@.service, as openssh-server shipped them), copied
// byte for byte and adjusted only by drop-ins (the condition cleared, the
// port moved to a test port, sshd pointed at a test configuration), is
// served by sockd serve --systemd with a real ssh login; a SIGHUP after a
// drop-in moves the port again.
func TestSystemdSSHD(t *testing.T) {
	needRoot(t)
	needProgram(t, "ssh", "ssh-keygen", "/usr/sbin/sshd")
	src := systemdCorpusDir(t, "debian-openssh-8.8-sonic")
	tmp := t.TempDir()
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // RuntimeDirectory=sshd: sockd makes no directories
		t.Fatal(err)
	}
	for _, k := range []string{"host", "user"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(tmp, k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(tmp, "user.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(tmp, "sshd_config")
	conf := fmt.Sprintf("HostKey %s/host\nAuthorizedKeysFile %s/authorized_keys\nStrictModes no\nUsePAM no\nPidFile none\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel ERROR\n", tmp, tmp)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	units := t.TempDir()
	for _, name := range []string{"ssh.socket", "ssh@.service", "ssh.service"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		writeUnit(t, units, name, string(data))
	}
	port := freePort(t, "tcp")
	sockDropin := func(port int) string {
		return fmt.Sprintf("[Unit]\nConditionPathExists=\n[Socket]\nListenStream=\nListenStream=127.0.0.1:%d\n", port)
	}
	writeUnit(t, units, "ssh.socket.d/test.conf", sockDropin(port))
	writeUnit(t, units, "ssh@.service.d/test.conf", fmt.Sprintf("[Service]\nEnvironmentFile=\nEnvironment=\"SSHD_OPTS=-f %s\"\n", cfg))

	// check says what serve loads: one job, and why the rest is not honoured.
	check := exec.Command(sockdBin, "check", "--systemd", units)
	out, err := check.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 job valid: 0 errors") ||
		!strings.Contains(string(out), "ssh@.service:10: RuntimeDirectory: warning: not honoured: sockd does not create the service's directories") {
		t.Fatalf("check --systemd: %v\n%s", err, out)
	}

	d := startSockd(t, t.TempDir(), "--systemd", units)
	key := filepath.Join(tmp, "user")
	if got, err := sshLogin(key, port, "hello-systemd"); err != nil || strings.TrimSpace(got) != "hello-systemd" {
		t.Fatalf("ssh: %v\n%s", err, got)
	}

	// The drop-in moves the port; SIGHUP reloads the units.
	port2 := freePort(t, "tcp")
	writeUnit(t, units, "ssh.socket.d/test.conf", sockDropin(port2))
	d.signal(syscall.SIGHUP)
	if !eventually(15*time.Second, func() bool { return d.countLogs("reload done", "") >= 1 }) {
		t.Fatal("no reload done")
	}
	if got, err := sshLogin(key, port2, "after-reload"); err != nil || strings.TrimSpace(got) != "after-reload" {
		t.Fatalf("ssh after the reload: %v\n%s", err, got)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("the old port %d still answers after the reload", port)
	}
	if n := d.settledCount("connection child exited", "systemd.ssh.socket", 2); n < 2 {
		t.Errorf("%d sshd children logged, want 2 (one per login)", n)
	}
}

// TestSystemdHandoffNames: two Accept=no socket units of one service (one
// with two ListenStream= named "http" by FileDescriptorName=, one named
// "admin" and pointing at the service with Service=) are handed to a real
// LISTEN_FDS server, go-systemd's activation.ListenersWithNames (the test
// binary), which finds every socket under its systemd name; one service
// start serves all three addresses.
func TestSystemdHandoffNames(t *testing.T) {
	units := t.TempDir()
	p1, p2, p3 := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp")
	counter := filepath.Join(t.TempDir(), "starts")
	writeUnit(t, units, "app.socket", fmt.Sprintf("[Socket]\nListenStream=127.0.0.1:%d\nListenStream=127.0.0.1:%d\nFileDescriptorName=http\n", p1, p2))
	writeUnit(t, units, "app-admin.socket", fmt.Sprintf("[Socket]\nListenStream=127.0.0.1:%d\nService=app.service\nFileDescriptorName=admin\n", p3))
	argv := helperArgv("activation", counter)
	writeUnit(t, units, "app.service", fmt.Sprintf("[Unit]\nRequires=app.socket\n[Service]\nEnvironment=GO_WANT_HELPER_PROCESS=1\nExecStart=%s\nRestart=always\n", strings.Join(argv, " ")))
	d := startSockd(t, t.TempDir(), "--systemd", units)
	pid := ""
	for _, p := range []int{p1, p2, p3} {
		got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", p), "")
		f := strings.Fields(got)
		if len(f) != 2 || f[1] != "names=admin:1,http:2" {
			t.Fatalf("port %d answered %q, want names=admin:1,http:2", p, got)
		}
		if pid != "" && f[0] != pid {
			t.Errorf("port %d served by %s, the others by %s", p, f[0], pid)
		}
		pid = f[0]
	}
	if data, _ := os.ReadFile(counter); strings.Count(string(data), "\n") != 1 {
		t.Errorf("the service started %d times, want once", strings.Count(string(data), "\n"))
	}
	if d.countLogs("started", "systemd.app.service") == 0 && d.settledCount("started", "systemd.app.service", 1) == 0 {
		t.Error("no start logged for systemd.app.service")
	}
}

// TestSystemdDualStack: a port alone is systemd's one dual-stack socket:
// an Accept=yes unit on it serves clients over IPv4 and IPv6 on one
// listening socket, and its options (NoDelay, KeepAlive) reach it.
func TestSystemdDualStack(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 here: %v", err)
	} else {
		l.Close()
	}
	units := t.TempDir()
	port := freePort(t, "tcp")
	writeUnit(t, units, "echo.socket", fmt.Sprintf("[Socket]\nListenStream=%d\nAccept=yes\nNoDelay=yes\nKeepAlive=yes\n", port))
	writeUnit(t, units, "echo@.service", "[Service]\nExecStart=/bin/cat\nStandardInput=socket\n")
	d := startSockd(t, t.TempDir(), "--systemd", units)
	for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("[::1]:%d", port)} {
		if got := dialRead(t, "tcp", addr, "ping\n"); got != "ping\n" {
			t.Errorf("%s answered %q", addr, got)
		}
	}
	if n := d.countLogs("socket opened", "systemd.echo.socket"); n != 1 {
		t.Errorf("%d sockets opened, want one dual-stack socket", n)
	}
}
