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
	// Files is the rule every file read (the one given, includes, the
	// files of an includedir) and every includedir directory obeys:
	// job.CheckFile and job.CheckDir for the sockd of Files.UID. A file or
	// directory that fails it is an error naming it, and nothing in it is
	// read.
	Files job.LoadOptions
}

// LoadXinetd imports an xinetd configuration: path is xinetd.conf (its
// include and includedir directives are followed), a directory such as
// xinetd.d (read as includedir reads it), or a single service file. Every
// file and directory read obeys the job files' rule for a sockd running as
// this process (XinetdOptions.Files).
func LoadXinetd(path string) ([]*job.Job, job.Diags) {
	return LoadXinetdWith(path, XinetdOptions{Files: thisUser()})
}

// LoadXinetdWith is LoadXinetd with options.
func LoadXinetdWith(path string, opts XinetdOptions) ([]*job.Job, job.Diags) {
	return loadXinetd(path, opts, systemInfo())
}

func loadXinetd(path string, opts XinetdOptions, sys sysInfo) ([]*job.Job, job.Diags) {
	l := newXLoader(true, opts, sys)
	fi, err := os.Stat(path)
	if err != nil {
		l.s.errorf(path, 0, "", "%v", err)
		return nil, l.s.diags
	}
	l.root = filepath.Dir(filepath.Clean(path))
	if fi.IsDir() {
		if l.siblingDefaults(path) {
			l.includeDir(path, path, 0, 0)
		}
	} else {
		l.includeFile(path, "", 0, 0)
	}
	return l.finish()
}

// siblingDefaults applies the defaults{} of the xinetd.conf beside dir when
// that file reads dir (includedir): xinetd applies them to dir's services,
// and they may narrow access (only_from, no_access, instances, per_source,
// cps), so a directory read alone must not lose them. Only the defaults
// block is taken; the file's services and other includes are not read. It
// returns false when that file fails the job files' rule: its defaults can
// be neither trusted nor dropped, so dir is not read.
func (l *xloader) siblingDefaults(dir string) bool {
	dir = filepath.Clean(dir)
	conf := filepath.Join(filepath.Dir(dir), "xinetd.conf")
	data, d, err := readConfig(conf, l.opts.Files)
	if d != nil {
		l.s.diags = append(l.s.diags, *d)
		l.s.errorf(dir, 0, "", "not read: xinetd applies the defaults of %s, which sockd cannot trust, to its services: fix that file", conf)
		return false
	}
	if err != nil || !includesDir(data, conf, dir) {
		return true
	}
	sub := newXLoader(false, l.opts, l.sys)
	sub.parse(data, conf, 0)
	n := 0
	for _, b := range sub.blocks {
		if b.defaults && len(b.attrs) > 0 {
			l.blocks = append(l.blocks, b)
			n++
		}
	}
	if n > 0 {
		if _, ok := l.order[conf]; !ok {
			l.order[conf] = len(l.order)
		}
		if l.opts.OnRead != nil {
			l.opts.OnRead(conf)
		}
		l.s.warnf(conf, 0, "defaults", "applied to the services of %s: xinetd reads that directory through this file's includedir, so its defaults apply there (read %s to import its own services too)", dir, conf)
	}
	return true
}

// includesDir reports whether the xinetd text of conf has an includedir
// line naming dir.
func includesDir(data []byte, conf, dir string) bool {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != "includedir" {
			continue
		}
		p := f[1]
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(conf), p)
		}
		if filepath.Clean(p) == dir {
			return true
		}
		if a, err := filepath.Abs(p); err == nil {
			if b, err := filepath.Abs(dir); err == nil && a == b {
				return true
			}
		}
	}
	return false
}

// ParseXinetd imports the xinetd configuration text in data; name is used
// in messages and Job.File. It reads no other configuration file: include
// and includedir are reported as warnings and ignored. Like LoadXinetd it
// reads /etc/hosts (for names: never DNS) and the TCP wrappers' tables.
func ParseXinetd(data []byte, name string) ([]*job.Job, job.Diags) {
	return parseXinetd(data, name, systemInfo())
}

func parseXinetd(data []byte, name string, sys sysInfo) ([]*job.Job, job.Diags) {
	l := newXLoader(false, XinetdOptions{}, sys)
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
	sys    sysInfo
	seen   map[string]bool
	order  map[string]int // files in the order they were parsed
	root   string         // the loaded tree (see XinetdOptions.Relocate)
	nfiles int
	blocks []*xblock
}

func newXLoader(fs bool, opts XinetdOptions, sys sysInfo) *xloader {
	return &xloader{s: &sink{}, fs: fs, opts: opts, sys: sys, seen: map[string]bool{}, order: map[string]int{}}
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
	data, d, err := readConfig(path, l.opts.Files)
	if d != nil {
		l.s.diags = append(l.s.diags, *d)
		return
	}
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
	if d := job.CheckDir(dir, l.opts.Files); d != nil {
		l.s.diags = append(l.s.diags, *d)
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
		if strings.Contains(n, ".") || strings.HasSuffix(n, "~") {
			continue
		}
		if e.IsDir() {
			l.s.warnf(from, line, "includedir", "%s is a directory; skipped (includedir reads files only)", filepath.Join(dir, n))
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
	// unhonoured attributes and why: none of them narrows access (those
	// are in refusedAttrs, or enforced).
	unhonoured = map[string]string{
		"log_type":       "sockd logs through its own logger",
		"banner":         "sockd sends no banners",
		"banner_success": "sockd sends no banners",
		"banner_fail":    "sockd sends no banners",
		"mdns":           "sockd does no mDNS registration",
		"deny_time":      "it is used only by SENSOR services, which sockd does not import",
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
			if why, ok := unhonoured[a.name]; ok {
				l.s.warnf(b.file, a.line, a.name, "not honoured: %s", why)
			}
			if strings.HasPrefix(a.name, "log_on_") && a.op != "-=" {
				for _, v := range a.vals {
					if why, ok := unloggedValues[strings.ToUpper(v)]; ok {
						l.s.warnf(b.file, a.line, a.name, "%s: not honoured: %s", v, why)
					}
				}
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
