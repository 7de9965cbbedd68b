//go:build !linux

package spawn

import "github.com/sockd/sockd/job"

// checkRootPaths: elsewhere sockd starts nothing (see platform).
func (c *Checker) checkRootPaths(*job.Job, *problems) {}
