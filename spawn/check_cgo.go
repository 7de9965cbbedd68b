//go:build linux && cgo

package spawn

/*
#include "spawn_linux.h"
*/
import "C"

import (
	"fmt"

	"golang.org/x/sys/unix"
)

const (
	rlimitNice   = unix.RLIMIT_NICE
	rlimitNofile = unix.RLIMIT_NOFILE
	maxRlimits   = C.SOCKD_MAX_RLIMITS
)

// platform is nil where NewTemplate can build templates.
func (c *Checker) platform() error { return nil }

// user, group and groupList are lookupUser, lookupGroup and groupList,
// cached: thousands of jobs often name a handful of users.
func (c *Checker) user(name string) (userInfo, error) {
	return cached(c, c.users, name, func() (userInfo, error) { return lookupUser(name) })
}

func (c *Checker) group(name string) (uint32, error) {
	return cached(c, c.groups, name, func() (uint32, error) { return lookupGroup(name) })
}

func (c *Checker) groupList(name string, gid uint32) ([]uint32, error) {
	return cached(c, c.lists, fmt.Sprintf("%s\x00%d", name, gid), func() ([]uint32, error) { return groupList(name, gid) })
}

func cached[T any](c *Checker, m map[string]lookedUp[T], key string, f func() (T, error)) (T, error) {
	c.mu.Lock()
	r, ok := m[key]
	c.mu.Unlock()
	if !ok {
		r.v, r.err = f()
		c.mu.Lock()
		m[key] = r
		c.mu.Unlock()
	}
	return r.v, r.err
}
