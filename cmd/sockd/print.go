package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/jobset"
)

func init() {
	register(withFlags(command{
		name:     "print",
		summary:  "show a job (FILE|LABEL) as sockd understands it, defaults filled in",
		synopsis: "[--json] [--jobs DIR]... [--inetd-conf FILE]... [--xinetd FILE|DIR]... [--systemd DIR|UNIT]... [--uid UID] [--no-permissions] [--control PATH] FILE [LABEL] | LABEL",
		about: "Shows the job as sockd understands it: defaults filled in, mode, resolved " +
			"program and argv, every socket endpoint in hand-off order with its fd, whether it loads here, and every problem. " +
			"It loads as check and serve do. A FILE that holds several jobs (an inetd.conf, " +
			"an xinetd configuration) needs the LABEL of the one to show; LABEL alone is " +
			"looked for in the --jobs directories and the --inetd-conf and --xinetd files.\n\n" +
			"print LABEL asks the running sockd first and shows the live job: state and since when, pid, runs, " +
			"last start and why, last exit, each socket with the fd the job gets, counters, limits and triggers. " +
			"With no daemon answering, or no such job loaded, it shows the job file's view and says so on stderr.\n\n" +
			"Exit status 1 when sockd would not load the job.",
	}, (*printFlags).define, runPrint))
}

// printFlags are print's command line.
type printFlags struct {
	dirs    stringsFlag
	src     sourceFlags
	vf      viewFlags
	asJSON  bool
	ctlPath string
}

func (p *printFlags) define(fs *flag.FlagSet, d defaults) {
	fs.Var(&p.dirs, "jobs", "job directory or file `DIR` to find LABEL in (repeatable; default: "+d.jobDirs+")")
	p.src.add(fs)
	p.vf.add(fs)
	fs.BoolVar(&p.asJSON, "json", false, "print JSON instead of text")
	fs.StringVar(&p.ctlPath, "control", d.asks, "the control socket `PATH` of the running sockd, asked for LABEL's live state")
}

func runPrint(p *printFlags, pos []string) error {
	dirs, src, vf, asJSON, ctlPath := p.dirs, p.src, p.vf, &p.asJSON, &p.ctlPath
	if len(pos) != 1 && len(pos) != 2 {
		return badArgs("want FILE, FILE LABEL, or LABEL")
	}
	opts, err := vf.options()
	if err != nil {
		return usageError(err)
	}
	if len(pos) == 1 && !isPath(pos[0]) {
		done, err := printLive(os.Stdout, *ctlPath, domainPrefix(pos[0]), *asJSON, len(dirs) > 0)
		if done {
			return err
		}
	}
	set, j, err := findJob(pos, dirs, src, opts)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	diags := set.DiagsOf(j)
	state := set.State(j)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(jobView(j, diags, state)); err != nil {
			return err
		}
	} else {
		printText(os.Stdout, j, diags, state, opts)
		if n := len(fileDiags(set, j)) - len(diags); n > 0 {
			fmt.Fprintf(os.Stdout, "  (%s about other entries of %s: sockd check %s)\n", plural(n, "more problem"), fileOf(j), fileOf(j))
		}
	}
	if state == jobset.Refused {
		return &exitError{code: 1, err: fmt.Errorf("job %s has errors; sockd would not load it", j.Label)}
	}
	return nil
}

// findJob loads as serve would and picks the job to show. pos is FILE,
// FILE LABEL, or LABEL: a FILE's jobs are loaded alone (one of several
// needs its LABEL); a LABEL alone is the job of that label in the job
// directories and legacy sources that serve would load, else one this
// host does not load, else the first with that label.
func findJob(pos, dirs []string, src sourceFlags, opts jobset.Options) (*jobset.Set, *job.Job, error) {
	arg := pos[0]
	if fi, err := os.Stat(arg); err == nil && (!fi.IsDir() || len(pos) == 2) {
		set := jobset.Load(jobset.Sources{Paths: []string{arg}}, opts)
		label := ""
		if len(pos) == 2 {
			label = pos[1]
		}
		j, err := pickJob(arg, set, label)
		return set, j, err
	}
	if len(pos) == 2 {
		return nil, nil, fmt.Errorf("%s: no such job file", arg)
	}
	if len(dirs) == 0 {
		dirs = defaultJobDirs()
	}
	opts.MissingOK = true
	set := jobset.Load(src.sources(dirs), opts)
	var best *job.Job
	for _, j := range set.All {
		if j.Label == arg && (best == nil || set.State(j) < set.State(best)) {
			best = j
		}
	}
	if best == nil {
		where := append(append(append(append([]string(nil), dirs...), src.inetd...), src.xinetd...), src.systemd...)
		return nil, nil, fmt.Errorf("%q is neither a job file nor the Label of a job in %s", arg, strings.Join(where, ", "))
	}
	return set, best, nil
}

