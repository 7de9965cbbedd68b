package compat

import (
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockd/sockd/job"
)

// units writes files (name → text; "a.socket.d/x.conf" makes the
// directory) into a new directory and returns it.
func units(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadUnits loads paths (relative to dir) with the offline host.
func loadUnits(t *testing.T, dir string, paths ...string) ([]*job.Job, []string) {
	t.Helper()
	var full []string
	for _, p := range paths {
		full = append(full, filepath.Join(dir, p))
	}
	if len(full) == 0 {
		full = []string{dir}
	}
	jobs, diags := loadSystemd(full, SystemdOptions{Files: thisUser()}, offlineSystemd())
	return jobs, diagStrings(diags, dir+string(filepath.Separator))
}

// oneJob loads the units and wants exactly one job, no errors.
func oneJob(t *testing.T, files map[string]string, paths ...string) (*job.Job, []string) {
	t.Helper()
	jobs, diags := loadUnits(t, units(t, files), paths...)
	for _, d := range diags {
		if strings.Contains(d, ": error: ") {
			t.Errorf("unexpected error: %s", d)
		}
	}
	if len(jobs) != 1 {
		t.Fatalf("%d jobs %v, want 1:\n  %s", len(jobs), labels(jobs), strings.Join(diags, "\n  "))
	}
	return jobs[0], diags
}

// refused loads the units and wants no job and the diagnostics want.
func refused(t *testing.T, files map[string]string, want ...string) {
	t.Helper()
	jobs, diags := loadUnits(t, units(t, files))
	if len(jobs) != 0 {
		t.Errorf("jobs %v, want none", labels(jobs))
	}
	for _, w := range want {
		found := false
		for _, d := range diags {
			found = found || strings.Contains(d, w)
		}
		if !found {
			t.Errorf("no diagnostic contains\n  %s\namong\n  %s", w, strings.Join(diags, "\n  "))
		}
	}
}

const echoSvc = "[Service]\nExecStart=/bin/cat\nStandardInput=socket\n"

func TestSystemdUnitSyntax(t *testing.T) {
	j, diags := oneJob(t, map[string]string{
		"echo.socket":   "# comment\n; another\n[Unit]\nDescription=echo\n\n[Socket]\nListenStream=\\\n 127.0.0.1:7000\nAccept=yes\nX-Custom=1\nBogus=1\n[X-Vendor]\nWhatever=1\n",
		"echo@.service": "[Service]\nExecStart=/bin/echo one \\\n# a comment inside\n  two\nStandardInput=socket\n",
		// A drop-in replaces the address: an empty assignment resets the list.
		"echo.socket.d/10-port.conf":    "[Socket]\nListenStream=\nListenStream=127.0.0.1:7001\n",
		"echo.socket.d/20-more.conf":    "[Socket]\nListenStream=[::1]:7001\n",
		"socket.d/00-all.conf":          "[Socket]\nMaxConnections=5\n",
		"echo@.service.d/override.conf": "[Service]\nUser=nobody\n",
	})
	if got := endpoints(j); !eq(got, []string{"tcp4 127.0.0.1:7001", "tcp6 [::1]:7001"}) {
		t.Errorf("endpoints %v", got)
	}
	if !eq(j.Argv, []string{"/bin/echo", "one", "two"}) || j.UserName != "nobody" || j.Limits.MaxChildren != 5 {
		t.Errorf("argv %q user %q limits %+v", j.Argv, j.UserName, j.Limits)
	}
	if j.Label != "systemd.echo.socket" || j.Mode() != job.ModeInetdNowait || j.Source != "systemd" {
		t.Errorf("label %q mode %s source %q", j.Label, j.Mode(), j.Source)
	}
	wantDiags(t, diags, "echo.socket:11: Bogus: warning: unknown directive in [Socket]; ignored")
	for _, d := range diags {
		if strings.Contains(d, "X-") {
			t.Errorf("X- directive or section reported: %s", d)
		}
	}
}

func TestSystemdAddresses(t *testing.T) {
	cases := []struct {
		listen, bind string
		want         []string
		err          string
	}{
		{listen: "ListenStream=22", want: []string{"tcp6 [::]:22 dual-stack"}},
		{listen: "ListenStream=22", bind: "ipv6-only", want: []string{"tcp6 [::]:22"}},
		{listen: "ListenStream=[::]:22", bind: "both", want: []string{"tcp6 [::]:22 dual-stack"}},
		{listen: "ListenStream=[::]:22", bind: "ipv6-only", want: []string{"tcp6 [::]:22"}},
		{listen: "ListenStream=0.0.0.0:22", want: []string{"tcp4 0.0.0.0:22"}},
		{listen: "ListenStream=[::1]:22", want: []string{"tcp6 [::1]:22"}},
		{listen: "ListenStream=[::ffff:127.0.0.1]:22", want: []string{"tcp4 127.0.0.1:22"}},
		{listen: "ListenDatagram=192.0.2.1:69", want: []string{"udp4 192.0.2.1:69"}},
		{listen: "ListenStream=/run/x.sock", want: []string{"unix /run/x.sock"}},
		{listen: "ListenDatagram=/run/x.sock", want: []string{"unixgram /run/x.sock"}},
		{listen: "ListenSequentialPacket=/run/x.sock", want: []string{"unixpacket /run/x.sock"}},
		{listen: "ListenStream=@abstract-name", want: []string{"unix @abstract-name"}},
		{listen: "ListenStream=%t/x/%p.sock", want: []string{"unix /run/x/a.sock"}},
		{listen: "ListenStream=vsock:2:1234", err: "ListenStream: error: AF_VSOCK sockets (vsock:2:1234) are not supported"},
		{listen: "ListenFIFO=/run/fifo", want: []string{"fifo /run/fifo"}},
		{listen: "ListenSpecial=/dev/rfkill", err: "ListenSpecial: error: special files"},
		{listen: "ListenNetlink=route 1361", err: "ListenNetlink: error: netlink sockets"},
		{listen: "ListenMessageQueue=/q", err: "ListenMessageQueue: error:"},
		{listen: "ListenStream=localhost:22", err: `"localhost:22" is not a port, ADDRESS:PORT or [IPv6]:PORT (systemd takes no host names)`},
		{listen: "ListenStream=[fe80::1%%eth0]:22", err: "names an interface"},
		{listen: "ListenStream=[fe80::1%eth0]:22", err: "specifier %e is not supported"},
		{listen: "ListenStream=70000", err: "port 70000 is out of range"},
		{listen: "ListenSequentialPacket=127.0.0.1:5", err: "sequential-packet sockets are Unix sockets"},
		{listen: "ListenStream=%b", err: "specifier %b (the boot ID) changes at every boot"},
		{listen: "ListenStream=/run/%q", err: "specifier %q is not supported"},
	}
	for _, c := range cases {
		t.Run(c.listen+"/"+c.bind, func(t *testing.T) {
			sock := "[Socket]\n" + c.listen + "\n"
			if c.bind != "" {
				sock += "BindIPv6Only=" + c.bind + "\n"
			}
			files := map[string]string{"a.socket": sock, "a.service": "[Service]\nExecStart=/bin/true\n"}
			if c.err != "" {
				refused(t, files, c.err)
				return
			}
			j, _ := oneJob(t, files)
			if got := sdEndpoints(j); !eq(got, c.want) {
				t.Errorf("endpoints %v, want %v", got, c.want)
			}
		})
	}
}

func TestSystemdUnixSocketFiles(t *testing.T) {
	j, _ := oneJob(t, map[string]string{
		"a.socket":  "[Socket]\nListenStream=/run/a.sock\nListenStream=@abs\nListenStream=8080\nSocketUser=daemon\nSocketGroup=0\nSocketMode=0640\n",
		"a.service": "[Service]\nExecStart=/bin/true\n",
	})
	for _, s := range j.Sockets[0].Sockets {
		switch {
		case s.PathName == "/run/a.sock":
			if s.PathMode == nil || *s.PathMode != 0o640 || s.PathOwner == nil || *s.PathOwner != 4242 || s.PathGroup == nil || *s.PathGroup != 0 {
				t.Errorf("socket file: mode %v owner %v group %v", s.PathMode, s.PathOwner, s.PathGroup)
			}
		case s.PathMode != nil || s.PathOwner != nil || s.PathGroup != nil:
			t.Errorf("%s %s has file keys", s.PathName, s.ServiceName)
		}
	}
	// Without SocketMode: systemd's 0666.
	j, _ = oneJob(t, map[string]string{"a.socket": "[Socket]\nListenStream=/run/a.sock\n", "a.service": "[Service]\nExecStart=/bin/true\n"})
	if m := j.Sockets[0].Sockets[0].PathMode; m == nil || *m != 0o666 {
		t.Errorf("default mode %v, want 0666", m)
	}
}

func TestSystemdHandoffNames(t *testing.T) {
	// Two socket units for one service: the groups are the
	// FileDescriptorName (the unit name by default), as LISTEN_FDNAMES.
	j, _ := oneJob(t, map[string]string{
		"web.socket":       "[Socket]\nListenStream=127.0.0.1:8080\nListenStream=127.0.0.1:8443\nFileDescriptorName=http\n",
		"web-admin.socket": "[Socket]\nListenStream=/run/web-admin.sock\nService=web.service\n",
		"web.service":      "[Unit]\nRequires=web.socket\n[Service]\nExecStart=/usr/bin/web --serve\nUser=www-data\nRestart=always\nRestartSec=2\n",
	})
	if j.Label != "systemd.web.service" || j.Mode() != job.ModeHandoff || j.UserName != "www-data" {
		t.Errorf("label %q mode %s user %q", j.Label, j.Mode(), j.UserName)
	}
	var names []string
	for _, g := range j.Sockets {
		names = append(names, g.Name)
	}
	if !eq(names, []string{"http", "web-admin.socket"}) || !eq(endpoints(j), []string{"tcp4 127.0.0.1:8080", "tcp4 127.0.0.1:8443", "unix /run/web-admin.sock"}) {
		t.Errorf("groups %v endpoints %v", names, endpoints(j))
	}
	if !j.KeepAlive.AfterInitialDemand || j.KeepAlive.ImpliesRunAtLoad() || j.ThrottleInterval != 2*time.Second {
		t.Errorf("keepalive %+v throttle %v", j.KeepAlive, j.ThrottleInterval)
	}
	roundTrip(t, j)
}

func TestSystemdSocketsDirective(t *testing.T) {
	dir := units(t, map[string]string{
		"d.socket":     "[Socket]\nListenDatagram=/run/d.sock\n",
		"d-log.socket": "[Socket]\nListenDatagram=/run/d-log.sock\nService=d.service\n",
		"d-x.socket":   "[Socket]\nListenStream=/run/d-x.sock\n",
		"d.service":    "[Service]\nExecStart=/usr/bin/d\nSockets=d.socket d-x.socket\n",
		"d-x.service":  "[Service]\nExecStart=/usr/bin/dx\n",
	})
	// d.socket given alone: Sockets= brings in d-x.socket.
	jobs, diags := loadUnits(t, dir, "d.socket")
	if len(jobs) != 1 || !eq(endpoints(jobs[0]), []string{"unix /run/d-x.sock", "unixgram /run/d.sock"}) {
		t.Fatalf("jobs %v %v\n%s", labels(jobs), endpoints(jobs[0]), strings.Join(diags, "\n"))
	}
}

func TestSystemdWaitMode(t *testing.T) {
	j, _ := oneJob(t, map[string]string{
		"tftp.socket":  "[Socket]\nListenDatagram=69\n",
		"tftp.service": "[Service]\nExecStart=/usr/sbin/in.tftpd -s /srv/tftp\nStandardInput=socket\nRestartSec=0\n",
	})
	if j.Mode() != job.ModeInetdWait || j.Label != "systemd.tftp.service" || j.ThrottleInterval != 0 {
		t.Errorf("mode %s label %q throttle %v", j.Mode(), j.Label, j.ThrottleInterval)
	}
	roundTrip(t, j)
	refused(t, map[string]string{
		"tftp.socket":  "[Socket]\nListenDatagram=69\nListenDatagram=70\n",
		"tftp.service": "[Service]\nExecStart=/usr/sbin/in.tftpd\nStandardInput=socket\n",
	}, "StandardInput=socket with Accept=no takes exactly one socket, and 2 are configured")
}

func TestSystemdAcceptYes(t *testing.T) {
	j, diags := oneJob(t, map[string]string{
		"s.socket": "[Socket]\nListenStream=2222\nAccept=true\nMaxConnections=10\nMaxConnectionsPerSource=2\nTriggerLimitIntervalSec=10s\nTriggerLimitBurst=50\n" +
			"IPAddressDeny=any\nIPAddressAllow=192.0.2.0/24 localhost\n",
		"s@.service": "[Service]\nExecStart=-/usr/sbin/sshd -i -f /etc/ssh/test\nStandardInput=socket\nRestart=always\nKillMode=process\nTimeoutStopSec=1.5s\n",
	})
	want := job.Limits{MaxChildren: 10, MaxPerSource: 2, Rate: 5, Burst: 50, Pause: DefaultPause,
		Allow: []string{"192.0.2.0/24", "127.0.0.0/8", "::1/128"}}
	if show(j.Limits) != show(want) {
		t.Errorf("limits %+v\n  want %+v", j.Limits, want)
	}
	if !j.AbandonProcessGroup || j.ExitTimeOut != 2*time.Second || j.KeepAlive.AfterInitialDemand {
		t.Errorf("abandon %t exit %v keepalive %+v", j.AbandonProcessGroup, j.ExitTimeOut, j.KeepAlive)
	}
	wantDiags(t, diags, "s@.service:4: Restart: warning: no effect on a per-connection service: sockd starts one for each connection",
		"s@.service:6: TimeoutStopSec: warning: ExitTimeOut is in whole seconds: 1.5s becomes 2 s")
	roundTrip(t, j)

	// systemd's defaults for Accept=yes.
	j, _ = oneJob(t, map[string]string{"s.socket": "[Socket]\nListenStream=2222\nAccept=yes\n", "s@.service": echoSvc})
	if want := (job.Limits{MaxChildren: 64, Rate: 100, Burst: 200, Pause: DefaultPause}); show(j.Limits) != show(want) {
		t.Errorf("default limits %+v", j.Limits)
	}
	// PollLimit pauses for its interval, the stricter rate winning.
	j, _ = oneJob(t, map[string]string{"s.socket": "[Socket]\nListenStream=2222\nAccept=yes\nPollLimitIntervalSec=4s\nPollLimitBurst=20\n", "s@.service": echoSvc})
	if want := (job.Limits{MaxChildren: 64, Rate: 5, Burst: 20, Pause: 4 * time.Second}); show(j.Limits) != show(want) {
		t.Errorf("poll limits %+v", j.Limits)
	}

	refused(t, map[string]string{"s.socket": "[Socket]\nListenDatagram=53\nAccept=yes\n", "s@.service": echoSvc},
		"Accept=yes needs a stream or sequential-packet socket")
	refused(t, map[string]string{"s.socket": "[Socket]\nListenStream=53\nAccept=yes\n", "s@.service": "[Service]\nExecStart=/usr/sbin/x\n"},
		"s@.service: error: with Accept=yes and no StandardInput=socket, systemd passes the connection as fd 3")
	refused(t, map[string]string{"s.socket": "[Socket]\nListenStream=53\nAccept=yes\nService=x.service\n", "s@.service": echoSvc},
		"Service: error: Service= cannot be used with Accept=yes")
	refused(t, map[string]string{"s.socket": "[Socket]\nListenStream=53\nAccept=yes\n"},
		"error: the service it activates, s@.service, is not in")
	refused(t, map[string]string{"s.socket": "[Socket]\nListenStream=53\nAccept=yes\n", "s@.service": "[Service]\nExecStart=/bin/x %i\nStandardInput=socket\n"},
		"%i of a per-connection service is systemd's name for the connection")
}

func TestSystemdAccessRefusedWithAcceptNo(t *testing.T) {
	refused(t, map[string]string{"s.socket": "[Socket]\nListenStream=80\nIPAddressDeny=any\nIPAddressAllow=10.0.0.0/8\n", "s.service": "[Service]\nExecStart=/bin/x\n"},
		"s.socket:3: IPAddressDeny: error: cannot be enforced with Accept=no")
	refused(t, map[string]string{"s.socket": "[Socket]\nListenStream=80\nAccept=yes\nIPAddressDeny=example.com\n", "s@.service": echoSvc},
		`IPAddressDeny: error: "example.com" is not an address sockd can match`)
	// On Unix sockets only, the lists have nothing to restrict.
	_, diags := oneJob(t, map[string]string{"s.socket": "[Socket]\nListenStream=/run/s.sock\nIPAddressDeny=any\n", "s.service": "[Service]\nExecStart=/bin/x\n"})
	wantDiags(t, diags, "s.socket:3: IPAddressDeny: warning: no effect: the unit has no IP socket")
}

// TestSystemdAccessSemantics checks that sockd's Allow and Deny admit
// exactly the addresses systemd's IPAddressAllow and IPAddressDeny admit
// (allow wins), over random lists and addresses.
func TestSystemdAccessSemantics(t *testing.T) {
	pool := []string{"any", "localhost", "link-local", "multicast", "0.0.0.0/0", "::/0", "10.0.0.0/8", "10.1.0.0/16",
		"10.1.2.3", "192.0.2.0/24", "192.0.2.128/25", "::1", "2001:db8::/32", "2001:db8:1::/48", "fe80::/10", "127.0.0.0/8"}
	addrs := []string{"10.1.2.3", "10.1.2.4", "10.2.0.1", "192.0.2.1", "192.0.2.200", "127.0.0.1", "169.254.1.1", "224.0.0.1",
		"8.8.8.8", "::1", "2001:db8::1", "2001:db8:1::1", "2001:db9::1", "fe80::1", "ff02::1", "::ffff:10.1.2.3"}
	r := rand.New(rand.NewSource(1))
	pick := func() []netip.Prefix {
		var out []netip.Prefix
		for n := r.Intn(4); n > 0; n-- {
			ps, err := sdPrefixes(pool[r.Intn(len(pool))])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ps...)
		}
		return out
	}
	match := func(ps []netip.Prefix, a netip.Addr) bool {
		for _, p := range ps {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	for i := 0; i < 3000; i++ {
		allow, deny := pick(), pick()
		sa, sd := sdAccess(allow, deny)
		forms := func(list []string) []netip.Prefix {
			var out []netip.Prefix
			for _, s := range list {
				fs, err := job.AccessForms(s)
				if err != nil {
					t.Fatalf("%q: %v", s, err)
				}
				for _, f := range fs {
					out = append(out, netip.MustParsePrefix(f))
				}
			}
			return out
		}
		fa, fd := forms(sa), forms(sd)
		for _, s := range addrs {
			a := netip.MustParseAddr(s).Unmap()
			systemd := match(allow, a) || !match(deny, a)
			sockd := (len(fa) == 0 || match(fa, a)) && !match(fd, a)
			if systemd != sockd {
				t.Fatalf("allow %v deny %v → sockd Allow %v Deny %v: %s admitted by systemd %t, by sockd %t", allow, deny, sa, sd, a, systemd, sockd)
			}
		}
	}
}

func TestSystemdExecStart(t *testing.T) {
	svc := func(body string) map[string]string {
		return map[string]string{"a.socket": "[Socket]\nListenStream=/run/a.sock\n", "a.service": "[Service]\n" + body}
	}
	cases := []struct {
		body      string
		prog      string
		argv      []string
		user      string
		err, warn string
	}{
		{body: "ExecStart=/usr/bin/a x 'y z' \"q\\\"r\"\n", prog: "/usr/bin/a", argv: []string{"/usr/bin/a", "x", "y z", `q"r`}},
		{body: "ExecStart=@/usr/bin/a a-name x\n", prog: "/usr/bin/a", argv: []string{"a-name", "x"}},
		{body: "ExecStart=-/usr/bin/a\n", prog: "/usr/bin/a", argv: []string{"/usr/bin/a"}},
		{body: "ExecStart=a --flag\n", prog: "/usr/bin/a", argv: []string{"a", "--flag"}},
		{body: "Environment=OPTS=\"-v -x\" ONE=1\nExecStart=/usr/bin/a $OPTS ${ONE} pre${ONE}post $$HOME ${NONE:-dflt}\n", prog: "/usr/bin/a",
			argv: []string{"/usr/bin/a", "-v", "-x", "1", "pre1post", "$HOME", "dflt"}},
		{body: "Environment=OPTS=-v\nExecStart=:/usr/bin/a $OPTS\n", prog: "/usr/bin/a", argv: []string{"/usr/bin/a", "$OPTS"}},
		{body: "ExecStart=/usr/bin/a $UNSET\n", prog: "/usr/bin/a", argv: []string{"/usr/bin/a"}, warn: "ExecStart: warning: $UNSET: not set by Environment= or EnvironmentFile=, so empty"},
		{body: "User=nobody\nExecStart=+/usr/bin/a\n", prog: "/usr/bin/a", argv: []string{"/usr/bin/a"}, user: "", warn: "the + or ! prefix runs the program as root"},
		{body: "User=nobody\nExecStart=!/usr/bin/a\n", prog: "/usr/bin/a", argv: []string{"/usr/bin/a"}, user: ""},
		{body: "User=nobody\nExecStart=!!/usr/bin/a\n", prog: "/usr/bin/a", argv: []string{"/usr/bin/a"}, user: "nobody"},
		{body: "User=0\nExecStart=/usr/bin/%N-%H\n", prog: "/usr/bin/a-debian.example", argv: []string{"/usr/bin/a-debian.example"}, user: "root"},
		{body: "ExecStart=|/usr/bin/a\n", err: "the '|' prefix"},
		{body: "ExecStart=/usr/bin/a\nExecStart=/usr/bin/b\n", err: "more than one ExecStart="},
		{body: "ExecStart=/usr/bin/a ; /usr/bin/b\n", err: "several commands separated by ';'"},
		{body: "ExecStart=nosuchprog-here\n", err: "is not in systemd's search path"},
		{body: "ExecStart=/usr/bin/a 'open\n", err: "unterminated quote"},
		{body: "Type=oneshot\n", err: "the service has no ExecStart="},
		{body: "ExecStart=\n", err: "the service has no ExecStart="},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			if c.err != "" {
				refused(t, svc(c.body), c.err)
				return
			}
			j, diags := oneJob(t, svc(c.body))
			if j.Program != c.prog || !eq(j.Argv, c.argv) || j.UserName != c.user {
				t.Errorf("program %q argv %q user %q, want %q %q %q", j.Program, j.Argv, j.UserName, c.prog, c.argv, c.user)
			}
			if c.warn != "" {
				found := false
				for _, d := range diags {
					found = found || strings.Contains(d, c.warn)
				}
				if !found {
					t.Errorf("no warning %q among\n  %s", c.warn, strings.Join(diags, "\n  "))
				}
			}
		})
	}
}

