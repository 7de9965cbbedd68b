package compat

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sockd/sockd/job"
)

// XinetdOptions change how LoadXinetdWith finds included files.
type XinetdOptions struct {
	// Relocate resolves every absolute include or includedir path by its
	// last element in the loaded tree: the directory of the file given to
	// LoadXinetdWith, or the parent of the directory given
	// ("includedir /etc/xinetd.d" read from DIR/xinetd.conf reads
	// DIR/xinetd.d), never the host's own /etc. Use it for a copied
	// configuration tree. Without it an absolute path is used as written,
	// and only when it does not exist is the tree tried (with a warning).
	Relocate bool
	// OnRead, when set, is called with the path of every file read.
	OnRead func(path string)
}

// LoadXinetd imports an xinetd configuration: path is xinetd.conf (its
// include and includedir directives are followed), a directory such as
// xinetd.d (read as includedir reads it), or a single service file.
func LoadXinetd(path string) ([]*job.Job, job.Diags) {
	return LoadXinetdWith(path, XinetdOptions{})
}

// LoadXinetdWith is LoadXinetd with options.
func LoadXinetdWith(path string, opts XinetdOptions) ([]*job.Job, job.Diags) {
	l := newXLoader(true, opts, systemResolver)
	fi, err := os.Stat(path)
	if err != nil {
		l.s.errorf(path, 0, "", "%v", err)
		return nil, l.s.diags
	}
	l.root = filepath.Dir(filepath.Clean(path))
	if fi.IsDir() {
		l.includeDir(path, path, 0, 0)
	} else {
		l.includeFile(path, "", 0, 0)
	}
	return l.finish()
}

// ParseXinetd imports the xinetd configuration text in data; name is used
// in messages and Job.File. It reads no file: include and includedir are
// reported as warnings and ignored.
func ParseXinetd(data []byte, name string) ([]*job.Job, job.Diags) {
	return parseXinetd(data, name, systemResolver)
}

func parseXinetd(data []byte, name string, lookup resolver) ([]*job.Job, job.Diags) {
	l := newXLoader(false, XinetdOptions{}, lookup)
	l.parse(data, name, 0)
	return l.finish()
}

// xattr is one "name op values" line.
type xattr struct {
	name string
	op   string // "=", "+=", "-="
	vals []string
	line int
}

// xblock is a service or defaults block.
type xblock struct {
	defaults bool
	name     string
	file     string
	line     int
	attrs    []xattr
}

type xloader struct {
	s      *sink
	fs     bool
	opts   XinetdOptions
	lookup resolver
	seen   map[string]bool
	order  map[string]int // files in the order they were parsed
	root   string         // the loaded tree (see XinetdOptions.Relocate)
	nfiles int
	blocks []*xblock
}

func newXLoader(fs bool, opts XinetdOptions, lookup resolver) *xloader {
	return &xloader{s: &sink{}, fs: fs, opts: opts, lookup: lookup, seen: map[string]bool{}, order: map[string]int{}}
}

