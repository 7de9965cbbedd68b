package compat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockd/sockd/job"
)

func parseXinetdTest(t *testing.T, text string) ([]*job.Job, []string) {
	t.Helper()
	jobs, diags := parseXinetd([]byte(text), "x.conf", offlineInfo())
	return jobs, diagStrings(diags, "")
}

// svc wraps attribute lines in a service block (the block starts on line 1,
// the first attribute is on line 3).
func svc(name string, attrs ...string) string {
	return "service " + name + "\n{\n\t" + strings.Join(attrs, "\n\t") + "\n}\n"
}

var tcpBase = []string{"socket_type = stream", "wait = no", "user = nobody", "server = /usr/sbin/in.fingerd"}

func attrs(extra ...string) []string { return append(append([]string(nil), tcpBase...), extra...) }

func TestXinetdBasic(t *testing.T) {
	jobs, got := parseXinetdTest(t, svc("finger", attrs("server_args = -l -w", "group = nogroup")...))
	if len(jobs) != 1 || len(got) != 0 {
		t.Fatalf("jobs %v diags %v", labels(jobs), got)
	}
	j := jobs[0]
	checkJobInvariants(t, j)
	want := map[string]string{
		"Label": "xinetd.finger", "File": "x.conf:1", "Source": "xinetd", "Path": "/usr/sbin/in.fingerd",
		"Argv": "[in.fingerd -l -w]", "User": "nobody", "Group": "nogroup", "Eps": "[tcp4 0.0.0.0:79]",
		"Inetd": "&{Wait:false}", "Limits": show(job.Limits{MaxChildren: 256, Rate: 50, Burst: 50, Pause: 10 * time.Second}),
		"Group0": "finger", "ServiceName": "finger", "Port": "79", "InitGroups": "true",
	}
	have := map[string]string{
		"Label": j.Label, "File": j.File, "Source": j.Source, "Path": j.Path, "Argv": show(j.Argv), "User": j.UserName,
		"Group": j.GroupName, "Eps": show(endpoints(j)), "Inetd": show(j.Inetd), "Limits": show(j.Limits),
		"Group0": j.Sockets[0].Name, "ServiceName": j.Sockets[0].Sockets[0].ServiceName,
		"Port": show(j.Sockets[0].Sockets[0].Port), "InitGroups": show(j.InitGroups),
	}
	for k, v := range want {
		if have[k] != v {
			t.Errorf("%s = %s, want %s", k, have[k], v)
		}
	}
}

