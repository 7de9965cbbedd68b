package jobset

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// foreignUID owns the files and directories of another user here.
const foreignUID = 4242

func needChown(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the files of another user are made with chown")
	}
}

func lchown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// TestJobDirectoryRule: a job directory others may write, or another user
// owns, is an error naming it and no job of it loads (launchctl's rule);
// a job file that is a link loads when the link and its target are root's,
// and is an error naming the link when another user owns the link.
func TestJobDirectoryRule(t *testing.T) {
	needChown(t)
	base := t.TempDir()
	open := filepath.Join(base, "open")
	theirs := filepath.Join(base, "theirs")
	ok := filepath.Join(base, "ok")
	for i, d := range []string{open, theirs, ok} {
		write(t, d, "a.plist", plist("org.dir"+string(rune('a'+i)), ""))
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	lchown(t, theirs, foreignUID)
	target := write(t, base, "target.plist", plist("org.target", ""))
	if err := os.Symlink(target, filepath.Join(ok, "mine.plist")); err != nil {
		t.Fatal(err)
	}
	other := write(t, base, "other.plist", plist("org.other", ""))
	link := filepath.Join(ok, "their-link.plist")
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	lchown(t, link, foreignUID)

	set := Load(Sources{Paths: []string{open, theirs, ok}}, opts())
	d := text(set.Diags)
	if got := labels(set.Jobs); got != "org.dirc org.target" {
		t.Errorf("jobs %q, want org.dirc org.target\n%s", got, d)
	}
	for _, want := range []string{
		open + ": error: directory is group- or world-writable (mode 0777), so anyone in that group could add a job that root runs; nothing in it is loaded: chmod go-w " + open,
		theirs + ": error: directory is owned by uid 4242, which is neither root nor the user sockd runs as (uid 0), so that user could add jobs to it; nothing in it is loaded: chown root " + theirs,
		link + ": error: is a symbolic link owned by uid 4242",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("missing %q in\n%s", want, d)
		}
	}
	o := opts()
	o.SkipPermissions = true
	if set := Load(Sources{Paths: []string{open, theirs, ok}}, o); len(set.Jobs) != 5 {
		t.Errorf("--no-permissions: jobs %q\n%s", labels(set.Jobs), text(set.Diags))
	}
}

// TestImportFilesRule: what serve and check load through --inetd-conf and
// --xinetd obeys the job files' rule, the files and directories an xinetd
// configuration includes too: check calls none of them valid.
func TestImportFilesRule(t *testing.T) {
	needChown(t)
	dir := t.TempDir()
	inetd := write(t, dir, "inetd.conf", "127.0.0.1:10007 stream tcp nowait root /usr/bin/id id\n")
	lchown(t, inetd, foreignUID)
	if err := os.Chmod(inetd, 0o666); err != nil {
		t.Fatal(err)
	}
	xd := filepath.Join(dir, "xinetd.d")
	evil := write(t, xd, "evil", "service evil\n{\n\ttype = UNLISTED\n\tsocket_type = stream\n\tprotocol = tcp\n\tport = 10008\n\tbind = 127.0.0.1\n"+
		"\twait = no\n\tuser = root\n\tserver = /usr/bin/id\n\tflags = NOLIBWRAP\n}\n")
	lchown(t, evil, foreignUID)
	conf := write(t, dir, "xinetd.conf", "includedir "+xd+"\n")
	for _, src := range []Sources{{Inetd: []string{inetd}}, {Xinetd: []string{xd}}, {Xinetd: []string{conf}}, {Paths: []string{xd}}} {
		set := Load(src, opts())
		d := text(set.Diags)
		name := inetd
		if len(src.Inetd) == 0 {
			name = evil
		}
		if len(set.Jobs) != 0 || !strings.Contains(d, name+": error: file is") {
			t.Errorf("%+v: jobs %q, want an error naming %s:\n%s", src, labels(set.Jobs), name, d)
		}
	}
}
