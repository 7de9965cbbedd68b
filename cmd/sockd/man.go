package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/sockd/sockd/docs"
	"github.com/sockd/sockd/internal/roff"
)

// The manual pages are made here, so that they cannot drift from what
// sockd does: sockd(8) from the command table (every command, its
// synopsis, description and flags, as -h prints them) and the texts
// below; sockd.plist(5) from docs/keys.md, the key reference. The package
// build writes them with `sockd man PAGE`.

func init() {
	register(withFlags(command{
		name:     "man",
		summary:  "write a manual page (sockd.8 or sockd.plist.5) to stdout",
		synopsis: "sockd.8|sockd.plist.5",
	}, func(*struct{}, *flag.FlagSet, defaults) {}, func(_ *struct{}, pos []string) error {
		if len(pos) != 1 {
			return badArgs("name one page: %s", strings.Join(manPageNames(), " or "))
		}
		page, ok := manPages[pos[0]]
		if !ok {
			return usageError(fmt.Errorf("no page %q: %s", pos[0], strings.Join(manPageNames(), " or ")))
		}
		_, err := os.Stdout.WriteString(page())
		return err
	}))
}

var manPages = map[string]func() string{
	"sockd.8":       manSockd,
	"sockd.plist.5": manPlist,
}

func manPageNames() []string { return []string{"sockd.8", "sockd.plist.5"} }

const manSource = "sockd"

// manSockd is sockd(8).
func manSockd() string {
	var p roff.Page
	p.TH("SOCKD", "8", "", manSource+" "+versionString(), "System Manager's Manual")
	p.SH("NAME")
	p.Raw(`sockd \- socket\-activation daemon configured by launchd job files`)
	p.SH("SYNOPSIS")
	for i, c := range visible() {
		if i > 0 {
			p.Raw(".br")
		}
		p.Raw(roff.Bold("sockd "+c.name) + " " + synopsisRoff(c.synopsis))
	}
	p.SH("DESCRIPTION")
	for _, para := range strings.Split(manDescription, "\n\n") {
		p.Para(para)
	}
	for _, m := range manModes {
		p.Tagged(roff.Bold(m[0]), roff.Text(m[1]))
	}
	p.Para("Job files are described in sockd.plist(5). The control commands talk to a running sockd " +
		"over its control socket; any local user may read (list, print, blame), and only root, or the user a " +
		"user's sockd runs as, may change anything. Every change is logged with the caller's uid and pid.")
	p.SH("COMMANDS")
	lastGroup := ""
	for _, c := range visible() {
		if g := manGroup(c); g != lastGroup {
			p.SS(g)
			lastGroup = g
		}
		p.Raw(".TP")
		p.Raw(roff.Bold("sockd "+c.name) + " " + synopsisRoff(c.synopsis))
		about := c.about
		if about == "" {
			about = c.summary
		}
		for i, para := range strings.Split(about, "\n\n") {
			if i > 0 {
				p.Raw(`.IP "" 7`)
			}
			p.Raw(roff.Text(para))
		}
		flags := c.docFlags(documented)
		if len(flags) == 0 {
			continue
		}
		p.Raw(".RS")
		for _, f := range flags {
			tag := roff.Bold(flagName(f.Name))
			if a := flagArg(f); a != "" {
				tag += " " + roff.Italic(a)
			}
			p.Tagged(tag, roff.Text(flagUsage(f)))
		}
		p.Raw(".RE")
	}
	for _, s := range manSections {
		p.SH(s.title)
		for _, para := range strings.Split(s.intro, "\n\n") {
			if para != "" {
				p.Para(para)
			}
		}
		for _, it := range s.items {
			p.Tagged(roff.Bold(it[0]), roff.Text(it[1]))
		}
	}
	p.SH("SEE ALSO")
	p.Raw(`\fBsockd.plist\fR(5), \fBsystemctl\fR(1), \fBjournalctl\fR(1), \fBsystemd.service\fR(5), ` +
		`\fBsd_listen_fds\fR(3), \fBsd_notify\fR(3), \fBinetd\fR(8), \fBxinetd\fR(8), \fBlaunchd.plist\fR(5) (macOS)`)
	p.Para("The documentation in /usr/share/doc/sockd/ (README.md and docs/), or in the source repository.")
	return p.String()
}

