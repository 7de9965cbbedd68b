package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/domain"
	"github.com/sockd/sockd/internal/handover"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/jobset"
)

// upgradeFlags are upgrade's command line.
type upgradeFlags struct {
	binary  string
	check   bool
	control string
	json    bool
	timeout time.Duration
}

func init() {
	register(withFlags(command{
		name:     "upgrade",
		summary:  "re-execute the running sockd in place as a new binary, keeping every socket and child",
		synopsis: "[--control PATH] [--json] [--binary PATH] [--timeout DUR] [--check]",
		about: "Asks the running sockd to re-execute itself in place: the same pid, the new binary (--binary PATH, else the path the running image was started from, " +
			"where a package upgrade puts the new one), with every listening socket (never closed: clients that connect meanwhile wait in the kernel's queue), " +
			"the control socket, every running child (still its child: watched, reaped and logged by the new image), every proxied connection in flight (its sockets and the bytes in its pipes), throttle times and counters handed across execve. " +
			"SIGUSR2 to sockd does the same with that path.\n\n" +
			"Before it execs, sockd runs the new binary as `sockd upgrade --check` on the same state and command line; " +
			"if that fails (the binary is broken, or a job that runs now does not load with it), or the file is not executable, nothing changes, " +
			"the old binary serves on, and this command prints why and exits 1. On success it prints the new image's version. " +
			"What is not handed over, and what an admin sees when something fails: docs/upgrade.md.",
	}, (*upgradeFlags).define, runUpgrade))
}

func (f *upgradeFlags) define(fs *flag.FlagSet, d defaults) {
	fs.StringVar(&f.binary, "binary", "", "the new sockd `PATH` (default: the path the running image was started from: after an upgrade with --binary, that one)")
	fs.BoolVar(&f.check, "check", false, "what sockd runs as the new binary before it execs it: check the state on $"+handover.EnvFD+" against the serve command line after --")
	fs.StringVar(&f.control, "control", d.asks, "the control socket `PATH` of the sockd to upgrade")
	fs.BoolVar(&f.json, "json", false, "print the new image's version answer as JSON")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long (`DUR`) to wait for the upgrade and the new image's answer")
}

func runUpgrade(f *upgradeFlags, pos []string) error {
	if f.check {
		return upgradeCheck(pos)
	}
	if len(pos) > 0 {
		return badArgs("upgrade takes no arguments (the binary is --binary PATH)")
	}
	req := control.Request{Cmd: control.CmdUpgrade}
	if f.binary != "" {
		abs, err := filepath.Abs(f.binary)
		if err != nil {
			return usageError(err)
		}
		req.Binary = abs
	}
	before, _ := control.Do(f.control, control.Request{Cmd: control.CmdVersion}, 10*time.Second)
	resp, err := askDaemon(f.control, req, f.timeout)
	if errors.Is(err, control.ErrNoAnswer) {
		// The exec closed the connection: the new image answers next.
		return upgradedVersion(os.Stdout, f, before)
	}
	if err != nil {
		return err
	}
	return printStatus(os.Stdout, f.json, resp)
}

// askDaemon is control.Do with a daemon that cannot be reached answered
// as the control commands answer it (status unreachable, exit 5).
func askDaemon(path string, req control.Request, timeout time.Duration) (control.Response, error) {
	resp, err := control.Do(path, req, timeout)
	var ue *control.UnreachableError
	if errors.As(err, &ue) {
		return control.Response{Status: control.Unreachable, Error: err.Error()}, nil
	}
	return resp, err
}

// upgradedVersion asks the new image for its version and prints it.
func upgradedVersion(w io.Writer, f *upgradeFlags, before control.Response) error {
	resp, err := control.Do(f.control, control.Request{Cmd: control.CmdVersion}, f.timeout)
	if err != nil {
		return fmt.Errorf("upgrade: the new image does not answer: %w (see sockd's log)", err)
	}
	if f.json || resp.Status != control.OK || resp.Daemon == nil {
		return printStatus(w, f.json, resp)
	}
	from := "?"
	if before.Daemon != nil {
		from = before.Daemon.Version
	}
	fmt.Fprintf(w, "upgraded in place: %s -> %s (pid %d)\n", from, resp.Daemon.Version, resp.Daemon.Pid)
	return nil
}

// printStatus prints an answer that has nothing to show but its status
// (the whole answer with --json) and returns the exit status it means.
func printStatus(w io.Writer, asJSON bool, resp control.Response) error {
	if asJSON {
		out, _ := json.MarshalIndent(resp, "", "  ")
		fmt.Fprintf(w, "%s\n", out)
	}
	return exitFor(asJSON, resp)
}

// upgradeCheck is the new binary's check before an upgrade: it reads the
// state ($SOCKD_HANDOVER_FD) and loads the jobs with serve's command line
// (pos: "serve" and its arguments) through the one loader, as the new
// image's first load will (checkLoad); every job the state names must
// load, or the upgrade would stop serving it.
func upgradeCheck(pos []string) error {
	shortLived()
	if len(pos) == 0 || pos[0] != "serve" {
		return badArgs("upgrade --check: the serve command line follows --")
	}
	sf, err := parseServe(pos[1:])
	if err != nil {
		return fmt.Errorf("upgrade --check: this sockd does not take the running one's command line: %w", err)
	}
	first := preload(sf.sources) // read beside the state
	st, err := handover.FromEnv()
	if err != nil {
		return fmt.Errorf("upgrade --check: %w", err)
	}
	jobs, diags := checkLoad(<-first, st.ExtraFiles)
	loaded := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		loaded[j.Label] = true
	}
	var missing []string
	for _, j := range st.Jobs {
		if uid, _, ok := domain.Split(j.Label); ok && uid >= 0 {
			continue // a user domain's job: loaded by its domain, not by these sources
		}
		if !loaded[j.Label] {
			missing = append(missing, j.Label)
		}
	}
	if len(missing) > 0 {
		for _, d := range diags {
			fmt.Fprintln(os.Stderr, d.String())
		}
		return fmt.Errorf("upgrade --check: %d running job(s) would not load with this sockd: %s", len(missing), strings.Join(missing, ", "))
	}
	fmt.Printf("upgrade check passed: state format %d from %s, %d jobs, %d sockets\n", st.Version, st.From, len(st.Jobs), len(st.Sockets))
	return nil
}

// checkLoad is the new image's first load as its supervisor makes it: the
// sources' set, then the bootstrapped files it does not hold, checked
// across with it.
func checkLoad(set *jobset.Set, extraFiles []string) ([]*job.Job, job.Diags) {
	jobs, diags := loaded(set, zap.NewNop())
	extra := jobset.FilesBeyond(jobs, extraFiles)
	if len(extra) == 0 {
		return jobs, diags
	}
	more, ds := serveLoader(jobset.Sources{Paths: extra}, zap.NewNop())()
	jobs, cds := job.CrossCheck(append(jobs, more...))
	return jobs, append(append(diags, ds...), cds...)
}
