//go:build linux

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/domain"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/overrides"
)

// ctlState is the control plane's state outside the loop: the overrides
// (read at each reload, written by enable and disable) and the files
// bootstrap added. Changes are made one at a time (mu).
type ctlState struct {
	mu      sync.Mutex // one changing request at a time
	stateMu sync.Mutex // guards the fields below
	ov      *overrides.File
	ovErr   string   // the last error reading the overrides file, logged once
	extra   []string // bootstrapped job files, reloaded with the sources
}

// readOverrides reads the overrides file; a broken one is logged once and
// disables nothing.
func (s *Supervisor) readOverrides() {
	if s.cfg.Overrides == "" {
		return
	}
	f, err := overrides.Load(s.cfg.Overrides)
	s.ctl.stateMu.Lock()
	defer s.ctl.stateMu.Unlock()
	s.ctl.ov = f
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg != "" && msg != s.ctl.ovErr {
		s.log.Error(msg)
	}
	s.ctl.ovErr = msg
}

// overridesError is the last error reading the overrides file, or "".
func (s *Supervisor) overridesError() string {
	s.ctl.stateMu.Lock()
	defer s.ctl.stateMu.Unlock()
	return s.ctl.ovErr
}

// known reports whether label is loaded, disabled or not.
func (s *Supervisor) known(label string) bool {
	found := false
	s.onLoop(func() {
		_, a := s.jobs[label]
		_, b := s.disabledJobs[label]
		found = a || b
	})
	return found
}

// disabledByOverride reports whether `sockd disable` turned label off.
func (s *Supervisor) disabledByOverride(label string) bool {
	s.ctl.stateMu.Lock()
	defer s.ctl.stateMu.Unlock()
	return s.ctl.ov != nil && s.ctl.ov.Disabled[label]
}

// extraFiles are the files bootstrap added.
func (s *Supervisor) extraFiles() []string {
	s.ctl.stateMu.Lock()
	defer s.ctl.stateMu.Unlock()
	return slices.Clone(s.ctl.extra)
}

func (s *Supervisor) setExtraFiles(files []string) {
	s.ctl.stateMu.Lock()
	defer s.ctl.stateMu.Unlock()
	s.ctl.extra = files
}

// listenControl creates the control socket (Config.Control). Run calls it
// before it loads anything: a socket another sockd serves is an error
// that ends Run; any other failure leaves this sockd without control
// commands, logged.
func (s *Supervisor) listenControl() (*control.Server, error) {
	if h := s.cfg.Handover; h != nil && h.Control != nil && h.Control.Path == s.cfg.Control {
		c := h.Control
		srv, err := control.Adopt(c.Fd, c.Path, c.Dev, c.Ino, s.handleControl, s.log)
		if err == nil {
			return srv, nil
		}
		s.log.Error("upgrade: the inherited control socket is not usable; making it again", zap.Error(err))
		unix.Close(c.Fd)
	}
	srv, err := control.Listen(s.cfg.Control, s.handleControl, s.log)
	if errors.Is(err, control.ErrInUse) {
		return nil, err // it names the socket
	}
	if err != nil {
		s.log.Error("no control socket: the control commands cannot reach this sockd", zap.Error(err))
		return nil, nil
	}
	return srv, nil
}

// serveControl serves the control socket until ctx ends or stop is
// called; stop returns once the socket is closed.
func (s *Supervisor) serveControl(ctx context.Context, srv *control.Server) (stop func()) {
	done := make(chan struct{})
	sctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(done)
		srv.Serve(sctx)
	}()
	s.log.Info("control socket ready", zap.String("path", srv.Path()))
	return func() {
		cancel()
		<-done
		if err := srv.Close(); err != nil {
			s.log.Warn("closing the control socket", zap.Error(err))
		}
	}
}

