package compat

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sockd/sockd/job"
)

// compareJobs reports the fields that differ between an imported job and
// the same job read back from its plist.
func compareJobs(t *testing.T, a, b *job.Job) {
	t.Helper()
	check := func(name string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			t.Errorf("%s: %s differs after the round trip:\n imported %#v\n reloaded %#v", a.Label, name, x, y)
		}
	}
	check("Label", a.Label, b.Label)
	check("Program", a.Program, b.Program)
	check("Argv", a.Argv, b.Argv)
	check("Path", a.Path, b.Path)
	check("UserName", a.UserName, b.UserName)
	check("GroupName", a.GroupName, b.GroupName)
	check("InitGroups", a.InitGroups, b.InitGroups)
	check("Disabled", a.Disabled, b.Disabled)
	check("Inetd", a.Inetd, b.Inetd)
	check("Endpoints", endpoints(a), endpoints(b))
	check("Mode", a.Mode(), b.Mode())
	check("Limits", a.Limits, b.Limits)
	check("Internal", a.Internal, b.Internal)
	check("Proxy", a.Proxy, b.Proxy)
	check("EnvironmentVariables", a.EnvironmentVariables, b.EnvironmentVariables)
	check("Umask", a.Umask, b.Umask)
	check("Nice", a.Nice, b.Nice)
	check("SoftResourceLimits", a.SoftResourceLimits, b.SoftResourceLimits)
	check("HardResourceLimits", a.HardResourceLimits, b.HardResourceLimits)
	check("ThrottleInterval", a.ThrottleInterval, b.ThrottleInterval)
	check("ExitTimeOut", a.ExitTimeOut, b.ExitTimeOut)
	check("TimeOut", a.TimeOut, b.TimeOut)
	if len(a.Sockets) != len(b.Sockets) {
		t.Errorf("%s: %d socket groups, reloaded %d", a.Label, len(a.Sockets), len(b.Sockets))
		return
	}
	for i := range a.Sockets {
		ga, gb := a.Sockets[i], b.Sockets[i]
		check("group name", ga.Name, gb.Name)
		if len(ga.Sockets) != len(gb.Sockets) {
			t.Errorf("%s: group %s has %d sockets, reloaded %d", a.Label, ga.Name, len(ga.Sockets), len(gb.Sockets))
			continue
		}
		for k := range ga.Sockets {
			sa, sb := ga.Sockets[k], gb.Sockets[k]
			check("socket Key", sa.Key, sb.Key)
			check("socket Type", sa.Type, sb.Type)
			check("socket Port", sa.Port, sb.Port)
			check("socket Family", sa.Family, sb.Family)
			check("socket PathName", sa.PathName, sb.PathName)
			check("socket NodeName", sa.NodeName, sb.NodeName)
		}
	}
}

// roundTrip writes j, decodes it with the launchd loader and compares.
func roundTrip(t *testing.T, j *job.Job) {
	t.Helper()
	data, err := WritePlist(j)
	if err != nil {
		t.Fatalf("WritePlist(%s): %v", j.Label, err)
	}
	if !bytes.HasPrefix(data, []byte("<?xml")) || !bytes.Contains(data, []byte("\n\t\t<key>Label</key>")) {
		t.Fatalf("WritePlist(%s) is not indented XML:\n%s", j.Label, data)
	}
	back, diags := job.Decode(data, j.Label+".plist")
	for _, d := range diags {
		// Programs and users of other systems need not exist here.
		if d.Severity == job.Error {
			t.Errorf("%s: reload: %s\n%s", j.Label, d, data)
		}
	}
	if back == nil {
		return
	}
	if back.Source != job.SourceXML {
		t.Errorf("%s: reloaded Source %q", j.Label, back.Source)
	}
	compareJobs(t, j, back)
}

