package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// holdBackend is an external proxy backend on 127.0.0.1: it answers each
// connection with "backend\n" and holds it until the client closes.
type holdBackend struct {
	ln       net.Listener
	accepted atomic.Int64
}

func newHoldBackend(t *testing.T) *holdBackend {
	t.Helper()
	ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")))
	if err != nil {
		t.Fatal(err)
	}
	b := &holdBackend{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "backend\n")
				_, _ = bufio.NewReader(c).ReadString('\n')
			}()
		}
	}()
	return b
}

func (b *holdBackend) addr() string { return b.ln.Addr().String() }

// proxyClient connects from local address from (127.0.0.x) to addr and
// reports whether the backend answered; the connection stays open until
// the test ends (for per-source counts).
func proxyClient(t *testing.T, from, addr string) bool {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line == "backend\n"
}

// proxyLimitJob is a proxy job on 127.0.0.1:port in front of backend with
// the given SockdLimits.
func proxyLimitJob(label string, port int, backend string, limits map[string]any) map[string]any {
	return map[string]any{
		"Label":       label,
		"Sockets":     map[string]any{"Listeners": tcpSocket(port)},
		"SockdProxy":  map[string]any{"Backend": backend, "ReadyTimeout": 5},
		"SockdLimits": limits,
	}
}

// TestProxyLimits: every SockdLimits key acts on a proxy job as on an inetd
// job: Deny and Allow by the client's address (clients bound to 127.0.0.1
// and 127.0.0.2), MaxPerSource, and Rate (accepting pauses; clients wait).
// Refusals are logged with the limit and counted in the job's stats.
func TestProxyLimits(t *testing.T) {
	be := newHoldBackend(t)
	dir := t.TempDir()
	ports := map[string]int{}
	jobs := map[string]map[string]any{
		"deny":   {"Deny": []string{"127.0.0.1/32"}},
		"allow":  {"Allow": []string{"127.0.0.2"}},
		"persrc": {"MaxPerSource": 2},
		"rate":   {"Rate": 2, "Burst": 2, "PauseSeconds": 2},
	}
	for name, limits := range jobs {
		ports[name] = freePort(t, "tcp")
		writeJob(t, dir, name, proxyLimitJob("test.proxy-"+name, ports[name], be.addr(), limits))
	}
	d := startSockd(t, dir)
	addr := func(name string) string { return fmt.Sprintf("127.0.0.1:%d", ports[name]) }

	for _, name := range []string{"deny", "allow"} {
		before := be.accepted.Load()
		if proxyClient(t, "127.0.0.1", addr(name)) {
			t.Errorf("%s: a client from 127.0.0.1 was forwarded", name)
		}
		if !proxyClient(t, "127.0.0.2", addr(name)) {
			t.Errorf("%s: the client from 127.0.0.2 was not forwarded", name)
		}
		if n := be.accepted.Load() - before; n != 1 {
			t.Errorf("%s: the backend saw %d connections, want 1 (the refused client must not reach it)", name, n)
		}
	}
	if d.settledCount("connection refused: source denied by SockdLimits.Deny", "test.proxy-deny", 1) != 1 {
		t.Error("no refusal line for the denied client")
	}
	if d.settledCount("connection refused: source not in SockdLimits.Allow", "test.proxy-allow", 1) != 1 {
		t.Error("no refusal line for the client not allowed")
	}

	for i := 0; i < 2; i++ {
		if !proxyClient(t, "127.0.0.1", addr("persrc")) {
			t.Fatalf("persrc: connection %d from 127.0.0.1 was not forwarded", i+1)
		}
	}
	if proxyClient(t, "127.0.0.1", addr("persrc")) {
		t.Error("persrc: a third concurrent connection from 127.0.0.1 was forwarded (MaxPerSource 2)")
	}
	if !proxyClient(t, "127.0.0.2", addr("persrc")) {
		t.Error("persrc: a client from another source was refused")
	}
	if d.settledCount("connection refused: per-source limit reached (MaxPerSource 2)", "test.proxy-persrc", 1) != 1 {
		t.Error("no refusal line for the per-source limit")
	}

	start := time.Now()
	for i := 0; i < 2; i++ {
		if !proxyClient(t, "127.0.0.1", addr("rate")) {
			t.Fatalf("rate: connection %d not forwarded", i+1)
		}
	}
	burst := time.Since(start)
	if !proxyClient(t, "127.0.0.1", addr("rate")) {
		t.Fatal("rate: the third connection was not forwarded after the pause")
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("rate: the third connection was served after %v (the burst took %v); Rate 2, Burst 2 must pause accepting", waited, burst)
	}
	if d.settledCount("limit reached: connection rate", "test.proxy-rate", 1) < 1 {
		t.Error("no line for the rate pause")
	}

	for _, name := range []string{"deny", "allow", "persrc"} {
		st := d.jobStats("test.proxy-"+name, func(m map[string]any) bool { n, _ := m["refused"].(float64); return n >= 1 })
		if st == nil {
			t.Errorf("%s: the job's stats do not count the refusal", name)
		}
	}
}

