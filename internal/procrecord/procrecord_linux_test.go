package procrecord

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestParseStartTicks(t *testing.T) {
	line := "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 12345 67 18446744073709551615\n"
	if got, err := parseStartTicks(line); err != nil || got != 987654 {
		t.Errorf("parseStartTicks = %d, %v; want 987654", got, err)
	}
	if _, err := parseStartTicks("12 (x) S 1"); err == nil {
		t.Error("a short line was accepted")
	}
}

// TestBook: a record of a live child is found alive, survives a new Book
// on the same directory, is not alive once the child has exited, and is
// gone after Exited; a broken or foreign-version record is reported and
// removed.
func TestBook(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "procs")
	b, err := Open(dir, "boot-a")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	if err := b.Started("test.job", pid, true, 7*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "1.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "2.json"), []byte(`{"version":99,"pid":2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	again, _ := Open(dir, "boot-a")
	recs, errs := again.Left()
	if len(recs) != 1 || len(errs) != 2 {
		t.Fatalf("Left: %v, %v; want the child's record and two errors", recs, errs)
	}
	r := recs[0]
	if r.Label != "test.job" || r.Pid != pid || !r.Group || r.ExitTimeout != 7 || !again.Alive(r) {
		t.Errorf("record %+v, alive %v", r, again.Alive(r))
	}
	if other, _ := Open(dir, "boot-b"); other.Alive(r) {
		t.Error("a record of another boot counts as alive")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if again.Alive(r) {
		t.Error("the record of a reaped child counts as alive")
	}
	if err := again.Exited(pid); err != nil {
		t.Fatal(err)
	}
	if recs, errs := again.Left(); len(recs)+len(errs) != 0 {
		t.Errorf("after Exited: %v, %v", recs, errs)
	}
}
