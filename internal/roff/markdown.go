package roff

import (
	"regexp"
	"strings"
)

// Markdown writes md, in the subset docs/ uses, as the body of a page:
// "## H" is a section (its words upper-cased outside code), "### H" a
// subsection, "#### H" a bold paragraph, and a "# H" title is left out
// (the page's NAME says it). Paragraphs, "-" and "1." lists (nested by
// indentation), fenced and indented code, and tables are kept; a table row
// becomes a tagged paragraph: its first cell the tag, the middle cells
// "Header: value" lines, the last cell the text. Links keep their text;
// images are left out.
func (p *Page) Markdown(md string) {
	m := mdWriter{p: p}
	lines := strings.Split(strings.ReplaceAll(md, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trim := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case strings.HasPrefix(trim, "```"):
			m.flush()
			var code []string
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
				code = append(code, strings.TrimPrefix(lines[i], strings.Repeat(" ", indent)))
			}
			m.code(code)
		case trim == "":
			m.flush()
			m.blank = true
		case strings.HasPrefix(trim, "#"):
			m.closeLists()
			m.heading(trim)
		case strings.HasPrefix(trim, "|"):
			m.closeLists()
			var rows []string
			for ; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "|"); i++ {
				rows = append(rows, strings.TrimSpace(lines[i]))
			}
			i--
			m.table(rows)
		case strings.HasPrefix(trim, "!["):
			m.flush() // an image: nothing to show on a terminal
		default:
			if item := listItem.FindStringSubmatch(line); item != nil {
				m.item(len(item[1]), item[2], len(item[0])-len(item[3]), item[3])
				continue
			}
			if n := len(m.lists); n > 0 {
				content := m.lists[n-1].content
				switch {
				case indent >= content+4 && m.blank:
					i = m.indentedCode(lines, i, content+4)
					continue
				case indent >= content:
					if m.blank {
						m.p.Raw(`.IP "" ` + m.lists[n-1].width)
					}
					m.add(trim)
					continue
				case !m.blank:
					m.add(trim) // a lazy continuation line
					continue
				}
				m.closeLists()
			}
			if indent >= 4 && len(m.para) == 0 {
				i = m.indentedCode(lines, i, 4)
				continue
			}
			if len(m.para) == 0 {
				m.p.Raw(".PP")
			}
			m.add(trim)
		}
	}
	m.flush()
	m.closeLists()
}

var listItem = regexp.MustCompile(`^( *)([-*]|[0-9]+\.) +(.*)$`)

type mdList struct {
	indent, content int    // of the marker, of the text
	width           string // the .IP indent
}

type mdWriter struct {
	p     *Page
	para  []string // the paragraph being gathered, Markdown
	lists []mdList
	blank bool // a blank line came since the last text
}

func (m *mdWriter) add(text string) {
	m.para = append(m.para, text)
	m.blank = false
}

// flush writes the paragraph gathered so far (its inline markup may span
// lines).
func (m *mdWriter) flush() {
	if len(m.para) > 0 {
		m.p.lines(Inline(strings.Join(m.para, "\n")))
		m.para = nil
	}
}

// item starts a list item whose marker is at indent and text at content.
func (m *mdWriter) item(indent int, marker string, content int, text string) {
	m.flush()
	for len(m.lists) > 0 && indent < m.lists[len(m.lists)-1].indent {
		m.pop()
	}
	if n := len(m.lists); n == 0 || indent >= m.lists[n-1].content {
		width := "2"
		if marker != "-" && marker != "*" {
			width = "4"
		}
		if n > 0 {
			m.p.Raw(".RS")
		}
		m.lists = append(m.lists, mdList{indent: indent, content: content, width: width})
	}
	tag := `\(bu`
	if marker != "-" && marker != "*" {
		tag = marker
	}
	m.p.Raw(".IP " + tag + " " + m.lists[len(m.lists)-1].width)
	m.add(text)
}

func (m *mdWriter) pop() {
	m.lists = m.lists[:len(m.lists)-1]
	if len(m.lists) > 0 {
		m.p.Raw(".RE")
	}
}

func (m *mdWriter) closeLists() {
	m.flush()
	for len(m.lists) > 0 {
		m.pop()
	}
}