func TestSystemdEnvironmentFile(t *testing.T) {
	dir := units(t, map[string]string{
		"env": "# comment\nA=1\nB='two words'\nC=\"q\\\"x\"\nexport D=4\nbad line\n",
	})
	env := filepath.Join(dir, "env")
	j, diags := oneJob(t, map[string]string{
		"a.socket":  "[Socket]\nListenStream=/run/a.sock\n",
		"a.service": "[Service]\nEnvironment=A=0 Z=26\nEnvironmentFile=" + env + "\nEnvironmentFile=-/etc/default/nonexistent\nExecStart=/usr/bin/a $B\n",
	})
	if got := show(j.EnvironmentVariables); got != show([]job.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "two words"}, {Name: "C", Value: `q"x`}, {Name: "D", Value: "4"}, {Name: "Z", Value: "26"}}) {
		t.Errorf("environment %s", got)
	}
	if !eq(j.Argv, []string{"/usr/bin/a", "two", "words"}) {
		t.Errorf("argv %q", j.Argv)
	}
	wantDiags(t, diags, env+":6: warning: \"bad line\" is not NAME=value; ignored")
	refused(t, map[string]string{"a.socket": "[Socket]\nListenStream=/run/a.sock\n", "a.service": "[Service]\nEnvironmentFile=/etc/default/nonexistent\nExecStart=/usr/bin/a\n"},
		"EnvironmentFile: error: /etc/default/nonexistent does not exist, and systemd does not start the service without it")
	// The file obeys the job files' rule: a world-writable one is refused.
	if err := os.Chmod(env, 0o666); err != nil {
		t.Fatal(err)
	}
	refused(t, map[string]string{"a.socket": "[Socket]\nListenStream=/run/a.sock\n", "a.service": "[Service]\nEnvironmentFile=" + env + "\nExecStart=/usr/bin/a\n"},
		"cannot be read as sockd reads configuration")
}

