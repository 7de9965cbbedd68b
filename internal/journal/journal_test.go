//go:build linux

package journal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/journal"
	"github.com/sockd/sockd/internal/journal/journaltest"
)

func TestAppendFieldAndDecode(t *testing.T) {
	var b []byte
	b = journal.AppendField(b, "MESSAGE", "one line")
	b = journal.AppendField(b, "MULTI", "two\nlines")
	b = journal.AppendField(b, "EMPTY", "")
	b = journal.AppendField(b, "EQ", "a=b")
	want := "MESSAGE=one line\nMULTI\n" + string(binary.LittleEndian.AppendUint64(nil, 9)) + "two\nlines\nEMPTY=\nEQ=a=b\n"
	if string(b) != want {
		t.Fatalf("encoded %q\nwant    %q", b, want)
	}
	fs, err := journal.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	wantF := []journal.Field{{"MESSAGE", "one line"}, {"MULTI", "two\nlines"}, {"EMPTY", ""}, {"EQ", "a=b"}}
	if len(fs) != len(wantF) {
		t.Fatalf("decoded %q", fs)
	}
	for i := range fs {
		if fs[i] != wantF[i] {
			t.Errorf("field %d: %q, want %q", i, fs[i], wantF[i])
		}
	}
	for _, bad := range []string{"MESSAGE=x", "lower=x\n", "_TRUSTED=x\n", "LEN\n\x05\x00\x00\x00\x00\x00\x00\x00abc\n", "LEN\n\x01\x00"} {
		if _, err := journal.Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
}

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{
		"job": "JOB", "pid": "PID", "retry_in": "RETRY_IN", "next-start.in": "NEXT_START_IN",
		"_private": "PRIVATE", "__": "FIELD", "": "FIELD", "9lives": "F9LIVES", "Ünï": "N__",
		strings.Repeat("a", 70): strings.Repeat("A", 64),
	} {
		got := journal.FieldName(in)
		if got != want {
			t.Errorf("FieldName(%q) = %q, want %q", in, got, want)
		}
		if !journal.ValidName(got) {
			t.Errorf("FieldName(%q) = %q is not valid", in, got)
		}
	}
}

func TestWriterSendsDatagramsAndLargeEntries(t *testing.T) {
	fj := journaltest.Start(t)
	w, err := journal.Open(journal.SocketPath(fj.Dir))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	small := journal.AppendField(nil, "MESSAGE", "small")
	big := journal.AppendField(nil, "MESSAGE", "big")
	blob := strings.Repeat("x\n", 10<<20) // 20 MiB: over any datagram (twice wmem_max, here 4 MiB)
	big = journal.AppendField(big, "BLOB", blob)
	for _, e := range [][]byte{small, big} {
		if err := w.Send(e); err != nil {
			t.Fatal(err)
		}
	}
	got, ok := fj.Wait(5*time.Second, func(e journaltest.Entry) bool { return e.Get("MESSAGE") == "big" })
	if !ok {
		t.Fatalf("the large entry did not arrive: %d entries", len(fj.Entries()))
	}
	if got.Transport != "journal-fd" || got.Get("BLOB") != blob {
		t.Errorf("large entry came by %s with %d bytes", got.Transport, len(got.Get("BLOB")))
	}
	if e, ok := fj.Wait(time.Second, func(e journaltest.Entry) bool { return e.Get("MESSAGE") == "small" }); !ok || e.Transport != "journal" {
		t.Errorf("small entry: %v %v", e, ok)
	}
	if _, err := journal.Open(fj.Dir + "/nothing"); err == nil {
		t.Error("Open of a path nobody listens on succeeded")
	}
}

