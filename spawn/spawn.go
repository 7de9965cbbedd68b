// Package spawn starts a job's process exactly as its job file says: argv
// and environment, credentials (UserName, GroupName, InitGroups), resource
// limits, Nice, Umask, RootDirectory, WorkingDirectory, the standard paths,
// a process group or session of its own, and the file descriptor layout the
// caller asks for (fds[i] becomes fd i in the child, nothing else crosses
// exec). For socket handoff it sets LISTEN_PID to the child's own pid, as
// sd_listen_fds(3) requires.
//
// Everything fixed for a job is prepared once in a Template at load time;
// Template.StartAsync is the per-connection hot path and Template.Start the
// synchronous form. On Linux both are a small C spawner reached through cgo
// (a clone sharing sockd's memory, with a pidfd, the job attributes applied
// with raw system calls, then execve), because Go cannot run code between
// fork and exec. Start waits until the child has exec'd (vfork-style) and
// returns a start failure at once; StartAsync returns as soon as the child
// exists and reports a start failure when the child is reaped. A started
// Process carries a pidfd: it becomes readable when the process exits and
// Reap collects its status.
//
// The child applies, in launchd's order: every signal disposition to
// SIG_DFL and an empty signal mask; setsid (SessionCreate) or setpgid(0, 0);
// Nice; resource limits; chroot(RootDirectory) and chdir("/"); setgroups,
// setresgid, setresuid; Umask; chdir(WorkingDirectory); the fd layout;
// StandardInPath, StandardOutPath, StandardErrorPath; close-on-exec for
// every other descriptor; LISTEN_PID; execve.
//
// Where sockd differs from launchd on purpose:
//   - A failing chdir(WorkingDirectory), chroot, setpriority or setrlimit is
//     a start error (launchd logs it and runs the job anyway).
//   - A standard path that cannot be opened is, as in launchd, only a
//     warning (Process.Warnings); the descriptor keeps what the caller gave.
//   - Setting only a hard limit below the current soft one lowers the soft
//     limit with it (launchd's setrlimit would fail with EINVAL).
//   - EnableGlobbing expands argv in sockd at each start (launchd runs
//     glob(3) in the child), outside RootDirectory: with the job's
//     credentials (privilege.RunAs, on a thread of its own) when root
//     starts it as another user, so the names of directories the job may
//     not read never reach it.
//   - InitGroups=false gives the job only its primary group (launchd leaves
//     its own supplementary groups in place).
package spawn

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Options are the daemon-wide settings a Template depends on.
type Options struct {
	// AsRoot says sockd runs as root: UserName, GroupName, InitGroups and
	// RootDirectory are honoured. Otherwise the job runs as sockd itself,
	// so a UserName other than sockd's user, a GroupName other than its
	// group and a RootDirectory are refused (launchd ignores them with a
	// warning, which runs the job wider than its file says); a UserName
	// naming sockd's own user still sets HOME, USER, LOGNAME and SHELL.
	AsRoot bool
	// BaseEnv is sockd's own environment (os.Environ()). NOTIFY_SOCKET,
	// WATCHDOG_USEC, WATCHDOG_PID, JOURNAL_STREAM (sockd's own, from
	// systemd), LISTEN_*, LAUNCH_*, REMOTE_ADDR, REMOTE_PORT, PROTO, TCP*
	// and UNIX* are removed from it before it is handed to children. It must not be
	// modified once used: templates built on it share one environment,
	// recognised by the slice's identity.
	BaseEnv []string
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	// Code is the exit code (0..255) when the process exited; -1 when it
	// was killed by a signal.
	Code int
	// Signal is the signal that killed the process, 0 when it exited.
	Signal unix.Signal
	// CoreDumped reports that the kernel wrote a core dump.
	CoreDumped bool
	// StartErr is set when a process started with StartAsync failed
	// before or at execve (it then exited with status 127).
	StartErr error
}

// String gives "exit status 3" or "signal SIGSEGV (core dumped)".
func (s ExitStatus) String() string {
	if s.Signal == 0 {
		return fmt.Sprintf("exit status %d", s.Code)
	}
	name := unix.SignalName(s.Signal)
	if name == "" {
		name = fmt.Sprintf("%d", int(s.Signal))
	}
	if s.CoreDumped {
		return "signal " + name + " (core dumped)"
	}
	return "signal " + name
}

// Success reports exit status 0.
func (s ExitStatus) Success() bool { return s.Signal == 0 && s.Code == 0 }

// Crashed reports death by one of the signals launchd calls a crash:
// SIGILL, SIGABRT, SIGFPE, SIGBUS, SIGSEGV, SIGSYS and SIGTRAP.
func (s ExitStatus) Crashed() bool {
	switch s.Signal {
	case unix.SIGILL, unix.SIGABRT, unix.SIGFPE, unix.SIGBUS, unix.SIGSEGV, unix.SIGSYS, unix.SIGTRAP:
		return true
	}
	return false
}