func TestSystemdServiceSettings(t *testing.T) {
	j, diags := oneJob(t, map[string]string{
		"a.socket": "[Socket]\nListenStream=/run/a.sock\n",
		"a.service": "[Service]\nExecStart=/usr/bin/a\nUser=daemon\nGroup=adm\nSupplementaryGroups=disk\nWorkingDirectory=~\nRootDirectory=/srv/root\n" +
			"UMask=0027\nNice=5\nLimitNOFILE=1024:4096\nLimitCORE=infinity\nLimitFSIZE=1M\nLimitCPU=1min\nLimitRTPRIO=5\n" +
			"StandardOutput=append:/var/log/a.log\nRestart=on-failure\nRestartSec=500ms\nTimeoutSec=infinity\nKillMode=mixed\n" +
			"ProtectSystem=strict\nNoNewPrivileges=yes\nRuntimeDirectory=a\nSlice=x.slice\n",
	})
	if j.UserName != "daemon" || j.GroupName != "adm" || j.WorkingDirectory != "/home/daemon" || j.RootDirectory != "/srv/root" ||
		j.Umask == nil || *j.Umask != 0o027 || j.Nice == nil || *j.Nice != 5 {
		t.Errorf("process settings: %+v", j)
	}
	soft, hard := show(j.SoftResourceLimits), show(j.HardResourceLimits)
	if !strings.Contains(soft, "{Name:NumberOfFiles Resource:7 Value:1024}") || !strings.Contains(hard, "{Name:NumberOfFiles Resource:7 Value:4096}") ||
		!strings.Contains(soft, "{Name:Core Resource:4 Value:18446744073709551615}") || !strings.Contains(soft, "{Name:FileSize Resource:1 Value:1048576}") ||
		!strings.Contains(soft, "{Name:CPU Resource:0 Value:60}") {
		t.Errorf("limits soft %s hard %s", soft, hard)
	}
	if j.StandardOutPath != "/var/log/a.log" || j.StandardErrorPath != "/var/log/a.log" {
		t.Errorf("stdout %q stderr %q", j.StandardOutPath, j.StandardErrorPath)
	}
	if show(j.KeepAlive) != show(job.KeepAlive{}) || j.ThrottleInterval != time.Second || j.ExitTimeOut != 0 || j.AbandonProcessGroup {
		t.Errorf("keepalive %+v throttle %v exit %v abandon %t", j.KeepAlive, j.ThrottleInterval, j.ExitTimeOut, j.AbandonProcessGroup)
	}
	wantDiags(t, diags,
		"a.service:5: SupplementaryGroups: warning: not honoured: sockd gives the service its user's own groups (as initgroups does), not these; the service runs with fewer rights",
		"a.service:14: LimitRTPRIO: warning: not honoured: sockd sets no such resource limit (this only narrows what the service itself may do)",
		"a.service:20: ProtectSystem: warning: not honoured: sockd does not sandbox the service (this only narrows what the service itself may do)",
		"a.service:22: RuntimeDirectory: warning: not honoured: sockd does not create the service's directories: create it beforehand (a tmpfiles.d line)",
		"a.service:17: RestartSec: warning: ThrottleInterval is in whole seconds: 500ms becomes 1 s",
	)
	roundTrip(t, j)
}

