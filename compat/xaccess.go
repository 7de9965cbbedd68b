package compat

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sockd/sockd/job"
)

// The xinetd attributes that narrow who may connect, where a service
// listens and how many it serves. Each is enforced exactly by the job, or
// the service is an error: none may make sockd serve wider than xinetd.

// denyAll is the Deny list of a job xinetd would serve nobody with.
var denyAll = []string{"0.0.0.0/0", "::/0"}

// refusedAttrs narrow access in a way sockd cannot enforce: a service that
// has one (its own or from defaults) is an error.
var refusedAttrs = map[string]string{
	"access_times": "xinetd serves only within these hours; sockd has no time-of-day windows and would serve at any hour: remove access_times to serve at all hours",
	"max_load":     "xinetd refuses clients while the load average is at or above it; sockd does not look at the load and would serve them: remove max_load to serve at any load",
}

// listenOn sets the family and address as xinetd 2.3.15 binds them: IPv4
// by default; with flags IPv6 (IPv4 too or not) one IPv6 socket, which
// takes IPv4 clients unless v6only = yes; with bind (or its synonym
// interface) an IP address, or a host name that /etc/hosts gives exactly
// one address of the family for.
func (x *ximport) listenOn() bool {
	v6only := x.yesNo("v6only", false)
	v, ln, hasBind := x.one("bind")
	key := "bind"
	if a, ok := x.sv.single["bind"]; ok {
		key = a.name // or its synonym interface, as written
	}
	if x.failed {
		return false
	}
	v4, v6 := x.flags.v4, x.flags.v6
	_, fln, _ := x.get("flags")
	if v4 && v6 {
		x.warnf(fln, "flags", "both IPv4 and IPv6: as xinetd 2.3.15 does, one IPv6 socket (it takes IPv4 clients too, unless v6only = yes)")
	}
	if !hasBind {
		x.sp.family = job.IPv4 // xinetd's default family
		if v6 && v6only {
			x.sp.family = job.IPv6
		} else if v6 {
			x.sp.family = job.FamilyUnspec
		}
		return true
	}
	a, err := x.bindAddr(v, !v6, !v4 || v6)
	switch {
	case err != nil:
		return x.fail(ln, key, "%v", err)
	case v6 && a.Is4():
		return x.fail(fln, "flags", "flag IPv6 conflicts with bind %s (xinetd 2.3.15 cannot start this service: it binds an IPv6 socket)", a)
	case v4 && !v6 && a.Is6():
		return x.fail(fln, "flags", "flag IPv4 conflicts with bind %s (xinetd 2.3.15 would listen on 0.0.0.0 instead)", a)
	}
	x.bind = a.String()
	x.sp.nodes = []string{x.bind}
	x.sp.family = job.IPv6
	if a.Is4() {
		x.sp.family = job.IPv4
	}
	return true
}

// bindAddr resolves a bind value: an IP address, or a host name with one
// address of the wanted families in /etc/hosts (sockd never asks DNS).
// xinetd 2.3.15 refuses a name it cannot resolve, an interface name
// included ("bad address"), so these are errors here too, never all
// addresses.
func (x *ximport) bindAddr(v string, want4, want6 bool) (netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
		return a.Unmap(), nil
	}
	all := x.l.sys.hosts.addrs(v)
	addrs := ofFamily(all, want4, want6)
	switch {
	case len(addrs) == 1:
		return addrs[0], nil
	case len(addrs) > 1:
		return netip.Addr{}, fmt.Errorf("%q has several addresses in /etc/hosts (%s) and xinetd binds only one of them, which one depending on its resolver: write the address to listen on, e.g. bind = %s", v, joinAddrs(addrs), addrs[0])
	case len(all) > 0:
		return netip.Addr{}, fmt.Errorf("%q has no address of the service's family in /etc/hosts (it has %s): write the address to listen on", v, joinAddrs(all))
	}
	if ifa, ok := x.l.sys.ifaceAddrs(v); ok {
		has := "it has no address"
		if len(ifa) > 0 {
			has = "it has " + joinAddrs(ifa)
		}
		return netip.Addr{}, fmt.Errorf("%q is a network interface, not an address: xinetd 2.3.15 refuses it too (\"bad address\") and does not start the service; write the address to listen on (%s)", v, has)
	}
	return netip.Addr{}, fmt.Errorf("cannot resolve %q in /etc/hosts (sockd resolves bind names without DNS; xinetd does not start a service whose bind it cannot resolve): write the address to listen on", v)
}

