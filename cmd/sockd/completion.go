package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/jobset"
)

// Shell completion, made from the command table as sockd(8) is: the
// commands, each one's flags and what their values are (a placeholder
// with FILE, DIR or PATH: file names; UID: users; a|b: those words), and
// its positional arguments (FILE: file names, LABEL: the labels of the
// running daemon's jobs, else of the jobs directories, which the hidden
// command __labels prints).

func init() {
	register(withFlags(command{
		name:     "completion",
		summary:  "print a shell completion script (bash, zsh or fish)",
		synopsis: "bash|zsh|fish",
		about: "Prints the completion script for the shell: commands, flags and their values, and job labels, " +
			"asked of the running sockd (else read from the jobs directories) as you type. The package installs all three; " +
			"without it, add to ~/.bashrc:\n\n    source <(sockd completion bash)\n\n" +
			"for zsh write it as _sockd into a directory of $fpath, for fish into ~/.config/fish/completions/sockd.fish.",
	}, func(*struct{}, *flag.FlagSet, defaults) {}, func(_ *struct{}, pos []string) error {
		if len(pos) != 1 || completers[pos[0]] == nil {
			return badArgs("name one shell: bash, zsh or fish")
		}
		return completers[pos[0]](os.Stdout, completionSpecs())
	}))
	register(withFlags(command{
		name: "__labels", hidden: true,
		summary:  "print the job labels for shell completion",
		synopsis: "[--control PATH] [--jobs DIR]...",
	}, func(o *labelsFlags, fs *flag.FlagSet, d defaults) {
		fs.StringVar(&o.control, "control", d.asks, "the control socket `PATH` to ask")
		fs.Var(&o.dirs, "jobs", "job `DIR` to read when no daemon answers (repeatable)")
	}, func(o *labelsFlags, _ []string) error {
		for _, l := range labels(o.control, o.dirs) {
			fmt.Println(l)
		}
		return nil
	}))
}

type labelsFlags struct {
	control string
	dirs    stringsFlag
}

// labels are the labels of the daemon at ctl, or, when none answers, of
// the jobs in dirs (default: serve's), sorted.
func labels(ctl string, dirs []string) []string {
	var out []string
	resp, err := control.Do(ctl, control.Request{Cmd: control.CmdList}, 2*time.Second)
	if err == nil && resp.Status == control.OK {
		for _, j := range resp.Jobs {
			out = append(out, j.Label)
		}
	} else {
		if len(dirs) == 0 {
			dirs = defaultJobDirs()
		}
		opts := jobset.ForThisProcess()
		opts.MissingOK = true
		seen := map[string]bool{}
		for _, j := range jobset.Load(jobset.Sources{Paths: dirs}, opts).All {
			if !seen[j.Label] {
				seen[j.Label] = true
				out = append(out, j.Label)
			}
		}
	}
	sort.Strings(out)
	return out
}

var completers = map[string]func(io.Writer, []compSpec) error{
	"bash": bashCompletion,
	"zsh":  zshCompletion,
	"fish": fishCompletion,
}

// compSpec is what completion knows of one command.
type compSpec struct {
	name, summary string
	flags         []compFlag
	// pos is what the positional arguments are: "files", "labels",
	// "files+labels", "signal+labels" (a signal, then labels), "words"
	// (one of words) or "" (none).
	pos   string
	words []string
}

// compFlag is one flag: its name as typed (--jobs, -k), its value's kind
// ("" for a boolean flag, "files", "users", "words", "none") and words.
type compFlag struct {
	name, summary, kind string
	words               []string
}

var flagGroup = regexp.MustCompile(`\[-[^\]]*\](\.\.\.)?`)

// completionSpecs are the visible commands, with help, as completion sees
// them.
func completionSpecs() []compSpec {
	var out []compSpec
	for _, c := range visible() {
		s := compSpec{name: c.name, summary: c.summary}
		for _, f := range c.docFlags(documented) {
			cf := compFlag{name: flagName(f.Name), summary: firstClause(flagUsage(f))}
			switch a := flagArg(f); {
			case a == "":
			case strings.Contains(a, "|") && a == strings.ToLower(a):
				cf.kind, cf.words = "words", strings.Split(a, "|")
			case strings.Contains(a, "FILE") || strings.Contains(a, "DIR") || strings.Contains(a, "PATH"):
				cf.kind = "files"
			case a == "UID":
				cf.kind = "users"
			default:
				cf.kind = "none"
			}
			s.flags = append(s.flags, cf)
		}
		args := strings.TrimSpace(flagGroup.ReplaceAllString(c.synopsis, ""))
		switch {
		case strings.HasPrefix(args, "SIGNAL"):
			s.pos = "signal+labels"
		case strings.Contains(args, "FILE") && strings.Contains(args, "LABEL"):
			s.pos = "files+labels"
		case strings.Contains(args, "FILE") || strings.Contains(args, "DIR"):
			s.pos = "files"
		case strings.Contains(args, "LABEL"):
			s.pos = "labels"
		case strings.Contains(args, "|") && args == strings.ToLower(args):
			s.pos, s.words = "words", strings.Split(args, "|")
		}
		out = append(out, s)
	}
	help := compSpec{name: "help", summary: "show a command's help", pos: "words"}
	for _, s := range out {
		help.words = append(help.words, s.name)
	}
	return append(out, help)
}

