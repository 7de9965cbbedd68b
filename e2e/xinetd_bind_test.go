package e2e

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestXinetdBindInterfaceName: a service with bind = lo, or interface =
// lo, is refused as xinetd 2.3.15 refuses it ("bad address"), with an
// error naming file, line and attribute; nothing listens on its port, on
// 0.0.0.0 and [::] least of all; the file's other service still serves.
func TestXinetdBindInterfaceName(t *testing.T) {
	needRoot(t)
	ports := distinctPorts(t, 3)
	xd := filepath.Join(t.TempDir(), "xinetd.d")
	if err := os.Mkdir(xd, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, b := range []string{"bind = lo", "interface = lo", "bind = 127.0.0.1"} {
		svc := fmt.Sprintf("service sockd-bind%d\n{\n\ttype = UNLISTED\n\tsocket_type = stream\n\twait = no\n\tuser = root\n\t%s\n\tport = %d\n\tserver = /bin/cat\n\tflags = NOLIBWRAP\n}\n", i, b, ports[i])
		if err := os.WriteFile(filepath.Join(xd, fmt.Sprintf("bind%d", i)), []byte(svc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dm := startSockd(t, t.TempDir(), "--xinetd", xd)

	addr := fmt.Sprintf("127.0.0.1:%d", ports[2])
	if got := dialRead(t, "tcp4", addr, "ping\n"); got != "ping\n" {
		t.Errorf("the service with bind = 127.0.0.1 answered %q", got)
	}
	for i, key := range []string{"bind", "interface"} {
		want := fmt.Sprintf(`bind%d:7: %s: error: \"lo\" is a network interface, not an address`, i, key)
		if !strings.Contains(dm.logBuf.String(), want) {
			t.Errorf("no error %s in the log", want)
		}
		if l := tcpListeners(t, ports[i]); len(l) != 0 {
			t.Errorf("%s = lo: listening on %v", key, l)
		}
	}
	if l := tcpListeners(t, ports[2]); len(l) != 1 || l[0] != "127.0.0.1" {
		t.Errorf("bind = 127.0.0.1: listening on %v", l)
	}
}

// distinctPorts returns n different free TCP ports.
func distinctPorts(t *testing.T, n int) []int {
	t.Helper()
	seen := map[int]bool{}
	var out []int
	for len(out) < n {
		if p := freePort(t, "tcp"); !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// tcpListeners returns the local addresses of the listening TCP sockets
// on port, IPv4 and IPv6, from /proc/net/tcp and /proc/net/tcp6.
func tcpListeners(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[3] != "0A" { // TCP_LISTEN
				continue
			}
			host, p, ok := strings.Cut(fields[1], ":")
			if n, err := strconv.ParseUint(p, 16, 16); !ok || err != nil || int(n) != port {
				continue
			}
			out = append(out, procAddr(t, host))
		}
	}
	return out
}

// procAddr decodes a /proc/net/tcp* address: 32-bit words in host
// (little-endian) order.
func procAddr(t *testing.T, h string) string {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil || len(b)%4 != 0 {
		t.Fatalf("bad address %q in /proc/net", h)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	a, _ := netip.AddrFromSlice(b)
	return a.String()
}
