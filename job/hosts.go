package job

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
)

// HostLimits are a job's LimitLoadToHosts and LimitLoadFromHosts, as
// written. They are compared with the kernel's host name (uname -n), never
// with anything DNS says.
type HostLimits struct {
	// To is LimitLoadToHosts: nil when the key is not set (every host
	// loads the job); otherwise only the hosts it names load the job, and
	// an empty list means no host (as launchctl decides).
	To []string
	// From is LimitLoadFromHosts: the hosts that do not load the job.
	From []string
}

// IsSet reports whether either key is set.
func (h HostLimits) IsSet() bool { return h.To != nil || len(h.From) > 0 }

// LoadsOn reports whether the host named host loads the job, in
// launchctl's order: a match in LimitLoadFromHosts excludes it, then a
// LimitLoadToHosts must name it. When the host does not load the job, key
// is the key that excludes it and why says how.
func (h HostLimits) LoadsOn(host string) (ok bool, key, why string) {
	for _, e := range h.From {
		if HostMatches(e, host) {
			return false, "LimitLoadFromHosts", fmt.Sprintf("this host, %q, is excluded by %q", host, e)
		}
	}
	if h.To == nil {
		return true, "", ""
	}
	for _, e := range h.To {
		if HostMatches(e, host) {
			return true, "", ""
		}
	}
	if len(h.To) == 0 {
		return false, "LimitLoadToHosts", "the list is empty, so no host loads the job"
	}
	why = fmt.Sprintf("this host, %q, is not among %s", host, quoteList(h.To))
	if near := nearHosts(h.To, host); len(near) > 0 {
		why += fmt.Sprintf(" (%s only differs in the domain: names are compared whole, as launchd does; write %q to load the job here)", quoteList(near), host)
	}
	return false, "LimitLoadToHosts", why
}

// HostMatches reports whether a LimitLoadToHosts or LimitLoadFromHosts
// entry names the host called host: the same name, ignoring case, as
// launchctl compares them (strcasecmp with the kernel's host name). A
// short name does not match a longer one ("web1" is not the host
// "web1.example.com"), nor a trailing dot its absence.
func HostMatches(entry, host string) bool {
	return entry != "" && strings.EqualFold(entry, host)
}

// nearHosts are the entries of list that name host's first label with
// another domain, or none ("web1" for the host "web1.example.com"): they
// do not match it (HostMatches), which a warning or info line says.
func nearHosts(list []string, host string) []string {
	var out []string
	for _, e := range list {
		if !HostMatches(e, host) && strings.EqualFold(firstLabel(normHost(e)), firstLabel(normHost(host))) {
			out = append(out, e)
		}
	}
	return out
}

func normHost(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

func firstLabel(s string) string {
	label, _, _ := strings.Cut(s, ".")
	return label
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// HostName is the host name that LimitLoadToHosts and LimitLoadFromHosts
// are compared with: o.Hostname, or the kernel's (uname -n).
func (o LoadOptions) HostName() (string, error) {
	if o.Hostname != "" {
		return o.Hostname, nil
	}
	h, err := os.Hostname()
	if err == nil && h == "" {
		err = errors.New("the kernel's host name is empty")
	}
	return h, err
}

// SelectForHost returns, in order, the jobs that this host loads
// (LimitLoadToHosts, LimitLoadFromHosts, against opts.Hostname or the
// kernel's host name), and an Info diagnostic for each job it does not
// load; a job with host limits when the host name cannot be read is an
// error and is not loaded. serve, check and print all decide through it
// (package jobset, their one loader), before CrossCheck: a job this host does not load
// claims neither its Label nor its addresses here.
func SelectForHost(jobs []*Job, opts LoadOptions) ([]*Job, Diags) {
	var kept []*Job
	var diags Diags
	var host string
	var hostErr error
	resolved := false
	for _, j := range jobs {
		if !j.Hosts.IsSet() {
			kept = append(kept, j)
			continue
		}
		if !resolved {
			host, hostErr = opts.HostName()
			resolved = true
		}
		if d := hostDiag(j, host, hostErr); d != nil {
			diags = append(diags, *d)
			continue
		}
		if near := nearHosts(j.Hosts.From, host); len(near) > 0 {
			diags = append(diags, Diag{File: j.File, Key: "LimitLoadFromHosts", Severity: Warning, Msg: fmt.Sprintf(
				"%s does not exclude this host, %q: names are compared whole, ignoring case, as launchd does; write %q to exclude it", quoteList(near), host, host)})
		}
		kept = append(kept, j)
	}
	return kept, diags
}

// hostDiag is nil when the host loads j, else why not.
func hostDiag(j *Job, host string, hostErr error) *Diag {
	if hostErr != nil {
		return &Diag{File: j.File, Key: hostKey(j), Severity: Error, Msg: fmt.Sprintf(
			"cannot read this host's name (%v), so whether this host loads the job cannot be decided; it is not loaded: fix the host name (hostname(1)) or remove the key", hostErr)}
	}
	ok, key, why := j.Hosts.LoadsOn(host)
	if ok {
		return nil
	}
	return &Diag{File: j.File, Key: key, Severity: Info, Msg: fmt.Sprintf("not loaded on this host (%s): %s", key, why)}
}

func hostKey(j *Job) string {
	if j.Hosts.To != nil {
		return "LimitLoadToHosts"
	}
	return "LimitLoadFromHosts"
}

// hostLimits decodes LimitLoadToHosts and LimitLoadFromHosts.
func (d *decoder) hostLimits(top *dictView) HostLimits {
	return HostLimits{To: d.hostList(top, "LimitLoadToHosts"), From: d.hostList(top, "LimitLoadFromHosts")}
}

// hostList decodes one array of host names: nil when the key is not set,
// never nil when it is. A wrong type or an unusable name is an error, for
// the job would otherwise load on hosts the file excludes.
func (d *decoder) hostList(top *dictView, name string) []string {
	key, v, ok := top.get(name)
	if !ok {
		return nil
	}
	if _, isArray := v.([]any); !isArray {
		d.errorf(key, "must be an array of host names (<array><string>web1</string></array>), not %s", describe(v))
		return nil
	}
	list, ok := d.strings(key, v)
	if !ok {
		return nil
	}
	for i, h := range list {
		if normHost(h) == "" || strings.ContainsFunc(h, unicode.IsSpace) {
			d.errorf(index(key, i), "%q is not a host name: give a name as uname -n prints it, such as \"web1\" or \"web1.example.com\"", h)
		}
	}
	if name == "LimitLoadToHosts" && len(list) == 0 {
		d.warnf(key, "is empty, so no host loads the job (as in launchd): name the hosts that should load it, or remove the key")
	}
	return list
}
