//go:build !linux || !cgo

package spawn

import "github.com/sockd/sockd/job"

// Credentials are the uid, primary gid and supplementary groups a job's
// process runs with.
type Credentials struct {
	UID, GID uint32
	Groups   []uint32
}

// Credentials reports none: no template exists here.
func (t *Template) Credentials() (c Credentials, ok bool) { return Credentials{}, false }

// JobCredentials fails: resolving users needs Linux with cgo here.
func JobCredentials(j *job.Job) (c Credentials, ok bool, err error) {
	if j.UserName == "" && j.GroupName == "" {
		return Credentials{}, false, nil
	}
	return Credentials{}, false, errNeedsCgo
}
