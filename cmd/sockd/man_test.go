package main

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sockd/sockd/job"
)

// needGroff skips (or, under CI, fails) without groff, which renders the
// manual pages.
func needGroff(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("groff"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("groff not installed (Debian: groff-base); .ci/run must install it")
		}
		t.Skip("groff not installed (Debian: groff-base)")
	}
}

// TestManPagesRender renders each page as man(1) would, with every
// warning on (groff -ww): a page must render without one.
func TestManPagesRender(t *testing.T) {
	needGroff(t)
	for _, name := range manPageNames() {
		out, errOut, code := sockd(t, "man", name)
		if code != 0 || !strings.HasPrefix(out, ".TH ") {
			t.Fatalf("sockd man %s: exit %d\n%s", name, code, errOut)
		}
		cmd := exec.Command("groff", "-ww", "-z", "-Tutf8", "-man")
		cmd.Stdin = strings.NewReader(out)
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
		if msg, err := cmd.CombinedOutput(); err != nil || len(msg) > 0 {
			t.Errorf("groff -ww %s: %v\n%s", name, err, msg)
		}
		if strings.ContainsFunc(out, func(r rune) bool { return r > 127 }) {
			t.Errorf("%s holds characters outside ASCII (roff.Text writes them as glyph names)", name)
		}
	}
	if _, _, code := sockd(t, "man", "sockd.1"); code != 2 {
		t.Errorf("sockd man sockd.1: exit %d, want 2", code)
	}
}

// TestHelpAndManAgree runs `sockd COMMAND -h` for every command and finds
// the same flags, with the same placeholders, in the command's synopsis,
// in its -h and in its entry of sockd(8).
func TestHelpAndManAgree(t *testing.T) {
	man, _, _ := sockd(t, "man", "sockd.8")
	entries := manEntries(t, man)
	if !slices.Contains(entries["serve"], "--jobs DIR") || !slices.Contains(entries["kickstart"], "-k") {
		t.Fatalf("the flags read from sockd(8) miss --jobs DIR or -k: %q", entries)
	}
	list, _, _ := sockd(t, "help")
	for _, c := range visible() {
		if !strings.Contains(list, "  "+c.name+" ") {
			t.Errorf("sockd help does not list %s", c.name)
		}
		_, help, code := sockd(t, c.name, "-h")
		if code != 0 || !strings.HasPrefix(help, "usage: sockd "+c.name) {
			t.Errorf("sockd %s -h: exit %d\n%s", c.name, code, help)
			continue
		}
		if out, _, _ := sockd(t, "help", c.name); out != help {
			t.Errorf("sockd help %s differs from sockd %s -h:\n%s\n---\n%s", c.name, c.name, out, help)
		}
		fromHelp := helpFlags(help)
		fromMan, ok := entries[c.name]
		if !ok {
			t.Errorf("sockd(8) has no entry for %s", c.name)
			continue
		}
		if !slices.Equal(fromHelp, fromMan) {
			t.Errorf("%s: -h lists %q, sockd(8) %q", c.name, fromHelp, fromMan)
		}
		for _, f := range fromHelp {
			if !strings.Contains(" "+c.synopsis+" ", "["+f+"]") && !strings.Contains(" "+c.synopsis+" ", "["+f+"]...") {
				t.Errorf("%s: the synopsis %q lacks [%s]", c.name, c.synopsis, f)
			}
			if strings.HasSuffix(f, " string") || strings.HasSuffix(f, " value") || strings.HasSuffix(f, " int") {
				t.Errorf("%s: flag %q has no placeholder: back-quote one in its usage (\"`DIR`\")", c.name, f)
			}
		}
	}
	for name := range entries {
		if c, ok := commands[name]; !ok || c.hidden {
			t.Errorf("sockd(8) has an entry for %q, which sockd does not list", name)
		}
	}
}

// helpFlags are the flags of -h output: "--jobs DIR", "-k", sorted.
func helpFlags(help string) []string {
	var out []string
	_, flags, _ := strings.Cut(help, "\nflags:\n")
	for _, l := range strings.Split(flags, "\n") {
		if strings.HasPrefix(l, "  -") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

var (
	manCommand = regexp.MustCompile(`^\\fBsockd ([a-z]+)\\fR`)
	manFlag    = regexp.MustCompile(`^\\fB(\\-[^ ]*?)\\fR(?: \\fI(.*)\\fR)?$`)
)

// manEntries are the flags of each command's entry in sockd(8), in the
// form helpFlags gives.
func manEntries(t *testing.T, man string) map[string][]string {
	t.Helper()
	_, body, ok := strings.Cut(man, ".SH \"COMMANDS\"")
	if !ok {
		t.Fatal("sockd(8) has no COMMANDS section")
	}
	body, _, _ = strings.Cut(body, "\n.SH ")
	out := map[string][]string{}
	cur := ""
	lines := strings.Split(body, "\n")
	for i := 0; i+1 < len(lines); i++ {
		if lines[i] != ".TP" {
			continue
		}
		next := lines[i+1]
		if m := manCommand.FindStringSubmatch(next); m != nil {
			cur = m[1]
			out[cur] = nil
			continue
		}
		if m := manFlag.FindStringSubmatch(next); m != nil && cur != "" {
			f := strings.ReplaceAll(m[1], `\-`, "-")
			if m[2] != "" {
				f += " " + strings.ReplaceAll(m[2], `\-`, "-")
			}
			out[cur] = append(out[cur], f)
		}
	}
	return out
}

// TestManPlistListsEveryKey: sockd.plist(5), made from docs/keys.md,
// names every key the loader knows.
func TestManPlistListsEveryKey(t *testing.T) {
	page, _, _ := sockd(t, "man", "sockd.plist.5")
	for _, k := range append(append([]job.KeyInfo(nil), job.TopLevelKeys...), job.SocketKeys...) {
		if !strings.Contains(page, `\fB`+k.Name+`\fR`) {
			t.Errorf("sockd.plist(5) does not name key %s", k.Name)
		}
	}
	for _, s := range []string{".SH \"NAME\"\nsockd.plist \\- ", ".SH \"LAUNCHD KEYS\"", ".SH \"SOCKD EXTENSION KEYS\"", ".SS \"SockdProxy\""} {
		if !strings.Contains(page, s) {
			t.Errorf("sockd.plist(5) lacks %q", s)
		}
	}
}
