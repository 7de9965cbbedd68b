package roff

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"sockd --json -k":      `sockd \-\-json \-k`,
		"socket-activation":    "socket-activation",
		`a\b`:                  `a\eb`,
		"fds 3, 4, …":          `fds 3, 4, \[u2026]`,
		"(-1) 0-9 IPv4-mapped": `(\-1) 0-9 IPv4-mapped`,
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Bold("ip-range"); got != `\fBip\-range\fR` {
		t.Errorf("Bold: %q", got)
	}
}

func TestInline(t *testing.T) {
	for in, want := range map[string]string{
		"the `SockType` key":               `the \fBSockType\fR key`,
		"**Error** and *why*":              `\fBError\fR and \fIwhy\fR`,
		"see [keys.md](keys.md#x) and `*`": `see keys.md and \fB*\fR`,
		"every *.plist file":               "every *.plist file",
	} {
		if got := Inline(in); got != want {
			t.Errorf("Inline(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMarkdown(t *testing.T) {
	var p Page
	p.Markdown("# Title\n\nFirst *para\ngraph*.\n\n## Some `Key` keys\n\n- one\n  more\n  - nested\n- two\n\n" +
		"      code in a list\n\n.starts with a dot\n\n| key | type | meaning |\n| --- | --- | --- |\n| `A` | string | the `A|B` key |\n\n```sh\nsockd --json\n```\n")
	got := p.String()
	for _, want := range []string{
		".PP\nFirst \\fIpara\ngraph\\fR.\n",
		`.SH "SOME Key KEYS"`,
		".IP \\(bu 2\none\nmore\n.RS\n.IP \\(bu 2\nnested\n.RE\n.IP \\(bu 2\ntwo\n",
		".nf\ncode in a list\n.fi\n",
		"\\&.starts with a dot\n",
		".TP\n\\fBA\\fR\nType: string\n.br\nthe \\fBA|B\\fR key\n",
		".nf\nsockd \\-\\-json\n.fi\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "Title") {
		t.Errorf("the # title belongs to NAME, not the body:\n%s", got)
	}
}
