//go:build linux

package supervisor

// Processes left by a sockd that did not exit cleanly. Every main process
// (handoff, inetd-wait, KeepAlive, proxy backend) has a record in
// Config.ProcsDir while it runs (package procrecord). A sockd killed with
// SIGKILL leaves its services running as orphans that still hold their
// jobs' listening sockets: the next sockd would get "address in use" for
// those jobs and nothing would supervise the orphans again. So, before it
// binds anything, a starting sockd stops every process its predecessor
// left (SIGTERM to its process group, SIGKILL after the job's ExitTimeOut),
// then binds and serves as usual. It does not re-adopt them: an orphan is
// no longer sockd's child, so sockd could neither reap it nor learn its
// exit status, and the sockets it holds may be in any state the service
// left them in.

import (
	"context"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/procrecord"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/trigger"
)

// openRecords opens Config.ProcsDir; without it (or when it cannot be
// made) sockd keeps no records, logged.
func (s *Supervisor) openRecords() {
	if s.cfg.ProcsDir == "" {
		return
	}
	boot, err := trigger.BootID()
	if err == nil {
		s.records, err = procrecord.Open(s.cfg.ProcsDir, boot)
	}
	if err != nil {
		s.log.Error("no process records: a sockd started after this one is killed will not find the services it left running", zap.Error(err))
	}
}

// recordStarted records a main process that has started. Loop only.
func (s *Supervisor) recordStarted(pj procJob, pid int) {
	if s.records == nil {
		return
	}
	if err := s.records.Started(pj.label, pid, !pj.abandonGroup, pj.exitTimeout); err != nil {
		s.log.Warn("process record not written", zap.String("job", pj.label), zap.Int("pid", pid), zap.Error(err))
	}
}

// recordExited removes the record of a reaped main process. Loop only.
func (s *Supervisor) recordExited(pid int) {
	if s.records == nil {
		return
	}
	if err := s.records.Exited(pid); err != nil {
		s.log.Warn("process record not removed", zap.Int("pid", pid), zap.Error(err))
	}
}

// stopLeftovers stops the processes an earlier sockd left running, all at
// once, and returns when every one is gone (or ctx ends). Run calls it
// after it holds the control socket (so no live sockd owns the records)
// and before it binds.
func (s *Supervisor) stopLeftovers(ctx context.Context) {
	if s.records == nil {
		return
	}
	recs, errs := s.records.Left()
	for _, err := range errs {
		s.log.Warn("process record removed", zap.Error(err))
	}
	done := make(chan struct{}, len(recs))
	n := 0
	handed := s.handedPids()
	for _, r := range recs {
		if handed[r.Pid] {
			continue // an upgrade handed it over: still this process's child
		}
		if !s.records.Alive(r) {
			s.log.Debug("process record of a process that is gone", zap.String("job", r.Label), zap.Int("pid", r.Pid))
			_ = s.records.Exited(r.Pid)
			continue
		}
		n++
		go func(r procrecord.Record) {
			s.stopLeftover(ctx, r)
			done <- struct{}{}
		}(r)
	}
	for ; n > 0; n-- {
		<-done
	}
}

// stopLeftover stops one left process: SIGTERM, then SIGKILL after its
// job's ExitTimeOut, to its process group when it leads one.
func (s *Supervisor) stopLeftover(ctx context.Context, r procrecord.Record) {
	log := s.log.With(zap.String("job", r.Label), zap.Int("pid", r.Pid))
	log.Warn("a process left running by a sockd that did not exit cleanly (killed, or crashed): stopping it before its job's sockets are bound again")
	pidfd, err := unix.PidfdOpen(r.Pid, 0)
	if err != nil {
		log.Warn("left process: pidfd_open", zap.Error(err))
		_ = s.records.Exited(r.Pid)
		return
	}
	defer unix.Close(pidfd)
	if !s.records.Alive(r) { // the pid was reused between the check and the open
		_ = s.records.Exited(r.Pid)
		return
	}
	timeout := time.Duration(r.ExitTimeout * float64(time.Second))
	if timeout <= 0 {
		timeout = job.DefaultExitTimeOut
	}
	signalLeft(pidfd, r, unix.SIGTERM)
	how := "SIGTERM"
	if !waitPidfd(ctx, pidfd, timeout) {
		signalLeft(pidfd, r, unix.SIGKILL)
		how = "SIGKILL, after ExitTimeOut " + timeout.String()
		waitPidfd(ctx, pidfd, 5*time.Second)
	}
	_ = s.records.Exited(r.Pid)
	log.Info("left process stopped", zap.String("by", how))
}

// signalLeft signals a left process through its pidfd, and its process
// group too when it leads one (pgid == pid, checked).
func signalLeft(pidfd int, r procrecord.Record, sig unix.Signal) {
	_ = unix.PidfdSendSignal(pidfd, sig, nil, 0)
	if pg, err := unix.Getpgid(r.Pid); r.Group && err == nil && pg == r.Pid {
		_ = unix.Kill(-r.Pid, sig)
	}
}

// waitPidfd waits up to d for the process of pidfd to exit.
func waitPidfd(ctx context.Context, pidfd int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for ctx.Err() == nil {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(min(left, 100*time.Millisecond)/time.Millisecond)+1)
		if err == nil && n > 0 {
			return true
		}
	}
	return false
}
