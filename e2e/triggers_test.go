package e2e

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The triggers of docs/triggers.md with the real binary: each test counts
// starts through a program that appends a line per start. They run in
// parallel: most wait for time to pass.

// printed is the part of `sockd print --json LABEL` (the live job) these
// tests read.
type printed struct {
	State           string `json:"state"`
	LastStartReason string `json:"last_start_reason"`
	Triggers        *struct {
		NextStart        string   `json:"next_start"`
		NextStartBy      string   `json:"next_start_by"`
		StartInterval    int      `json:"start_interval"`
		Calendar         []string `json:"calendar"`
		WatchPaths       []string `json:"watch_paths"`
		QueueDirectories []string `json:"queue_directories"`
		StartOnMount     bool     `json:"start_on_mount"`
		LaunchOnlyOnce   bool     `json:"launch_only_once"`
		StartedOnce      string   `json:"started_once"`
	} `json:"triggers"`
}

// print asks the daemon for the live view of label (the answer
// envelope's one job).
func (d *daemon) print(t *testing.T, label string) printed {
	t.Helper()
	out, err := exec.Command(sockdBin, "print", "--control", d.control, "--json", label).Output()
	if err != nil {
		t.Fatalf("sockd print %s: %v", label, err)
	}
	var a struct {
		Jobs []printed `json:"jobs"`
	}
	if err := json.Unmarshal(out, &a); err != nil || len(a.Jobs) != 1 {
		t.Fatalf("sockd print %s: %v\n%s", label, err, out)
	}
	return a.Jobs[0]
}

// startReasons are the reasons of the job's "started" lines, in order.
func (d *daemon) startReasons(label string) []string {
	var out []string
	for _, m := range d.logs() {
		if m["msg"] == "started" && m["job"] == label {
			r, _ := m["reason"].(string)
			out = append(out, r)
		}
	}
	return out
}

// counterJob is a socketless job that appends a line to counter at each
// start, with extra keys.
func counterJob(label, counter string, extra map[string]any) map[string]any {
	j := map[string]any{
		"Label":                label,
		"ProgramArguments":     helperArgv("count", counter),
		"EnvironmentVariables": helperEnv(),
		"ThrottleInterval":     0,
	}
	for k, v := range extra {
		j[k] = v
	}
	return j
}

// waitStarts waits up to 5 s for counter to hold want lines, then 300 ms
// more to see no further start, and reports the count.
func waitStarts(t *testing.T, counter string, want int) {
	t.Helper()
	eventually(5*time.Second, func() bool { return countLines(counter) >= want })
	time.Sleep(300 * time.Millisecond)
	if n := countLines(counter); n != want {
		t.Fatalf("%d starts, want %d", n, want)
	}
}

// TestStartInterval: StartInterval 2 starts the job every 2 s from load,
// not at load, each start logged with its trigger, and print shows the
// next start.
func TestStartInterval(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "starts")
	writeJob(t, dir, "iv", counterJob("test.interval", counter, map[string]any{"StartInterval": 2, "ThrottleInterval": 1}))
	d := startSockd(t, dir)
	p := d.print(t, "test.interval")
	if p.Triggers == nil || p.Triggers.NextStartBy != "StartInterval" || p.Triggers.StartInterval != 2 {
		t.Fatalf("print shows triggers %+v", p.Triggers)
	}
	next, err := time.Parse(time.RFC3339Nano, p.Triggers.NextStart)
	if err != nil || time.Until(next) <= 0 || time.Until(next) > 2*time.Second {
		t.Errorf("next_start %q is not within 2 s ahead", p.Triggers.NextStart)
	}
	if n := countLines(counter); n != 0 {
		t.Errorf("started %d times at load", n)
	}
	time.Sleep(7 * time.Second)
	n := countLines(counter)
	if n < 3 || n > 6 {
		t.Errorf("StartInterval 2 started %d times in 7 s, want 3-6", n)
	}
	for _, r := range d.startReasons("test.interval") {
		if r != "StartInterval (every 2s)" {
			t.Errorf("start reason %q", r)
		}
	}
}

