package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/overrides"
)

// A command's help, its section of sockd(8) and its completion are all
// made from its table entry (command) and the flags its flags function
// defines; this file holds what the three share.

// defaults are the flag defaults that depend on who runs sockd: a command
// parses with here(), and sockd(8) shows documented, true for everyone.
type defaults struct {
	jobDirs   string // serve's and print's --jobs
	control   string // serve's --control
	asks      string // the control commands' --control
	overrides string // serve's --overrides
}

// here are the defaults for this process.
func here() defaults {
	return defaults{
		jobDirs:   strings.Join(defaultJobDirs(), ", "),
		control:   control.DefaultPath(os.Geteuid()),
		asks:      control.ClientPath(os.Geteuid()),
		overrides: overrides.DefaultPath(os.Geteuid()),
	}
}

// documented are the defaults as sockd(8) states them.
var documented = defaults{
	jobDirs:   "/etc/sockd/jobs for root, else $XDG_CONFIG_HOME/sockd/jobs or ~/.config/sockd/jobs",
	control:   "/run/sockd/control.sock for root, else $XDG_RUNTIME_DIR/sockd/control.sock",
	asks:      "/run/sockd/control.sock for root; for a user, $XDG_RUNTIME_DIR/sockd/control.sock where it exists, else root's (the user's domain)",
	overrides: "/var/lib/sockd/overrides.json for root, else $XDG_STATE_HOME/sockd/overrides.json or ~/.local/state/sockd/overrides.json",
}

// flagSet is a FlagSet of c's with its flags defined by define, whose -h
// prints c's help.
func (c command) flagSet(define func(fs *flag.FlagSet)) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	if define != nil {
		define(fs)
	}
	fs.Usage = func() { c.help(fs.Output(), fs) }
	return fs
}

// docFlags are c's flags with the documented defaults, sorted by name.
func (c command) docFlags(d defaults) []*flag.Flag {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	if c.flags != nil {
		c.flags(fs, d)
	}
	var out []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { out = append(out, f) })
	return out
}

// help prints c's usage line, description and flags.
func (c command) help(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: sockd %s\n\n%s\n", strings.TrimSpace(c.name+" "+c.synopsis), wrap(c.about, 78, ""))
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		if n == 0 {
			fmt.Fprintf(w, "\nflags:\n")
		}
		n++
		fmt.Fprintf(w, "  %s\n%s\n", strings.TrimSpace(flagName(f.Name)+" "+flagArg(f)), wrap(flagUsage(f), 74, "      "))
	})
}

// helpCommand prints the help of command name on stdout (sockd help NAME).
func helpCommand(name string, stderr io.Writer) int {
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "sockd help: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	var define func(fs *flag.FlagSet)
	if c.flags != nil {
		define = func(fs *flag.FlagSet) { c.flags(fs, here()) }
	}
	fs := c.flagSet(define)
	c.help(os.Stdout, fs)
	return 0
}

// flagName is how a flag is written: -k for one letter, --json otherwise
// (Go's flag package takes either form).
func flagName(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// flagArg is the placeholder of a flag's value: the back-quoted word of
// its usage ("`DIR`"), empty for a boolean flag. A placeholder with "|"
// lists the values the flag takes (console|json).
func flagArg(f *flag.Flag) string {
	name, _ := flag.UnquoteUsage(f)
	if isBool(f) {
		return ""
	}
	return name
}

// flagUsage is a flag's usage without the back quotes, with its default.
func flagUsage(f *flag.Flag) string {
	_, u := flag.UnquoteUsage(f)
	if def := f.DefValue; def != "" && !isBool(f) && !strings.Contains(u, "(default") {
		u += " (default: " + def + ")"
	}
	return u
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// visible are the commands sockd lists, in the order of sockd(8): the
// daemon and the job files first, then the control commands, then the
// rest, each group by name.
func visible() []command {
	group := func(c command) int {
		switch {
		case isCtl(c.name):
			return 1
		case c.name == "serve" || c.name == "check" || c.name == "print" || c.name == "convert":
			return 0
		}
		return 2
	}
	var out []command
	for _, c := range commands {
		if !c.hidden {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		gi, gj := group(out[i]), group(out[j])
		if gi != gj {
			return gi < gj
		}
		if gi == 0 { // the order a new user meets them
			order := map[string]int{"serve": 0, "check": 1, "print": 2, "convert": 3}
			return order[out[i].name] < order[out[j].name]
		}
		return out[i].name < out[j].name
	})
	return out
}

// wrap fills the paragraphs of s (separated by blank lines) to width,
// each line indented by indent. Lines that start with a space are kept as
// they are (examples).
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	for i, para := range strings.Split(strings.TrimSpace(s), "\n\n") {
		if i > 0 {
			b.WriteString("\n\n")
		}
		if strings.HasPrefix(para, " ") {
			for j, l := range strings.Split(para, "\n") {
				if j > 0 {
					b.WriteByte('\n')
				}
				b.WriteString(indent + l)
			}
			continue
		}
		line := indent
		for _, w := range strings.Fields(para) {
			if len(line) > len(indent) && len(line)+1+len(w) > width {
				b.WriteString(line + "\n")
				line = indent
			}
			if len(line) > len(indent) {
				line += " "
			}
			line += w
		}
		b.WriteString(line)
	}
	return b.String()
}