// pickJob is the job of file to show: its only job, or the one labelled
// label. A file without jobs, or with several and no label, is an error
// that says so.
func pickJob(file string, set *jobset.Set, label string) (*job.Job, error) {
	var labels []string
	for _, j := range set.All {
		if label != "" && j.Label == label {
			return j, nil
		}
		labels = append(labels, j.Label)
	}
	switch {
	case len(labels) == 0:
		for _, d := range set.Diags {
			fmt.Fprintln(os.Stderr, d.String())
		}
		return nil, fmt.Errorf("%s has errors; the job would not be loaded", file)
	case label != "":
		return nil, fmt.Errorf("%s has no job labelled %q; its jobs: %s", file, label, strings.Join(labels, ", "))
	case len(labels) > 1:
		return nil, fmt.Errorf("%s holds %d jobs (%s): name the one to show: sockd print %s LABEL", file, len(labels), strings.Join(labels, ", "), file)
	}
	return set.All[0], nil
}

// fileOf is the file a job was read from (without the line of an
// imported entry).
func fileOf(j *job.Job) string {
	if i := strings.LastIndexByte(j.File, ':'); i > 0 && j.Source != "" && !strings.HasPrefix(j.Source, "launchd") {
		return j.File[:i]
	}
	return j.File
}

// fileDiags are the diagnostics of j's file: its own and its other
// entries'.
func fileDiags(set *jobset.Set, j *job.Job) job.Diags {
	f := fileOf(j)
	var out job.Diags
	for _, d := range set.Diags {
		if d.File == f || strings.HasPrefix(d.File, f+":") {
			out = append(out, d)
		}
	}
	return out
}

// endpointView is one socket in hand-off order.
type endpointView struct {
	FD       int    `json:"fd,omitempty"`
	Group    string `json:"group"`
	Key      string `json:"key"`
	Network  string `json:"network"`
	Address  string `json:"address"`
	Passive  bool   `json:"passive"`
	Mode     string `json:"mode,omitempty"`
	Owner    *int   `json:"owner,omitempty"`
	GroupID  *int   `json:"gid,omitempty"`
	Mcast    string `json:"multicast_group,omitempty"`
	ID       string `json:"id"`
	Delivery string `json:"delivery"`

	// Options are the SockdOptions as the job file sets them (optText
	// for the text view); DualStack, an IPv6 wildcard that takes IPv4 too.
	Options   map[string]any `json:"options,omitempty"`
	DualStack bool           `json:"dual_stack,omitempty"`
	optText   string
}

type limitsView struct {
	MaxChildren  int      `json:"max_children"`
	MaxPerSource int      `json:"max_per_source"`
	Rate         float64  `json:"rate"`
	Burst        int      `json:"burst"`
	Pause        string   `json:"pause"`
	Allow        []string `json:"allow,omitempty"`
	Deny         []string `json:"deny,omitempty"`
}

type proxyView struct {
	Backend       string `json:"backend"`
	Notify        bool   `json:"notify"`
	ReadyTimeout  string `json:"ready_timeout"`
	IdleTimeout   string `json:"idle_timeout"`
	StopAfterIdle string `json:"stop_after_idle"`
	ProxyProtocol string `json:"proxy_protocol,omitempty"`
}

type rlimitView struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

type keepAliveView struct {
	Always             bool            `json:"always"`
	SuccessfulExit     *bool           `json:"successful_exit,omitempty"`
	Crashed            *bool           `json:"crashed,omitempty"`
	PathState          map[string]bool `json:"path_state,omitempty"`
	OtherJobEnabled    map[string]bool `json:"other_job_enabled,omitempty"`
	AfterInitialDemand bool            `json:"after_initial_demand,omitempty"`
	ImpliesRunAtLoad   bool            `json:"implies_run_at_load"`
}

