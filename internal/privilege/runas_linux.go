//go:build linux

package privilege

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// RunAs runs f on a thread of its own whose groups, effective gid and
// effective uid are c's (the file-system ids follow), so that what f does
// with files and sockets is checked against c's rights, not root's. The
// other threads keep sockd's credentials: the raw system calls change the
// calling thread only. The goroutine locks itself to the thread and
// unlocks only once the credentials are back; when they cannot be put
// back it ends locked and the runtime ends the thread, and the Go runtime
// creates no thread from a locked one, so no other thread ever starts
// with c's credentials. An error means f did not run.
func RunAs(c Cred, f func()) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		saved, err := threadCreds()
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		if err := setThreadCreds(c); err != nil {
			if restoreThreadCreds(saved) == nil {
				runtime.UnlockOSThread()
			}
			done <- fmt.Errorf("as uid %d: %w", c.UID, err)
			return
		}
		f()
		if restoreThreadCreds(saved) == nil {
			runtime.UnlockOSThread()
		}
		done <- nil
	}()
	return <-done
}

// keepID is -1 as a uid_t or gid_t: setresuid and setresgid leave that id.
const keepID = ^uint32(0)

// savedCreds are a thread's effective uid and gid and its groups.
type savedCreds struct {
	euid, egid uint32
	groups     []uint32
}

// threadCreds reads the calling thread's credentials.
func threadCreds() (savedCreds, error) {
	_, euid, _ := unix.Getresuid()
	_, egid, _ := unix.Getresgid()
	gs, err := unix.Getgroups()
	if err != nil {
		return savedCreds{}, fmt.Errorf("getgroups: %w", err)
	}
	s := savedCreds{euid: uint32(euid), egid: uint32(egid), groups: make([]uint32, len(gs))}
	for i, g := range gs {
		s.groups[i] = uint32(g)
	}
	return s, nil
}

// setThreadCreds gives the calling thread c's groups, effective gid and
// effective uid, in the order that keeps the rights to set the next one.
// The file-system ids follow the effective ones, and the effective uid
// leaving 0 drops the thread's effective capabilities (CAP_DAC_OVERRIDE
// among them); the permitted ones stay, with the real and saved uid 0.
func setThreadCreds(c Cred) error {
	if err := setThreadGroups(c.Groups); err != nil {
		return err
	}
	if err := setresgid(keepID, c.GID, keepID); err != nil {
		return fmt.Errorf("setresgid %d: %w", c.GID, err)
	}
	if err := setresuid(keepID, c.UID, keepID); err != nil {
		return fmt.Errorf("setresuid %d: %w", c.UID, err)
	}
	if c.Caps != 0 {
		return raiseEffective(c.Caps)
	}
	return nil
}

// raiseEffective makes caps the calling thread's effective capabilities.
// They must be in its permitted set, which a thread whose saved uid is 0
// keeps when its effective uid leaves 0; going back to uid 0 makes the
// effective set the permitted one again.
func raiseEffective(caps uint64) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Effective, data[1].Effective = uint32(caps), uint32(caps>>32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// restoreThreadCreds puts back what threadCreds read: the uid first (which
// gives back the capabilities to set the rest).
func restoreThreadCreds(s savedCreds) error {
	if err := setresuid(keepID, s.euid, keepID); err != nil {
		return fmt.Errorf("setresuid %d: %w", s.euid, err)
	}
	if err := setresgid(keepID, s.egid, keepID); err != nil {
		return fmt.Errorf("setresgid %d: %w", s.egid, err)
	}
	return setThreadGroups(s.groups)
}

// setThreadGroups sets the calling thread's supplementary groups
// (x/sys/unix.Setgroups is the raw system call: this thread only).
func setThreadGroups(groups []uint32) error {
	gs := make([]int, len(groups))
	for i, g := range groups {
		gs[i] = int(g)
	}
	if err := unix.Setgroups(gs); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	return nil
}

// setresuid and setresgid are the raw system calls, which change the
// calling thread only (unix.Setresuid changes every thread of the process).
func setresuid(r, e, s uint32) error {
	if _, _, errno := unix.RawSyscall(sysSetresuid, uintptr(r), uintptr(e), uintptr(s)); errno != 0 {
		return errno
	}
	return nil
}

func setresgid(r, e, s uint32) error {
	if _, _, errno := unix.RawSyscall(sysSetresgid, uintptr(r), uintptr(e), uintptr(s)); errno != 0 {
		return errno
	}
	return nil
}

// OnLockedThread runs f on the calling goroutine, which must be locked to
// its OS thread (runtime.LockOSThread), with c's credentials, and puts the
// thread's own back. An error with tainted false means f did not run.
// tainted true means the thread's credentials could not be put back (the
// error says why): the caller must never use the thread again, and ends
// its goroutine while still locked so that the runtime ends the thread.
func OnLockedThread(c Cred, f func()) (tainted bool, err error) {
	saved, err := threadCreds()
	if err != nil {
		return false, err
	}
	if err := setThreadCreds(c); err != nil {
		if rerr := restoreThreadCreds(saved); rerr != nil {
			return true, fmt.Errorf("as uid %d: %w; putting the thread's credentials back: %w", c.UID, err, rerr)
		}
		return false, fmt.Errorf("as uid %d: %w", c.UID, err)
	}
	f()
	if err := restoreThreadCreds(saved); err != nil {
		return true, fmt.Errorf("putting the thread's credentials back after acting as uid %d: %w", c.UID, err)
	}
	return false, nil
}
