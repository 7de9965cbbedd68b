//go:build linux

package supervisor

// In-place upgrade (sockd upgrade, SIGUSR2): sockd re-executes itself,
// same pid, as a new binary, and hands the new image everything it holds
// across execve(2): every job's sockets (never closed, never re-bound:
// the kernel queues the clients that arrive meanwhile), the control
// socket, the children's output pipes, and a document (package handover)
// that says which fd is which and what every job was running. The
// children are still this process's children: the new image watches them
// by pidfd, reaps them and logs their exits.
//
// Before it execs, sockd runs the new binary as `upgrade --check` on the
// same state and command line, a short-lived process of its own; only
// when that passes does it exec. The exec itself runs on the loop, in one
// turn, right after the final snapshot, so nothing changes in between.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/internal/handover"
	"github.com/sockd/sockd/proxy"
)

// upgradeOp is an upgrade in the reloader's queue (who asked is the
// reloadOp's).
type upgradeOp struct {
	binary string // "" for Config.Executable
}

// checkTimeout bounds the new binary's check.
const checkTimeout = 30 * time.Second

// Upgrade re-executes sockd in place as binary ("" for the binary it
// runs). It returns only when the upgrade did not happen, with why; the
// running image then serves on. Safe from any goroutine.
func (s *Supervisor) Upgrade(ctx context.Context, binary, who string) error {
	done := make(chan reloadResult, 1)
	select {
	case s.ops <- reloadOp{done: done, who: who, upgrade: &upgradeOp{binary: binary}}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.loopDone:
		return errShuttingDown
	}
	select {
	case r := <-done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// upgrade checks the new binary and execs it; it returns only on failure.
// Reloader goroutine: no reload runs meanwhile.
func (s *Supervisor) upgrade(ctx context.Context, bin, who string) error {
	asked := time.Now()
	if bin == "" {
		bin = s.cfg.Executable
	}
	defer pauseGC()() // resumed only when the upgrade did not happen
	check, err := s.vetUpgrade(ctx, bin)
	if errors.Is(err, errShuttingDown) {
		return err
	}
	if err != nil {
		s.log.Error("upgrade refused: the running sockd serves on", zap.String("binary", bin), zap.String("asked_by", who), zap.Error(err))
		return err
	}
	s.log.Info("upgrading in place", zap.String("binary", bin), zap.String("asked_by", who), zap.String("from", s.cfg.Version))
	if !s.onLoop(func() { err = s.execNew(bin, asked, check) }) {
		return errShuttingDown
	}
	s.log.Error("upgrade failed: the running sockd serves on", zap.String("binary", bin), zap.Error(err))
	return err
}

// vetUpgrade decides whether bin may replace the running image: it must be
// executable, and its check of the state as it is now must pass. It
// returns how long the check took.
func (s *Supervisor) vetUpgrade(ctx context.Context, bin string) (time.Duration, error) {
	if err := checkExecutable(bin); err != nil {
		return 0, err
	}
	var st *handover.State
	var err error
	if !s.onLoop(func() { st, err = s.upgradeState() }) {
		return 0, errShuttingDown
	}
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	err = s.checkUpgrade(ctx, bin, st)
	return time.Since(t0), err
}

// gcHeadroom is how far the heap may grow while the collector is paused
// for an upgrade before it collects anyway.
const gcHeadroom = 256 << 20

// pauseGC stops the collector for an upgrade and returns what resumes it:
// the image that execs away need not collect what building the state
// leaves (with 10,000 sockets a collection of the whole heap, 15-20 ms of
// CPU beside the check that needs both CPUs). A memory limit of the heap
// now plus gcHeadroom bounds it if the check runs long under load.
func pauseGC() (resume func()) {
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(sample)
	limit := int64(gcHeadroom)
	if sample[0].Value.Kind() == metrics.KindUint64 {
		limit += int64(sample[0].Value.Uint64())
	}
	prevLimit := debug.SetMemoryLimit(min(limit, debug.SetMemoryLimit(-1)))
	prevPercent := debug.SetGCPercent(-1)
	return func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	}
}

// checkExecutable refuses a binary that cannot be exec'd.
func checkExecutable(bin string) error {
	if bin == "" {
		return errors.New("no binary: sockd does not know the path it was started from; give --binary PATH")
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return fmt.Errorf("%s cannot be run: %w", bin, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file (mode %s)", bin, fi.Mode())
	}
	return nil
}

// checkUpgrade runs bin as `upgrade --check -- SERVE-ARGS` with the state
// on fd 3: it must read the state and load every job the state names.
func (s *Supervisor) checkUpgrade(ctx context.Context, bin string, st *handover.State) error {
	f, err := handover.Write(st)
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"upgrade", "--check", "--"}, s.cfg.Args...)...)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(withoutEnv(os.Environ(), handover.EnvFD), handover.EnvFD+"=3")
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = "(no output)"
		}
		return fmt.Errorf("%s --check: %v: %s", bin, err, msg)
	}
	return nil
}

