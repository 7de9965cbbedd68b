package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeRefusesImportsOfOthers: root's serve refuses an inetd.conf
// (--inetd-conf) that another user owns and anyone may write, and an xinetd
// service file of another user's in an --xinetd directory: an error naming
// each file is logged, and neither service's port is bound.
func TestServeRefusesImportsOfOthers(t *testing.T) {
	needRoot(t)
	const other = 4242
	dir := t.TempDir()
	inetdPort, xinetdPort := freePort(t, "tcp"), freePort(t, "tcp")
	inetd := filepath.Join(dir, "inetd.conf")
	if err := os.WriteFile(inetd, []byte(fmt.Sprintf("127.0.0.1:%d stream tcp nowait root /usr/bin/id id\n", inetdPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	xd := filepath.Join(dir, "xinetd.d")
	if err := os.Mkdir(xd, 0o755); err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(xd, "evil")
	svc := fmt.Sprintf("service evil\n{\n\ttype = UNLISTED\n\tsocket_type = stream\n\tprotocol = tcp\n\tport = %d\n\tbind = 127.0.0.1\n"+
		"\twait = no\n\tuser = root\n\tserver = /usr/bin/id\n\tflags = NOLIBWRAP\n}\n", xinetdPort)
	if err := os.WriteFile(evil, []byte(svc), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{inetd, evil} {
		if err := os.Chown(p, other, other); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(inetd, 0o666); err != nil {
		t.Fatal(err)
	}
	d := startSockd(t, t.TempDir(), "--inetd-conf", inetd, "--xinetd", xd)
	for _, p := range []string{inetd, evil} {
		found := false
		for _, m := range d.logs() {
			msg, _ := m["msg"].(string)
			if m["level"] == "error" && strings.HasPrefix(msg, p+": error: file is") {
				found = true
			}
		}
		if !found {
			t.Errorf("no error line naming %s", p)
		}
	}
	for _, port := range []int{inetdPort, xinetdPort} {
		if c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d is served", port)
		}
	}
}
