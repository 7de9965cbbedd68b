package spawn

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/safepath"
	"github.com/sockd/sockd/job"
)

// checkRootPaths refuses, for a job that root sockd runs as root, a
// standard path, WorkingDirectory or RootDirectory that another user can
// change: through it that user could point a root process at any file
// (StandardOutPath -> /root/.ssh/authorized_keys) or give it a root file
// system of the user's making. The paths are judged as the child resolves
// them: the standard paths inside RootDirectory.
func (c *Checker) checkRootPaths(j *job.Job, ps *problems) {
	if !c.opts.AsRoot || !c.runsAsRoot(j) {
		return
	}
	if j.RootDirectory != "" {
		c.checkRootDir(ps, "RootDirectory", j.RootDirectory)
	}
	if j.WorkingDirectory != "" {
		c.checkRootDir(ps, "WorkingDirectory", inRoot(j, j.WorkingDirectory))
	}
	for _, s := range [][2]string{{"StandardInPath", j.StandardInPath}, {"StandardOutPath", j.StandardOutPath}, {"StandardErrorPath", j.StandardErrorPath}} {
		if s[1] != "" {
			c.checkRootFile(ps, s[0], inRoot(j, s[1]))
		}
	}
}

// runsAsRoot reports whether the job's process runs as uid 0.
func (c *Checker) runsAsRoot(j *job.Job) bool {
	if j.UserName == "" {
		return true // GroupName alone: launchd runs the job as root
	}
	u, err := c.user(j.UserName)
	return err == nil && u.uid == 0
}

// inRoot is where the child finds path: inside RootDirectory when set.
func inRoot(j *job.Job, path string) string {
	if j.RootDirectory == "" || !filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(j.RootDirectory, path)
}

// checkRootDir refuses a directory a root process would use whose path,
// or which itself, another user can change.
func (c *Checker) checkRootDir(ps *problems, key, dir string) {
	fd, safe, err := safepath.WalkDir(dir)
	if err != nil {
		reportWalk(ps, key, dir, err)
		return
	}
	defer unix.Close(fd)
	others, owner, err := safepath.WritableByOthers(fd)
	switch {
	case err != nil:
		return
	case !safe:
		ps.fatal(key, "%s: a directory above it can be changed by a user other than root, and the job runs as root: "+rootPathFix, dir)
	case others:
		ps.fatal(key, "%s can be changed by uid %d (its owner, or any user: it is writable by others), and the job runs as root: "+rootPathFix, dir, owner)
	}
}

// checkRootFile refuses a file a root process would open whose directory
// another user can change (a user could put a link there; a sticky
// directory such as /tmp is no exception), or which is a link there.
func (c *Checker) checkRootFile(ps *problems, key, path string) {
	dir := filepath.Dir(path)
	fd, safe, err := safepath.WalkDir(dir)
	if err != nil {
		reportWalk(ps, key, dir, err)
		return
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return
	}
	switch {
	case !safe:
		ps.fatal(key, "%s: a directory above it can be changed by a user other than root, and the job runs as root: "+rootPathFix, path)
	case st.Uid != 0 || st.Mode&0o022 != 0:
		ps.fatal(key, "%s is in %s, which a user other than root can write (owner uid %d, mode %o), and the job runs as root: "+
			"that user could make the name a link to any file; "+rootPathFix, path, dir, st.Uid, st.Mode&0o7777)
	}
}

const rootPathFix = "set UserName to the user who owns it, or use a path only root can change"

// reportWalk turns a failed walk into a problem: a link another user can
// change is refused; a path that does not exist yet is left to the start.
func reportWalk(ps *problems, key, dir string, err error) {
	var ul *safepath.UntrustedLinkError
	if errors.As(err, &ul) {
		ps.fatal(key, "%v (the job runs as root)", err)
		return
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EACCES) {
		return
	}
	ps.warn(key, "%s: %v", dir, fmt.Errorf("cannot check who can change it: %w", err))
}