type view struct {
	Label               string            `json:"label"`
	File                string            `json:"file"`
	Source              string            `json:"source"`
	Mode                string            `json:"mode"`
	Disabled            bool              `json:"disabled"`
	LoadedOnThisHost    bool              `json:"loaded_on_this_host"`
	Loaded              bool              `json:"loaded"`
	LimitLoadToHosts    []string          `json:"limit_load_to_hosts,omitempty"`
	LimitLoadFromHosts  []string          `json:"limit_load_from_hosts,omitempty"`
	Program             string            `json:"program,omitempty"`
	Path                string            `json:"path,omitempty"`
	Argv                []string          `json:"argv,omitempty"`
	EnableGlobbing      bool              `json:"enable_globbing"`
	UserName            string            `json:"user_name,omitempty"`
	GroupName           string            `json:"group_name,omitempty"`
	InitGroups          bool              `json:"init_groups"`
	WorkingDirectory    string            `json:"working_directory,omitempty"`
	RootDirectory       string            `json:"root_directory,omitempty"`
	Environment         map[string]string `json:"environment,omitempty"`
	Umask               string            `json:"umask,omitempty"`
	Nice                *int              `json:"nice,omitempty"`
	StandardInPath      string            `json:"stdin,omitempty"`
	StandardOutPath     string            `json:"stdout,omitempty"`
	StandardErrorPath   string            `json:"stderr,omitempty"`
	SoftResourceLimits  []rlimitView      `json:"soft_resource_limits,omitempty"`
	HardResourceLimits  []rlimitView      `json:"hard_resource_limits,omitempty"`
	SessionCreate       bool              `json:"session_create"`
	AbandonProcessGroup bool              `json:"abandon_process_group"`
	KeepAlive           keepAliveView     `json:"keep_alive"`
	RunAtLoad           bool              `json:"run_at_load"`
	ThrottleInterval    string            `json:"throttle_interval"`
	ExitTimeOut         string            `json:"exit_timeout"`
	TimeOut             string            `json:"timeout"`
	InetdWait           *bool             `json:"inetd_wait,omitempty"`
	Limits              limitsView        `json:"limits"`
	Internal            string            `json:"internal,omitempty"`
	Proxy               *proxyView        `json:"proxy,omitempty"`
	Endpoints           []endpointView    `json:"endpoints"`
	Triggers            *control.Triggers `json:"triggers,omitempty"`
	Diagnostics         []string          `json:"diagnostics"`
}

