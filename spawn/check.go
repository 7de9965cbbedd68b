package spawn

import (
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strings"
	"sync"

	"github.com/sockd/sockd/internal/privilege"
	"github.com/sockd/sockd/job"
)

// Problem is something Check finds in a job. Key is the job-file key at
// fault, as launchd names it ("UserName", "SoftResourceLimits.NumberOfFiles");
// Msg says what goes wrong and how to fix it. A Fatal problem makes
// NewTemplate refuse the job, or every start of the job fail; the others
// are the attributes NewTemplate warns that it ignores.
type Problem struct {
	Key   string
	Msg   string
	Fatal bool
}

// Checker finds, before any template is built, every reason NewTemplate
// would refuse a job and every step of the child (Nice, resource limits,
// RootDirectory, credentials) that would fail at each start, for a sockd
// with opts and the privileges of view. It caches user and group lookups
// and is safe for concurrent use.
type Checker struct {
	opts Options
	view privilege.View

	mu     sync.Mutex
	users  map[string]lookedUp[userInfo]
	groups map[string]lookedUp[uint32]
	lists  map[string]lookedUp[[]uint32]
}

// lookedUp is one cached lookup.
type lookedUp[T any] struct {
	v   T
	err error
}

// NewChecker returns a Checker for the templates NewTemplate(j, opts)
// builds in a sockd with the privileges of view.
func NewChecker(opts Options, view privilege.View) *Checker {
	return &Checker{opts: opts, view: view,
		users: map[string]lookedUp[userInfo]{}, groups: map[string]lookedUp[uint32]{}, lists: map[string]lookedUp[[]uint32]{}}
}

// Runs reports whether sockd starts a process for j (the supervisor builds
// templates only for those): not for an internal service or a proxy to a
// backend sockd does not start.
func Runs(j *job.Job) bool {
	return j.Path != "" || len(j.Argv) > 0 || j.Program != "" || len(j.ProgramArguments) > 0
}

// Check returns the problems of j, in NewTemplate's order.
func (c *Checker) Check(j *job.Job) []Problem {
	if err := c.platform(); err != nil {
		return []Problem{{Key: "Program", Msg: err.Error(), Fatal: true}}
	}
	var ps problems
	if !c.checkProgram(j, &ps) {
		return ps.list
	}
	c.checkCredentials(j, &ps)
	checkStrings(j, &ps)
	c.checkRootPaths(j, &ps)
	c.checkNice(j, &ps)
	c.checkLimits(j, &ps)
	return ps.list
}

// problems collects a job's problems.
type problems struct{ list []Problem }

func (p *problems) fatal(key, format string, args ...any) {
	p.list = append(p.list, Problem{Key: key, Msg: fmt.Sprintf(format, args...), Fatal: true})
}

func (p *problems) warn(key, format string, args ...any) {
	p.list = append(p.list, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// checkProgram mirrors NewTemplate's argv and path; false when nothing
// else can be checked.
func (c *Checker) checkProgram(j *job.Job, ps *problems) bool {
	argv := j.Argv
	if len(argv) == 0 {
		argv = j.ProgramArguments
	}
	if len(argv) == 0 && j.Program != "" {
		argv = []string{j.Program}
	}
	if len(argv) == 0 {
		ps.fatal("ProgramArguments", "missing: the job needs ProgramArguments or Program")
		return false
	}
	if j.Path == "" {
		name := j.Program
		if name == "" {
			name = argv[0]
		}
		if _, err := exec.LookPath(name); err != nil {
			ps.fatal("Program", "%v: sockd does not load the job: install the program or give its absolute path", err)
			return false
		}
	}
	ok := true
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			ps.fatal(fmt.Sprintf("ProgramArguments[%d]", i), "contains a NUL byte, which no argument can carry: remove it")
			ok = false
		}
	}
	return ok
}