func TestSystemdStdio(t *testing.T) {
	cases := []struct {
		accept         bool
		body           string
		stdin, out, er string
		warn           string
	}{
		{accept: true, body: "StandardInput=socket\n"},
		{accept: true, body: "StandardInput=socket\nStandardError=journal\n", er: "/dev/null", warn: "sends it to /dev/null here so that it does not reach the client"},
		{accept: true, body: "StandardInput=socket\nStandardOutput=inherit\nStandardError=append:/var/log/x\n", er: "/var/log/x"},
		{accept: true, body: "StandardInput=socket\nStandardOutput=null\n", out: "/dev/null", er: "/dev/null"},
		{body: "StandardOutput=journal\nStandardError=truncate:/var/log/e\n", er: "/var/log/e", warn: "sockd appends to /var/log/e; systemd empties it first"},
		{body: "StandardInput=file:/etc/motd\nStandardOutput=file:/var/log/o\n", stdin: "/etc/motd", out: "/var/log/o", er: "/var/log/o"},
		{body: "StandardOutput=inherit\n", out: "/dev/null", er: "/dev/null"},
		{body: "StandardOutput=kmsg+console\n"},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			files := map[string]string{"a.socket": "[Socket]\nListenStream=/run/a.sock\n", "a.service": "[Service]\nExecStart=/usr/bin/a\n" + c.body}
			if c.accept {
				files = map[string]string{"a.socket": "[Socket]\nListenStream=/run/a.sock\nAccept=yes\n", "a@.service": "[Service]\nExecStart=/usr/bin/a\n" + c.body}
			}
			j, diags := oneJob(t, files)
			if j.StandardInPath != c.stdin || j.StandardOutPath != c.out || j.StandardErrorPath != c.er {
				t.Errorf("in %q out %q err %q, want %q %q %q", j.StandardInPath, j.StandardOutPath, j.StandardErrorPath, c.stdin, c.out, c.er)
			}
			if c.warn != "" && !strings.Contains(strings.Join(diags, "\n"), c.warn) {
				t.Errorf("no warning %q among\n  %s", c.warn, strings.Join(diags, "\n  "))
			}
		})
	}
	refused(t, map[string]string{"a.socket": "[Socket]\nListenStream=/run/a.sock\n", "a.service": "[Service]\nExecStart=/usr/bin/a\nStandardOutput=socket\n"},
		"StandardOutput: error: socket needs the socket on standard input")
	refused(t, map[string]string{"a.socket": "[Socket]\nListenStream=/run/a.sock\n", "a.service": "[Service]\nExecStart=/usr/bin/a\nStandardInput=fd:x\n"},
		"StandardInput: error: fd: names a file descriptor store")
}