func jobView(j *job.Job, diags job.Diags, state jobset.State) view {
	v := view{
		Label: j.Label, File: j.File, Source: j.Source, Mode: j.Mode().String(), Disabled: j.Disabled,
		LoadedOnThisHost: state != jobset.OtherHost, Loaded: state == jobset.Loaded, LimitLoadToHosts: j.Hosts.To, LimitLoadFromHosts: j.Hosts.From,
		Program: j.Program, Path: j.Path, Argv: j.Argv, EnableGlobbing: j.EnableGlobbing,
		UserName: j.UserName, GroupName: j.GroupName, InitGroups: j.InitGroups,
		WorkingDirectory: j.WorkingDirectory, RootDirectory: j.RootDirectory, Nice: j.Nice,
		StandardInPath: j.StandardInPath, StandardOutPath: j.StandardOutPath, StandardErrorPath: j.StandardErrorPath,
		SessionCreate: j.SessionCreate, AbandonProcessGroup: j.AbandonProcessGroup, RunAtLoad: j.RunAtLoad,
		ThrottleInterval: j.ThrottleInterval.String(), ExitTimeOut: j.ExitTimeOut.String(), TimeOut: j.TimeOut.String(),
		Internal:  j.Internal,
		Endpoints: []endpointView{}, Diagnostics: []string{},
	}
	l := j.Limits
	v.Limits = limitsView{l.MaxChildren, l.MaxPerSource, l.Rate, l.Burst, l.Pause.String(), l.Allow, l.Deny}
	if p := j.Proxy; p != nil {
		v.Proxy = &proxyView{p.Backend, p.Notify, p.ReadyTimeout.String(), p.IdleTimeout.String(), p.StopAfterIdle.String(), p.ProxyProtocol}
	}
	if len(j.EnvironmentVariables) > 0 {
		v.Environment = map[string]string{}
		for _, e := range j.EnvironmentVariables {
			v.Environment[e.Name] = e.Value
		}
	}
	if j.Umask != nil {
		v.Umask = fmt.Sprintf("%#o", *j.Umask)
	}
	for _, r := range j.SoftResourceLimits {
		v.SoftResourceLimits = append(v.SoftResourceLimits, rlimitView{r.Name, r.Value})
	}
	for _, r := range j.HardResourceLimits {
		v.HardResourceLimits = append(v.HardResourceLimits, rlimitView{r.Name, r.Value})
	}
	k := j.KeepAlive
	v.KeepAlive = keepAliveView{Always: k.Always, SuccessfulExit: k.SuccessfulExit, Crashed: k.Crashed,
		AfterInitialDemand: k.AfterInitialDemand, ImpliesRunAtLoad: k.ImpliesRunAtLoad()}
	for _, p := range k.PathState {
		if v.KeepAlive.PathState == nil {
			v.KeepAlive.PathState = map[string]bool{}
		}
		v.KeepAlive.PathState[p.Path] = p.Exists
	}
	for _, l := range k.OtherJobEnabled {
		if v.KeepAlive.OtherJobEnabled == nil {
			v.KeepAlive.OtherJobEnabled = map[string]bool{}
		}
		v.KeepAlive.OtherJobEnabled[l.Label] = l.Enabled
	}
	if j.Inetd != nil {
		w := j.Inetd.Wait
		v.InetdWait = &w
	}
	mode := j.Mode()
	for i, e := range j.Endpoints() {
		ev := endpointView{Group: e.Group, Key: e.Key, Network: e.Network, Address: e.Address,
			Passive: e.Passive, ID: e.ID(), Delivery: delivery(mode)}
		if mode == job.ModeHandoff {
			ev.FD = 3 + i
		}
		if s := e.Socket; s != nil {
			if s.PathMode != nil {
				ev.Mode = fmt.Sprintf("%#o", uint32(*s.PathMode))
			}
			ev.Owner, ev.GroupID, ev.Mcast = s.PathOwner, s.PathGroup, s.MulticastGroup
			ev.Options = s.Options.Dict()
			var parts []string
			for _, v := range s.Options.Values() {
				parts = append(parts, v.Name+"="+v.Value)
			}
			ev.optText = strings.Join(parts, " ")
		}
		ev.DualStack = e.DualStack()
		v.Endpoints = append(v.Endpoints, ev)
	}
	v.Triggers = fileTriggers(j, time.Now())
	for _, d := range diags {
		v.Diagnostics = append(v.Diagnostics, d.String())
	}
	return v
}

// delivery says how a socket reaches the job in a mode.
func delivery(m job.Mode) string {
	switch m {
	case job.ModeInetdNowait:
		return "accepted connection on fds 0,1,2 of a new child"
	case job.ModeInetdWait:
		return "the ready socket itself on fds 0,1,2"
	case job.ModeHandoff:
		return "LISTEN_FDS"
	case job.ModeProxy:
		return "accepted by sockd and proxied to the backend"
	case job.ModeInternal:
		return "served inside sockd"
	}
	return ""
}

func modeHelp(m job.Mode) string {
	switch m {
	case job.ModeNone:
		return "no sockets: started by RunAtLoad, KeepAlive or its triggers only"
	case job.ModeInetdNowait:
		return "one child per accepted connection, the connection on fds 0, 1 and 2"
	case job.ModeInetdWait:
		return "the ready socket on fds 0, 1 and 2; sockd stops watching it while the child runs"
	case job.ModeHandoff:
		return "started on the first activity; receives every socket as fds 3.. (LISTEN_FDS)"
	case job.ModeProxy:
		return "sockd accepts and forwards to a backend it starts on demand"
	case job.ModeInternal:
		return "sockd answers itself; no process is spawned"
	}
	return ""
}

