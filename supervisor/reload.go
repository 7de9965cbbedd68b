//go:build linux

package supervisor

import (
	"context"
	"errors"
	"os"
	"reflect"
	"runtime/debug"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/jobset"
	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/spawn"
)

// A reload is worked out off the loop and applied on it in short turns,
// so that the accepts and reaps of every other job go on meanwhile:
//
//  1. snapshot: the running definitions, copied on the loop;
//  2. plan, off the loop: read and decode the jobs (Config.Load), build
//     the process templates of new and changed jobs (users resolved) and
//     match their sockets against the open ones (listener.SyncPlan);
//  3. detach, on the loop: removed jobs retire, and the sockets the plan
//     closes are unwatched and taken from their jobs;
//  4. off the loop: those sockets are closed and the new ones opened
//     (binds, SockPassive=false connects);
//  5. apply, on the loop, applyChunk jobs a turn: jobs are added or
//     redefined, get their sockets and are armed.

// applyChunk is how many jobs (or sockets) one loop turn of a reload
// handles: a few milliseconds of work at most.
const applyChunk = 256

// jobSnap is what planning needs of a running job.
type jobSnap struct {
	def  *job.Job
	tmpl *spawn.Template
}

// reloadPlan is a reload worked out off the loop.
type reloadPlan struct {
	initial  bool
	disabled map[string]*job.Job // off: the file's Disabled key or an override
	stale    map[string]string   // kept under the running definition: why
	enabled  []*job.Job          // the jobs to run, in load order
	tmpls    map[string]*spawn.Template
	removed  []string
	sync     *listener.SyncPlan
	socks    map[string][]*listener.Socket
	errs     map[string]error
}

// reloadTimes are the phases of one reload, logged at debug level.
type reloadTimes struct {
	start                      time.Time
	load, templates, bind, arm time.Duration
}

// reloadOp is one reload asked for: by SIGHUP (Reload: nobody waits, and
// one pending is enough), or by a control request that waits for the
// result (done) and may give the job set itself (preset: bootstrap and
// bootout change only the jobs they name).
type reloadOp struct {
	done   chan reloadResult
	preset func(snap map[string]jobSnap) ([]*job.Job, job.Diags, error)
	who    string // who asked, for the log
	// upgrade, when set, makes the op an in-place upgrade (upgrade.go),
	// not a reload: the two never run at once.
	upgrade *upgradeOp
}

// reloadResult is what a reload found and did.
type reloadResult struct {
	diags job.Diags
	err   error // the reload did not happen (shutting down, preset refused)
}

// Reload re-reads the jobs: added, removed and changed jobs take effect;
// sockets whose definition did not change stay open throughout. A reload
// asked for while another SIGHUP reload is pending is folded into it. Safe
// from any goroutine.
func (s *Supervisor) Reload() {
	select {
	case s.sighup <- struct{}{}:
	default: // one is pending already
	}
}

// reloadAndWait runs op as the next reload and returns its result; ctx
// bounds the wait.
func (s *Supervisor) reloadAndWait(ctx context.Context, op reloadOp) reloadResult {
	op.done = make(chan reloadResult, 1)
	select {
	case s.ops <- op:
	case <-ctx.Done():
		return reloadResult{err: ctx.Err()}
	case <-s.loopDone:
		return reloadResult{err: errShuttingDown}
	}
	select {
	case r := <-op.done:
		return r
	case <-ctx.Done():
		return reloadResult{err: ctx.Err()}
	}
}

var errShuttingDown = errors.New("sockd is shutting down")

// reloader runs the reloads asked for, one at a time, until ctx ends; it
// closes done when it returns.
func (s *Supervisor) reloader(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	for {
		var op reloadOp
		select {
		case <-ctx.Done():
			s.drainOps()
			return
		case <-s.sighup:
		case op = <-s.ops:
		}
		if op.upgrade != nil {
			op.done <- reloadResult{err: s.upgrade(ctx, op.upgrade.binary, op.who)}
			continue
		}
		s.notify(sdReloading)
		r := s.reload(ctx, op, false)
		s.countReload(r)
		s.notify(sdReady)
		if op.done != nil {
			op.done <- r
		}
		freeLoadGarbage()
	}
}