var attrLine = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*(\+=|-=|=)\s*(.*)$`)

// includeFile reads and parses one file. from is the file holding the
// directive ("" for the top) and line its line.
func (l *xloader) includeFile(path, from string, line, depth int) {
	if depth > MaxIncludeDepth {
		l.s.errorf(from, line, "include", "includes nested more than %d deep; %s not read", MaxIncludeDepth, path)
		return
	}
	key := filepath.Clean(path)
	if abs, err := filepath.Abs(key); err == nil {
		key = abs
	}
	if l.seen[key] {
		l.s.warnf(from, line, "include", "%s was already read; not read again", path)
		return
	}
	l.seen[key] = true
	if l.nfiles++; l.nfiles > MaxFiles {
		l.s.errorf(from, line, "include", "more than %d files; %s not read", MaxFiles, path)
		return
	}
	data, err := readConfig(path)
	if err != nil {
		l.s.errorf(from, line, "include", "%v", err)
		return
	}
	if l.opts.OnRead != nil {
		l.opts.OnRead(path)
	}
	l.parse(data, path, depth)
}

// includeDir reads every file of dir as xinetd does: names containing a
// dot or ending in '~' are skipped, the rest read in byte (C locale) order.
func (l *xloader) includeDir(dir, from string, line, depth int) {
	if depth > MaxIncludeDepth {
		l.s.errorf(from, line, "includedir", "includes nested more than %d deep; %s not read", MaxIncludeDepth, dir)
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		l.s.errorf(from, line, "includedir", "%v", err)
		return
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		n := e.Name()
		if strings.Contains(n, ".") || strings.HasSuffix(n, "~") || e.IsDir() {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		l.includeFile(filepath.Join(dir, n), from, line, depth+1)
	}
}

// locate turns an include path into the path to read.
func (l *xloader) locate(p, from string, line int, key string) string {
	dir := filepath.Dir(from)
	if !filepath.IsAbs(p) {
		return filepath.Join(dir, p)
	}
	sibling := filepath.Join(l.root, filepath.Base(p))
	if l.opts.Relocate {
		return sibling
	}
	if _, err := os.Stat(p); err != nil {
		if _, err2 := os.Stat(sibling); err2 == nil {
			l.s.warnf(from, line, key, "%s does not exist; reading %s from the loaded tree instead", p, sibling)
			return sibling
		}
	}
	return p
}

// parse splits one file into blocks and follows include directives.
func (l *xloader) parse(data []byte, name string, depth int) {
	if len(data) > MaxFileSize {
		l.s.errorf(name, 0, "", "larger than %d bytes", MaxFileSize)
		return
	}
	if _, ok := l.order[name]; !ok {
		l.order[name] = len(l.order)
	}
	const (
		outside = iota
		wantBrace
		inside
	)
	state := outside
	var cur *xblock
	lines := bytes.Split(data, []byte("\n"))
	for i := 0; i < len(lines); i++ {
		ln := i + 1
		text := strings.TrimSpace(strings.TrimSuffix(string(lines[i]), "\r"))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) > maxFields {
			l.s.errorf(name, ln, "", "more than %d words; line ignored", maxFields)
			continue
		}
		switch state {
		case wantBrace:
			if text == "{" {
				state = inside
				continue
			}
			l.s.errorf(name, ln, "", "expected { after %q on line %d; %s skipped", blockTitle(cur), cur.line, blockTitle(cur))
			state, cur = outside, nil
			i-- // read this line again outside a block
			continue
		case inside:
			if text == "}" || strings.HasPrefix(text, "}") {
				if text != "}" {
					l.s.warnf(name, ln, "", "text after } ignored: %q", strings.TrimSpace(text[1:]))
				}
				l.blocks = append(l.blocks, cur)
				state, cur = outside, nil
				continue
			}
			if fields[0] == "service" || fields[0] == "defaults" {
				l.s.errorf(name, ln, "", "missing } for %s begun on line %d; it is skipped", blockTitle(cur), cur.line)
				state, cur = outside, nil
				i--
				continue
			}
			m := attrLine.FindStringSubmatch(text)
			if m == nil {
				l.s.errorf(name, ln, "", "cannot parse %q: want attribute = value ...; line ignored", text)
				continue
			}
			vals := strings.Fields(m[3])
			if len(vals) > maxFields {
				vals = vals[:maxFields]
			}
			cur.attrs = append(cur.attrs, xattr{name: m[1], op: m[2], vals: vals, line: ln})
			continue
		}
		// outside a block
		switch fields[0] {
		case "service", "defaults":
			b := &xblock{defaults: fields[0] == "defaults", file: name, line: ln}
			rest := fields[1:]
			brace := false
			if len(rest) > 0 && rest[len(rest)-1] == "{" {
				brace, rest = true, rest[:len(rest)-1]
			}
			if b.defaults {
				if len(rest) > 0 {
					l.s.warnf(name, ln, "", "text after defaults ignored: %q", strings.Join(rest, " "))
				}
			} else {
				if len(rest) == 0 {
					l.s.errorf(name, ln, "", "service without a name; block skipped")
					// skip the block that follows, if any
					b.name = ""
				} else {
					b.name = rest[0]
					if len(rest) > 1 {
						l.s.warnf(name, ln, "", "text after service name ignored: %q", strings.Join(rest[1:], " "))
					}
				}
			}
			cur = b
			state = wantBrace
			if brace {
				state = inside
			}
		case "include", "includedir":
			if len(fields) != 2 {
				l.s.errorf(name, ln, fields[0], "want exactly one path; ignored")
				continue
			}
			if !l.fs {
				l.s.warnf(name, ln, fields[0], "%s %s ignored (configuration parsed without file access)", fields[0], fields[1])
				continue
			}
			p := l.locate(fields[1], name, ln, fields[0])
			if fields[0] == "include" {
				l.includeFile(p, name, ln, depth+1)
			} else {
				l.includeDir(p, name, ln, depth+1)
			}
		case "{", "}":
			l.s.errorf(name, ln, "", "unexpected %s outside a service block; ignored", fields[0])
		default:
			l.s.errorf(name, ln, "", "unexpected %q outside a service block (want service NAME, defaults, include or includedir); ignored", text)
		}
	}
	if state != outside {
		l.s.errorf(name, cur.line, "", "missing } at end of file for %s; it is skipped", blockTitle(cur))
	}
}

func blockTitle(b *xblock) string {
	if b.defaults {
		return "defaults"
	}
	return "service " + b.name
}

// Attribute classes (xinetd.conf(5)).
var (
	// setAttrs accept =, += and -= and may repeat.
	setAttrs = map[string]bool{"only_from": true, "no_access": true, "log_on_success": true, "log_on_failure": true, "passenv": true, "env": true}
	// defaultsAttrs may appear in defaults{}.
	defaultsAttrs = map[string]bool{
		"log_type": true, "bind": true, "interface": true, "per_source": true, "umask": true,
		"log_on_success": true, "log_on_failure": true, "only_from": true, "no_access": true,
		"passenv": true, "instances": true, "disabled": true, "enabled": true, "banner": true,
		"banner_success": true, "banner_fail": true, "groups": true, "cps": true, "max_load": true,
		"v6only": true,
	}
	// cumulativeDefaults: '=' in defaults{} adds, as '+=' does.
	cumulativeDefaults = map[string]bool{
		"log_type": true, "log_on_success": true, "log_on_failure": true, "only_from": true,
		"no_access": true, "passenv": true, "disabled": true, "enabled": true,
	}
	knownAttrs = map[string]bool{
		"id": true, "type": true, "flags": true, "disable": true, "socket_type": true,
		"protocol": true, "wait": true, "user": true, "group": true, "groups": true,
		"server": true, "server_args": true, "instances": true, "nice": true,
		"only_from": true, "no_access": true, "access_times": true, "log_type": true,
		"log_on_success": true, "log_on_failure": true, "rpc_version": true,
		"rpc_number": true, "env": true, "passenv": true, "port": true, "redirect": true,
		"bind": true, "interface": true, "banner": true, "banner_success": true,
		"banner_fail": true, "per_source": true, "cps": true, "max_load": true,
		"umask": true, "rlimit_as": true, "rlimit_files": true, "rlimit_cpu": true,
		"rlimit_data": true, "rlimit_rss": true, "rlimit_stack": true, "deny_time": true,
		"mdns": true, "libwrap": true, "v6only": true,
	}
	// unhonoured attributes and why.
	unhonoured = map[string]string{
		"log_type":       "sockd logs through its own logger",
		"log_on_success": "sockd logs through its own logger",
		"log_on_failure": "sockd logs through its own logger",
		"access_times":   "sockd has no time-of-day access windows",
		"banner":         "sockd sends no banners",
		"banner_success": "sockd sends no banners",
		"banner_fail":    "sockd sends no banners",
		"libwrap":        "sockd does not use TCP wrappers (libwrap)",
		"mdns":           "sockd does no mDNS registration",
		"deny_time":      "sockd has no SENSOR deny list",
		"max_load":       "sockd does not refuse on load average",
	}
)

// defaultsState is the merged content of every defaults{} block.
type defaultsState struct {
	single map[string]xattr
	lists  map[string][]string
	// listLn is the position id of each list's first line.
	listLn map[string]int
	// where maps a position id -(i+1) to a file and line: attributes a
	// service inherits carry these negative ids as their line, so that
	// messages about them point at the defaults block.
	where []pos
}

type pos struct {
	file string
	line int
}

// posID records a defaults position and returns its negative id.
func (d *defaultsState) posID(file string, line int) int {
	d.where = append(d.where, pos{file, line})
	return -len(d.where)
}

func (l *xloader) mergeDefaults() defaultsState {
	d := defaultsState{single: map[string]xattr{}, lists: map[string][]string{}, listLn: map[string]int{}}
	n := 0
	for _, b := range l.blocks {
		if !b.defaults {
			continue
		}
		if n++; n == 2 {
			l.s.warnf(b.file, b.line, "", "more than one defaults block; their attributes are merged")
		}
		for _, a := range b.attrs {
			if !defaultsAttrs[a.name] {
				if knownAttrs[a.name] {
					l.s.warnf(b.file, a.line, a.name, "not allowed in defaults (xinetd ignores it); ignored")
				} else {
					l.s.warnf(b.file, a.line, a.name, "unknown attribute; ignored")
				}
				continue
			}
			if why, ok := unhonoured[a.name]; ok && !(strings.HasPrefix(a.name, "log_on_") && len(a.vals) == 0) {
				l.s.warnf(b.file, a.line, a.name, "not honoured: %s", why)
			}
			if cumulativeDefaults[a.name] || setAttrs[a.name] {
				if _, ok := d.listLn[a.name]; !ok {
					d.listLn[a.name] = d.posID(b.file, a.line)
				}
				if a.op == "-=" {
					d.lists[a.name] = removeAll(d.lists[a.name], a.vals)
				} else {
					d.lists[a.name] = append(d.lists[a.name], a.vals...)
				}
				if _, ok := d.lists[a.name]; !ok {
					d.lists[a.name] = []string{}
				}
				continue
			}
			if a.op != "=" {
				l.s.warnf(b.file, a.line, a.name, "operator %s is only for list attributes; taken as =", a.op)
			}
			if prev, ok := d.single[a.name]; ok {
				l.s.warnf(b.file, a.line, a.name, "set again (first on line %d); the first value is kept", prev.line)
				continue
			}
			a.line = d.posID(b.file, a.line)
			d.single[a.name] = a
		}
	}
	return d
}

func removeAll(list, drop []string) []string {
	out := list[:0:0]
	for _, v := range list {
		keep := true
		for _, d := range drop {
			if v == d {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, v)
		}
	}
	return out
}

// xservice is one service block with defaults applied.
type xservice struct {
	b      *xblock
	single map[string]xattr
	lists  map[string][]string
	// listSet: the service itself set the list (possibly to nothing).
	listSet map[string]bool
	listLn  map[string]int
}

func (l *xloader) resolve(b *xblock, def defaultsState) *xservice {
	sv := &xservice{b: b, single: map[string]xattr{}, lists: map[string][]string{}, listSet: map[string]bool{}, listLn: map[string]int{}}
	touched := map[string]bool{}
	for _, a := range b.attrs {
		if !knownAttrs[a.name] {
			if a.name == "enabled" || a.name == "disabled" {
				l.s.warnf(b.file, a.line, a.name, "only allowed in defaults; ignored")
			} else {
				l.s.warnf(b.file, a.line, a.name, "unknown attribute; ignored")
			}
			continue
		}
		if setAttrs[a.name] {
			if !touched[a.name] {
				touched[a.name] = true
				if a.op == "=" {
					sv.lists[a.name] = nil
				} else {
					sv.lists[a.name] = append([]string(nil), def.lists[a.name]...)
				}
			}
			sv.listSet[a.name] = true
			if _, ok := sv.listLn[a.name]; !ok {
				sv.listLn[a.name] = a.line
			}
			switch a.op {
			case "-=":
				if a.name == "env" {
					l.s.warnf(b.file, a.line, a.name, "-= is not supported for env; ignored")
					continue
				}
				sv.lists[a.name] = removeAll(sv.lists[a.name], a.vals)
			default:
				sv.lists[a.name] = append(sv.lists[a.name], a.vals...)
			}
			continue
		}
		if a.op != "=" {
			l.s.warnf(b.file, a.line, a.name, "operator %s is only for list attributes; taken as =", a.op)
		}
		if prev, ok := sv.single[a.name]; ok {
			l.s.warnf(b.file, a.line, a.name, "set again (first on line %d); the first value is kept", prev.line)
			continue
		}
		sv.single[a.name] = a
	}
	for k, v := range def.lists {
		if !touched[k] {
			sv.lists[k] = v
			sv.listLn[k] = def.listLn[k]
		}
	}
	for k, a := range def.single {
		if _, ok := sv.single[k]; !ok {
			sv.single[k] = a // its line is a negative position id
		}
	}
	// bind and interface are synonyms.
	if a, ok := sv.single["interface"]; ok {
		if _, has := sv.single["bind"]; !has || sv.single["bind"].line < 0 && a.line > 0 {
			sv.single["bind"] = a
		}
	}
	return sv
}

// finish turns the parsed blocks into jobs.
func (l *xloader) finish() ([]*job.Job, job.Diags) {
	def := l.mergeDefaults()
	enabled := map[string]bool{}
	for _, id := range def.lists["enabled"] {
		enabled[id] = true
	}
	disabled := map[string]bool{}
	for _, id := range def.lists["disabled"] {
		disabled[id] = true
	}
	type built struct {
		j    *job.Job
		bind string
		id   string
		file string
		line int
	}
	var all []built
	seen := map[job.Diag]bool{}
	for _, b := range l.blocks {
		if b.defaults || b.name == "" {
			continue
		}
		sv := l.resolve(b, def)
		sub := &sink{}
		j, bind, id := l.service(sv, sub, enabled, disabled)
		// A disabled service that cannot be imported is no reason to fail
		// a check: its errors become warnings.
		isDisabled := j != nil && j.Disabled || j == nil && l.serviceDisabled(sv, enabled, disabled)
		sort.SliceStable(sub.diags, func(a, b int) bool { return sub.diags[a].Line < sub.diags[b].Line })
		for _, d := range sub.diags {
			if d.Line < 0 && -d.Line <= len(def.where) {
				p := def.where[-d.Line-1]
				d.File, d.Line = p.file, p.line
			}
			if isDisabled && d.Severity == job.Error {
				d.Severity = job.Warning
				d.Msg += " (the service is disabled)"
			}
			if seen[d] {
				continue
			}
			seen[d] = true
			l.s.diags = append(l.s.diags, d)
		}
		if j != nil {
			all = append(all, built{j: j, bind: bind, id: id, file: b.file, line: b.line})
		}
	}
	// One id several times with different bind addresses: tell the labels
	// apart by address.
	count := map[string]int{}
	for _, b := range all {
		count[b.j.Label]++
	}
	for _, b := range all {
		if count[b.j.Label] > 1 && b.bind != "" {
			b.j.Label += "@" + b.bind
		}
	}
	var jobs []*job.Job
	byLabel := map[string]int{}
	where := map[string]built{}
	for _, b := range all {
		i, dup := byLabel[b.j.Label]
		if !dup {
			byLabel[b.j.Label] = len(jobs)
			where[b.j.Label] = b
			jobs = append(jobs, b.j)
			continue
		}
		first := where[b.j.Label]
		switch {
		case jobs[i].Disabled && !b.j.Disabled:
			l.s.warnf(first.file, first.line, "id", "service id %s is defined again at %s:%d, which is enabled; this disabled one is dropped", b.id, b.file, b.line)
			jobs[i] = b.j
			where[b.j.Label] = b
		case b.j.Disabled:
			l.s.warnf(b.file, b.line, "id", "duplicate service id %s (first at %s:%d); this disabled one is dropped", b.id, first.file, first.line)
		default:
			l.s.errorf(b.file, b.line, "id", "duplicate service id %s (first at %s:%d): give one of them a distinct id; skipped", b.id, first.file, first.line)
		}
	}
	rank := func(d job.Diag) int {
		if r, ok := l.order[d.File]; ok {
			return r
		}
		return -1
	}
	sort.SliceStable(l.s.diags, func(a, b int) bool {
		da, db := l.s.diags[a], l.s.diags[b]
		if ra, rb := rank(da), rank(db); ra != rb {
			return ra < rb
		}
		return da.Line < db.Line
	})
	return jobs, l.s.diags
}

// serviceDisabled reports whether a service is disabled, without
// importing it.
func (l *xloader) serviceDisabled(sv *xservice, enabled, disabled map[string]bool) bool {
	id := sv.b.name
	if a, ok := sv.single["id"]; ok && len(a.vals) > 0 {
		id = a.vals[0]
	}
	if a, ok := sv.single["disable"]; ok && len(a.vals) > 0 && strings.EqualFold(a.vals[0], "yes") {
		return true
	}
	if a, ok := sv.single["flags"]; ok {
		for _, f := range a.vals {
			if strings.EqualFold(f, "DISABLE") {
				return true
			}
		}
	}
	return disabled[id] || len(enabled) > 0 && !enabled[id]
}

// rlimitAttrs maps xinetd's rlimit_* attributes to resource limits.
var rlimitAttrs = []struct {
	attr, name string
	resource   int
}{
	{"rlimit_as", "AddressSpace", rlimitAS},
	{"rlimit_cpu", "CPU", rlimitCPU},
	{"rlimit_data", "Data", rlimitData},
	{"rlimit_files", "NumberOfFiles", rlimitNofile},
	{"rlimit_rss", "ResidentSetSize", rlimitRSS},
	{"rlimit_stack", "Stack", rlimitStack},
}

// service imports one resolved service block. It returns the job (nil
// when it cannot be imported), its bind address and its id.
func (l *xloader) service(sv *xservice, s *sink, enabled, disabled map[string]bool) (*job.Job, string, string) {
	b := sv.b
	file := b.file
	// get returns the values of a single attribute and the line to report.
	get := func(name string) ([]string, int, bool) {
		a, ok := sv.single[name]
		if !ok {
			return nil, b.line, false
		}
		return a.vals, a.line, true
	}
	one := func(name string) (string, int, bool) {
		vals, ln, ok := get(name)
		if !ok {
			return "", ln, false
		}
		if len(vals) != 1 {
			s.errorf(file, ln, name, "want exactly one value, found %d (%q); service %s skipped", len(vals), strings.Join(vals, " "), b.name)
			return "", ln, false
		}
		return vals[0], ln, true
	}
	fail := func(ln int, key, format string, args ...any) (*job.Job, string, string) {
		s.errorf(file, ln, key, format+"; service %s skipped", append(args, b.name)...)
		return nil, "", ""
	}

	id := b.name
	if v, ln, ok := get("id"); ok {
		if len(v) != 1 {
			return fail(ln, "id", "want exactly one id")
		}
		id = v[0]
	}
	j := newJob("xinetd", file, b.line, "xinetd."+id)

	// type
	var internal, unlisted bool
	if v, ln, ok := get("type"); ok {
		for _, t := range v {
			switch strings.ToUpper(t) {
			case "RPC":
				s.warnf(file, ln, "type", "RPC services are not supported; service %s skipped", b.name)
				return nil, "", ""
			case "TCPMUX", "TCPMUXPLUS":
				s.warnf(file, ln, "type", "TCPMUX services are not supported; service %s skipped", b.name)
				return nil, "", ""
			case "INTERNAL":
				internal = true
			case "UNLISTED":
				unlisted = true
			default:
				return fail(ln, "type", "unknown type %q (want RPC, INTERNAL, TCPMUX, TCPMUXPLUS or UNLISTED)", t)
			}
		}
	}

	// flags
	var v4flag, v6flag, nameInArgs bool
	if v, ln, ok := get("flags"); ok {
		for _, f := range v {
			switch strings.ToUpper(f) {
			case "IPV4":
				v4flag = true
			case "IPV6":
				v6flag = true
			case "REUSE":
				// implied by xinetd and by sockd
			case "NOLIBWRAP":
				// sockd never uses libwrap
			case "NAMEINARGS":
				nameInArgs = true
			case "DISABLE":
				j.Disabled = true
			case "SENSOR":
				return fail(ln, "flags", "SENSOR services are not supported")
			case "INTERCEPT", "NORETRY", "IDONLY", "NODELAY", "KEEPALIVE", "LABELED":
				s.warnf(file, ln, "flags", "flag %s is not honoured", strings.ToUpper(f))
			default:
				s.warnf(file, ln, "flags", "unknown flag %q; ignored", f)
			}
		}
	}

	// disable, defaults' enabled/disabled lists
	if v, ln, ok := one("disable"); ok {
		switch strings.ToLower(v) {
		case "yes":
			j.Disabled = true
		case "no":
		default:
			return fail(ln, "disable", "%q: want yes or no", v)
		}
	} else if _, _, present := get("disable"); present {
		return nil, "", ""
	}
	if disabled[id] || len(enabled) > 0 && !enabled[id] {
		j.Disabled = true
	}

	// socket_type, protocol
	st, ln, ok := one("socket_type")
	if !ok {
		if _, _, present := get("socket_type"); present {
			return nil, "", ""
		}
		return fail(b.line, "socket_type", "missing (want stream or dgram)")
	}
	var sp sockSpec
	switch st {
	case "stream":
		sp.typ, sp.proto = job.Stream, "tcp"
	case "dgram":
		sp.typ, sp.proto = job.Dgram, "udp"
	case "raw":
		s.warnf(file, ln, "socket_type", "raw sockets are not supported; service %s skipped", b.name)
		return nil, "", ""
	case "seqpacket":
		return fail(ln, "socket_type", "seqpacket over IP (SCTP) is not supported")
	default:
		return fail(ln, "socket_type", "unknown socket type %q (want stream or dgram)", st)
	}
	if p, ln, ok := one("protocol"); ok {
		p = strings.ToLower(p)
		if p != "tcp" && p != "udp" {
			return fail(ln, "protocol", "protocol %q is not supported (want tcp or udp)", p)
		}
		if p != sp.proto {
			return fail(ln, "protocol", "protocol %s does not go with socket_type %s", p, st)
		}
	} else if _, _, present := get("protocol"); present {
		return nil, "", ""
	}

	// wait
	w, wln, ok := one("wait")
	if !ok {
		if _, _, present := get("wait"); present {
			return nil, "", ""
		}
		return fail(b.line, "wait", "missing (want yes or no)")
	}
	switch strings.ToLower(w) {
	case "yes":
		j.Inetd = &job.Inetd{Wait: true}
	case "no":
		j.Inetd = &job.Inetd{Wait: false}
	default:
		return fail(wln, "wait", "%q: want yes or no", w)
	}

	// what runs: redirect, internal or server
	redirect, rln, isRedirect := get("redirect")
	server, sln, hasServer := one("server")
	if _, _, present := get("server"); present && !hasServer {
		return nil, "", ""
	}
	switch {
	case isRedirect:
		if len(redirect) != 2 {
			return fail(rln, "redirect", "want host and port, found %q", strings.Join(redirect, " "))
		}
		if sp.typ != job.Stream {
			return fail(rln, "redirect", "only stream (tcp) services can be redirected")
		}
		if j.Inetd.Wait {
			return fail(wln, "wait", "a redirected service must have wait = no")
		}
		port, err := strconv.Atoi(redirect[1])
		if err != nil || port < 1 || port > 65535 {
			if port, err = resolvePort("tcp", redirect[1]); err != nil || port == 0 {
				return fail(rln, "redirect", "bad port %q", redirect[1])
			}
		}
		if hasServer {
			s.warnf(file, sln, "server", "ignored: redirect takes priority")
		}
		if internal {
			s.warnf(file, rln, "type", "INTERNAL ignored: redirect takes priority")
		}
		j.Inetd = nil
		j.Proxy = &job.Proxy{ReadyTimeout: job.DefaultProxyReadyTimeout}
		host := strings.Trim(redirect[0], "[]")
		if a, err := netip.ParseAddr(host); err == nil {
			j.Proxy.Backend = netip.AddrPortFrom(a, uint16(port)).String()
		} else {
			j.Proxy.Backend = host + ":" + strconv.Itoa(port)
		}
	case internal:
		name := internalName(b.name, id)
		if name == "" {
			return fail(sln, "type", "internal service %q is not provided by sockd (it serves echo, discard, chargen, daytime and time)", b.name)
		}
		if hasServer {
			s.warnf(file, sln, "server", "ignored for an INTERNAL service")
		}
		j.Internal = name
		j.Inetd = nil
	default:
		if !hasServer {
			return fail(b.line, "server", "missing (an external service needs server)")
		}
		checkServerPath(s, file, sln, "server", server)
		args, _, _ := get("server_args")
		var argv []string
		if nameInArgs {
			if len(args) == 0 {
				return fail(sln, "server_args", "flag NAMEINARGS needs server_args starting with argv[0]")
			}
			argv = append(argv, args...)
		} else {
			argv = append([]string{filepath.Base(server)}, args...)
		}
		setProgram(j, server, argv)
	}
	if j.Internal == "" && j.Proxy == nil {
		u, _, ok := one("user")
		if !ok {
			if _, _, present := get("user"); present {
				return nil, "", ""
			}
			return fail(b.line, "user", "missing (an external service needs user)")
		}
		j.UserName = u
	} else if u, _, ok := get("user"); ok && len(u) == 1 {
		j.UserName = u[0]
	}
	if g, _, ok := one("group"); ok {
		j.GroupName = g
	} else if _, _, present := get("group"); present {
		return nil, "", ""
	}
	if g, ln, ok := one("groups"); ok {
		switch strings.ToLower(g) {
		case "yes":
			j.InitGroups = true
		case "no":
			j.InitGroups = false
		default:
			return fail(ln, "groups", "%q: want yes or no", g)
		}
	}

	// port
	var port int
	pv, pln, hasPort := one("port")
	if _, _, present := get("port"); present && !hasPort {
		return nil, "", ""
	}
	if hasPort {
		n, err := strconv.Atoi(pv)
		if err != nil || n < 1 || n > 65535 {
			return fail(pln, "port", "%q is not a port number (1-65535)", pv)
		}
		port = n
	}
	listed, lerr := resolvePort(sp.proto, b.name)
	switch {
	case unlisted && !hasPort:
		return fail(b.line, "port", "missing: an UNLISTED service needs port")
	case unlisted:
		sp.service = strconv.Itoa(port)
	case hasPort && lerr == nil && listed != port:
		s.warnf(file, pln, "port", "%d differs from /etc/services (%s is %d/%s); using %d", port, b.name, listed, sp.proto, port)
		sp.service = strconv.Itoa(port)
	case hasPort && lerr == nil:
		sp.service = b.name
	case hasPort:
		sp.service = strconv.Itoa(port)
	case lerr == nil:
		port, sp.service = listed, b.name
	case j.Internal != "":
		// Apple names its dgram internal services "chargen-udp" etc.
		port = internalServices[j.Internal]
		sp.service = j.Internal
		s.warnf(file, b.line, "port", "service %s is not in /etc/services; using the port of %s (%d)", b.name, j.Internal, port)
	default:
		return fail(b.line, "port", "%v; add port (and type = UNLISTED)", lerr)
	}
	sp.port = port

	// family and bind
	bind := ""
	if v, ln, ok := one("bind"); ok {
		if a, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
			a = a.Unmap()
			bind = a.String()
			sp.nodes = []string{bind}
			if a.Is4() {
				sp.family = job.IPv4
			} else {
				sp.family = job.IPv6
			}
		} else if ips, err := l.lookup(v); err == nil && len(ips) > 0 {
			bind = v
			sp.nodes = []string{v}
		} else {
			s.warnf(file, ln, "bind", "%q is not an IP address (interface names are not supported); sockd listens on all addresses instead", v)
		}
	} else if _, _, present := get("bind"); present {
		return nil, "", ""
	}
	v6only := false
	if v, ln, ok := one("v6only"); ok {
		switch strings.ToLower(v) {
		case "yes":
			v6only = true
		case "no":
		default:
			return fail(ln, "v6only", "%q: want yes or no", v)
		}
	}
	switch {
	case v4flag && v6flag:
		s.warnf(file, b.line, "flags", "both IPv4 and IPv6 given; listening on both")
		if bind == "" {
			sp.family = job.FamilyUnspec
		}
	case v4flag:
		if bind != "" && sp.family == job.IPv6 {
			return fail(b.line, "flags", "flag IPv4 conflicts with bind %s", bind)
		}
		sp.family = job.IPv4
	case v6flag:
		if bind != "" && sp.family == job.IPv4 {
			return fail(b.line, "flags", "flag IPv6 conflicts with bind %s", bind)
		}
		if bind == "" && !v6only {
			// xinetd's IPv6 socket accepts IPv4 clients too (v4-mapped):
			// sockd listens on both families.
			sp.family = job.FamilyUnspec
		} else {
			sp.family = job.IPv6
		}
	case bind == "":
		sp.family = job.IPv4 // xinetd's default family
	}

	// limits
	if v, ln, ok := one("instances"); ok {
		if strings.EqualFold(v, "UNLIMITED") {
			j.Limits.MaxChildren = Unlimited
		} else if n, err := strconv.Atoi(v); err == nil && n >= 1 {
			j.Limits.MaxChildren = min(n, Unlimited)
		} else {
			return fail(ln, "instances", "%q: want a positive number or UNLIMITED", v)
		}
	} else if _, _, present := get("instances"); present {
		return nil, "", ""
	}
	if v, ln, ok := one("per_source"); ok {
		if strings.EqualFold(v, "UNLIMITED") {
			j.Limits.MaxPerSource = 0
		} else if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			j.Limits.MaxPerSource = min(n, Unlimited)
		} else {
			return fail(ln, "per_source", "%q: want a number or UNLIMITED", v)
		}
	} else if _, _, present := get("per_source"); present {
		return nil, "", ""
	}
	j.Limits.Rate, j.Limits.Burst, j.Limits.Pause = XinetdDefaultCPS, XinetdDefaultCPS, XinetdDefaultCPSWait
	if v, ln, ok := get("cps"); ok {
		if len(v) != 2 {
			return fail(ln, "cps", "want two numbers (connections per second, seconds to wait), found %q", strings.Join(v, " "))
		}
		rate, err1 := strconv.Atoi(v[0])
		wait, err2 := strconv.Atoi(v[1])
		if err1 != nil || err2 != nil || rate < 1 || rate > 1<<20 || wait < 0 || wait > 1<<31 {
			return fail(ln, "cps", "%q: want a positive rate and a wait in seconds", strings.Join(v, " "))
		}
		j.Limits.Rate, j.Limits.Burst, j.Limits.Pause = float64(rate), rate, time.Duration(wait)*time.Second
	}

	// access control
	if sv.listSet["only_from"] || len(sv.lists["only_from"]) > 0 {
		allow, ok := l.addrList(s, file, sv.listLn["only_from"], b.line, "only_from", sv.lists["only_from"], false)
		if !ok {
			return nil, "", ""
		}
		if len(allow) == 0 {
			s.warnf(file, lineOr(sv.listLn["only_from"], b.line), "only_from", "no address is allowed: xinetd serves nobody; the job is disabled")
			j.Disabled = true
		}
		j.Limits.Allow = allow
	}
	if len(sv.lists["no_access"]) > 0 {
		deny, ok := l.addrList(s, file, sv.listLn["no_access"], b.line, "no_access", sv.lists["no_access"], true)
		if !ok {
			return nil, "", ""
		}
		j.Limits.Deny = deny
		warnSpecificAllow(s, file, lineOr(sv.listLn["no_access"], b.line), j.Limits.Allow, deny)
	}

	// environment
	var env []job.EnvVar
	if names := sv.lists["passenv"]; sv.listSet["passenv"] || len(names) > 0 {
		ln := lineOr(sv.listLn["passenv"], b.line)
		for _, n := range names {
			if v, ok := os.LookupEnv(n); ok {
				env = append(env, job.EnvVar{Name: n, Value: v})
			}
		}
		s.warnf(file, ln, "passenv", "values copied from sockd's environment at load; sockd still passes its whole environment (it cannot withhold variables)")
	}
	for _, kv := range sv.lists["env"] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			s.warnf(file, lineOr(sv.listLn["env"], b.line), "env", "%q is not NAME=value; ignored", kv)
			continue
		}
		env = append(env, job.EnvVar{Name: k, Value: v})
	}
	if len(env) > 0 {
		j.EnvironmentVariables = sortedEnv(env)
	}

	// process attributes
	if v, ln, ok := one("nice"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < -20 || n > 19 {
			return fail(ln, "nice", "%q: want a number from -20 to 19", v)
		}
		j.Nice = &n
	} else if _, _, present := get("nice"); present {
		return nil, "", ""
	}
	if v, ln, ok := one("umask"); ok {
		n, err := strconv.ParseUint(v, 8, 32)
		if err != nil || n > 0o777 {
			return fail(ln, "umask", "%q: want an octal mask such as 022", v)
		}
		u := uint32(n)
		j.Umask = &u
	} else if _, _, present := get("umask"); present {
		return nil, "", ""
	}
	for _, r := range rlimitAttrs {
		v, ln, ok := one(r.attr)
		if !ok {
			if _, _, present := get(r.attr); present {
				return nil, "", ""
			}
			continue
		}
		n, err := parseRlimit(v, r.attr != "rlimit_cpu" && r.attr != "rlimit_files")
		if err != nil {
			return fail(ln, r.attr, "%v", err)
		}
		j.SoftResourceLimits = append(j.SoftResourceLimits, job.RLimit{Name: r.name, Resource: r.resource, Value: n})
		j.HardResourceLimits = append(j.HardResourceLimits, job.RLimit{Name: r.name, Resource: r.resource, Value: n})
	}

	// attributes sockd cannot honour: warn at their own line (inherited
	// defaults were reported once at the defaults block)
	var names []string
	for n := range unhonoured {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if a, ok := sv.single[n]; ok && a.line > 0 {
			s.warnf(file, a.line, n, "not honoured: %s", unhonoured[n])
		}
		if sv.listSet[n] && len(sv.lists[n]) > 0 && ownList(b, n) {
			s.warnf(file, sv.listLn[n], n, "not honoured: %s", unhonoured[n])
		}
	}
	for _, n := range []string{"rpc_version", "rpc_number"} {
		if a, ok := sv.single[n]; ok && a.line > 0 {
			s.warnf(file, a.line, n, "ignored: not an RPC service")
		}
	}

	if err := attachSocket(j, groupName(b.name), sp, l.lookup); err != nil {
		return fail(b.line, "bind", "%v", err)
	}
	return j, bind, id
}

// ownList reports whether the block itself gives the list attribute with a
// non-empty value (an empty "log_on_success =" asks for nothing).
func ownList(b *xblock, name string) bool {
	for _, a := range b.attrs {
		if a.name == name && len(a.vals) > 0 && a.op != "-=" {
			return true
		}
	}
	return false
}

func lineOr(ln, def int) int {
	if ln != 0 {
		return ln
	}
	return def
}

// internalName finds the built-in service an INTERNAL entry means: its
// name, or its id or name less a -stream/-dgram/-tcp/-udp suffix.
func internalName(name, id string) string {
	for _, c := range []string{name, id} {
		for _, suf := range []string{"", "-stream", "-dgram", "-tcp", "-udp"} {
			base, ok := strings.CutSuffix(c, suf)
			if !ok {
				continue
			}
			if _, known := internalServices[base]; known {
				return base
			}
		}
	}
	return ""
}

// addrList converts only_from or no_access entries to CIDR prefixes. Host
// and domain names are resolved at load with a warning; one that cannot be
// resolved is dropped from only_from (which only narrows access) and is an
// error in no_access (dropping it would widen access).
func (l *xloader) addrList(s *sink, file string, ln, blockLine int, key string, vals []string, deny bool) ([]string, bool) {
	ln = lineOr(ln, blockLine)
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, v := range vals {
		ps, ok, err := addrPattern(v)
		if err != nil {
			s.errorf(file, ln, key, "%v; service skipped", err)
			return nil, false
		}
		if ok {
			for _, p := range ps {
				add(p)
			}
			continue
		}
		var ips []netip.Addr
		if !strings.HasPrefix(v, ".") {
			ips, _ = l.lookup(v) // the reason is not kept: the message says what sockd does instead
		}
		if len(ips) == 0 {
			if deny {
				s.errorf(file, ln, key, "cannot resolve %q (xinetd matches names by reverse lookup, sockd only addresses); service skipped", v)
				return nil, false
			}
			s.warnf(file, ln, key, "cannot resolve %q (xinetd matches names by reverse lookup, sockd only addresses); it is dropped", v)
			continue
		}
		var got []string
		for _, ip := range ips {
			ip = ip.Unmap()
			p := netip.PrefixFrom(ip, ip.BitLen()).String()
			got = append(got, p)
			add(p)
		}
		s.warnf(file, ln, key, "host name %q resolved at load to %s", v, strings.Join(got, ", "))
	}
	return out, true
}

// warnSpecificAllow warns where xinetd's "better match wins" rule differs
// from sockd's "deny first": an only_from entry inside a wider no_access
// entry.
func warnSpecificAllow(s *sink, file string, ln int, allow, deny []string) {
	for _, a := range allow {
		pa, err := netip.ParsePrefix(a)
		if err != nil {
			continue
		}
		for _, d := range deny {
			pd, err := netip.ParsePrefix(d)
			if err != nil {
				continue
			}
			if pd.Bits() < pa.Bits() && pd.Contains(pa.Addr()) {
				s.warnf(file, ln, "no_access", "%s is inside %s: xinetd lets the more specific only_from entry win, sockd denies it", a, d)
			}
		}
	}
}

// parseRlimit parses an rlimit_* value: a number, optionally with K or M
// (kilobytes/megabytes) when sizes is true, or UNLIMITED.
func parseRlimit(v string, sizes bool) (uint64, error) {
	if strings.EqualFold(v, "UNLIMITED") {
		return RLimInfinity, nil
	}
	mult := uint64(1)
	if sizes && len(v) > 1 {
		switch v[len(v)-1] {
		case 'k', 'K':
			mult, v = 1<<10, v[:len(v)-1]
		case 'm', 'M':
			mult, v = 1<<20, v[:len(v)-1]
		}
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > RLimInfinity/mult {
		return 0, fmt.Errorf("%q: want a number or UNLIMITED", v)
	}
	return n * mult, nil
}
