package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLeftoverProcesses: a sockd killed with SIGKILL leaves its handoff
// service running, still holding the job's socket; the next sockd on the
// same control directory stops it (SIGTERM; SIGKILL after ExitTimeOut for
// one that ignores SIGTERM) before it binds, then serves the job itself;
// a clean exit leaves no record behind.
func TestLeftoverProcesses(t *testing.T) {
	dir, ctlDir := t.TempDir(), t.TempDir()
	port := freePort(t, "tcp")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	starts, stubbornPid := filepath.Join(t.TempDir(), "starts"), filepath.Join(t.TempDir(), "stubborn")
	agent := activationJob("test.left", exe, starts, port)
	agent["ExitTimeOut"] = 5
	writeJob(t, dir, "left", agent)
	writeJob(t, dir, "stubborn", map[string]any{
		"Label": "test.stubborn", "ProgramArguments": helperArgv("ignore-term", stubbornPid),
		"EnvironmentVariables": helperEnv(), "RunAtLoad": true, "ExitTimeOut": 1,
	})
	args := []string{"--control", filepath.Join(ctlDir, "control.sock")}
	d := startSockd(t, dir, args...)
	orphan := agentPid(t, port)
	var stubborn int
	if !eventually(5*time.Second, func() bool {
		b, _ := os.ReadFile(stubbornPid)
		stubborn, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return stubborn > 0
	}) {
		t.Fatal("the stubborn job did not start")
	}

	d.signal(syscall.SIGKILL)
	<-d.exited
	if got := agentPid(t, port); got != orphan {
		t.Fatalf("after SIGKILL of sockd, pid %d answers, want the orphan %d", got, orphan)
	}

	d = startSockd(t, dir, args...)
	for _, pid := range []int{orphan, stubborn} {
		if !exitedPid(pid) {
			t.Errorf("pid %d, left by the killed sockd, still runs once the new one is ready", pid)
		}
	}
	if got := agentPid(t, port); got == orphan {
		t.Errorf("the orphan %d still answers", got)
	}
	log := d.logBuf.String()
	for _, want := range []string{`"left process stopped","job":"test.left","pid":` + strconv.Itoa(orphan) + `,"by":"SIGTERM"`,
		`"left process stopped","job":"test.stubborn","pid":` + strconv.Itoa(stubborn) + `,"by":"SIGKILL, after ExitTimeOut 1s"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
	if err := d.stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(filepath.Join(ctlDir, "procs")); err != nil || len(ents) != 0 {
		t.Errorf("after a clean exit the process records are %v (%v), want none", ents, err)
	}
}

// exitedPid reports whether pid has exited: gone, or a zombie (an orphan
// is its new parent's to reap, which may take a while or never happen
// where pid 1 does not reap).
func exitedPid(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] == 'Z'
}