// StartError is a failure to start a job's process. Stage names the step
// that failed ("execve", "setresuid", "chdir /srv", "setrlimit
// NumberOfFiles", ...); Err is the errno (a unix.Errno) when there is one.
type StartError struct {
	Label string
	Path  string
	Stage string
	Err   error
}

func (e *StartError) Error() string {
	return fmt.Sprintf("job %s: start %s: %s: %v", e.Label, e.Path, e.Stage, e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }

// strippedEnv reports whether sockd must not pass the variable name on to
// children from its own environment.
func strippedEnv(name string) bool {
	switch name {
	case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "REMOTE_ADDR", "REMOTE_PORT", "PROTO":
		return true
	}
	return strings.HasPrefix(name, "LISTEN_") || strings.HasPrefix(name, "LAUNCH_") ||
		strings.HasPrefix(name, "TCP") || strings.HasPrefix(name, "UNIX")
}

// envName returns the name part of "NAME=value" (all of it without '=').
func envName(kv string) string {
	if i := strings.IndexByte(kv, '='); i >= 0 {
		return kv[:i]
	}
	return kv
}

// envList is an ordered environment with at most one entry per name.
type envList struct {
	kv    []string
	index map[string]int
}

// set adds or, when override is true, replaces name.
func (e *envList) set(name, kv string, override bool) {
	if e.index == nil {
		e.index = make(map[string]int)
	}
	if i, ok := e.index[name]; ok {
		if override {
			e.kv[i] = kv
		}
		return
	}
	e.index[name] = len(e.kv)
	e.kv = append(e.kv, kv)
}

// userEnv is what HOME/USER/LOGNAME/SHELL are set from.
type userEnv struct {
	name, home, shell string
}

// buildEnv computes a template's environment: base minus the stripped
// names (first occurrence wins, as getenv), then HOME/USER/LOGNAME/SHELL of
// the job user, then the job's variables, overriding. Unlike launchd, the
// user's values replace inherited ones: sockd started from a root shell must
// not give a job running as "nobody" HOME=/root.
func buildEnv(base []string, u *userEnv, jobVars [][2]string) *envList {
	e := &envList{index: make(map[string]int, len(base)+len(jobVars)+4)}
	for _, kv := range base {
		name := envName(kv)
		if name == "" || name == kv || strippedEnv(name) {
			continue
		}
		e.set(name, kv, false)
	}
	if u != nil {
		for _, nv := range [][2]string{{"HOME", u.home}, {"USER", u.name}, {"LOGNAME", u.name}, {"SHELL", u.shell}} {
			if nv[1] != "" {
				e.set(nv[0], nv[0]+"="+nv[1], true)
			}
		}
	}
	for _, nv := range jobVars {
		e.set(nv[0], nv[0]+"="+nv[1], true)
	}
	return e
}

// globWord expands one argv word as glob(3) with GLOB_NOCHECK|GLOB_TILDE
// does: a leading ~ or ~/ becomes home, ~name/ that user's home (lookup may
// be nil); a pattern with no match, or a bad one, stays as written; "*" and
// "?" do not match a leading dot. It appends the result to out.
func globWord(out []string, word, home string, lookup func(string) (string, bool)) []string {
	expanded := word
	if strings.HasPrefix(word, "~") {
		name, rest, slash := strings.Cut(word[1:], "/")
		h, ok := home, home != ""
		if name != "" {
			h, ok = "", false
			if lookup != nil {
				h, ok = lookup(name)
			}
		}
		if ok {
			expanded = h
			if slash {
				expanded = strings.TrimSuffix(h, "/") + "/" + rest
			}
		}
	}
	if !strings.ContainsAny(expanded, "*?[") {
		if expanded == word {
			return append(out, word)
		}
		if _, err := os.Lstat(expanded); err == nil {
			return append(out, expanded)
		}
		return append(out, word)
	}
	matches, err := filepath.Glob(expanded)
	if err != nil {
		return append(out, word)
	}
	n := len(out)
	pat := strings.Split(expanded, "/")
	for _, m := range matches {
		if hiddenMismatch(pat, strings.Split(m, "/")) {
			continue
		}
		out = append(out, m)
	}
	if len(out) == n {
		return append(out, word)
	}
	return out
}

// hiddenMismatch reports a match component starting with '.' produced by a
// pattern component that does not start with '.' (glob(3) without
// GLOB_PERIOD never matches a leading dot with a wildcard).
func hiddenMismatch(pat, match []string) bool {
	if len(pat) != len(match) {
		return false
	}
	for i := range pat {
		if strings.HasPrefix(match[i], ".") && !strings.HasPrefix(pat[i], ".") {
			return true
		}
	}
	return false
}
