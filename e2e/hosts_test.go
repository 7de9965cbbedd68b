package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLimitLoadToHosts: a job whose LimitLoadToHosts names this host is
// served; one naming another host is not (its port refuses connections)
// and an info line says why, naming the file and key.
func TestLimitLoadToHosts(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	herePort, therePort := freePort(t, "tcp"), freePort(t, "tcp")
	here := nowaitJob("test.hosts.here", herePort, []string{"/bin/cat"})
	here["LimitLoadToHosts"] = []string{"other-host.invalid", strings.ToUpper(host)}
	writeJob(t, dir, "here", here)
	there := nowaitJob("test.hosts.there", therePort, []string{"/bin/cat"})
	there["LimitLoadToHosts"] = []string{"other-host.invalid"}
	therePath := writeJob(t, dir, "there", there)

	d := startSockd(t, dir)
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", herePort), "hello\n"); got != "hello\n" {
		t.Errorf("job for this host answered %q", got)
	}
	c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", therePort), 2*time.Second)
	if err == nil {
		c.Close()
		t.Error("the job for another host is served")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial the job for another host: %v, want connection refused", err)
	}
	want := therePath + `: LimitLoadToHosts: info: not loaded on this host (LimitLoadToHosts): this host, "` + host + `", is not among "other-host.invalid"`
	found := false
	for _, m := range d.logs() {
		if m["msg"] == want {
			found = m["level"] == "info"
			if !found {
				t.Errorf("logged at %v, want info: %v", m["level"], m)
			}
		}
	}
	if !found {
		t.Errorf("no log line %q", want)
	}
}

// TestMisspeltInetdKeyNotServed: a job whose inetdCompatibility is
// misspelt is refused at load with the file and key, instead of being
// served in handoff mode by a program that cannot serve it.
func TestMisspeltInetdKeyNotServed(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	j := nowaitJob("test.misspelt", port, []string{"/bin/cat"})
	j["inetdCompatability"] = j["inetdCompatibility"]
	delete(j, "inetdCompatibility")
	path := writeJob(t, dir, "misspelt", j)

	d := startSockd(t, dir)
	if c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second); err == nil {
		c.Close()
		t.Error("the misspelt job is served")
	}
	if !d.waitLog(path+`:`, 5*time.Second) || d.countLogs("inetdCompatability: error: unknown top-level key; did you mean inetdCompatibility?", "") != 1 {
		t.Errorf("no error line naming %s and the key", path)
	}
}
