package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/domain"
)

// The control commands talk to a running `sockd serve` over its control
// socket (package control). Each takes --control PATH and --json; each
// exits with the status the daemon's answer maps to (control.Status.Exit),
// or control.ExitUnreachable when no daemon answers.

// ctlCommand describes one control command.
type ctlCommand struct {
	name, summary, args string
	// about is the help beyond the summary.
	about string
	// min, max bound the positional arguments (max -1: no bound).
	min, max int
	// build turns the positional arguments into the request.
	build func(args []string, fs *ctlFlags) (control.Request, error)
	// show prints an OK answer.
	show func(w io.Writer, resp control.Response)
}

// ctlFlags are the flags every control command takes, and kickstart's -k.
type ctlFlags struct {
	control string
	json    bool
	kill    bool
}

func init() {
	labels := func(cmd string) func([]string, *ctlFlags) (control.Request, error) {
		return func(args []string, _ *ctlFlags) (control.Request, error) {
			return control.Request{Cmd: cmd, Labels: args}, nil
		}
	}
	for _, c := range []ctlCommand{
		{name: control.CmdList, about: "One row per job: label, state, pid (or -), last exit, mode and socket addresses. Disabled jobs are listed as disabled, a job running a stale definition (its file became invalid) is marked so, and a job unloaded whose processes have not exited yet is listed as unloaded until they do.",
			summary: "list the jobs of the running sockd: state, pid, last exit, mode, sockets",
			max:     0, build: labels(control.CmdList), show: showList},
		{name: control.CmdBlame, about: "What started the job last: a connection from an address, run at load, keep alive after an exit, a trigger, or a kickstart by a uid and pid.",
			summary: "say why a job last started", args: "LABEL", min: 1, max: 1,
			build: labels(control.CmdBlame), show: showBlame},
		{name: control.CmdStart, about: "Starts the job's main process now, without waiting for demand. It still goes through ThrottleInterval: a start the throttle holds back happens once it allows. A job that starts one child per connection (or none) has nothing to start, and start says so. A proxy job's backend is started now, as its first client would start it, and start answers once it is ready.",
			summary: "start a job now, without waiting for demand", args: "LABEL", min: 1, max: 1,
			build: labels(control.CmdStart), show: showDone},
		{name: control.CmdStop, about: "Sends SIGTERM to the job's main process, or to every per-connection child, and SIGKILL after ExitTimeOut. A KeepAlive job comes back through the throttle, as with launchctl stop.",
			summary: "stop a job's process (SIGTERM, SIGKILL after ExitTimeOut)", args: "LABEL", min: 1, max: 1,
			build: labels(control.CmdStop), show: showDone},
		{name: control.CmdKickstart, about: "Starts the job now, ignoring the throttle. With -k a running instance is stopped first, and the answer, once it has exited, carries the new pid.",
			summary: "start a job now; -k kills a running instance first", args: "[-k] LABEL", min: 1, max: 1,
			build: func(args []string, f *ctlFlags) (control.Request, error) {
				return control.Request{Cmd: control.CmdKickstart, Labels: args, Kill: f.kill}, nil
			}, show: showDone},
		{name: control.CmdKill, about: "Sends SIGNAL to the job's processes. SIGNAL is a name or a number: TERM, SIGHUP, 9, -9 or -TERM.",
			summary: "send a signal to a job's processes", args: "SIGNAL LABEL", min: 2, max: 2,
			build: buildKill, show: showDone},
		{name: control.CmdEnable, about: "Removes the jobs' overrides and reloads: they serve again.",
			summary: "enable a disabled job (persistent)", args: "LABEL...", min: 1, max: -1,
			build: labels(control.CmdEnable), show: showDone},
		{name: control.CmdDisable, about: "Writes the labels into the overrides file, then reloads: each job stops, its sockets close, and it stays off across reloads and restarts until enable. The job file is never edited.",
			summary: "disable a job: stop it, close its sockets, keep it off across reloads and restarts", args: "LABEL...", min: 1, max: -1,
			build: labels(control.CmdDisable), show: showDone},
		{name: control.CmdBootstrap, about: "Validates the files exactly as sockd check would and loads them now, touching no other job. A file with an error, a label already loaded, or an address another job claims refuses the whole request: the diagnostics come back and nothing changes. Bootstrapped files are read again by later reloads, but not after a restart of sockd: put the file in a jobs directory to keep it. In root's sockd, user/UID first (root only) serves that user's domain from now on, across restarts: the jobs of ~/.config/sockd/jobs, run and bound with the user's rights; with files after it, they go into that domain (and are remembered) and must be the user's own. A user may bootstrap files of their own into their own domain once root serves it.",
			summary: "validate and load job files now, touching no other job; user/UID: serve a user's domain", args: "[user/UID] FILE... | user/UID", min: 1, max: -1,
			build: buildBootstrap, show: showDone},
		{name: control.CmdBootout, about: "Stops and unloads the jobs now; the others stay as they are. A job whose file is in a jobs directory comes back with the next reload or restart, unless it is disabled. bootout user/UID (root) stops every job of that user's domain, closes its sockets and stops serving the domain, across restarts too.",
			summary: "stop and unload jobs now; user/UID: stop serving a user's domain", args: "LABEL... | user/UID", min: 1, max: -1,
			build: buildBootout, show: showDone},
		{name: control.CmdReload, about: "Does what SIGHUP does, but the caller gets the per-file diagnostics, and exit status 1 if any job failed to load. A job whose file became invalid keeps serving under its last good definition.",
			summary: "reload every job source (as SIGHUP) and report the problems found", max: 0,
			build: labels(control.CmdReload), show: showDone},
	} {
		c := c
		ctlNames[c.name] = true
		prepare := func(args []string) []string { return signalFirst(c.name, args) }
		cmd := withFlags(command{name: c.name, summary: c.summary, about: c.about, prepare: prepare,
			synopsis: strings.TrimSpace("[--control PATH] [--json] " + c.args)},
			func(f *ctlFlags, fs *flag.FlagSet, d defaults) { f.define(fs, d, c.name) },
			func(f *ctlFlags, pos []string) error { return runCtl(c, f, pos) })
		inner := cmd.run
		cmd.run = func(args []string) error { return jsonUsage(os.Stdout, args, inner(args)) }
		register(cmd)
	}
}

