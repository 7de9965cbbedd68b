//go:build linux

package trigger

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Now reads the three clocks of an Instant, one right after the other
// (the monotonic clock first, so that Boot-Mono, the time spent
// suspended, is never negative).
func Now() Instant {
	mono := sinceZero(unix.CLOCK_MONOTONIC)
	boot := sinceZero(unix.CLOCK_BOOTTIME)
	return Instant{Wall: time.Unix(readClock(unix.CLOCK_REALTIME)), Boot: boot, Mono: mono}
}

func readClock(id int32) (int64, int64) {
	var ts unix.Timespec
	_ = unix.ClockGettime(id, &ts) // cannot fail for these clocks
	return ts.Unix()
}

func sinceZero(id int32) time.Duration {
	s, ns := readClock(id)
	return time.Duration(s)*time.Second + time.Duration(ns)
}

// Alarm is a timerfd on CLOCK_BOOTTIME, armed at an absolute time of that
// clock: it becomes readable then, and at wake-up when the time passed
// while the machine slept (a CLOCK_MONOTONIC timer, such as Go's own,
// would wait out its remaining time after the wake-up).
type Alarm struct{ fd int }

// NewAlarm creates a disarmed alarm.
func NewAlarm() (*Alarm, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_BOOTTIME, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create CLOCK_BOOTTIME: %w", err)
	}
	return &Alarm{fd: fd}, nil
}

// Fd is the fd to watch for readability.
func (a *Alarm) Fd() int { return a.fd }

// Set arms the alarm at boot-clock time at (a time in the past fires at
// once), replacing any earlier setting.
func (a *Alarm) Set(at time.Duration) error {
	if at <= 0 {
		at = 1 // 0 would disarm it
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(at))}
	if err := unix.TimerfdSettime(a.fd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
		return fmt.Errorf("timerfd_settime: %w", err)
	}
	return nil
}

// Clear disarms the alarm.
func (a *Alarm) Clear() error {
	if err := unix.TimerfdSettime(a.fd, 0, &unix.ItimerSpec{}, nil); err != nil {
		return fmt.Errorf("timerfd_settime: %w", err)
	}
	return nil
}

// Ack consumes the expiry, so that the fd is no longer readable.
func (a *Alarm) Ack() { drain(a.fd) }

// Close closes the fd (unwatch it first).
func (a *Alarm) Close() error { return unix.Close(a.fd) }

// ClockWatch is a CLOCK_REALTIME timerfd armed with
// TFD_TIMER_CANCEL_ON_SET far in the future: it becomes readable when
// the wall clock is set (settimeofday, clock_settime, a step by NTP) and
// when the machine wakes from suspend, since the wall clock then jumps
// against CLOCK_MONOTONIC.
type ClockWatch struct{ fd int }

// NewClockWatch creates an armed clock watch.
func NewClockWatch() (*ClockWatch, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create CLOCK_REALTIME: %w", err)
	}
	c := &ClockWatch{fd: fd}
	if err := c.arm(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return c, nil
}

// Fd is the fd to watch for readability.
func (c *ClockWatch) Fd() int { return c.fd }

// arm sets the timer 100 years ahead with TFD_TIMER_CANCEL_ON_SET.
func (c *ClockWatch) arm() error {
	far := time.Now().AddDate(100, 0, 0)
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(far.UnixNano())}
	if err := unix.TimerfdSettime(c.fd, unix.TFD_TIMER_ABSTIME|unix.TFD_TIMER_CANCEL_ON_SET, &spec, nil); err != nil {
		return fmt.Errorf("timerfd_settime TFD_TIMER_CANCEL_ON_SET: %w", err)
	}
	return nil
}

// Changed reports whether the wall clock was set since the last call,
// and arms the watch again.
func (c *ClockWatch) Changed() (bool, error) {
	var buf [8]byte
	_, err := unix.Read(c.fd, buf[:])
	switch {
	case errors.Is(err, unix.ECANCELED):
		return true, c.arm()
	case errors.Is(err, unix.EAGAIN), err == nil:
		return false, nil
	}
	return false, fmt.Errorf("reading the clock watch: %w", err)
}

// Close closes the fd (unwatch it first).
func (c *ClockWatch) Close() error { return unix.Close(c.fd) }

// drain reads a timerfd's expiry count, if any.
func drain(fd int) {
	var buf [8]byte
	_, _ = unix.Read(fd, buf[:])
}
