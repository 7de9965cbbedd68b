package job

import (
	"fmt"
	"net/netip"
	"sort"
)

// CrossCheck checks jobs against each other: two jobs with one Label, and
// two enabled jobs claiming one address (the same transport and address,
// or a wildcard and a specific address of the same family and port; port 0
// never conflicts). Of two jobs in conflict, the one whose file name sorts
// first is kept and the other is reported and dropped. Disabled jobs claim
// no addresses. Then a proxy job whose Backend is an address a kept job
// claims (its own included) is reported and dropped (backendLoops). The
// kept jobs are returned in their input order.
//
// The addresses are checked through an index (claimIndex), in time linear
// in the number of endpoints, whatever they are: a job is reported once
// per address of another job that it conflicts with.
func CrossCheck(jobs []*Job) ([]*Job, Diags) {
	return crossCheck(jobs, byFile(jobs))
}

// CrossCheckAgainst is CrossCheck of held and fresh together, where every
// job of held wins a conflict with a job of fresh: a bootstrap's new files
// are the ones reported and dropped, never the jobs that run.
func CrossCheckAgainst(held, fresh []*Job) ([]*Job, Diags) {
	all := append(append([]*Job(nil), held...), fresh...)
	return crossCheck(all, append(byFile(held), byFile(fresh)...))
}

// byFile is jobs sorted by file name.
func byFile(jobs []*Job) []*Job {
	sorted := append([]*Job(nil), jobs...)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].File < sorted[b].File })
	return sorted
}

// crossCheck checks jobs in the order of sorted, an earlier job winning.
func crossCheck(jobs, sorted []*Job) ([]*Job, Diags) {
	diags, drop := checkLabels(sorted)

	claimed := newClaimIndex()
	for _, j := range sorted {
		if drop[j] || j.Disabled {
			continue
		}
		eps := claimEndpoints(j.Endpoints())
		if ds := crossConflicts(j, eps, claimed); len(ds) > 0 {
			diags = append(diags, ds...)
			drop[j] = true
			continue
		}
		for _, ep := range eps {
			claimed.add(j, ep)
		}
	}
	var live []*Job
	for _, j := range sorted {
		if !drop[j] {
			live = append(live, j)
		}
	}
	loops, loopDrop := backendLoops(live, claimed)
	diags = append(diags, loops...)
	for j := range loopDrop {
		drop[j] = true
	}

	var kept []*Job
	for _, j := range jobs {
		if !drop[j] {
			kept = append(kept, j)
		}
	}
	return kept, diags
}

// checkLabels reports every job whose Label an earlier job of sorted
// already has, and returns them as the jobs to drop.
func checkLabels(sorted []*Job) (Diags, map[*Job]bool) {
	var diags Diags
	drop := map[*Job]bool{}
	byLabel := map[string]*Job{}
	for _, j := range sorted {
		if prev, dup := byLabel[j.Label]; dup {
			diags = append(diags, Diag{File: j.File, Key: "Label", Severity: Error, Msg: fmt.Sprintf(
				"duplicate Label %q: %s already defines it, so this job is not loaded: give each job a unique Label",
				j.Label, prev.File)})
			drop[j] = true
			continue
		}
		byLabel[j.Label] = j
	}
	return diags, drop
}

// crossConflicts reports the endpoints of j that conflict with an address
// claimed by an earlier job: one error per claimed address, which names
// the first endpoint of j that conflicts with it and counts the others.
func crossConflicts(j *Job, eps []*Endpoint, claimed *claimIndex) Diags {
	var order []*Endpoint // the claimed endpoints hit, in order of first hit
	hits := map[*Endpoint][]*Endpoint{}
	owner := map[*Endpoint]*Job{}
	for _, ep := range eps {
		c, ok := claimed.find(ep)
		if !ok {
			continue
		}
		if _, seen := hits[c.ep]; !seen {
			order = append(order, c.ep)
			owner[c.ep] = c.job
		}
		hits[c.ep] = append(hits[c.ep], ep)
	}
	var diags Diags
	for _, cep := range order {
		mine, other := hits[cep], owner[cep]
		first := mine[0]
		msg := fmt.Sprintf("%s %s conflicts with %s %s of job %q (%s %s)",
			first.Network, first.Address, cep.Network, cep.Address, other.Label, other.File, cep.Key)
		fix := "change the address, or disable one of the jobs"
		if n := len(mine) - 1; n > 0 {
			msg += fmt.Sprintf(", and so do %s of this job (the last: %s %s of %s)",
				plural(n, "other socket"), mine[n].Network, mine[n].Address, mine[n].Key)
			fix = "change the addresses, or disable one of the jobs"
		}
		diags = append(diags, Diag{File: j.File, Key: first.Key, Severity: Error,
			Msg: msg + ", so this job is not loaded: " + fix})
	}
	return diags
}

