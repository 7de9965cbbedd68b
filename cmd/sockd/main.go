// Command sockd is a Linux socket-activation daemon configured by launchd
// job files: it binds the sockets the job files describe and starts the
// jobs' programs on demand (inetd style, launchd/systemd hand-off, or as a
// proxy). See README.md and sockd(8), which is made from the command
// table (sockd man).
//
// main stays tiny: every command lives in its own file and registers
// itself in init(), and errors become exit codes in exactly one place.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
)

// command is one sub-command of sockd. Its table entry is the one source
// of its help (-h, sockd help NAME), of its section of sockd(8) and of its
// shell completion: see help.go, man.go and completion.go.
type command struct {
	name    string
	summary string
	// synopsis is what follows "sockd NAME" in the usage line: every flag
	// and the positional arguments ("[--json] FILE|DIR...").
	synopsis string
	// about describes the command: paragraphs separated by blank lines.
	about string
	// flags defines the command's flags on fs with the defaults d (nil: it
	// has none). The command's run parses exactly these (see withFlags).
	flags func(fs *flag.FlagSet, d defaults)
	// prepare, when set, rewrites the arguments before they are parsed.
	prepare func(args []string) []string
	// hidden commands are internal (e.g. exec trampolines) and not listed.
	hidden bool
	run    func(args []string) error
}

var commands = map[string]command{}

// register adds a command; command files call it from init().
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("sockd: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// withFlags completes c from one definition of its flags: define binds
// them to a fresh *T (with this process's defaults when run, with the
// documented ones for sockd(8)), and run gets that *T once the arguments
// are parsed (flags may come before or after the positional arguments).
func withFlags[T any](c command, define func(o *T, fs *flag.FlagSet, d defaults), run func(o *T, pos []string) error) command {
	c.flags = func(fs *flag.FlagSet, d defaults) { define(new(T), fs, d) }
	c.run = func(args []string) error {
		o := new(T)
		fs := c.flagSet(func(fs *flag.FlagSet) { define(o, fs, here()) })
		if c.prepare != nil {
			args = c.prepare(args)
		}
		pos, err := parseInterspersed(fs, args)
		if err != nil {
			return usageError(err)
		}
		err = run(o, pos)
		var ae *argsError
		if errors.As(err, &ae) {
			fs.Usage()
			return &exitError{code: 2, err: errors.New(ae.msg)}
		}
		return err
	}
	return c
}

// argsError is a wrong list of positional arguments: the command's usage
// is printed before it, and it exits with status 2.
type argsError struct{ msg string }

func (e *argsError) Error() string { return e.msg }

func badArgs(format string, a ...any) error { return &argsError{fmt.Sprintf(format, a...)} }

// exitError ends sockd with code. A nil err exits quietly (the command has
// already said what went wrong).
type exitError struct {
	code int
	err  error
	said error // what was wrong, when it has been printed already (err is nil then)
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError marks a command-line mistake (exit status 2). flag.ErrHelp
// (the user asked for -h) exits 0.
func usageError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return &exitError{code: 0}
	}
	var printed *printedError
	if errors.As(err, &printed) {
		return &exitError{code: 2, said: printed} // the flag package has said it, with the usage
	}
	return &exitError{code: 2, err: err}
}

// printedError is a flag error the FlagSet has printed already.
type printedError struct{ err error }

func (e *printedError) Error() string { return e.err.Error() }
func (e *printedError) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run dispatches to a command and maps its error to an exit status.
func run(args []string, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && name == "help" {
			return helpCommand(args[1], stderr)
		}
		usage(os.Stdout)
		return 0
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "sockd: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	err := c.run(args[1:])
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "sockd %s: %v\n", name, ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "sockd %s: %v\n", name, err)
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: sockd COMMAND [ARGS]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", n, commands[n].summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun 'sockd help COMMAND' (or 'sockd COMMAND -h') for a command's flags; man sockd for all.\n")
}

// parseInterspersed parses flags that may come before or after the
// positional arguments (sockd print FILE --json) and returns the
// positional arguments. "--" ends flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &printedError{err}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse stops at "--" (consumed) or at the first non-flag.
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
