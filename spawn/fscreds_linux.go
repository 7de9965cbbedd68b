package spawn

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// fileCreds are the credentials the kernel checks file access with (the
// fsuid, fsgid and supplementary groups): a job's, for what sockd does on
// the job's behalf in its own process (EnableGlobbing).
type fileCreds struct {
	uid, gid uint32
	groups   []uint32
}

// asFileUser runs f on a thread of its own whose file-system credentials are
// c: f reads directories with the job's rights, not root's. The other
// threads keep sockd's credentials (the raw setfsuid, setfsgid and
// setgroups calls change the calling thread only). A thread whose
// credentials cannot be put back is never reused: its goroutine ends
// locked to it, and the runtime ends the thread.
func asFileUser(c *fileCreds, f func()) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		saved, err := unix.Getgroups()
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		if err := setThreadFileCreds(c.uid, c.gid, c.groups); err != nil {
			done <- err // leaves the thread locked
			return
		}
		f()
		if err := setThreadFileCreds(0, 0, intsToU32(saved)); err != nil {
			done <- nil // f ran; leaves the thread locked
			return
		}
		runtime.UnlockOSThread()
		done <- nil
	}()
	return <-done
}

// setThreadFileCreds sets the calling thread's supplementary groups, fsgid
// and fsuid (in the order that keeps the rights to set the next one), and
// checks that the kernel took them.
func setThreadFileCreds(uid, gid uint32, groups []uint32) error {
	gs := make([]int, len(groups))
	for i, g := range groups {
		gs[i] = int(g)
	}
	if err := unix.Setgroups(gs); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	unix.Setfsgid(int(gid))
	if got, _ := unix.SetfsgidRetGid(-1); got != int(gid) {
		return fmt.Errorf("setfsgid %d: the kernel kept %d", gid, got)
	}
	unix.Setfsuid(int(uid))
	if got, _ := unix.SetfsuidRetUid(-1); got != int(uid) {
		return fmt.Errorf("setfsuid %d: the kernel kept %d", uid, got)
	}
	return nil
}

func intsToU32(v []int) []uint32 {
	out := make([]uint32, len(v))
	for i, x := range v {
		out[i] = uint32(x)
	}
	return out
}