func TestSystemdRefusals(t *testing.T) {
	sock := "[Socket]\nListenStream=/run/a.sock\n"
	cases := []struct{ socket, service, want string }{
		{"[Unit]\nConditionPathExists=/etc/x\n" + sock, "", "a.socket:2: ConditionPathExists: error: systemd starts the unit only when it holds"},
		{sock, "[Unit]\nAssertUser=root\n", "a.service:2: AssertUser: error: systemd starts (and fails the start otherwise) the unit only when it holds"},
		{sock, "[Service]\nPrivateNetwork=yes\n", "PrivateNetwork: error: the service would run in a network namespace of its own"},
		{sock, "[Service]\nDynamicUser=yes\n", "DynamicUser: error: systemd runs the service as a user allocated for it"},
		{sock, "[Service]\nType=forking\n", "Type: error: a forking service's first process exits at once"},
		{sock, "[Service]\nExecCondition=/bin/true\n", "ExecCondition: error:"},
		{sock, "[Service]\nRootImage=/x.raw\n", "RootImage: error:"},
		{sock, "[Service]\nPAMName=login\n", "PAMName: error:"},
		{sock, "[Unit]\nJoinsNamespaceOf=b.service\n", "JoinsNamespaceOf: error:"},
		{sock + "RestrictAddressFamilies=AF_UNIX\n", "", "RestrictAddressFamilies: error: it restricts the network use of the unit's sockets"},
		{sock + "BindToDevice=no/such\n", "", `BindToDevice: error: "no/such" is not a network interface name`},
		{sock + "Backlog=0\n", "", "Backlog: error:"},
		{sock + "Symlinks=relative\n", "", `Symlinks: error: "relative" is not an absolute path`},
		{sock + "Symlinks=/run/a.sock\n", "", `Symlinks: error: "/run/a.sock" is the socket's own path`},
		{"[Socket]\nListenFIFO=/run/f\nAccept=yes\n", "", "ListenFIFO: error: Accept=yes needs a stream or sequential-packet socket: a FIFO"},
		{sock + "SELinuxContextFromNet=yes\n", "", "SELinuxContextFromNet: error:"},
		{sock + "SocketProtocol=sctp\n", "", "SocketProtocol: error: sctp sockets are not supported"},
		{"[Socket]\nAccept=yes\n", "", "a.socket: error: the unit has no Listen*= directive"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			refused(t, map[string]string{"a.socket": c.socket, "a.service": c.service + "[Service]\nExecStart=/usr/bin/a\n"}, c.want)
		})
	}
	// A drop-in clears a condition: an empty assignment resets the list.
	oneJob(t, map[string]string{"a.socket": "[Unit]\nConditionPathExists=/etc/x\n" + sock, "a.socket.d/c.conf": "[Unit]\nConditionPathExists=\n",
		"a.service": "[Service]\nExecStart=/usr/bin/a\n"})
}