// drainOps answers the operations still queued at shutdown.
func (s *Supervisor) drainOps() {
	for {
		select {
		case op := <-s.ops:
			op.done <- reloadResult{err: errShuttingDown}
		default:
			return
		}
	}
}

// reload loads the job set (or takes op's) and moves the running state to
// it. Its error says why nothing changed: the loop ended, ctx was
// cancelled, or op's job set was refused.
func (s *Supervisor) reload(ctx context.Context, op reloadOp, initial bool) reloadResult {
	t := reloadTimes{start: time.Now()}
	snap, ok := s.snapshot()
	if !ok || ctx.Err() != nil {
		return reloadResult{err: errShuttingDown}
	}
	jobs, diags, err := s.load(op, snap)
	t.load = time.Since(t.start)
	if err != nil {
		return reloadResult{diags: diags, err: err}
	}
	s.logDiags(diags)
	if msg := s.overridesError(); msg != "" { // logged once by readOverrides
		diags = append(diags, job.Diag{File: s.cfg.Overrides, Severity: job.Warning, Msg: msg})
	}
	if ctx.Err() != nil {
		return reloadResult{diags: diags, err: errShuttingDown}
	}
	p := s.plan(jobs, diags, snap, initial)
	t.templates = time.Since(t.start)
	if !s.detach(p) {
		return reloadResult{diags: diags, err: errShuttingDown}
	}
	p.sync.Close()
	p.socks, p.errs = p.sync.Open()
	t.bind = time.Since(t.start)
	if !s.apply(p) {
		return reloadResult{diags: diags, err: errShuttingDown}
	}
	t.arm = time.Since(t.start)
	s.logReload(t, initial, op.who)
	return reloadResult{diags: diags}
}

// freeLoadGarbage gives the garbage of a load back to the system: loading
// leaves many times the size of what it keeps (plist trees), which would
// otherwise stay as RSS. It runs once the load is answered and the daemon
// serves (10-20 ms with 10,000 jobs, not on the way to ready).
func freeLoadGarbage() { debug.FreeOSMemory() }

// load returns the next job set: op's, or what the sources hold now (with
// the files bootstrap added). The overrides file is read again each time.
func (s *Supervisor) load(op reloadOp, snap map[string]jobSnap) ([]*job.Job, job.Diags, error) {
	s.readOverrides()
	if op.preset != nil {
		return op.preset(snap)
	}
	jobs, diags := s.cfg.Load()
	if extra := s.extraBeyond(jobs); len(extra) > 0 && s.cfg.LoadFiles != nil {
		more, ds := s.cfg.LoadFiles(extra)
		var cds job.Diags
		jobs, cds = job.CrossCheck(append(jobs, more...))
		diags = append(append(diags, ds...), cds...)
	}
	jobs, diags = s.withDomains(jobs, diags)
	return jobs, diags, nil
}

// extraBeyond are the bootstrapped files that jobs (the sources) do not
// hold: a file bootstrapped from a jobs directory is not loaded twice.
func (s *Supervisor) extraBeyond(jobs []*job.Job) []string {
	return jobset.FilesBeyond(jobs, s.extraFiles())
}

// snapshot copies the running definitions on the loop.
func (s *Supervisor) snapshot() (map[string]jobSnap, bool) {
	var snap map[string]jobSnap
	ok := s.onLoop(func() {
		snap = make(map[string]jobSnap, len(s.jobs))
		for label, rj := range s.jobs {
			snap[label] = jobSnap{rj.def, rj.tmpl}
		}
	})
	return snap, ok
}

func (s *Supervisor) logDiags(diags job.Diags) {
	for _, d := range diags {
		if d.Severity == job.Error {
			s.log.Error(d.String())
		} else {
			s.log.Warn(d.String())
		}
	}
}