// TestProxyLimitsFromXinetd: an xinetd service with redirect and only_from,
// converted by `sockd convert`, gives a proxy job that refuses 127.0.0.1 and
// forwards 127.0.0.2, as xinetd would.
func TestProxyLimitsFromXinetd(t *testing.T) {
	be := newHoldBackend(t)
	port := freePort(t, "tcp")
	src := t.TempDir()
	host, bport, _ := net.SplitHostPort(be.addr())
	conf := fmt.Sprintf(`service fwd
{
	type        = UNLISTED
	socket_type = stream
	protocol    = tcp
	wait        = no
	port        = %d
	bind        = 127.0.0.1
	redirect    = %s %s
	only_from   = 127.0.0.2
}
`, port, host, bport)
	xd := filepath.Join(src, "xinetd.d")
	if err := os.Mkdir(xd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(xd, "fwd"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	jobs := t.TempDir()
	out, err := exec.Command(sockdBin, "convert", "-o", jobs, xd).CombinedOutput()
	if err != nil {
		t.Fatalf("sockd convert: %v\n%s", err, out)
	}
	plist, err := os.ReadFile(filepath.Join(jobs, "xinetd.fwd.plist"))
	if err != nil {
		t.Fatalf("converted job: %v\n%s", err, out)
	}
	if !strings.Contains(string(plist), "SockdProxy") || !strings.Contains(string(plist), "127.0.0.2") {
		t.Fatalf("converted job lacks the proxy or its Allow:\n%s", plist)
	}
	startSockd(t, jobs)
	a := "127.0.0.1:" + strconv.Itoa(port)
	if proxyClient(t, "127.0.0.1", a) {
		t.Error("a client from 127.0.0.1 was forwarded; only_from allows 127.0.0.2 only")
	}
	if !proxyClient(t, "127.0.0.2", a) {
		t.Error("the client from 127.0.0.2 was not forwarded")
	}
	if n := be.accepted.Load(); n != 1 {
		t.Errorf("the backend saw %d connections, want 1", n)
	}
}

// TestProxyLimitsUDP: a UDP proxy job's flows are admitted by source as
// stream connections are: a denied client's datagrams never reach the
// backend, another client's do, and the refusal is logged.
func TestProxyLimitsUDP(t *testing.T) {
	back, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp")))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	var seen atomic.Int64
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := back.ReadFrom(buf)
			if err != nil {
				return
			}
			seen.Add(1)
			back.WriteTo(append([]byte("reply-"), buf[:n]...), from)
		}
	}()
	port := freePort(t, "udp")
	dir := t.TempDir()
	writeJob(t, dir, "udp", map[string]any{
		"Label": "test.proxy-udp-deny",
		"Sockets": map[string]any{"Listeners": map[string]any{
			"SockNodeName": "127.0.0.1", "SockServiceName": strconv.Itoa(port), "SockType": "dgram"}},
		"SockdProxy":  map[string]any{"Backend": back.LocalAddr().String()},
		"SockdLimits": map[string]any{"Deny": []string{"127.0.0.1"}},
	})
	d := startSockd(t, dir)
	ask := func(from string) bool {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(from)}, &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: port})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 512)
		for try := 0; try < 10; try++ {
			c.Write([]byte("ping"))
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, err := c.Read(buf); err == nil && string(buf[:n]) == "reply-ping" {
				return true
			}
		}
		return false
	}
	if ask("127.0.0.1") {
		t.Error("the denied client got a reply")
	}
	if seen.Load() != 0 {
		t.Errorf("the backend got %d datagrams of the denied client", seen.Load())
	}
	if !ask("127.0.0.2") {
		t.Error("the other client got no reply")
	}
	if d.settledCount("connection refused: source denied by SockdLimits.Deny", "test.proxy-udp-deny", 1) < 1 {
		t.Error("no refusal line for the denied flow")
	}
}
