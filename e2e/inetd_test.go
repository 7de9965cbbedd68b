package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestInetdNowaitEnvAndFds: one child per connection, the connection on
// fds 0-2 in blocking mode and nothing else open, the peer and local end in
// the environment.
func TestInetdNowaitEnvAndFds(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	env := helperEnv()
	env["JOBVAR"] = "from-job"
	writeJob(t, dir, "report", map[string]any{
		"Label":                "test.report",
		"ProgramArguments":     helperArgv("report"),
		"EnvironmentVariables": env,
		"inetdCompatibility":   map[string]any{"Wait": false},
		"Sockets":              map[string]any{"Listeners": tcpSocket(port)},
	})
	d := startSockd(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	local := c.LocalAddr().(*net.TCPAddr)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	out, err := io.ReadAll(c)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := parseReport(string(out))
	want := map[string]string{
		"REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": strconv.Itoa(local.Port),
		"PROTO": "TCP", "TCPREMOTEIP": "127.0.0.1", "TCPREMOTEPORT": strconv.Itoa(local.Port),
		"TCPLOCALIP": "127.0.0.1", "TCPLOCALPORT": strconv.Itoa(port),
		"LAUNCH_JOB_LABEL": "test.report", "JOBVAR": "from-job",
		"NONBLOCK0": "false",
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %q, want %q (report:\n%s)", k, r[k], v, out)
		}
	}
	for _, k := range []string{"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID"} {
		if _, ok := r[k]; ok {
			t.Errorf("%s leaked into the child", k)
		}
	}
	if r["PGID"] != r["PID"] {
		t.Errorf("child not in its own process group: pid %s pgid %s", r["PID"], r["PGID"])
	}
	_ = d
}

// TestInetdNowaitOnlyIntendedFds: a real program (the shell) lists its open
// fds: exactly 0, 1 and 2, all the connection; no signal is ignored or
// blocked in the child although sockd ignores SIGPIPE. (The signal state is
// read by the exec'd grep itself: the shell blocks SIGCHLD around its own
// forks, which /proc/$$/status would catch.)
func TestInetdNowaitOnlyIntendedFds(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "fds", nowaitJob("test.fds", port, []string{"/bin/sh", "-c", `ls /proc/$$/fd; exec grep -E '^Sig(Ign|Blk)' /proc/self/status`}))
	startSockd(t, dir)
	got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), "")
	want := "0\n1\n2\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
	if got != want {
		t.Errorf("child sees:\n%s\nwant:\n%s", got, want)
	}
}

