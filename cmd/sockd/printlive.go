package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sockd/sockd/control"
)

// isPath reports whether arg names a file (print FILE) rather than a label.
func isPath(arg string) bool {
	if _, err := os.Stat(arg); err == nil {
		return true
	}
	// A path that is not there is still a path (print says so), unless it
	// is a label with a launchctl domain (system/LABEL).
	return strings.ContainsRune(arg, os.PathSeparator) && !hasDomain(arg)
}

// printLive shows LABEL as the running sockd at ctlPath has it. done is
// false when the file view should be shown instead: no sockd answers, or
// it has no such job and fileView (--jobs was given) asks to look in the
// files (a note on stderr says so).
func printLive(w io.Writer, ctlPath, label string, asJSON, fileView bool) (done bool, err error) {
	resp, err := control.Do(ctlPath, control.Request{Cmd: control.CmdPrint, Labels: []string{label}}, 0)
	var ue *control.UnreachableError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "sockd print: no sockd answers at %s: showing the job file, not the live job\n", ctlPath)
		return false, nil
	case err != nil:
		return true, err
	case resp.Status == control.NoSuchJob && fileView:
		fmt.Fprintf(os.Stderr, "sockd print: the running sockd has no job %s loaded: showing the job file\n", label)
		return false, nil
	case resp.Status != control.OK:
		if asJSON { // the answer, as every control command's --json
			writeJSON(w, resp)
		}
		if resp.Status == control.NoSuchJob {
			return true, &exitError{code: control.ExitNoSuchJob, err: errors.New(resp.Error + "; give --jobs DIR to look for it in job files")}
		}
		return true, &exitError{code: resp.Status.Exit(), err: errors.New(resp.Error)}
	}
	if asJSON {
		return true, writeJSON(w, resp)
	}
	liveText(w, resp.Jobs[0], ctlPath)
	return true, nil
}

// writeJSON writes a control answer as --json does.
func writeJSON(w io.Writer, resp control.Response) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(resp)
}

// liveText prints one live job.
func liveText(w io.Writer, j control.Job, ctlPath string) {
	fmt.Fprintf(w, "%s (live, from the sockd at %s)\n", j.Label, ctlPath)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "  %s:\t%s\n", k, fmt.Sprintf(format, args...)) }
	state := j.State
	if t, err := time.Parse(time.RFC3339Nano, j.Since); err == nil {
		state += fmt.Sprintf(" since %s (%s ago)", t.Local().Format("2006-01-02 15:04:05"), time.Since(t).Round(time.Second))
	}
	if j.Pid > 0 {
		state += fmt.Sprintf(", pid %d", j.Pid)
	}
	row("State", "%s", state)
	switch j.DisabledBy {
	case "override":
		row("Disabled", "by sockd disable (the overrides file); sockd enable %s turns it on", j.Label)
	case "file":
		row("Disabled", "by the job file's Disabled key; sockd enable does not change it: edit the file and sockd reload")
	}
	if j.Stale {
		row("Definition", "stale: the job file is invalid, the job runs its last good definition (%s)", j.StaleReason)
	}
	row("File", "%s", orDash(j.File))
	row("Mode", "%s", j.Mode)
	runs := fmt.Sprintf("%d", j.Runs)
	if j.LastStartReason != "" {
		runs += fmt.Sprintf("; last started %s: %s", ago(j.LastStartTime), j.LastStartReason)
	}
	row("Runs", "%s", runs)
	if j.LastExit != "" {
		row("Last exit", "%s, %s", j.LastExit, ago(j.LastExitTime))
	}
	if j.NextStart != "" {
		row("Throttle", "next start allowed %s", ago(j.NextStart))
	}
	for _, s := range j.Sockets {
		switch j.Mode {
		case "handoff", "inetd-nowait", "inetd-wait":
			row("Socket", "%s %s %s (the job's fd %d)", s.Name, s.Network, s.Address, s.Fd)
		default: // sockd serves it itself
			row("Socket", "%s %s %s", s.Name, s.Network, s.Address)
		}
		if len(s.Options) > 0 {
			row("  options", "%s", liveOptions(s.Options))
		}
	}
	row("Counters", "accepted %d, refused %d, spawn failures %d", j.Accepted, j.Refused, j.SpawnFailures)
	for _, c := range j.Children {
		row("Child", "pid %d %s", c.Pid, c.Source)
	}
	if l := j.Limits; l != nil {
		row("Limits", "MaxChildren %s (running %d), MaxPerSource %s (sources %d), Rate %s",
			unlimited(l.MaxChildren), l.Running, unlimited(l.MaxPerSource), l.Sources, rateText(l.Rate))
	}
	if p := j.Proxy; p != nil {
		row("Proxy", "backend %s (pid %s), %d connections open, %d in all", p.Backend, pidText(p.BackendPid), p.Active, p.Total)
	}
	triggerRows(row, j.Triggers)
	tw.Flush()
}

// triggerRows prints what starts the job besides its sockets.
func triggerRows(row func(k, format string, args ...any), t *control.Triggers) {
	if t == nil {
		return
	}
	if t.NextStart != "" {
		row("Next start", "%s %s", t.NextStartBy, ago(t.NextStart))
	}
	if t.StartInterval > 0 {
		row("StartInterval", "every %ds", t.StartInterval)
	}
	for _, c := range t.Calendar {
		row("Calendar", "%s", c)
	}
	for _, p := range t.WatchPaths {
		row("Watching", "%s", p)
	}
	for _, p := range t.QueueDirectories {
		row("Queue", "%s (starts while not empty)", p)
	}
	for _, p := range t.PathState {
		row("PathState", "%s (watched)", p)
	}
	if t.StartOnMount {
		row("StartOnMount", "starts when a file system is mounted")
	}
	if t.LaunchOnlyOnce {
		once := "not started this boot yet"
		if t.StartedOnce != "" {
			once = "started this boot " + ago(t.StartedOnce) + ": it does not start again"
		}
		row("LaunchOnlyOnce", "%s", once)
	}
}

// liveOptions is a socket's SockdOptions as the kernel reports them:
// "Name=value", with "(set X)" where the job file asked for another value.
func liveOptions(opts []control.SocketOption) string {
	parts := make([]string, len(opts))
	for i, o := range opts {
		parts[i] = o.Name + "=" + o.Value
		if o.Set != "" {
			parts[i] += " (set " + o.Set + ")"
		}
	}
	return strings.Join(parts, ", ")
}

func pidText(pid int) string {
	if pid == 0 {
		return "-"
	}
	return fmt.Sprint(pid)
}
