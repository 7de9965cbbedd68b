package jobset

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadSystemd: socket units load through --systemd (a directory) and
// as positional paths, where the *.socket files of one service make one
// job; the loader judges the job like any other (an unknown user is an
// error naming the directive), and the files read are counted.
func TestLoadSystemd(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "web.socket", "[Socket]\nListenStream=/tmp/sockd-jobset-web.sock\n")
	write(t, dir, "web-admin.socket", "[Socket]\nListenStream=/tmp/sockd-jobset-admin.sock\nService=web.service\nFileDescriptorName=admin\n")
	write(t, dir, "web.service", "[Service]\nExecStart=/bin/cat\n")
	write(t, dir, "bad.socket", "[Socket]\nListenStream=/tmp/sockd-jobset-bad.sock\n")
	write(t, dir, "bad.service", "[Service]\nExecStart=/bin/cat\nUser=no-such-user-here\n")

	set := Load(Sources{Systemd: []string{dir}}, opts())
	if labels(set.Jobs) != "systemd.web.service" || len(set.All) != 2 || set.Files != 5 {
		t.Fatalf("jobs %q, all %d, files %d\n%s", labels(set.Jobs), len(set.All), set.Files, text(set.Diags))
	}
	if !strings.Contains(text(set.Diags), filepath.Join(dir, "bad.socket")+": User: error: user \"no-such-user-here\"") {
		t.Errorf("no error naming User:\n%s", text(set.Diags))
	}
	if n := len(set.Jobs[0].Endpoints()); n != 2 {
		t.Errorf("%d endpoints", n)
	}
	set = Load(Sources{Paths: []string{filepath.Join(dir, "web.socket"), filepath.Join(dir, "web-admin.socket")}}, opts())
	if labels(set.Jobs) != "systemd.web.service" || len(set.Jobs[0].Sockets) != 2 || set.Jobs[0].Sockets[0].Name != "admin" {
		t.Fatalf("positional: jobs %q\n%s", labels(set.Jobs), text(set.Diags))
	}
}