// plan works out the next job set against the running one (snap): the
// enabled jobs, their templates (built for new and changed jobs; a job
// whose process cannot be described, such as an unknown user, is not
// loaded and binds nothing), the removed jobs and the socket plan.
func (s *Supervisor) plan(jobs []*job.Job, diags job.Diags, snap map[string]jobSnap, initial bool) *reloadPlan {
	next := map[string]*job.Job{}
	p := &reloadPlan{initial: initial, disabled: map[string]*job.Job{}}
	for _, j := range jobs {
		if j.Disabled || s.disabledByOverride(j.Label) {
			if _, was := snap[j.Label]; was || initial {
				s.log.Info("job disabled, not loaded", zap.String("job", j.Label), zap.String("file", j.File),
					zap.String("by", disabledBy(j)))
			}
			p.disabled[j.Label] = j
			continue
		}
		next[j.Label] = j
	}
	stale := s.keepStale(diags, snap, next, p.disabled)
	p.stale = stale
	p.tmpls = s.templates(next, snap)
	for _, j := range jobs {
		if next[j.Label] == j {
			p.enabled = append(p.enabled, j)
		}
	}
	for label := range stale {
		if j, ok := next[label]; ok {
			p.enabled = append(p.enabled, j)
		}
	}
	for label := range snap {
		if _, ok := next[label]; !ok {
			p.removed = append(p.removed, label)
		}
	}
	p.sync = s.reg.Plan(p.enabled)
	return p
}

// disabledBy says what keeps j off.
func disabledBy(j *job.Job) string {
	if j.Disabled {
		return "the job file (Disabled)"
	}
	return "sockd disable (the overrides file)"
}