// TestStartIntervalWhileRunning: a start that falls while the job still
// runs is skipped (no second instance) and logged at debug.
func TestStartIntervalWhileRunning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "starts")
	writeJob(t, dir, "slow", map[string]any{
		"Label":            "test.interval.slow",
		"ProgramArguments": []string{"/bin/sh", "-c", "echo $$ >> " + counter + "; sleep 2.5"},
		"StartInterval":    1,
		"ThrottleInterval": 0,
	})
	d := startSockd(t, dir)
	time.Sleep(6 * time.Second)
	// Starts at 1 s and 4 s (2, 3, 5 and 6 fall while it runs).
	if n := countLines(counter); n < 1 || n > 3 {
		t.Errorf("%d starts in 6 s of a job running 2.5 s, started every 1 s: want 2 (1-3)", n)
	}
	if d.countLogs("trigger while the job runs: skipped", "test.interval.slow") == 0 {
		t.Error("no debug line for the skipped starts")
	}
}

// TestTriggersWithSockets: a handoff job with StartInterval starts on
// either.
func TestTriggersWithSockets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "starts")
	port := freePort(t, "tcp")
	writeJob(t, dir, "both", counterJob("test.both", counter, map[string]any{
		"StartInterval": 2, "ThrottleInterval": 1,
		"Sockets": map[string]any{"L": tcpSocket(port)},
	}))
	d := startSockd(t, dir)
	eventually(5*time.Second, func() bool { return countLines(counter) >= 1 })
	c, err := net.DialTimeout("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	eventually(5*time.Second, func() bool {
		for _, r := range d.startReasons("test.both") {
			if strings.HasPrefix(r, "socket activity") {
				return true
			}
		}
		return false
	})
	c.Close()
	eventually(8*time.Second, func() bool {
		n := 0
		for _, r := range d.startReasons("test.both") {
			if strings.HasPrefix(r, "StartInterval") {
				n++
			}
		}
		return n >= 2
	})
	var sockets, timed int
	for _, r := range d.startReasons("test.both") {
		switch {
		case strings.HasPrefix(r, "socket activity"):
			sockets++
		case r == "StartInterval (every 2s)":
			timed++
		}
	}
	if sockets == 0 || timed < 2 {
		t.Errorf("starts by the socket %d, by StartInterval %d: %q", sockets, timed, d.startReasons("test.both"))
	}
}

// TestWatchPaths: a path that does not exist yet, created, written,
// renamed into place (an editor's save), removed, and its parent
// directory replaced: one start each; a burst of writes is one start; a
// file beside it is none.
func TestWatchPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "starts")
	root := t.TempDir()
	parent := filepath.Join(root, "etc")
	path := filepath.Join(parent, "app.conf")
	writeJob(t, dir, "watch", counterJob("test.watch", counter, map[string]any{"WatchPaths": []string{path}}))
	d := startSockd(t, dir)
	if p := d.print(t, "test.watch"); p.Triggers == nil || len(p.Triggers.WatchPaths) != 1 || p.Triggers.WatchPaths[0] != path {
		t.Fatalf("print shows triggers %+v", p.Triggers)
	}
	time.Sleep(300 * time.Millisecond)
	steps := []struct {
		name string
		do   func() error
	}{
		{"created with its directory", func() error {
			if err := os.Mkdir(parent, 0o755); err != nil {
				return err
			}
			return os.WriteFile(path, []byte("1"), 0o644)
		}},
		{"written", func() error { return os.WriteFile(path, []byte("2"), 0o644) }},
		{"renamed into place", func() error {
			if err := os.WriteFile(path+".swp", []byte("3"), 0o644); err != nil {
				return err
			}
			return os.Rename(path+".swp", path)
		}},
		{"a burst of writes", func() error {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			for i := 0; i < 50; i++ {
				f.WriteString("x")
			}
			return nil
		}},
		{"removed", func() error { return os.Remove(path) }},
		{"parent directory replaced", func() error {
			next := filepath.Join(root, "etc.new")
			if err := os.Mkdir(next, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(next, "app.conf"), []byte("4"), 0o644); err != nil {
				return err
			}
			if err := os.Rename(parent, filepath.Join(root, "etc.old")); err != nil {
				return err
			}
			return os.Rename(next, parent)
		}},
		{"written in the new directory", func() error { return os.WriteFile(path, []byte("5"), 0o644) }},
	}
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		eventually(5*time.Second, func() bool { return countLines(counter) >= i+1 })
		time.Sleep(300 * time.Millisecond)
		if n := countLines(counter); n != i+1 {
			t.Fatalf("%s: %d starts in all, want %d", st.name, n, i+1)
		}
	}
	os.WriteFile(filepath.Join(parent, "other.conf"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "etc.old", "app.conf"), []byte("x"), 0o644)
	time.Sleep(500 * time.Millisecond)
	if n := countLines(counter); n != len(steps) {
		t.Errorf("a file beside the path, or in the replaced directory, started the job: %d starts", n)
	}
	for _, r := range d.startReasons("test.watch") {
		if r != "WatchPaths: "+path+" changed" {
			t.Errorf("start reason %q", r)
		}
	}
}

