package compat

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sockd/sockd/job"
)

// credentials reads User=, Group= and SupplementaryGroups=. root says the
// command runs as root whatever they say (ExecStart= prefix + or !).
func (l *sdLoader) credentials(j *job.Job, u *sdUnit, root bool) bool {
	ok := true
	name := func(e *sdEntry, byID func(int) (string, error)) (string, bool) {
		v, err := l.expand(u, e.val)
		if err != nil {
			l.fail(u, e, "%v", err)
			return "", false
		}
		if id, err := strconv.Atoi(v); err == nil {
			n, err := byID(id)
			if err != nil {
				l.fail(u, e, "no name for id %d here (%v): sockd names users and groups; create it, or give a name", id, err)
				return "", false
			}
			return n, true
		}
		if strings.ContainsAny(v, " \t:/") {
			l.fail(u, e, "%q is not a user or group name", v)
			return "", false
		}
		return v, true
	}
	if e := u.get("Service", "User"); e != nil && !root {
		if n, good := name(e, l.host.lookupUserID); good {
			j.UserName = n
		} else {
			ok = false
		}
	}
	if e := u.get("Service", "Group"); e != nil && !root {
		if n, good := name(e, l.host.lookupGroupID); good {
			j.GroupName = n
		} else {
			ok = false
		}
	}
	for _, e := range u.all("Service", "SupplementaryGroups") {
		if !root {
			l.warn(e, "not honoured: sockd gives the service its user's own groups (as initgroups does), not these; the service runs with fewer rights")
		}
	}
	return ok
}

// sdRlimits are the Limit*= directives, in the order the job loader
// lists resource limits.
var sdRlimits = []struct {
	key, name string
	resource  int
	unit      string // "bytes", "seconds" or "" (a count)
}{
	{"LimitCORE", "Core", rlimitCore, "bytes"},
	{"LimitCPU", "CPU", rlimitCPU, "seconds"},
	{"LimitDATA", "Data", rlimitData, "bytes"},
	{"LimitFSIZE", "FileSize", rlimitFsize, "bytes"},
	{"LimitMEMLOCK", "MemoryLock", rlimitMemlock, "bytes"},
	{"LimitNOFILE", "NumberOfFiles", rlimitNofile, ""},
	{"LimitNPROC", "NumberOfProcesses", rlimitNproc, ""},
	{"LimitRSS", "ResidentSetSize", rlimitRSS, "bytes"},
	{"LimitSTACK", "Stack", rlimitStack, "bytes"},
	{"LimitAS", "AddressSpace", rlimitAS, "bytes"},
}

// process reads WorkingDirectory=, RootDirectory=, UMask=, Nice= and
// Limit*=.
func (l *sdLoader) process(j *job.Job, u *sdUnit) bool {
	ok := true
	if e := u.get("Service", "WorkingDirectory"); e != nil {
		v, err := l.expand(u, e.val)
		optional := strings.HasPrefix(v, "-")
		v = strings.TrimPrefix(v, "-")
		switch {
		case err != nil:
			l.fail(u, e, "%v", err)
			ok = false
		case v == "~":
			home := l.host.home
			if j.UserName != "" {
				_, _, h, err := l.host.lookupUser(j.UserName)
				if err != nil {
					l.fail(u, e, "~ is the home of %s, who is unknown here (%v)", j.UserName, err)
					ok = false
					break
				}
				home = h
			}
			j.WorkingDirectory = home
		case !filepath.IsAbs(v):
			l.fail(u, e, "%q is not an absolute path", v)
			ok = false
		case optional && !l.host.exists(v):
			l.warn(e, "%s does not exist now; not set (systemd skips a missing optional directory too, at each start)", v)
		default:
			j.WorkingDirectory = v
		}
	}
	if e := u.get("Service", "RootDirectory"); e != nil {
		v, err := l.expand(u, e.val)
		switch {
		case err != nil:
			l.fail(u, e, "%v", err)
			ok = false
		case !filepath.IsAbs(v):
			l.fail(u, e, "%q is not an absolute path", v)
			ok = false
		default:
			j.RootDirectory = v
		}
	}
	if e := u.get("Service", "UMask"); e != nil {
		n, err := strconv.ParseUint(e.val, 8, 32)
		if err != nil || n > 0o777 {
			l.fail(u, e, "%q: want an octal mask such as 0022", e.val)
			ok = false
		} else {
			m := uint32(n)
			j.Umask = &m
		}
	}
	if e := u.get("Service", "Nice"); e != nil {
		n, err := strconv.Atoi(e.val)
		if err != nil || n < -20 || n > 19 {
			l.fail(u, e, "%q: want a number from -20 to 19", e.val)
			ok = false
		} else {
			j.Nice = &n
		}
	}
	for _, r := range sdRlimits {
		e := u.get("Service", r.key)
		if e == nil {
			continue
		}
		soft, hard, err := sdRlimit(e.val, r.unit)
		if err != nil {
			l.fail(u, e, "%v", err)
			ok = false
			continue
		}
		j.SoftResourceLimits = append(j.SoftResourceLimits, job.RLimit{Name: r.name, Resource: r.resource, Value: soft})
		j.HardResourceLimits = append(j.HardResourceLimits, job.RLimit{Name: r.name, Resource: r.resource, Value: hard})
	}
	for _, k := range []string{"LimitLOCKS", "LimitSIGPENDING", "LimitMSGQUEUE", "LimitNICE", "LimitRTPRIO", "LimitRTTIME"} {
		if e := u.get("Service", k); e != nil {
			l.warn(e, "not honoured: sockd sets no such resource limit (this only narrows what the service itself may do)")
		}
	}
	return ok
}