// limits reads instances, per_source and cps.
func (x *ximport) limits() bool {
	lim := &x.j.Limits
	if v, ln, ok := x.one("instances"); ok {
		n, err := strconv.Atoi(v)
		switch {
		case strings.EqualFold(v, "UNLIMITED"):
			lim.MaxChildren = Unlimited
		case err == nil && n >= 1:
			lim.MaxChildren = min(n, Unlimited)
		default:
			return x.fail(ln, "instances", "%q: want a positive number or UNLIMITED", v)
		}
	} else if x.failed {
		return false
	}
	if v, ln, ok := x.one("per_source"); ok {
		n, err := strconv.Atoi(v)
		switch {
		case strings.EqualFold(v, "UNLIMITED"):
			lim.MaxPerSource = 0
		case err == nil && n == 0:
			x.closeJob(ln, "per_source", "0 lets no client in: xinetd serves nobody")
		case err == nil && n > 0:
			lim.MaxPerSource = min(n, Unlimited)
		default:
			return x.fail(ln, "per_source", "%q: want a number or UNLIMITED", v)
		}
	} else if x.failed {
		return false
	}
	return x.cps()
}

// cps sets the spawn rate: xinetd's built-in "cps = 50 10" unless given.
func (x *ximport) cps() bool {
	lim := &x.j.Limits
	lim.Rate, lim.Burst, lim.Pause = XinetdDefaultCPS, XinetdDefaultCPS, XinetdDefaultCPSWait
	v, ln, ok := x.get("cps")
	if !ok {
		return true
	}
	if len(v) != 2 {
		return x.fail(ln, "cps", "want two numbers (connections per second, seconds to wait), found %q", strings.Join(v, " "))
	}
	rate, err1 := strconv.Atoi(v[0])
	wait, err2 := strconv.Atoi(v[1])
	if err1 != nil || err2 != nil || rate < 1 || rate > 1<<20 || wait < 0 || wait > 1<<31 {
		return x.fail(ln, "cps", "%q: want a positive rate and a wait in seconds", strings.Join(v, " "))
	}
	lim.Rate, lim.Burst, lim.Pause = float64(rate), rate, time.Duration(wait)*time.Second
	return true
}

// closeJob makes the job serve nobody, as xinetd would: disabled, and
// denying every address should it be enabled.
func (x *ximport) closeJob(ln int, key, why string) {
	x.warnf(ln, key, "%s; the job is disabled and denies every address", why)
	x.j.Disabled, x.nobody = true, true
	x.j.Limits.Allow, x.j.Limits.Deny = nil, append([]string(nil), denyAll...)
}

// access reads only_from and no_access, the service's own or from
// defaults. An only_from that is there but empty lets nobody in.
func (x *ximport) access() bool {
	sv := x.sv
	if vals, present := sv.lists["only_from"]; present && !x.nobody {
		ln := lineOr(sv.listLn["only_from"], x.b.line)
		if len(vals) == 0 {
			x.closeJob(ln, "only_from", "no address is allowed: xinetd serves nobody")
			return true
		}
		allow, ok := x.allowList(ln, vals)
		if !ok {
			return false
		}
		x.j.Limits.Allow = allow
	}
	if vals := sv.lists["no_access"]; len(vals) > 0 && !x.nobody {
		ln := lineOr(sv.listLn["no_access"], x.b.line)
		deny, ok := x.denyList(ln, vals)
		if !ok {
			return false
		}
		x.j.Limits.Deny = deny
		warnSpecificAllow(x.s, x.file, ln, x.j.Limits.Allow, deny)
	}
	return true
}

// prefixSet collects CIDR prefixes in order, each once.
type prefixSet struct {
	list []string
	seen map[string]bool
}

func (p *prefixSet) add(ps ...string) {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	for _, s := range ps {
		if !p.seen[s] {
			p.seen[s] = true
			p.list = append(p.list, s)
		}
	}
}

func hostPrefix(a netip.Addr) string { return netip.PrefixFrom(a, a.BitLen()).String() }

