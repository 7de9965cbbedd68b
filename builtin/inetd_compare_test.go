package builtin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// needProgram returns the path of a Debian program, skipping the test when it
// is absent (failing instead when CI=true).
func needProgram(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("needs %s (Debian package %s): %v", name, pkg, err)
	}
	t.Skipf("needs %s (Debian package %s): %v", name, pkg, err)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

const helperEnv = "GO_WANT_HELPER_PROCESS"

// TestMatchesOpenBSDInetd compares every service, byte for byte, with the
// built-ins of the real openbsd-inetd. inetd needs the well-known ports, so
// the comparison runs in a private network namespace: the test re-runs its
// own binary under `unshare -n`, and that inner run starts inetd there.
func TestMatchesOpenBSDInetd(t *testing.T) {
	if os.Getenv(helperEnv) == "inetd-compare" {
		inetdCompareInner(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: a private network namespace and ports below 1024 for openbsd-inetd")
	}
	needProgram(t, "inetd", "openbsd-inetd")
	needProgram(t, "ip", "iproute2")
	unshare := needProgram(t, "unshare", "util-linux")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "--net", "--", self,
		"-test.run=^TestMatchesOpenBSDInetd$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=inetd-compare")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("inner comparison in a network namespace failed: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestMatchesOpenBSDInetd")) {
		t.Fatalf("inner comparison did not pass:\n%s", out)
	}
}

func inetdCompareInner(t *testing.T) {
	inetd := needProgram(t, "inetd", "openbsd-inetd")
	ipCmd := needProgram(t, "ip", "iproute2")
	if out, err := exec.Command(ipCmd, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	// UDP over ::1: inetd refuses 127.0.0.0/8 sources (anti-spoofing on
	// BSD), but answers ::1 from a high port.
	conf := filepath.Join(t.TempDir(), "inetd.conf")
	var cfg bytes.Buffer
	for _, s := range []string{"echo", "discard", "chargen", "daytime", "time"} {
		fmt.Fprintf(&cfg, "[::1]:%s dgram udp6 wait root internal\n", s)
	}
	for _, s := range []string{"echo", "discard", "daytime", "time", "chargen"} {
		fmt.Fprintf(&cfg, "127.0.0.1:%s stream tcp nowait root internal\n", s)
	}
	if err := os.WriteFile(conf, cfg.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	cmd := exec.Command(inetd, "-d", conf)
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("inetd log:\n%s", logBuf.String())
		}
	}()
	// chargen is the last socket inetd sets up; wait for it (bounded).
	var ready bool
	for i := 0; i < 200 && !ready; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:19"); err == nil {
			c.Close()
			ready = true
		} else {
			time.Sleep(25 * time.Millisecond)
		}
	}
	if !ready {
		t.Fatal("inetd did not start listening on 127.0.0.1:19")
	}

	ours, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	ourConn := func(name string) string {
		go func() {
			c, err := ours.Accept()
			if err == nil {
				Stream(context.Background(), name, c, 0)
			}
		}()
		return ours.Addr().String()
	}
	tcpTalk := func(addr string, send []byte, limit int) []byte {
		c, err := net.DialTimeout("tcp", addr, waitLimit)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitLimit))
		if send != nil {
			if _, err := c.Write(send); err != nil {
				t.Fatal(err)
			}
			c.(*net.TCPConn).CloseWrite()
		}
		var r io.Reader = c
		if limit > 0 {
			r = io.LimitReader(c, int64(limit))
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		return b
	}

	// chargen: three full periods of the pattern.
	n := 3 * 95 * 74
	want := tcpTalk("127.0.0.1:19", nil, n)
	got := tcpTalk(ourConn("chargen"), nil, n)
	if len(want) != n || !bytes.Equal(got, want) {
		t.Errorf("tcp chargen differs from inetd (%d vs %d bytes):\nours  %q\ninetd %q", len(got), len(want), got[:min(148, len(got))], want[:min(148, len(want))])
	}
	payload := bytes.Repeat([]byte{0, 1, 2, 0xff, '\r', '\n', 'a'}, 5000)
	if want, got := tcpTalk("127.0.0.1:7", payload, 0), tcpTalk(ourConn("echo"), payload, 0); !bytes.Equal(got, want) || !bytes.Equal(got, payload) {
		t.Errorf("tcp echo: ours %d bytes, inetd %d bytes, sent %d", len(got), len(want), len(payload))
	}
	// The clock may tick between the two reads: retry a few times.
	for _, svc := range []struct {
		name string
		port int
	}{{"daytime", 13}, {"time", 37}} {
		var want, got []byte
		for i := 0; i < 5; i++ {
			want = tcpTalk(fmt.Sprintf("127.0.0.1:%d", svc.port), nil, 0)
			got = tcpTalk(ourConn(svc.name), nil, 0)
			if bytes.Equal(got, want) {
				break
			}
		}
		if !bytes.Equal(got, want) {
			t.Errorf("tcp %s: ours %q, inetd %q", svc.name, got, want)
		}
	}

	// UDP from a high port on ::1.
	u, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	from := u.LocalAddr().(*net.UDPAddr).AddrPort()
	udpTalk := func(port uint16, req []byte) []byte {
		if _, err := u.WriteToUDPAddrPort(req, netip.AddrPortFrom(netip.IPv6Loopback(), port)); err != nil {
			t.Fatal(err)
		}
		u.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 65536)
		n, err := u.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	for _, svc := range []struct {
		name string
		port uint16
	}{{"echo", 7}, {"discard", 9}, {"chargen", 19}, {"chargen", 19}, {"chargen", 19}, {"daytime", 13}, {"time", 37}} {
		var want, got []byte
		for i := 0; i < 5; i++ {
			want = udpTalk(svc.port, []byte("request\n"))
			got = Datagram(svc.name, []byte("request\n"), from, time.Now())
			if bytes.Equal(got, want) || svc.name == "chargen" {
				break // chargen advances per request: compare once
			}
		}
		if !bytes.Equal(got, want) || (want == nil) != (got == nil) {
			t.Errorf("udp %s: ours %q, inetd %q", svc.name, got, want)
		}
	}
}
