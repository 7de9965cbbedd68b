//go:build linux && cgo

package spawn

/*
#include "spawn_linux.h"
*/
import "C"

import "github.com/sockd/sockd/job"

// Credentials are the uid, primary gid and supplementary groups a job's
// process runs with.
type Credentials struct {
	UID, GID uint32
	Groups   []uint32
}

// Credentials returns what t's process runs as; ok is false when it keeps
// sockd's own credentials (no UserName or GroupName, or sockd is not
// root).
func (t *Template) Credentials() (c Credentials, ok bool) {
	if t.req.flags&C.SOCKD_CREDS == 0 {
		return Credentials{}, false
	}
	return Credentials{UID: uint32(t.req.uid), GID: uint32(t.req.gid), Groups: append([]uint32(nil), t.groups...)}, true
}

// JobCredentials resolves j's UserName, GroupName and InitGroups as
// NewTemplate does for a sockd running as root, for a job sockd acts for
// without a process of its own (an external proxy backend); ok is false
// when j sets neither UserName nor GroupName.
func JobCredentials(j *job.Job) (c Credentials, ok bool, err error) {
	userName := j.UserName
	if userName == "" && j.GroupName == "" {
		return Credentials{}, false, nil
	}
	if userName == "" {
		userName = "root" // launchd: GroupName alone makes the user root
	}
	u, err := lookupUser(userName)
	if err != nil {
		return Credentials{}, false, err
	}
	gid := u.gid
	if j.GroupName != "" {
		if gid, err = lookupGroup(j.GroupName); err != nil {
			return Credentials{}, false, err
		}
	}
	groups := []uint32{gid}
	if j.InitGroups {
		if groups, err = groupList(userName, gid); err != nil {
			return Credentials{}, false, err
		}
	}
	return Credentials{UID: u.uid, GID: gid, Groups: groups}, true, nil
}