// checkCredentials mirrors NewTemplate's user and group handling, and
// what the child's chroot, setgroups, setresgid and setresuid need.
func (c *Checker) checkCredentials(j *job.Job, ps *problems) {
	userName, groupName := j.UserName, j.GroupName
	known := c.checkKnown(userName, groupName, ps)
	if !c.opts.AsRoot {
		if known {
			c.checkOwnCredentials(userName, groupName, ps)
		}
		if j.RootDirectory != "" {
			ps.fatal("RootDirectory", "needs a sockd running as root (chroot(2)); this one runs as %s and cannot honour it, so the job is not loaded: remove RootDirectory, or load the job in root's sockd", c.whoami())
		}
		return
	}
	if j.RootDirectory != "" && !c.view.Has(privilege.CapSysChroot) {
		ps.fatal("RootDirectory", "chroot(2) needs CAP_SYS_CHROOT, which this sockd lacks, so every start would fail: remove RootDirectory, or give sockd the capability")
	}
	if groupName != "" && userName == "" {
		userName = "root" // launchd: GroupName alone makes the user root
	}
	if userName == "" {
		return
	}
	u, err := c.user(userName)
	if err != nil {
		if !isUnknown(err) {
			ps.fatal("UserName", "%v: sockd does not load the job", err)
		}
		return
	}
	gid := u.gid
	if groupName != "" {
		g, err := c.group(groupName)
		if err != nil {
			if !isUnknown(err) {
				ps.fatal("GroupName", "%v: sockd does not load the job", err)
			}
			return
		}
		gid = g
	}
	if j.InitGroups {
		if _, err := c.groupList(userName, gid); err != nil {
			ps.fatal("InitGroups", "%v: sockd does not load the job: give the job only its primary group, or fix the group database", err)
			return
		}
	}
	c.checkSetid(u.uid, gid, ps)
}

// checkOwnCredentials: a sockd not running as root runs every job as
// itself, so a UserName other than its own user, or a GroupName other than
// its own group, would run the job as someone else than the file says: an
// error, as NewTemplate refuses it.
func (c *Checker) checkOwnCredentials(userName, groupName string, ps *problems) {
	if userName != "" {
		u, err := c.user(userName)
		switch {
		case err != nil:
			ps.fatal("UserName", "%v: sockd does not load the job", err)
		case int(u.uid) != c.view.UID:
			ps.fatal("UserName", "%q: sockd is not running as root, so it cannot run the job as that user and does not load it (it would run as %s): remove UserName, or load the job in root's sockd", userName, c.whoami())
		}
	}
	if groupName != "" {
		g, err := c.group(groupName)
		switch {
		case err != nil:
			ps.fatal("GroupName", "%v: sockd does not load the job", err)
		case c.view.GID < 0 || int(g) != c.view.GID:
			ps.fatal("GroupName", "%q: sockd is not running as root, so it cannot run the job with that group and does not load it (it would run with %s): remove GroupName, or load the job in root's sockd", groupName, c.ownGroup())
		}
	}
}

// ownGroup names the group a non-root sockd runs its jobs with.
func (c *Checker) ownGroup() string {
	if c.view.GID < 0 {
		return "its own group"
	}
	if g, err := user.LookupGroupId(fmt.Sprint(c.view.GID)); err == nil {
		return fmt.Sprintf("group %s (gid %d)", g.Name, c.view.GID)
	}
	return fmt.Sprintf("gid %d", c.view.GID)
}

// checkKnown reports a UserName or GroupName this machine does not know,
// whoever sockd runs as: the file names an account that is not there. It
// returns false when it reported one.
func (c *Checker) checkKnown(userName, groupName string, ps *problems) bool {
	ok := true
	if userName != "" {
		if _, err := c.user(userName); isUnknown(err) {
			ps.fatal("UserName", "user %q does not exist on this machine, so sockd does not load the job: create the user (useradd %s) or name an existing one", userName, userName)
			ok = false
		}
	}
	if groupName != "" {
		if _, err := c.group(groupName); isUnknown(err) {
			ps.fatal("GroupName", "group %q does not exist on this machine, so sockd does not load the job: create the group (groupadd %s) or name an existing one", groupName, groupName)
			ok = false
		}
	}
	return ok
}

