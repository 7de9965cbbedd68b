package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sockd/sockd/internal/journal"
	"github.com/sockd/sockd/internal/linelog"
)

// newLogger builds sockd's logger (see openLog).
func newLogger(format, level string) (*zap.Logger, error) {
	out, err := openLog(format, level)
	return out.log, err
}

// logOutput is where sockd logs: the logger, the writer of connection
// records (the same destination and format, see internal/linelog) and
// journald's socket directory when the log goes to the journal ("" when
// not: children's output then gets journal streams of its own).
type logOutput struct {
	log        *zap.Logger
	records    *linelog.Writer
	journalDir string
}

// openLog builds sockd's logger: format "console" on stderr (colours only
// when stderr is a terminal and NO_COLOR is unset), "json" on stderr,
// "journal" through journald's native protocol (priority and fields), or
// "auto" (also ""): journal when stderr is the journal ($JOURNAL_STREAM
// names it, as systemd sets it), else console. level is a zap level name
// (debug, info, warn, error). A journal that cannot be reached is one
// warning, and the log is console text on stderr.
func openLog(format, level string) (logOutput, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return logOutput{}, fmt.Errorf("--log-level: %w", err)
	}
	stderr := zapcore.Lock(os.Stderr)
	opts := []zap.Option{zap.ErrorOutput(stderr)}
	colour := isTerminal(os.Stderr) && os.Getenv("NO_COLOR") == ""
	switch format {
	case "auto", "":
		if !journal.IsJournalStream(2) {
			return textLog(stderr, colour, lvl, opts), nil
		}
		fallthrough
	case "journal":
		dir := journal.Dir()
		w, err := journal.Open(journal.SocketPath(dir))
		if err != nil {
			out := textLog(stderr, false, lvl, opts)
			out.log.Warn("the journal cannot be reached: logging to stderr as text", zap.Error(err))
			return out, nil
		}
		text := zapcore.NewCore(consoleEncoder(false), stderr, lvl)
		l := zap.New(journal.NewCore(w, "sockd", lvl, text), opts...)
		return logOutput{log: l, records: linelog.Zap(l), journalDir: dir}, nil
	case "console":
		return textLog(stderr, colour, lvl, opts), nil
	case "json":
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		l := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(cfg), stderr, lvl), opts...)
		return logOutput{log: l, records: linelog.New(stderr, linelog.JSON, lvl)}, nil
	}
	return logOutput{}, fmt.Errorf("--log-format: unknown format %q (want auto, console, json or journal)", format)
}

// textLog is the console format on stderr.
func textLog(stderr zapcore.WriteSyncer, colour bool, lvl zapcore.Level, opts []zap.Option) logOutput {
	f := linelog.Console
	if colour {
		f = linelog.ConsoleColour
	}
	l := zap.New(zapcore.NewCore(consoleEncoder(colour), stderr, lvl), opts...)
	return logOutput{log: l, records: linelog.New(stderr, f, lvl)}
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