func TestWritePlistRoundTripCorpus(t *testing.T) {
	root := corpusRoot(t)
	var all []*job.Job
	inetd, _ := filepath.Glob(filepath.Join(root, "inetd", "*"))
	for _, f := range inetd {
		jobs, _ := loadInetd(f, corpusFiles, offlineInfo())
		all = append(all, jobs...)
	}
	for _, f := range []string{"apple-xinetd/xinetd.conf", "debian-xinetd/xinetd.conf", "opensuse-xinetd/sample.conf",
		"checkmk/xinetd.conf", "debian-amanda-client/xinetd.amandaclient", "debian-cfingerd/cfingerd.xinetd",
		"debian-fingerd/finger.xinetd", "debian-vsftpd/vsftpd.xinetd", "rsync-upstream/rsync.xinetd"} {
		jobs, _ := loadXinetd(filepath.Join(root, "xinetd", f), XinetdOptions{Relocate: true, Files: corpusFiles}, offlineInfo())
		all = append(all, jobs...)
	}
	if len(all) < 90 {
		t.Fatalf("only %d jobs imported from the corpus", len(all))
	}
	for _, j := range all {
		roundTrip(t, j)
	}
}

func TestWritePlistRoundTripHand(t *testing.T) {
	conf := `service full
{
	type = UNLISTED
	port = 7001
	socket_type = stream
	protocol = tcp
	wait = no
	user = nobody
	group = nogroup
	groups = no
	server = /usr/bin/full
	server_args = -a -b
	instances = 7
	per_source = 2
	cps = 10 3
	only_from = 127.0.0.1 ::1
	no_access = 10.0.0.0/8
	env = A=1 B=two
	nice = 5
	umask = 027
	rlimit_cpu = 30
	rlimit_files = 64
	rlimit_stack = 8M
	bind = 127.0.0.1
}
service redir
{
	type = UNLISTED
	port = 7002
	socket_type = stream
	wait = no
	redirect = 127.0.0.1 7003
}
`
	jobs, diags := parseXinetd([]byte(conf), "hand.conf", offlineInfo())
	if len(jobs) != 2 || diags.HasErrors() {
		t.Fatalf("jobs %v diags %v", labels(jobs), diags)
	}
	for _, j := range jobs {
		roundTrip(t, j)
	}
	unix, diags := parseInetd([]byte("/run/sockd-test.sock stream unix nowait/4 root /bin/cat cat\n"), "unix.conf", offlineInfo())
	if len(unix) != 1 || diags.HasErrors() {
		t.Fatalf("unix: %v %v", labels(unix), diags)
	}
	roundTrip(t, unix[0])
	// Port 0 on a named address: written as SockServiceName "0" (sockd
	// refuses SockNodeName without SockServiceName).
	zero, diags := parseInetd([]byte("127.0.0.1:0 stream tcp nowait root /bin/cat cat\n"), "zero.conf", offlineInfo())
	if len(zero) != 1 || diags.HasErrors() {
		t.Fatalf("port 0: %v %v", labels(zero), diags)
	}
	roundTrip(t, zero[0])

	// Fields no importer sets still survive.
	j := unix[0]
	yes := true
	j.KeepAlive = job.KeepAlive{SuccessfulExit: &yes, PathState: []job.PathCond{{Path: "/tmp/x", Exists: true}}}
	j.RunAtLoad, j.SessionCreate, j.AbandonProcessGroup = true, true, true
	j.WorkingDirectory, j.StandardErrorPath = "/tmp", "/tmp/err"
	j.ThrottleInterval, j.ExitTimeOut = 3*time.Second, 7*time.Second
	data, err := WritePlist(j)
	if err != nil {
		t.Fatal(err)
	}
	back, ds := job.Decode(data, "extra.plist")
	if back == nil {
		t.Fatalf("decode: %v", ds)
	}
	compareJobs(t, j, back)
	if !reflect.DeepEqual(j.KeepAlive, back.KeepAlive) || back.RunAtLoad != true || !back.SessionCreate ||
		!back.AbandonProcessGroup || back.WorkingDirectory != "/tmp" || back.StandardErrorPath != "/tmp/err" {
		t.Errorf("extra fields lost: %+v", back)
	}
}

func TestWritePlistErrors(t *testing.T) {
	if _, err := WritePlist(nil); err == nil {
		t.Error("nil job: no error")
	}
	if _, err := WritePlist(&job.Job{}); err == nil {
		t.Error("job without label: no error")
	}
	j := newJob("inetd", "x", 1, "x")
	j.TimeOut = 1500 * time.Millisecond
	if _, err := WritePlist(j); err == nil {
		t.Error("fractional TimeOut: no error")
	}
}