// manPlist is sockd.plist(5), from docs/keys.md.
func manPlist() string {
	var p roff.Page
	p.TH("SOCKD.PLIST", "5", "", manSource+" "+versionString(), "File Formats Manual")
	p.SH("NAME")
	p.Raw(`sockd.plist \- sockd job files: launchd property lists and the keys sockd reads`)
	p.SH("SYNOPSIS")
	p.Raw(`/etc/sockd/jobs/\fILABEL\fR.plist, ~/.config/sockd/jobs/\fILABEL\fR.plist`)
	p.SH("DESCRIPTION")
	p.Markdown(docs.Keys)
	p.SH("SEE ALSO")
	p.Raw(`\fBsockd\fR(8), \fBlaunchd.plist\fR(5) (macOS), \fBplutil\fR(1) (macOS)`)
	p.Para("The documentation in /usr/share/doc/sockd/ (docs/serving.md, docs/proxy.md, docs/triggers.md, docs/limits.md).")
	return p.String()
}

// synopsisRoff sets a synopsis: flags in bold, placeholders in italic.
func synopsisRoff(s string) string {
	var out []string
	for _, w := range strings.Fields(s) {
		out = append(out, synopsisWord(w))
	}
	return strings.Join(out, " ")
}

// synopsisWord sets one word of a synopsis: [--jobs DIR]... keeps its
// brackets and dots in roman, --jobs in bold and DIR in italic.
func synopsisWord(w string) string {
	var b strings.Builder
	i := 0
	for i < len(w) {
		j := i
		for j < len(w) && !strings.ContainsRune("[]|.", rune(w[j])) {
			j++
		}
		if j > i {
			tok := w[i:j]
			if strings.HasPrefix(tok, "-") || tok == strings.ToLower(tok) {
				b.WriteString(roff.Bold(tok))
			} else {
				b.WriteString(roff.Italic(tok))
			}
		}
		if j < len(w) {
			b.WriteString(roff.Text(string(w[j])))
			j++
		}
		i = j
	}
	return b.String()
}

func manGroup(c command) string {
	switch {
	case isCtl(c.name):
		return "Control commands"
	case c.name == "serve" || c.name == "check" || c.name == "print" || c.name == "convert":
		return "The daemon and its job files"
	}
	return "Other commands"
}

const manDescription = `sockd is a socket-activation daemon for Linux. It replaces inetd, xinetd and systemd socket units, and it reads Apple launchd job files (property lists) as its configuration. sockd binds every socket a job describes and starts the job's program only when a connection or datagram arrives, so services cost nothing until they are used. Clients queue in the kernel backlog while a service starts or restarts, so none are turned away.

How a job's sockets are served depends on its mode, which follows from its keys (sockd print shows it):`

var manModes = [][2]string{
	{"inetd-nowait", "inetdCompatibility with Wait false: sockd accepts each connection and starts one child per connection, with the connection on fds 0, 1 and 2."},
	{"inetd-wait", "inetdCompatibility with Wait true: when a socket becomes ready, sockd passes that listening or datagram socket itself on fds 0, 1 and 2, and stops watching it while the child runs."},
	{"handoff", "Sockets without inetdCompatibility: the job starts on the first activity and receives every socket as fds 3, 4, ... with LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (systemd's protocol) and LAUNCH_ variables."},
	{"proxy", "SockdProxy: sockd accepts connections and forwards them to a backend, which it starts on demand."},
	{"internal", "SockdInternal: sockd answers the connection itself (echo, discard, chargen, daytime, time); no process is started."},
	{"none", "no Sockets: the job runs because of RunAtLoad, KeepAlive or a trigger (StartInterval, StartCalendarInterval, WatchPaths, QueueDirectories, StartOnMount, LaunchOnlyOnce)."},
}

type manSection struct {
	title, intro string
	items        [][2]string
}