// TestInetdNowaitHygiene: after 1,000 connections the daemon's fd count is
// back at its baseline and no zombie is left.
func TestInetdNowaitHygiene(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "echo", map[string]any{
		"Label":                "test.echo",
		"ProgramArguments":     []string{"/bin/cat"},
		"inetdCompatibility":   map[string]any{"Wait": false},
		"Sockets":              map[string]any{"Listeners": tcpSocket(port)},
		"SockdLimits":          map[string]any{"MaxChildren": 64},
		"ThrottleInterval":     1,
		"EnvironmentVariables": map[string]any{},
	})
	d := startSockd(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if got := dialRead(t, "tcp4", addr, "hello\n"); got != "hello\n" {
		t.Fatalf("echo: got %q", got)
	}
	time.Sleep(200 * time.Millisecond)
	base := fdCount(t, d.pid())

	const total, par = 1000, 8
	var wg sync.WaitGroup
	var bad atomic.Int64
	var next atomic.Int64
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= total {
				msg := "x" + strconv.Itoa(int(next.Load())) + "\n"
				c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
				if err != nil {
					bad.Add(1)
					continue
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_, _ = c.Write([]byte(msg))
				_ = c.(*net.TCPConn).CloseWrite()
				b, err := io.ReadAll(c)
				c.Close()
				if err != nil || string(b) != msg {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Errorf("%d of %d connections failed", n, total)
	}
	if !eventually(10*time.Second, func() bool { return len(children(d.pid())) == 0 && len(zombies(d.pid())) == 0 }) {
		t.Errorf("children left: %v, zombies: %v", children(d.pid()), zombies(d.pid()))
	}
	if !eventually(5*time.Second, func() bool { return fdCount(t, d.pid()) <= base }) {
		t.Errorf("daemon fd count %d, baseline %d", fdCount(t, d.pid()), base)
	}
}

// TestUnixSocketSocat: a Unix-socket job driven by socat; the socket file's
// mode and owner are the job's.
func TestUnixSocketSocat(t *testing.T) {
	needProgram(t, "socat")
	dir := t.TempDir()
	sockDir := t.TempDir()
	if err := os.Chmod(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sockDir, "echo.sock")
	sock := map[string]any{"SockPathName": path, "SockPathMode": 0o660}
	wantUID, wantGID := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		wantUID, wantGID = 65534, 65534
		sock["SockPathOwner"] = wantUID
		sock["SockPathGroup"] = wantGID
	}
	writeJob(t, dir, "uecho", map[string]any{
		"Label":                "test.unix-echo",
		"ProgramArguments":     helperArgv("report"),
		"EnvironmentVariables": helperEnv(),
		"inetdCompatibility":   map[string]any{"Wait": false},
		"Sockets":              map[string]any{"Local": sock},
	})
	d := startSockd(t, dir)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want socket 0660", fi.Mode())
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != wantUID || int(st.Gid) != wantGID {
		t.Errorf("socket owner = %d:%d, want %d:%d", st.Uid, st.Gid, wantUID, wantGID)
	}
	out, err := exec.Command("socat", "-t", "5", "-T", "10", "STDIO", "UNIX-CONNECT:"+path).Output()
	if err != nil {
		t.Fatalf("socat: %v", err)
	}
	r := parseReport(string(out))
	if r["PROTO"] != "UNIX" || r["UNIXLOCALPATH"] != path || r["UNIXREMOTEUID"] != strconv.Itoa(os.Getuid()) {
		t.Errorf("unix env wrong:\n%s", out)
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatalf("sockd exit: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket path left behind after shutdown: %v", err)
	}
}

// TestShutdownKillsAfterExitTimeOut: a child that ignores SIGTERM is killed
// after ExitTimeOut; sockd exits 0 and leaves no socket path it created.
func TestShutdownKillsAfterExitTimeOut(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "pid")
	sockPath := filepath.Join(t.TempDir(), "svc.sock")
	writeJob(t, dir, "stubborn", map[string]any{
		"Label":                "test.stubborn",
		"ProgramArguments":     helperArgv("ignore-term", pidFile),
		"EnvironmentVariables": helperEnv(),
		"RunAtLoad":            true,
		"ExitTimeOut":          2,
		"Sockets":              map[string]any{"S": map[string]any{"SockPathName": sockPath}},
	})
	d := startSockd(t, dir)
	var pid int
	if !eventually(10*time.Second, func() bool {
		b, err := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(string(b))
		return err == nil && pid > 0
	}) {
		t.Fatal("child did not start")
	}
	start := time.Now()
	if err := d.stop(30 * time.Second); err != nil {
		t.Fatalf("sockd exit: %v", err)
	}
	took := time.Since(start)
	if took < 1500*time.Millisecond {
		t.Errorf("sockd exited after %v, before ExitTimeOut 2s", took)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("child %d still alive after shutdown", pid)
	}
	if d.countLogs("exit timeout elapsed", "test.stubborn") != 1 {
		t.Errorf("want one 'exit timeout elapsed' line")
	}
	if _, err := os.Lstat(sockPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket path left behind: %v", err)
	}
}

