//go:build linux

package trigger

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// readable waits up to timeout for fd to become readable (events, as
// epoll would be asked).
func readable(t *testing.T, fd int, events int16, timeout time.Duration) bool {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left < 0 {
			return false
		}
		n, err := unix.Poll(pfd, int(left/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
}

// changes waits for the watcher's fd and returns what Read reports
// (nil when nothing comes within a second).
func changes(t *testing.T, w *Watcher) []string {
	t.Helper()
	if !readable(t, w.Fd(), unix.POLLIN, time.Second) {
		return nil
	}
	got, err := w.Read()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

// quiet checks that nothing more is reported.
func quiet(t *testing.T, w *Watcher) {
	t.Helper()
	if readable(t, w.Fd(), unix.POLLIN, 100*time.Millisecond) {
		if got, _ := w.Read(); len(got) > 0 {
			t.Errorf("unexpected changes %v", got)
		}
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWatcherFile: a file written, replaced by a rename into place (an
// editor's save), its attributes changed and removed is reported each
// time, and a burst of writes comes out as one change.
func TestWatcherFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.conf")
	other := filepath.Join(dir, "other")
	write(t, path, "1")
	w, err := NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(path); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func()
	}{
		{"written", func() { write(t, path, "2") }},
		{"a burst of writes", func() {
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			for i := 0; i < 100; i++ {
				f.WriteString("x")
			}
			f.Close()
		}},
		{"renamed into place", func() {
			write(t, path+".tmp", "3")
			if err := os.Rename(path+".tmp", path); err != nil {
				t.Fatal(err)
			}
		}},
		{"written after the rename", func() { write(t, path, "4") }},
		{"chmod", func() { os.Chmod(path, 0o600) }},
		{"removed", func() { os.Remove(path) }},
		{"created again", func() { write(t, path, "5") }},
	}
	for _, st := range steps {
		st.do()
		if got := changes(t, w); !slices.Equal(got, []string{path}) {
			t.Fatalf("%s: changes %v, want [%s]", st.name, got, path)
		}
	}
	write(t, other, "not watched")
	quiet(t, w)
}

// TestWatcherNotYet: a path whose directories do not exist yet is
// reported once it appears, however deep.
func TestWatcherNotYet(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "c.conf")
	w, err := NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(path); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The directories alone are no change of the path, but may be read
	// in a separate turn: keep reading until the path comes.
	got := changes(t, w)
	if len(got) > 0 {
		t.Fatalf("directories created: %v, want nothing", got)
	}
	write(t, path, "x")
	if got := changes(t, w); !slices.Equal(got, []string{path}) {
		t.Fatalf("created: %v", got)
	}
	// mkdir -p and a write at once: the path exists by the time its
	// directory is watched.
	path2 := filepath.Join(dir, "x", "y", "z")
	if err := w.Add(path2); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(path2), 0o755)
	write(t, path2, "x")
	if got := changes(t, w); !slices.Equal(got, []string{path2}) {
		t.Fatalf("created at once: %v", got)
	}
}

// TestWatcherParentReplaced: the directory holding the path replaced by
// another (moved away and a new one renamed in, or exchanged atomically)
// is reported, and the new directory is watched from then on.
func TestWatcherParentReplaced(t *testing.T) {
	dir := t.TempDir()
	parent := filepath.Join(dir, "etc")
	path := filepath.Join(parent, "app.conf")
	os.Mkdir(parent, 0o755)
	write(t, path, "old")
	w, err := NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(path); err != nil {
		t.Fatal(err)
	}

	next := filepath.Join(dir, "etc.new")
	os.Mkdir(next, 0o755)
	write(t, filepath.Join(next, "app.conf"), "new")
	if got := changes(t, w); len(got) > 0 {
		t.Fatalf("preparing elsewhere: %v", got)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, next, unix.AT_FDCWD, parent, unix.RENAME_EXCHANGE); err != nil {
		t.Skipf("renameat2 RENAME_EXCHANGE: %v", err)
	}
	if got := changes(t, w); !slices.Equal(got, []string{path}) {
		t.Fatalf("exchanged: %v", got)
	}
	// The old directory (now etc.new) no longer counts; the new one does.
	write(t, filepath.Join(next, "app.conf"), "old again")
	quiet(t, w)
	write(t, path, "newer")
	if got := changes(t, w); !slices.Equal(got, []string{path}) {
		t.Fatalf("written in the new directory: %v", got)
	}

	// Moved away, and another renamed into place.
	if err := os.Rename(parent, filepath.Join(dir, "etc.old")); err != nil {
		t.Fatal(err)
	}
	if got := changes(t, w); !slices.Equal(got, []string{path}) {
		t.Fatalf("moved away: %v", got)
	}
	os.Mkdir(next+"2", 0o755)
	write(t, filepath.Join(next+"2", "app.conf"), "third")
	if err := os.Rename(next+"2", parent); err != nil {
		t.Fatal(err)
	}
	if got := changes(t, w); !slices.Equal(got, []string{path}) {
		t.Fatalf("renamed in: %v", got)
	}
	write(t, path, "fourth")
	if got := changes(t, w); !slices.Equal(got, []string{path}) {
		t.Fatalf("written: %v", got)
	}
}

// TestWatcherDirectory: a watched directory (a queue) reports entries
// added and removed; paths share watches and Remove drops them.
func TestWatcherDirectory(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "queue")
	os.Mkdir(q, 0o755)
	sibling := filepath.Join(dir, "flag")
	w, err := NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Add(q)
	w.Add(sibling)
	write(t, filepath.Join(q, "job1"), "x")
	if got := changes(t, w); !slices.Equal(got, []string{q}) {
		t.Fatalf("entry added: %v", got)
	}
	os.Remove(filepath.Join(q, "job1"))
	if got := changes(t, w); !slices.Equal(got, []string{q}) {
		t.Fatalf("entry removed: %v", got)
	}
	write(t, sibling, "x")
	if got := changes(t, w); !slices.Equal(got, []string{sibling}) {
		t.Fatalf("sibling: %v", got)
	}
	w.Remove(sibling)
	w.Remove(q)
	if len(w.wds) != 0 || w.Len() != 0 {
		t.Errorf("watches left after Remove: %d (paths %d)", len(w.wds), w.Len())
	}
	write(t, filepath.Join(q, "job2"), "x")
	quiet(t, w)
}

// TestAlarm: the CLOCK_BOOTTIME timerfd fires at its absolute time, and
// at once for a time in the past; Clear disarms it.
func TestAlarm(t *testing.T) {
	a, err := NewAlarm()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	at := Now().Boot + 50*time.Millisecond
	if err := a.Set(at); err != nil {
		t.Fatal(err)
	}
	if !readable(t, a.Fd(), unix.POLLIN, 5*time.Second) {
		t.Fatal("alarm did not fire")
	}
	if now := Now().Boot; now < at {
		t.Errorf("fired %v early", at-now)
	}
	a.Ack()
	if readable(t, a.Fd(), unix.POLLIN, 0) {
		t.Error("still readable after Ack")
	}
	a.Set(Now().Boot - time.Hour)
	if !readable(t, a.Fd(), unix.POLLIN, time.Second) {
		t.Error("a time in the past did not fire at once")
	}
	a.Ack()
	a.Set(Now().Boot + 30*time.Millisecond)
	a.Clear()
	if readable(t, a.Fd(), unix.POLLIN, 100*time.Millisecond) {
		t.Error("cleared alarm fired")
	}
}

// TestClockWatch: setting the wall clock (a step of one nanosecond;
// a step of zero is not a setting) makes the watch readable, once.
func TestClockWatch(t *testing.T) {
	c, err := NewClockWatch()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if changed, err := c.Changed(); changed || err != nil {
		t.Fatalf("changed %v err %v before any step", changed, err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: setting the clock (by a nanosecond) needs CAP_SYS_TIME")
	}
	tx := unix.Timex{Modes: unix.ADJ_SETOFFSET | unix.ADJ_NANO}
	tx.Time.Usec = 1 // nanoseconds, with ADJ_NANO
	if _, err := unix.ClockAdjtime(unix.CLOCK_REALTIME, &tx); err != nil {
		t.Skipf("clock_adjtime ADJ_SETOFFSET: %v", err)
	}
	if !readable(t, c.Fd(), unix.POLLIN, time.Second) {
		t.Fatal("clock watch not readable after the clock was set")
	}
	if changed, err := c.Changed(); !changed || err != nil {
		t.Fatalf("changed %v err %v", changed, err)
	}
	if readable(t, c.Fd(), unix.POLLIN, 50*time.Millisecond) {
		t.Error("still readable: not armed again")
	}
}

// TestNowClocks: boot time is never behind monotonic time.
func TestNowClocks(t *testing.T) {
	n := Now()
	if n.Boot < n.Mono || n.Wall.IsZero() {
		t.Errorf("%+v", n)
	}
}
