package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sockd/sockd/job"
)

// systemd unit files: the syntax of systemd.syntax(7), the search for a
// unit and its drop-ins, specifiers, and the value forms the directives
// sockd maps take.

// sdEntry is one "Key=Value" line of a unit file or drop-in.
type sdEntry struct {
	file    string
	line    int
	section string
	key     string
	val     string
}

// sdUnit is a unit file with its drop-ins, read in the order systemd
// applies them.
type sdUnit struct {
	name     string // "ssh.socket", "ssh@.service", "foo@bar.service"
	file     string // the unit file read
	instance string // the instance of a template ("" for none)
	entries  []*sdEntry
	// dropins are the drop-in files applied, in order.
	dropins []string
}

// unitType is the suffix of a unit name without the dot ("socket").
func unitType(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return ""
}

// unitPrefix splits a unit name into its prefix (before '@', or the whole
// name less the type suffix), its instance and whether it is a template
// or an instance of one.
func unitPrefix(name string) (prefix, instance string, templated bool) {
	base := strings.TrimSuffix(name, "."+unitType(name))
	if p, inst, ok := strings.Cut(base, "@"); ok {
		return p, inst, true
	}
	return base, "", false
}

// templateOf is the template an instance name comes from ("foo@bar.service"
// → "foo@.service"); "" when name is no instance.
func templateOf(name string) string {
	p, inst, ok := unitPrefix(name)
	if !ok || inst == "" {
		return ""
	}
	return p + "@." + unitType(name)
}

// get is the value a single-valued directive ends with: its last
// assignment. An empty last assignment resets it to its default: nil.
func (u *sdUnit) get(section, key string) *sdEntry {
	var last *sdEntry
	for _, e := range u.entries {
		if e.section == section && e.key == key {
			last = e
		}
	}
	if last == nil || last.val == "" {
		return nil
	}
	return last
}

// all is every assignment of a list directive since the last empty one,
// which resets the list.
func (u *sdUnit) all(section, key string) []*sdEntry {
	var out []*sdEntry
	for _, e := range u.entries {
		if e.section != section || e.key != key {
			continue
		}
		if e.val == "" {
			out = nil
			continue
		}
		out = append(out, e)
	}
	return out
}

// parseUnit reads unit-file text (systemd.syntax(7)): sections, Key=Value
// lines, comments starting with '#' or ';', a line ending in a backslash
// continued on the next (comment lines inside a continuation skipped).
func parseUnit(data []byte, file string, s *sink) []*sdEntry {
	text := strings.TrimPrefix(string(data), "\ufeff")
	lines := strings.Split(text, "\n")
	var out []*sdEntry
	section := ""
	for i := 0; i < len(lines); i++ {
		ln := i + 1
		l := strings.TrimSpace(strings.TrimSuffix(lines[i], "\r"))
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		// Continuation lines: a comment line inside is skipped.
		if strings.HasSuffix(l, "\\") {
			l = strings.TrimSuffix(l, "\\") + " "
			for i+1 < len(lines) {
				i++
				next := strings.TrimSpace(strings.TrimSuffix(lines[i], "\r"))
				if next != "" && (next[0] == '#' || next[0] == ';') {
					continue
				}
				if !strings.HasSuffix(next, "\\") {
					l += next
					break
				}
				l += strings.TrimSuffix(next, "\\") + " "
			}
		}
		l = strings.TrimSpace(l)
		if l[0] == '[' {
			if !strings.HasSuffix(l, "]") || len(l) < 3 {
				s.warnf(file, ln, "", "bad section header %q; the lines up to the next section are ignored", l)
				section = "\x00bad"
				continue
			}
			section = l[1 : len(l)-1]
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			s.warnf(file, ln, "", "%q is not KEY=VALUE; ignored", l)
			continue
		}
		k = strings.TrimSpace(k)
		if section == "" {
			s.warnf(file, ln, k, "assignment outside of any section; ignored")
			continue
		}
		if section == "\x00bad" {
			continue
		}
		out = append(out, &sdEntry{file: file, line: ln, section: section, key: k, val: strings.TrimSpace(v)})
	}
	return out
}