var manSections = []manSection{
	{title: "SIGNALS", intro: "sockd serve handles these; SIGPIPE is ignored, and every child starts with default signal dispositions.",
		items: [][2]string{
			{"SIGHUP", "Reloads every job source. Added jobs start serving, removed jobs stop, a changed job's service is stopped and started again under the new definition; a socket whose definition did not change stays open throughout. A job file that became invalid is reported with its file and key, and its job keeps serving under its last good definition. sockd reload does the same and reports the diagnostics."},
			{"SIGUSR1", "Logs one summary line per job: accepted, refused, spawned, spawn failures, processes running, and for proxy jobs open connections, UDP flows, failed clients, idle closes, backend readiness and idle stops, and bytes each way."},
			{"SIGUSR2", "Upgrades in place, as sockd upgrade does, with the path the running image was started from: the new binary is checked first, then sockd re-executes itself (same pid) and hands it every socket, child, proxied connection and counter. A refusal is logged; the old binary serves on."},
			{"SIGTERM, SIGINT", "Stops sockd: it stops accepting, sends SIGTERM to every child, SIGKILL after the job's ExitTimeOut (default 20 s; 0: never), waits for every child to be reaped, closes its sockets, removes the Unix socket paths it created and exits 0."},
		}},
	{title: "EXIT STATUS", items: [][2]string{
		{"0", "Done. For check, no error was found."},
		{"1", "Failed: check or print found an error (a job serve would not load), convert left services out, or the daemon tried and failed (a start that failed, a reload with errors, a refused bootstrap)."},
		{"2", "Usage: a malformed command line or request."},
		{"3", "Control commands: no such job is loaded."},
		{"4", "Control commands: not permitted; the caller may not ask this."},
		{"5", "Control commands: no daemon answers at the control socket."},
	}},
	{title: "ENVIRONMENT", items: [][2]string{
		{"XDG_CONFIG_HOME", "A user's jobs directory is $XDG_CONFIG_HOME/sockd/jobs (else ~/.config/sockd/jobs)."},
		{"XDG_RUNTIME_DIR", "A user's control socket is $XDG_RUNTIME_DIR/sockd/control.sock (else /run/user/UID/sockd/, else ~/.config/sockd/)."},
		{"XDG_STATE_HOME", "A user's overrides file is $XDG_STATE_HOME/sockd/overrides.json (else ~/.local/state/sockd/overrides.json)."},
		{"NOTIFY_SOCKET", "Set by systemd for Type=notify: sockd serve sends READY=1 once every socket is bound, RELOADING=1 and READY=1 around a reload and STOPPING=1 on shutdown. Children do not inherit it."},
		{"WATCHDOG_USEC, WATCHDOG_PID", "Set by systemd for WatchdogSec=: sockd serve sends WATCHDOG=1 to NOTIFY_SOCKET from its event loop every third of the interval, unless WATCHDOG_PID names another process. Children do not inherit them."},
		{"JOURNAL_STREAM", "Set by systemd when stderr is the journal: then --log-format auto (the default) writes to the journal with priorities and fields, and services' output goes to journal streams under their job's label. Children do not inherit sockd's; one whose output is a journal stream gets its own."},
		{"SOCKD_JOURNAL_DIR", "For tests: the directory of journald's sockets (socket and stdout) in place of /run/systemd/journal."},
		{"NO_COLOR", "Turns off the colours of the console log format on a terminal."},
		{"Children", "Every child gets sockd's environment less LISTEN_*, LAUNCH_*, NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID, JOURNAL_STREAM and the connection variables, plus its job's EnvironmentVariables; an inetd-nowait child gets REMOTE_ADDR, REMOTE_PORT, PROTO and the UCSPI TCP or UNIX variables, a handoff child LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, LAUNCH_JOB_LABEL, LAUNCH_SOCKETS, LAUNCH_SOCKET_KEY (one per Sockets key) and LAUNCH_TIMEOUT, and HOME, USER, LOGNAME and SHELL are the job user's when it sets UserName."},
	}},
	{title: "FILES", items: [][2]string{
		{"/etc/sockd/jobs/", "Root's job files (*.plist), owned by root and not group- or world-writable."},
		{"~/.config/sockd/jobs/", "A user's job files."},
		{"/run/sockd/control.sock", "Root's control socket (mode 0666: any user may read; the daemon authorises each request by the caller's credentials)."},
		{"/var/lib/sockd/overrides.json", "Root's overrides: the jobs sockd disable keeps off."},
		{"/run/sockd/once/", "Root's LaunchOnlyOnce records, with the boot ID."},
		{"/lib/systemd/system/sockd.service", "The system unit: systemctl enable --now sockd. Reload is systemctl reload sockd (sockd reload), logs are journalctl -u sockd."},
		{"/usr/lib/systemd/user/sockd.service", "The user unit: systemctl --user enable --now sockd, for a user's sockd at login."},
		{"/usr/share/doc/sockd/examples/", "Example jobs: sockd serve --jobs /usr/share/doc/sockd/examples serves an echo service on 127.0.0.1:8007 and an HTTP service on 127.0.0.1:8081."},
	}},
}
