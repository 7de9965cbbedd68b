package job

import (
	"bytes"
	"strconv"
)

// fastXMLTree decodes the plain XML property lists that nearly every job
// file is, several times faster than howett.net/plist (which goes through
// encoding/xml's token stream): with thousands of job files, decoding was
// most of sockd's start-up.
//
// It accepts only a strict subset and returns ok=false for anything
// outside it, and the caller then decodes with howett.net/plist, the
// reference: so on the files it accepts it must return exactly the tree
// plist.Unmarshal returns (FuzzDecode checks that). The subset:
//
//   - an optional <?xml version="1.0"?> declaration (with encoding UTF-8
//     or none), <plist> or <plist version="1.0">,
//     an optional <!DOCTYPE plist PUBLIC "..." "..."> (or <!DOCTYPE plist>), comments
//     (without "--" inside) and white space around elements;
//   - the plist element holding one value: <dict>, <array>, <string>, <key>
//     inside a dict only, <integer> (decimal, at most 18 digits, no
//     leading zero), <true/> and <false/>, each with no attributes;
//     empty forms <dict/>, <array/>, <string/>, <key/>;
//   - text of printable ASCII, tab and newline, with the five predefined
//     entities (&lt; &gt; &amp; &quot; &apos;).
//
// Everything else (real, date, data, CDATA, character references,
// non-ASCII text, a carriage return, duplicate keys, CF$UID, ...) goes to
// the reference decoder.
func fastXMLTree(data []byte) (tree any, ok bool) {
	p := fastXML{b: data}
	if !p.prolog() || !(p.lit("<plist>") || p.lit(`<plist version="1.0">`) || p.lit(`<plist version='1.0'>`)) {
		return nil, false
	}
	if !p.misc() {
		return nil, false
	}
	v, ok := p.value(0)
	if !ok || !p.misc() || !p.lit("</plist>") || !p.misc() || p.i != len(p.b) {
		return nil, false
	}
	return v, true
}

// xmlDecls are the XML declarations fastXMLTree accepts.
var xmlDecls = []string{
	`<?xml version="1.0" encoding="UTF-8"?>`,
	`<?xml version="1.0" encoding="utf-8"?>`,
	`<?xml version="1.0"?>`,
	`<?xml version='1.0' encoding='UTF-8'?>`,
	`<?xml version='1.0' encoding='utf-8'?>`,
	`<?xml version='1.0'?>`,
}

type fastXML struct {
	b []byte
	i int
}

// lit consumes s if the input continues with it.
func (p *fastXML) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// misc skips white space and comments.
func (p *fastXML) misc() bool {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n':
			p.i++
			continue
		case '<':
			if !p.lit("<!--") {
				return true
			}
			end := bytes.Index(p.b[p.i:], []byte("--"))
			if end < 0 || !bytes.HasPrefix(p.b[p.i+end:], []byte("-->")) || !plainText(p.b[p.i:p.i+end]) {
				return false
			}
			p.i += end + 3
			continue
		}
		return false
	}
	return true
}

// prolog skips the XML declaration, a DOCTYPE and comments before <plist>.
func (p *fastXML) prolog() bool {
	// encoding/xml insists on version 1.0 and on a CharsetReader for any
	// encoding but UTF-8: only the usual declarations are taken here.
	for _, decl := range xmlDecls {
		if p.lit(decl) {
			break
		}
	}
	if !p.misc() {
		return false
	}
	if p.lit("<!DOCTYPE plist") {
		// Nothing, or PUBLIC with two quoted identifiers.
		if !p.lit(">") {
			if !p.lit(` PUBLIC "`) || !p.quotedRest() || !p.lit(` "`) || !p.quotedRest() || !p.lit(">") {
				return false
			}
		}
	}
	return p.misc()
}

// quotedRest reads the rest of a double-quoted identifier: plain text
// without quotes, angle brackets or "--", then the closing quote.
func (p *fastXML) quotedRest() bool {
	end := bytes.IndexByte(p.b[p.i:], '"')
	if end < 0 {
		return false
	}
	id := p.b[p.i : p.i+end]
	if !plainText(id) || bytes.ContainsAny(id, "<>'&") || bytes.Contains(id, []byte("--")) {
		return false
	}
	p.i += end + 1
	return true
}