// checkSetid reports credentials the child could not take: setgroups
// always needs CAP_SETGID, a uid or gid other than sockd's CAP_SETUID or
// CAP_SETGID.
func (c *Checker) checkSetid(uid, gid uint32, ps *problems) {
	if !c.view.Has(privilege.CapSetgid) {
		ps.fatal("UserName", "setting the job's groups needs CAP_SETGID, which this sockd lacks, so every start would fail: run the job as sockd's own user (no user or group), or give sockd the capability")
		return
	}
	if int(uid) != c.view.UID && !c.view.Has(privilege.CapSetuid) {
		ps.fatal("UserName", "becoming uid %d needs CAP_SETUID, which this sockd lacks, so every start would fail: run the job as sockd's own user, or give sockd the capability", uid)
	}
}

// whoami names the user a non-root sockd runs its jobs as.
func (c *Checker) whoami() string {
	if c.view.User != "" {
		return c.view.User
	}
	return fmt.Sprintf("uid %d", c.view.UID)
}

func isUnknown(err error) bool {
	return errors.As(err, new(user.UnknownUserError)) || errors.As(err, new(user.UnknownGroupError))
}

// checkStrings mirrors NewTemplate's environment and path strings.
func checkStrings(j *job.Job, ps *problems) {
	for _, v := range j.EnvironmentVariables {
		if v.Name == "" || strings.ContainsAny(v.Name, "=\x00") {
			ps.fatal("EnvironmentVariables", "%q is not a variable name: remove it", v.Name)
		} else if strings.IndexByte(v.Value, 0) >= 0 {
			ps.fatal("EnvironmentVariables."+v.Name, "contains a NUL byte, which no variable can carry: remove it")
		}
	}
	for _, s := range [][2]string{{"Program", j.Path}, {"RootDirectory", j.RootDirectory}, {"WorkingDirectory", j.WorkingDirectory},
		{"StandardInPath", j.StandardInPath}, {"StandardOutPath", j.StandardOutPath}, {"StandardErrorPath", j.StandardErrorPath}} {
		if strings.IndexByte(s[1], 0) >= 0 {
			ps.fatal(s[0], "contains a NUL byte, which no path can carry: remove it")
		}
	}
}

// Nice values the child can be given (setpriority clamps to -20..19).
const (
	niceLowest  = -20
	niceHighest = 20
)

// checkNice: lowering the nice value below sockd's own needs CAP_SYS_NICE
// or an RLIMIT_NICE that allows it (setpriority(2)), else every start
// fails with EACCES.
func (c *Checker) checkNice(j *job.Job, ps *problems) {
	if j.Nice == nil {
		return
	}
	n := *j.Nice
	if n < niceLowest || n > niceHighest {
		ps.warn("Nice", "%d ignored: outside %d..%d", n, niceLowest, niceHighest)
		return
	}
	if n >= c.view.Nice || c.view.Has(privilege.CapSysNice) {
		return
	}
	if rl, ok := c.view.Limits[rlimitNice]; ok && uint64(20-n) <= rl.Cur {
		return
	}
	ps.fatal("Nice", "%d is below sockd's own nice value %d, and raising a priority needs CAP_SYS_NICE (or an RLIMIT_NICE of %d), which this sockd lacks, so every start would fail: use %d or more, or leave the nice value unset",
		n, c.view.Nice, 20-n, c.view.Nice)
}

