package job

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"howett.net/plist"
)

// Limits on what Decode accepts, so that no input can make it hang or
// exhaust memory. Real job files are a few kilobytes and a few levels deep.
const (
	// MaxFileSize is the largest job file Decode accepts.
	MaxFileSize = 1 << 20
	// MaxDepth is the deepest nesting of dictionaries and arrays accepted.
	MaxDepth = 64
)

// Source names of the launchd encodings (Job.Source).
const (
	SourceXML      = "launchd-xml"
	SourceBinary   = "launchd-binary"
	SourceOpenStep = "launchd-openstep"
)

// Decode parses one launchd job file held in data; name is used in every
// message (normally the file's path). It checks types, fills in launchd's
// defaults, resolves the program, service names and node names, and
// validates what can be validated within one file. It does not look at the
// file system entry of name (ownership and permissions are LoadFile's job)
// and does not compare the job with others (CrossCheck).
//
// The Job is nil when any Diag is an error; warnings come with a usable Job.
func Decode(data []byte, name string) (*Job, Diags) { return DecodeWith(data, name, nil) }

// DecodeWith is Decode with the programs' file system entries looked up
// through programs (nil: each decode looks them up itself).
func DecodeWith(data []byte, name string, programs *ProgramCache) (*Job, Diags) {
	if j, ok := decodeFast(data, name, programs); ok {
		return j, nil
	}
	d := &decoder{file: name, programs: programs}
	j := d.decode(data)
	// File-level problems first, then in line order.
	sort.SliceStable(d.diags, func(a, b int) bool { return d.diags[a].Line < d.diags[b].Line })
	if d.diags.HasErrors() {
		return nil, d.diags
	}
	return j, d.diags
}

// decodeFast decodes a well-formed XML job file that has nothing to report
// in one XML pass instead of two: the scan that finds line numbers and
// duplicate keys is only needed when there is a diagnostic to place or a
// duplicate to find. ok is false when the full decode must run: another
// format, any diagnostic, or a <key> count that differs from the keys
// decoded (a duplicate key, or a "<key>" inside a comment).
func decodeFast(data []byte, name string, programs *ProgramCache) (*Job, bool) {
	if len(data) > MaxFileSize || !isXML(data) || !shallowXML(data, MaxDepth) {
		return nil, false
	}
	d := &decoder{file: name, noScan: true, programs: programs}
	var root map[string]any
	ok := false
	if tree, fast := fastXMLTree(data); fast {
		root, ok = tree.(map[string]any)
		d.source = SourceXML
	}
	if !ok {
		root, ok = d.parse(data)
	}
	if !ok || len(d.diags) > 0 || countKeys(root) != bytes.Count(data, []byte("<key>")) {
		return nil, false
	}
	j := d.build(root)
	if len(d.diags) > 0 || j == nil {
		return nil, false
	}
	return j, true
}

// shallowXML reports whether <dict> and <array> elements nest at most max
// levels deep, by a byte scan (tags inside comments count too, which only
// sends a file to the full decode). The full decode's scanner rejects deeper
// files before the plist parser recurses into them.
func shallowXML(data []byte, max int) bool {
	depth := 0
	for i := 0; i < len(data); i++ {
		if data[i] != '<' {
			continue
		}
		rest := data[i+1:]
		switch {
		case bytes.HasPrefix(rest, []byte("dict")), bytes.HasPrefix(rest, []byte("array")):
			end := bytes.IndexByte(rest, '>')
			if end < 0 {
				return false
			}
			if end > 0 && rest[end-1] == '/' {
				continue // <dict/>
			}
			depth++
			if depth > max {
				return false
			}
		case bytes.HasPrefix(rest, []byte("/dict")), bytes.HasPrefix(rest, []byte("/array")):
			depth--
		}
	}
	return true
}

// countKeys counts the dictionary keys of a decoded tree.
func countKeys(v any) int {
	n := 0
	switch t := v.(type) {
	case map[string]any:
		n += len(t)
		for _, e := range t {
			n += countKeys(e)
		}
	case []any:
		for _, e := range t {
			n += countKeys(e)
		}
	}
	return n
}

// decoder carries the state of decoding one file.
type decoder struct {
	file   string
	source string
	// text is true for OpenStep/GNUstep text plists, which carry only
	// strings: numbers and booleans are then accepted in their spelled form.
	text bool
	// lines maps key paths to line numbers (XML only).
	lines map[string]int
	// noScan skips the line-number scan of an XML file (decodeFast).
	noScan bool
	// programs looks up ProgramArguments[0] and Program (nil: os.Stat).
	programs *ProgramCache
	diags    Diags
}

func (d *decoder) add(sev Severity, key, format string, args ...any) {
	d.diags = append(d.diags, Diag{
		File:     d.file,
		Line:     d.lineOf(key),
		Key:      key,
		Severity: sev,
		Msg:      fmt.Sprintf(format, args...),
	})
}

// lineOf finds the line of a key path, or of its nearest enclosing
// key when the key itself is not in the file (a missing key).
func (d *decoder) lineOf(key string) int {
	for key != "" {
		if l, ok := d.lines[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return 0
		}
		key = key[:i]
	}
	return 0
}