// Unit directories, highest priority first (systemd.unit(5)).
var (
	systemUnitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}
	userUnitDirs   = []string{"/etc/systemd/user", "/run/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user", "/lib/systemd/user"}
)

// searchDirs are the directories a unit named from dir is looked up in,
// highest priority first: dir alone, or, when dir is one of systemd's unit
// directories, all of them (as systemd looks units and drop-ins up).
func (l *sdLoader) searchDirs(dir string) []string {
	dir = filepath.Clean(dir)
	for _, set := range [][]string{systemUnitDirs, l.userDirs()} {
		for _, d := range set {
			if d == dir {
				return set
			}
		}
	}
	return []string{dir}
}

// userDirs are the user unit directories of the manager (its own
// ~/.config/systemd/user first).
func (l *sdLoader) userDirs() []string {
	if l.host.home == "" {
		return userUnitDirs
	}
	return append([]string{filepath.Join(l.host.home, ".config", "systemd", "user")}, userUnitDirs...)
}

// isMasked reports whether path is a link to /dev/null (or /dev/null).
func isMasked(path string) bool {
	if t, err := filepath.EvalSymlinks(path); err == nil && t == "/dev/null" {
		return true
	}
	return false
}

// findUnit looks a unit name up in dirs: its own file, else, for an
// instance, its template's. masked is set when the first file found is a
// link to /dev/null.
func findUnit(name string, dirs []string) (path string, masked bool) {
	names := []string{name}
	if t := templateOf(name); t != "" {
		names = append(names, t)
	}
	for _, n := range names {
		for _, d := range dirs {
			p := filepath.Join(d, n)
			if _, err := os.Lstat(p); err == nil {
				return p, isMasked(p)
			}
		}
	}
	return "", false
}

// dropinDirNames are the drop-in directory names that apply to a unit, in
// systemd's order: the type's ("service.d"), each dash prefix
// ("foo-.service.d"), the template's ("foo@.service.d"), the unit's own.
func dropinDirNames(name string) []string {
	typ := unitType(name)
	out := []string{typ + ".d"}
	prefix, _, _ := unitPrefix(name)
	for i := 0; i < len(prefix); i++ {
		if prefix[i] == '-' && i > 0 {
			out = append(out, prefix[:i+1]+"."+typ+".d")
		}
	}
	if t := templateOf(name); t != "" {
		out = append(out, t+".d")
	}
	return append(out, name+".d")
}

// dropins lists the *.conf drop-ins of a unit found in dirs: one per file
// name (a higher-priority directory's file masks a lower one's; a link to
// /dev/null masks it and is not read), sorted by file name.
func dropins(name string, dirs []string) []string {
	byName := map[string]string{}
	for _, dn := range dropinDirNames(name) {
		for i := len(dirs) - 1; i >= 0; i-- { // lowest priority first, overwritten by higher
			ents, err := os.ReadDir(filepath.Join(dirs[i], dn))
			if err != nil {
				continue
			}
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), ".conf") {
					byName[e.Name()] = filepath.Join(dirs[i], dn, e.Name())
				}
			}
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		if p := byName[n]; !isMasked(p) {
			out = append(out, p)
		}
	}
	return out
}

// readUnit reads the unit file at path (named name) and its drop-ins from
// dirs. It returns nil when a file cannot be read (reported).
func (l *sdLoader) readUnit(name, path string, dirs []string) *sdUnit {
	data := l.readFile(path, "")
	if data == nil {
		return nil
	}
	if len(data) > MaxFileSize {
		l.s.errorf(path, 0, "", "larger than %d bytes", MaxFileSize)
		return nil
	}
	u := &sdUnit{name: name, file: path}
	_, u.instance, _ = unitPrefix(name)
	u.entries = parseUnit(data, path, l.s)
	for _, d := range dropins(name, dirs) {
		dd := l.readFile(d, "")
		if dd == nil {
			return nil
		}
		u.dropins = append(u.dropins, d)
		u.entries = append(u.entries, parseUnit(dd, d, l.s)...)
	}
	return u
}

