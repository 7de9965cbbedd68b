//go:build linux

package supervisor

// User domains (sockd bootstrap user/UID): the jobs of users that root's
// sockd serves beside its own, each from the user's jobs directory, run and
// bound with that user's rights (package domain). Which domains are up is
// kept in the overrides file, so that they survive restarts; the requests
// of a user are scoped here to that user's own domain.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/domain"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/overrides"
)

// domainFiles are the user domains served, by uid, with the files
// bootstrapped into each, as the overrides file last read says.
func (s *Supervisor) domainFiles() map[int][]string {
	s.ctl.stateMu.Lock()
	defer s.ctl.stateMu.Unlock()
	out := map[int][]string{}
	if s.ctl.ov != nil && s.cfg.LoadDomain != nil {
		for uid, files := range s.ctl.ov.Domains {
			out[uid] = slices.Clone(files)
		}
	}
	return out
}

// withDomains adds the jobs of every user domain served to jobs, the
// system domain's. A domain's job that claims an address a system job (or
// an earlier domain's) holds is the one refused.
func (s *Supervisor) withDomains(jobs []*job.Job, diags job.Diags) ([]*job.Job, job.Diags) {
	doms := s.domainFiles()
	uids := make([]int, 0, len(doms))
	for uid := range doms {
		uids = append(uids, uid)
	}
	sort.Ints(uids)
	for _, uid := range uids {
		more, ds, err := s.cfg.LoadDomain(uid, true, doms[uid])
		if err != nil {
			diags = append(diags, job.Diag{File: s.cfg.Overrides, Severity: job.Error, Msg: err.Error() + "; its jobs are not served (sockd bootout " + domain.Name(uid) + " forgets it)"})
			continue
		}
		var cds job.Diags
		jobs, cds = job.CrossCheckAgainst(jobs, more)
		diags = append(append(diags, ds...), cds...)
	}
	return jobs, diags
}

// isAdmin reports whether peer may act on every domain: root, or the user
// this sockd runs as.
func (s *Supervisor) isAdmin(peer control.Peer) bool {
	return peer.Uid == 0 || peer.Uid == s.owner
}

// scope resolves the labels of req for peer and checks that peer may act
// on each (refused: a NotPermitted answer, logged). "system/x" is x;
// "user/UID/x" is a user domain's job (or x, in the sockd of that user); a
// bare label is the peer's own domain's job where it has one, else the
// system's.
func (s *Supervisor) scope(peer control.Peer, req control.Request) (control.Request, *control.Response) {
	out := req
	out.Labels = make([]string, len(req.Labels))
	for i, l := range req.Labels {
		q := s.resolve(peer, l)
		if why := s.mayTouch(peer, req.Cmd, q); why != "" {
			return req, s.refuse(peer, req, why)
		}
		out.Labels[i] = q
	}
	return out, nil
}

// resolve is the label sockd knows the job l names by, for peer.
func (s *Supervisor) resolve(peer control.Peer, l string) string {
	uid, bare, ok := domain.Split(l)
	switch {
	case ok && (uid == -1 || uid == s.owner):
		return bare
	case ok:
		return l
	case !s.isAdmin(peer):
		if q := domain.Qualify(peer.Uid, l); s.known(q) {
			return q
		}
	}
	return l
}

// mayTouch says why peer may not send cmd for the job labelled q ("" when
// it may): a user domain's jobs are their user's and root's; a system job
// may be read by anyone and changed by root.
func (s *Supervisor) mayTouch(peer control.Peer, cmd, q string) string {
	if s.isAdmin(peer) {
		return ""
	}
	if uid, _, ok := domain.Split(q); ok {
		if uid == peer.Uid {
			return ""
		}
		return fmt.Sprintf("job %s is in %s's domain: only that user and root may see or change it; you are uid %d", q, domain.Name(uid), peer.Uid)
	}
	if control.ReadOnly(cmd) {
		return ""
	}
	return fmt.Sprintf("%s needs root: you are uid %d, and %s is a system job; you may change only the jobs of your own domain, %s", cmd, peer.Uid, q, domain.Name(peer.Uid))
}