// checkLimits mirrors NewTemplate's merge of the resource limits by
// resource and the child's prlimit: the limit kept from sockd where the
// job sets one half only, a soft limit above the hard one, a hard limit
// above sockd's without CAP_SYS_RESOURCE, NumberOfFiles above fs.nr_open.
func (c *Checker) checkLimits(j *job.Job, ps *problems) {
	ls, err := mergeLimits(j)
	if err != nil {
		ps.fatal("SoftResourceLimits", "%v", err)
		return
	}
	for _, l := range ls {
		c.checkLimit(l, ps)
	}
}

// limit is one resource as the child sets it.
type limit struct {
	name             string
	resource         int
	soft, hard       uint64
	setSoft, setHard bool
	softKey, hardKey string
}

func mergeLimits(j *job.Job) ([]*limit, error) {
	var out []*limit
	find := func(l job.RLimit) (*limit, error) {
		for _, x := range out {
			if x.resource == l.Resource {
				return x, nil
			}
		}
		if len(out) == maxRlimits {
			return nil, fmt.Errorf("more than %d resource limits", maxRlimits)
		}
		if l.Resource < 0 {
			return nil, fmt.Errorf("%s: resource %d is not available here", l.Name, l.Resource)
		}
		x := &limit{name: l.Name, resource: l.Resource}
		out = append(out, x)
		return x, nil
	}
	for _, l := range j.SoftResourceLimits {
		x, err := find(l)
		if err != nil {
			return nil, err
		}
		x.soft, x.setSoft, x.softKey = l.Value, true, "SoftResourceLimits."+l.Name
	}
	for _, l := range j.HardResourceLimits {
		x, err := find(l)
		if err != nil {
			return nil, err
		}
		x.hard, x.setHard, x.hardKey = l.Value, true, "HardResourceLimits."+l.Name
	}
	return out, nil
}

func (c *Checker) checkLimit(l *limit, ps *problems) {
	cur, known := c.view.Limits[l.resource]
	soft, hard := l.soft, l.hard
	if !l.setSoft || !l.setHard {
		if !known {
			return
		}
		if !l.setSoft {
			soft = cur.Cur
		}
		if !l.setHard {
			hard = cur.Max
		}
		if l.setHard && !l.setSoft && soft > hard {
			soft = hard
		}
	}
	switch {
	case soft > hard && l.setHard:
		ps.fatal(l.softKey, "%s is above the hard limit %s of HardResourceLimits, so every start would fail (EINVAL): lower the soft limit or raise the hard one", rlimText(soft), rlimText(hard))
	case soft > hard:
		ps.fatal(l.softKey, "%s is above sockd's hard limit %s, which the job keeps, so every start would fail (EINVAL): set HardResourceLimits.%s too (sockd must be allowed to raise it), or lower the soft limit", rlimText(soft), rlimText(hard), l.name)
	case l.resource == rlimitNofile && c.view.NrOpen > 0 && hard > c.view.NrOpen:
		ps.fatal(l.keyOf(), "%s is above this kernel's fs.nr_open (%d), which no process may exceed, so every start would fail (EPERM): use %d or less", rlimText(hard), c.view.NrOpen, c.view.NrOpen)
	case known && hard > cur.Max && !c.view.Has(privilege.CapSysResource):
		ps.fatal(l.keyOf(), "%s is above sockd's own hard limit %s, and raising a hard limit needs CAP_SYS_RESOURCE, which this sockd lacks, so every start would fail (EPERM): use %s or less, or start sockd with a higher limit (LimitNOFILE= in its systemd unit, ulimit -H)",
			rlimText(hard), rlimText(cur.Max), rlimText(cur.Max))
	}
}

// keyOf names the key that sets the hard limit: HardResourceLimits when
// the job sets it, else the soft limit that the hard one follows.
func (l *limit) keyOf() string {
	if l.setHard {
		return l.hardKey
	}
	return l.softKey
}

func rlimText(v uint64) string {
	if v == ^uint64(0) {
		return "unlimited"
	}
	return fmt.Sprint(v)
}
