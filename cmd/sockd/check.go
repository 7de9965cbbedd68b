package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"

	"github.com/sockd/sockd/domain"
	"github.com/sockd/sockd/internal/privilege"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/jobset"
)

func init() {
	register(withFlags(command{
		name:     "check",
		summary:  "validate job files (FILE|DIR...) and report every problem",
		synopsis: "[--no-permissions] [--uid UID] [--domain user/UID] [--domain-ports user/UID=PORTS]... [--list] [--inetd-conf FILE]... [--xinetd FILE|DIR]... [--systemd DIR|UNIT]... FILE|DIR...",
		about: "Loads every job as sockd serve would load it on this machine, through the same loader " +
			"(a directory: every *.plist in it; an xinetd.d directory: every file xinetd would " +
			"read; inetd.conf and xinetd.conf files are recognised by their content; a UNIT.socket is read with its " +
			"service and drop-ins), for a sockd " +
			"running as you (or --uid). Prints every problem as FILE[:LINE]: KEY: error|warning: MESSAGE, " +
			"an info line per job this host does not load, " +
			"and a summary naming that sockd; an error is a job serve would not load. " +
			"With --domain user/UID it judges that user domain as root's sockd serves it: the user's " +
			"~/.config/sockd/jobs (or the FILEs given, as bootstrap user/UID FILE loads them), read " +
			"and judged with the user's rights (root, or the user themselves).\n\n" +
			"Exit status 1 when any error was found, else 0.",
	}, (*checkFlags).define, runCheck))
}

// checkFlags are check's command line.
type checkFlags struct {
	src         sourceFlags
	view        viewFlags
	list        bool
	domain      string
	domainPorts domainPortsFlag
}

func (c *checkFlags) define(fs *flag.FlagSet, _ defaults) {
	c.src.add(fs)
	c.view.add(fs)
	fs.BoolVar(&c.list, "list", false, "also print one line per job that serve would load")
	fs.StringVar(&c.domain, "domain", "", "judge the user domain `user/UID` as root's sockd serves it (its jobs directory, or the FILEs given)")
	fs.Var(&c.domainPorts, "domain-ports", "with --domain: the ports granted to domains, as serve --domain-ports takes them (`user/UID=PORTS`, repeatable)")
}

// sourceFlags are the flags that name what a sockd loads besides the
// positional FILE|DIR arguments, as serve takes them.
type sourceFlags struct {
	inetd, xinetd, systemd stringsFlag
}

func (s *sourceFlags) add(fs *flag.FlagSet) {
	fs.Var(&s.inetd, "inetd-conf", "an inetd.conf `FILE`, as serve --inetd-conf takes it (repeatable)")
	fs.Var(&s.xinetd, "xinetd", "an xinetd.conf file or xinetd.d directory (`FILE|DIR`), as serve --xinetd takes it (repeatable)")
	fs.Var(&s.systemd, "systemd", "a systemd socket unit or directory of units (`DIR|UNIT`), as serve --systemd takes it (repeatable)")
}

func (s *sourceFlags) sources(paths []string) jobset.Sources {
	return jobset.Sources{Paths: paths, Inetd: s.inetd, Xinetd: s.xinetd, Systemd: s.systemd}
}

// viewFlags choose the sockd that jobs are judged for.
type viewFlags struct {
	uid     *string
	noPerms *bool
}

func (v *viewFlags) add(fs *flag.FlagSet) {
	v.uid = fs.String("uid", "", "judge for a sockd running as this `UID` or user name (default: yours, with your capabilities and limits)")
	v.noPerms = fs.Bool("no-permissions", false, "skip the ownership and permission checks (like launchctl load -F)")
}

// options are the loader's options for the flags.
func (v *viewFlags) options() (jobset.Options, error) {
	opts := jobset.ForThisProcess()
	opts.SkipPermissions = *v.noPerms
	if *v.uid == "" {
		return opts, nil
	}
	uid, err := strconv.Atoi(*v.uid)
	if err != nil {
		u, lerr := lookupUID(*v.uid)
		if lerr != nil {
			return opts, fmt.Errorf("--uid %q: %v", *v.uid, lerr)
		}
		uid = u
	}
	if uid < 0 {
		return opts, fmt.Errorf("--uid %d: want a uid of 0 or more", uid)
	}
	opts.View = privilege.For(uid)
	return opts, nil
}

func runCheck(c *checkFlags, paths []string) error {
	shortLived()
	if c.domain != "" {
		return checkDomain(c, paths)
	}
	sources := c.src.sources(paths)
	if len(paths)+len(sources.Inetd)+len(sources.Xinetd)+len(sources.Systemd) == 0 {
		return badArgs("no FILE or DIR given")
	}
	opts, err := c.view.options()
	if err != nil {
		return usageError(err)
	}
	set := jobset.Load(sources, opts)
	if c.list {
		listJobs(os.Stdout, set)
	}
	return reportCheck(os.Stdout, set, opts.View)
}

// checkDomain is check --domain user/UID.
func checkDomain(c *checkFlags, paths []string) error {
	uid, ok := domain.Parse(c.domain)
	if !ok || uid < 0 {
		return usageError(fmt.Errorf("--domain %q: want user/UID", c.domain))
	}
	if *c.view.uid != "" || len(c.src.inetd)+len(c.src.xinetd)+len(c.src.systemd) > 0 {
		return usageError(errors.New("--domain judges a user domain's job files: it takes no --uid, --inetd-conf, --xinetd or --systemd"))
	}
	d, err := domain.Lookup(uid)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	d.Ports = c.domainPorts[uid]
	set := domain.Load(d, len(paths) == 0, paths, jobset.ForThisProcess())
	if c.list {
		listJobs(os.Stdout, set)
	}
	return reportCheck(os.Stdout, set, privilege.For(uid))
}

// listJobs prints one line per job serve loads.
func listJobs(w io.Writer, set *jobset.Set) {
	for _, j := range set.Jobs {
		what := j.Mode().String()
		if j.Disabled {
			what += ", disabled: not served"
		}
		fmt.Fprintf(w, "%s: %s: loaded (%s)\n", j.File, j.Label, what)
	}
}

// reportCheck prints every diagnostic and the summary line. A job this
// host does not load (an info line) is valid but not served here; the
// summary counts it among the valid jobs and says how many there are.
func reportCheck(w io.Writer, set *jobset.Set, view privilege.View) error {
	nerr, nwarn, nelsewhere := 0, 0, 0
	for _, d := range set.Diags {
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
	fmt.Fprintf(w, "%s checked, %s valid%s: %s, %s; judged for sockd as %s\n",
		plural(set.Files, "file"), plural(len(set.Jobs)+nelsewhere, "job"), elsewhere, plural(nerr, "error"), plural(nwarn, "warning"), view)
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

// lookupUID is the uid of a user name.
func lookupUID(name string) (int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(u.Uid)
}