func printText(w io.Writer, j *job.Job, diags job.Diags, state jobset.State, opts jobset.Options) {
	v := jobView(j, diags, state)
	here := state != jobset.OtherHost
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s:\t%s\n", k, fmt.Sprintf(format, args...)) }
	orDefault := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	row("Label", "%s", j.Label)
	row("File", "%s (%s)", j.File, j.Source)
	row("Mode", "%s (%s)", j.Mode(), modeHelp(j.Mode()))
	if j.Disabled {
		row("Disabled", "true (sockd does not serve this job)")
	}
	if j.Hosts.IsSet() {
		row("This host", "%s", hostText(j, diags, here, opts))
	}
	if state == jobset.Refused {
		row("Loaded", "no: sockd (as %s) refuses the job for the errors below", opts.View)
	}
	switch {
	case j.Internal != "":
		row("Internal service", "%s", j.Internal)
	case j.Path != "":
		row("Program", "%s", j.Path)
		row("Argv", "%s", quoteArgv(j.Argv))
		if j.EnableGlobbing {
			row("EnableGlobbing", "true (argv is globbed at each start)")
		}
	default:
		row("Program", "(none)")
	}
	if j.Proxy != nil {
		p := j.Proxy
		row("Proxy backend", "%s (notify %t, ready timeout %s, idle timeout %s, stop after idle %s, PROXY protocol %s)",
			p.Backend, p.Notify, p.ReadyTimeout, durOrNone(p.IdleTimeout), durOrNone(p.StopAfterIdle), orDefault(p.ProxyProtocol, "off"))
	}
	row("User", "%s", orDefault(j.UserName, "(sockd's own)"))
	row("Group", "%s", orDefault(j.GroupName, "(the user's primary group)"))
	row("InitGroups", "%t", j.InitGroups)
	row("WorkingDirectory", "%s", orDefault(j.WorkingDirectory, "(sockd's)"))
	if j.RootDirectory != "" {
		row("RootDirectory", "%s", j.RootDirectory)
	}
	row("Umask", "%s", orDefault(v.Umask, "(inherited)"))
	if j.Nice != nil {
		row("Nice", "%d", *j.Nice)
	}
	in, out := stdioDefaults(j.Mode())
	row("Stdin", "%s", orDefault(j.StandardInPath, in))
	row("Stdout", "%s", orDefault(j.StandardOutPath, out))
	row("Stderr", "%s", orDefault(j.StandardErrorPath, out))
	for _, e := range j.EnvironmentVariables {
		row("Environment", "%s=%s", e.Name, e.Value)
	}
	for _, r := range j.SoftResourceLimits {
		row("Soft limit", "%s %d", r.Name, r.Value)
	}
	for _, r := range j.HardResourceLimits {
		row("Hard limit", "%s %d", r.Name, r.Value)
	}
	row("KeepAlive", "%s", keepAliveText(j.KeepAlive))
	row("RunAtLoad", "%t%s", j.RunAtLoad, map[bool]string{true: " (KeepAlive implies an initial start)"}[!j.RunAtLoad && j.KeepAlive.ImpliesRunAtLoad()])
	row("Timing", "ThrottleInterval %s, ExitTimeOut %s, TimeOut %s", j.ThrottleInterval, j.ExitTimeOut, j.TimeOut)
	row("SessionCreate", "%t", j.SessionCreate)
	row("AbandonProcessGroup", "%t", j.AbandonProcessGroup)
	triggerRows(row, v.Triggers)
	if m := j.Mode(); m == job.ModeInetdNowait || m == job.ModeInetdWait || m == job.ModeProxy || m == job.ModeInternal {
		l := j.Limits
		row("Limits", "MaxChildren %d, MaxPerSource %s, Rate %s, Burst %d, Pause %s",
			l.MaxChildren, unlimited(l.MaxPerSource), rateText(l.Rate), l.Burst, l.Pause)
		if len(l.Allow) > 0 {
			row("Allow", "%s", strings.Join(l.Allow, " "))
		}
		if len(l.Deny) > 0 {
			row("Deny", "%s", strings.Join(l.Deny, " "))
		}
	}
	tw.Flush()

	fmt.Fprintf(w, "\nSockets (hand-off order):\n")
	if len(v.Endpoints) == 0 {
		fmt.Fprintf(w, "  (none)\n")
	}
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, e := range v.Endpoints {
		fd := "-"
		if e.FD > 0 {
			fd = fmt.Sprintf("fd %d", e.FD)
		}
		var extra []string
		if !e.Passive {
			extra = append(extra, "connected (SockPassive false)")
		}
		if e.Mode != "" {
			extra = append(extra, "mode "+e.Mode)
		}
		if e.Owner != nil {
			extra = append(extra, fmt.Sprintf("owner %d", *e.Owner))
		}
		if e.GroupID != nil {
			extra = append(extra, fmt.Sprintf("group %d", *e.GroupID))
		}
		if e.Mcast != "" {
			extra = append(extra, "multicast "+e.Mcast)
		}
		if e.DualStack {
			extra = append(extra, "dual-stack (IPv4 too)")
		}
		if e.optText != "" {
			extra = append(extra, "options "+e.optText)
		}
		line := fmt.Sprintf("  %s\t%s\t%s\t%s\t%s\t%s", fd, e.Group, e.Network, e.Address, e.Key, strings.Join(extra, ", "))
		fmt.Fprintln(tw, strings.TrimRight(line, "\t "))
	}
	tw.Flush()
	if len(j.Endpoints()) > 0 {
		fmt.Fprintf(w, "  delivery: %s\n", delivery(j.Mode()))
	}

	fmt.Fprintf(w, "\nProblems:\n")
	problems := 0
	for _, d := range diags {
		if d.Severity != job.Info { // the "This host" row says it
			fmt.Fprintf(w, "  %s\n", d.String())
			problems++
		}
	}
	if problems == 0 {
		fmt.Fprintf(w, "  (none)\n")
	}
}

