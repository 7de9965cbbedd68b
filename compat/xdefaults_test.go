package compat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sockd/sockd/job"
)

// TestXinetdDirectoryKeepsSiblingDefaults: reading /etc/xinetd.d alone
// applies the defaults{} of the xinetd.conf that includes it (here an
// only_from that narrows every service), with a warning naming that file;
// a xinetd.conf that does not include the directory is not applied.
func TestXinetdDirectoryKeepsSiblingDefaults(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "xinetd.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	svc := "service echo-x\n{\n\ttype = UNLISTED\n\tsocket_type = stream\n\tprotocol = tcp\n\tport = 20007\n\twait = no\n\tuser = root\n\tserver = /bin/cat\n\tbind = 127.0.0.1\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "echo"), []byte(svc), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, "xinetd.conf")
	write := func(text string) {
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write("defaults\n{\n\tonly_from = 127.0.0.2\n}\nincludedir " + dir + "\n")
	jobs, diags := loadXinetd(dir, XinetdOptions{Files: thisUser()}, offlineInfo())
	if len(jobs) != 1 {
		t.Fatalf("jobs %d:\n%s", len(jobs), diagText(diags))
	}
	if got := jobs[0].Limits.Allow; len(got) != 1 || !strings.HasPrefix(got[0], "127.0.0.2") {
		t.Errorf("Allow = %v, want the defaults' only_from 127.0.0.2", got)
	}
	if !strings.Contains(diagText(diags), conf+": defaults: warning: applied to the services of "+dir) {
		t.Errorf("no warning naming %s:\n%s", conf, diagText(diags))
	}

	write("defaults\n{\n\tonly_from = 127.0.0.2\n}\nincludedir /elsewhere\n")
	jobs, diags = loadXinetd(dir, XinetdOptions{Files: thisUser()}, offlineInfo())
	if len(jobs) != 1 || len(jobs[0].Limits.Allow) != 0 {
		t.Errorf("a xinetd.conf that does not include the directory was applied: %v\n%s", jobs, diagText(diags))
	}
}

func diagText(ds job.Diags) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + "\n")
	}
	return b.String()
}
