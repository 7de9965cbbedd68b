package jobset

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sockd/sockd/internal/privilege"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/spawn"
)

// preflight judges jobs for the sockd of its options: whatever this sockd
// would refuse when it loads a job, or fail at each of its starts.
type preflight struct {
	view    privilege.View
	checker *spawn.Checker
}

func newPreflight(opts Options) *preflight {
	return &preflight{view: opts.View, checker: spawn.NewChecker(opts.spawnOptions(), opts.View)}
}

// check returns the problems of one job. A disabled job is neither bound
// nor started, so it is not judged.
func (p *preflight) check(j *job.Job) job.Diags {
	if j.Disabled {
		return nil
	}
	var ds job.Diags
	if spawn.Runs(j) {
		ds = append(ds, importedProgram(j)...)
		for _, pr := range p.checker.Check(j) {
			sev := job.Warning
			if pr.Fatal {
				sev = job.Error
			}
			ds = append(ds, diag(j, sev, pr.Key, pr.Msg))
		}
	}
	ds = append(ds, p.ports(j)...)
	return append(ds, p.owners(j)...)
}

// importedProgram refuses an imported service whose server is missing or
// not executable, as xinetd does (a job file's missing program is only a
// warning, from Decode: launchd loads such a job).
func importedProgram(j *job.Job) job.Diags {
	if strings.HasPrefix(j.Source, "launchd") || !filepath.IsAbs(j.Path) {
		return nil
	}
	fi, err := os.Stat(j.Path)
	var why string
	switch {
	case os.IsNotExist(err):
		why = "does not exist"
	case err != nil:
		why = fmt.Sprintf("cannot be checked (%v)", err)
	case fi.IsDir():
		why = "is a directory"
	case fi.Mode()&0o111 == 0:
		why = fmt.Sprintf("is not executable (mode %#o)", uint32(fi.Mode().Perm()))
	default:
		return nil
	}
	return job.Diags{diag(j, job.Error, "Program", fmt.Sprintf("server %s %s, so sockd does not load the service: install the server or fix its path", j.Path, why))}
}

// ports refuses inet sockets on a port below
// net.ipv4.ip_unprivileged_port_start for a sockd without
// CAP_NET_BIND_SERVICE: the bind would fail. One error per socket.
func (p *preflight) ports(j *job.Job) job.Diags {
	if p.view.Has(privilege.CapNetBindService) {
		return nil
	}
	var ds job.Diags
	seen := map[string]bool{}
	for _, ep := range j.Endpoints() {
		if !ep.Passive || seen[ep.Key] || !(strings.HasPrefix(ep.Network, "tcp") || strings.HasPrefix(ep.Network, "udp")) {
			continue
		}
		ap, err := netip.ParseAddrPort(ep.Address)
		if err != nil || ap.Port() == 0 || int(ap.Port()) >= p.view.PortStart || slices.Contains(p.view.Ports, int(ap.Port())) {
			continue
		}
		seen[ep.Key] = true
		ds = append(ds, diag(j, job.Error, ep.Key+".SockServiceName", fmt.Sprintf(
			"port %d is below %d (net.ipv4.ip_unprivileged_port_start), and binding it needs root or CAP_NET_BIND_SERVICE, which this sockd (%s) lacks, so the job is not loaded: use a port of %d or more for a per-user job, or load the job in root's sockd",
			ap.Port(), p.view.PortStart, p.view, p.view.PortStart)))
	}
	return ds
}

// owners refuses SockPathOwner and SockPathGroup that this sockd cannot
// give a socket without CAP_CHOWN: another user, a group it is not in.
func (p *preflight) owners(j *job.Job) job.Diags {
	if p.view.Has(privilege.CapChown) {
		return nil
	}
	var ds job.Diags
	for _, s := range sockets(j) {
		if s.PathOwner != nil && *s.PathOwner != p.view.UID {
			ds = append(ds, diag(j, job.Error, s.Key+".SockPathOwner", fmt.Sprintf(
				"giving the socket to uid %d needs CAP_CHOWN, which this sockd (%s) lacks, so the job is not loaded: remove SockPathOwner, or load the job in root's sockd", *s.PathOwner, p.view)))
		}
		if s.PathGroup != nil {
			if in, known := p.view.InGroup(*s.PathGroup); known && !in {
				ds = append(ds, diag(j, job.Error, s.Key+".SockPathGroup", fmt.Sprintf(
					"giving the socket to gid %d, a group this sockd (%s) is not in, needs CAP_CHOWN, which it lacks, so the job is not loaded: use one of its groups, or remove SockPathGroup", *s.PathGroup, p.view)))
			}
		}
	}
	return ds
}

// sockets are the socket dictionaries of j.
func sockets(j *job.Job) []*job.Socket {
	var out []*job.Socket
	for gi := range j.Sockets {
		for si := range j.Sockets[gi].Sockets {
			out = append(out, &j.Sockets[gi].Sockets[si])
		}
	}
	return out
}
