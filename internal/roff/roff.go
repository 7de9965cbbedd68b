// Package roff writes manual pages in the man macros of roff: the page
// requests sockd(8) is made of, and the subset of Markdown that docs/ is
// written in (headings, paragraphs, lists, tables, code), from which
// sockd.plist(5) is made. Every character that roff would take for a
// request or an escape is escaped, and every character outside ASCII is
// written as a glyph name, so the pages render the same without preconv
// and without warnings (groff -ww).
package roff

import (
	"fmt"
	"strings"
	"unicode"
)

// Page accumulates a manual page.
type Page struct {
	b strings.Builder
}

// String is the page's source.
func (p *Page) String() string { return p.b.String() }

// Raw writes a line of roff as it is.
func (p *Page) Raw(line string) {
	p.b.WriteString(line)
	p.b.WriteByte('\n')
}

// TH starts the page: name, section, the footer's centre (a date, may be
// empty), its left (the source) and the header's centre (the manual).
func (p *Page) TH(name, section, date, source, manual string) {
	p.Raw(fmt.Sprintf(".TH %s %s %s %s %s", quote(name), section, quote(date), quote(source), quote(manual)))
}

// SH starts a section; SS a subsection.
func (p *Page) SH(title string) { p.Raw(".SH " + quote(title)) }
func (p *Page) SS(title string) { p.Raw(".SS " + quote(title)) }

// Para writes a paragraph of plain text (no markup).
func (p *Page) Para(text string) {
	p.Raw(".PP")
	p.lines(Text(text))
}

// Tagged writes an indented paragraph under tag, both already roff (use
// Bold, Italic, Text).
func (p *Page) Tagged(tag, body string) {
	p.Raw(".TP")
	p.lines(tag)
	p.lines(body)
}

// Example writes lines as they are, unfilled and indented.
func (p *Page) Example(lines ...string) {
	p.Raw(".PP")
	p.Raw(".RS 4")
	p.Raw(".nf")
	for _, l := range lines {
		p.lines(code(l))
	}
	p.Raw(".fi")
	p.Raw(".RE")
}

// lines writes roff text, guarding lines that roff would read as requests.
func (p *Page) lines(s string) {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		p.Raw(l)
	}
}

// Text escapes plain text for roff. A hyphen that starts a word or follows
// another (--json, -k, -1) is a minus sign, \-, so it renders and copies as
// the ASCII character; one inside a word stays a hyphen.
func Text(s string) string { return escape(s, false) }

// Bold and Italic are s, escaped, in bold or italic. Bold is for what is
// typed as it is (commands, flags, keys), Italic for what stands for a
// value (FILE).
func Bold(s string) string   { return `\fB` + code(s) + `\fR` }
func Italic(s string) string { return `\fI` + code(s) + `\fR` }

// code escapes literal text: every hyphen is \-.
func code(s string) string { return escape(s, true) }

func escape(s string, literal bool) string {
	var b strings.Builder
	prev := ' '
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-' && (literal || prev == '-' || !(unicode.IsLetter(prev) || unicode.IsDigit(prev)) || i+1 < len(rs) && rs[i+1] == '-'):
			b.WriteString(`\-`)
		case r > unicode.MaxASCII:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		case r == '\t':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
		prev = r
	}
	return b.String()
}

// quote is a macro argument: in double quotes, with quotes inside escaped.
func quote(s string) string {
	return `"` + strings.ReplaceAll(escape(s, false), `"`, `\(dq`) + `"`
}
