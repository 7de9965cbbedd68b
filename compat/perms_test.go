package compat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// foreignUID owns the files of another user in these tests.
const foreignUID = 4242

// needChown skips a test that gives files to another user.
func needChown(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the files of another user are made with chown")
	}
}

// foreign gives path (the link itself where it is one) to foreignUID.
func foreign(t *testing.T, path string) {
	t.Helper()
	if err := os.Lchown(path, foreignUID, foreignUID); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestXinetdFilesRule: every file an xinetd import reads (the one given,
// include, the files of an includedir, the xinetd.conf whose defaults a
// directory read alone takes) and every includedir directory obeys the job
// files' rule: a file another user owns or may write, a link another user
// owns, a directory others may write or another user owns is an error
// naming it, and nothing in it is loaded; the rest loads.
func TestXinetdFilesRule(t *testing.T) {
	needChown(t)
	good := func(name string) string { return svc(name, attrs()...) }
	dir := writeTree(t, map[string]string{
		"xinetd.conf":   "include extra\ninclude world\nincludedir xinetd.d\nincludedir open.d\nincludedir theirs.d\n",
		"extra":         good("telnet"),
		"world":         good("login"),
		"xinetd.d/a":    good("finger"),
		"xinetd.d/evil": good("shell"),
		"xinetd.d/ww":   good("exec"),
		"target":        good("ftp"),
		"open.d/b":      good("daytime"),
		"theirs.d/c":    good("time"),
	})
	p := func(s string) string { return filepath.Join(dir, s) }
	foreign(t, p("extra"))
	chmod(t, p("world"), 0o666)
	foreign(t, p("xinetd.d/evil"))
	chmod(t, p("xinetd.d/ww"), 0o646)
	if err := os.Symlink(p("target"), p("xinetd.d/link")); err != nil {
		t.Fatal(err)
	}
	foreign(t, p("xinetd.d/link"))
	chmod(t, p("open.d"), 0o777)
	foreign(t, p("theirs.d"))

	jobs, diags := LoadXinetd(p("xinetd.conf"))
	got := diagStrings(diags, dir+"/")
	if !eq(labels(jobs), []string{"xinetd.finger"}) {
		t.Errorf("jobs %v, want only xinetd.finger\n%s", labels(jobs), strings.Join(got, "\n"))
	}
	for _, want := range []string{
		"extra: error: file is owned by uid 4242, which is neither root nor the user sockd runs as (uid 0)",
		"world: error: file is group- or world-writable (mode 0666)",
		"xinetd.d/evil: error: file is owned by uid 4242",
		"xinetd.d/ww: error: file is group- or world-writable (mode 0646)",
		"xinetd.d/link: error: is a symbolic link owned by uid 4242",
		"open.d: error: directory is group- or world-writable (mode 0777)",
		"theirs.d: error: directory is owned by uid 4242",
	} {
		wantDiagPrefix(t, got, want)
	}

	// A directory read alone: the directory itself, and the xinetd.conf
	// beside it whose defaults apply to it.
	if jobs, diags := LoadXinetd(p("open.d")); len(jobs) != 0 || !diags.HasErrors() {
		t.Errorf("open.d read alone: jobs %v", labels(jobs))
	}
	alone := writeTree(t, map[string]string{
		"xinetd.conf": "defaults\n{\nonly_from = 127.0.0.1\n}\nincludedir xinetd.d\n",
		"xinetd.d/a":  good("finger"),
	})
	chmod(t, filepath.Join(alone, "xinetd.conf"), 0o666)
	jobs, diags = LoadXinetd(filepath.Join(alone, "xinetd.d"))
	got = diagStrings(diags, alone+"/")
	if len(jobs) != 0 {
		t.Errorf("xinetd.d beside a world-writable xinetd.conf: jobs %v", labels(jobs))
	}
	wantDiagPrefix(t, got, "xinetd.conf: error: file is group- or world-writable (mode 0666)")
	wantDiagPrefix(t, got, "xinetd.d: error: not read: xinetd applies the defaults of")

	// The file given, and an inetd.conf.
	chmod(t, p("target"), 0o666)
	if jobs, diags := LoadXinetd(p("target")); len(jobs) != 0 || !strings.Contains(diagText(diags), "world-writable") {
		t.Errorf("world-writable service file: jobs %v\n%s", labels(jobs), diagText(diags))
	}
	inetd := p("inetd.conf")
	if err := os.WriteFile(inetd, []byte("127.0.0.1:7 stream tcp nowait root /usr/bin/id id\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	foreign(t, inetd)
	if jobs, diags := LoadInetd(inetd); len(jobs) != 0 || !strings.Contains(diagText(diags), inetd+": error: file is owned by uid 4242") {
		t.Errorf("inetd.conf of another user: jobs %v\n%s", labels(jobs), diagText(diags))
	}
}
