package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sockd/sockd/compat"
	"github.com/sockd/sockd/job"
)

// importers turn job files in other formats (inetd.conf, xinetd) into
// jobs. check consults them, in order, for every file before decoding it
// as a launchd plist; the first that reports handled=true wins, and files
// counts the files it read (the one given and those it includes). Importer
// files append to this slice from init().
var importers []func(path string, data []byte) (handled bool, jobs []*job.Job, diags job.Diags, files int)

func init() {
	register(command{
		name:    "check",
		summary: "validate job files (FILE|DIR...) and report every problem",
		run:     runCheck,
	})
}

func runCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	noPerms := fs.Bool("no-permissions", false, "skip the ownership and permission checks (like launchctl load -F)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sockd check [--no-permissions] FILE|DIR...\n\n"+
			"Loads every job file as sockd serve would (a directory: every *.plist in it;\n"+
			"an xinetd.d directory: every file xinetd would read; inetd.conf and xinetd.conf\n"+
			"files are recognised by their content),\n"+
			"prints every problem as FILE[:LINE]: KEY: error|warning: MESSAGE and a summary.\n"+
			"Exit status 1 when any error was found, else 0.\n\n")
		fs.PrintDefaults()
	}
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError(err)
	}
	if len(paths) == 0 {
		fs.Usage()
		return usageError(fmt.Errorf("no FILE or DIR given"))
	}
	opts := job.LoadOptions{UID: os.Geteuid(), SkipPermissions: *noPerms}
	nfiles, jobs, diags := checkPaths(paths, opts)
	return reportCheck(os.Stdout, nfiles, jobs, diags)
}

// checkPaths loads like job.LoadPaths, but offers every file to the
// importers first. It returns the number of files read. Like LoadPaths it
// keeps only the jobs this host loads (job.SelectForHost, an info line for
// each other one) before CrossCheck, so check and serve decide alike.
func checkPaths(paths []string, opts job.LoadOptions) (int, []*job.Job, job.Diags) {
	var jobs []*job.Job
	var diags job.Diags
	var plain []string
	nfiles := 0
	for _, p := range paths {
		if isXinetdDir(p) {
			js, ds := compat.LoadXinetdWith(p, compat.XinetdOptions{OnRead: func(string) { nfiles++ }})
			jobs, diags = append(jobs, js...), append(diags, ds...)
			continue
		}
		plain = append(plain, p)
	}
	files, ds := job.ExpandPaths(plain)
	diags = append(diags, ds...)
	for _, f := range files {
		js, ds, n := loadOne(f, opts)
		diags = append(diags, ds...)
		jobs = append(jobs, js...)
		nfiles += n
	}
	jobs, ds = job.SelectForHost(jobs, opts)
	diags = append(diags, ds...)
	kept, ds := job.CrossCheck(jobs)
	return nfiles, kept, append(diags, ds...)
}

// loadOne loads one file through the importers or the plist loader; n
// counts the files read (an xinetd.conf reads those it includes).
func loadOne(path string, opts job.LoadOptions) (jobs []*job.Job, diags job.Diags, n int) {
	data, diags := job.ReadFile(path, opts)
	if diags.HasErrors() {
		return nil, diags, 1
	}
	for _, imp := range importers {
		if handled, js, ds, files := imp(path, data); handled {
			return js, append(diags, ds...), max(files, 1)
		}
	}
	j, ds := job.Decode(data, path)
	diags = append(diags, ds...)
	if j == nil {
		return nil, diags, 1
	}
	return []*job.Job{j}, diags, 1
}

// reportCheck prints every diagnostic and the summary line. A job this
// host does not load (an info line) is valid but not served here; the
// summary counts it among the valid jobs and says how many there are.
func reportCheck(w io.Writer, nfiles int, jobs []*job.Job, diags job.Diags) error {
	nerr, nwarn, nelsewhere := 0, 0, 0
	for _, d := range diags {
		fmt.Fprintln(w, d.String())
		switch d.Severity {
		case job.Error:
			nerr++
		case job.Info:
			nelsewhere++
		default:
			nwarn++
		}
	}
	elsewhere := ""
	if nelsewhere > 0 {
		elsewhere = fmt.Sprintf(" (%d not loaded on this host)", nelsewhere)
	}
	fmt.Fprintf(w, "%s checked, %s valid%s: %s, %s\n",
		plural(nfiles, "file"), plural(len(jobs)+nelsewhere, "job"), elsewhere, plural(nerr, "error"), plural(nwarn, "warning"))
	if nerr > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
