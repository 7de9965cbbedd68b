package job

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// CheckBackend reports what keeps sockd from connecting to a SockdProxy
// Backend: "host:port" with a port of 1-65535 (a number, or a name of the
// services database), or an absolute Unix socket path. Host names are not
// resolved here; sockd resolves them at each connection.
func CheckBackend(b string) error {
	switch {
	case b == "":
		return errors.New("is empty: give host:port or an absolute Unix socket path")
	case strings.HasPrefix(b, "/"):
		if len(b) > MaxUnixPath {
			return fmt.Errorf("path is %d bytes long; Unix socket paths are limited to %d bytes: choose a shorter path", len(b), MaxUnixPath)
		}
		return nil
	case IsAbstract(b):
		return fmt.Errorf("%q: an abstract Unix socket cannot be a Backend: give an absolute socket path, or host:port", b)
	}
	host, port, err := net.SplitHostPort(b)
	if err != nil {
		if strings.Contains(b, "/") {
			return fmt.Errorf("%q is a relative path: sockd connects from its own working directory, not the job's: give the absolute path of the socket", b)
		}
		return fmt.Errorf("%q: want host:port or an absolute Unix socket path (%v)", b, err)
	}
	if strings.TrimSpace(host) != host {
		return fmt.Errorf("%q: the host has blanks around it: write host:port without them", b)
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %d is out of range: give a port from 1 to 65535", b, n)
		}
		return nil
	}
	if _, err := lookupPort("tcp", port); err != nil {
		return fmt.Errorf("%q: port %v", b, err)
	}
	return nil
}

// backendLoops reports every proxy job of jobs (enabled, kept by
// CrossCheck) whose Backend is an address one of those jobs claims (its own
// sockets too): sockd would forward the connections back to itself, and a
// backend it starts could not listen there. claimed holds their claims.
// It returns the proxy jobs to drop.
func backendLoops(jobs []*Job, claimed *claimIndex) (Diags, map[*Job]bool) {
	var diags Diags
	drop := map[*Job]bool{}
	local := localAddrs()
	for _, j := range jobs {
		if j.Proxy == nil || j.Disabled {
			continue
		}
		for _, ep := range backendEndpoints(j) {
			c, ok := claimed.backend(ep, local)
			if !ok {
				continue
			}
			diags = append(diags, Diag{File: j.File, Key: "SockdProxy.Backend", Severity: Error, Msg: loopMessage(j, c)})
			drop[j] = true
			break
		}
	}
	return diags, drop
}

func loopMessage(j *Job, c claim) string {
	if c.job == j {
		return fmt.Sprintf("%s is this job's own socket (%s %s %s): sockd would forward every connection back to itself, so the job is not loaded: point Backend at the address the backend listens on, one no job claims",
			j.Proxy.Backend, c.ep.Key, c.ep.Network, c.ep.Address)
	}
	return fmt.Sprintf("%s is claimed by job %q (%s, %s %s %s): connections to it come back into sockd, and a backend sockd starts could not listen there, so this job is not loaded: give the backend an address no job claims",
		j.Proxy.Backend, c.job.Label, c.job.File, c.ep.Key, c.ep.Network, c.ep.Address)
}

// backendEndpoints are the addresses a proxy job's connections go to, as
// endpoints sockd could hold: the Unix path, or host:port for every
// transport the job proxies, the host an IP address, "localhost" or empty
// (both loopback addresses). Other host names are not resolved (and not
// checked).
func backendEndpoints(j *Job) []*Endpoint {
	b := j.Proxy.Backend
	if strings.HasPrefix(b, "/") {
		return []*Endpoint{{Network: "unix", Address: b, Passive: true}}
	}
	host, port, err := net.SplitHostPort(b)
	if err != nil {
		return nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return nil
	}
	var addrs []netip.Addr
	switch a, err := netip.ParseAddr(host); {
	case err == nil:
		addrs = []netip.Addr{a.Unmap()}
	case host == "" || strings.EqualFold(host, "localhost"):
		addrs = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
	}
	var out []*Endpoint
	for _, transport := range proxiedTransports(j) {
		for _, a := range addrs {
			network := transport + "6"
			if a.Is4() {
				network = transport + "4"
			}
			out = append(out, &Endpoint{Network: network, Address: netip.AddrPortFrom(a, uint16(n)).String(), Passive: true})
		}
	}
	return out
}

// proxiedTransports are "tcp" when the job proxies stream sockets, "udp"
// when it proxies datagram sockets.
func proxiedTransports(j *Job) []string {
	var tcp, udp bool
	for _, ep := range j.Endpoints() {
		switch {
		case strings.HasPrefix(ep.Network, "udp"):
			udp = true
		default:
			tcp = true
		}
	}
	var out []string
	if tcp {
		out = append(out, "tcp")
	}
	if udp {
		out = append(out, "udp")
	}
	return out
}

// backend returns the claim a connection to ep reaches: one of ep's exact
// address, else, when ep's address is on this host, a wildcard of its port
// (any claim of the port when ep itself is the unspecified address).
func (x *claimIndex) backend(ep *Endpoint, local func(netip.Addr) bool) (claim, bool) {
	k, ok := claimOf(ep)
	if !ok {
		return claim{}, false
	}
	if c, ok := x.exact[k.exact]; ok {
		return c, true
	}
	if !k.ip {
		return claim{}, false
	}
	if k.wild {
		c, ok := x.first[k.bucket()]
		return c, ok
	}
	if !local(k.exact.ap.Addr()) {
		return claim{}, false
	}
	c, ok := x.wild[k.bucket()]
	return c, ok
}

// localAddrs reports whether an address is this host's: loopback, or one
// of its interfaces' (read once, when first asked).
func localAddrs() func(netip.Addr) bool {
	var addrs map[netip.Addr]bool
	return func(a netip.Addr) bool {
		if a.IsLoopback() {
			return true
		}
		if addrs == nil {
			addrs = map[netip.Addr]bool{}
			ifas, _ := net.InterfaceAddrs()
			for _, ifa := range ifas {
				if p, err := netip.ParsePrefix(ifa.String()); err == nil {
					addrs[p.Addr().Unmap()] = true
				}
			}
		}
		return addrs[a]
	}
}
