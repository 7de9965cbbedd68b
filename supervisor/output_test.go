//go:build linux

package supervisor

import (
	"context"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sockd/sockd/internal/journal/journaltest"
	"github.com/sockd/sockd/job"
)

func TestLineReader(t *testing.T) {
	type rec struct {
		line    string
		partial bool
	}
	var got []rec
	lr := lineReader{emit: func(l []byte, p bool) { got = append(got, rec{string(l), p}) }}
	long := strings.Repeat("y", maxOutputLine*2+5)
	for _, chunk := range []string{"one\ntw", "o\r\n", "\n", long[:100], long[100:] + "\nlast"} {
		lr.write([]byte(chunk))
	}
	lr.flush()
	want := []rec{{"one", false}, {"two", false}, {"", false},
		{long[:maxOutputLine], true}, {long[maxOutputLine : 2*maxOutputLine], true}, {long[2*maxOutputLine:], false},
		{"last", false}}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: %.40q partial %v, want %.40q partial %v", i, got[i].line, got[i].partial, want[i].line, want[i].partial)
		}
	}
}

// runOneJob runs a supervisor over j until the test ends.
func runOneJob(t *testing.T, j *job.Job, cfg Config) *Supervisor {
	t.Helper()
	cfg.Load = func() ([]*job.Job, job.Diags) { return []*job.Job{j}, nil }
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the supervisor did not stop")
		}
	})
	return s
}

// shellJob is a job without sockets, run at load, running script.
func shellJob(t *testing.T, label, script, extra string) *job.Job {
	t.Helper()
	return decodeJob(t, fmt.Sprintf(`<plist version="1.0"><dict>
<key>Label</key><string>%s</string>
<key>ProgramArguments</key><array><string>/bin/sh</string><string>-c</string><string>%s</string></array>
<key>RunAtLoad</key><true/>%s
</dict></plist>`, label, html.EscapeString(script), extra))
}

// TestChildOutputAsRecords: without the journal, a main process's stdout
// and stderr lines are records of its job, with stream and pid; a job's
// StandardOutPath still gets its stdout.
func TestChildOutputAsRecords(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	j := shellJob(t, "test.chatty", `echo "out line"; echo "err line" >&2; echo '{"level":"error","msg":"forged"}'; printf "no newline"`, "")
	runOneJob(t, j, Config{Log: zap.New(core)})
	want := map[string]string{"out line": "stdout", "err line": "stderr", `{"level":"error","msg":"forged"}`: "stdout", "no newline": "stdout"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen := map[string]observer.LoggedEntry{}
		for _, e := range logs.All() {
			if _, ok := want[e.Message]; ok {
				seen[e.Message] = e
			}
		}
		if len(seen) == len(want) {
			var pid int64
			for _, e := range logs.FilterMessage("started").All() {
				pid, _ = e.ContextMap()["pid"].(int64)
			}
			for msg, e := range seen {
				m := e.ContextMap()
				if m["job"] != "test.chatty" || m["stream"] != want[msg] || m["pid"] != pid || e.Level != zap.InfoLevel {
					t.Errorf("%q: level %v fields %v, want job test.chatty stream %s pid %d", msg, e.Level, m, want[msg], pid)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records seen: %v", seen)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// StandardOutPath: the file gets stdout, stderr is still a record.
	out := filepath.Join(t.TempDir(), "out.log")
	core2, logs2 := observer.New(zap.DebugLevel)
	j2 := shellJob(t, "test.file", `echo "to the file"; echo "to the log" >&2`, "<key>StandardOutPath</key><string>"+out+"</string>")
	runOneJob(t, j2, Config{Log: zap.New(core2)})
	deadline = time.Now().Add(10 * time.Second)
	for logs2.FilterMessage("to the log").Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if e := logs2.FilterMessage("to the log").All(); len(e) != 1 || e[0].ContextMap()["stream"] != "stderr" {
		t.Errorf("stderr records %v", e)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(out)
		if string(b) == "to the file\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("StandardOutPath holds %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := logs2.FilterMessage("to the file").Len(); n != 0 {
		t.Errorf("stdout with StandardOutPath also logged %d times", n)
	}
}

// TestChildOutputToJournal: under the journal, a main process's lines go
// to a stream of its own, identified by the job's label, and the child
// knows it (JOURNAL_STREAM); sockd logs none of them.
func TestChildOutputToJournal(t *testing.T) {
	fj := journaltest.Start(t)
	core, logs := observer.New(zap.DebugLevel)
	j := shellJob(t, "test.journal", `echo "out line"; echo "<3>err line" >&2; echo "stream $JOURNAL_STREAM"`, "")
	runOneJob(t, j, Config{Log: zap.New(core), JournalDir: fj.Dir})
	e, ok := fj.Wait(10*time.Second, func(e journaltest.Entry) bool { return e.Get("MESSAGE") == "err line" })
	if !ok || e.Get("SYSLOG_IDENTIFIER") != "test.journal" || e.Get("PRIORITY") != "3" || e.Transport != "stdout" {
		t.Fatalf("stderr entry %q (%v); all: %v", e.Fields, ok, fj.Entries())
	}
	if e.Get("_STREAM_HEADER") != "test.journal\n\n30\n1\n0\n0\n0" {
		t.Errorf("stream header %q", e.Get("_STREAM_HEADER"))
	}
	if e, ok := fj.Wait(time.Second, func(e journaltest.Entry) bool { return e.Get("MESSAGE") == "out line" }); !ok || e.Get("PRIORITY") != "6" {
		t.Errorf("stdout entry %q (%v)", e.Fields, ok)
	}
	if e, ok := fj.Wait(time.Second, func(e journaltest.Entry) bool { return strings.HasPrefix(e.Get("MESSAGE"), "stream ") }); !ok || !strings.Contains(e.Get("MESSAGE"), ":") {
		t.Errorf("JOURNAL_STREAM in the child: %q (%v)", e.Get("MESSAGE"), ok)
	}
	for _, m := range []string{"out line", "err line"} {
		if n := logs.FilterMessage(m).Len(); n != 0 {
			t.Errorf("%q also logged by sockd", m)
		}
	}
}

// TestChildOutputJournalRefused: a journal without a stdout socket: the
// output goes through pipes into the log, after a warning.
func TestChildOutputJournalRefused(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	j := shellJob(t, "test.nojournal", `echo "out line"`, "")
	runOneJob(t, j, Config{Log: zap.New(core), JournalDir: t.TempDir()})
	deadline := time.Now().Add(10 * time.Second)
	for logs.FilterMessage("out line").Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if logs.FilterMessage("out line").Len() != 1 || logs.FilterMessageSnippet("journald refused a stream").Len() != 1 {
		t.Errorf("log: %v", logs.All())
	}
}