// firstClause is the start of a usage, for a one-line description.
func firstClause(u string) string {
	for _, sep := range []string{" (", "; ", ": "} {
		if i := strings.Index(u, sep); i > 0 {
			u = u[:i]
		}
	}
	return u
}

var signalWords = []string{"HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "CONT", "STOP"}

func names(specs []compSpec) string {
	var n []string
	for _, s := range specs {
		n = append(n, s.name)
	}
	return strings.Join(n, " ")
}

func bashCompletion(w io.Writer, specs []compSpec) error {
	var b strings.Builder
	b.WriteString(`# bash completion for sockd(8): commands, flags, and the job labels of the running
# sockd (else of the jobs directories). Generated by "sockd completion bash".

_sockd_labels() {
	local i args=()
	for ((i = 2; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--control | -control | --jobs | -jobs) args+=("${COMP_WORDS[i]}" "${COMP_WORDS[i+1]}") ;;
		esac
	done
	"${COMP_WORDS[0]}" __labels "${args[@]}" 2>/dev/null
}

# _sockd_npos counts the positional arguments before the word completed.
_sockd_npos() {
	local i n=0 takes=" $1 "
	for ((i = 2; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-[0-9A-Z]*) ((n++)) ;; # kill -9, -TERM: flags are lower case
		-*) [[ $takes == *" ${COMP_WORDS[i]} "* ]] && ((i++)) ;;
		*) ((n++)) ;;
		esac
	done
	echo "$n"
}

_sockd() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local flags="" takes="" pos="" words=""
	COMPREPLY=()
	if ((COMP_CWORD == 1)); then
		COMPREPLY=($(compgen -W "` + names(specs) + `" -- "$cur"))
		return
	fi
	case ${COMP_WORDS[1]} in
`)
	for _, s := range specs {
		fmt.Fprintf(&b, "\t%s)\n", s.name)
		var flagNames, takes []string
		byKind := map[string][]string{}
		wordsOf := map[string][]string{}
		for _, f := range s.flags {
			flagNames = append(flagNames, f.name)
			if f.kind == "" {
				continue
			}
			takes = append(takes, f.name)
			byKind[f.kind] = append(byKind[f.kind], f.name)
			if f.kind == "words" {
				wordsOf[f.name] = f.words
			}
		}
		if len(takes) > 0 {
			b.WriteString("\t\tcase $prev in\n")
			if fs := byKind["files"]; len(fs) > 0 {
				fmt.Fprintf(&b, "\t\t%s) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n", strings.Join(fs, " | "))
			}
			if us := byKind["users"]; len(us) > 0 {
				fmt.Fprintf(&b, "\t\t%s) COMPREPLY=($(compgen -u -- \"$cur\")); return ;;\n", strings.Join(us, " | "))
			}
			for _, f := range byKind["words"] {
				fmt.Fprintf(&b, "\t\t%s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", f, strings.Join(wordsOf[f], " "))
			}
			if ns := byKind["none"]; len(ns) > 0 {
				fmt.Fprintf(&b, "\t\t%s) return ;;\n", strings.Join(ns, " | "))
			}
			b.WriteString("\t\tesac\n")
		}
		words := s.words
		if s.pos == "signal+labels" {
			words = signalWords
		}
		fmt.Fprintf(&b, "\t\tflags=%q takes=%q pos=%q words=%q\n\t\t;;\n",
			strings.Join(flagNames, " "), strings.Join(takes, " "), s.pos, strings.Join(words, " "))
	}
	b.WriteString(`	*) return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
		return
	fi
	case $pos in
	files) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
	labels) COMPREPLY=($(compgen -W "$(_sockd_labels)" -- "$cur")) ;;
	files+labels) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur") $(compgen -W "$(_sockd_labels)" -- "$cur")) ;;
	signal+labels)
		if (($(_sockd_npos "$takes") == 0)); then
			COMPREPLY=($(compgen -W "$words" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_sockd_labels)" -- "$cur"))
		fi
		;;
	words) (($(_sockd_npos "$takes") == 0)) && COMPREPLY=($(compgen -W "$words" -- "$cur")) ;;
	esac
}
complete -F _sockd sockd
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// zshQuote is s in single quotes for zsh.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// zshDesc escapes what _arguments gives a meaning to in an option's
// description.
func zshDesc(s string) string {
	return strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`).Replace(s)
}

func zshCompletion(w io.Writer, specs []compSpec) error {
	var b strings.Builder
	b.WriteString(`#compdef sockd
# zsh completion for sockd(8): commands, flags, and the job labels of the running
# sockd (else of the jobs directories). Generated by "sockd completion zsh".

_sockd_labels() {
	local -a args labels
	local i
	for ((i = 2; i < CURRENT; i++)); do
		case $words[i] in
		(--control|-control|--jobs|-jobs) args+=($words[i] $words[i+1]) ;;
		esac
	done
	labels=(${(f)"$(_call_program labels $service __labels ${(q)args} 2>/dev/null)"})
	_wanted labels expl 'job label' compadd -a labels
}

_sockd_file_or_label() {
	_alternative 'files:job file:_files' 'labels:job label:_sockd_labels'
}

_sockd() {
	local -a commands
	commands=(
`)
	for _, s := range specs {
		fmt.Fprintf(&b, "\t\t%s\n", zshQuote(s.name+":"+s.summary))
	}
	b.WriteString(`	)
	if (( CURRENT == 2 )); then
		_describe -t commands 'sockd command' commands
		return
	fi
	local cmd=$words[2]
	shift words
	(( CURRENT-- ))
	case $cmd in
`)
	for _, s := range specs {
		fmt.Fprintf(&b, "\t(%s)\n\t\t_arguments -S", s.name)
		for _, f := range s.flags {
			spec := f.name
			if f.kind != "" {
				spec += "="
			}
			if f.summary != "" {
				spec += "[" + zshDesc(f.summary) + "]"
			}
			switch f.kind {
			case "files":
				spec += ":file:_files"
			case "users":
				spec += ":user:_users"
			case "words":
				spec += ":value:(" + strings.Join(f.words, " ") + ")"
			case "none":
				spec += ": : "
			}
			if f.name == "--jobs" || f.name == "--inetd-conf" || f.name == "--xinetd" || f.name == "--systemd" {
				spec = "*" + spec // repeatable
			}
			fmt.Fprintf(&b, " \\\n\t\t\t%s", zshQuote(spec))
		}
		switch s.pos {
		case "files":
			b.WriteString(" \\\n\t\t\t'*:file:_files'")
		case "labels":
			b.WriteString(" \\\n\t\t\t'*:job label:_sockd_labels'")
		case "files+labels":
			b.WriteString(" \\\n\t\t\t'1:job file or label:_sockd_file_or_label' '2:job label:_sockd_labels'")
		case "signal+labels":
			fmt.Fprintf(&b, " \\\n\t\t\t'1:signal:(%s)' '2:job label:_sockd_labels'", strings.Join(signalWords, " "))
		case "words":
			fmt.Fprintf(&b, " \\\n\t\t\t'1:argument:(%s)'", strings.Join(s.words, " "))
		}
		b.WriteString("\n\t\t;;\n")
	}
	b.WriteString(`	esac
}

_sockd "$@"
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// fishQuote is s in single quotes for fish.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

func fishCompletion(w io.Writer, specs []compSpec) error {
	var b strings.Builder
	b.WriteString(`# fish completion for sockd(8): commands, flags, and the job labels of the running
# sockd (else of the jobs directories). Generated by "sockd completion fish".

function __sockd_labels
	set -l words (commandline -opc)
	set -l args
	for i in (seq 2 (math (count $words) - 1))
		switch $words[$i]
			case --control -control --jobs -jobs
				set args $args $words[$i] $words[(math $i + 1)]
		end
	end
	$words[1] __labels $args 2>/dev/null
end

complete -c sockd -f
`)
	for _, s := range specs {
		fmt.Fprintf(&b, "complete -c sockd -n __fish_use_subcommand -a %s -d %s\n", s.name, fishQuote(s.summary))
	}
	for _, s := range specs {
		cond := fishQuote("__fish_seen_subcommand_from " + s.name)
		for _, f := range s.flags {
			opt := "-l " + strings.TrimLeft(f.name, "-")
			if !strings.HasPrefix(f.name, "--") {
				opt = "-o " + strings.TrimLeft(f.name, "-")
			}
			switch f.kind {
			case "files":
				opt += " -r -F"
			case "users":
				opt += " -x -a '(__fish_complete_users)'"
			case "words":
				opt += " -x -a " + fishQuote(strings.Join(f.words, " "))
			case "none":
				opt += " -x"
			}
			fmt.Fprintf(&b, "complete -c sockd -n %s %s -d %s\n", cond, opt, fishQuote(f.summary))
		}
		switch s.pos {
		case "files":
			fmt.Fprintf(&b, "complete -c sockd -n %s -F\n", cond)
		case "labels":
			fmt.Fprintf(&b, "complete -c sockd -n %s -a '(__sockd_labels)'\n", cond)
		case "files+labels":
			fmt.Fprintf(&b, "complete -c sockd -n %s -F -a '(__sockd_labels)'\n", cond)
		case "signal+labels":
			fmt.Fprintf(&b, "complete -c sockd -n %s -a %s -a '(__sockd_labels)'\n", cond, fishQuote(strings.Join(signalWords, " ")))
		case "words":
			fmt.Fprintf(&b, "complete -c sockd -n %s -a %s\n", cond, fishQuote(strings.Join(s.words, " ")))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