// claimEndpoints is eps with, after each dual-stack endpoint (an IPv6
// wildcard with IPv6Only false, which takes IPv4 clients too), the IPv4
// wildcard of its port that it also claims: the kernel refuses to bind
// both, and either to bind one next to an IPv4 socket of that port.
func claimEndpoints(eps []*Endpoint) []*Endpoint {
	var out []*Endpoint
	for i, ep := range eps {
		if !ep.DualStack() {
			if out != nil {
				out = append(out, ep)
			}
			continue
		}
		if out == nil {
			out = append(make([]*Endpoint, 0, len(eps)+1), eps[:i]...)
		}
		ap, _ := netip.ParseAddrPort(ep.Address)
		v4 := *ep
		v4.Network = ep.Network[:3] + "4"
		v4.Address = netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port()).String()
		out = append(out, ep, &v4)
	}
	if out == nil {
		return eps
	}
	return out
}

// claimKey is what an endpoint claims, in the terms of conflict: two
// endpoints conflict when their exact keys are equal, or when both are IP
// endpoints of one bucket (transport, family and port) and one of them is
// a wildcard.
type claimKey struct {
	exact exactKey
	// ip is true for an IP endpoint whose address parses (ap is valid).
	ip bool
	// wild is true for an unspecified address (0.0.0.0 or ::).
	wild bool
}

// exactKey identifies one address: a Unix path (network "unix" for every
// Unix socket type, path set), an IP address and port (ap set), or an IP
// address that does not parse, compared as written (path set).
type exactKey struct {
	network string
	path    string
	ap      netip.AddrPort
}

// bucketKey is the transport, family and port of an IP endpoint.
type bucketKey struct {
	network string
	port    uint16
}

// bucket returns the bucket of an IP claim.
func (k claimKey) bucket() bucketKey {
	return bucketKey{k.exact.network, k.exact.ap.Port()}
}

// claimOf returns the claim of ep; ok is false for an endpoint that never
// conflicts (not passive, port 0, or a multicast group), as conflict
// defines it.
func claimOf(ep *Endpoint) (k claimKey, ok bool) {
	if !ep.Passive {
		return k, false
	}
	if IsPathNetwork(ep.Network) {
		return claimKey{exact: exactKey{network: "unix", path: ep.Address}}, true
	}
	if ep.Socket != nil && ep.Socket.MulticastGroup != "" {
		return k, false
	}
	ap, err := netip.ParseAddrPort(ep.Address)
	if err != nil {
		return claimKey{exact: exactKey{network: ep.Network, path: ep.Address}}, true
	}
	if ap.Port() == 0 {
		return k, false
	}
	return claimKey{exact: exactKey{network: ep.Network, ap: ap}, ip: true, wild: ap.Addr().IsUnspecified()}, true
}

// overlaps reports whether two claims conflict; for claims of endpoints a
// and b it equals conflict(a, b).
func overlaps(a, b claimKey) bool {
	if a.exact == b.exact {
		return true
	}
	return a.ip && b.ip && (a.wild || b.wild) && a.bucket() == b.bucket()
}

// claim is one endpoint claimed by a job; seq is its place in claim order.
type claim struct {
	job *Job
	ep  *Endpoint
	seq int
}

// claimIndex holds the endpoints claimed so far and finds the earliest one
// an endpoint conflicts with in constant time: only the earliest claim of
// each exact address, of each bucket, and of each bucket's wildcards can
// be that one.
type claimIndex struct {
	exact map[exactKey]claim
	first map[bucketKey]claim
	wild  map[bucketKey]claim
	n     int
}

func newClaimIndex() *claimIndex {
	return &claimIndex{exact: map[exactKey]claim{}, first: map[bucketKey]claim{}, wild: map[bucketKey]claim{}}
}

// add records that j claims ep.
func (x *claimIndex) add(j *Job, ep *Endpoint) {
	k, ok := claimOf(ep)
	if !ok {
		return
	}
	c := claim{job: j, ep: ep, seq: x.n}
	x.n++
	addFirst(x.exact, k.exact, c)
	if k.ip {
		addFirst(x.first, k.bucket(), c)
		if k.wild {
			addFirst(x.wild, k.bucket(), c)
		}
	}
}

// addFirst stores c under k unless k already has a claim.
func addFirst[K comparable](m map[K]claim, k K, c claim) {
	if _, ok := m[k]; !ok {
		m[k] = c
	}
}