// upgradeState describes what sockd holds and runs. Loop only.
func (s *Supervisor) upgradeState() (*handover.State, error) {
	for rj := range s.retired {
		return nil, fmt.Errorf("job %s was removed and still runs processes; try again once they have exited", rj.def.Label)
	}
	st := &handover.State{From: s.cfg.Version, Sockets: s.reg.Handover(), ExtraFiles: s.extraFiles(), Jobs: make([]handover.Job, 0, len(s.jobs))}
	now := s.now()
	for label, rj := range s.jobs {
		if len(rj.draining) > 0 {
			return nil, fmt.Errorf("job %s changed mode and its earlier processes still run; try again once they have exited", label)
		}
		st.Jobs = append(st.Jobs, rj.handover(now))
	}
	return st, nil
}

// execNew hands everything across execve to bin. It returns only if the
// exec failed, with everything as it was. Loop only.
func (s *Supervisor) execNew(bin string, asked time.Time, check time.Duration) error {
	st, err := s.upgradeState()
	if err != nil {
		return err
	}
	st.Asked, st.Check = asked.UnixNano(), check
	fz := proxy.Freeze()             // the relay stands still from here to the exec
	defer func() { _ = fz.Thaw() }() // reached only if the exec failed
	s.proxyConns(st, fz)
	extra, err := s.handoverFds(st)
	defer closeFds(extra) // reached only if the exec failed
	if err != nil {
		return err
	}
	return s.exec(bin, st)
}

// handoverFds adds the control socket and the output pipes to st, as
// duplicates made for the exec; it returns them, for the caller to close
// if the exec fails.
func (s *Supervisor) handoverFds(st *handover.State) ([]int, error) {
	var extra []int
	if s.ctlSrv != nil {
		fd, path, dev, ino, err := s.ctlSrv.Handover()
		if err != nil {
			return extra, fmt.Errorf("control socket: %w", err)
		}
		extra = append(extra, fd)
		st.Control = &handover.Control{Fd: fd, Path: path, Dev: dev, Ino: ino}
	}
	outs, err := s.out.handover()
	extra = append(extra, fdsOf(outs)...)
	if err != nil {
		return extra, fmt.Errorf("output pipes: %w", err)
	}
	st.Outputs = outs
	return extra, nil
}

// exec writes st to a memfd and execs bin with every fd st names, and the
// memfd, inheritable. It returns only if execve failed, with the fds
// close-on-exec again.
func (s *Supervisor) exec(bin string, st *handover.State) error {
	f, err := handover.Write(st)
	if err != nil {
		return err
	}
	defer f.Close()
	fds := append(st.Fds(), int(f.Fd()))
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			restoreCloexec(fds)
			return fmt.Errorf("fd %d: %w", fd, err)
		}
	}
	env := append(withoutEnv(os.Environ(), handover.EnvFD), handover.EnvFD+"="+strconv.Itoa(int(f.Fd())))
	_ = s.log.Sync()
	err = unix.Exec(bin, append([]string{bin}, s.cfg.Args...), env)
	restoreCloexec(fds)
	return fmt.Errorf("execve %s: %w", bin, err)
}