// jsonUsage answers a usage error of a control command run with --json
// as JSON too, {"status": "usage", "error": ...}, so that a script that
// reads stdout gets an answer; the message stays on stderr as well.
func jsonUsage(w io.Writer, args []string, err error) error {
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !wantsJSON(args) {
		return err
	}
	msg := ee.err
	if msg == nil {
		msg = ee.said
	}
	if msg == nil {
		return err
	}
	resp := control.Response{Status: control.BadRequest, Error: msg.Error()}
	out, _ := json.MarshalIndent(resp, "", "  ")
	fmt.Fprintf(w, "%s\n", out)
	return err
}

// wantsJSON reports whether args ask for --json (before any "--").
func wantsJSON(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "-json", "--json=true", "-json=true":
			return true
		}
	}
	return false
}

// ctlNames are the control commands.
var ctlNames = map[string]bool{}

func isCtl(name string) bool { return ctlNames[name] }

// define defines the flags of control command name on fs.
func (f *ctlFlags) define(fs *flag.FlagSet, d defaults, name string) {
	fs.StringVar(&f.control, "control", d.asks, "the control socket `PATH` of the sockd to ask")
	fs.BoolVar(&f.json, "json", false, "print the daemon's answer as JSON (stable field names)")
	if name == control.CmdKickstart {
		fs.BoolVar(&f.kill, "k", false, "kill a running instance first and wait for it to exit")
	}
}

func buildKill(args []string, _ *ctlFlags) (control.Request, error) {
	sig, err := parseSignal(args[0])
	if err != nil {
		return control.Request{}, err
	}
	return control.Request{Cmd: control.CmdKill, Signal: sig, Labels: args[1:]}, nil
}

// parseSignal accepts TERM, SIGTERM, sigterm or 15.
func parseSignal(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return n, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return int(sig), nil
	}
	return 0, fmt.Errorf("unknown signal %q (a name such as TERM or HUP, or a number)", s)
}

func buildBootstrap(args []string, _ *ctlFlags) (control.Request, error) {
	req := control.Request{Cmd: control.CmdBootstrap}
	if _, ok := domain.Parse(args[0]); ok {
		req.Domain, args = args[0], args[1:]
	}
	files := make([]string, len(args))
	for i, a := range args {
		abs, err := filepath.Abs(a)
		if err != nil {
			return control.Request{}, err
		}
		files[i] = abs
	}
	if len(files) == 0 && req.Domain == domain.System {
		return req, errors.New("bootstrap system needs the job files to load")
	}
	req.Files = files
	return req, nil
}

// buildBootout takes labels, or one user domain.
func buildBootout(args []string, _ *ctlFlags) (control.Request, error) {
	if uid, ok := domain.Parse(args[0]); ok && uid >= 0 {
		if len(args) > 1 {
			return control.Request{}, errors.New("bootout user/UID takes nothing after the domain")
		}
		return control.Request{Cmd: control.CmdBootout, Domain: args[0]}, nil
	}
	return control.Request{Cmd: control.CmdBootout, Labels: args}, nil
}