// TestPrivilegeDrop (root): the child runs with the job's uid, gid and
// supplementary groups.
func TestPrivilegeDrop(t *testing.T) {
	needRoot(t)
	needProgram(t, "useradd", "groupadd")
	suffix := strconv.Itoa(os.Getpid() % 100000)
	uname, g1, g2 := "sockdu"+suffix, "sockdg"+suffix, "sockdx"+suffix
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("groupadd", g1)
	t.Cleanup(func() { _ = exec.Command("groupdel", g1).Run() })
	run("groupadd", g2)
	t.Cleanup(func() { _ = exec.Command("groupdel", g2).Run() })
	run("useradd", "-M", "-N", "-g", g1, "-G", g2, "-s", "/usr/sbin/nologin", uname)
	t.Cleanup(func() { _ = exec.Command("userdel", uname).Run() })
	u, err := user.Lookup(uname)
	if err != nil {
		t.Fatal(err)
	}
	gr1, _ := user.LookupGroup(g1)
	gr2, _ := user.LookupGroup(g2)

	exe := copyTestBinary(t)
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "priv", map[string]any{
		"Label":                "test.priv",
		"ProgramArguments":     []string{exe, "report"},
		"EnvironmentVariables": helperEnv(),
		"UserName":             uname,
		"inetdCompatibility":   map[string]any{"Wait": false},
		"Sockets":              map[string]any{"Listeners": tcpSocket(port)},
	})
	startSockd(t, dir)
	r := parseReport(dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), ""))
	gid1, _ := strconv.Atoi(gr1.Gid)
	gid2, _ := strconv.Atoi(gr2.Gid)
	lo, hi := gid1, gid2
	if lo > hi {
		lo, hi = hi, lo
	}
	if r["UID"] != u.Uid || r["GID"] != gr1.Gid || r["GROUPS"] != fmt.Sprintf("[%d %d]", lo, hi) {
		t.Errorf("credentials: uid %s gid %s groups %s; want uid %s gid %s groups [%d %d]", r["UID"], r["GID"], r["GROUPS"], u.Uid, gr1.Gid, lo, hi)
	}
	if r["USER"] != uname {
		t.Errorf("USER = %q, want %q", r["USER"], uname)
	}
}

// copyTestBinary copies the test binary where any user can execute it.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	src, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return copyFile(t, src)
}

// copyFile copies an executable into a fresh world-readable directory.
func copyFile(t *testing.T, src string) string {
	t.Helper()
	dir := publicTempDir(t)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestReloadKeepsUnchangedSockets: a client loop against an unchanged job
// sees no refused connection while jobs are added, changed and removed.
func TestReloadKeepsUnchangedSockets(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "stable", nowaitJob("test.stable", port, []string{"/bin/cat"}))
	d := startSockd(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	stop := make(chan struct{})
	var ok, refused, other atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					refused.Add(1)
				} else {
					other.Add(1)
				}
				continue
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = c.Write([]byte("ping\n"))
			_ = c.(*net.TCPConn).CloseWrite()
			b, err := io.ReadAll(c)
			c.Close()
			if err == nil && string(b) == "ping\n" {
				ok.Add(1)
			} else {
				other.Add(1)
			}
		}
	}()

	extra := freePort(t, "tcp")
	for i := 0; i < 6; i++ {
		switch i % 3 {
		case 0: // add a job
			writeJob(t, dir, "extra", nowaitJob("test.extra", extra, []string{"/bin/cat"}))
		case 1: // change it
			writeJob(t, dir, "extra", nowaitJob("test.extra", extra, []string{"/bin/echo", "changed"}))
		case 2: // remove it
			os.Remove(filepath.Join(dir, "extra.plist"))
		}
		d.signal(syscall.SIGHUP)
		time.Sleep(300 * time.Millisecond)
		if i%3 == 1 {
			if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", extra), ""); got != "changed\n" {
				t.Errorf("changed job answered %q", got)
			}
		}
	}
	close(stop)
	wg.Wait()
	if refused.Load() != 0 || other.Load() != 0 {
		t.Errorf("during reloads: %d ok, %d refused, %d other failures", ok.Load(), refused.Load(), other.Load())
	}
	if ok.Load() < 10 {
		t.Errorf("only %d successful connections during reloads", ok.Load())
	}
	if d.countLogs("job removed", "test.extra") != 2 || d.countLogs("job changed", "test.extra") != 2 {
		t.Errorf("reload log lines missing")
	}
}