// find returns the earliest claim that ep conflicts with.
func (x *claimIndex) find(ep *Endpoint) (claim, bool) {
	k, ok := claimOf(ep)
	if !ok {
		return claim{}, false
	}
	if k.ip && k.wild {
		// A wildcard conflicts with every claim of its bucket.
		c, ok := x.first[k.bucket()]
		return c, ok
	}
	c, ok := x.exact[k.exact]
	if k.ip {
		if w, wok := x.wild[k.bucket()]; wok && (!ok || w.seq < c.seq) {
			c, ok = w, true
		}
	}
	return c, ok
}

// ownConflict is one problem found by ownConflicts: Msg belongs to the
// socket Key, the key of endpoint number At.
type ownConflict struct {
	At       int
	Key, Msg string
}

// ownConflicts finds the endpoints of one job that claim one address (see
// conflict), in time linear in len(eps): one problem per address claimed
// more than once, with a count, and one per wildcard that overlaps other
// sockets of its port. A conflict between two sockets only keeps the
// message of the pairwise check it replaces. The problems come out in
// endpoint order.
func ownConflicts(eps []*Endpoint) []ownConflict {
	var (
		order   []exactKey             // exact keys, in order of first claim
		groups  = map[exactKey][]int{} // endpoints claiming each exact key
		buckets []bucketKey            // buckets, in order of first claim
		members = map[bucketKey][]int{}
		wild    = map[bucketKey]exactKey{} // the earliest wildcard's key
	)
	for i, ep := range eps {
		k, ok := claimOf(ep)
		if !ok {
			continue
		}
		if len(groups[k.exact]) == 0 {
			order = append(order, k.exact)
		}
		groups[k.exact] = append(groups[k.exact], i)
		if !k.ip {
			continue
		}
		b := k.bucket()
		if len(members[b]) == 0 {
			buckets = append(buckets, b)
		}
		members[b] = append(members[b], i)
		if _, ok := wild[b]; k.wild && !ok {
			wild[b] = k.exact
		}
	}
	var out []ownConflict
	for _, k := range order {
		if c, ok := sameAddress(eps, groups[k]); ok {
			out = append(out, c)
		}
	}
	for _, b := range buckets {
		if wk, ok := wild[b]; ok {
			if c, ok := wildcardOverlap(eps, b.port, groups[wk], members[b]); ok {
				out = append(out, c)
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].At < out[b].At })
	return out
}

// sameAddress reports the endpoints of group (indexes into eps, in order),
// which claim one address, at the second of them.
func sameAddress(eps []*Endpoint, group []int) (ownConflict, bool) {
	if len(group) < 2 {
		return ownConflict{}, false
	}
	if len(group) == 2 {
		return pairConflict(eps, group[0], group[1]), true
	}
	at, first := eps[group[1]], eps[group[0]]
	return ownConflict{At: group[1], Key: at.Key, Msg: fmt.Sprintf(
		"%s %s is claimed by %s of this job (first: %s, last: %s): two sockets cannot claim one address; keep one of them or change the addresses of the others",
		at.Network, at.Address, plural(len(group)-1, "other socket"), first.Key, eps[group[len(group)-1]].Key)}, true
}

// wildcardOverlap reports the endpoints of one bucket (members, on port)
// that the wildcard address claimed by wg overlaps, at the first of wg.
func wildcardOverlap(eps []*Endpoint, port uint16, wg, members []int) (ownConflict, bool) {
	in := make(map[int]bool, len(wg))
	for _, i := range wg {
		in[i] = true
	}
	var others []int
	for _, i := range members {
		if !in[i] {
			others = append(others, i)
		}
	}
	switch {
	case len(others) == 0:
		return ownConflict{}, false
	case len(wg) == 1 && len(others) == 1:
		a, b := wg[0], others[0]
		if a > b {
			a, b = b, a
		}
		return pairConflict(eps, a, b), true
	}
	w, o, last := eps[wg[0]], eps[others[0]], eps[others[len(others)-1]]
	return ownConflict{At: wg[0], Key: w.Key, Msg: fmt.Sprintf(
		"%s %s overlaps %s of this job on port %d (first: %s %s of %s, last: %s %s of %s): a wildcard address claims its port on every address; remove the wildcard socket or the others",
		w.Network, w.Address, plural(len(others), "other socket"), port,
		o.Network, o.Address, o.Key, last.Network, last.Address, last.Key)}, true
}

// pairConflict is the message for the two conflicting endpoints a < b,
// reported at b.
func pairConflict(eps []*Endpoint, a, b int) ownConflict {
	ea, eb := eps[a], eps[b]
	return ownConflict{At: b, Key: eb.Key, Msg: fmt.Sprintf(
		"%s %s overlaps %s %s of %s in the same job: two sockets cannot claim one address; remove one or change its address",
		eb.Network, eb.Address, ea.Network, ea.Address, ea.Key)}
}

// plural returns "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