// handleControl answers one authorised request (control.Handler).
func (s *Supervisor) handleControl(ctx context.Context, peer control.Peer, req control.Request) control.Response {
	req, refused := s.scope(peer, req)
	if refused != nil {
		return *refused
	}
	switch req.Cmd {
	case control.CmdList:
		return s.ctlList(peer)
	case control.CmdVersion:
		return s.ctlVersion()
	case control.CmdPrint, control.CmdBlame:
		return s.ctlShow(req)
	case control.CmdStart, control.CmdKickstart, control.CmdStop, control.CmdKill:
		return s.ctlAct(ctx, peer, req)
	}
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	switch req.Cmd {
	case control.CmdEnable, control.CmdDisable:
		return s.ctlOverride(ctx, peer, req)
	case control.CmdBootstrap:
		return s.ctlBootstrap(ctx, peer, req)
	case control.CmdBootout:
		return s.ctlBootout(ctx, peer, req)
	case control.CmdReload:
		return s.ctlReload(ctx, peer)
	case control.CmdUpgrade:
		return s.ctlUpgrade(ctx, peer, req)
	}
	return control.Errorf(control.BadRequest, "unknown command %q", req.Cmd)
}

// logChange logs a change carried out for peer.
func (s *Supervisor) logChange(peer control.Peer, cmd string, fields ...zap.Field) {
	s.log.Info("control: "+cmd, append([]zap.Field{zap.Int("uid", peer.Uid), zap.Int("pid", peer.Pid)}, fields...)...)
}

var errLoopGone = control.Errorf(control.Failed, "sockd is shutting down")

// ctlList answers list: every loaded job and every disabled one, by label.
// The figures are copied from the loop listChunk jobs a turn, so that a
// list of 10,000 jobs never holds the loop for long.
func (s *Supervisor) ctlList(peer control.Peer) control.Response {
	var labels []string
	var jobs []control.Job
	if !s.onLoop(func() {
		labels = make([]string, 0, len(s.jobs))
		// Sized once: growing it by append made most of a list's garbage
		// (22 MB for 10,000 jobs) and a GC cycle every second list.
		jobs = make([]control.Job, 0, len(s.jobs)+len(s.disabledJobs)+len(s.retired))
		for l := range s.jobs {
			if s.visible(peer, l) {
				labels = append(labels, l)
			}
		}
		for l, j := range s.disabledJobs {
			if s.visible(peer, l) {
				jobs = append(jobs, disabledStatus(j))
			}
		}
		for rj := range s.retired {
			if s.visible(peer, rj.def.Label) {
				jobs = append(jobs, retiredStatus(rj))
			}
		}
	}) {
		return errLoopGone
	}
	sort.Strings(labels)
	for len(labels) > 0 {
		chunk := labels[:min(len(labels), listChunk)]
		labels = labels[len(chunk):]
		if !s.onLoop(func() {
			for _, l := range chunk {
				if rj, ok := s.jobs[l]; ok { // gone meanwhile: left out
					jobs = append(jobs, rj.status(false))
				}
			}
		}) {
			return errLoopGone
		}
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].Label < jobs[b].Label })
	return control.Response{Status: control.OK, Jobs: jobs}
}

// listChunk is how many jobs one loop turn of a list copies.
const listChunk = 1000

// retiredStatus is a job unloaded (bootout, a removed file) whose
// processes have not exited yet: listed, so that they can be seen and
// signalled.
func retiredStatus(rj *runJob) control.Job {
	j := rj.status(false)
	j.State = "unloaded, " + plural(rj.running(), "process") + " still running"
	return j
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ses", n, what)
}

// retiredJob finds an unloaded job whose processes still run. Loop only.
func (s *Supervisor) retiredJob(label string) *runJob {
	for rj := range s.retired {
		if rj.def.Label == label {
			return rj
		}
	}
	return nil
}

// disabledStatus is a disabled job as list and print show it.
func disabledStatus(j *job.Job) control.Job {
	by := "override"
	if j.Disabled {
		by = "file"
	}
	return control.Job{Label: j.Label, File: j.File, Mode: j.Mode().String(), State: stateDisabled.String(), Disabled: true, DisabledBy: by}
}