// TestSSHD: real OpenSSH `sshd -i` as a Wait=false job, a real ssh client
// running a command through it, several connections in parallel.
func TestSSHD(t *testing.T) {
	needRoot(t)
	needProgram(t, "ssh", "ssh-keygen", "/usr/sbin/sshd")
	tmp := t.TempDir()
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	keygen := func(path string) {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	keygen(filepath.Join(tmp, "host"))
	keygen(filepath.Join(tmp, "user"))
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
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "sshd", nowaitJob("test.sshd", port, []string{"/usr/sbin/sshd", "-i", "-f", cfg}))
	startSockd(t, dir)

	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cmd := exec.Command("ssh", "-F", "/dev/null", "-i", filepath.Join(tmp, "user"), "-p", strconv.Itoa(port), "-o", "IdentitiesOnly=yes",
				"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
				"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
				"root@127.0.0.1", "echo", "hello-"+strconv.Itoa(i))
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("ssh %d: %v\n%s", i, err, out)
				return
			}
			if strings.TrimSpace(string(out)) != "hello-"+strconv.Itoa(i) {
				errs <- fmt.Errorf("ssh %d: got %q", i, out)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestTFTPWaitDgram: a real datagram wait service (tftpd-hpa's in.tftpd)
// driven by the real tftp client, twice in a row.
func TestTFTPWaitDgram(t *testing.T) {
	needRoot(t)
	needProgram(t, "/usr/sbin/in.tftpd", "tftp")
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	content := strings.Repeat("sockd tftp payload\n", 100)
	if err := os.WriteFile(filepath.Join(root, "file.txt"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := freePort(t, "udp")
	writeJob(t, dir, "tftp", map[string]any{
		"Label":              "test.tftp",
		"ProgramArguments":   []string{"/usr/sbin/in.tftpd", "-t", "1", "-s", root},
		"inetdCompatibility": map[string]any{"Wait": true},
		"Sockets": map[string]any{"Listeners": map[string]any{
			"SockNodeName": "127.0.0.1", "SockServiceName": strconv.Itoa(port), "SockFamily": "IPv4", "SockType": "dgram"}},
	})
	d := startSockd(t, dir)
	for i := 0; i < 2; i++ {
		out := filepath.Join(t.TempDir(), "got.txt")
		cmd := exec.Command("tftp", "127.0.0.1", strconv.Itoa(port), "-c", "get", "file.txt", out)
		cmd.Dir = filepath.Dir(out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tftp get #%d: %v\n%s", i+1, err, b)
		}
		got, err := os.ReadFile(out)
		if err != nil || string(got) != content {
			t.Fatalf("tftp get #%d: got %d bytes (%v), want %d", i+1, len(got), err, len(content))
		}
		if i == 0 {
			// in.tftpd -t 1 exits after 1 s idle; sockd then watches again.
			if !d.waitLog(`"msg":"exited"`, 10*time.Second) {
				t.Fatal("in.tftpd did not exit after its idle time")
			}
		}
	}
	if n := d.settledCount("started", "test.tftp", 2); n < 2 {
		t.Errorf("in.tftpd started %d times, want at least 2", n)
	}
}

// TestWaitModeUnreadIsThrottled: a wait-mode program that exits at once
// leaving its datagram unread is not restarted in a tight loop.
func TestWaitModeUnreadIsThrottled(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "udp")
	counter := filepath.Join(t.TempDir(), "starts")
	writeJob(t, dir, "noread", map[string]any{
		"Label":                "test.noread",
		"ProgramArguments":     helperArgv("count", counter),
		"EnvironmentVariables": helperEnv(),
		"ThrottleInterval":     2,
		"inetdCompatibility":   map[string]any{"Wait": true},
		"Sockets": map[string]any{"Listeners": map[string]any{
			"SockNodeName": "127.0.0.1", "SockServiceName": strconv.Itoa(port), "SockFamily": "IPv4", "SockType": "dgram"}},
	})
	d := startSockd(t, dir)
	c, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("never read")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	data, _ := os.ReadFile(counter)
	starts := len(strings.Fields(string(data)))
	// 2 s throttle over 5 s: about 3 starts; a tight loop would make hundreds.
	if starts < 2 || starts > 5 {
		t.Errorf("wait-mode child started %d times in 5 s, want 2-5", starts)
	}
	if d.settledCount("leaving its request unread", "test.noread", 1) == 0 {
		t.Errorf("no log line says why the job is throttled")
	}
}
