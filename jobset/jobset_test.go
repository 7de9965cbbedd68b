package jobset

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sockd/sockd/internal/freeport"
	"github.com/sockd/sockd/internal/privilege"
	"github.com/sockd/sockd/job"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// plist is a job file whose keys are all on line 4.
func plist(label, extra string) string {
	return "<?xml version=\"1.0\"?>\n<plist version=\"1.0\">\n<dict>\n<key>Label</key><string>" + label +
		"</string><key>ProgramArguments</key><array><string>/bin/cat</string></array>" + extra + "\n</dict>\n</plist>\n"
}

func listen(port int) string {
	return fmt.Sprintf(`<key>inetdCompatibility</key><dict><key>Wait</key><false/></dict><key>Sockets</key><dict><key>L</key><dict>`+
		`<key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>%d</string></dict></dict>`, port)
}

func labels(jobs []*job.Job) string {
	var l []string
	for _, j := range jobs {
		l = append(l, j.Label)
	}
	return strings.Join(l, " ")
}

func text(ds job.Diags) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + "\n")
	}
	return b.String()
}

func opts() Options {
	o := ForThisProcess()
	o.Hostname = "web1"
	return o
}

// TestLoadSources: every kind of source, in order; a directory's *.plist
// files by name, a file in its own format, an xinetd.d directory, the
// inetd.conf and xinetd flags; missing paths are errors, or warnings with
// MissingOK.
func TestLoadSources(t *testing.T) {
	dir := t.TempDir()
	jobs := filepath.Join(dir, "jobs")
	write(t, jobs, "b.PLIST", plist("org.b", ""))
	write(t, jobs, "a.plist", plist("org.a", ""))
	write(t, jobs, "c.txt", plist("org.c", ""))
	bad := write(t, jobs, "bad.plist", plist("org.bad", `<key>Nice</key><string>x</string>`))
	inetd := write(t, dir, "services.conf", "127.0.0.1:7 stream tcp nowait root internal\n")
	forced := write(t, dir, "legacy", "127.0.0.1:13 stream tcp nowait root internal\n")
	xd := filepath.Join(dir, "xinetd.d")
	write(t, xd, "echo", "service echo\n{\n\ttype = INTERNAL\n\tsocket_type = dgram\n\tprotocol = udp\n\twait = yes\n\tbind = 127.0.0.1\n}\n")
	missing := filepath.Join(dir, "nope")

	set := Load(Sources{Paths: []string{jobs, inetd, xd, missing}, Inetd: []string{forced}}, opts())
	if got := labels(set.Jobs); got != "org.a org.b inetd.7.tcp@127.0.0.1 xinetd.echo inetd.13.tcp@127.0.0.1" {
		t.Errorf("jobs %q", got)
	}
	if set.Files != 6 {
		t.Errorf("%d files", set.Files)
	}
	d := text(set.Diags)
	if !strings.Contains(d, bad+":4: Nice: error:") || !strings.Contains(d, missing+": error: cannot read:") {
		t.Errorf("diags:\n%s", d)
	}
	o := opts()
	o.MissingOK = true
	if d := text(Load(Sources{Paths: []string{missing}}, o).Diags); !strings.Contains(d, missing+": warning: job directory not readable") {
		t.Errorf("MissingOK: %s", d)
	}
}

// TestHostLimits: a job for another host claims neither its Label nor its
// address here: two files for one service on two hosts load side by side,
// each on its own host.
func TestHostLimits(t *testing.T) {
	dir := t.TempDir()
	port := freeport.Port(t, "tcp")
	write(t, dir, "a.plist", plist("org.svc", listen(port)+`<key>LimitLoadToHosts</key><array><string>web1</string></array>`))
	write(t, dir, "b.plist", plist("org.svc", listen(port)+`<key>LimitLoadToHosts</key><array><string>web2</string></array>`))
	for host, file := range map[string]string{"web1": "a.plist", "WEB2": "b.plist"} {
		o := opts()
		o.Hostname = host
		set := Load(Sources{Paths: []string{dir}}, o)
		if len(set.Jobs) != 1 || !strings.HasSuffix(set.Jobs[0].File, file) || set.Diags.HasErrors() || len(set.Diags) != 1 || set.Diags[0].Severity != job.Info {
			t.Errorf("host %s: jobs %v\n%s", host, set.Jobs, text(set.Diags))
		}
		for _, j := range set.All {
			if want := map[bool]State{true: Loaded, false: OtherHost}[strings.HasSuffix(j.File, file)]; set.State(j) != want {
				t.Errorf("host %s: %s is %v", host, j.File, set.State(j))
			}
		}
	}
}

// TestRefusedFreesItsAddress: a job refused for this sockd (an unknown
// user) claims nothing, so a later job on its address loads, as serve
// serves it.
func TestRefusedFreesItsAddress(t *testing.T) {
	dir := t.TempDir()
	port := freeport.Port(t, "tcp")
	a := write(t, dir, "a.plist", plist("org.a", listen(port)+`<key>UserName</key><string>sockd-no-such-user</string>`))
	write(t, dir, "b.plist", plist("org.b", listen(port)))
	set := Load(Sources{Paths: []string{dir}}, opts())
	if labels(set.Jobs) != "org.b" || set.State(set.All[0]) != Refused {
		t.Errorf("jobs %q\n%s", labels(set.Jobs), text(set.Diags))
	}
	if ds := set.DiagsOf(set.All[0]); len(ds) != 1 || ds[0].String() != a+`: UserName: error: user "sockd-no-such-user" does not exist on this machine, so sockd does not load the job: create the user (useradd sockd-no-such-user) or name an existing one` {
		t.Errorf("DiagsOf:\n%s", text(ds))
	}
}

// TestImportedKeys: the problems found after import name the line and
// the inetd.conf field or xinetd attribute, for the sockd judged (here an
// unprivileged one, as assumed for uid 65534).
func TestImportedKeys(t *testing.T) {
	dir := t.TempDir()
	conf := write(t, dir, "inetd.conf", "127.0.0.1:10007 stream tcp nowait sockd-no-such-user /bin/cat cat\n"+
		"127.0.0.1:80 stream tcp nowait root /bin/cat cat\n")
	x := write(t, dir, "xinetd.conf", "service cat\n{\n\ttype = UNLISTED\n\tsocket_type = stream\n\tprotocol = tcp\n\tport = 10008\n\tbind = 127.0.0.1\n"+
		"\twait = no\n\tuser = root\n\tserver = /bin/cat\n\tnice = -20\n}\n")
	o := opts()
	o.View = privilege.For(65534)
	o.View.Nice = 0
	o.SkipPermissions = true
	set := Load(Sources{Inetd: []string{conf}, Xinetd: []string{x}}, o)
	d := text(set.Diags)
	for _, want := range []string{
		conf + `:1: user: error: user "sockd-no-such-user" does not exist on this machine`,
		conf + `:2: service: error: port 80 is below`,
		x + `:1: nice: error: -20 is below sockd's own nice value 0`,
		x + `:1: user: error: "root": sockd is not running as root, so it cannot run the job as that user and does not load it`,
	} {
		if !strings.Contains(d, want) {
			t.Errorf("missing %q in\n%s", want, d)
		}
	}
	if len(set.Jobs) != 0 || len(set.All) != 3 {
		t.Errorf("jobs %q of %d", labels(set.Jobs), len(set.All))
	}
	if len(set.DiagsOf(set.All[0])) != 1 {
		t.Errorf("DiagsOf %s:\n%s", set.All[0].File, text(set.DiagsOf(set.All[0])))
	}
}