// refuse answers a refused request and logs it with who asked.
func (s *Supervisor) refuse(peer control.Peer, req control.Request, why string) *control.Response {
	s.log.Warn("control request refused", zap.String("cmd", req.Cmd), zap.Strings("labels", req.Labels),
		zap.String("domain", req.Domain), zap.Int("uid", peer.Uid), zap.Int("pid", peer.Pid), zap.String("why", why))
	resp := control.Errorf(control.NotPermitted, "%s", why)
	return &resp
}

// visible reports whether peer may see the job labelled l in a list.
func (s *Supervisor) visible(peer control.Peer, l string) bool {
	uid, _, ok := domain.Split(l)
	return !ok || s.isAdmin(peer) || uid == peer.Uid
}

// bootstrapDomain picks the domain a bootstrap or bootout acts on: uid -1
// for the system domain. A user's request without one is for their own
// domain.
func (s *Supervisor) bootstrapDomain(peer control.Peer, req control.Request) (int, *control.Response) {
	if req.Domain == "" {
		if s.isAdmin(peer) {
			return -1, nil
		}
		return peer.Uid, nil
	}
	uid, ok := domain.Parse(req.Domain)
	if !ok {
		resp := control.Errorf(control.BadRequest, "%q is not a domain: write system or user/UID", req.Domain)
		return 0, &resp
	}
	if uid == s.owner {
		uid = -1 // a user's own sockd: its one domain
	}
	if !s.isAdmin(peer) && uid != peer.Uid {
		return 0, s.refuse(peer, req, fmt.Sprintf("%s needs root: you are uid %d; you may %s only in your own domain, %s", req.Cmd, peer.Uid, req.Cmd, domain.Name(peer.Uid)))
	}
	return uid, nil
}

// domainServed reports whether uid's domain is up.
func (s *Supervisor) domainServed(uid int) bool {
	_, ok := s.domainFiles()[uid]
	return ok
}

// saveDomains changes the overrides file's domains with change, and
// writes it.
func (s *Supervisor) saveDomains(change func(map[int][]string)) error {
	f, err := overrides.Load(s.cfg.Overrides)
	if err != nil {
		return fmt.Errorf("nothing changed: %w; fix or remove the file first", err)
	}
	change(f.Domains)
	if err := f.Save(s.cfg.Overrides); err != nil {
		return err
	}
	s.readOverrides()
	return nil
}

// hostsDomains says why this sockd cannot serve user domains ("" if it
// can): only root's, with an overrides file to remember them.
func (s *Supervisor) hostsDomains() string {
	switch {
	case s.cfg.LoadDomain == nil || s.owner != 0:
		return "this sockd does not serve user domains: only root's sockd does (a user's own sockd serves that user's jobs)"
	case s.cfg.Overrides == "":
		return "this sockd has no overrides file, where it would remember the user domains it serves"
	}
	return ""
}

// ctlDomainUp answers bootstrap user/UID (root): the domain's jobs are
// loaded now, touching no other job, and the domain is served from then
// on, across restarts.
func (s *Supervisor) ctlDomainUp(ctx context.Context, peer control.Peer, uid int) control.Response {
	if why := s.hostsDomains(); why != "" {
		return control.Errorf(control.Failed, "%s", why)
	}
	name := domain.Name(uid)
	if s.domainServed(uid) {
		return control.Response{Status: control.OK, Done: []string{name + " is served already"}}
	}
	// Nothing to load: only whether the user exists, before anything is
	// written.
	if _, _, err := s.cfg.LoadDomain(uid, false, nil); err != nil {
		return control.Errorf(control.Failed, "nothing changed: %v", err)
	}
	if err := s.saveDomains(func(d map[int][]string) { d[uid] = nil }); err != nil {
		return control.Errorf(control.Failed, "%v", err)
	}
	var added []string
	op := reloadOp{who: peer.String(), preset: func(snap map[string]jobSnap) ([]*job.Job, job.Diags, error) {
		fresh, diags, err := s.cfg.LoadDomain(uid, true, nil)
		if err != nil {
			return nil, diags, err
		}
		kept, more := job.CrossCheckAgainst(runningDefs(snap), fresh)
		for _, j := range fresh {
			if slices.Contains(kept, j) {
				added = append(added, j.Label)
			}
		}
		return append(kept, s.disabledDefs()...), append(diags, more...), nil
	}}
	r := s.reloadAndWait(ctx, op)
	s.logChange(peer, control.CmdBootstrap, zap.String("domain", name), zap.Strings("jobs", added))
	done := []string{"serving " + name}
	for _, l := range added {
		done = append(done, "loaded "+l)
	}
	return answerReload(r, done)
}