func TestSystemdPaths(t *testing.T) {
	dir := units(t, map[string]string{
		"t@.socket":  "[Socket]\nListenStream=/run/t-%i.sock\n",
		"t@.service": "[Service]\nExecStart=/usr/bin/t %i %I\n",
		"x.service":  "[Service]\nExecStart=/usr/bin/x\n",
		"x.timer":    "[Timer]\nOnCalendar=daily\n",
	})
	// An instance of a template socket, named though no file has its name.
	jobs, diags := loadUnits(t, dir, "t@a-b.socket")
	if len(jobs) != 1 || jobs[0].Label != "systemd.t@a-b.service" || !eq(endpoints(jobs[0]), []string{"unix /run/t-a-b.sock"}) ||
		!eq(jobs[0].Argv, []string{"/usr/bin/t", "a-b", "a/b"}) {
		t.Fatalf("jobs %v %v\n%s", labels(jobs), jobs, strings.Join(diags, "\n"))
	}
	// A directory: templates and timers are reported, not loaded.
	jobs, diags = loadUnits(t, dir)
	if len(jobs) != 0 {
		t.Errorf("jobs %v", labels(jobs))
	}
	wantDiags(t, diags, "t@.socket: warning: a template socket unit: not loaded from a directory (name an instance, NAME@INSTANCE.socket, to load one)",
		"x.timer: warning: not imported: sockd imports socket units (a timer unit's trigger has no socket)")
	_, diags = loadUnits(t, dir, "x.service")
	wantDiags(t, diags, "x.service: error: a service unit: give the socket unit that activates it (its .socket); sockd imports socket units with their services")
	// A masked unit is not loaded.
	if err := os.Symlink("/dev/null", filepath.Join(dir, "m.socket")); err != nil {
		t.Fatal(err)
	}
	jobs, diags = loadUnits(t, dir, "m.socket")
	if len(jobs) != 0 {
		t.Errorf("masked unit loaded")
	}
	wantDiags(t, diags, "m.socket: warning: masked (a link to /dev/null): not loaded")
	// Unit files obey the job files' rule.
	if err := os.Chmod(filepath.Join(dir, "x.service"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x.socket"), []byte("[Socket]\nListenStream=/run/x.sock\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	jobs, diags = loadUnits(t, dir, "x.socket")
	if len(jobs) != 0 || !strings.Contains(strings.Join(diags, "\n"), "x.service: error:") {
		t.Errorf("a world-writable service loaded: %v\n%s", labels(jobs), strings.Join(diags, "\n"))
	}
}

func TestSystemdSpecifiers(t *testing.T) {
	l := &sdLoader{s: &sink{}, host: offlineSystemd()}
	u := &sdUnit{name: "foo-bar@a\\x2db-c.service", file: "/etc/systemd/system/foo-bar@.service", instance: "a\\x2db-c"}
	for in, want := range map[string]string{
		"%n":  "foo-bar@a\\x2db-c.service",
		"%N":  "foo-bar@a\\x2db-c",
		"%p":  "foo-bar",
		"%P":  "foo/bar",
		"%i":  "a\\x2db-c",
		"%I":  "a-b/c",
		"%j":  "bar",
		"%f":  "/a-b/c",
		"%t":  "/run",
		"%S":  "/var/lib",
		"%C":  "/var/cache",
		"%L":  "/var/log",
		"%E":  "/etc",
		"%T":  "/tmp",
		"%V":  "/var/tmp",
		"%h":  "/root",
		"%u":  "root",
		"%U":  "0",
		"%g":  "root",
		"%G":  "0",
		"%H":  "debian.example",
		"%l":  "debian",
		"%m":  "0123456789abcdef0123456789abcdef",
		"%y":  "/etc/systemd/system/foo-bar@.service",
		"%Y":  "/etc/systemd/system",
		"%%i": "%i",
	} {
		if got, err := l.expand(u, in); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestSystemdValues(t *testing.T) {
	for in, want := range map[string]time.Duration{"90": 90 * time.Second, "5min 20s": 320 * time.Second, "1.5h": 90 * time.Minute,
		"100ms": 100 * time.Millisecond, "2 s": 2 * time.Second, "infinity": sdInfinity} {
		if got, err := sdTime(in, time.Second); err != nil || got != want {
			t.Errorf("sdTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := sdTime("5 parsecs", time.Second); err == nil {
		t.Error("unknown unit accepted")
	}
	for in, want := range map[string]uint64{"8M": 8 << 20, "512": 512, "1G": 1 << 30, "2KB": 2048} {
		if got, err := sdSize(in, false); err != nil || got != want {
			t.Errorf("sdSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	words, _, err := sdWords(`a "b c"d 'e\'' f\sg \x41 \101`)
	if err != nil || !eq(words, []string{"a", "b cd", "e'", "f g", "A", "A"}) {
		t.Errorf("sdWords = %q, %v", words, err)
	}
}

// TestSystemdSourceKeys: problems the loader finds after import name the
// directive.
func TestSystemdSourceKeys(t *testing.T) {
	for in, want := range map[string]string{"UserName": "User", "Program": "ExecStart", "ProgramArguments[2]": "ExecStart",
		"Sockets.x.socket.SockPathMode": "SocketMode", "SoftResourceLimits.NumberOfFiles": "LimitNOFILE",
		"SockdLimits.Allow[1]": "IPAddressAllow", "Label": "Label"} {
		if got := SourceKey("systemd", in); got != want {
			t.Errorf("SourceKey(systemd, %s) = %q, want %q", in, got, want)
		}
	}
}

// TestSystemdSocketOptions: every socket option of [Socket] is the
// matching SockdOptions key of the sockets it applies to, and survives
// the job file.
func TestSystemdSocketOptions(t *testing.T) {
	j, diags := oneJob(t, map[string]string{
		"o.socket": "[Socket]\nListenStream=127.0.0.1:8080\nListenDatagram=127.0.0.1:8081\nListenStream=/run/o/o.sock\n" +
			"KeepAlive=yes\nKeepAliveTimeSec=1min\nKeepAliveIntervalSec=10\nKeepAliveProbes=5\nNoDelay=true\nReusePort=yes\n" +
			"FreeBind=yes\nTransparent=no\nBindToDevice=lo\nMark=7\nPriority=3\nReceiveBuffer=1M\nSendBuffer=64K\nBacklog=128\n" +
			"DeferAcceptSec=2s\nPassCredentials=yes\nIPTTL=64\nIPTOS=low-delay\nBroadcast=yes\nDirectoryMode=0750\nSymlinks=/run/o-link\n",
		"o.service": "[Service]\nExecStart=/usr/bin/o\n",
	})
	want := map[string]string{
		"tcp4 127.0.0.1:8080": "[{KeepAlive true} {KeepAliveTime 60} {KeepAliveInterval 10} {KeepAliveCount 5} {NoDelay true} {ReusePort true} {FreeBind true} {Transparent false} {BindToDevice lo} {Mark 7} {Priority 3} {ReceiveBuffer 1048576} {SendBuffer 65536} {Backlog 128} {DeferAccept 2} {TTL 64} {TOS 16}]",
		"udp4 127.0.0.1:8081": "[{ReusePort true} {FreeBind true} {Transparent false} {BindToDevice lo} {Mark 7} {Priority 3} {ReceiveBuffer 1048576} {SendBuffer 65536} {TTL 64} {TOS 16} {Broadcast true}]",
		"unix /run/o/o.sock":  "[{ReceiveBuffer 1048576} {SendBuffer 65536} {Backlog 128} {PassCredentials true} {DirectoryMode 0750} {Symlinks /run/o-link}]",
	}
	check := func(j *job.Job, what string) {
		for _, e := range j.Endpoints() {
			k := e.Network + " " + e.Address
			if got := fmt.Sprintf("%v", e.Socket.Options.Values()); got != want[k] {
				t.Errorf("%s: %s options\n  %s\n  want %s", what, k, got, want[k])
			}
		}
	}
	check(j, "imported")
	for _, d := range diags {
		if strings.Contains(d, "warning") && !strings.Contains(d, "unknown") {
			t.Errorf("unexpected warning: %s", d)
		}
	}
	data, err := WritePlist(j)
	if err != nil {
		t.Fatal(err)
	}
	back, ds := job.Decode(data, "o.plist")
	if back == nil || ds.HasErrors() {
		t.Fatalf("reload: %v\n%s", ds, data)
	}
	check(back, "reloaded")

	// A socket file gets systemd's DirectoryMode 0755 by default; an
	// option that applies to none of the sockets is a warning.
	j, diags = oneJob(t, map[string]string{"p.socket": "[Socket]\nListenStream=/run/p/p.sock\nPriority=6\nNoDelay=yes\n", "p.service": "[Service]\nExecStart=/usr/bin/p\n"})
	if got := fmt.Sprintf("%v", j.Sockets[0].Sockets[0].Options.Values()); got != "[{DirectoryMode 0755}]" {
		t.Errorf("unix socket options %s", got)
	}
	wantDiags(t, diags, "p.socket:3: Priority: warning: no effect on the unit's sockets: it applies to TCP and UDP sockets (sockd sets it on those only)",
		"p.socket:4: NoDelay: warning: no effect on the unit's sockets: it applies to TCP sockets")
}
