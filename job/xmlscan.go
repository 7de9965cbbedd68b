package job

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// xmlSyntaxError is an XML property list that could not be read.
type xmlSyntaxError struct {
	line int
	msg  string
}

func (e *xmlSyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// scanXML checks an XML property list before howett.net/plist decodes it:
// it bounds the nesting depth, records the line of every key path (for
// messages) and warns about keys written twice in one dictionary, which
// the decoded map can no longer show.
//
// launchd reads plists with CoreFoundation, which accepts some documents a
// strict XML parser rejects, "--" inside a comment being the common case
// (CUPS shipped one for years). When the strict scan fails, scanXML retries
// with every comment body blanked out; blanking keeps byte offsets and line
// numbers. It returns the data to decode.
func (d *decoder) scanXML(data []byte) ([]byte, error) {
	s, err := scanXMLTree(data)
	if err != nil {
		if blanked, changed := blankComments(data); changed {
			if s2, err2 := scanXMLTree(blanked); err2 == nil {
				s, err, data = s2, nil, blanked
			}
		}
	}
	if err != nil {
		return nil, err
	}
	d.lines = s.lines
	for _, dup := range s.dups {
		d.warnf(dup.path, "key %q appears twice in this dictionary (lines %d and %d); the last one wins: remove one", dup.name, dup.first, dup.second)
	}
	return data, nil
}

type xmlScan struct {
	lines map[string]int
	dups  []xmlDup
}

type xmlDup struct {
	path, name    string
	first, second int
}

type xmlFrame struct {
	kind    string // "plist", "dict" or "array"
	path    string
	idx     int
	key     string
	keyLine int
	haveKey bool
	seen    map[string]int // key as written -> line
}

func scanXMLTree(data []byte) (*xmlScan, error) {
	s := &xmlScan{lines: map[string]int{}}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	var stack []*xmlFrame
	line := func() int { l, _ := dec.InputPos(); return l }
	fail := func(err error) error {
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return &xmlSyntaxError{line: se.Line, msg: se.Msg}
		}
		if err == io.EOF {
			return &xmlSyntaxError{line: line(), msg: "unexpected end of file"}
		}
		return &xmlSyntaxError{line: line(), msg: err.Error()}
	}
	sawRoot := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) > 0 {
				return nil, fail(io.EOF)
			}
			if !sawRoot {
				return nil, &xmlSyntaxError{line: line(), msg: "no <plist> element"}
			}
			return s, nil
		}
		if err != nil {
			return nil, fail(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			l := line()
			if len(stack) == 0 {
				if sawRoot {
					return nil, &xmlSyntaxError{line: l, msg: "more than one top-level element"}
				}
				sawRoot = true
				if name != "plist" {
					// A bare value as the document; decode it like plist.
					if name != "dict" && name != "array" {
						if err := dec.Skip(); err != nil {
							return nil, fail(err)
						}
						continue
					}
				}
				stack = append(stack, &xmlFrame{kind: name, seen: map[string]int{}})
				continue
			}
			top := stack[len(stack)-1]
			if top.kind == "dict" && name == "key" {
				var k string
				if err := dec.DecodeElement(&k, &t); err != nil {
					return nil, fail(err)
				}
				if top.haveKey {
					return nil, &xmlSyntaxError{line: l, msg: fmt.Sprintf("<key>%s</key> follows <key>%s</key> without a value", k, top.key)}
				}
				path := join(top.path, k)
				if first, dup := top.seen[k]; dup {
					s.dups = append(s.dups, xmlDup{path: path, name: k, first: first, second: l})
				}
				top.seen[k] = l
				top.key, top.keyLine, top.haveKey = k, l, true
				continue
			}
			var path string
			switch top.kind {
			case "dict":
				if !top.haveKey {
					return nil, &xmlSyntaxError{line: l, msg: fmt.Sprintf("<%s> in a dictionary without a <key> before it", name)}
				}
				path, l = join(top.path, top.key), top.keyLine
				top.haveKey = false
			case "array":
				path = index(top.path, top.idx)
				top.idx++
			default: // plist
				path = top.path
			}
			s.lines[path] = l
			if name == "dict" || name == "array" {
				if len(stack) >= MaxDepth {
					return nil, &xmlSyntaxError{line: l, msg: fmt.Sprintf("nested more than %d levels deep", MaxDepth)}
				}
				stack = append(stack, &xmlFrame{kind: name, path: path, seen: map[string]int{}})
				continue
			}
			if err := dec.Skip(); err != nil {
				return nil, fail(err)
			}
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, &xmlSyntaxError{line: line(), msg: "unexpected </" + t.Name.Local + ">"}
			}
			top := stack[len(stack)-1]
			if top.haveKey {
				return nil, &xmlSyntaxError{line: line(), msg: fmt.Sprintf("<key>%s</key> has no value", top.key)}
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && len(bytes.TrimSpace(t)) > 0 {
				return nil, &xmlSyntaxError{line: line(), msg: fmt.Sprintf("unexpected text %q", truncate(strings.TrimSpace(string(t)), 40))}
			}
		}
	}
}

// blankComments replaces the body of every XML comment with spaces,
// keeping newlines, so offsets and line numbers stay the same.
func blankComments(data []byte) ([]byte, bool) {
	if !bytes.Contains(data, []byte("<!--")) {
		return data, false
	}
	out := bytes.Clone(data)
	changed := false
	for i := 0; i < len(out); {
		start := bytes.Index(out[i:], []byte("<!--"))
		if start < 0 {
			break
		}
		start += i + 4
		end := bytes.Index(out[start:], []byte("-->"))
		if end < 0 {
			break
		}
		end += start
		for k := start; k < end; k++ {
			if out[k] != '\n' && out[k] != '\r' && out[k] != ' ' {
				out[k] = ' '
				changed = true
			}
		}
		i = end + 3
	}
	return out, changed
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