// ctlShow answers print and blame.
func (s *Supervisor) ctlShow(req control.Request) control.Response {
	if len(req.Labels) != 1 {
		return control.Errorf(control.BadRequest, "%s takes one label", req.Cmd)
	}
	label := req.Labels[0]
	var resp control.Response
	if !s.onLoop(func() {
		if rj, ok := s.jobs[label]; ok {
			resp = control.Response{Status: control.OK, Jobs: []control.Job{rj.status(true)}}
		} else if j, ok := s.disabledJobs[label]; ok {
			resp = control.Response{Status: control.OK, Jobs: []control.Job{disabledStatus(j)}}
		} else if r := s.retiredJob(label); r != nil {
			resp = control.Response{Status: control.OK, Jobs: []control.Job{retiredStatus(r)}}
		} else {
			resp = noSuchJob(label)
		}
	}) {
		return errLoopGone
	}
	return resp
}

func noSuchJob(label string) control.Response {
	return control.Errorf(control.NoSuchJob, "no job %q is loaded (sockd list shows the loaded jobs)", label)
}

// ctlAct answers start, kickstart, stop and kill, on the loop.
func (s *Supervisor) ctlAct(ctx context.Context, peer control.Peer, req control.Request) control.Response {
	if len(req.Labels) != 1 {
		return control.Errorf(control.BadRequest, "%s takes one label", req.Cmd)
	}
	label := req.Labels[0]
	who := fmt.Sprintf("%s by %s", req.Cmd, peer)
	var resp control.Response
	var wait *startWait
	if !s.onLoop(func() {
		rj, ok := s.jobs[label]
		if r := s.retiredJob(label); !ok && r != nil && (req.Cmd == control.CmdKill || req.Cmd == control.CmdStop) {
			rj, ok = r, true // unloaded, its processes still running
		}
		if !ok {
			resp = noSuchJob(label)
			if _, off := s.disabledJobs[label]; off {
				resp = control.Errorf(control.Failed, "job %q is disabled: it has no process to %s", label, req.Cmd)
			}
			return
		}
		resp, wait = rj.control(req, who)
	}) {
		return errLoopGone
	}
	if resp.Status == control.OK {
		s.logChange(peer, req.Cmd, zap.String("job", label), zap.Strings("done", resp.Done))
	}
	if wait == nil {
		return resp
	}
	return s.waitKickstart(ctx, label, wait, resp)
}

// waitKickstart waits for a kickstart -k (the old instance's exit and the
// new start) or a proxy backend's start.
func (s *Supervisor) waitKickstart(ctx context.Context, label string, wait *startWait, resp control.Response) control.Response {
	select {
	case <-wait.done:
	case <-ctx.Done():
		return control.Errorf(control.Failed, "job %q: %v", label, ctx.Err())
	case <-time.After(kickstartWait):
		return control.Errorf(control.Failed, "job %q: the running instance has not exited after %v (it ignores SIGTERM and ExitTimeOut is 0 or longer): it restarts when it exits; sockd kill KILL %s ends it now", label, kickstartWait, label)
	}
	if wait.err != nil {
		return control.Errorf(control.Failed, "job %q: %v", label, wait.err)
	}
	var after control.Job
	if !s.onLoop(func() {
		if rj, ok := s.jobs[label]; ok {
			after = rj.status(false)
		}
	}) {
		return errLoopGone
	}
	if after.Pid == 0 {
		return control.Errorf(control.Failed, "job %q: restarted instance is not running (%s)", label, orNone(after.LastExit))
	}
	resp.Done = append(resp.Done, fmt.Sprintf("started %s (pid %d)", label, after.Pid))
	return resp
}

// kickstartWait bounds how long kickstart -k waits for the old instance,
// below the client's own timeout of a minute.
const kickstartWait = 45 * time.Second

func orNone(s string) string {
	if s == "" {
		return "no exit recorded"
	}
	return s
}