// sdRlimit parses a Limit*= value: one limit for both, or SOFT:HARD.
func sdRlimit(v, unit string) (soft, hard uint64, err error) {
	one := func(s string) (uint64, error) {
		s = strings.TrimSpace(s)
		if s == "infinity" {
			return RLimInfinity, nil
		}
		switch unit {
		case "bytes":
			return sdSize(s, true)
		case "seconds":
			d, err := sdTime(s, time.Second)
			if err != nil {
				return 0, err
			}
			if d == sdInfinity {
				return RLimInfinity, nil
			}
			return uint64((d + time.Second - 1) / time.Second), nil
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number or infinity", s)
		}
		return n, nil
	}
	a, b, two := strings.Cut(v, ":")
	if soft, err = one(a); err != nil {
		return 0, 0, err
	}
	hard = soft
	if two {
		if hard, err = one(b); err != nil {
			return 0, 0, err
		}
	}
	if soft > hard {
		return 0, 0, fmt.Errorf("soft limit %s is above the hard limit %s", a, b)
	}
	return soft, hard, nil
}

// stdio reads StandardInput=, StandardOutput= and StandardError= for a job
// served in mode: the inetd modes put the socket on fds 0 to 2 (systemd's
// StandardInput=socket, with output and error inherited), a handoff job's
// output goes to sockd's log (systemd's journal) unless a file is named.
func (l *sdLoader) stdio(j *job.Job, u *sdUnit, mode job.Mode) bool {
	inetd := mode == job.ModeInetdNowait || mode == job.ModeInetdWait
	ok := true
	in := sdStdio{kind: "null"}
	if e := u.get("Service", "StandardInput"); e != nil {
		in = parseStdio(e.val)
		switch in.kind {
		case "socket", "null":
		case "file":
			p, err := l.expand(u, in.path)
			if err != nil || !filepath.IsAbs(p) {
				l.fail(u, e, "%q is not an absolute path", in.path)
				ok = false
			} else {
				j.StandardInPath = p
			}
		case "tty":
			l.warn(e, "not honoured: sockd gives no terminal; standard input is /dev/null")
		case "data":
			l.warn(e, "not honoured: sockd passes no StandardInputText=/StandardInputData=; standard input is /dev/null")
		case "fd":
			l.fail(u, e, "fd: names a file descriptor store of another unit, which sockd does not have")
			ok = false
		default:
			l.fail(u, e, "unknown value %q", e.val)
			ok = false
		}
	}
	// target is where one of fds 1 and 2 goes: "" leaves it as sockd lays
	// it out (the connection, or sockd's log).
	target := func(e *sdEntry, o sdStdio, fd string) (string, bool) {
		switch o.kind {
		case "inherit":
			if inetd {
				return "", true
			}
			if in.kind == "file" {
				l.warn(e, "inherit of an input file: not honoured, the output goes to sockd's log")
				return "", true
			}
			return "/dev/null", true
		case "socket":
			if inetd {
				return "", true
			}
			l.fail(u, e, "socket needs the socket on standard input (StandardInput=socket)")
			return "", false
		case "null":
			return "/dev/null", true
		case "file":
			p, err := l.expand(u, o.path)
			if err != nil || !filepath.IsAbs(p) {
				l.fail(u, e, "%q is not an absolute path", o.path)
				return "", false
			}
			switch o.mode {
			case "file":
				l.warn(e, "sockd appends to %s; systemd writes from its start, over what it held", p)
			case "truncate":
				l.warn(e, "sockd appends to %s; systemd empties it first", p)
			}
			return p, true
		case "journal", "tty":
			if inetd {
				l.warn(e, "%s: sockd connects an inetd child's standard %s to the connection, and sends it to /dev/null here so that it does not reach the client; name a file (%s=append:PATH) to keep it", e.val, fd, e.key)
				return "/dev/null", true
			}
			if o.kind == "tty" {
				l.warn(e, "not honoured: sockd gives no terminal; the output goes to sockd's log")
			}
			return "", true
		case "fd":
			l.fail(u, e, "fd: names a file descriptor store of another unit, which sockd does not have")
			return "", false
		}
		l.fail(u, e, "unknown value %q", e.val)
		return "", false
	}
	out, outSet := "", false
	if e := u.get("Service", "StandardOutput"); e != nil {
		p, good := target(e, parseStdio(e.val), "output")
		ok = ok && good
		out, outSet = p, true
		j.StandardOutPath = p
	}
	if e := u.get("Service", "StandardError"); e != nil {
		o := parseStdio(e.val)
		if o.kind == "inherit" {
			// A copy of standard output.
			j.StandardErrorPath = out
		} else {
			p, good := target(e, o, "error")
			ok = ok && good
			j.StandardErrorPath = p
		}
	} else if outSet {
		j.StandardErrorPath = out
	}
	return ok
}

