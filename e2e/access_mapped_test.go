package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAccessMappedEntries: Allow and Deny entries written in IPv4-mapped
// form (::ffff:a.b.c.d) or as an IPv6 prefix covering the mapped space
// (::/0) act on IPv4 clients, whose addresses sockd matches in IPv4 form;
// an xinetd only_from entry in mapped form on an IPv4 service, which
// xinetd matches against no client, admits nobody after `sockd convert`.
// Real clients bound to 127.0.0.1 and 127.0.0.2.
func TestAccessMappedEntries(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name       string
		limits     map[string]any
		one, two   bool // served from 127.0.0.1, from 127.0.0.2
		fromXinetd string
	}{
		{name: "deny-mapped", limits: map[string]any{"Deny": []string{"::ffff:127.0.0.2"}}, one: true},
		{name: "allow-mapped", limits: map[string]any{"Allow": []string{"::ffff:127.0.0.2"}}, two: true},
		{name: "allow-mapped-prefix", limits: map[string]any{"Allow": []string{"::ffff:127.0.0.0/127"}}, one: true},
		{name: "deny-all-v6", limits: map[string]any{"Deny": []string{"::/0"}}},
		{name: "xinetd-only-from", fromXinetd: "only_from = ::ffff:127.0.0.2 127.0.0.1", one: true},
	}
	ports := map[string]int{}
	for _, c := range cases {
		port := freePort(t, "tcp")
		ports[c.name] = port
		if c.fromXinetd != "" {
			convertXinetdEcho(t, dir, c.name, port, c.fromXinetd)
			continue
		}
		writeJob(t, dir, c.name, map[string]any{
			"Label":         "test." + c.name,
			"SockdInternal": "echo",
			"Sockets":       map[string]any{"Listeners": tcpSocket(port)},
			"SockdLimits":   c.limits,
		})
	}
	startSockd(t, dir)
	for _, c := range cases {
		addr := fmt.Sprintf("127.0.0.1:%d", ports[c.name])
		for _, src := range []struct {
			ip   string
			want bool
		}{{"127.0.0.1", c.one}, {"127.0.0.2", c.two}} {
			conn := holdConn(t, src.ip, addr)
			if conn != nil {
				conn.Close()
			}
			if served := conn != nil; served != src.want {
				t.Errorf("%s: client from %s served = %v, want %v", c.name, src.ip, served, src.want)
			}
		}
	}
}

// convertXinetdEcho converts an xinetd internal echo service on
// 127.0.0.1:port with the extra attribute line into dir, as name.
func convertXinetdEcho(t *testing.T, dir, name string, port int, extra string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), name)
	conf := fmt.Sprintf("service %s\n{\n\ttype = INTERNAL UNLISTED\n\tid = echo-stream\n\tsocket_type = stream\n\tprotocol = tcp\n\twait = no\n"+
		"\tport = %d\n\tbind = 127.0.0.1\n\tflags = NOLIBWRAP\n\t%s\n}\n", name, port, extra)
	if err := os.WriteFile(src, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sockdBin, "convert", "--from", "xinetd", "-o", dir, src).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ".plist") {
		t.Fatalf("sockd convert: %v\n%s", err, out)
	}
}