// plainText reports whether b holds only printable ASCII, tab and newline.
func plainText(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t' && c != '\n') || c >= 0x7f {
			return false
		}
	}
	return true
}

// text reads character data up to the next '<' and decodes the five
// predefined entities.
func (p *fastXML) text() (string, bool) {
	end := bytes.IndexByte(p.b[p.i:], '<')
	if end < 0 {
		return "", false
	}
	raw := p.b[p.i : p.i+end]
	if !plainText(raw) || bytes.Contains(raw, []byte("]]>")) {
		return "", false
	}
	p.i += end
	if bytes.IndexByte(raw, '&') < 0 {
		return string(raw), true
	}
	out := make([]byte, 0, len(raw))
	for len(raw) > 0 {
		k := bytes.IndexByte(raw, '&')
		if k < 0 {
			out = append(out, raw...)
			break
		}
		out = append(out, raw[:k]...)
		raw = raw[k:]
		var r byte
		switch {
		case bytes.HasPrefix(raw, []byte("&lt;")):
			r, raw = '<', raw[4:]
		case bytes.HasPrefix(raw, []byte("&gt;")):
			r, raw = '>', raw[4:]
		case bytes.HasPrefix(raw, []byte("&amp;")):
			r, raw = '&', raw[5:]
		case bytes.HasPrefix(raw, []byte("&quot;")):
			r, raw = '"', raw[6:]
		case bytes.HasPrefix(raw, []byte("&apos;")):
			r, raw = '\'', raw[6:]
		default:
			return "", false
		}
		out = append(out, r)
	}
	return string(out), true
}

// element reads <name>text</name> or <name/> after the caller consumed
// "<name"; it returns the text.
func (p *fastXML) element(name string) (string, bool) {
	if p.lit("/>") {
		return "", true
	}
	if !p.lit(">") {
		return "", false
	}
	s, ok := p.text()
	if !ok || !p.lit("</") || !p.lit(name) || !p.lit(">") {
		return "", false
	}
	return s, true
}

// value reads one value at the current position.
func (p *fastXML) value(depth int) (any, bool) {
	if depth > MaxDepth || !p.lit("<") {
		return nil, false
	}
	switch {
	case p.lit("dict"):
		return p.dict(depth)
	case p.lit("array"):
		return p.array(depth)
	case p.lit("string"):
		return p.element("string")
	case p.lit("integer"):
		s, ok := p.element("integer")
		return integer(s, ok)
	case p.lit("true"):
		return p.boolean("true", true)
	case p.lit("false"):
		return p.boolean("false", false)
	}
	return nil, false
}

// boolean reads the rest of <true/>, <true></true> and the same for false.
func (p *fastXML) boolean(name string, v bool) (any, bool) {
	if p.lit("/>") || (p.lit("></") && p.lit(name) && p.lit(">")) {
		return v, true
	}
	return nil, false
}

// integer converts the text of an <integer> as howett.net/plist does:
// uint64, or int64 when negative. Only plain decimal is taken here.
func integer(s string, ok bool) (any, bool) {
	if !ok {
		return nil, false
	}
	digits := s
	if len(s) > 0 && s[0] == '-' {
		digits = s[1:]
	}
	if len(digits) == 0 || len(digits) > 18 || (digits[0] == '0' && len(digits) > 1) {
		return nil, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return nil, false
		}
	}
	if s[0] == '-' {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

func (p *fastXML) dict(depth int) (any, bool) {
	m := map[string]any{}
	if p.lit("/>") {
		return m, true
	}
	if !p.lit(">") {
		return nil, false
	}
	for {
		if !p.misc() {
			return nil, false
		}
		if p.lit("</dict>") {
			return m, true
		}
		if !p.lit("<key") {
			return nil, false
		}
		k, ok := p.element("key")
		if !ok || !p.misc() {
			return nil, false
		}
		if _, dup := m[k]; dup || k == "CF$UID" {
			return nil, false
		}
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		m[k] = v
	}
}

func (p *fastXML) array(depth int) (any, bool) {
	a := []any{}
	if p.lit("/>") {
		return a, true
	}
	if !p.lit(">") {
		return nil, false
	}
	for {
		if !p.misc() {
			return nil, false
		}
		if p.lit("</array>") {
			return a, true
		}
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		a = append(a, v)
	}
}