// indentedCode writes the code block of lines from i indented by at least
// indent, and returns the index of its last line.
func (m *mdWriter) indentedCode(lines []string, i, indent int) int {
	m.flush()
	var code []string
	for ; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || len(l)-len(strings.TrimLeft(l, " ")) < indent {
			break
		}
		code = append(code, l[indent:])
	}
	m.code(code)
	return i - 1
}

func (m *mdWriter) code(lines []string) {
	m.flush()
	m.p.Raw(".IP \"\" " + m.indent())
	m.p.Raw(".nf")
	for _, l := range lines {
		m.p.lines(code(l))
	}
	m.p.Raw(".fi")
	m.blank = false
}

func (m *mdWriter) indent() string {
	if n := len(m.lists); n > 0 {
		return m.lists[n-1].width
	}
	return "4"
}

func (m *mdWriter) heading(h string) {
	m.flush()
	level := len(h) - len(strings.TrimLeft(h, "#"))
	text := strings.TrimSpace(h[level:])
	switch level {
	case 1:
	case 2:
		m.p.SH(upperProse(text))
	case 3:
		m.p.SS(plain(text))
	default:
		m.p.Raw(".PP")
		m.p.lines(`\fB` + Text(plain(text)) + `\fR`)
	}
	m.blank = false
}

// table writes the rows of a Markdown table (header, rule, rows).
func (m *mdWriter) table(rows []string) {
	if len(rows) < 2 {
		return
	}
	header := cells(rows[0])
	for _, r := range rows[2:] {
		cs := cells(r)
		if len(cs) == 0 {
			continue
		}
		var body []string
		for j := 1; j < len(cs)-1; j++ {
			if cs[j] == "" || j >= len(header) {
				continue
			}
			body = append(body, Text(capital(plain(header[j]))+": ")+Inline(cs[j]))
		}
		if last := cs[len(cs)-1]; len(cs) > 1 && last != "" {
			body = append(body, Inline(last))
		}
		m.p.Raw(".TP")
		m.p.lines(Inline(cs[0]))
		for k, b := range body {
			if k > 0 {
				m.p.Raw(".br")
			}
			m.p.lines(b)
		}
	}
	m.p.Raw(".PP")
	m.blank = false
}

// cells splits a table row at the bars outside code spans.
func cells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	row = strings.TrimSuffix(row, "|")
	var out []string
	var cur strings.Builder
	inCode := false
	for i := 0; i < len(row); i++ {
		c := row[i]
		switch {
		case c == '\\' && i+1 < len(row) && row[i+1] == '|':
			cur.WriteByte('|')
			i++
		case c == '`':
			inCode = !inCode
			cur.WriteByte(c)
		case c == '|' && !inCode:
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, strings.TrimSpace(cur.String()))
}

var (
	link     = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	strong   = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	emphasis = regexp.MustCompile(`(^|[\s(])\*([^\s*][^*]*?)\*`)
)

// Inline converts the inline Markdown of one line to roff: `code` and
// **strong** in bold, *emphasis* in italic, links as their text.
func Inline(s string) string {
	var b strings.Builder
	for s != "" {
		i := strings.IndexByte(s, '`')
		if i < 0 {
			b.WriteString(prose(s))
			break
		}
		j := strings.IndexByte(s[i+1:], '`')
		if j < 0 {
			b.WriteString(prose(s))
			break
		}
		b.WriteString(prose(s[:i]))
		b.WriteString(Bold(s[i+1 : i+1+j]))
		s = s[i+2+j:]
	}
	return b.String()
}

// prose converts Markdown text without code spans.
func prose(s string) string {
	s = link.ReplaceAllString(s, "$1")
	s = strings.ReplaceAll(s, `\|`, "|")
	s = Text(s)
	s = strong.ReplaceAllString(s, `\fB$1\fR`)
	s = emphasis.ReplaceAllString(s, `$1\fI$2\fR`)
	return s
}

// plain is Markdown text with its markup dropped.
func plain(s string) string {
	s = link.ReplaceAllString(s, "$1")
	return strings.NewReplacer("`", "", "**", "").Replace(s)
}

// upperProse upper-cases a heading outside its code spans.
func upperProse(s string) string {
	parts := strings.Split(s, "`")
	for i := range parts {
		if i%2 == 0 {
			parts[i] = strings.ToUpper(link.ReplaceAllString(parts[i], "$1"))
		}
	}
	return strings.Join(parts, "")
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
