package jobset

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sockd/sockd/compat"
	"github.com/sockd/sockd/job"
)

// task is one thing to read: a file in a format (compat.FormatUnknown:
// told by compat.Detect), or an xinetd directory.
type task struct {
	path      string
	format    compat.Format
	xinetdDir bool
	// units are the systemd socket units and unit directories of a
	// systemd task (format compat.FormatSystemd), read together.
	units []string
}

// result is what one task gave.
type result struct {
	jobs  []*job.Job
	diags job.Diags
	files int
}

// read reads every source into s.All, s.Diags and s.Files.
func (s *Set) read(src Sources, opts Options) {
	if opts.ReadAs != nil {
		s.readOneByOne(src, opts)
		return
	}
	ts, ds := tasks(src, opts)
	s.note(ds)
	results := make([]result, len(ts))
	// Files load in parallel (one worker per CPU); results keep their order.
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0) && w < len(ts); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ts) {
					return
				}
				results[i] = readTask(ts[i], opts)
			}
		}()
	}
	wg.Wait()
	s.take(results)
}

// take adds what the tasks gave, in their order.
func (s *Set) take(results []result) {
	for _, r := range results {
		s.note(r.diags)
		s.All = append(s.All, r.jobs...)
		s.Files += r.files
	}
}

// readOneByOne is read one task after the other on the calling thread,
// whose credentials Load set to opts.ReadAs's.
func (s *Set) readOneByOne(src Sources, opts Options) {
	ts, ds := tasks(src, opts)
	s.note(ds)
	results := make([]result, 0, len(ts))
	for _, t := range ts {
		results = append(results, readTask(t, opts))
	}
	s.take(results)
}

// tasks lists what the sources name, in order. A job directory that
// fails the directories' rule (job.CheckDir) gives no task.
func tasks(src Sources, opts Options) ([]task, job.Diags) {
	var ts []task
	var diags job.Diags
	var units []string
	for _, p := range src.Paths {
		fi, err := os.Stat(p)
		switch {
		case err != nil && opts.MissingOK:
			diags = append(diags, job.Diag{File: p, Severity: job.Warning, Msg: "job directory not readable: " + err.Error()})
		case err != nil:
			diags = append(diags, job.Diag{File: p, Severity: job.Error, Msg: fmt.Sprintf("cannot read: %v", err)})
		case fi.IsDir() && isXinetdDir(p):
			ts = append(ts, task{path: p, xinetdDir: true})
		case fi.IsDir():
			if d := job.CheckDir(p, opts.loadOptions()); d != nil {
				diags = append(diags, *d)
				continue
			}
			files, ds := job.ExpandPaths([]string{p})
			diags = append(diags, ds...)
			for _, f := range files {
				ts = append(ts, task{path: f})
			}
		case strings.HasSuffix(p, ".socket"):
			units = append(units, p)
		default:
			ts = append(ts, task{path: p})
		}
	}
	for _, p := range src.Inetd {
		ts = append(ts, task{path: p, format: compat.FormatInetd})
	}
	for _, p := range src.Xinetd {
		fi, err := os.Stat(p)
		ts = append(ts, task{path: p, format: compat.FormatXinetd, xinetdDir: err == nil && fi.IsDir()})
	}
	if units = append(units, src.Systemd...); len(units) > 0 {
		ts = append(ts, task{path: units[0], format: compat.FormatSystemd, units: units})
	}
	return ts, diags
}

// isXinetdDir reports whether a directory is named xinetd.d, which is read
// as xinetd reads its includedir.
func isXinetdDir(path string) bool {
	return filepath.Base(filepath.Clean(path)) == "xinetd.d"
}

// readTask reads one task. Every file given obeys the job files' rules
// (job.ReadFile: a regular file, not group- or world-writable, owned by
// root or sockd's user), and so do the files and directories an xinetd
// configuration includes (compat applies them).
func readTask(t task, opts Options) result {
	if t.xinetdDir {
		return readXinetd(t.path, opts)
	}
	if t.units != nil {
		return readSystemd(t.units, opts)
	}
	data, diags := job.ReadFile(t.path, opts.loadOptions())
	if diags.HasErrors() {
		return result{diags: diags, files: 1}
	}
	format := t.format
	if format == compat.FormatUnknown {
		format = compat.Detect(t.path, data)
	}
	var r result
	switch format {
	case compat.FormatInetd:
		r.jobs, r.diags = compat.ParseInetd(data, t.path)
		r.files = 1
	case compat.FormatXinetd:
		r = readXinetd(t.path, opts)
		r.files = max(r.files, 1)
	case compat.FormatSystemd:
		r = readSystemd([]string{t.path}, opts)
		r.files = max(r.files, 1)
	default:
		r.files = 1
		if j, ds := job.DecodeWith(data, t.path, opts.programs); j != nil {
			r.jobs, r.diags = []*job.Job{j}, ds
		} else {
			r.diags = ds
		}
	}
	r.diags = append(diags, r.diags...)
	return r
}

// readSystemd loads systemd socket units and unit directories, counting
// the files read. Specifiers resolve for the service manager of the sockd
// that would serve them (root's: the system manager).
func readSystemd(paths []string, opts Options) result {
	var r result
	r.jobs, r.diags = compat.LoadSystemdWith(paths, compat.SystemdOptions{Files: opts.loadOptions(), UID: opts.View.UID, OnRead: func(string) { r.files++ }})
	return r
}

// readXinetd loads an xinetd.conf, service file or directory, counting the
// files read.
func readXinetd(path string, opts Options) result {
	var r result
	r.jobs, r.diags = compat.LoadXinetdWith(path, compat.XinetdOptions{Files: opts.loadOptions(), OnRead: func(string) { r.files++ }})
	return r
}