// ctlOverride answers enable and disable: the overrides file changes,
// then a reload applies it.
func (s *Supervisor) ctlOverride(ctx context.Context, peer control.Peer, req control.Request) control.Response {
	if s.cfg.Overrides == "" {
		return control.Errorf(control.Failed, "this sockd has no overrides file: %s is not possible", req.Cmd)
	}
	f, err := overrides.Load(s.cfg.Overrides)
	if err != nil {
		return control.Errorf(control.Failed, "%s refused, nothing written: %v; fix or remove the file, then %s again", req.Cmd, err, req.Cmd)
	}
	var done []string
	byFile := s.disabledByFile()
	for _, l := range req.Labels {
		off := req.Cmd == control.CmdDisable
		if !off && byFile[l] {
			done = append(done, fmt.Sprintf("%s stays off: its job file says Disabled (sockd enable does not change that; edit the file and sockd reload)", l))
		}
		if f.Disabled[l] == off {
			if off || !byFile[l] {
				done = append(done, fmt.Sprintf("%s is already %sd", l, req.Cmd))
			}
			continue
		}
		f.Disabled[l] = off
		if !off {
			delete(f.Disabled, l)
		}
		note := ""
		if !s.known(l) {
			note = fmt.Sprintf(" (no job %s is loaded now: the override applies when one is)", l)
		}
		done = append(done, fmt.Sprintf("%sd %s%s", req.Cmd, l, note))
	}
	if err := f.Save(s.cfg.Overrides); err != nil {
		return control.Errorf(control.Failed, "%v", err)
	}
	s.logChange(peer, req.Cmd, zap.Strings("jobs", req.Labels), zap.String("overrides", s.cfg.Overrides))
	r := s.reloadAndWait(ctx, reloadOp{who: peer.String()})
	return s.answerFor(peer, r, done)
}

// disabledByFile are the labels the job files' Disabled key keeps off.
func (s *Supervisor) disabledByFile() map[string]bool {
	out := map[string]bool{}
	s.onLoop(func() {
		for l, j := range s.disabledJobs {
			if j.Disabled {
				out[l] = true
			}
		}
	})
	return out
}

// answerReload turns a reload's result into an answer: failed when it did
// not happen or a job failed to load.
func answerReload(r reloadResult, done []string) control.Response {
	resp := control.Response{Status: control.OK, Done: done}
	for _, d := range r.diags {
		if d.Severity == job.Info {
			continue
		}
		resp.Diags = append(resp.Diags, d.String())
		if d.Severity == job.Error {
			resp.Status = control.Failed
		}
	}
	if r.err != nil {
		resp.Status, resp.Error = control.Failed, r.err.Error()
	} else if resp.Status == control.Failed {
		resp.Error = "some jobs failed to load (see the diagnostics); the others are loaded"
	}
	return resp
}

// ctlReload answers reload.
func (s *Supervisor) ctlReload(ctx context.Context, peer control.Peer) control.Response {
	s.logChange(peer, control.CmdReload)
	return answerReload(s.reloadAndWait(ctx, reloadOp{who: peer.String()}), []string{"reloaded"})
}

// ctlBootstrap answers bootstrap: the files are loaded on their own and
// added to the running set, which stays as it is otherwise; a file with an
// error changes nothing. With a user domain (root's sockd), the files go
// into that domain, or, with none, the domain itself comes up.
func (s *Supervisor) ctlBootstrap(ctx context.Context, peer control.Peer, req control.Request) control.Response {
	uid, refused := s.bootstrapDomain(peer, req)
	if refused != nil {
		return *refused
	}
	if uid >= 0 {
		return s.ctlDomainBootstrap(ctx, peer, req, uid)
	}
	if !s.isAdmin(peer) {
		return *s.refuse(peer, req, fmt.Sprintf("bootstrap needs root: you are uid %d", peer.Uid))
	}
	if s.cfg.LoadFiles == nil {
		return control.Errorf(control.Failed, "this sockd cannot bootstrap job files")
	}
	return s.bootstrapFiles(ctx, peer, req, s.cfg.LoadFiles, func(files []string) {
		s.setExtraFiles(append(s.extraFiles(), files...))
	})
}