// readFile reads a configuration file under the job files' rule. An
// error is reported (against from, when set) and nil returned.
func (l *sdLoader) readFile(path, from string) []byte {
	if l.nfiles++; l.nfiles > MaxFiles {
		l.s.errorf(path, 0, "", "more than %d files; not read", MaxFiles)
		return nil
	}
	data, d, err := readConfig(path, l.opts.Files)
	if d != nil {
		l.s.diags = append(l.s.diags, *d)
		return nil
	}
	if err != nil {
		l.s.errorf(path, 0, "", "%v", err)
		return nil
	}
	if l.opts.OnRead != nil {
		l.opts.OnRead(path)
	}
	if data == nil {
		data = []byte{}
	}
	return data
}

// Specifiers.

// sdHost is what specifiers and names resolve against: the service
// manager sockd stands in for (root's system manager or a user's), and
// the host's users, groups and identity. Tests replace it.
type sdHost struct {
	uid                       int
	user, group, home, shell  string
	gid                       int
	runtime, state, cache     string
	logs, config              string
	hostname, machineID, arch string
	bindv6only                bool
	lookupUser                func(name string) (uid, gid int, home string, err error)
	lookupUserID              func(uid int) (string, error)
	lookupGroup               func(name string) (int, error)
	lookupGroupID             func(gid int) (string, error)
	// exists reports whether a file exists (environment files marked '-',
	// programs on systemd's search path).
	exists func(path string) bool
}

// sdArch is systemd's name for the architecture (%a).
func sdArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86-64"
	case "386":
		return "x86"
	case "arm64":
		return "arm64"
	case "arm":
		return "arm"
	case "ppc64le":
		return "ppc64-le"
	case "ppc64":
		return "ppc64"
	case "riscv64":
		return "riscv64"
	case "s390x":
		return "s390x"
	case "loong64":
		return "loongarch64"
	}
	return runtime.GOARCH
}

// sdUnescape undoes systemd's unit name escaping: "-" is "/", "\xNN" a byte.
func sdUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '-':
			b.WriteByte('/')
		case s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x':
			if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
			b.WriteByte(s[i])
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// sdSpecifiers lists the specifiers sockd expands, for messages and docs.
const sdSpecifiers = "%n %N %p %P %i %I %j %J %f %t %S %C %L %E %T %V %h %u %U %g %G %s %H %l %m %a %y %Y %%"