// allowList converts only_from entries to prefixes. A name becomes the
// addresses namedAllow finds for it; an entry that matches no address is
// dropped (that only narrows access), but when every entry is dropped the
// service is an error: an empty Allow would let everyone in.
func (x *ximport) allowList(ln int, vals []string) ([]string, bool) {
	var out prefixSet
	inert := 0
	for _, v := range vals {
		ps, ok, err := addrPattern(v)
		if err != nil {
			return nil, x.fail(ln, "only_from", "%v", err)
		}
		if !ok {
			ps = x.namedAllow(ln, v)
		}
		forms := x.accessForms(ln, "only_from", v, ps)
		if len(ps) > 0 && len(forms) == 0 {
			inert++
		}
		out.add(forms...)
	}
	if len(out.list) == 0 && inert == len(vals) {
		x.closeJob(ln, "only_from", "none of its entries ("+strings.Join(vals, " ")+") can match a client of this IPv4 service: xinetd serves nobody")
		return nil, true
	}
	if len(out.list) == 0 {
		return nil, x.fail(ln, "only_from", "none of its entries (%s) matches an address sockd can admit (xinetd matches names by the client's reverse DNS name, sockd addresses only), and an empty only_from would admit everyone: list the clients' addresses", strings.Join(vals, " "))
	}
	return out.list, true
}

// namedAllow turns a host name of only_from into the addresses /etc/hosts
// gives it whose first name there is that name: xinetd, which matches the
// client's reverse name, admits each of them too. A domain (".example.com")
// and a name /etc/hosts does not have match no address here.
func (x *ximport) namedAllow(ln int, v string) []string {
	if strings.HasPrefix(v, ".") {
		x.warnf(ln, "only_from", "domain %q dropped: xinetd matches it against the client's reverse DNS name, sockd matches addresses only", v)
		return nil
	}
	hosts := x.l.sys.hosts
	var out []string
	var other []netip.Addr
	for _, a := range hosts.addrs(v) {
		if strings.EqualFold(hosts.canonical(a), v) {
			out = append(out, hostPrefix(a))
		} else {
			other = append(other, a)
		}
	}
	if len(other) > 0 {
		x.warnf(ln, "only_from", "host name %q: %s dropped: /etc/hosts names it %q first, so xinetd, which matches the client's reverse name, would not admit it", v, joinAddrs(other), hosts.canonical(other[0]))
	}
	switch {
	case len(out) > 0:
		x.warnf(ln, "only_from", "host name %q is %s in /etc/hosts", v, strings.Join(out, ", "))
	case len(other) == 0:
		x.warnf(ln, "only_from", "cannot resolve %q in /etc/hosts (sockd resolves names without DNS; xinetd matches them by the client's reverse lookup); it is dropped", v)
	}
	return out
}

// denyList converts no_access entries to prefixes. A name is an error:
// xinetd refuses every client whose reverse DNS name matches it, which no
// list of addresses is sure to cover.
func (x *ximport) denyList(ln int, vals []string) ([]string, bool) {
	var out prefixSet
	for _, v := range vals {
		ps, ok, err := addrPattern(v)
		if err != nil {
			return nil, x.fail(ln, "no_access", "%v", err)
		}
		if !ok {
			hint := ""
			if a := x.l.sys.hosts.addrs(v); len(a) > 0 {
				hint = " (/etc/hosts gives " + joinAddrs(a) + ")"
			}
			return nil, x.fail(ln, "no_access", "%q is a name: xinetd refuses every client whose reverse DNS name matches it, and sockd, which matches addresses only, could not refuse them all: list the addresses to refuse%s", v, hint)
		}
		out.add(x.accessForms(ln, "no_access", v, ps)...)
	}
	return out.list, true
}

// accessForms turns the prefixes of one only_from or no_access entry into
// those sockd matches exactly as xinetd matches the entry. sockd matches
// IPv4 clients in IPv4 form, so an IPv6 prefix that names IPv4-mapped
// addresses gets its IPv4 form (job.AccessForms): with flags = IPv6,
// xinetd serves IPv4 clients on its IPv6 socket as ::ffff:a.b.c.d and
// matches IPv6 entries against that (no_access = :: refuses them too). On
// an IPv4 socket such an entry matches no client of xinetd's, so it is
// dropped, with a warning.
func (x *ximport) accessForms(ln int, key, entry string, ps []string) []string {
	var out []string
	for _, p := range ps {
		if !job.NamesIPv4(p) {
			out = append(out, p)
			continue
		}
		if x.sp.family == job.IPv4 {
			x.warnf(ln, key, "%s dropped: it names IPv4 clients in IPv6 form (%s), which xinetd matches only on an IPv6 socket (flags = IPv6); this service listens on IPv4, where xinetd matches no client with it", entry, p)
			continue
		}
		forms, err := job.AccessForms(p)
		if err != nil { // addrPattern gives netip forms: not reached
			forms = []string{p}
		}
		out = append(out, forms...)
	}
	return out
}