func (d *decoder) errorf(key, format string, args ...any) { d.add(Error, key, format, args...) }
func (d *decoder) warnf(key, format string, args ...any)  { d.add(Warning, key, format, args...) }

func (d *decoder) decode(data []byte) *Job {
	root, ok := d.parse(data)
	if !ok {
		return nil
	}
	return d.build(root)
}

// parse turns the bytes into a generic property-list tree.
func (d *decoder) parse(data []byte) (map[string]any, bool) {
	if len(data) > MaxFileSize {
		d.errorf("", "file is %d bytes, larger than the %d bytes sockd accepts for a job file", len(data), MaxFileSize)
		return nil, false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		d.errorf("", "file is empty: a job file is a property list dictionary with at least Label and ProgramArguments")
		return nil, false
	}
	var (
		tree any
		err  error
	)
	switch {
	case bytes.HasPrefix(data, []byte("bplist")):
		d.source = SourceBinary
		if err = checkBinaryDepth(data, MaxDepth); err == nil {
			tree, _, err = unmarshal(data)
		}
	case isXML(data):
		d.source = SourceXML
		if !d.noScan {
			data, err = d.scanXML(data)
		}
		if err == nil {
			tree, _, err = unmarshal(data)
		}
	default:
		d.source = SourceOpenStep
		d.text = true
		if err = checkTextDepth(data, MaxDepth); err == nil {
			var format int
			tree, format, err = unmarshal(data)
			if err == nil && format != plist.OpenStepFormat && format != plist.GNUStepFormat {
				err = errors.New("unrecognised format")
			}
		}
	}
	if err != nil {
		var se *xmlSyntaxError
		if errors.As(err, &se) {
			d.diags = append(d.diags, Diag{File: d.file, Line: se.line, Severity: Error,
				Msg: "not a valid XML property list: " + se.msg})
			return nil, false
		}
		d.errorf("", "not a valid property list (%s): %v", d.formatName(), err)
		return nil, false
	}
	root, ok := tree.(map[string]any)
	if !ok {
		d.errorf("", "the top level of a job file must be a dictionary, not %s", typeName(tree))
		return nil, false
	}
	return root, true
}

func (d *decoder) formatName() string {
	switch d.source {
	case SourceBinary:
		return "binary"
	case SourceXML:
		return "XML"
	}
	return "OpenStep"
}

// isXML reports whether data starts (after a byte-order mark and white
// space) with '<'.
func isXML(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	data = bytes.TrimLeft(data, " \t\r\n")
	return len(data) > 0 && data[0] == '<'
}

// unmarshal runs howett.net/plist, turning any panic it lets through into
// an error.
func unmarshal(data []byte) (tree any, format int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder failure: %v", r)
		}
	}()
	format, err = plist.Unmarshal(data, &tree)
	return tree, format, err
}

// typeName names a decoded plist value's type for messages.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case uint64, int64:
		return "an integer"
	case float32, float64:
		return "a real number"
	case map[string]any:
		return "a dictionary"
	case []any:
		return "an array"
	case []byte:
		return "data"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("a %T", v)
}

// describe renders a scalar value for messages.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("string %q", v)
	case map[string]any, []any:
		return typeName(v)
	}
	return fmt.Sprintf("%s (%v)", typeName(v), v)
}

// join builds a key path.
func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func index(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}

// dictView looks keys up case-insensitively, as launchd does, and
// remembers which keys were used so that the rest can be reported.
//
// The entries are a slice searched in order: a job file's dictionaries
// hold a few keys each, and three maps per dictionary (the tree's, this
// index and the used set) were a third of what loading 10,000 files
// allocated. A dictionary of more than smallDict keys gets an index.
type dictView struct {
	path    string
	entries []viewEntry    // sorted by name as written
	index   map[string]int // lower-cased name -> entries[i]; big dictionaries only
}

// smallDict is the most keys a dictView searches without an index.
const smallDict = 32

type viewEntry struct {
	lk string // lower-cased name
	dictEntry
	used bool
}

type dictEntry struct {
	name string // as written
	val  any
}

func (d *decoder) view(path string, m map[string]any) *dictView {
	v := &dictView{path: path, entries: make([]viewEntry, 0, len(m))}
	if len(m) > smallDict {
		v.index = make(map[string]int, len(m))
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		lk := lowerKey(k)
		if i := v.find(lk); i >= 0 {
			d.errorf(join(path, k), "key %q is also written as %q; launchd matches keys case-insensitively, so it is unclear which one applies: keep one", k, v.entries[i].name)
			continue
		}
		if v.index != nil {
			v.index[lk] = len(v.entries)
		}
		v.entries = append(v.entries, viewEntry{lk: lk, dictEntry: dictEntry{name: k, val: m[k]}})
	}
	return v
}