// ctlDomainBootstrap answers bootstrap user/UID [FILE...].
func (s *Supervisor) ctlDomainBootstrap(ctx context.Context, peer control.Peer, req control.Request, uid int) control.Response {
	name := domain.Name(uid)
	if why := s.hostsDomains(); why != "" {
		return control.Errorf(control.Failed, "%s", why)
	}
	if !s.domainServed(uid) || len(req.Files) == 0 {
		if !s.isAdmin(peer) {
			return *s.refuse(peer, req, fmt.Sprintf("bootstrap needs root: you are uid %d, and %s is not served; root brings it up with sockd bootstrap %s", peer.Uid, name, name))
		}
		resp := s.ctlDomainUp(ctx, peer, uid)
		if len(req.Files) == 0 || resp.Status != control.OK {
			return resp
		}
	}
	return s.bootstrapFiles(ctx, peer, req, s.domainLoader(uid), func(files []string) {
		err := s.saveDomains(func(d map[int][]string) { d[uid] = append(d[uid], files...) })
		if err != nil {
			s.log.Error("bootstrap: the files were loaded but are not remembered for the next restart", zap.String("domain", name), zap.Error(err))
		}
	})
}

// bootstrapFiles loads req's files with load and adds them to the running
// set; remember keeps them for the reloads after it.
func (s *Supervisor) bootstrapFiles(ctx context.Context, peer control.Peer, req control.Request, load func([]string) ([]*job.Job, job.Diags), remember func([]string)) control.Response {
	for _, f := range req.Files {
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			return control.Errorf(control.Failed, "nothing was loaded: %s is not a job file (%v)", f, statErr(fi, err))
		}
	}
	var added []string
	op := reloadOp{who: peer.String(), preset: func(snap map[string]jobSnap) ([]*job.Job, job.Diags, error) {
		jobs, diags, labels, err := s.bootstrapSet(snap, load, req.Files)
		added = labels
		return jobs, diags, err
	}}
	r := s.reloadAndWait(ctx, op)
	if r.err != nil {
		s.log.Warn("control: bootstrap refused", zap.Int("uid", peer.Uid), zap.Int("pid", peer.Pid),
			zap.Strings("files", req.Files), zap.String("why", r.err.Error()))
		resp := s.answerFor(peer, r, nil)
		resp.Error = "nothing was loaded: " + r.err.Error()
		return resp
	}
	remember(req.Files)
	s.logChange(peer, control.CmdBootstrap, zap.Strings("files", req.Files), zap.Strings("jobs", added))
	done := make([]string, len(added))
	for i, l := range added {
		done[i] = "loaded " + l
	}
	return s.answerFor(peer, r, done)
}

// bootstrapSet is the running set (snap) plus the jobs of files, checked
// against each other; any error in the files refuses the whole bootstrap.
func (s *Supervisor) bootstrapSet(snap map[string]jobSnap, load func([]string) ([]*job.Job, job.Diags), files []string) ([]*job.Job, job.Diags, []string, error) {
	fresh, diags := load(files)
	if diags.HasErrors() {
		return nil, diags, nil, fmt.Errorf("the files have errors")
	}
	var labels []string
	for _, j := range fresh {
		if _, dup := snap[j.Label]; dup {
			return nil, diags, nil, fmt.Errorf("job %q (%s) is loaded already: sockd bootout %s first, or sockd reload to pick up a changed file", j.Label, j.File, j.Label)
		}
		labels = append(labels, j.Label)
	}
	running := runningDefs(snap)
	kept, more := job.CrossCheckAgainst(running, fresh)
	diags = append(diags, more...)
	if len(kept) != len(running)+len(fresh) {
		return nil, diags, nil, fmt.Errorf("the new jobs claim an address a loaded job holds (see the diagnostics): change their addresses")
	}
	return append(kept, s.disabledDefs()...), diags, labels, nil
}

// runningDefs are the definitions in snap, sorted by label.
func runningDefs(snap map[string]jobSnap) []*job.Job {
	out := make([]*job.Job, 0, len(snap))
	for _, js := range snap {
		out = append(out, js.def)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Label < out[b].Label })
	return out
}

