package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// systemdCorpus is the corpus's systemd folder, skipped (failed under
// CI=true) when it is missing.
func systemdCorpus(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "corpus", "systemd")
	if _, err := os.Stat(root); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpus missing: %v", err)
		}
		t.Skipf("corpus not found beside the repository: %v", err)
	}
	return root
}

// hostJudgements are the errors check may give a converted corpus job on
// a machine that lacks what the unit's package would bring: its users and
// groups, the limits sockd runs with.
var hostJudgements = []string{"does not exist on this machine", "is above sockd's own hard limit"}

// TestConvertSystemdCorpus converts every corpus directory of units with
// sockd convert --from systemd and checks the job files written: the
// loader reads each one, and the only errors are the host's (a user this
// machine lacks, a resource limit above sockd's own).
func TestConvertSystemdCorpus(t *testing.T) {
	root := systemdCorpus(t)
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	written := 0
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(out, e.Name())
		stdout, stderr, code := sockd(t, "convert", "--from", "systemd", "-o", dir, filepath.Join(root, e.Name()))
		if code != 0 && code != 1 {
			t.Errorf("convert %s: exit %d\n%s", e.Name(), code, stderr)
		}
		files := strings.Fields(stdout)
		written += len(files)
		if hasErr := strings.Contains(stderr, ": error: "); hasErr != (code == 1) {
			t.Errorf("convert %s: exit %d, but errors %t:\n%s", e.Name(), code, hasErr, stderr)
		}
		if len(files) == 0 {
			continue
		}
		o, _, _ := sockd(t, append([]string{"check", "--no-permissions"}, files...)...)
		for _, line := range strings.Split(strings.TrimSpace(o), "\n") {
			if !strings.Contains(line, ": error: ") {
				continue
			}
			host := false
			for _, h := range hostJudgements {
				host = host || strings.Contains(line, h)
			}
			if !host {
				t.Errorf("check of a converted job: %s", line)
			}
		}
	}
	if written < 18 {
		t.Errorf("only %d job files written from the corpus", written)
	}
}

// TestCheckSystemdUnits: check reads unit files positionally and through
// --systemd, with the diagnostics of the other importers (FILE:LINE: KEY:
// severity: message), and convert writes a file that loads as the same
// job; print shows the job of a unit.
func TestCheckSystemdUnits(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "echo.socket", "[Socket]\nListenStream=127.0.0.1:7070\nAccept=yes\nBogus=1\n", 0o644)
	writeFile(t, dir, "echo@.service", "[Service]\nExecStart=/bin/cat\nStandardInput=socket\nPrivateNetwork=yes\n", 0o644)
	writeFile(t, dir, "ok.socket", "[Socket]\nListenStream=127.0.0.1:7071\nAccept=yes\n", 0o644)
	writeFile(t, dir, "ok@.service", "[Service]\nExecStart=/bin/cat\nStandardInput=socket\nProtectHome=yes\n", 0o644)
	for _, args := range [][]string{{"check", filepath.Join(dir, "echo.socket"), filepath.Join(dir, "ok.socket")}, {"check", "--systemd", dir}} {
		out, _, code := sockd(t, args...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1\n%s", args, code, out)
		}
		for _, want := range []string{
			filepath.Join(dir, "echo.socket") + ":4: Bogus: warning: unknown directive in [Socket]; ignored",
			filepath.Join(dir, "echo@.service") + ":4: PrivateNetwork: error: the service would run in a network namespace of its own",
			filepath.Join(dir, "ok@.service") + ":4: ProtectHome: warning: not honoured: sockd does not sandbox the service",
			"1 job valid: 1 error, 2 warnings",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: no %q in\n%s", args, want, out)
			}
		}
	}
	out, _, code := sockd(t, "print", filepath.Join(dir, "ok.socket"))
	if code != 0 || !strings.Contains(out, "systemd.ok.socket") || !strings.Contains(out, "inetd-nowait") {
		t.Errorf("print: exit %d\n%s", code, out)
	}
	conv := filepath.Join(dir, "out")
	stdout, stderr, code := sockd(t, "convert", "-o", conv, filepath.Join(dir, "ok.socket"))
	if code != 0 || strings.TrimSpace(stdout) != filepath.Join(conv, "systemd.ok.socket.plist") {
		t.Fatalf("convert: exit %d\n%s%s", code, stdout, stderr)
	}
	if o, e, code := sockd(t, "check", "--no-permissions", strings.TrimSpace(stdout)); code != 0 || !strings.Contains(o, "1 job valid: 0 errors, 0 warnings") {
		t.Errorf("check of the converted file: exit %d\n%s%s", code, o, e)
	}
}
