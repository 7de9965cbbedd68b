package job

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// defaultPath is the search path when neither the job nor sockd has PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// resolveProgram fills Path and Argv. Program is used as written (no PATH
// search, as launchd's posix_spawn); otherwise ProgramArguments[0] is
// looked up on PATH (the job's EnvironmentVariables PATH if it sets one,
// else sockd's), as launchd's posix_spawnp does in the child. A missing or
// non-executable program is a warning: the job loads and its start fails.
func (d *decoder) resolveProgram(j *Job) {
	hasProgram := j.Program != "" || len(j.ProgramArguments) > 0
	if j.Internal != "" {
		if hasProgram {
			d.warnf("ProgramArguments", "ignored: a SockdInternal job runs no program")
		}
		return
	}
	if !hasProgram {
		if j.Proxy != nil {
			return // a proxy to a backend sockd does not start
		}
		if d.hasDiagFor("Program") || d.hasDiagFor("ProgramArguments") {
			return // already reported (wrong type, empty)
		}
		d.errorf("ProgramArguments", "missing: the job needs ProgramArguments (the command and its arguments) or Program (the path of the program to run)")
		return
	}
	argv := j.ProgramArguments
	if len(argv) == 0 {
		argv = []string{j.Program}
	}
	j.Argv = append([]string(nil), argv...)

	key, path := "Program", j.Program
	if path == "" {
		key, path = "ProgramArguments[0]", argv[0]
		if path == "" {
			d.errorf(key, "is empty: give the program to run")
			return
		}
		if !strings.Contains(path, "/") {
			found, ok := d.programs.lookPath(path, d.searchPath(j), j.RootDirectory)
			if !ok {
				j.Path = path
				d.warnf(key, "program %q was not found on PATH (%s); the job loads but will fail to start until it is installed", path, d.searchPath(j))
				return
			}
			path = found
		}
	}
	j.Path = path
	if !filepath.IsAbs(path) {
		d.warnf(key, "%q is not an absolute path; it is resolved against the job's working directory at each start: prefer an absolute path", path)
		return
	}
	checkPath := path
	if j.RootDirectory != "" {
		checkPath = filepath.Join(j.RootDirectory, path)
	}
	fi, err := d.programs.stat(checkPath)
	switch {
	case err != nil && os.IsNotExist(err):
		d.warnf(key, "program %s does not exist; the job loads but will fail to start until it is installed", checkPath)
	case err != nil:
		d.warnf(key, "cannot check program %s: %v", checkPath, err)
	case fi.IsDir():
		d.warnf(key, "program %s is a directory, not a program; the job will fail to start", checkPath)
	case fi.Mode()&0o111 == 0:
		d.warnf(key, "program %s is not executable (mode %#o); the job will fail to start: chmod +x %s", checkPath, uint32(fi.Mode().Perm()), checkPath)
	}
}

func (d *decoder) hasDiagFor(key string) bool {
	for _, x := range d.diags {
		if x.Key == key || strings.HasPrefix(x.Key, key+"[") {
			return true
		}
	}
	return false
}

// searchPath is the PATH the job's program is looked up on.
func (d *decoder) searchPath(j *Job) string {
	for _, e := range j.EnvironmentVariables {
		if e.Name == "PATH" {
			return e.Value
		}
	}
	if p := os.Getenv("PATH"); p != "" {
		return p
	}
	return defaultPath
}

// lookPath finds an executable regular file named name in the absolute
// directories of path (relative entries are skipped, as a daemon's working
// directory is arbitrary), under root when it is set.
func (c *ProgramCache) lookPath(name, path, root string) (string, bool) {
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := c.stat(filepath.Join(root, p))
		if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// ProgramCache remembers, for one load of many job files, what stat(2)
// said of each program path: 10,000 jobs that run /bin/true look it up
// once. A load makes one and drops it, so the next load sees a program
// installed or removed since. Safe for concurrent use; a nil cache looks
// every path up.
type ProgramCache struct {
	mu sync.Mutex
	m  map[string]statResult
}

type statResult struct {
	fi  os.FileInfo
	err error
}

// NewProgramCache returns an empty cache.
func NewProgramCache() *ProgramCache { return &ProgramCache{m: map[string]statResult{}} }

// stat is os.Stat(path), from the cache when it has the path.
func (c *ProgramCache) stat(path string) (os.FileInfo, error) {
	if c == nil {
		return os.Stat(path)
	}
	c.mu.Lock()
	r, ok := c.m[path]
	c.mu.Unlock()
	if ok {
		return r.fi, r.err
	}
	fi, err := os.Stat(path)
	c.mu.Lock()
	c.m[path] = statResult{fi, err}
	c.mu.Unlock()
	return fi, err
}
