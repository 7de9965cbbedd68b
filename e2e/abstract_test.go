package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestAbstractUnixSocket: a job on an abstract Unix socket (SockPathName
// "@name") is served, driven by socat's ABSTRACT-CONNECT; no file is made,
// and SockPathMode on an abstract socket is refused at load, naming the key.
func TestAbstractUnixSocket(t *testing.T) {
	needProgram(t, "socat")
	dir := t.TempDir()
	name := fmt.Sprintf("sockd-e2e-abstract-%d", os.Getpid())
	writeJob(t, dir, "abstract", map[string]any{
		"Label":                "test.abstract",
		"ProgramArguments":     helperArgv("report"),
		"EnvironmentVariables": helperEnv(),
		"inetdCompatibility":   map[string]any{"Wait": false},
		"Sockets":              map[string]any{"Local": map[string]any{"SockPathName": "@" + name}},
	})
	writeJob(t, dir, "moded", map[string]any{
		"Label":              "test.abstract-moded",
		"ProgramArguments":   helperArgv("report"),
		"inetdCompatibility": map[string]any{"Wait": false},
		"Sockets":            map[string]any{"Local": map[string]any{"SockPathName": "@" + name + "-moded", "SockPathMode": 0o600}},
	})
	d := startSockd(t, dir)
	out, err := exec.Command("socat", "-t", "5", "-T", "10", "STDIO", "ABSTRACT-CONNECT:"+name).Output()
	if err != nil {
		t.Fatalf("socat ABSTRACT-CONNECT:%s: %v", name, err)
	}
	if r := parseReport(string(out)); r["PROTO"] != "UNIX" {
		t.Errorf("the child did not get the abstract connection:\n%s", out)
	}
	if _, err := os.Lstat("@" + name); err == nil {
		t.Error("a file named @... was created in sockd's directory")
	}
	if n := d.countLogs("SockPathMode", ""); n == 0 {
		t.Error("no log line names SockPathMode on the abstract socket")
	}
	if err := exec.Command("socat", "-T", "2", "STDIO", "ABSTRACT-CONNECT:"+name+"-moded").Run(); err == nil {
		t.Error("the abstract socket with SockPathMode was served")
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatalf("sockd exit: %v", err)
	}
	if err := exec.Command("socat", "-T", "2", "STDIO", "ABSTRACT-CONNECT:"+name).Run(); err == nil {
		t.Error("the abstract name still answers after sockd stopped")
	}
}