func closeFds(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// proxyConns adds to st every proxy job's connections on the frozen
// relay.
func (s *Supervisor) proxyConns(st *handover.State, fz *proxy.Frozen) {
	for i := range st.Jobs {
		rj := s.jobs[st.Jobs[i].Label]
		if ps, ok := rj.srv.(*proxyServer); ok && ps.px != nil {
			st.Jobs[i].Conns = ps.px.srv.Handover(fz)
		}
	}
}

func restoreCloexec(fds []int) { handover.CloseOnExec(fds) }

func fdsOf(outs []handover.Output) []int {
	fds := make([]int, 0, len(outs))
	for _, o := range outs {
		fds = append(fds, o.Fd)
	}
	return fds
}

// withoutEnv is env without the variable name.
func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// handover describes the job for the next image. Loop only.
func (rj *runJob) handover(now time.Time) handover.Job {
	hj := handover.Job{Label: rj.def.Label, Stats: rj.stats.handover(), ExitTimeOut: rj.def.ExitTimeOut}
	var th *throttle
	switch srv := rj.srv.(type) {
	case *mainServer:
		th = &srv.th
	case *proxyServer:
		th = &srv.th
	}
	if th != nil && !th.last.IsZero() {
		hj.Ran = true
		hj.LastStartAgo = now.Sub(th.last)
	}
	if c := rj.srv.mainChild(); c != nil {
		p := procOf(c, now)
		hj.Main = &p
	}
	for _, c := range rj.srv.children() {
		hj.Children = append(hj.Children, procOf(c, now))
	}
	return hj
}

func procOf(c *child, now time.Time) handover.Proc {
	p := handover.Proc{Pid: c.p.Pid, Age: now.Sub(c.p.Started), Stopping: c.stopping, ByControl: c.byControl}
	if c.src.IsValid() {
		p.Source = c.src.String()
	}
	if r := c.rec; r != nil {
		p.Record = &handover.Record{PeerPID: r.peerPID, PeerUID: r.peerUID, HasCred: r.hasCred, Local: r.local}
		if r.peer.IsValid() {
			p.Record.Peer = r.peer.String()
		}
	}
	return p
}

func (js jobStats) handover() handover.Stats {
	return handover.Stats{Accepted: js.accepted, Refused: js.refused, RefusedBy: nonZero(js.refusedBy[:]), Spawned: js.spawned,
		SpawnFailed: js.spawnFailed, Exits: js.exits, ExitKinds: nonZero(js.exitKinds[:]), Deferred: js.deferred, Throttled: js.throttled}
}

// nonZero is counts, or nil when every count is 0 (most jobs of a large
// set: nothing to write; statsFrom reads nil as zeros).
func nonZero(counts []uint64) []uint64 {
	for _, c := range counts {
		if c != 0 {
			return counts
		}
	}
	return nil
}

func statsFrom(h handover.Stats) jobStats {
	js := jobStats{accepted: h.Accepted, refused: h.Refused, spawned: h.Spawned, spawnFailed: h.SpawnFailed,
		exits: h.Exits, deferred: h.Deferred, throttled: h.Throttled}
	copy(js.refusedBy[:], h.RefusedBy)
	copy(js.exitKinds[:], h.ExitKinds)
	return js
}

// ctlUpgrade answers upgrade: on success there is no answer, the
// connection closes with the exec (the client then asks the new image
// for its version); otherwise why it did not happen.
func (s *Supervisor) ctlUpgrade(ctx context.Context, peer control.Peer, req control.Request) control.Response {
	if !s.isAdmin(peer) {
		return *s.refuse(peer, req, fmt.Sprintf("upgrade needs root or sockd's user: you are uid %d", peer.Uid))
	}
	s.logChange(peer, control.CmdUpgrade, zap.String("binary", req.Binary))
	if err := s.Upgrade(ctx, req.Binary, peer.String()); err != nil {
		return control.Errorf(control.Failed, "%v", err)
	}
	return control.Response{Status: control.OK}
}

// ctlVersion answers version.
func (s *Supervisor) ctlVersion() control.Response {
	d := &control.Daemon{Version: s.cfg.Version, Pid: os.Getpid(), Started: s.started.Format(time.RFC3339Nano)}
	if h := s.cfg.Handover; h != nil {
		d.UpgradedFrom = h.From
	}
	return control.Response{Status: control.OK, Daemon: d}
}
