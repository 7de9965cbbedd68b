package e2e

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nginxPids lists running nginx master processes using conf.
func nginxMasters(conf string) []string {
	out, _ := exec.Command("pgrep", "-f", "nginx: master process .*"+conf).Output()
	return strings.Fields(string(out))
}

// TestProxyNginxOnDemand: real nginx as a proxy backend started on demand:
// the very first request succeeds; 100 requests later it is still one
// nginx and no fd left open in sockd; nginx sees the client's address
// through the PROXY protocol;
// after the idle time nginx is gone; the next request starts it again.
func TestProxyNginxOnDemand(t *testing.T) {
	needRoot(t)
	needProgram(t, "/usr/sbin/nginx", "curl")
	public, private := freePort(t, "tcp"), freePort(t, "tcp")
	d, conf := nginxPrefix(t, fmt.Sprintf(`listen 127.0.0.1:%d proxy_protocol;
		location / { default_type text/plain; return 200 "client=$proxy_protocol_addr:$proxy_protocol_port\n"; }`, private))
	dir := t.TempDir()
	writeJob(t, dir, "nginx-proxy", map[string]any{
		"Label":            "test.nginx-proxy",
		"ProgramArguments": []string{"/usr/sbin/nginx", "-e", "stderr", "-c", conf, "-p", d + "/"},
		"ExitTimeOut":      5,
		"ThrottleInterval": 1,
		"Sockets":          map[string]any{"Listeners": tcpSocket(public)},
		"SockdProxy": map[string]any{
			"Backend":       fmt.Sprintf("127.0.0.1:%d", private),
			"ProxyProtocol": "v2",
			"StopAfterIdle": 3,
			"ReadyTimeout":  10,
		},
	})
	dm := startSockd(t, dir)
	if len(nginxMasters(conf)) != 0 {
		t.Fatal("nginx running before the first request")
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", public)
	check := func(i int) {
		t.Helper()
		c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", public), 5*time.Second)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		defer c.Close()
		local := c.LocalAddr().String()
		_ = c.SetDeadline(time.Now().Add(15 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
		b, err := io.ReadAll(c)
		if err != nil || !strings.HasSuffix(string(b), "client="+local+"\n") {
			t.Fatalf("request %d: %q (%v), want client=%s", i, b, err, local)
		}
	}
	check(0) // the very first request, while nginx starts
	// The relay's threads and fds exist from the first connection on; after
	// that, each connection's sockets and pipes must be closed when it ends.
	var base int
	if !eventually(5*time.Second, func() bool { base = fdCount(t, dm.pid()); return base > 0 }) {
		t.Fatal("no fd count")
	}
	for i := 1; i <= 100; i++ {
		check(i)
	}
	if !eventually(5*time.Second, func() bool { return fdCount(t, dm.pid()) <= base }) {
		t.Errorf("daemon fd count %d after 100 more connections, %d after the first", fdCount(t, dm.pid()), base)
	}
	if m := nginxMasters(conf); len(m) != 1 {
		t.Errorf("after 101 requests: %d nginx masters, want 1", len(m))
	}
	if n := dm.settledCount("started", "test.nginx-proxy", 1); n != 1 {
		t.Errorf("nginx started %d times for 101 requests", n)
	}
	if !eventually(15*time.Second, func() bool { return len(nginxMasters(conf)) == 0 }) {
		t.Fatalf("nginx still running after the idle time")
	}
	// SIGUSR1 after the idle stop: the proxy's figures, and no process.
	stats := dm.jobStats("test.nginx-proxy", func(m map[string]any) bool { return m["running"] == 0.0 })
	if stats == nil || stats["running"] != 0.0 {
		t.Fatalf("stats line after the idle stop: %v, want running 0", stats)
	}
	if stats["accepted"] != 101.0 || stats["spawned"] != 1.0 || stats["connections_open"] != 0.0 ||
		stats["backend_idle_stops"] != 1.0 || stats["backend_ready"] != false || stats["bytes_to_backend"].(float64) <= 0 {
		t.Errorf("stats line after 101 requests and an idle stop: %v", stats)
	}
	if got := curl(t, url); !strings.HasPrefix(got, "client=127.0.0.1:") {
		t.Fatalf("request after idle stop: %q", got)
	}
	if n := dm.settledCount("started", "test.nginx-proxy", 2); n != 2 {
		t.Errorf("nginx started %d times, want 2 (once more after the idle stop)", n)
	}
}

// TestProxySlowAndDeadBackends: a backend that takes 2 s to listen gets
// its first clients served; one that never listens fails its clients after
// ReadyTimeout with one clear log line.
func TestProxySlowAndDeadBackends(t *testing.T) {
	needProgram(t, "socat")
	dir := t.TempDir()
	slowPub, slowPriv := freePort(t, "tcp"), freePort(t, "tcp")
	deadPub, deadPriv := freePort(t, "tcp"), freePort(t, "tcp")
	writeJob(t, dir, "slow", map[string]any{
		"Label": "test.slow-backend",
		"ProgramArguments": []string{"/bin/sh", "-c",
			fmt.Sprintf("sleep 2; exec socat TCP4-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork SYSTEM:'echo slow-ok'", slowPriv)},
		"Sockets":    map[string]any{"Listeners": tcpSocket(slowPub)},
		"SockdProxy": map[string]any{"Backend": fmt.Sprintf("127.0.0.1:%d", slowPriv), "ReadyTimeout": 15},
	})
	writeJob(t, dir, "dead", map[string]any{
		"Label":            "test.dead-backend",
		"ProgramArguments": []string{"/bin/sleep", "60"},
		"ExitTimeOut":      1,
		"Sockets":          map[string]any{"Listeners": tcpSocket(deadPub)},
		"SockdProxy":       map[string]any{"Backend": fmt.Sprintf("127.0.0.1:%d", deadPriv), "ReadyTimeout": 2},
	})
	dm := startSockd(t, dir)

	var wg sync.WaitGroup
	slowReplies := make([]string, 3)
	for i := range slowReplies {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", slowPub), 5*time.Second)
			if err != nil {
				slowReplies[i] = err.Error()
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			b, _ := io.ReadAll(c)
			slowReplies[i] = string(b)
		}(i)
	}
	start := time.Now()
	c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", deadPub), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	b, _ := io.ReadAll(c)
	c.Close()
	took := time.Since(start)
	wg.Wait()
	for i, r := range slowReplies {
		if r != "slow-ok\n" {
			t.Errorf("slow backend client %d: %q", i, r)
		}
	}
	if len(b) != 0 || took < 1500*time.Millisecond || took > 10*time.Second {
		t.Errorf("dead backend: got %q after %v; want closed after about 2 s", b, took)
	}
	notReady := func() int {
		n := 0
		for _, m := range dm.logs() {
			if m["job"] == "test.dead-backend" && m["level"] == "error" && strings.Contains(fmt.Sprint(m["msg"]), "not ready") {
				n++
			}
		}
		return n
	}
	eventually(5*time.Second, func() bool { return notReady() >= 1 })
	if n := notReady(); n != 1 {
		t.Errorf("%d 'not ready' error lines for the dead backend, want 1", n)
	}
}

// TestProxyUDP: a real UDP request/response service (socat running cat per
// datagram) behind the proxy, several clients at once, replies routed to
// the right client.
func TestProxyUDP(t *testing.T) {
	needProgram(t, "socat")
	dir := t.TempDir()
	pub, priv := freePort(t, "udp"), freePort(t, "udp")
	writeJob(t, dir, "udp", map[string]any{
		"Label":            "test.udp-proxy",
		"ProgramArguments": []string{"/usr/bin/socat", fmt.Sprintf("UDP4-RECVFROM:%d,bind=127.0.0.1,reuseaddr,fork", priv), "SYSTEM:sed s/^/reply-/"},
		"Sockets": map[string]any{"Listeners": map[string]any{
			"SockNodeName": "127.0.0.1", "SockServiceName": strconv.Itoa(pub), "SockType": "dgram"}},
		"SockdProxy": map[string]any{"Backend": fmt.Sprintf("127.0.0.1:%d", priv)},
	})
	startSockd(t, dir)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", pub))
			if err != nil {
				errs <- err.Error()
				return
			}
			defer c.Close()
			msg := fmt.Sprintf("client-%d", i)
			buf := make([]byte, 256)
			for try := 0; try < 20; try++ {
				_, _ = c.Write([]byte(msg + "\n"))
				_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				n, err := c.Read(buf)
				if err != nil {
					continue
				}
				if got := strings.TrimSpace(string(buf[:n])); got != "reply-"+msg {
					errs <- fmt.Sprintf("client %d got %q", i, got)
				}
				return
			}
			errs <- fmt.Sprintf("client %d: no reply", i)
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestProxyNotifyWithSystemdNotify: Notify readiness with systemd's own
// client. The backend listens at once but says READY=1 (systemd-notify
// --ready, from a shell) only 1.5 s later; a client that arrives at once is
// forwarded only after that, and is served.
func TestProxyNotifyWithSystemdNotify(t *testing.T) {
	needProgram(t, "socat", "systemd-notify")
	dir := t.TempDir()
	pub, priv := freePort(t, "tcp"), freePort(t, "tcp")
	marker := filepath.Join(t.TempDir(), "notified")
	script := fmt.Sprintf(`socat TCP4-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork SYSTEM:'test -e %s && echo after-ready || echo before-ready' &
sleep 1.5
touch %s
systemd-notify --ready
wait`, priv, marker, marker)
	writeJob(t, dir, "notify", map[string]any{
		"Label":            "test.notify-backend",
		"ProgramArguments": []string{"/bin/sh", "-c", script},
		"ExitTimeOut":      2,
		"Sockets":          map[string]any{"Listeners": tcpSocket(pub)},
		"SockdProxy":       map[string]any{"Backend": fmt.Sprintf("127.0.0.1:%d", priv), "Notify": true, "ReadyTimeout": 15},
	})
	dm := startSockd(t, dir)
	start := time.Now()
	got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", pub), "")
	if got != "after-ready\n" {
		t.Fatalf("first client got %q, want after-ready (forwarded only after READY=1)", got)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("first client served after %v, before the backend's READY=1 at about 1.5 s", took)
	}
	if dm.settledCount("backend ready", "test.notify-backend", 1) != 1 {
		t.Errorf("no single 'backend ready' line")
	}
}

// TestProxyRedefinedAsInetd: a proxy job rewritten as an inetd job and
// reloaded serves as inetd, and its SIGUSR1 line reports the inetd job's
// figures, not the stopped proxy's.
func TestProxyRedefinedAsInetd(t *testing.T) {
	needProgram(t, "socat")
	dir := t.TempDir()
	pub, priv := freePort(t, "tcp"), freePort(t, "tcp")
	writeJob(t, dir, "job", map[string]any{
		"Label": "test.redefined",
		"ProgramArguments": []string{"socat",
			fmt.Sprintf("TCP4-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", priv), "SYSTEM:'echo from-proxy'"},
		"ExitTimeOut": 2,
		"Sockets":     map[string]any{"Listeners": tcpSocket(pub)},
		"SockdProxy":  map[string]any{"Backend": fmt.Sprintf("127.0.0.1:%d", priv), "ReadyTimeout": 10},
	})
	d := startSockd(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", pub)
	for range 2 {
		if got := dialRead(t, "tcp4", addr, ""); got != "from-proxy\n" {
			t.Fatalf("through the proxy: %q", got)
		}
	}
	writeJob(t, dir, "job", nowaitJob("test.redefined", pub, []string{"/bin/echo", "from-inetd"}))
	d.signal(syscall.SIGHUP)
	if !eventually(10*time.Second, func() bool { return dialRead(t, "tcp4", addr, "") == "from-inetd\n" }) {
		t.Fatal("not served as an inetd job after the reload")
	}
	stats := d.jobStats("test.redefined", nil)
	if stats == nil {
		t.Fatal("no stats line")
	}
	if stats["mode"] != "inetd-nowait" || stats["accepted"].(float64) < 1 || stats["accepted"].(float64) > 20 {
		t.Errorf("stats after the redefinition: %v", stats)
	}
	if _, ok := stats["connections_open"]; ok {
		t.Errorf("stats of an inetd job carry the old proxy's figures: %v", stats)
	}
}