// ctlBootout answers bootout: the jobs are unloaded now, the others stay
// as they are. A file in a job directory loads again at the next reload.
func (s *Supervisor) ctlBootout(ctx context.Context, peer control.Peer, req control.Request) control.Response {
	if req.Domain != "" {
		return s.ctlBootoutDomain(ctx, peer, req)
	}
	var gone []string
	op := reloadOp{who: peer.String(), preset: func(snap map[string]jobSnap) ([]*job.Job, job.Diags, error) {
		out := map[string]bool{}
		for _, l := range req.Labels {
			js, ok := snap[l]
			if !ok {
				return nil, nil, &noJobError{l}
			}
			out[l] = true
			gone = append(gone, js.def.File)
		}
		var keep []*job.Job
		for _, j := range runningDefs(snap) {
			if !out[j.Label] {
				keep = append(keep, j)
			}
		}
		return append(keep, s.disabledDefs()...), nil, nil
	}}
	r := s.reloadAndWait(ctx, op)
	if nj, ok := r.err.(*noJobError); ok {
		return noSuchJob(nj.label)
	}
	if r.err != nil {
		return s.answerFor(peer, r, nil)
	}
	s.dropExtraFiles(gone)
	s.dropDomainFiles(gone)
	s.logChange(peer, control.CmdBootout, zap.Strings("jobs", req.Labels))
	done := make([]string, len(req.Labels))
	for i, l := range req.Labels {
		done[i] = "unloaded " + l
	}
	return s.answerFor(peer, r, done)
}

// disabledDefs are the definitions of the disabled jobs, copied from the
// loop: a bootstrap or bootout keeps them listed as they are.
func (s *Supervisor) disabledDefs() []*job.Job {
	var out []*job.Job
	s.onLoop(func() {
		for _, j := range s.disabledJobs {
			out = append(out, j)
		}
	})
	return out
}

// statErr says why a bootstrap path is not a job file.
func statErr(fi os.FileInfo, err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("it is a %s", fi.Mode().Type())
}

type noJobError struct{ label string }

func (e *noJobError) Error() string { return "no job " + e.label }

// dropExtraFiles forgets bootstrapped files whose jobs were booted out.
func (s *Supervisor) dropExtraFiles(files []string) {
	s.ctl.stateMu.Lock()
	defer s.ctl.stateMu.Unlock()
	s.ctl.extra = slices.DeleteFunc(s.ctl.extra, func(f string) bool { return slices.Contains(files, f) })
}

// control carries out start, kickstart, stop or kill on the job; wait,
// when not nil, is closed once a kickstart -k has restarted it. Loop only.
func (rj *runJob) control(req control.Request, who string) (resp control.Response, wait *startWait) {
	label := rj.def.Label
	switch req.Cmd {
	case control.CmdStop:
		n := rj.stopForControl()
		if n == 0 {
			return okf("%s has no process running", label), nil
		}
		return okf("stopping %s: SIGTERM to %d process(es)", label, n), nil
	case control.CmdKill:
		n := rj.signalAll(unix.Signal(req.Signal))
		if n == 0 {
			return control.Errorf(control.Failed, "job %q has no process running", label), nil
		}
		return okf("sent %s to %d process(es) of %s", signalText(req.Signal), n, label), nil
	}
	if ps, ok := rj.srv.(*proxyServer); ok {
		return ps.control(req, who)
	}
	ms := rj.mainSrv()
	if ms == nil || rj.tmpl == nil {
		return control.Errorf(control.Failed, "job %q (%s) starts a process per connection or none: there is nothing to start; connect to it", label, rj.mode), nil
	}
	return ms.control(req, who)
}

func okf(format string, args ...any) control.Response {
	return control.Response{Status: control.OK, Done: []string{fmt.Sprintf(format, args...)}}
}

// control carries out start and kickstart [-k].
func (ms *mainServer) control(req control.Request, who string) (resp control.Response, wait *startWait) {
	rj := ms.rj
	label := rj.def.Label
	kick := req.Cmd == control.CmdKickstart
	if st, _ := rj.jobState(); st == stateBindFailed {
		return control.Errorf(control.Failed, "job %q has none of its sockets open (the bind failed: see the log); fix that and sockd reload", label), nil
	}
	if ms.proc != nil {
		if !kick || !req.Kill {
			return okf("%s is running already (pid %d)", label, ms.proc.p.Pid), nil
		}
		wait = newStartWait()
		ms.kick = &kickstart{who: who, wait: wait}
		rj.stop(ms.proc)
		return okf("killing %s (pid %d) to restart it", label, ms.proc.p.Pid), wait
	}
	if msg := rj.onceRefusal(); msg != "" {
		return control.Errorf(control.Failed, "%s", msg), nil
	}
	if kick {
		ms.th.forget() // kickstart: now, whatever the throttle says
	}
	ms.start(who, rj.controlTrigger())
	switch {
	case ms.proc != nil:
		return okf("started %s (pid %d)", label, ms.proc.p.Pid), nil
	case ms.th.waiting():
		ms.wanted = who
		return okf("%s: the throttle delays the start; it starts by itself when ThrottleInterval allows (sockd kickstart starts it now)", label), nil
	}
	return control.Errorf(control.Failed, "job %q did not start: %s", label, orNone(rj.hist.lastExit)), nil
}

