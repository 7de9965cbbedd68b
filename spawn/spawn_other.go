//go:build !linux || !cgo

package spawn

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/job"
)

// Template is everything fixed at load for one job's process. Without
// Linux and cgo no template can be built.
type Template struct{ label, path string }

// NewTemplate fails: the spawner needs Linux with cgo.
func NewTemplate(j *job.Job, opts Options) (*Template, []string, error) {
	return nil, nil, errNeedsCgo
}

// Label is the job's label.
func (t *Template) Label() string { return t.label }

// Path is the executable started.
func (t *Template) Path() string { return t.path }

// Env returns the environment every start gets.
func (t *Template) Env() []string { return nil }

// Start fails: the spawner needs Linux with cgo.
func (t *Template) Start(fds []int, extraEnv []string, listenPID bool) (*Process, error) {
	return nil, errNeedsCgo
}

// StartAsync fails: the spawner needs Linux with cgo.
func (t *Template) StartAsync(fds []int, extraEnv []string) (*Process, error) {
	return nil, errNeedsCgo
}

// Process is one started process.
type Process struct {
	Pid      int
	Started  time.Time
	Warnings []error
}

// Pidfd is the process's pidfd.
func (p *Process) Pidfd() int { return -1 }

// Signal sends sig to the process.
func (p *Process) Signal(sig unix.Signal) error { return errNeedsCgo }

// SignalGroup sends sig to the process group.
func (p *Process) SignalGroup(sig unix.Signal) error { return errNeedsCgo }

// Reap collects the exit status.
func (p *Process) Reap() (ExitStatus, bool, error) { return ExitStatus{}, false, errNeedsCgo }

// errNeedsCgo is returned where the spawner is not available.
var errNeedsCgo = errors.New("spawn: needs linux with cgo")

// ReserveLowFds does nothing where starts are not supported.
func ReserveLowFds() error { return nil }

// QuietChildExits does nothing where starts are not supported.
func QuietChildExits() error { return nil }

// Adopt is Linux only.
func Adopt(pid int, started time.Time) (*Process, error) { return nil, errNeedsCgo }
