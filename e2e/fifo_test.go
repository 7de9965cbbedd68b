package e2e

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestReloadWithFIFOJobFile: a FIFO named x.plist appears in the jobs
// directory; a SIGHUP reload reports it, the other job keeps serving, and
// SIGTERM still stops sockd promptly (before, the open blocked for ever).
func TestReloadWithFIFOJobFile(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "stable", nowaitJob("test.stable", port, []string{"/bin/cat"}))
	d := startSockd(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if got := dialRead(t, "tcp4", addr, "one\n"); got != "one\n" {
		t.Fatalf("before the reload: %q", got)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "x.plist"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.signal(syscall.SIGHUP)
	if !d.waitLog("is a FIFO (named pipe), not a regular file", 10*time.Second) {
		t.Fatal("the reload did not report the FIFO")
	}
	if got := dialRead(t, "tcp4", addr, "two\n"); got != "two\n" {
		t.Fatalf("after the reload: %q", got)
	}
	start := time.Now()
	if err := d.stop(10 * time.Second); err != nil {
		t.Fatalf("sockd did not stop on SIGTERM: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("SIGTERM took %v", took)
	}
}
