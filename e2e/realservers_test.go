package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nginxPrefix makes a private nginx prefix (tmp, html) and writes its
// nginx.conf: foreground, master process, workers as root, private temp and
// pid paths, and one server block with the given body (in which %[1]s is the
// prefix). It returns the prefix and the config path.
func nginxPrefix(t *testing.T, server string) (dir, conf string) {
	t.Helper()
	dir = t.TempDir()
	for _, sub := range []string{"tmp", "html"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`daemon off;
master_process on;
user root;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	server {
		`+server+`
	}
}
`, dir)
	conf = filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, conf
}

func curl(t *testing.T, url string) string {
	t.Helper()
	out, err := exec.Command("curl", "-sS", "--max-time", "15", url).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, out)
	}
	return string(out)
}

// TestNginxOnDemand: real nginx started by sockd on the first connection,
// taking sockd's listening socket through its NGINX variable; the first
// request is answered.
func TestNginxOnDemand(t *testing.T) {
	needRoot(t)
	needProgram(t, "/usr/sbin/nginx", "curl")
	port := freePort(t, "tcp")
	d, conf := nginxPrefix(t, fmt.Sprintf("listen 127.0.0.1:%d;\n\t\troot %%[1]s/html;", port))
	if err := os.WriteFile(filepath.Join(d, "html", "index.html"), []byte("hello from nginx via sockd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeJob(t, dir, "nginx", map[string]any{
		"Label":                "test.nginx",
		"ProgramArguments":     []string{"/usr/sbin/nginx", "-e", "stderr", "-c", conf, "-p", d + "/"},
		"EnvironmentVariables": map[string]any{"NGINX": "3;"},
		"ExitTimeOut":          5,
		"Sockets":              map[string]any{"Listeners": tcpSocket(port)},
	})
	dm := startSockd(t, dir)
	if dm.countLogs("started", "test.nginx") != 0 {
		t.Fatal("nginx started before demand")
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if got := curl(t, url); got != "hello from nginx via sockd\n" {
		t.Fatalf("first request: %q", got)
	}
	for i := 0; i < 5; i++ {
		if got := curl(t, url); got != "hello from nginx via sockd\n" {
			t.Fatalf("request %d: %q", i, got)
		}
	}
	if n := dm.settledCount("started", "test.nginx", 1); n != 1 {
		t.Errorf("nginx started %d times, want 1", n)
	}
	if dm.childLines(`using inherited sockets from "3;"`, "test.nginx") == 0 { // its stderr: records of the job
		t.Errorf("nginx did not report using the inherited socket")
	}
	if err := dm.stop(30 * time.Second); err != nil {
		t.Errorf("sockd exit: %v", err)
	}
}

// TestLighttpdListenFDs: a real LISTEN_FDS-aware server from Debian
// (lighttpd, which also checks LISTEN_PID) serves a file to curl on the
// socket sockd handed it.
func TestLighttpdListenFDs(t *testing.T) {
	needRoot(t)
	needProgram(t, "/usr/sbin/lighttpd", "curl")
	d := t.TempDir()
	html := filepath.Join(d, "html")
	if err := os.MkdirAll(html, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(html, "file.txt"), []byte("served by lighttpd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t, "tcp")
	own := freePort(t, "tcp") // lighttpd's own configured port: not the one we query
	conf := fmt.Sprintf(`server.document-root = "%[1]s/html"
server.bind = "127.0.0.1"
server.port = %[2]d
server.systemd-socket-activation = "enable"
server.pid-file = "%[1]s/lighttpd.pid"
server.username = ""
server.upload-dirs = ( "%[1]s" )
mimetype.assign = ( ".txt" => "text/plain" )
`, d, own)
	if err := os.WriteFile(filepath.Join(d, "lighttpd.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeJob(t, dir, "lighttpd", map[string]any{
		"Label":            "test.lighttpd",
		"ProgramArguments": []string{"/usr/sbin/lighttpd", "-D", "-f", filepath.Join(d, "lighttpd.conf")},
		"Sockets":          map[string]any{"Listeners": tcpSocket(port)},
	})
	dm := startSockd(t, dir)
	if got := curl(t, fmt.Sprintf("http://127.0.0.1:%d/file.txt", port)); got != "served by lighttpd\n" {
		t.Fatalf("curl: %q", got)
	}
	if n := dm.settledCount("started", "test.lighttpd", 1); n != 1 {
		t.Errorf("lighttpd started %d times, want 1", n)
	}
}

// TestUnprivilegedUserJob: sockd run by an unprivileged user (no root
// anywhere in the daemon) binds 127.0.0.1:8080 from its user jobs directory
// (the default ~/.config/sockd/jobs) and activates an agent there; a
// privileged port in a user job fails with a message that says why.
func TestUnprivilegedUserJob(t *testing.T) {
	// Root creates the user; the daemon itself runs unprivileged.
	home := filepath.Join(publicTempDir(t), fmt.Sprintf("sockdagent%d", os.Getpid()%100000))
	name, uid, gid := testUser(t, "sockdagent", "-m", "-d", home, "-s", "/bin/sh")

	port := 8080
	if l, err := net.Listen("tcp4", "127.0.0.1:8080"); err != nil {
		port = freePort(t, "tcp")
		t.Logf("8080 is in use here; using %d", port)
	} else {
		l.Close()
	}
	jobs := filepath.Join(home, ".config", "sockd", "jobs")
	if err := os.MkdirAll(jobs, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := copyTestBinary(t)
	counter := filepath.Join(home, "starts")
	writeJob(t, jobs, "agent", map[string]any{
		"Label":                "user.agent",
		"ProgramArguments":     []string{exe, "launch", counter, "Listeners"},
		"EnvironmentVariables": helperEnv(),
		"Sockets":              map[string]any{"Listeners": tcpSocket(port)},
	})
	writeJob(t, jobs, "priv", map[string]any{
		"Label":            "user.privileged",
		"ProgramArguments": []string{"/bin/cat"},
		"Sockets":          map[string]any{"Listeners": tcpSocket(80)},
	})
	for _, p := range []string{filepath.Join(home, ".config"), filepath.Join(home, ".config", "sockd"), jobs,
		filepath.Join(jobs, "agent.plist"), filepath.Join(jobs, "priv.plist")} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=", "USER=" + name}
	d := startSockdAs(t, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, env, "")

	got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), "")
	if !strings.HasPrefix(got, "name=Listeners local=127.0.0.1:"+strconv.Itoa(port)) {
		t.Errorf("agent answered %q", got)
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.pid()))
	if err != nil || !strings.Contains(string(st), "Uid:\t"+strconv.Itoa(uid)+"\t") {
		t.Errorf("daemon not running as %s", name)
	}
	logs := d.logBuf.String()
	if !strings.Contains(logs, "priv.plist: Sockets.Listeners.SockServiceName: error: port 80 is below 1024") || !strings.Contains(logs, "CAP_NET_BIND_SERVICE") {
		t.Errorf("no clear message for the privileged port:\n%s", logs)
	}
}
