// Package jobset is sockd's one loader. It turns the configuration sources
// of a command line (job files and directories, inetd.conf files, xinetd
// configurations, systemd socket units) into the jobs a sockd serves on
// this machine, with every problem found on the way. serve, check and
// print all load through Load, so what check calls valid is exactly what
// serve loads.
//
// Load reads every source (in parallel, results in source order), keeps
// the jobs this host loads (job.SelectForHost), refuses imported jobs that
// no job file could express (backstop), judges each job for the sockd that
// would run it (preflight: what spawn.NewTemplate would refuse, what would
// fail at every start, sockets its privileges cannot bind or chown), and
// checks the rest against each other (job.CrossCheck). Whatever keeps a job
// from being served is an Error diagnostic naming the file and the key, so
// the supervisor's own template build can no longer refuse a job for a
// reason check did not report.
package jobset

import (
	"fmt"
	"os"

	"github.com/sockd/sockd/internal/privilege"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/spawn"
)

// Sources are the configuration a sockd serves.
type Sources struct {
	// Paths are job files and directories: a directory gives its *.plist
	// files (one named xinetd.d is read as xinetd reads it); a file's
	// format is told by compat.Detect, so an inetd.conf or xinetd file
	// given here loads as it would through Inetd or Xinetd.
	Paths []string
	// Inetd are inetd.conf files.
	Inetd []string
	// Xinetd are xinetd.conf files and xinetd.d directories.
	Xinetd []string
	// Systemd are systemd socket units and directories of units (each
	// non-template *.socket in it), read with their services and
	// drop-ins (compat.LoadSystemdWith). They load together with the
	// *.socket files of Paths, so that the socket units of one service
	// make one job.
	Systemd []string
}

// Options say for which sockd the jobs are loaded.
type Options struct {
	// View is the sockd that would serve the jobs: its uid (job files must
	// be owned by root or by it), capabilities, nice value and limits.
	View privilege.View
	// SkipPermissions turns the job files' ownership and permission checks
	// off (like launchctl load -F).
	SkipPermissions bool
	// Hostname is compared with LimitLoadToHosts and LimitLoadFromHosts;
	// empty means the kernel's.
	Hostname string
	// Env is the environment children inherit (spawn.Options.BaseEnv);
	// nil means os.Environ().
	Env []string
	// ReadAs, when set, loads (reads, and judges programs and paths) with that user's
	// rights (a user domain's jobs: a link to a file the user may not read
	// is refused by the kernel, not read by root). The files are then read
	// one at a time, on one thread.
	ReadAs *privilege.Cred
	// MissingOK makes a path of Paths that does not exist a warning, not
	// an error (serve's default job directory may not exist yet).
	MissingOK bool

	// programs is the load's cache of program lookups (load makes it).
	programs *job.ProgramCache
}

// ForThisProcess returns the Options of a sockd running as this process.
func ForThisProcess() Options {
	return Options{View: privilege.Current()}
}

// loadOptions are the job package's options for o.
func (o Options) loadOptions() job.LoadOptions {
	return job.LoadOptions{UID: o.View.UID, SkipPermissions: o.SkipPermissions, Hostname: o.Hostname}
}

// spawnOptions are the options the supervisor builds templates with.
func (o Options) spawnOptions() spawn.Options {
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	return spawn.Options{AsRoot: o.View.Root(), BaseEnv: env}
}

// State is what became of a job that was read.
type State int

const (
	// Loaded: serve loads the job (a disabled one is loaded and not served).
	Loaded State = iota
	// OtherHost: LimitLoadToHosts or LimitLoadFromHosts excludes this host.
	OtherHost
	// Refused: an error keeps the job from being loaded here.
	Refused
)

// Set is the result of Load.
type Set struct {
	// Jobs are the jobs serve loads, in source order.
	Jobs []*job.Job
	// Diags are every problem found, in the order found.
	Diags job.Diags
	// Files counts the files read (an xinetd.conf counts those it
	// includes).
	Files int
	// All are every job read, whatever became of it, in source order.
	All []*job.Job

	state map[*job.Job]State
}

// State says what became of j, one of s.All.
func (s *Set) State(j *job.Job) State { return s.state[j] }

// DiagsOf returns the diagnostics about j: those of its file (or, for a
// job imported from a line, of that line).
func (s *Set) DiagsOf(j *job.Job) job.Diags {
	var out job.Diags
	for _, d := range s.Diags {
		if about(d, j) {
			out = append(out, d)
		}
	}
	return out
}

// Load loads the sources for the sockd of opts. With opts.ReadAs the whole
// load, the preflight's look at programs and paths included, runs with
// that user's rights.
func Load(src Sources, opts Options) *Set {
	if opts.ReadAs == nil {
		return load(src, opts)
	}
	var s *Set
	if err := privilege.RunAs(*opts.ReadAs, func() { s = load(src, opts) }); err != nil {
		s = &Set{state: map[*job.Job]State{}}
		for _, p := range src.Paths {
			s.note(job.Diags{{File: p, Severity: job.Error, Msg: fmt.Sprintf("cannot read it with its user's rights: %v", err)}})
		}
	}
	return s
}

// load is Load on the calling thread.
func load(src Sources, opts Options) *Set {
	s := &Set{state: map[*job.Job]State{}}
	opts.programs = job.NewProgramCache()
	s.read(src, opts)
	jobs, ds := job.SelectForHost(s.All, opts.loadOptions())
	s.note(ds)
	s.refuse(s.All, jobs, OtherHost)
	kept := s.judge(jobs, backstop)
	kept = s.judge(kept, newPreflight(opts).check)
	cross, ds := job.CrossCheck(kept)
	s.note(sourceKeys(ds, kept))
	s.refuse(kept, cross, Refused)
	s.Jobs = cross
	return s
}

// note adds diagnostics.
func (s *Set) note(ds job.Diags) { s.Diags = append(s.Diags, ds...) }

// refuse marks every job of from that is not in kept.
func (s *Set) refuse(from, kept []*job.Job, st State) {
	in := make(map[*job.Job]bool, len(kept))
	for _, j := range kept {
		in[j] = true
	}
	for _, j := range from {
		if !in[j] {
			s.state[j] = st
		}
	}
}

// judge runs check on every job and keeps those without an error.
func (s *Set) judge(jobs []*job.Job, check func(*job.Job) job.Diags) []*job.Job {
	var kept []*job.Job
	for _, j := range jobs {
		ds := check(j)
		s.note(ds)
		if ds.HasErrors() {
			s.state[j] = Refused
			continue
		}
		kept = append(kept, j)
	}
	return kept
}

// FilesBeyond are the files that none of jobs was read from: the files
// `sockd bootstrap` added that the sources do not hold already (a file
// bootstrapped from a jobs directory is not loaded twice).
func FilesBeyond(jobs []*job.Job, files []string) []string {
	have := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		have[j.File] = true
	}
	var out []string
	for _, f := range files {
		if !have[f] {
			out = append(out, f)
		}
	}
	return out
}