func TestXinetdAttributes(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		label string
		check func(t *testing.T, j *job.Job)
		diags []string
	}{
		{name: "flags IPv6 is both families", text: svc("finger", attrs("flags = REUSE IPv6")...), label: "xinetd.finger",
			check: epsAre("tcp6 [::]:79", "tcp4 0.0.0.0:79")},
		{name: "IPv6 with v6only", text: svc("finger", attrs("flags = IPv6", "v6only = yes")...), label: "xinetd.finger",
			check: epsAre("tcp6 [::]:79")},
		{name: "flags IPv4", text: svc("finger", attrs("flags = IPv4")...), label: "xinetd.finger", check: epsAre("tcp4 0.0.0.0:79")},
		{name: "bind v6", text: svc("finger", attrs("bind = ::1")...), label: "xinetd.finger", check: epsAre("tcp6 [::1]:79")},
		{name: "interface synonym", text: svc("finger", attrs("interface = 127.0.0.1")...), label: "xinetd.finger", check: epsAre("tcp4 127.0.0.1:79")},
		{name: "bind to interface name", text: svc("finger", attrs("bind = eth0")...),
			diags: []string{`x.conf:7: bind: error: "eth0" is a network interface, not an address: xinetd 2.3.15 refuses it too ("bad address") and does not start the service; write the address to listen on (it has 192.0.2.10); service finger skipped`}},
		{name: "udp", text: svc("tftp", "socket_type = dgram", "protocol = udp", "wait = yes", "user = nobody", "server = /usr/sbin/in.tftpd", "server_args = -s /srv"),
			label: "xinetd.tftp", check: func(t *testing.T, j *job.Job) {
				epsAre("udp4 0.0.0.0:69")(t, j)
				if !j.Inetd.Wait || !eq(j.Argv, []string{"in.tftpd", "-s", "/srv"}) {
					t.Errorf("inetd %+v argv %v", j.Inetd, j.Argv)
				}
			}},
		{name: "NAMEINARGS", text: svc("telnet", "socket_type = stream", "wait = no", "user = root", "flags = NAMEINARGS", "server = /usr/sbin/tcpd", "server_args = /usr/sbin/in.telnetd -h"),
			label: "xinetd.telnet", check: func(t *testing.T, j *job.Job) {
				if j.Path != "/usr/sbin/tcpd" || !eq(j.Argv, []string{"/usr/sbin/in.telnetd", "-h"}) {
					t.Errorf("path %q argv %v", j.Path, j.Argv)
				}
			}},
		{name: "instances and per_source", text: svc("finger", attrs("instances = 7", "per_source = 2")...), label: "xinetd.finger",
			check: func(t *testing.T, j *job.Job) {
				if j.Limits.MaxChildren != 7 || j.Limits.MaxPerSource != 2 {
					t.Errorf("limits %+v", j.Limits)
				}
			}},
		{name: "UNLIMITED", text: svc("finger", attrs("instances = UNLIMITED", "per_source = UNLIMITED")...), label: "xinetd.finger",
			check: func(t *testing.T, j *job.Job) {
				if j.Limits.MaxChildren != Unlimited || j.Limits.MaxPerSource != 0 {
					t.Errorf("limits %+v", j.Limits)
				}
			}},
		{name: "cps", text: svc("finger", attrs("cps = 25 30")...), label: "xinetd.finger", check: func(t *testing.T, j *job.Job) {
			if j.Limits.Rate != 25 || j.Limits.Burst != 25 || j.Limits.Pause != 30*time.Second {
				t.Errorf("limits %+v", j.Limits)
			}
		}},
		{name: "only_from forms", text: svc("finger", attrs("only_from = 128.138.12.0 10.{1,2} 192.168.1.{4,5} 0.0.0.0 1.2.3.4/16 ::1 localhost")...), label: "xinetd.finger",
			check: allowIs("128.138.12.0/24", "10.1.0.0/16", "10.2.0.0/16", "192.168.1.4/32", "192.168.1.5/32", "0.0.0.0/0", "1.2.0.0/16", "::1/128", "127.0.0.1/32"),
			diags: []string{`x.conf:7: only_from: warning: host name "localhost" is 127.0.0.1/32, ::1/128 in /etc/hosts`}},
		{name: "only_from unresolvable dropped", text: svc("finger", attrs("only_from = 127.0.0.1 nosuch.example .example.com")...), label: "xinetd.finger",
			check: allowIs("127.0.0.1/32"),
			diags: []string{
				`x.conf:7: only_from: warning: cannot resolve "nosuch.example" in /etc/hosts (sockd resolves names without DNS; xinetd matches them by the client's reverse lookup); it is dropped`,
				`x.conf:7: only_from: warning: domain ".example.com" dropped: xinetd matches it against the client's reverse DNS name, sockd matches addresses only`,
			}},
		{name: "empty only_from disables", text: svc("finger", attrs("only_from =")...), label: "xinetd.finger",
			check: func(t *testing.T, j *job.Job) {
				if !j.Disabled || !eq(j.Limits.Deny, denyAll) || len(j.Limits.Allow) != 0 {
					t.Errorf("disabled %v limits %+v", j.Disabled, j.Limits)
				}
			},
			diags: []string{"x.conf:7: only_from: warning: no address is allowed: xinetd serves nobody; the job is disabled and denies every address"}},
		{name: "no_access", text: svc("finger", attrs("no_access = 10.0.0.0/8 192.168.1.3", "only_from = 10.1.2.3")...), label: "xinetd.finger",
			check: func(t *testing.T, j *job.Job) {
				if !eq(j.Limits.Deny, []string{"10.0.0.0/8", "192.168.1.3/32"}) || !eq(j.Limits.Allow, []string{"10.1.2.3/32"}) {
					t.Errorf("limits %+v", j.Limits)
				}
			},
			diags: []string{"x.conf:7: no_access: warning: 10.1.2.3/32 is inside 10.0.0.0/8: xinetd lets the more specific only_from entry win, sockd denies it"}},
		{name: "no_access unresolvable is an error", text: svc("finger", attrs("no_access = nosuch.example")...),
			diags: []string{`x.conf:7: no_access: error: "nosuch.example" is a name: xinetd refuses every client whose reverse DNS name matches it, and sockd, which matches addresses only, could not refuse them all: list the addresses to refuse; service finger skipped`}},
		{name: "env", text: svc("finger", attrs("env = B=2 A=1 =bad", "env += C=3")...), label: "xinetd.finger",
			check: func(t *testing.T, j *job.Job) {
				if show(j.EnvironmentVariables) != show([]job.EnvVar{ev("A", "1"), ev("B", "2"), ev("C", "3")}) {
					t.Errorf("env %+v", j.EnvironmentVariables)
				}
			},
			diags: []string{`x.conf:7: env: warning: "=bad" is not NAME=value; ignored`}},
		{name: "nice umask rlimits", text: svc("finger", attrs("nice = -5", "umask = 027", "rlimit_as = 4M", "rlimit_cpu = 30", "rlimit_files = UNLIMITED", "rlimit_data = 8K", "rlimit_rss = 1000", "rlimit_stack = 1m")...),
			label: "xinetd.finger", check: func(t *testing.T, j *job.Job) {
				if j.Nice == nil || *j.Nice != -5 || j.Umask == nil || *j.Umask != 0o27 {
					t.Errorf("nice %v umask %v", j.Nice, j.Umask)
				}
				want := []job.RLimit{rl("AddressSpace", rlimitAS, 4<<20), rl("CPU", rlimitCPU, 30), rl("Data", rlimitData, 8<<10),
					rl("NumberOfFiles", rlimitNofile, RLimInfinity), rl("ResidentSetSize", rlimitRSS, 1000), rl("Stack", rlimitStack, 1<<20)}
				if show(j.SoftResourceLimits) != show(want) || show(j.HardResourceLimits) != show(want) {
					t.Errorf("rlimits %+v / %+v", j.SoftResourceLimits, j.HardResourceLimits)
				}
			}},
		{name: "bad umask", text: svc("finger", attrs("umask = 999")...), diags: []string{`x.conf:7: umask: error: "999": want an octal mask such as 022; service finger skipped`}},
		{name: "bad nice", text: svc("finger", attrs("nice = 40")...), diags: []string{`x.conf:7: nice: error: "40": want a number from -20 to 19; service finger skipped`}},
		{name: "redirect", text: svc("telnet", "socket_type = stream", "wait = no", "bind = 127.0.0.1", "redirect = 10.0.0.2 23"), label: "xinetd.telnet",
			check: func(t *testing.T, j *job.Job) {
				if j.Proxy == nil || j.Proxy.Backend != "10.0.0.2:23" || j.Path != "" || j.Inetd != nil || j.Mode() != job.ModeProxy {
					t.Errorf("proxy %+v path %q inetd %v", j.Proxy, j.Path, j.Inetd)
				}
				epsAre("tcp4 127.0.0.1:23")(t, j)
			}},
		{name: "redirect v6 host name", text: svc("telnet", "socket_type = stream", "wait = no", "redirect = ::1 telnet", "server = /x"), label: "xinetd.telnet",
			check: func(t *testing.T, j *job.Job) {
				if j.Proxy == nil || j.Proxy.Backend != "[::1]:23" {
					t.Errorf("proxy %+v", j.Proxy)
				}
			},
			diags: []string{"x.conf:6: server: warning: ignored: redirect takes priority"}},
		{name: "redirect dgram", text: svc("x", "socket_type = dgram", "wait = yes", "type = UNLISTED", "port = 7000", "redirect = 10.0.0.2 23"),
			diags: []string{"x.conf:7: redirect: error: only stream (tcp) services can be redirected; service x skipped"}},
		{name: "disable", text: svc("finger", attrs("disable = yes")...), label: "xinetd.finger", check: func(t *testing.T, j *job.Job) {
			if !j.Disabled {
				t.Error("not disabled")
			}
		}},
		{name: "internal with id", text: svc("chargen", "type = INTERNAL", "id = chargen-dgram", "socket_type = dgram", "protocol = udp", "wait = yes", "user = root"),
			label: "xinetd.chargen-dgram", check: func(t *testing.T, j *job.Job) {
				if j.Internal != "chargen" || j.Path != "" || j.Inetd != nil || j.Mode() != job.ModeInternal {
					t.Errorf("internal %q path %q inetd %v", j.Internal, j.Path, j.Inetd)
				}
				epsAre("udp4 0.0.0.0:19")(t, j)
			}},
		{name: "internal unlisted", text: svc("echo", "type = INTERNAL UNLISTED", "socket_type = stream", "wait = no", "port = 7007"),
			label: "xinetd.echo", check: func(t *testing.T, j *job.Job) {
				epsAre("tcp4 0.0.0.0:7007")(t, j)
				if j.Sockets[0].Sockets[0].ServiceName != "7007" {
					t.Errorf("ServiceName %q", j.Sockets[0].Sockets[0].ServiceName)
				}
			}},
		{name: "unknown internal", text: svc("tcpmux", "type = INTERNAL", "socket_type = stream", "wait = no"),
			diags: []string{`x.conf:1: type: error: internal service "tcpmux" is not provided by sockd (it serves echo, discard, chargen, daytime and time); service tcpmux skipped`}},
		{name: "unlisted needs port", text: svc("mysvc", "type = UNLISTED", "socket_type = stream", "wait = no", "user = u", "server = /bin/x"),
			diags: []string{"x.conf:1: port: error: missing: an UNLISTED service needs port; service mysvc skipped"}},
		{name: "unlisted", text: svc("check-mk-agent", "type = UNLISTED", "port = 6556", "socket_type = stream", "protocol = tcp", "wait = no", "user = root", "server = /usr/bin/check_mk_agent"),
			label: "xinetd.check-mk-agent", check: epsAre("tcp4 0.0.0.0:6556")},
		{name: "port differs from services", text: svc("finger", attrs("port = 7979")...), label: "xinetd.finger", check: epsAre("tcp4 0.0.0.0:7979"),
			diags: []string{"x.conf:7: port: warning: 7979 differs from /etc/services (finger is 79/tcp); using 7979"}},
		{name: "unknown service without port", text: svc("nosuchsvc", attrs()...),
			diags: []string{`x.conf:1: port: error: service "nosuchsvc" is not in /etc/services for tcp; add port (and type = UNLISTED); service nosuchsvc skipped`}},
		{name: "rpc", text: svc("rstatd", "type = RPC", "rpc_version = 2-4", "socket_type = dgram", "protocol = udp", "wait = yes", "user = root", "server = /x"),
			diags: []string{"x.conf:3: type: warning: RPC services are not supported; service rstatd skipped"}},
		{name: "raw", text: svc("x", "socket_type = raw", "wait = no"), diags: []string{"x.conf:3: socket_type: warning: raw sockets are not supported; service x skipped"}},
		{name: "missing wait", text: svc("finger", "socket_type = stream", "user = u", "server = /x"),
			diags: []string{"x.conf:1: wait: error: missing (want yes or no); service finger skipped"}},
		{name: "missing server", text: svc("finger", "socket_type = stream", "wait = no", "user = u"),
			diags: []string{"x.conf:1: server: error: missing (an external service needs server); service finger skipped"}},
		{name: "missing user", text: svc("finger", "socket_type = stream", "wait = no", "server = /x"),
			diags: []string{"x.conf:1: user: error: missing (an external service needs user); service finger skipped"}},
		{name: "protocol mismatch", text: svc("finger", attrs("protocol = udp")...),
			diags: []string{"x.conf:7: protocol: error: protocol udp does not go with socket_type stream; service finger skipped"}},
		{name: "sensor", text: svc("irc", "socket_type = stream", "wait = no", "flags = SENSOR", "type = INTERNAL", "deny_time = 60"),
			diags: []string{"x.conf:5: flags: error: SENSOR services are not supported (xinetd would also refuse the clients that touch it, for deny_time, on every service; sockd keeps no such list); service irc skipped"}},
		{name: "log_on_failure USERID", text: svc("ftp", "socket_type = stream", "wait = no", "user = root", "server = /usr/sbin/vsftpd",
			"log_on_failure += HOST USERID"),
			label: "xinetd.ftp", check: func(t *testing.T, j *job.Job) {
				if !j.LogConnections {
					t.Error("log_on_failure: SockdLogConnections not set")
				}
			},
			diags: []string{"x.conf:7: log_on_failure: warning: USERID: not honoured: sockd makes no ident (RFC 1413) lookups"}},
		{name: "log_on_success on a wait service", text: svc("tftp", "socket_type = dgram", "protocol = udp", "wait = yes", "user = root",
			"server = /usr/sbin/in.tftpd", "log_on_success = HOST PID"),
			label: "xinetd.tftp", check: func(t *testing.T, j *job.Job) {
				if j.LogConnections {
					t.Error("a wait = yes service got SockdLogConnections")
				}
			},
			diags: []string{"x.conf:8: log_on_success: warning: not honoured: a wait = yes service accepts its own clients, which sockd never sees to log"}},
		{name: "unhonoured attributes", text: svc("ftp", "socket_type = stream", "wait = no", "user = root", "server = /usr/sbin/vsftpd",
			"log_type = SYSLOG daemon", "log_on_success += PID HOST", "log_on_failure =", "deny_time = 60", "banner = /etc/b",
			"banner_success = /etc/s", "banner_fail = /etc/f", "libwrap = ftp", "mdns = yes", "v6only = no", "flags = NODELAY KEEPALIVE NORETRY", "groups = no", "frobnicate = 1"),
			label: "xinetd.ftp", check: func(t *testing.T, j *job.Job) {
				if j.InitGroups {
					t.Error("groups = no: InitGroups still true")
				}
				if !j.LogConnections {
					t.Error("log_on_success += PID HOST: SockdLogConnections not set")
				}
			},
			diags: []string{
				"x.conf:7: log_type: warning: not honoured: sockd logs through its own logger",
				"x.conf:10: deny_time: warning: not honoured: it is used only by SENSOR services, which sockd does not import",
				"x.conf:11: banner: warning: not honoured: sockd sends no banners",
				"x.conf:12: banner_success: warning: not honoured: sockd sends no banners",
				"x.conf:13: banner_fail: warning: not honoured: sockd sends no banners",
				"x.conf:15: mdns: warning: not honoured: sockd does no mDNS registration",
				"x.conf:17: flags: warning: flag NODELAY is not honoured",
				"x.conf:17: flags: warning: flag KEEPALIVE is not honoured",
				"x.conf:17: flags: warning: flag NORETRY is not honoured",
				"x.conf:19: frobnicate: warning: unknown attribute; ignored",
			}},
		{name: "repeated single attribute", text: svc("finger", attrs("user = root")...), label: "xinetd.finger",
			check: func(t *testing.T, j *job.Job) {
				if j.UserName != "nobody" {
					t.Errorf("user %q", j.UserName)
				}
			},
			diags: []string{"x.conf:7: user: warning: set again (first on line 5); the first value is kept"}},
		{name: "brace on the service line", text: "service finger {\n" + strings.Join(tcpBase, "\n") + "\n}\n", label: "xinetd.finger"},
		{name: "missing brace", text: "service finger\nsocket_type = stream\n",
			diags: []string{`x.conf:2: error: expected { after "service finger" on line 1; service finger skipped`}},
		{name: "missing close", text: "service finger\n{\nsocket_type = stream\n",
			diags: []string{"x.conf:1: error: missing } at end of file for service finger; it is skipped"}},
		{name: "unparsable line", text: svc("finger", attrs("what is this")...), label: "xinetd.finger",
			diags: []string{`x.conf:7: error: cannot parse "what is this": want attribute = value ...; line ignored`}},
		{name: "includes without file access", text: "include /etc/x\nincludedir /etc/xinetd.d\n",
			diags: []string{"x.conf:1: include: warning: include /etc/x ignored (configuration parsed without file access)",
				"x.conf:2: includedir: warning: includedir /etc/xinetd.d ignored (configuration parsed without file access)"}},
		{name: "same id twice, both enabled", text: svc("finger", attrs()...) + svc("finger", attrs()...), label: "xinetd.finger",
			diags: []string{"x.conf:8: id: error: duplicate service id finger (first at x.conf:1): give one of them a distinct id; skipped"}},
		{name: "enabled duplicate replaces disabled", text: svc("finger", attrs("disable = yes")...) + svc("finger", attrs()...), label: "xinetd.finger",
			check: func(t *testing.T, j *job.Job) {
				if j.Disabled || j.File != "x.conf:9" {
					t.Errorf("kept %s disabled=%v", j.File, j.Disabled)
				}
			},
			diags: []string{"x.conf:1: id: warning: service id finger is defined again at x.conf:9, which is enabled; this disabled one is dropped"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jobs, got := parseXinetdTest(t, tc.text)
			wantDiags(t, got, tc.diags...)
			if tc.label == "" {
				if len(jobs) != 0 {
					t.Fatalf("want no job, got %v", labels(jobs))
				}
				return
			}
			j := findJob(t, jobs, tc.label)
			checkJobInvariants(t, j)
			if tc.check != nil {
				tc.check(t, j)
			}
			if len(tc.diags) == 0 && len(got) > 0 {
				t.Errorf("unexpected diags:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

func epsAre(want ...string) func(*testing.T, *job.Job) {
	return func(t *testing.T, j *job.Job) {
		t.Helper()
		if !eq(endpoints(j), want) {
			t.Errorf("endpoints %v, want %v", endpoints(j), want)
		}
	}
}

func allowIs(want ...string) func(*testing.T, *job.Job) {
	return func(t *testing.T, j *job.Job) {
		t.Helper()
		if !eq(j.Limits.Allow, want) {
			t.Errorf("allow %v, want %v", j.Limits.Allow, want)
		}
	}
}

func TestXinetdDefaults(t *testing.T) {
	text := `defaults
{
	instances = 60
	per_source = 4
	cps = 25 30
	only_from = 127.0.0.1
	only_from = 10.0.0.0
	no_access = 10.9.0.0
	umask = 002
	groups = yes
	log_type = SYSLOG daemon
	disabled = b
	server = /nope
	passenv = SOCKD_COMPAT_TEST_VAR SOCKD_COMPAT_UNSET
}
` + svc("finger", attrs()...) + svc("telnet", "socket_type = stream", "wait = no", "user = root", "server = /x",
		"only_from += 192.168.0.0", "only_from -= 10.0.0.0", "instances = 2", "cps = 5 1", "env = X=1") +
		svc("ftp", "socket_type = stream", "wait = no", "user = root", "server = /x", "only_from = 172.16.0.0/12", "id = b")
	t.Setenv("SOCKD_COMPAT_TEST_VAR", "v1")
	jobs, got := parseXinetdTest(t, text)
	wantDiags(t, got,
		"x.conf:11: log_type: warning: not honoured: sockd logs through its own logger",
		"x.conf:13: server: warning: not allowed in defaults (xinetd ignores it); ignored",
		"x.conf:14: passenv: warning: xinetd passes the server only SOCKD_COMPAT_TEST_VAR SOCKD_COMPAT_UNSET of its environment; sockd writes no value into the job and passes its whole environment when it starts the server (less LISTEN_*, LAUNCH_*, NOTIFY_SOCKET and the connection variables; it cannot withhold the others)",
	)
	for _, g := range got {
		if strings.Count(strings.Join(got, "\n"), g) > 1 {
			t.Errorf("diag repeated: %s", g)
		}
	}
	f := findJob(t, jobs, "xinetd.finger")
	if f.Limits.MaxChildren != 60 || f.Limits.MaxPerSource != 4 || f.Limits.Rate != 25 || f.Limits.Pause != 30*time.Second ||
		!eq(f.Limits.Allow, []string{"127.0.0.1/32", "10.0.0.0/8"}) || !eq(f.Limits.Deny, []string{"10.9.0.0/16"}) ||
		f.Umask == nil || *f.Umask != 2 || !f.InitGroups || f.Disabled {
		t.Errorf("finger: %+v umask %v", f.Limits, f.Umask)
	}
	if len(f.EnvironmentVariables) != 0 {
		t.Errorf("passenv baked into the job: %+v", f.EnvironmentVariables)
	}
	tel := findJob(t, jobs, "xinetd.telnet")
	if tel.Limits.MaxChildren != 2 || tel.Limits.Rate != 5 || tel.Limits.Pause != time.Second ||
		!eq(tel.Limits.Allow, []string{"127.0.0.1/32", "192.168.0.0/16"}) {
		t.Errorf("telnet: %+v", tel.Limits)
	}
	if show(tel.EnvironmentVariables) != show([]job.EnvVar{ev("X", "1")}) {
		t.Errorf("telnet env: %+v", tel.EnvironmentVariables)
	}
	b := findJob(t, jobs, "xinetd.b")
	if !b.Disabled || !eq(b.Limits.Allow, []string{"172.16.0.0/12"}) {
		t.Errorf("ftp id b: disabled %v allow %v", b.Disabled, b.Limits.Allow)
	}

	// enabled lists the only services that run.
	jobs, _ = parseXinetdTest(t, "defaults\n{\nenabled = finger\n}\n"+svc("finger", attrs()...)+svc("telnet", "socket_type = stream", "wait = no", "user = root", "server = /x"))
	if findJob(t, jobs, "xinetd.finger").Disabled || !findJob(t, jobs, "xinetd.telnet").Disabled {
		t.Error("enabled list not applied")
	}
}

// writeTree writes files (path -> content) under a temporary directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestXinetdIncludes(t *testing.T) {
	fingerSvc := svc("finger", attrs()...)
	dir := writeTree(t, map[string]string{
		"xinetd.conf":              "defaults\n{\ninstances = 9\n}\ninclude extra.conf\nincludedir /etc/xinetd.d\n",
		"extra.conf":               svc("telnet", "socket_type = stream", "wait = no", "user = root", "server = /x"),
		"xinetd.d/b":               svc("ftp", "socket_type = stream", "wait = no", "user = root", "server = /x"),
		"xinetd.d/a":               fingerSvc,
		"xinetd.d/c.rpmsave":       svc("shell", "socket_type = stream", "wait = no", "user = root", "server = /x"),
		"xinetd.d/d~":              svc("login", "socket_type = stream", "wait = no", "user = root", "server = /x"),
		"xinetd.d/loop":            "includedir /etc/xinetd.d\ninclude ../xinetd.conf\n",
		"xinetd.d/sub/ignored_dir": "x",
	})
	jobs, diags := loadXinetd(filepath.Join(dir, "xinetd.conf"), XinetdOptions{Relocate: true, Files: thisUser()}, offlineInfo())
	got := diagStrings(diags, dir+"/")
	if !eq(labels(jobs), []string{"xinetd.telnet", "xinetd.finger", "xinetd.ftp"}) {
		t.Errorf("jobs %v (want telnet from include, then a, b in order; c.rpmsave and d~ skipped)\n%s", labels(jobs), strings.Join(got, "\n"))
	}
	for _, j := range jobs {
		if j.Limits.MaxChildren != 9 {
			t.Errorf("%s: defaults not applied across files: %+v", j.Label, j.Limits)
		}
	}
	if !strings.HasSuffix(findJob(t, jobs, "xinetd.finger").File, "xinetd.d/a:1") {
		t.Errorf("finger File %q", findJob(t, jobs, "xinetd.finger").File)
	}
	// The loop file re-includes what was read: warned once each, no hang.
	wantDiags(t, got,
		"xinetd.d/loop:1: include: warning: xinetd.d/a was already read; not read again",
		"xinetd.d/loop:2: include: warning: xinetd.conf was already read; not read again",
	)
	if e, _ := countSev(diags); e != 0 {
		t.Errorf("errors: %s", strings.Join(got, "\n"))
	}

	// Without Relocate, a missing absolute directory falls back to the
	// sibling with a warning.
	dir2 := writeTree(t, map[string]string{
		"xinetd.conf": "includedir /nonexistent-sockd-test/xinetd.d\n",
		"xinetd.d/a":  fingerSvc,
	})
	jobs, diags = LoadXinetd(filepath.Join(dir2, "xinetd.conf"))
	wantDiags(t, diagStrings(diags, dir2+"/"),
		"xinetd.conf:1: includedir: warning: /nonexistent-sockd-test/xinetd.d does not exist; reading xinetd.d from the loaded tree instead")
	if len(jobs) != 1 {
		t.Errorf("fallback: jobs %v", labels(jobs))
	}

	// A directory loads like includedir; a single file loads by itself.
	if jobs, _ := loadXinetd(filepath.Join(dir, "xinetd.d"), XinetdOptions{Relocate: true, Files: thisUser()}, offlineInfo()); !eq(labels(jobs), []string{"xinetd.finger", "xinetd.ftp", "xinetd.telnet"}) {
		t.Errorf("directory: %v", labels(jobs))
	}
	if jobs, _ := LoadXinetd(filepath.Join(dir, "xinetd.d", "a")); !eq(labels(jobs), []string{"xinetd.finger"}) {
		t.Errorf("single file: %v", labels(jobs))
	}
	if _, d := LoadXinetd(filepath.Join(dir, "missing")); !d.HasErrors() {
		t.Error("missing path: no error")
	}
}

func TestXinetdIncludeDepth(t *testing.T) {
	files := map[string]string{}
	for i := 0; i < MaxIncludeDepth+3; i++ {
		files[filepath.Join("d", string(rune('a'+i)))] = "include " + string(rune('a'+i+1)) + "\n"
	}
	dir := writeTree(t, files)
	_, diags := LoadXinetd(filepath.Join(dir, "d", "a"))
	found := false
	for _, d := range diags {
		if d.Severity == job.Error && strings.Contains(d.Msg, "nested more than") {
			found = true
		}
	}
	if !found {
		t.Errorf("deep include chain not refused: %v", diags)
	}
}

func TestXinetdDisabledErrorsAreWarnings(t *testing.T) {
	jobs, diags := parseXinetd([]byte(svc("servers", "type = INTERNAL UNLISTED", "port = 9099", "socket_type = stream", "wait = no", "disable = yes")), "x.conf", offlineInfo())
	if len(jobs) != 0 || diags.HasErrors() || len(diags) != 1 {
		t.Errorf("jobs %v diags %v", labels(jobs), diags)
	}
}

func ev(name, value string) job.EnvVar { return job.EnvVar{Name: name, Value: value} }

func rl(name string, res int, v uint64) job.RLimit {
	return job.RLimit{Name: name, Resource: res, Value: v}
}