// runCtl sends the request of control command c and prints the answer.
func runCtl(c ctlCommand, f *ctlFlags, pos []string) error {
	for i := range pos {
		if c.name != control.CmdBootstrap {
			pos[i] = domainPrefix(pos[i])
		}
	}
	if len(pos) < c.min || (c.max >= 0 && len(pos) > c.max) {
		return badArgs("wrong number of arguments")
	}
	req, err := c.build(pos, f)
	if err != nil {
		return usageError(err)
	}
	var resp control.Response
	var raw []byte
	if f.json {
		// The daemon's answer is printed as it came, indented, and
		// decoded no further than its status: a list of 10,000 jobs
		// would cost this command more than the daemon took to answer.
		raw, resp, err = control.DoRaw(f.control, req, 0)
	} else {
		resp, err = control.Do(f.control, req, 0)
	}
	var ue *control.UnreachableError
	if errors.As(err, &ue) {
		resp, raw, err = control.Response{Status: control.Unreachable, Error: err.Error()}, nil, nil
	}
	if err != nil {
		return err
	}
	if raw != nil {
		return printRaw(os.Stdout, raw, resp)
	}
	return printAnswer(os.Stdout, c, f.json, resp)
}

// printRaw prints an answer as the daemon wrote it, indented as
// printAnswer's --json output is, and returns the exit status resp (its
// status and error) means.
func printRaw(w io.Writer, raw []byte, resp control.Response) error {
	out, err := appendIndent(make([]byte, 0, len(raw)+len(raw)/2), raw)
	if err != nil {
		return fmt.Errorf("control socket: read the answer: %w", err)
	}
	if _, err := w.Write(out); err != nil {
		return err
	}
	return exitFor(true, resp)
}

// domainPrefix turns launchctl's gui/UID/LABEL into user/UID/LABEL (sockd
// has no graphical sessions); the daemon resolves system/, user/UID/ and
// bare labels.
func domainPrefix(label string) string {
	if rest, ok := strings.CutPrefix(label, "gui/"); ok {
		if _, _, ok := domain.Split("user/" + rest); ok {
			return "user/" + rest
		}
	}
	return label
}

// hasDomain reports whether label names its domain (system/LABEL,
// user/UID/LABEL, gui/UID/LABEL).
func hasDomain(label string) bool {
	_, _, ok := domain.Split(domainPrefix(label))
	return ok
}

// signalFirst lets kill take its signal as launchctl and kill(1) users
// write it, "-9" or "-TERM", which the flag parser would take for a flag.
func signalFirst(name string, args []string) []string {
	if name != control.CmdKill {
		return args
	}
	for i, a := range args {
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			if _, err := parseSignal(a[1:]); err == nil && !strings.HasPrefix(a, "--") {
				out := append([]string{}, args...)
				out[i] = a[1:]
				return out
			}
		}
	}
	return args
}

// printAnswer prints resp and returns the exit status it means.
func printAnswer(w io.Writer, c ctlCommand, asJSON bool, resp control.Response) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(resp); err != nil {
			return err
		}
	} else {
		for _, d := range resp.Diags {
			fmt.Fprintln(w, d)
		}
		if resp.Status == control.OK {
			c.show(w, resp)
		}
	}
	return exitFor(asJSON, resp)
}

// exitFor is the exit status an answer means, with its error (which --json
// output already holds, when it has none).
func exitFor(asJSON bool, resp control.Response) error {
	if resp.Status == control.OK {
		return nil
	}
	var err error
	if !asJSON || resp.Error != "" {
		err = errors.New(resp.Error)
	}
	return &exitError{code: resp.Status.Exit(), err: err}
}

func showDone(w io.Writer, resp control.Response) {
	for _, d := range resp.Done {
		fmt.Fprintln(w, d)
	}
}

// showList prints one row per job.
func showList(w io.Writer, resp control.Response) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "LABEL\tSTATE\tPID\tLAST EXIT\tMODE\tSOCKETS")
	for _, j := range resp.Jobs {
		pid := "-"
		if j.Pid > 0 {
			pid = strconv.Itoa(j.Pid)
		}
		state := j.State
		if j.Stale {
			state += " (stale definition)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.Label, state, pid, orDash(j.LastExit), j.Mode, socketsText(j.Sockets))
	}
	tw.Flush()
}

func socketsText(socks []control.Socket) string {
	if len(socks) == 0 {
		return "-"
	}
	var parts []string
	for i, s := range socks {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(socks)-3))
			break
		}
		parts = append(parts, s.Address)
	}
	return strings.Join(parts, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func showBlame(w io.Writer, resp control.Response) {
	for _, j := range resp.Jobs {
		if j.LastStartReason == "" {
			fmt.Fprintf(w, "%s has not started since sockd loaded it\n", j.Label)
			continue
		}
		fmt.Fprintf(w, "%s: %s (%s)\n", j.Label, j.LastStartReason, ago(j.LastStartTime))
	}
}

// ago renders an RFC 3339 time as "at T, D ago".
func ago(ts string) string {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return ts
	}
	at := t.Local().Format("2006-01-02 15:04:05")
	if d := time.Until(t); d > 0 {
		return fmt.Sprintf("at %s, in %s", at, d.Round(time.Second))
	}
	return fmt.Sprintf("at %s, %s ago", at, time.Since(t).Round(time.Second))
}