// keepStale keeps, under its running definition, every job that the load
// lost because its file is now invalid (a half-saved edit): it stays in
// next with the reason. A job whose file is gone, or that the file no
// longer defines while the file is valid, goes.
func (s *Supervisor) keepStale(diags job.Diags, snap map[string]jobSnap, next, disabled map[string]*job.Job) map[string]string {
	broken := map[string]string{}
	for _, d := range diags {
		if d.Severity == job.Error && d.File != "" {
			if _, seen := broken[d.File]; !seen {
				broken[d.File] = d.String()
			}
		}
	}
	stale := map[string]string{}
	for label, old := range snap {
		if _, ok := next[label]; ok {
			continue
		}
		if _, ok := disabled[label]; ok {
			continue
		}
		if s.disabledByOverride(label) {
			disabled[label] = old.def // off, and listed so, whatever its file holds
			continue
		}
		why, bad := broken[old.def.File]
		if !bad || !fileExists(old.def.File) {
			continue
		}
		next[label] = old.def
		stale[label] = why
		s.log.Error("job file invalid: the job keeps serving under its last good definition until the file is fixed",
			zap.String("job", label), zap.String("file", old.def.File), zap.String("problem", why))
	}
	return stale
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// templates returns the process templates of the jobs in next that run a
// process: the running one for an unchanged job, a new one otherwise. A
// job whose template cannot be built is logged and taken out of next.
func (s *Supervisor) templates(next map[string]*job.Job, snap map[string]jobSnap) map[string]*spawn.Template {
	tmpls := map[string]*spawn.Template{}
	var build []*job.Job
	for label, j := range next {
		if j.Path == "" && len(j.Argv) == 0 && j.Program == "" && len(j.ProgramArguments) == 0 {
			continue // internal service or external proxy backend
		}
		if old, ok := snap[label]; ok && reflect.DeepEqual(old.def, j) {
			tmpls[label] = old.tmpl
			continue
		}
		build = append(build, j)
	}
	for i, b := range buildTemplates(build, spawn.Options{AsRoot: s.asRoot, BaseEnv: s.env}) {
		j := build[i]
		for _, w := range b.warns {
			s.log.Warn(w, zap.String("job", j.Label), zap.String("file", j.File))
		}
		if b.err != nil {
			s.log.Error("job not loaded", zap.String("job", j.Label), zap.String("file", j.File), zap.Error(b.err))
			delete(next, j.Label)
			continue
		}
		tmpls[j.Label] = b.tmpl
	}
	return tmpls
}

// detach retires the removed jobs and stops every use of the sockets the
// plan closes, on the loop, a chunk a turn.
func (s *Supervisor) detach(p *reloadPlan) bool {
	ok := onLoopEach(s, p.removed, func(label string) {
		rj, ok := s.jobs[label]
		if !ok {
			return
		}
		s.log.Info("job removed", zap.String("job", label))
		delete(s.jobs, label)
		rj.retire()
	})
	return ok && onLoopEach(s, p.sync.Closing(), func(sk *listener.Socket) {
		rj, ok := s.jobs[sk.Label]
		if !ok {
			return
		}
		s.loop.unwatch(sk.Fd)
		rj.socks = without(rj.socks, sk)
	})
}

// without returns socks less sk, in a new slice.
func without(socks []*listener.Socket, sk *listener.Socket) []*listener.Socket {
	out := make([]*listener.Socket, 0, len(socks))
	for _, x := range socks {
		if x != sk {
			out = append(out, x)
		}
	}
	return out
}

// apply moves every enabled job to its new definition and sockets and
// arms it, on the loop, a chunk a turn; then it checks the KeepAlive
// conditions on other jobs, which the new set may have changed.
func (s *Supervisor) apply(p *reloadPlan) bool {
	if !s.onLoop(p.sync.KeepEndpoints) {
		return false
	}
	if !onLoopEach(s, p.enabled, func(j *job.Job) { s.applyJob(p, j) }) {
		return false
	}
	return s.onLoop(func() {
		s.disabledJobs, s.stale = p.disabled, p.stale
		s.checkOtherJobs()
		if s.reloadDone != nil {
			s.reloadDone()
		}
	})
}

// applyJob adds or redefines one job, hands it its sockets and arms it.
// Loop only.
func (s *Supervisor) applyJob(p *reloadPlan, j *job.Job) {
	label := j.Label
	rj, exists := s.jobs[label]
	switch {
	case !exists:
		rj = newRunJob(s, j, p.tmpls[label])
		rj.hist.mark()
		s.jobs[label] = rj
		if !p.initial {
			s.log.Info("job added", zap.String("job", label), zap.String("mode", rj.mode.String()))
		}
	case !reflect.DeepEqual(rj.def, j):
		s.log.Info("job changed", zap.String("job", label))
		rj.unwatchSockets()
		rj.redefine(j, p.tmpls[label])
	default:
		rj.unwatchSockets()
	}
	rj.socks = p.socks[label]
	rj.locals = nil
	if err := p.errs[label]; err != nil {
		what := "job sockets failed; the job serves the sockets that did open, a reload (SIGHUP) retries the others"
		if len(rj.socks) == 0 {
			what = "job sockets failed; the job has no socket open, a reload (SIGHUP) retries"
		}
		s.log.Error(what, zap.String("job", label), zap.Error(err))
	}
	adopted := !exists && s.handed != nil && s.adoptJob(rj)
	rj.activate(p.initial && !adopted)
	if adopted {
		rj.afterAdopt()
	}
}

func (s *Supervisor) logReload(t reloadTimes, initial bool, who string) {
	n := s.JobCount()
	s.log.Debug("jobs loaded", zap.Int("jobs", n), zap.String("asked_by", who),
		zap.Duration("load", t.load), zap.Duration("templates", t.templates-t.load),
		zap.Duration("bind", t.bind-t.templates), zap.Duration("arm", t.arm-t.bind))
	if !initial {
		if who == "" {
			who = "SIGHUP"
		}
		s.log.Info("reload done", zap.Int("jobs", n), zap.String("asked_by", who), zap.Duration("took", time.Since(t.start)))
	}
}

// onLoop runs f on the loop and waits for it; false means the loop ended
// first (f may not have run).
func (s *Supervisor) onLoop(f func()) bool {
	done := make(chan struct{})
	s.loop.post(func() {
		f()
		close(done)
	})
	select {
	case <-done:
		return true
	case <-s.loopDone:
		return false
	}
}

// onLoopEach runs f for every item on the loop, applyChunk items a turn,
// so that other jobs' events are served between turns; false means the
// loop ended first.
func onLoopEach[T any](s *Supervisor, items []T, f func(T)) bool {
	for len(items) > 0 {
		chunk := items[:min(len(items), applyChunk)]
		items = items[len(chunk):]
		if !s.onLoop(func() {
			for _, it := range chunk {
				f(it)
			}
		}) {
			return false
		}
	}
	return true
}
