package job

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// CrossCheck checks jobs against each other: two jobs with one Label, and
// two enabled jobs claiming one address (the same transport and address,
// or a wildcard and a specific address of the same family and port; port 0
// never conflicts). Of two jobs in conflict, the one whose file name sorts
// first is kept and the other is reported and dropped. Disabled jobs claim
// no addresses. The kept jobs are returned in their input order.
func CrossCheck(jobs []*Job) ([]*Job, Diags) {
	sorted := append([]*Job(nil), jobs...)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].File < sorted[b].File })
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

	type claim struct {
		job *Job
		ep  *Endpoint
	}
	// Only endpoints in one bucket (one path, or one transport and port)
	// can conflict, so 10,000 jobs need no 10,000² comparisons.
	claimed := map[string][]claim{}
	for _, j := range sorted {
		if drop[j] || j.Disabled {
			continue
		}
		eps := j.Endpoints()
		bad := false
		for _, ep := range eps {
			for _, c := range claimed[conflictBucket(ep)] {
				if conflict(ep, c.ep) {
					diags = append(diags, Diag{File: j.File, Key: ep.Key, Severity: Error, Msg: fmt.Sprintf(
						"%s %s conflicts with %s %s of job %q (%s %s), so this job is not loaded: change the address, or disable one of the jobs",
						ep.Network, ep.Address, c.ep.Network, c.ep.Address, c.job.Label, c.job.File, c.ep.Key)})
					bad = true
					break
				}
			}
		}
		if bad {
			drop[j] = true
			continue
		}
		for _, ep := range eps {
			b := conflictBucket(ep)
			claimed[b] = append(claimed[b], claim{j, ep})
		}
	}

	var kept []*Job
	for _, j := range jobs {
		if !drop[j] {
			kept = append(kept, j)
		}
	}
	return kept, diags
}

// conflictBucket groups endpoints that may conflict (see conflict): Unix
// sockets by path, IP sockets by transport and port.
func conflictBucket(ep *Endpoint) string {
	if strings.HasPrefix(ep.Network, "unix") {
		return "unix|" + ep.Address
	}
	if ap, err := netip.ParseAddrPort(ep.Address); err == nil {
		return ep.Network + "|" + strconv.Itoa(int(ap.Port()))
	}
	return ep.Network + "|" + ep.Address
}