// ctlDomainDown answers bootout user/UID (root): every job of the domain
// stops and its sockets close now, and the domain is no longer served.
func (s *Supervisor) ctlDomainDown(ctx context.Context, peer control.Peer, uid int) control.Response {
	name := domain.Name(uid)
	if !s.domainServed(uid) {
		return control.Errorf(control.NoSuchJob, "%s is not served (sockd list shows the jobs served)", name)
	}
	if err := s.saveDomains(func(d map[int][]string) { delete(d, uid) }); err != nil {
		return control.Errorf(control.Failed, "%v", err)
	}
	var gone []string
	op := reloadOp{who: peer.String(), preset: func(snap map[string]jobSnap) ([]*job.Job, job.Diags, error) {
		var keep []*job.Job
		for _, j := range append(runningDefs(snap), s.disabledDefs()...) {
			if j.Domain != nil && j.Domain.UID == uid {
				gone = append(gone, j.Label)
				continue
			}
			keep = append(keep, j)
		}
		return keep, nil, nil
	}}
	r := s.reloadAndWait(ctx, op)
	s.logChange(peer, control.CmdBootout, zap.String("domain", name), zap.Strings("jobs", gone))
	done := []string{"stopped serving " + name}
	for _, l := range gone {
		done = append(done, "unloaded "+l)
	}
	return answerReload(r, done)
}

// domainLoader is bootstrap's loader of files into uid's domain.
func (s *Supervisor) domainLoader(uid int) func(files []string) ([]*job.Job, job.Diags) {
	return func(files []string) ([]*job.Job, job.Diags) {
		jobs, diags, err := s.cfg.LoadDomain(uid, false, files)
		if err != nil {
			diags = append(diags, job.Diag{Severity: job.Error, Msg: err.Error()})
		}
		return jobs, diags
	}
}

// ctlBootoutDomain answers bootout user/UID.
func (s *Supervisor) ctlBootoutDomain(ctx context.Context, peer control.Peer, req control.Request) control.Response {
	uid, refused := s.bootstrapDomain(peer, req)
	switch {
	case refused != nil:
		return *refused
	case uid < 0:
		return control.Errorf(control.BadRequest, "bootout takes the labels of the jobs to unload, or a user domain (user/UID)")
	case !s.isAdmin(peer):
		return *s.refuse(peer, req, fmt.Sprintf("bootout of a domain needs root: you are uid %d; bootout LABEL unloads a job of your own", peer.Uid))
	}
	return s.ctlDomainDown(ctx, peer, uid)
}

// dropDomainFiles forgets files bootstrapped into a domain whose jobs were
// booted out.
func (s *Supervisor) dropDomainFiles(files []string) {
	found := false
	for _, fs := range s.domainFiles() {
		found = found || slices.ContainsFunc(fs, func(f string) bool { return slices.Contains(files, f) })
	}
	if !found {
		return
	}
	err := s.saveDomains(func(d map[int][]string) {
		for uid, fs := range d {
			d[uid] = slices.DeleteFunc(fs, func(f string) bool { return slices.Contains(files, f) })
		}
	})
	if err != nil {
		s.log.Error("bootout: the files bootstrapped into a domain are still remembered", zap.Error(err))
	}
}

// answerFor is answerReload for peer: a user sees the diagnostics of their
// own domain's files only, never those of the system's or another user's.
func (s *Supervisor) answerFor(peer control.Peer, r reloadResult, done []string) control.Response {
	if s.isAdmin(peer) {
		return answerReload(r, done)
	}
	own := s.domainFiles()[peer.Uid]
	dir := ""
	if d, err := domain.Lookup(peer.Uid); err == nil {
		dir = domain.JobsDir(d) + "/"
	}
	var mine job.Diags
	for _, d := range r.diags {
		if (dir != "" && strings.HasPrefix(d.File, dir)) || slices.Contains(own, d.File) {
			mine = append(mine, d)
		}
	}
	r.diags = mine
	return answerReload(r, done)
}