// TestQueueDirectoriesDrained: a job that takes one file per run is
// started until its queue is empty, and again when a file arrives.
func TestQueueDirectoriesDrained(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "starts")
	q := filepath.Join(t.TempDir(), "queue")
	os.Mkdir(q, 0o755)
	for _, f := range []string{"a", "b", "c"} {
		os.WriteFile(filepath.Join(q, f), []byte(f), 0o644)
	}
	writeJob(t, dir, "q", map[string]any{
		"Label":            "test.queue",
		"ProgramArguments": []string{"/bin/sh", "-c", `echo $$ >> ` + counter + `; f=$(ls -A ` + q + ` | head -n 1); [ -n "$f" ] && rm -f "` + q + `/$f"; exit 0`},
		"QueueDirectories": []string{q},
		"ThrottleInterval": 0,
	})
	d := startSockd(t, dir)
	waitStarts(t, counter, 3)
	if ents, _ := os.ReadDir(q); len(ents) != 0 {
		t.Errorf("queue not drained: %d entries left", len(ents))
	}
	os.WriteFile(filepath.Join(q, "d"), []byte("d"), 0o644)
	waitStarts(t, counter, 4)
	reasons := d.startReasons("test.queue")
	if len(reasons) == 0 || reasons[0] != "QueueDirectories: "+q+" is not empty" {
		t.Errorf("start reasons %q", reasons)
	}
	if d.countLogs("as it found them", "test.queue") != 0 {
		t.Error("a job that drains its queue was taken for one that does not")
	}
}

// TestQueueDirectoriesLeftFull: a job that leaves its queue as it found
// it is started again only through the throttle, never in a loop, and the
// log says why, once.
func TestQueueDirectoriesLeftFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "starts")
	q := filepath.Join(t.TempDir(), "queue")
	os.Mkdir(q, 0o755)
	os.WriteFile(filepath.Join(q, "stuck"), []byte("x"), 0o644)
	writeJob(t, dir, "q", counterJob("test.queue.stuck", counter, map[string]any{
		"QueueDirectories": []string{q}, "ThrottleInterval": 1,
	}))
	d := startSockd(t, dir)
	time.Sleep(4500 * time.Millisecond)
	if n := countLines(counter); n < 2 || n > 6 {
		t.Errorf("%d starts in 4.5 s with ThrottleInterval 1 and a queue it cannot take: want 2-6 (no loop)", n)
	}
	if n := d.countLogs("throttling so it does not restart in a loop", "test.queue.stuck"); n != 1 {
		t.Errorf("%d warnings saying why it is throttled, want 1", n)
	}
	if p := d.print(t, "test.queue.stuck"); p.Triggers == nil || len(p.Triggers.QueueDirectories) != 1 {
		t.Errorf("print shows triggers %+v", p.Triggers)
	}
}