// lifecycle reads Restart=, RestartSec=, TimeoutStopSec=, KillMode= and
// the rest of how the service is started and stopped.
func (l *sdLoader) lifecycle(j *job.Job, u *sdUnit, mode job.Mode) bool {
	ok := true
	if e := u.get("Service", "Restart"); e != nil {
		switch e.val {
		case "no":
		case "always", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog":
			switch {
			case mode == job.ModeInetdNowait:
				l.warn(e, "no effect on a per-connection service: sockd starts one for each connection")
			case mode == job.ModeInetdWait:
				l.warn(e, "not honoured: sockd starts a wait service again at its next request")
			case e.val == "always":
				// Kept running once the first connection started it, as
				// systemd keeps a socket-activated service running.
				j.KeepAlive = job.KeepAlive{AfterInitialDemand: true}
			}
			// on-failure and the others: sockd starts the service again
			// at the next connection, on demand.
		default:
			l.fail(u, e, "unknown value %q (want no, always, on-success, on-failure, on-abnormal, on-abort or on-watchdog)", e.val)
			ok = false
		}
	}
	if e := u.get("Service", "RestartSec"); e != nil {
		d, err := sdTime(e.val, time.Second)
		switch {
		case err != nil:
			l.fail(u, e, "%v", err)
			ok = false
		case mode == job.ModeInetdNowait:
			l.warn(e, "no effect on a per-connection service")
		default:
			secs := wholeSeconds(d)
			if time.Duration(secs)*time.Second != d {
				l.warn(e, "ThrottleInterval is in whole seconds: %v becomes %d s", d, secs)
			}
			j.ThrottleInterval = time.Duration(secs) * time.Second
		}
	}
	stop := u.get("Service", "TimeoutStopSec")
	if stop == nil {
		stop = u.get("Service", "TimeoutSec")
	}
	if stop != nil {
		d, err := sdTime(stop.val, time.Second)
		switch {
		case err != nil:
			l.fail(u, stop, "%v", err)
			ok = false
		case d == sdInfinity || d == 0:
			j.ExitTimeOut = 0
		default:
			secs := wholeSeconds(d)
			if time.Duration(secs)*time.Second != d {
				l.warn(stop, "ExitTimeOut is in whole seconds: %v becomes %d s", d, secs)
			}
			j.ExitTimeOut = time.Duration(secs) * time.Second
		}
	}
	if e := u.get("Service", "SendSIGKILL"); e != nil {
		b, err := sdBool(e.val)
		if err != nil {
			l.fail(u, e, "%v", err)
			ok = false
		} else if !b {
			j.ExitTimeOut = 0
		}
	}
	if e := u.get("Service", "KillMode"); e != nil {
		switch e.val {
		case "control-group":
		case "process":
			j.AbandonProcessGroup = true
		case "mixed":
			l.warn(e, "sockd sends SIGTERM to the main process and, once it has exited, to its process group (systemd sends SIGTERM to the main process and SIGKILL to the rest of the group)")
		case "none":
			j.AbandonProcessGroup = true
			l.warn(e, "sockd still sends SIGTERM, then SIGKILL after ExitTimeOut, to the main process when it stops the job; only its process group is left alone")
		default:
			l.fail(u, e, "unknown value %q (want control-group, mixed, process or none)", e.val)
			ok = false
		}
	}
	if e := u.get("Service", "KillSignal"); e != nil && e.val != "SIGTERM" && e.val != "TERM" && e.val != "15" {
		l.warn(e, "not honoured: sockd stops a job with SIGTERM")
	}
	if e := u.get("Service", "NonBlocking"); e != nil {
		if b, err := sdBool(e.val); err == nil && b {
			l.warn(e, "not honoured: sockd passes its sockets in blocking mode; the service must set O_NONBLOCK itself")
		}
	}
	return ok
}

// wholeSeconds rounds d up to whole seconds.
func wholeSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64((d + time.Second - 1) / time.Second)
	return min(s, 1<<31)
}
