//go:build linux

package supervisor

import (
	"time"

	"github.com/sockd/sockd/spawn"
)

// clock is the time the loop's timers and the main-process decisions
// read: the system's, or a test's fake one.
type clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) stopper
}

// stopper stops a timer of a clock.
type stopper interface{ Stop() bool }

// sysClock is the system's clock.
type sysClock struct{}

func (sysClock) Now() time.Time                              { return time.Now() }
func (sysClock) AfterFunc(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }

// now is the time by the loop's clock.
func (s *Supervisor) now() time.Time { return s.loop.clock.Now() }

// processes starts and watches the main processes of jobs (and proxy
// backends): real ones, or a test's fakes.
type processes interface {
	// start starts a process of t with fds and env.
	start(t *spawn.Template, fds []int, env []string, listenPID bool) (*spawn.Process, error)
	// watch has onExit run on the loop once p, a main process of pj, has
	// exited and been reaped.
	watch(p *spawn.Process, pj procJob, onExit func(spawn.ExitStatus))
}

// procJob is what watch needs of a main process's job.
type procJob struct {
	label        string
	abandonGroup bool
	exitTimeout  time.Duration
}

// procJobOf is the procJob of rj.
func procJobOf(rj *runJob) procJob {
	return procJob{label: rj.def.Label, abandonGroup: rj.def.AbandonProcessGroup, exitTimeout: rj.def.ExitTimeOut}
}

// realProcesses are processes started by spawn and watched by pidfd.
type realProcesses struct{ s *Supervisor }

// start gives the process its output (output.go) in place of sockd's own
// fds 1 and 2.
func (r realProcesses) start(t *spawn.Template, fds []int, env []string, listenPID bool) (*spawn.Process, error) {
	fds, env, out := r.s.out.prepare(t.Label(), fds, env)
	p, err := startWithFds(func() (*spawn.Process, error) { return t.Start(fds, env, listenPID) })
	out.started(p)
	return p, err
}

// watch keeps a record of the process while it runs (orphans.go), so that
// a sockd started after this one was killed finds it.
func (r realProcesses) watch(p *spawn.Process, pj procJob, onExit func(spawn.ExitStatus)) {
	r.s.recordStarted(pj, p.Pid)
	r.s.watchChild(p, pj.abandonGroup, func(st spawn.ExitStatus) {
		r.s.recordExited(p.Pid)
		onExit(st)
	})
}