// expand resolves the specifiers of s for unit u. A specifier sockd
// does not expand (one whose value changes between boots or hosts in ways
// a job file cannot follow, or an unknown one) is an error.
func (l *sdLoader) expand(u *sdUnit, s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	prefix, inst, templated := unitPrefix(u.name)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("%q ends in a lone %%: write %%%% for a percent sign", s)
		}
		i++
		h := l.host
		var v string
		switch s[i] {
		case '%':
			v = "%"
		case 'n':
			v = u.name
		case 'N':
			v = strings.TrimSuffix(u.name, "."+unitType(u.name))
		case 'p':
			v = prefix
		case 'P':
			v = sdUnescape(prefix)
		case 'i', 'I':
			if templated && inst == "" {
				return "", fmt.Errorf("%%%c of a per-connection service is systemd's name for the connection (N-LOCAL-REMOTE), which sockd does not make: the service gets $REMOTE_ADDR and $REMOTE_PORT instead", s[i])
			}
			v = inst
			if s[i] == 'I' {
				v = sdUnescape(inst)
			}
		case 'j', 'J':
			v = prefix
			if k := strings.LastIndexByte(prefix, '-'); k >= 0 {
				v = prefix[k+1:]
			}
			if s[i] == 'J' {
				v = sdUnescape(v)
			}
		case 'f':
			if inst != "" {
				v = "/" + strings.TrimPrefix(sdUnescape(inst), "/")
			} else {
				v = "/" + strings.TrimPrefix(sdUnescape(prefix), "/")
			}
		case 't':
			v = h.runtime
		case 'S':
			v = h.state
		case 'C':
			v = h.cache
		case 'L':
			v = h.logs
		case 'E':
			v = h.config
		case 'T':
			v = "/tmp"
		case 'V':
			v = "/var/tmp"
		case 'h':
			v = h.home
		case 'u':
			v = h.user
		case 'U':
			v = strconv.Itoa(h.uid)
		case 'g':
			v = h.group
		case 'G':
			v = strconv.Itoa(h.gid)
		case 's':
			v = h.shell
		case 'H':
			v = h.hostname
		case 'l':
			v, _, _ = strings.Cut(h.hostname, ".")
		case 'm':
			v = h.machineID
		case 'a':
			v = h.arch
		case 'y':
			v = u.file
		case 'Y':
			v = filepath.Dir(u.file)
		case 'b':
			return "", fmt.Errorf("specifier %%b (the boot ID) changes at every boot, and a job file cannot follow it: sockd expands only %s", sdSpecifiers)
		default:
			return "", fmt.Errorf("specifier %%%c is not supported: sockd expands only %s", s[i], sdSpecifiers)
		}
		if v == "" && strings.IndexByte("tShHmu", s[i]) >= 0 {
			return "", fmt.Errorf("specifier %%%c has no value here", s[i])
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// Value forms.

// sdBool parses a systemd boolean.
func sdBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "yes", "y", "true", "t", "on":
		return true, nil
	case "0", "no", "n", "false", "f", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (yes/no, true/false, on/off, 1/0)", v)
}

// sdTimeUnits are systemd.time(7)'s time span units.
var sdTimeUnits = []struct {
	names []string
	d     time.Duration
}{
	{[]string{"usec", "us", "µs"}, time.Microsecond},
	{[]string{"msec", "ms"}, time.Millisecond},
	{[]string{"seconds", "second", "sec", "s"}, time.Second},
	{[]string{"minutes", "minute", "min", "m"}, time.Minute},
	{[]string{"hours", "hour", "hr", "h"}, time.Hour},
	{[]string{"days", "day", "d"}, 24 * time.Hour},
	{[]string{"weeks", "week", "w"}, 7 * 24 * time.Hour},
	{[]string{"months", "month", "M"}, 2629800 * time.Second},
	{[]string{"years", "year", "y"}, 31557600 * time.Second},
}

// sdInfinity marks an "infinity" time span.
const sdInfinity = time.Duration(1<<63 - 1)

// sdTime parses a time span ("5min 20s", "1.5h", "100ms"); a bare number
// is in def units. "infinity" is sdInfinity.
func sdTime(v string, def time.Duration) (time.Duration, error) {
	t := strings.TrimSpace(v)
	if t == "infinity" {
		return sdInfinity, nil
	}
	if t == "" {
		return 0, fmt.Errorf("empty time span")
	}
	var total float64
	rest := t
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		j := 0
		for j < len(rest) && (rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		if j == 0 {
			return 0, fmt.Errorf("%q is not a time span (e.g. 90, 5s, 1min 30s, 100ms, infinity)", v)
		}
		n, err := strconv.ParseFloat(rest[:j], 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a time span (e.g. 90, 5s, 1min 30s, 100ms, infinity)", v)
		}
		rest = strings.TrimLeft(rest[j:], " \t")
		k := 0
		for k < len(rest) && !(rest[k] >= '0' && rest[k] <= '9' || rest[k] == ' ' || rest[k] == '\t' || rest[k] == '.') {
			k++
		}
		unit := rest[:k]
		rest = rest[k:]
		mult := def
		if unit != "" {
			found := false
			for _, u := range sdTimeUnits {
				for _, name := range u.names {
					if unit == name {
						mult, found = u.d, true
					}
				}
			}
			if !found {
				return 0, fmt.Errorf("%q: unknown time unit %q (use us, ms, s, min, h, d, w)", v, unit)
			}
		}
		total += n * float64(mult)
	}
	if total > float64(sdInfinity) {
		return sdInfinity, nil
	}
	return time.Duration(total), nil
}