// hostText says whether this host loads a job with host limits, and why.
func hostText(j *job.Job, diags job.Diags, here bool, opts jobset.Options) string {
	if here {
		var keys []string
		if j.Hosts.To != nil {
			keys = append(keys, "LimitLoadToHosts "+strings.Join(j.Hosts.To, " "))
		}
		if len(j.Hosts.From) > 0 {
			keys = append(keys, "LimitLoadFromHosts "+strings.Join(j.Hosts.From, " "))
		}
		host, _ := job.LoadOptions{Hostname: opts.Hostname}.HostName()
		return fmt.Sprintf("%s loads the job (%s)", host, strings.Join(keys, "; "))
	}
	for _, d := range diags {
		if d.Key == "LimitLoadToHosts" || d.Key == "LimitLoadFromHosts" {
			why := strings.TrimPrefix(d.Msg, "not loaded on this host ("+d.Key+"): ")
			return "does not load the job (" + d.Key + "), so sockd does not serve it here: " + why
		}
	}
	return "does not load the job, so sockd does not serve it here"
}

// stdioDefaults are what a job's fds 0 and 1-2 are without Standard*Path:
// the connection or the socket for inetd jobs, else /dev/null and sockd's
// log.
func stdioDefaults(m job.Mode) (in, out string) {
	switch m {
	case job.ModeInetdNowait:
		return "(the connection)", "(the connection)"
	case job.ModeInetdWait:
		return "(the socket)", "(the socket)"
	}
	return "/dev/null", "(sockd's log)"
}

func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = fmt.Sprintf("%q", a)
	}
	return "[" + strings.Join(q, " ") + "]"
}

func keepAliveText(k job.KeepAlive) string {
	if k.Always {
		return "always (restart whenever it exits)"
	}
	var parts []string
	if k.SuccessfulExit != nil {
		if *k.SuccessfulExit {
			parts = append(parts, "restart after exit 0")
		} else {
			parts = append(parts, "restart after a failure (non-zero exit or signal)")
		}
	}
	if k.Crashed != nil {
		if *k.Crashed {
			parts = append(parts, "restart after a crash")
		} else {
			parts = append(parts, "restart unless it crashed")
		}
	}
	for _, p := range k.PathState {
		if p.Exists {
			parts = append(parts, "while "+p.Path+" exists")
		} else {
			parts = append(parts, "while "+p.Path+" is missing")
		}
	}
	for _, l := range k.OtherJobEnabled {
		if l.Enabled {
			parts = append(parts, "while job "+l.Label+" is loaded")
		} else {
			parts = append(parts, "while job "+l.Label+" is not loaded")
		}
	}
	if k.AfterInitialDemand {
		parts = append(parts, "only after the first demand start")
	}
	if len(parts) == 0 {
		return "false (on demand)"
	}
	return strings.Join(parts, "; ")
}

func unlimited(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

func rateText(r float64) string {
	if r == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%g/s", r)
}

func durOrNone(d time.Duration) string {
	if d == 0 {
		return "none"
	}
	return d.String()
}
