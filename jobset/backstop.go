package jobset

import (
	"fmt"
	"strings"

	"github.com/sockd/sockd/compat"
	"github.com/sockd/sockd/job"
)

// backstop refuses what the job file loader refuses when decoding, for
// jobs that an importer built by hand: a datagram socket in a mode that
// accepts connections, a Unix socket path longer than the kernel takes, an
// Allow or Deny entry the supervisor cannot parse, a proxy Backend sockd
// cannot connect to. A job decoded from a job file
// never trips it (Decode reported the same and gave no job).
func backstop(j *job.Job) job.Diags {
	var ds job.Diags
	for _, ep := range j.Endpoints() {
		switch {
		case j.Mode() == job.ModeInetdNowait && (strings.HasPrefix(ep.Network, "udp") || ep.Network == "unixgram"):
			ds = append(ds, diag(j, job.Error, ep.Key+".SockType", "a datagram socket cannot be served with inetd nowait (there is no connection to accept), so sockd would never start the job: use wait"))
		case strings.HasPrefix(ep.Network, "unix") && len(ep.Address) > job.MaxUnixPath:
			ds = append(ds, diag(j, job.Error, ep.Key+".SockPathName", fmt.Sprintf("path is %d bytes long; Unix socket paths are limited to %d bytes: choose a shorter path", len(ep.Address), job.MaxUnixPath)))
		}
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"SockdLimits.Allow", j.Limits.Allow}, {"SockdLimits.Deny", j.Limits.Deny}} {
		for i, s := range l.list {
			if _, err := job.ParseAccess(s); err != nil {
				ds = append(ds, diag(j, job.Error, fmt.Sprintf("%s[%d]", l.key, i), err.Error()))
			}
		}
	}
	if j.Proxy != nil {
		if err := job.CheckBackend(j.Proxy.Backend); err != nil {
			ds = append(ds, diag(j, job.Error, "SockdProxy.Backend", err.Error()))
		}
	}
	return ds
}

// diag is a diagnostic about j at key, named as j's source names it.
func diag(j *job.Job, sev job.Severity, key, msg string) job.Diag {
	return job.Diag{File: j.File, Key: compat.SourceKey(j.Source, key), Severity: sev, Msg: msg}
}

// sourceKeys names the keys of diagnostics about imported jobs as their
// sources do.
func sourceKeys(ds job.Diags, jobs []*job.Job) job.Diags {
	byFile := map[string]*job.Job{}
	for _, j := range jobs {
		byFile[j.File] = j
	}
	for i, d := range ds {
		if j, ok := byFile[d.File]; ok && d.Line == 0 {
			ds[i].Key = compat.SourceKey(j.Source, d.Key)
		}
	}
	return ds
}

// about reports whether d is about j: it names j's file, or the line of
// the file that j was imported from ("inetd.conf:12").
func about(d job.Diag, j *job.Job) bool {
	if d.File == j.File {
		return true
	}
	return d.Line > 0 && fmt.Sprintf("%s:%d", d.File, d.Line) == j.File
}
