package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletionScripts: each script names every command and flag of the
// command table, and its shell (when installed) reads it without error.
func TestCompletionScripts(t *testing.T) {
	check := map[string][]string{
		"bash": {"bash", "-n"},
		"zsh":  {"zsh", "-n"},
		"fish": {"fish", "--no-execute"},
	}
	for shell, syntax := range check {
		out, errOut, code := sockd(t, "completion", shell)
		if code != 0 {
			t.Fatalf("sockd completion %s: exit %d\n%s", shell, code, errOut)
		}
		for _, c := range visible() {
			if !strings.Contains(out, c.name) {
				t.Errorf("%s completion lacks command %s", shell, c.name)
			}
			for _, f := range c.docFlags(documented) {
				name := flagName(f.Name)
				if shell == "fish" {
					name = strings.TrimLeft(name, "-") // fish: -l jobs, -o k
				}
				if !strings.Contains(out, name) {
					t.Errorf("%s completion lacks %s's flag %s", shell, c.name, name)
				}
			}
		}
		if _, err := exec.LookPath(syntax[0]); err != nil {
			if shell == "bash" {
				t.Errorf("bash not found: %v", err)
			}
			continue // zsh and fish are optional here
		}
		cmd := exec.Command(syntax[0], syntax[1:]...)
		cmd.Stdin = strings.NewReader(out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s reading its completion: %v\n%s", shell, err, msg)
		}
	}
	if _, _, code := sockd(t, "completion", "csh"); code != 2 {
		t.Errorf("completion csh: exit %d, want 2", code)
	}
}

// TestBashCompletion completes command lines in bash as its completion
// would, with sockd being this test binary: commands, flag values, signals,
// and the labels of a jobs directory when no daemon answers.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	script, _, _ := sockd(t, "completion", "bash")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	jobs := filepath.Join(dir, "jobs")
	for _, d := range []string{bin, jobs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, bin, "sockd", "#!/bin/sh\nSOCKD_TEST_MAIN=1 exec "+os.Args[0]+" \"$@\"\n", 0o755)
	writeFile(t, jobs, "a.plist", plistJob("org.example.a"), 0o644)
	writeFile(t, jobs, "b.plist", plistJob("org.example.b"), 0o644)
	writeFile(t, dir, "comp.bash", script, 0o644)
	ctl := filepath.Join(dir, "no-daemon.sock")
	for line, want := range map[string]string{
		"sockd ki":                          "kickstart kill",
		"sockd serve --log-f":               "--log-format",
		"sockd serve --log-level ":          "debug info warn error",
		"sockd kill --control " + ctl + " ": "HUP INT QUIT KILL USR1 USR2 TERM CONT STOP",
		"sockd stop --control " + ctl + " --jobs " + jobs + " org.":           "org.example.a org.example.b",
		"sockd print --jobs " + jobs + " --control " + ctl + " org.example.b": "org.example.b",
		"sockd completion ": "bash zsh fish",
		"sockd help ser":    "serve",
	} {
		words := strings.Split(line, " ")
		prog := "source comp.bash; COMP_WORDS=(" + quoteWords(words) + "); COMP_CWORD=" + itoa(len(words)-1) + "; _sockd; echo \"${COMPREPLY[*]}\""
		cmd := exec.Command("bash", "-c", prog)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("%q: got %q (%v), want %q", line, out, err, want)
		}
	}
}

func quoteWords(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + w + "'"
	}
	return strings.Join(q, " ")
}

func plistJob(label string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>Label</key><string>` + label + `</string>
<key>ProgramArguments</key><array><string>/bin/cat</string></array>
<key>inetdCompatibility</key><dict><key>Wait</key><false/></dict>
<key>Sockets</key><dict><key>L</key><dict><key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>0</string></dict></dict>
</dict></plist>
`
}
