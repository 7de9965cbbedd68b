package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExamples runs README's set-up command on the example jobs shipped in
// examples/jobs: the inetd-style echo on 127.0.0.1:8007 and the handoff
// HTTP service on 127.0.0.1:8081, started once for several requests.
func TestExamples(t *testing.T) {
	needProgram(t, "python3", "curl")
	for _, addr := range []string{"127.0.0.1:8007", "127.0.0.1:8081"} {
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			t.Skipf("%s is in use on this machine: %v", addr, err)
		}
		l.Close()
	}
	// Copy the files so the permission check does not depend on the
	// checkout's umask.
	dir := t.TempDir()
	src, err := filepath.Glob("../examples/jobs/*.plist")
	if err != nil || len(src) < 2 {
		t.Fatalf("example jobs: %v %v", src, err)
	}
	for _, f := range src {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := startSockd(t, dir)
	if got := dialRead(t, "tcp4", "127.0.0.1:8007", "hello sockd\n"); got != "hello sockd\n" {
		t.Errorf("echo example: %q", got)
	}
	var first string
	for i := 0; i < 5; i++ {
		got := curl(t, "http://127.0.0.1:8081/")
		if !strings.HasPrefix(got, "hello from a socket-activated service, pid ") {
			t.Fatalf("hello-http example: %q", got)
		}
		if first == "" {
			first = got
		} else if got != first {
			t.Errorf("served by another process: %q then %q", first, got)
		}
	}
	if n := d.settledCount("started", "org.sockd.example.hello-http", 1); n != 1 {
		t.Errorf("hello-http started %d times, want 1", n)
	}
}