// waitService fits a wait = yes server to sockd, which hands it the
// socket and never sees a client: address lists and INTERCEPT cannot be
// enforced (errors), and SockdLimits do not apply to such a job, so none
// is written. instances and per_source change nothing there (one server
// runs at a time); cps is replaced by sockd's wait-mode restart guard.
func (x *ximport) waitService() bool {
	ln := x.flags.intercept
	if !x.wait() {
		if ln > 0 {
			x.warnf(ln, "flags", "INTERCEPT ignored, as xinetd ignores it for a wait = no service")
		}
		return true
	}
	if ln > 0 {
		return x.fail(ln, "flags", "INTERCEPT: xinetd checks every client of the running server against the access rules; sockd hands the server its socket and sees no client: remove the flag, or set wait = no")
	}
	for _, k := range []string{"only_from", "no_access"} {
		vals, present := x.sv.lists[k]
		if present && (k == "only_from" || len(vals) > 0) {
			return x.fail(lineOr(x.sv.listLn[k], x.b.line), k, "cannot be enforced for a wait = yes service: sockd hands the socket to the server and never sees its clients (xinetd checks the first datagram's source): set wait = no, or restrict access in the server or a firewall")
		}
	}
	if a, ok := x.sv.single["cps"]; ok && a.line > 0 {
		x.warnf(a.line, "cps", "not applied to a wait = yes service: sockd starts its server again only once it has exited, and throttles one that exits leaving its request unread")
	}
	dropWaitLimits(x.j)
	return true
}

// refused makes a service with an attribute of refusedAttrs an error.
func (x *ximport) refused() bool {
	names := make([]string, 0, len(refusedAttrs))
	for n := range refusedAttrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if a, ok := x.sv.single[n]; ok {
			return x.fail(a.line, n, "%s", refusedAttrs[n])
		}
	}
	return true
}

// tcpWrappers makes a service an error when hosts.allow or hosts.deny can
// refuse its clients: xinetd, built with libwrap, checks them at every
// connection and sockd has no TCP wrappers. Not checked: a service with
// flags = NOLIBWRAP, and one whose server is tcpd under NAMEINARGS (tcpd
// checks the same daemon name itself when sockd runs it).
func (x *ximport) tcpWrappers() bool {
	if x.flags.noLibwrap || x.flags.nameInArgs && filepath.Base(x.j.Program) == "tcpd" {
		return true
	}
	daemon, ln := x.wrapName()
	w := x.l.sys.wrap
	if w.err != nil {
		return x.fail(ln, "libwrap", "cannot read the TCP wrappers' tables (%v), which xinetd applies to this service: make them readable, or add flags = NOLIBWRAP", w.err)
	}
	r := w.restricting(daemon)
	if r == nil {
		return true
	}
	return x.fail(ln, "libwrap", "%s:%d (%q) can refuse clients of this service: xinetd, built with TCP wrappers, checks hosts.allow and hosts.deny at every connection under the daemon name %q, and sockd has no TCP wrappers; run the server through /usr/sbin/tcpd with flags = NAMEINARGS (tcpd checks them itself), or write the rule as only_from/no_access and add flags = NOLIBWRAP", r.file, r.line, r.text, daemon)
}

// wrapName is the daemon name xinetd gives libwrap, and the line to
// report: the libwrap attribute, the service name for a redirect or
// internal service, else the server's (argv[0]'s with NAMEINARGS) base
// name.
func (x *ximport) wrapName() (string, int) {
	if v, ln, ok := x.get("libwrap"); ok && len(v) > 0 {
		return v[0], ln
	}
	switch {
	case x.j.Proxy != nil || x.j.Internal != "":
		return x.b.name, x.b.line
	case x.flags.nameInArgs:
		return filepath.Base(x.j.Argv[0]), x.b.line
	}
	return filepath.Base(x.j.Program), x.b.line
}
