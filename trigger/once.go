package trigger

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Once keeps the LaunchOnlyOnce records: one file per job that has
// started this boot, in a directory of its own (normally
// /run/sockd/once, on a tmpfs that every boot empties). A record names
// the boot it was made in (the kernel's boot ID), so one left from an
// earlier boot in a directory that outlives boots does not count. The
// record is made before the start (O_EXCL: two sockds cannot both
// start the job) and taken back only when the start failed.
type Once struct {
	dir  string
	boot string
}

// OnceRecord is one job's record.
type OnceRecord struct {
	Boot string
	At   time.Time
	File string
}

// NewOnce keeps records in dir for the boot bootID.
func NewOnce(dir, bootID string) *Once {
	return &Once{dir: dir, boot: bootID}
}

// Dir is the directory of the records.
func (o *Once) Dir() string { return o.dir }

// Path is the file of label's record: the label escaped as in a URL
// path, or its SHA-256 when that is not a usable file name.
func (o *Once) Path(label string) string {
	name := url.PathEscape(label)
	if name == "" || name == "." || name == ".." || len(name) > 200 || strings.HasPrefix(name, ".") {
		sum := sha256.Sum256([]byte(label))
		name = "sha256-" + hex.EncodeToString(sum[:])
	}
	return filepath.Join(o.dir, name)
}

// Lookup returns label's record of this boot; ok is false when the job
// has not started this boot.
func (o *Once) Lookup(label string) (OnceRecord, bool, error) {
	path := o.Path(label)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return OnceRecord{}, false, nil
	}
	if err != nil {
		return OnceRecord{}, false, fmt.Errorf("LaunchOnlyOnce record: %w", err)
	}
	rec := parseOnce(data)
	rec.File = path
	return rec, rec.Boot == o.boot, nil
}

// Claim records that label starts now, unless it has started this boot
// already (claimed false, and its record). A record of another boot is
// replaced.
func (o *Once) Claim(label string, now time.Time) (claimed bool, rec OnceRecord, err error) {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return false, OnceRecord{}, fmt.Errorf("LaunchOnlyOnce records: %w", err)
	}
	path := o.Path(label)
	for try := 0; try < 2; try++ {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			old, thisBoot, lerr := o.Lookup(label)
			if lerr != nil {
				return false, OnceRecord{}, lerr
			}
			if thisBoot {
				return false, old, nil
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, OnceRecord{}, fmt.Errorf("LaunchOnlyOnce record of an earlier boot: %w", err)
			}
			continue
		}
		if err != nil {
			return false, OnceRecord{}, fmt.Errorf("LaunchOnlyOnce record: %w", err)
		}
		rec := OnceRecord{Boot: o.boot, At: now, File: path}
		_, werr := fmt.Fprintf(f, "boot %s\nstarted %s\nlabel %s\n", rec.Boot, now.Format(time.RFC3339Nano), label)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return false, OnceRecord{}, fmt.Errorf("LaunchOnlyOnce record: %w", werr)
		}
		return true, rec, nil
	}
	return false, OnceRecord{}, fmt.Errorf("LaunchOnlyOnce record %s: it keeps coming back", path)
}

// Release takes back label's record: its start failed.
func (o *Once) Release(label string) error {
	if err := os.Remove(o.Path(label)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("LaunchOnlyOnce record: %w", err)
	}
	return nil
}

// parseOnce reads a record's "boot ID" and "started TIME" lines.
func parseOnce(data []byte) OnceRecord {
	var rec OnceRecord
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "boot":
			rec.Boot = v
		case "started":
			rec.At, _ = time.Parse(time.RFC3339Nano, v)
		}
	}
	return rec
}
