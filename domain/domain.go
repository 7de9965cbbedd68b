// Package domain is the system sockd's user domains (sockd bootstrap
// user/UID): the jobs of one user, read from that user's jobs directory and
// run and bound with that user's rights, never more. It names domains and
// the labels of their jobs ("user/1000/org.example.agent"), looks a
// domain's user up, and loads a domain's jobs through the one loader
// (jobset), judged as the user's own sockd would judge them, then adopts
// them into the domain.
package domain

import (
	"fmt"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sockd/sockd/job"
)

const (
	userPrefix   = "user/"
	systemPrefix = "system/"
)

// System is the name of the system domain: the jobs of sockd's own
// sources.
const System = "system"

// Name is the name of uid's domain: "user/1000".
func Name(uid int) string { return userPrefix + strconv.Itoa(uid) }

// Parse reads a domain name: "user/1000" gives 1000, true; "system" gives
// -1, true.
func Parse(s string) (uid int, ok bool) {
	if s == System {
		return -1, true
	}
	rest, ok := strings.CutPrefix(s, userPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || strconv.Itoa(n) != rest {
		return 0, false
	}
	return n, true
}

// Qualify is the label of a job of uid's domain as sockd knows it:
// "user/1000/org.example.agent".
func Qualify(uid int, label string) string { return Name(uid) + "/" + label }

// Split takes a label apart: "user/1000/x" gives 1000, "x", true;
// "system/x" gives -1, "x", true; a bare label gives ok false.
func Split(label string) (uid int, bare string, ok bool) {
	if rest, ok := strings.CutPrefix(label, systemPrefix); ok {
		return -1, rest, true
	}
	rest, ok := strings.CutPrefix(label, userPrefix)
	if !ok {
		return 0, "", false
	}
	num, bare, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, "", false
	}
	uid, ok = Parse(userPrefix + num)
	if !ok || bare == "" {
		return 0, "", false
	}
	return uid, bare, true
}

// Lookup finds the user of uid's domain in the user database, with every
// group they are in.
func Lookup(uid int) (*job.Domain, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return nil, fmt.Errorf("domain %s: no such user: %w", Name(uid), err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("domain %s: user %s: primary group %q: %w", Name(uid), u.Username, u.Gid, err)
	}
	d := &job.Domain{UID: uid, GID: gid, User: u.Username, Home: u.HomeDir, Groups: []int{gid}}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("domain %s: groups of %s: %w", Name(uid), u.Username, err)
	}
	for _, s := range ids {
		if g, err := strconv.Atoi(s); err == nil && g != gid {
			d.Groups = append(d.Groups, g)
		}
	}
	return d, nil
}

// JobsDir is the directory a domain's jobs come from: the user's
// ~/.config/sockd/jobs, where the user's own sockd reads them by default
// (with XDG_CONFIG_HOME unset: the system sockd cannot know a variable of
// a session that may not exist).
func JobsDir(d *job.Domain) string {
	return filepath.Join(d.Home, ".config", "sockd", "jobs")
}

// lookupGroup is the gid of the group called name.
func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}
