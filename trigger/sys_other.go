//go:build !linux

package trigger

import (
	"errors"
	"time"
)

// ErrNotSupported is returned by the kernel objects of this package where
// they do not exist (everywhere but Linux).
var ErrNotSupported = errors.New("trigger: not supported on this platform")

// Now reads the wall clock; the boot and monotonic clocks are read as the
// time since the process started.
func Now() Instant {
	d := time.Since(start)
	return Instant{Wall: time.Now().Round(0), Boot: d, Mono: d}
}

var start = time.Now()

// BootID is not known here.
func BootID() (string, error) { return "", ErrNotSupported }

// Alarm is Linux-only.
type Alarm struct{}

// NewAlarm is Linux-only.
func NewAlarm() (*Alarm, error) { return nil, ErrNotSupported }

// ClockWatch is Linux-only.
type ClockWatch struct{}

// NewClockWatch is Linux-only.
func NewClockWatch() (*ClockWatch, error) { return nil, ErrNotSupported }

// Watcher is Linux-only.
type Watcher struct{}

// NewWatcher is Linux-only.
func NewWatcher() (*Watcher, error) { return nil, ErrNotSupported }

// Mounts is Linux-only.
type Mounts struct{}

// NewMounts is Linux-only.
func NewMounts() (*Mounts, error) { return nil, ErrNotSupported }
