package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// realJournald runs systemd-journald for a namespace of its own (it runs
// without systemd as PID 1: it binds its sockets itself), with volatile
// storage, and returns the namespace and its socket directory. Needs root.
func realJournald(t *testing.T) (ns, dir string) {
	t.Helper()
	needRoot(t)
	needProgram(t, "journalctl")
	jd := ""
	for _, p := range []string{"/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald"} {
		if _, err := os.Stat(p); err == nil {
			jd = p
			break
		}
	}
	if jd == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-journald not installed; .ci/run must install systemd")
		}
		t.Skip("systemd-journald not installed (apt-get install systemd)")
	}
	ns = fmt.Sprintf("sockdtest%d", os.Getpid())
	dir = "/run/systemd/journal." + ns
	conf := "/run/systemd/journald@" + ns + ".conf"
	if err := os.MkdirAll("/run/systemd", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("[Journal]\nStorage=volatile\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(jd, ns)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		os.RemoveAll(dir)
		os.Remove(conf)
		for _, pat := range []string{"/run/log/journal/*." + ns, "/var/log/journal/*." + ns} {
			files, _ := filepath.Glob(pat)
			for _, f := range files {
				os.RemoveAll(f)
			}
		}
		if t.Failed() {
			t.Logf("systemd-journald %s output:\n%s", ns, out.String())
		}
	})
	if !eventually(10*time.Second, func() bool {
		_, e1 := os.Stat(filepath.Join(dir, "socket"))
		_, e2 := os.Stat(filepath.Join(dir, "stdout"))
		return e1 == nil && e2 == nil
	}) {
		t.Fatalf("systemd-journald %s made no sockets in %s:\n%s", ns, dir, out.String())
	}
	return ns, dir
}

// journalEntries reads a namespace's journal (journalctl -o json); a field
// journalctl writes as a list or bytes is left as it comes.
func journalEntries(t *testing.T, ns string) []map[string]any {
	t.Helper()
	out, err := exec.Command("journalctl", "--namespace="+ns, "-o", "json", "--no-pager", "--all").Output()
	if err != nil && len(out) == 0 {
		return nil
	}
	var es []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			es = append(es, m)
		}
	}
	return es
}

// TestRealJournald: a real systemd-journald takes what sockd writes: its
// entries with priority and fields (native protocol), and a handoff
// service's lines on a stream of its own under the job's label.
func TestRealJournald(t *testing.T) {
	ns, jdir := realJournald(t)
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "chatty", chattyJob("test.chatty", port, nil))
	writeJob(t, dir, "broken", map[string]any{"Label": "test.broken", "ProgramArguments": []string{"/nonexistent/prog"}, "RunAtLoad": true})
	d := startRaw(t, []string{"SOCKD_JOURNAL_DIR=" + jdir}, nil, "--jobs", dir, "--log-format", "journal")
	d.ready(t)
	poke(t, port)

	find := func(ok func(map[string]any) bool) map[string]any {
		var found map[string]any
		eventually(10*time.Second, func() bool {
			for _, e := range journalEntries(t, ns) {
				if ok(e) {
					found = e
					return true
				}
			}
			return false
		})
		return found
	}
	started := find(func(e map[string]any) bool { return e["MESSAGE"] == "started" && e["JOB"] == "test.chatty" })
	if started == nil {
		t.Fatalf("no started entry; journal: %v", journalEntries(t, ns))
	}
	if started["PRIORITY"] != "6" || started["SYSLOG_IDENTIFIER"] != "sockd" || started["_TRANSPORT"] != "journal" ||
		started["PID"] == nil || !strings.HasPrefix(fmt.Sprint(started["REASON"]), "socket activity on") {
		t.Errorf("started entry: %v", started)
	}
	if e := find(func(e map[string]any) bool { return e["JOB"] == "test.broken" && e["PRIORITY"] == "3" }); e == nil ||
		!strings.Contains(fmt.Sprint(e["ERROR"]), "/nonexistent/prog") {
		t.Errorf("the failing job's error entry: %v", e)
	}
	for _, line := range []string{"out: hello from test.chatty", "err: a warning"} {
		e := find(func(e map[string]any) bool { return e["MESSAGE"] == line })
		if e == nil || e["SYSLOG_IDENTIFIER"] != "test.chatty" || e["_TRANSPORT"] != "stdout" || e["PRIORITY"] != "6" {
			t.Errorf("%q: %v", line, e)
		}
	}
	if s := d.stderrText(); s != "" {
		t.Errorf("stderr is not empty:\n%s", s)
	}
}
