package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sockd/sockd/internal/journal"
)

// newLogger builds sockd's logger (see openLog).
func newLogger(format, level string) (*zap.Logger, error) {
	l, _, err := openLog(format, level)
	return l, err
}

// openLog builds sockd's logger: format "console" on stderr (colours only
// when stderr is a terminal and NO_COLOR is unset), "json" on stderr,
// "journal" through journald's native protocol (priority and fields), or
// "auto" (also ""): journal when stderr is the journal ($JOURNAL_STREAM
// names it, as systemd sets it), else console. level is a zap level name
// (debug, info, warn, error). journalDir is journald's socket directory
// when the log goes to the journal ("" otherwise): children's output then
// gets journal streams of its own. A journal that cannot be reached is one
// warning, and the log is console text on stderr.
func openLog(format, level string) (log *zap.Logger, journalDir string, err error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, "", fmt.Errorf("--log-level: %w", err)
	}
	stderr := zapcore.Lock(os.Stderr)
	opts := []zap.Option{zap.ErrorOutput(stderr)}
	var enc zapcore.Encoder
	switch format {
	case "auto", "":
		if !journal.IsJournalStream(2) {
			enc = consoleEncoder(isTerminal(os.Stderr) && os.Getenv("NO_COLOR") == "")
			break
		}
		fallthrough
	case "journal":
		text := zapcore.NewCore(consoleEncoder(false), stderr, lvl)
		dir := journal.Dir()
		w, err := journal.Open(journal.SocketPath(dir))
		if err != nil {
			l := zap.New(text, opts...)
			l.Warn("the journal cannot be reached: logging to stderr as text", zap.Error(err))
			return l, "", nil
		}
		return zap.New(journal.NewCore(w, "sockd", lvl, text), opts...), dir, nil
	case "console":
		enc = consoleEncoder(isTerminal(os.Stderr) && os.Getenv("NO_COLOR") == "")
	case "json":
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	default:
		return nil, "", fmt.Errorf("--log-format: unknown format %q (want auto, console, json or journal)", format)
	}
	return zap.New(zapcore.NewCore(enc, stderr, lvl), opts...), "", nil
}

// consoleEncoder is the console format: time, level (in colour when
// colour), message, fields as JSON.
func consoleEncoder(colour bool) zapcore.Encoder {
	cfg := zap.NewDevelopmentEncoderConfig()
	cfg.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.EncodeLevel = zapcore.CapitalLevelEncoder
	if colour {
		cfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
	}
	return zapcore.NewConsoleEncoder(cfg)
}

// isTerminal reports whether f is a character device (a terminal, in
// practice, for stderr).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && fi.Mode()&os.ModeDevice != 0
}

// defaultJobDirs is where serve (and print LABEL) look for job files:
// /etc/sockd/jobs for root, else $XDG_CONFIG_HOME/sockd/jobs or
// ~/.config/sockd/jobs.
func defaultJobDirs() []string {
	if os.Geteuid() == 0 {
		return []string{"/etc/sockd/jobs"}
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return []string{filepath.Join(x, "sockd", "jobs")}
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return []string{filepath.Join(home, ".config", "sockd", "jobs")}
	}
	return []string{"/etc/sockd/jobs"}
}

// stringsFlag is a repeatable string flag (--jobs A --jobs B).
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}