// TestCore: zap entries read back with priority, identifier and fields.
func TestCore(t *testing.T) {
	fj := journaltest.Start(t)
	w, err := journal.Open(journal.SocketPath(fj.Dir))
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	fallback := zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(&text), zapcore.DebugLevel)
	log := zap.New(journal.NewCore(w, "sockd", zapcore.DebugLevel, fallback)).With(zap.String("job", "org.example.web"))
	log.Debug("debug line")
	log.Info("started", zap.Int("pid", 4711), zap.Duration("ran", 1500*time.Millisecond), zap.Strings("jobs", []string{"a", "b"}))
	log.Warn("two\nlines", zap.Bool("stale", true), zap.String("message", "a field called message"))
	log.Error("cannot start", zap.Error(errors.New("exec: no such file")), zap.Float64("ratio", 0.5))

	want := []struct {
		msg, prio string
		fields    map[string]string
	}{
		{"debug line", "7", map[string]string{"JOB": "org.example.web"}},
		{"started", "6", map[string]string{"JOB": "org.example.web", "PID": "4711", "RAN": "1.5s", "JOBS": `["a","b"]`}},
		{"two\nlines", "4", map[string]string{"STALE": "true", "FIELD_MESSAGE": "a field called message"}},
		{"cannot start", "3", map[string]string{"ERROR": "exec: no such file", "RATIO": "0.5"}},
	}
	for _, wnt := range want {
		e, ok := fj.Wait(5*time.Second, func(e journaltest.Entry) bool { return e.Get("MESSAGE") == wnt.msg })
		if !ok {
			t.Errorf("%q: no entry", wnt.msg)
			continue
		}
		if e.Get("PRIORITY") != wnt.prio || e.Get("SYSLOG_IDENTIFIER") != "sockd" {
			t.Errorf("%q: PRIORITY=%s SYSLOG_IDENTIFIER=%s", wnt.msg, e.Get("PRIORITY"), e.Get("SYSLOG_IDENTIFIER"))
		}
		for k, v := range wnt.fields {
			if e.Get(k) != v {
				t.Errorf("%q: %s=%q, want %q (entry %q)", wnt.msg, k, e.Get(k), v, e.Fields)
			}
		}
		n := 0
		for _, f := range e.Fields {
			if f.Name == "MESSAGE" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%q: %d MESSAGE fields", wnt.msg, n)
		}
	}
	if text.Len() != 0 {
		t.Errorf("fallback written while the journal listened: %q", text.String())
	}

	// The journal goes: text, after one warning; back: the journal again.
	fj.Close()
	log.Info("while away 1")
	log.Info("while away 2")
	out := text.String()
	if strings.Count(out, "the journal does not take sockd's log") != 1 || !strings.Contains(out, "while away 1") || !strings.Contains(out, "while away 2") {
		t.Errorf("fallback text:\n%s", out)
	}
}

func TestOpenStream(t *testing.T) {
	fj := journaltest.Start(t)
	fd, err := journal.OpenStream(journal.StdoutPath(fj.Dir), "org.example.web", journal.FacilityDaemon|journal.PriInfo)
	if err != nil {
		t.Fatal(err)
	}
	if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); fl&unix.O_NONBLOCK != 0 {
		t.Error("stream is non-blocking")
	}
	if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
		t.Error("stream is not close-on-exec")
	}
	kv, err := journal.StreamEnv(fd)
	if err != nil || !strings.HasPrefix(kv, "JOURNAL_STREAM=") {
		t.Errorf("StreamEnv: %q %v", kv, err)
	}
	t.Setenv("JOURNAL_STREAM", strings.TrimPrefix(kv, "JOURNAL_STREAM="))
	if !journal.IsJournalStream(fd) || journal.IsJournalStream(0) {
		t.Error("IsJournalStream does not tell the stream from fd 0")
	}
	f := os.NewFile(uintptr(fd), "stream")
	_, _ = f.WriteString("hello\n<3>an error\n")
	f.Close()
	e, ok := fj.Wait(5*time.Second, func(e journaltest.Entry) bool { return e.Get("MESSAGE") == "an error" })
	if !ok || e.Get("PRIORITY") != "3" || e.Get("SYSLOG_IDENTIFIER") != "org.example.web" || e.Get("SYSLOG_FACILITY") != "3" {
		t.Errorf("stream entry %q (%v)", e.Fields, ok)
	}
	if e, ok := fj.Wait(time.Second, func(e journaltest.Entry) bool { return e.Get("MESSAGE") == "hello" }); !ok || e.Get("PRIORITY") != "6" {
		t.Errorf("stream entry %q (%v)", e.Fields, ok)
	}
}
