package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sockd/sockd/compat"
	"github.com/sockd/sockd/internal/cfgfile"
	"github.com/sockd/sockd/job"
)

// Legacy configurations: check, print and serve load inetd.conf and xinetd
// files and systemd socket units through package jobset; `sockd convert`
// writes launchd job files from them.

func init() {
	register(withFlags(command{
		name:     "convert",
		summary:  "write launchd job files from an inetd.conf, an xinetd configuration or systemd socket units",
		synopsis: "[--from inetd|xinetd|systemd] [-o DIR] [--force] FILE|DIR|UNIT.socket...",
		about: "Writes one launchd job file (LABEL.plist) per service of an inetd.conf, an " +
			"xinetd.conf (with its includes) or an xinetd.d directory, or per job of systemd socket units " +
			"(UNIT.socket files, read with their services and drop-ins, or a directory of units: " +
			"an Accept=yes unit is one job, the Accept=no units of one service another), and prints each path. " +
			"Problems go to stderr as sockd check prints them; services with errors are not " +
			"converted and the exit status is then 1. A job file that already exists stops " +
			"the conversion (nothing is overwritten) unless --force, which replaces the name, never a link's target.",
	}, (*convertFlags).define, runConvert))
}

// convertFlags are convert's command line.
type convertFlags struct {
	from, out string
	force     bool
}

func (c *convertFlags) define(fs *flag.FlagSet, _ defaults) {
	fs.StringVar(&c.from, "from", "", "source format, `inetd|xinetd|systemd` (default: detected)")
	fs.StringVar(&c.out, "o", ".", "the `DIR` to write the job files into")
	fs.BoolVar(&c.force, "force", false, "overwrite existing files")
}

func runConvert(c *convertFlags, pos []string) error {
	from, out, force := &c.from, &c.out, &c.force
	if len(pos) == 0 {
		return usageError(fmt.Errorf("convert: need a FILE (inetd.conf, xinetd.conf, an xinetd.d directory, or systemd socket units)"))
	}
	src := pos[0]
	format := *from
	if format == "" && allUnits(pos) {
		format = "systemd"
	}
	if len(pos) != 1 && format != "systemd" {
		return usageError(fmt.Errorf("convert: need exactly one FILE (inetd.conf, xinetd.conf, or an xinetd.d directory); several only for --from systemd"))
	}
	if format == "" {
		if fi, err := os.Stat(src); err == nil && fi.IsDir() {
			format = "xinetd"
			if filepath.Base(filepath.Clean(src)) != "xinetd.d" && hasUnits(src) {
				format = "systemd"
			}
		} else {
			data, err := cfgfile.Read(src, compat.MaxFileSize)
			if err != nil {
				return fmt.Errorf("convert: %w", err)
			}
			switch compat.Detect(src, data) {
			case compat.FormatInetd:
				format = "inetd"
			case compat.FormatXinetd:
				format = "xinetd"
			case compat.FormatSystemd:
				format = "systemd"
			default:
				return fmt.Errorf("convert: %s: cannot tell whether this is inetd.conf, xinetd or a systemd unit; use --from inetd|xinetd|systemd", src)
			}
		}
	}
	var jobs []*job.Job
	var diags job.Diags
	switch format {
	case "inetd":
		jobs, diags = compat.LoadInetd(src)
	case "xinetd":
		jobs, diags = compat.LoadXinetd(src)
	case "systemd":
		jobs, diags = compat.LoadSystemd(pos...)
		src = strings.Join(pos, " ")
	default:
		return usageError(fmt.Errorf("convert: --from must be inetd, xinetd or systemd, not %q", format))
	}
	for _, d := range diags {
		fmt.Fprintln(os.Stderr, d.String())
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	if d := job.CheckDir(*out, job.LoadOptions{UID: os.Geteuid()}); d != nil {
		d.Severity = job.Warning
		fmt.Fprintln(os.Stderr, d.String())
	}
	written := 0
	for _, j := range jobs {
		data, err := compat.WritePlist(j)
		if err != nil {
			return fmt.Errorf("convert: job %s: %w", j.Label, err)
		}
		name := filepath.Join(*out, safeFileName(j.Label)+".plist")
		if err := writeJobFile(name, data, *force); err != nil {
			return fmt.Errorf("convert: %w", err)
		}
		fmt.Println(name)
		written++
	}
	fmt.Fprintf(os.Stderr, "%d job file(s) written to %s from %s (%s)\n", written, *out, src, format)
	if diags.HasErrors() {
		return &exitError{code: 1, err: fmt.Errorf("convert: %s has errors; the services with errors were not converted", src)}
	}
	return nil
}

// allUnits reports whether every path names a systemd socket unit.
func allUnits(paths []string) bool {
	for _, p := range paths {
		if !strings.HasSuffix(p, ".socket") {
			return false
		}
	}
	return true
}

// hasUnits reports whether dir holds a systemd socket unit.
func hasUnits(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.socket"))
	return len(m) > 0
}

// writeJobFile writes data to name (mode 0644) without following a link or
// writing through a file another user prepared there: the data goes into a
// new file of the same directory (O_EXCL, a random name) that is then
// renamed to name, which replaces the directory entry itself (a link at
// name, not its target). Without force an existing name, a link included,
// is an error and is left alone.
func writeJobFile(name string, data []byte, force bool) error {
	dir, base := filepath.Split(name)
	f, err := os.CreateTemp(dir, "."+base+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a rename or link: gone, or a second name
	if err := writeSynced(f, data); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if !force {
		// link(2) fails when name exists, whatever it is: nothing is
		// overwritten, and nothing is followed.
		if err := os.Link(tmp, name); errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists (use --force to overwrite)", name)
		} else if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	return os.Rename(tmp, name)
}

// writeSynced writes data to f, gives it mode 0644 through the descriptor
// and closes it.
func writeSynced(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// safeFileName keeps a label usable as a file name.
func safeFileName(label string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == ' ' {
			return '_'
		}
		return r
	}, label)
}