// sdSize parses a size with systemd's base-1024 suffixes (K, M, G, T, P,
// E, optionally followed by B); "infinity" is RLimInfinity when allowed.
func sdSize(v string, infinity bool) (uint64, error) {
	t := strings.TrimSpace(v)
	if t == "infinity" && infinity {
		return RLimInfinity, nil
	}
	mult := uint64(1)
	u := strings.TrimSuffix(strings.TrimSuffix(t, "B"), "b")
	if u != "" {
		switch u[len(u)-1] {
		case 'K', 'k':
			mult = 1 << 10
		case 'M', 'm':
			mult = 1 << 20
		case 'G', 'g':
			mult = 1 << 30
		case 'T', 't':
			mult = 1 << 40
		case 'P', 'p':
			mult = 1 << 50
		case 'E', 'e':
			mult = 1 << 60
		}
		if mult != 1 {
			u = u[:len(u)-1]
		} else {
			u = t
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(u), 10, 64)
	if err != nil || (mult > 1 && n > RLimInfinity/mult) {
		return 0, fmt.Errorf("%q is not a size (a number, optionally with K, M, G, T, P or E)", v)
	}
	return n * mult, nil
}

// sdMode parses an octal file mode.
func sdMode(v string) (os.FileMode, error) {
	n, err := strconv.ParseUint(v, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, fmt.Errorf("%q is not an octal mode (e.g. 0660)", v)
	}
	return os.FileMode(n), nil
}

// sdWords splits a value into words as systemd does for ExecStart=,
// Environment= and list directives (extract_first_word): blanks separate
// words; double or single quotes, anywhere in a word, keep blanks in it
// and are removed; C escapes are understood everywhere (\n, \t, \\, \",
// \', \s, \xNN, \NNN, \uNNNN). quoted tells which words had quotes.
func sdWords(v string) (words []string, quoted []bool, err error) {
	i := 0
	for {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i >= len(v) {
			return words, quoted, nil
		}
		var b strings.Builder
		q := byte(0)
		hadQuote := false
		for i < len(v) {
			c := v[i]
			switch {
			case q == 0 && (c == ' ' || c == '\t'):
				goto done
			case q == 0 && (c == '"' || c == '\''):
				q, hadQuote = c, true
				i++
				continue
			case q != 0 && c == q:
				q = 0
				i++
				continue
			case c == '\\' && i+1 < len(v):
				n, adv := cUnescape(v[i:])
				b.WriteString(n)
				i += adv
				continue
			}
			b.WriteByte(c)
			i++
		}
	done:
		if q != 0 {
			return nil, nil, fmt.Errorf("unterminated quote in %q", v)
		}
		words = append(words, b.String())
		quoted = append(quoted, hadQuote)
	}
}

// cUnescape decodes the C escape at the start of s (s[0] is a backslash)
// and returns its text and length. An unknown escape stands for itself,
// backslash included.
func cUnescape(s string) (string, int) {
	c := s[1]
	switch c {
	case 'a':
		return "\a", 2
	case 'b':
		return "\b", 2
	case 'f':
		return "\f", 2
	case 'n':
		return "\n", 2
	case 'r':
		return "\r", 2
	case 't':
		return "\t", 2
	case 'v':
		return "\v", 2
	case 's':
		return " ", 2
	case '\\', '"', '\'', ' ', ';':
		return string(c), 2
	case 'x':
		if len(s) >= 4 {
			if n, err := strconv.ParseUint(s[2:4], 16, 8); err == nil {
				return string([]byte{byte(n)}), 4
			}
		}
	case 'u', 'U':
		w := 4
		if c == 'U' {
			w = 8
		}
		if len(s) >= 2+w {
			if n, err := strconv.ParseUint(s[2:2+w], 16, 32); err == nil {
				return string(rune(n)), 2 + w
			}
		}
	case '0', '1', '2', '3':
		if len(s) >= 4 {
			if n, err := strconv.ParseUint(s[1:4], 8, 8); err == nil {
				return string([]byte{byte(n)}), 4
			}
		}
	}
	return s[:2], 2
}

// sdEnvName reports whether n is a valid environment variable name.
func sdEnvName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// parseEnvFile reads an EnvironmentFile= (KEY=VALUE lines; '#' and ';'
// comments; values in single quotes literal, in double quotes with
// backslash escapes; a trailing backslash continues the line).
func parseEnvFile(data []byte, file string, s *sink) []job.EnvVar {
	var out []job.EnvVar
	lines := strings.Split(strings.TrimPrefix(string(data), "\ufeff"), "\n")
	for i := 0; i < len(lines); i++ {
		ln := i + 1
		l := strings.TrimSpace(strings.TrimSuffix(lines[i], "\r"))
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		for strings.HasSuffix(l, "\\") && !strings.HasSuffix(l, "\\\\") && i+1 < len(lines) {
			i++
			l = strings.TrimSuffix(l, "\\") + strings.TrimSuffix(lines[i], "\r")
		}
		l = strings.TrimPrefix(l, "export ")
		k, v, ok := strings.Cut(l, "=")
		k = strings.TrimSpace(k)
		if !ok || !sdEnvName(k) {
			s.warnf(file, ln, "", "%q is not NAME=value; ignored", l)
			continue
		}
		out = append(out, job.EnvVar{Name: k, Value: envFileValue(strings.TrimSpace(v))})
	}
	return out
}

// envFileValue unquotes one environment file value.
func envFileValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\'':
			j := strings.IndexByte(v[i+1:], '\'')
			if j < 0 {
				b.WriteString(v[i+1:])
				return b.String()
			}
			b.WriteString(v[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			i++
			for ; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("\"\\`$\n", v[i+1]) >= 0 {
					i++
				}
				b.WriteByte(v[i])
			}
		case c == '\\' && i+1 < len(v):
			i++
			b.WriteByte(v[i])
		case c == ' ' || c == '\t':
			// Unquoted blanks inside a value are kept; trailing ones were
			// trimmed.
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// substEnv replaces ${NAME}, ${NAME:-default}, ${NAME:+alternative} and
// $$ in one word of a command line (a "$NAME" word of its own is split by
// the caller). unset collects the names used that have no value.
func substEnv(w string, env map[string]string, unset map[string]bool) string {
	if !strings.Contains(w, "$") {
		return w
	}
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		if w[i] != '$' || i+1 >= len(w) {
			b.WriteByte(w[i])
			continue
		}
		switch {
		case w[i+1] == '$':
			b.WriteByte('$')
			i++
		case w[i+1] == '{':
			end := strings.IndexByte(w[i+2:], '}')
			if end < 0 {
				b.WriteString(w[i:])
				return b.String()
			}
			expr := w[i+2 : i+2+end]
			i += 2 + end
			name, alt, op := expr, "", ""
			if k := strings.Index(expr, ":-"); k >= 0 {
				name, alt, op = expr[:k], expr[k+2:], "-"
			} else if k := strings.Index(expr, ":+"); k >= 0 {
				name, alt, op = expr[:k], expr[k+2:], "+"
			}
			v, set := env[name]
			switch op {
			case "-":
				if v == "" {
					v = alt
				}
			case "+":
				if v != "" {
					v = alt
				}
			default:
				if !set {
					unset[name] = true
				}
			}
			b.WriteString(v)
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