// findName is find(lowerKey(name)): without an index and for an ASCII
// name (every name the decoder asks for) it compares each entry's
// lower-cased name with name folded byte by byte, with no lower-cased
// copy to look up (the decoder asks each dictionary for every key it
// knows: a dozen lookups per file that find nothing).
func (v *dictView) findName(name string) int {
	if v.index != nil || !isASCII(name) {
		return v.find(lowerKey(name))
	}
	for i := range v.entries {
		if equalLowerASCII(v.entries[i].lk, name) {
			return i
		}
	}
	return -1
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// equalLowerASCII reports whether lk is the ASCII name lower-cased.
func equalLowerASCII(lk, name string) bool {
	if len(lk) != len(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if lk[i] != c {
			return false
		}
	}
	return true
}

// find is the index of the entry whose lower-cased name is lk, or -1.
func (v *dictView) find(lk string) int {
	if v.index != nil {
		if i, ok := v.index[lk]; ok {
			return i
		}
		return -1
	}
	for i := range v.entries {
		if v.entries[i].lk == lk {
			return i
		}
	}
	return -1
}

// lowerKeys caches the lower-cased key names: every job file spells the
// same few dozen, and lower-casing each lookup's name was a tenth of
// loading 10,000 files.
var lowerKeys sync.Map // string -> string

// lowerKey is strings.ToLower(k) for a key name, from the cache when it
// can be (names of up to 64 bytes; the cache stops growing at 4,096, so a
// file of junk keys cannot grow it without bound).
func lowerKey(k string) string {
	if v, ok := lowerKeys.Load(k); ok {
		return v.(string)
	}
	lk := strings.ToLower(k)
	if len(k) <= 64 && lowerKeyCount.Load() < 4096 {
		if _, loaded := lowerKeys.LoadOrStore(k, lk); !loaded {
			lowerKeyCount.Add(1)
		}
	}
	return lk
}

var lowerKeyCount atomic.Int32

// get returns the key path and value of the named key.
func (v *dictView) get(name string) (string, any, bool) {
	i := v.findName(name)
	if i < 0 {
		return "", nil, false
	}
	e := &v.entries[i]
	e.used = true
	return join(v.path, e.name), e.val, true
}

// rest returns the entries not looked up yet, sorted by name.
func (v *dictView) rest() []dictEntry {
	var out []dictEntry
	for i := range v.entries {
		if !v.entries[i].used {
			out = append(out, v.entries[i].dictEntry)
		}
	}
	return out
}

// Typed accessors. Each reports a wrong type as an error naming the key and
// returns ok=false.

func (d *decoder) str(key string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		d.errorf(key, "must be a string, not %s", describe(v))
	}
	return s, ok
}

func (d *decoder) boolean(key string, v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		if d.text {
			switch strings.ToLower(v) {
			case "yes", "true":
				return true, true
			case "no", "false":
				return false, true
			}
			d.errorf(key, "must be a boolean: write YES or NO (or true/false), not %q", v)
			return false, false
		}
	}
	d.errorf(key, "must be a boolean (<true/> or <false/>), not %s", describe(v))
	return false, false
}

func (d *decoder) integer(key string, v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case uint64:
		if v > math.MaxInt64 {
			d.errorf(key, "integer %d is too large", v)
			return 0, false
		}
		return int64(v), true
	case string:
		if d.text {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				d.errorf(key, "must be a decimal integer, not %q", v)
				return 0, false
			}
			return n, true
		}
	}
	d.errorf(key, "must be an integer (<integer>), not %s", describe(v))
	return 0, false
}

// intRange is integer with bounds (inclusive).
func (d *decoder) intRange(key string, v any, lo, hi int64, what string) (int64, bool) {
	n, ok := d.integer(key, v)
	if !ok {
		return 0, false
	}
	if n < lo || n > hi {
		d.errorf(key, "%d is out of range: %s must be between %d and %d", n, what, lo, hi)
		return 0, false
	}
	return n, true
}

func (d *decoder) number(key string, v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int64, uint64:
		n, ok := d.integer(key, v)
		return float64(n), ok
	case string:
		if d.text {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				d.errorf(key, "must be a number, not %q", v)
				return 0, false
			}
			return f, true
		}
	}
	d.errorf(key, "must be a number (<integer> or <real>), not %s", describe(v))
	return 0, false
}

func (d *decoder) dict(key string, v any) (*dictView, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		d.errorf(key, "must be a dictionary, not %s", describe(v))
		return nil, false
	}
	return d.view(key, m), true
}

// rawDict is a dictionary whose keys are data, not launchd keys (socket
// names, environment variables, paths, labels): matched exactly. It
// returns the names sorted in byte order.
func (d *decoder) rawDict(key string, v any) (map[string]any, []string, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		d.errorf(key, "must be a dictionary, not %s", describe(v))
		return nil, nil, false
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return m, names, true
}

func (d *decoder) array(key string, v any) ([]any, bool) {
	a, ok := v.([]any)
	if !ok {
		d.errorf(key, "must be an array, not %s", describe(v))
	}
	return a, ok
}

func (d *decoder) strings(key string, v any) ([]string, bool) {
	a, ok := d.array(key, v)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(a))
	all := true
	for i, e := range a {
		s, ok := d.str(index(key, i), e)
		all = all && ok
		out = append(out, s)
	}
	return out, all
}