// signalText names a signal: SIGTERM, or "signal 64" for one without a name.
func signalText(n int) string {
	if name := unix.SignalName(unix.Signal(n)); name != "" {
		return name
	}
	return fmt.Sprintf("signal %d", n)
}

// controlTrigger is the socket a wait-mode job is started on without a
// pending connection: its first.
func (rj *runJob) controlTrigger() *listener.Socket {
	if rj.mode != job.ModeInetdWait || len(rj.socks) == 0 {
		return nil
	}
	return rj.socks[0]
}

// stopForControl stops the main process, or every per-connection child;
// it returns how many got SIGTERM. A KeepAlive job comes back through the
// throttle, as with launchctl stop.
func (rj *runJob) stopForControl() int {
	if ms := rj.mainSrv(); ms != nil {
		ms.wanted = ""
	}
	if c := rj.main(); c != nil {
		rj.hist.mark()
		c.byControl = true
		rj.stop(c)
		return 1
	}
	n := 0
	for _, sv := range rj.servers() {
		for _, c := range sv.children() {
			rj.stop(c)
			n++
		}
	}
	if n > 0 {
		rj.hist.mark()
	}
	return n
}

// kickstart is a kickstart -k waiting for the old instance to exit.
type kickstart struct {
	who  string
	wait *startWait
}

// startWait is a start that a control request waits for: done is closed
// when it has been made, and err is set before.
type startWait struct {
	done chan struct{}
	err  error
}

func newStartWait() *startWait { return &startWait{done: make(chan struct{})} }

func (w *startWait) finish(err error) {
	w.err = err
	close(w.done)
}

// control carries out start and kickstart [-k] on a proxy job: its
// backend is started now, as its first client would start it, and the
// request waits until it is ready.
func (ps *proxyServer) control(req control.Request, who string) (control.Response, *startWait) {
	rj := ps.rj
	label := rj.def.Label
	switch {
	case rj.tmpl == nil:
		return control.Errorf(control.Failed, "job %q proxies to %s, a backend sockd does not start: there is nothing to start", label, rj.def.Proxy.Backend), nil
	case !ps.serving():
		return control.Errorf(control.Failed, "job %q: its proxy is not serving (see the log); fix that and sockd reload", label), nil
	}
	srv, w := ps.px.srv, newStartWait()
	start := func() {
		ctx, cancel := context.WithTimeout(context.Background(), kickstartWait)
		defer cancel()
		w.finish(srv.StartBackend(ctx))
	}
	if ps.proc == nil {
		ps.wanted = who
		go start()
		return okf("starting the backend of %s", label), w
	}
	if req.Cmd != control.CmdKickstart || !req.Kill {
		return okf("%s is running already (pid %d)", label, ps.proc.p.Pid), nil
	}
	exited := make(chan struct{})
	ps.px.waiters = append(ps.px.waiters, exited)
	pid := ps.proc.p.Pid
	rj.stop(ps.proc)
	go func() {
		select {
		case <-exited:
			rj.s.loop.post(func() {
				ps.wanted = who
				ps.th.forget() // kickstart: now, whatever the throttle says
			})
			start()
		case <-time.After(kickstartWait):
			w.finish(fmt.Errorf("the backend (pid %d) has not exited after %v", pid, kickstartWait))
		}
	}()
	return okf("killing the backend of %s (pid %d) to restart it", label, pid), w
}
