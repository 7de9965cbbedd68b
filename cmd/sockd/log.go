package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger builds sockd's logger on stderr: format "console" (colours only
// when stderr is a terminal and NO_COLOR is unset) or "json"; level is a
// zap level name (debug, info, warn, error).
func newLogger(format, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	var enc zapcore.Encoder
	switch format {
	case "console", "":
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		cfg.EncodeLevel = zapcore.CapitalLevelEncoder
		if isTerminal(os.Stderr) && os.Getenv("NO_COLOR") == "" {
			cfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
		enc = zapcore.NewConsoleEncoder(cfg)
	case "json":
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	default:
		return nil, fmt.Errorf("--log-format: unknown format %q (want console or json)", format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(os.Stderr))), nil
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
