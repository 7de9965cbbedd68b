// Package procrecord keeps a record of each main process sockd runs (a
// handoff or inetd-wait service, a KeepAlive job, a proxy backend) in a
// directory of its own, normally /run/sockd/procs: one small file per
// process, written when it starts and removed when it has been reaped. A
// sockd killed without a chance to stop its children (SIGKILL, a crash)
// leaves its records behind, and the next sockd finds the processes its
// predecessor left, which may still hold their jobs' sockets, by pid and
// start time (a reused pid is not mistaken for them).
package procrecord

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Version is the version of the record format this sockd writes and
// reads; a record of another version is reported and left alone.
const Version = 1

// Record is one main process, as its file holds it (JSON).
type Record struct {
	Version int    `json:"version"`
	Label   string `json:"label"`
	Pid     int    `json:"pid"`
	// StartTicks is the process's start time, field 22 of
	// /proc/PID/stat, in clock ticks since boot: with BootID, what tells
	// it from a later process with the same pid.
	StartTicks uint64 `json:"start_ticks"`
	BootID     string `json:"boot_id"`
	// Group says that the process leads a process group of its own,
	// which is signalled with it (no AbandonProcessGroup).
	Group bool `json:"group"`
	// ExitTimeout is the job's ExitTimeOut in seconds: how long the
	// process gets between SIGTERM and SIGKILL.
	ExitTimeout float64 `json:"exit_timeout"`
}

// Book is the directory of records.
type Book struct {
	dir  string
	boot string
}

// Open returns the book in dir, creating the directory (mode 0700).
func Open(dir, bootID string) (*Book, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("process records: %w", err)
	}
	return &Book{dir: dir, boot: bootID}, nil
}

// Dir is the book's directory.
func (b *Book) Dir() string { return b.dir }

func (b *Book) path(pid int) string { return filepath.Join(b.dir, strconv.Itoa(pid)+".json") }

// Started records a process that has just started.
func (b *Book) Started(label string, pid int, group bool, exitTimeout time.Duration) error {
	ticks, err := StartTicks(pid)
	if err != nil {
		return err
	}
	rec := Record{Version: Version, Label: label, Pid: pid, StartTicks: ticks, BootID: b.boot, Group: group, ExitTimeout: exitTimeout.Seconds()}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := b.path(pid) + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("process record of pid %d: %w", pid, err)
	}
	if err := os.Rename(tmp, b.path(pid)); err != nil {
		return fmt.Errorf("process record of pid %d: %w", pid, err)
	}
	return nil
}

// Exited removes the record of a process that has been reaped.
func (b *Book) Exited(pid int) error {
	if err := os.Remove(b.path(pid)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("process record of pid %d: %w", pid, err)
	}
	return nil
}

// Left lists the records in the book: those an earlier sockd left.
// Records that cannot be read are returned as errors, one per file, and
// removed (they name no process that can be found).
func (b *Book) Left() ([]Record, []error) {
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, []error{fmt.Errorf("process records: %w", err)}
	}
	var recs []Record
	var errs []error
	for _, e := range ents {
		p := filepath.Join(b.dir, e.Name())
		if !strings.HasSuffix(e.Name(), ".json") {
			os.Remove(p) // a temporary file of a write cut short
			continue
		}
		var r Record
		data, err := os.ReadFile(p)
		if err == nil {
			err = json.Unmarshal(data, &r)
		}
		if err == nil && r.Version != Version {
			err = fmt.Errorf("version %d, this sockd reads version %d", r.Version, Version)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("process record %s: %w", p, err))
			os.Remove(p)
			continue
		}
		recs = append(recs, r)
	}
	return recs, errs
}

// Alive reports whether r's process is still running: the same pid, boot
// and start time.
func (b *Book) Alive(r Record) bool {
	if r.BootID != b.boot {
		return false
	}
	ticks, err := StartTicks(r.Pid)
	return err == nil && ticks == r.StartTicks
}

// StartTicks reads the start time of pid: field 22 of /proc/PID/stat.
func StartTicks(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStartTicks(string(data))
}

// parseStartTicks reads field 22 of a /proc/PID/stat line; the command
// name (field 2) may hold spaces and parentheses, so fields are counted
// after its last ')'.
func parseStartTicks(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat line")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 20 {
		return 0, errors.New("short /proc stat line")
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22 is the 20th after the name
}
