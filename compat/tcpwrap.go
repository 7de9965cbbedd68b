package compat

import (
	"path"
	"strings"
)

// TCP wrappers (libwrap): xinetd built with libwrap, as Debian's is,
// checks /etc/hosts.allow and /etc/hosts.deny for every connection of every
// service without flags = NOLIBWRAP; inetd does so only when run with -l
// (Debian) or -w (FreeBSD). sockd has no TCP wrappers. A server that is
// tcpd itself checks the tables when sockd runs it, as it did under inetd.

// wrapRule is one rule of hosts.allow or hosts.deny.
type wrapRule struct {
	file    string
	line    int
	text    string
	daemons []string // the daemon list
	options bool     // a third field: options or a shell command
	deny    bool     // from hosts.deny
}

// wrapRules holds the rules of both tables.
type wrapRules struct {
	rules []wrapRule
	err   error // a table that exists but cannot be read
}

// readWrapRules reads hosts.allow and hosts.deny; a missing table has no
// rules.
func readWrapRules(allow, deny string) *wrapRules {
	w := &wrapRules{}
	for _, f := range []struct {
		path string
		deny bool
	}{{allow, false}, {deny, true}} {
		data, err := readHostFile(f.path)
		if err != nil {
			w.err = err
			return w
		}
		w.rules = append(w.rules, parseWrapRules(data, f.path, f.deny)...)
	}
	return w
}

// parseWrapRules parses hosts_access(5) text: "daemons : clients
// [: options]"; a backslash before the newline continues the line; blank
// and '#' lines are ignored, and so is a line without ':', as tcpd does.
func parseWrapRules(data []byte, file string, deny bool) []wrapRule {
	var out []wrapRule
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		text := strings.TrimRight(lines[i], "\r")
		for strings.HasSuffix(text, "\\") && i+1 < len(lines) {
			i++
			text = text[:len(text)-1] + strings.TrimRight(lines[i], "\r")
		}
		text = strings.TrimSpace(text)
		if text == "" || text[0] == '#' {
			continue
		}
		fields := splitRule(text)
		if len(fields) < 2 {
			continue
		}
		out = append(out, wrapRule{file: file, line: start, text: text, deny: deny,
			daemons: strings.FieldsFunc(fields[0], isListSep), options: len(fields) > 2})
	}
	return out
}

// splitRule splits a rule at the colons outside [...] (IPv6 addresses).
func splitRule(s string) []string {
	var out []string
	depth, from := 0, 0
	for i, c := range s {
		switch {
		case c == '[':
			depth++
		case c == ']' && depth > 0:
			depth--
		case c == ':' && depth == 0:
			out = append(out, s[from:i])
			from = i + 1
		}
	}
	return append(out, s[from:])
}

func isListSep(r rune) bool { return r == ' ' || r == '\t' || r == ',' }

// restricting returns the first rule that can refuse a client of daemon:
// a hosts.deny rule for it, or a hosts.allow rule for it with options
// (which may deny, twist or spawn). nil means libwrap lets every client in.
// The daemon list is matched broadly (a "name@host" or wildcard token
// counts), its EXCEPT parts narrowly, so that no rule that might apply is
// missed.
func (w *wrapRules) restricting(daemon string) *wrapRule {
	for i := range w.rules {
		r := &w.rules[i]
		if (r.deny || r.options) && daemonListMatches(r.daemons, daemon, true) {
			return r
		}
	}
	return nil
}

// daemonListMatches is tcpd's list_match for a daemon list: the first
// matching token decides, unless an EXCEPT list after it matches too.
// broad says how doubtful tokens count; it flips for the exceptions.
func daemonListMatches(toks []string, daemon string, broad bool) bool {
	for i, tok := range toks {
		if strings.EqualFold(tok, "EXCEPT") {
			return false
		}
		if !daemonMatches(tok, daemon, broad) {
			continue
		}
		rest := toks[i+1:]
		for len(rest) > 0 && !strings.EqualFold(rest[0], "EXCEPT") {
			rest = rest[1:]
		}
		return len(rest) == 0 || !daemonListMatches(rest[1:], daemon, !broad)
	}
	return false
}

// daemonMatches is tcpd's server_match and string_match, ignoring letter
// case: ALL and KNOWN match every daemon, ".suffix" and "prefix." match
// the name's end and start, '*' and '?' are wildcards (Debian). A
// "name@host" token also depends on the server address, which is not
// known here: it counts when broad.
func daemonMatches(tok, daemon string, broad bool) bool {
	if at := strings.IndexByte(tok, '@'); at >= 0 {
		if !broad {
			return false
		}
		tok = tok[:at]
	}
	tok, daemon = strings.ToLower(tok), strings.ToLower(daemon)
	switch {
	case tok == "all" || tok == "known":
		return true
	case strings.HasPrefix(tok, "."):
		return strings.HasSuffix(daemon, tok)
	case strings.HasSuffix(tok, "."):
		return strings.HasPrefix(daemon, tok)
	case strings.ContainsAny(tok, "*?"):
		ok, err := path.Match(tok, daemon)
		return ok || err != nil && broad
	}
	return tok == daemon
}