// TestStartOnMount: a tmpfs mounted by the test starts the job once; its
// unmount does not.
func TestStartOnMount(t *testing.T) {
	needRoot(t)
	t.Parallel()
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "starts")
	writeJob(t, dir, "m", counterJob("test.mount", counter, map[string]any{"StartOnMount": true}))
	d := startSockd(t, dir)
	time.Sleep(300 * time.Millisecond)
	if n := countLines(counter); n != 0 {
		t.Fatalf("started %d times before any mount", n)
	}
	mnt := t.TempDir()
	if err := unix.Mount("sockd-e2e", mnt, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	waitStarts(t, counter, 1)
	if r := d.startReasons("test.mount"); len(r) != 1 || r[0] != "StartOnMount: "+mnt+" (tmpfs) mounted" {
		t.Errorf("start reasons %q", r)
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	mounted = false
	time.Sleep(500 * time.Millisecond)
	if n := countLines(counter); n != 1 {
		t.Errorf("%d starts after the unmount, want 1", n)
	}
}

// TestLaunchOnlyOnce: a LaunchOnlyOnce job with KeepAlive starts once,
// and neither a reload of a changed definition, sockd start nor a
// restart of sockd starts it again; its record is what does that.
func TestLaunchOnlyOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "starts")
	onceDir := filepath.Join(t.TempDir(), "once")
	job := counterJob("test.once", counter, map[string]any{"LaunchOnlyOnce": true, "KeepAlive": true, "ThrottleInterval": 1})
	writeJob(t, dir, "once", job)
	d := startSockd(t, dir, "--once-dir", onceDir)
	waitStarts(t, counter, 1)
	time.Sleep(2 * time.Second) // KeepAlive would have restarted it twice
	if n := countLines(counter); n != 1 {
		t.Fatalf("%d starts, want 1", n)
	}
	if n := d.countLogs("LaunchOnlyOnce: the job has started once this boot", "test.once"); n != 1 {
		t.Errorf("%d lines saying why it does not start again, want 1", n)
	}
	if p := d.print(t, "test.once"); p.State != "done" || p.Triggers == nil || p.Triggers.StartedOnce == "" {
		t.Errorf("print: state %q triggers %+v", p.State, p.Triggers)
	}
	code, out, _ := d.ctl(t, nil, "start", "test.once")
	if code != 1 || !strings.Contains(out, "LaunchOnlyOnce") {
		t.Errorf("sockd start: exit %d: %s", code, out)
	}

	// A reload of a changed definition.
	job["EnvironmentVariables"] = map[string]any{"GO_WANT_HELPER_PROCESS": "1", "CHANGED": "yes"}
	writeJob(t, dir, "once", job)
	d.signal(syscall.SIGHUP)
	if !d.waitLog(`"job changed"`, 5*time.Second) {
		t.Fatal("the reload did not see the change")
	}
	time.Sleep(1500 * time.Millisecond)
	if n := countLines(counter); n != 1 {
		t.Fatalf("%d starts after a reload, want 1", n)
	}

	// A restart of sockd.
	if err := d.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	startSockd(t, dir, "--once-dir", onceDir)
	time.Sleep(2 * time.Second)
	if n := countLines(counter); n != 1 {
		t.Fatalf("%d starts after a restart of sockd, want 1", n)
	}

	// The record is what keeps it off: without it, the next sockd starts
	// it again (once).
	ents, _ := os.ReadDir(onceDir)
	if len(ents) != 1 {
		t.Fatalf("records: %d", len(ents))
	}
	os.Remove(filepath.Join(onceDir, ents[0].Name()))
	startSockd(t, dir, "--once-dir", onceDir)
	waitStarts(t, counter, 2)
}

// TestStartCalendarInterval: a calendar job scheduled for the next minute
// of the daemon's time zone (TZ set to a zone 5:30 from UTC) starts in
// that minute, once. It waits up to 70 s.
func TestStartCalendarInterval(t *testing.T) {
	t.Parallel()
	const tz = "Asia/Kolkata"
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Skipf("time zone %s not available (install tzdata): %v", tz, err)
	}
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "starts")
	now := time.Now().In(loc)
	target := now.Truncate(time.Minute).Add(time.Minute)
	if target.Sub(now) < 10*time.Second {
		target = target.Add(time.Minute) // leave time to load
	}
	writeJob(t, dir, "cal", counterJob("test.calendar", counter, map[string]any{
		"StartCalendarInterval": map[string]any{"Hour": target.Hour(), "Minute": target.Minute()},
	}))
	d := startSockdAs(t, nil, []string{"TZ=" + tz}, dir)
	p := d.print(t, "test.calendar")
	if p.Triggers == nil {
		t.Fatal("print shows no triggers")
	}
	next, err := time.Parse(time.RFC3339Nano, p.Triggers.NextStart)
	if err != nil || !next.Equal(target) {
		t.Fatalf("next_start %q, want %v", p.Triggers.NextStart, target)
	}
	if !eventually(time.Until(target)+10*time.Second, func() bool { return countLines(counter) >= 1 }) {
		t.Fatalf("not started by %v", target.Add(10*time.Second))
	}
	at := time.Now()
	if at.Before(target) || at.After(target.Add(10*time.Second)) {
		t.Errorf("started at %v, want in the minute of %v", at, target)
	}
	time.Sleep(time.Second)
	if n := countLines(counter); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
	want := "StartCalendarInterval (Hour " + strconv.Itoa(target.Hour()) + " Minute " + strconv.Itoa(target.Minute()) + ")"
	if r := d.startReasons("test.calendar"); len(r) != 1 || r[0] != want {
		t.Errorf("start reasons %q, want %q", r, want)
	}
}
