package main

import (
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/internal/journal"
	"github.com/sockd/sockd/internal/journal/journaltest"
)

// TestJournalLogFormat: --log-format journal writes to journald's native
// socket (SOCKD_JOURNAL_DIR), with the priority and the fields; without a
// journal it falls back to text, and says so.
func TestJournalLogFormat(t *testing.T) {
	fj := journaltest.Start(t)
	t.Setenv(journal.DirEnv, fj.Dir)
	out, err := openLog("journal", "debug")
	if err != nil || out.journalDir != fj.Dir {
		t.Fatalf("openLog: dir %q, %v", out.journalDir, err)
	}
	out.log.With(zap.String("job", "org.example.web")).Warn("respawning too fast", zap.Duration("next_start_in", 9*time.Second))
	e, ok := fj.Wait(5*time.Second, func(e journaltest.Entry) bool { return e.Get("MESSAGE") == "respawning too fast" })
	if !ok || e.Get("PRIORITY") != "4" || e.Get("SYSLOG_IDENTIFIER") != "sockd" || e.Get("JOB") != "org.example.web" || e.Get("NEXT_START_IN") != "9s" {
		t.Errorf("entry %q (%v)", e.Fields, ok)
	}

	t.Setenv(journal.DirEnv, t.TempDir()) // nobody listens
	out, err = openLog("journal", "info")
	if err != nil || out.journalDir != "" || out.log == nil || out.records == nil {
		t.Errorf("unreachable journal: logger %v, dir %q, %v", out.log != nil, out.journalDir, err)
	}

	// auto, with stderr not the journal: the console format.
	t.Setenv("JOURNAL_STREAM", "")
	if out, err := openLog("auto", "info"); err != nil || out.journalDir != "" {
		t.Errorf("auto off the journal: dir %q, %v", out.journalDir, err)
	}
}
