package domain

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"

	"github.com/sockd/sockd/internal/privilege"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/jobset"
)

// Load loads the jobs of domain d: its jobs directory (JobsDir) when dir
// is true, and the files bootstrapped into it, read with the user's rights and judged as
// the user's own sockd would judge them (a port below
// ip_unprivileged_port_start, a UserName of another user, a negative Nice,
// a limit above the hard one, a RootDirectory: errors). The jobs that pass
// are adopted: their labels qualified, run as the user.
func Load(d *job.Domain, dir bool, files []string, base jobset.Options) *jobset.Set {
	opts := base
	opts.View = userView(d)
	if os.Geteuid() != d.UID {
		cred := d.Cred()
		opts.ReadAs = &cred
	}
	opts.MissingOK = true
	opts.SkipPermissions = false
	var src jobset.Sources
	if dir {
		src.Paths = []string{JobsDir(d)}
	}
	src.Paths = append(src.Paths, files...)
	set := jobset.Load(src, opts)
	set.Diags = append(ownedFiles(d, files), set.Diags...)
	var adopted []*job.Job
	for _, j := range set.Jobs {
		if ds := adopt(d, j); ds.HasErrors() {
			set.Diags = append(set.Diags, ds...)
			continue
		}
		adopted = append(adopted, j)
	}
	var ds job.Diags
	set.Jobs, ds = reachable(d, adopted)
	set.Diags = append(set.Diags, ds...)
	return set
}

// userView is the sockd the user could run themselves: no capabilities,
// the user's groups, this process's nice value and limits (a user's
// process may lower them, never raise a hard limit).
func userView(d *job.Domain) privilege.View {
	v := privilege.For(d.UID)
	v.GID, v.Groups, v.User = d.GID, append([]int(nil), d.Groups...), d.User
	v.Ports = d.Ports
	return v
}

// ownedFiles refuses a bootstrapped file the user does not own: root may
// place a file for the user, but it must end up the user's.
func ownedFiles(d *job.Domain, files []string) job.Diags {
	var ds job.Diags
	for _, f := range files {
		fi, err := os.Lstat(f)
		if err != nil {
			continue // the loader reports it
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != d.UID {
			ds = append(ds, job.Diag{File: f, Severity: job.Error, Msg: fmt.Sprintf(
				"is owned by uid %d, not by %s (uid %d), whose domain it is bootstrapped into; a job of a user domain must be its user's file: chown %d %s",
				st.Uid, d.User, d.UID, d.UID, f)})
		}
	}
	return ds
}

// adopt makes j a job of d: it runs as d's user (a UserName or GroupName
// naming anyone else is an error), its label and the labels it names are
// qualified, and it carries the domain, whose user's rights its sockets
// are made with.
func adopt(d *job.Domain, j *job.Job) job.Diags {
	var ds job.Diags
	fail := func(key, format string, args ...any) {
		ds = append(ds, job.Diag{File: j.File, Key: key, Severity: job.Error, Msg: fmt.Sprintf(format, args...)})
	}
	if j.UserName != "" && j.UserName != d.User && j.UserName != strconv.Itoa(d.UID) {
		fail("UserName", "%q: the jobs of %s run as %s, its user, and no one else: remove UserName", j.UserName, Name(d.UID), d.User)
	}
	if j.GroupName != "" && !inGroups(d, j.GroupName) {
		fail("GroupName", "%q is not a group of %s, whose domain the job is in: remove GroupName, or name one of the user's groups", j.GroupName, d.User)
	}
	if j.Proxy != nil {
		fail("SockdProxy", "proxy jobs are not served in a user domain: sockd would connect to the backend with root's rights; run the proxy in the user's own sockd (sockd serve as %s)", d.User)
	}
	for i, oc := range j.KeepAlive.OtherJobEnabled {
		uid, bare, ok := Split(oc.Label)
		switch {
		case !ok:
			j.KeepAlive.OtherJobEnabled[i].Label = Qualify(d.UID, oc.Label)
		case uid == -1:
			j.KeepAlive.OtherJobEnabled[i].Label = bare
		case uid != d.UID:
			fail(fmt.Sprintf("KeepAlive.OtherJobEnabled.%s", oc.Label), "names a job of another user's domain, which %s may not see: name a job of %s or of the system domain", d.User, Name(d.UID))
		}
	}
	if ds.HasErrors() {
		return ds
	}
	j.UserName = d.User
	j.Label = Qualify(d.UID, j.Label)
	j.Domain = d
	return ds
}

// inGroups reports whether name (a group name or gid) is one of d's
// groups.
func inGroups(d *job.Domain, name string) bool {
	gid, err := strconv.Atoi(name)
	if err != nil {
		if g, lerr := lookupGroup(name); lerr == nil {
			gid = g
		} else {
			return false
		}
	}
	for _, g := range d.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// reachable refuses a job that watches a path its user cannot reach
// (WatchPaths, QueueDirectories, KeepAlive PathState): sockd watches as
// root, and would otherwise tell the user about files they may not see.
// The paths are looked up with the user's rights.
func reachable(d *job.Domain, jobs []*job.Job) ([]*job.Job, job.Diags) {
	bad := make([]job.Diags, len(jobs))
	err := asUser(d, func() {
		for i, j := range jobs {
			bad[i] = unreachablePaths(d, j)
		}
	})
	if err != nil {
		return nil, job.Diags{{File: JobsDir(d), Severity: job.Error, Msg: fmt.Sprintf("cannot check the jobs' paths with %s's rights: %v", d.User, err)}}
	}
	var out []*job.Job
	var ds job.Diags
	for i, j := range jobs {
		if bad[i].HasErrors() {
			ds = append(ds, bad[i]...)
			continue
		}
		out = append(out, j)
	}
	return out, ds
}

// unreachablePaths are the watched paths of j that the calling thread's
// user cannot look up (search permission on the way) or, for a queue
// directory, read.
func unreachablePaths(d *job.Domain, j *job.Job) job.Diags {
	var ds job.Diags
	check := func(key, path string, list bool) {
		var err error
		if list {
			var f *os.File
			if f, err = os.Open(path); err == nil {
				f.Close()
			}
		} else {
			_, err = os.Lstat(path)
		}
		if errors.Is(err, fs.ErrPermission) {
			ds = append(ds, job.Diag{File: j.File, Key: key, Severity: job.Error, Msg: fmt.Sprintf(
				"%s cannot reach %s (%v), so its job may not watch it: sockd watches with %s's rights in a user domain; choose a path the user can reach", d.User, path, err, d.User)})
		}
	}
	for i, p := range j.Triggers.WatchPaths {
		check(fmt.Sprintf("WatchPaths[%d]", i), p, false)
	}
	for i, p := range j.Triggers.QueueDirectories {
		check(fmt.Sprintf("QueueDirectories[%d]", i), p, true)
	}
	for _, pc := range j.KeepAlive.PathState {
		check("KeepAlive.PathState."+pc.Path, pc.Path, false)
	}
	return ds
}

// asUser runs f with d's user's rights: on a thread of its own with the
// user's credentials, or right here when this process is the user.
func asUser(d *job.Domain, f func()) error {
	if os.Geteuid() == d.UID {
		f()
		return nil
	}
	return privilege.RunAs(d.Cred(), f)
}
