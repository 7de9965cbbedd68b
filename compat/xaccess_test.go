package compat

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sockd/sockd/job"
)

// accessCase is one xinetd text and what importing it must give: the
// job's endpoints and limits, or no job and the error. Each of diags is a
// diag or its beginning.
type accessCase struct {
	name  string
	text  string
	sys   sysInfo // zero: offlineInfo
	label string  // "" when the service must be refused
	check func(t *testing.T, j *job.Job)
	diags []string
}

func runAccessCases(t *testing.T, cases []accessCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sys := tc.sys
			if sys.hosts == nil {
				sys = offlineInfo()
			}
			jobs, diags := parseXinetd([]byte(tc.text), "x.conf", sys)
			got := diagStrings(diags, "")
			for _, d := range tc.diags {
				wantDiagPrefix(t, got, d)
			}
			if tc.label == "" {
				if len(jobs) != 0 || !diags.HasErrors() {
					t.Fatalf("want the service refused with an error, got jobs %v and\n%s", labels(jobs), strings.Join(got, "\n"))
				}
				return
			}
			j := findJob(t, jobs, tc.label)
			checkJobInvariants(t, j)
			if tc.check != nil {
				tc.check(t, j)
			}
			roundTrip(t, j)
		})
	}
}

// neverWildcard fails when a job listens on every address.
func neverWildcard(t *testing.T, jobs []*job.Job) {
	t.Helper()
	for _, j := range jobs {
		for _, e := range endpoints(j) {
			if strings.Contains(e, "0.0.0.0:") || strings.Contains(e, "[::]:") {
				t.Errorf("%s listens on %s", j.Label, e)
			}
		}
	}
}

// TestXinetdBindNames: bind and interface bind what xinetd 2.3.15 binds,
// or the service is an error; never every address.
func TestXinetdBindNames(t *testing.T) {
	const lo = `x.conf:7: bind: error: "lo" is a network interface, not an address: xinetd 2.3.15 refuses it too ("bad address") and does not start the service; write the address to listen on (it has 127.0.0.1, ::1); service finger skipped`
	runAccessCases(t, []accessCase{
		{name: "bind lo", text: svc("finger", attrs("bind = lo")...), diags: []string{lo}},
		{name: "interface lo", text: svc("finger", attrs("interface = lo")...),
			diags: []string{strings.Replace(lo, "7: bind:", "7: interface:", 1)}},
		{name: "unresolvable", text: svc("finger", attrs("bind = nosuch.example")...),
			diags: []string{`x.conf:7: bind: error: cannot resolve "nosuch.example" in /etc/hosts (sockd resolves bind names without DNS; xinetd does not start a service whose bind it cannot resolve): write the address to listen on; service finger skipped`}},
		{name: "name with two addresses", text: svc("finger", attrs("bind = localhost")...),
			diags: []string{`x.conf:7: bind: error: "localhost" has several addresses in /etc/hosts (127.0.0.1, ::1) and xinetd binds only one of them, which one depending on its resolver: write the address to listen on, e.g. bind = 127.0.0.1; service finger skipped`}},
		{name: "name, IPv4", text: svc("finger", attrs("bind = localhost", "flags = IPv4")...), label: "xinetd.finger", check: epsAre("tcp4 127.0.0.1:79")},
		{name: "name, IPv6", text: svc("finger", attrs("bind = localhost", "flags = IPv6")...), label: "xinetd.finger", check: epsAre("tcp6 [::1]:79")},
		{name: "name, one address", text: svc("finger", attrs("bind = debian")...), label: "xinetd.finger",
			check: func(t *testing.T, j *job.Job) {
				epsAre("tcp4 127.0.1.1:79")(t, j)
				if n := j.Sockets[0].Sockets[0].NodeName; n != "127.0.1.1" {
					t.Errorf("SockNodeName %q: the converted file must not need the name resolved again", n)
				}
			}},
		{name: "name without the family", text: svc("finger", attrs("bind = debian", "flags = IPv6")...),
			diags: []string{`x.conf:7: bind: error: "debian" has no address of the service's family in /etc/hosts (it has 127.0.1.1): write the address to listen on; service finger skipped`}},
		{name: "IPv4 flag and IPv6 address", text: svc("finger", attrs("bind = ::1", "flags = IPv4")...),
			diags: []string{`x.conf:8: flags: error: flag IPv4 conflicts with bind ::1 (xinetd 2.3.15 would listen on 0.0.0.0 instead); service finger skipped`}},
		{name: "both flags and an IPv4 address", text: svc("finger", attrs("bind = 127.0.0.1", "flags = IPv4 IPv6")...),
			diags: []string{`x.conf:8: flags: error: flag IPv6 conflicts with bind 127.0.0.1 (xinetd 2.3.15 cannot start this service: it binds an IPv6 socket); service finger skipped`}},
		{name: "both flags and an IPv6 address", text: svc("finger", attrs("bind = ::1", "flags = IPv4 IPv6")...), label: "xinetd.finger",
			check: epsAre("tcp6 [::1]:79")},
		{name: "both flags, v6only", text: svc("finger", attrs("flags = IPv4 IPv6", "v6only = yes")...), label: "xinetd.finger",
			check: epsAre("tcp6 [::]:79"),
			diags: []string{`x.conf:7: flags: warning: both IPv4 and IPv6: as xinetd 2.3.15 does, one IPv6 socket (it takes IPv4 clients too, unless v6only = yes)`}},
		{name: "bind in defaults", text: "defaults\n{\nbind = lo\n}\n" + svc("finger", attrs()...),
			diags: []string{`x.conf:3: bind: error: "lo" is a network interface`}},
	})
	// The other services of the file still load, and none listens on
	// every address.
	jobs, diags := parseXinetd([]byte(svc("finger", attrs("bind = lo")...)+svc("telnet", "socket_type = stream", "wait = no", "user = root", "server = /x", "bind = 127.0.0.1")), "x.conf", offlineInfo())
	if !eq(labels(jobs), []string{"xinetd.telnet"}) || !diags.HasErrors() {
		t.Errorf("jobs %v diags %v", labels(jobs), diags)
	}
	neverWildcard(t, jobs)
	// A disabled service keeps its errors as warnings.
	if _, diags := parseXinetd([]byte(svc("finger", attrs("bind = lo", "disable = yes")...)), "x.conf", offlineInfo()); diags.HasErrors() || len(diags) == 0 {
		t.Errorf("disabled: %v", diags)
	}
}

// wantDiagPrefix is wantDiags for diags given by their beginning.
func wantDiagPrefix(t *testing.T, got []string, prefix string) {
	t.Helper()
	for _, g := range got {
		if strings.HasPrefix(g, prefix) {
			return
		}
	}
	t.Errorf("no diag starts with\n  %s\namong\n  %s", prefix, strings.Join(got, "\n  "))
}

func limitsAre(allow, deny []string) func(*testing.T, *job.Job) {
	return func(t *testing.T, j *job.Job) {
		t.Helper()
		if !eq(j.Limits.Allow, allow) || !eq(j.Limits.Deny, deny) {
			t.Errorf("Allow %v Deny %v, want %v %v", j.Limits.Allow, j.Limits.Deny, allow, deny)
		}
	}
}

func closedJob(t *testing.T, j *job.Job) {
	t.Helper()
	if !j.Disabled || len(j.Limits.Allow) != 0 || !eq(j.Limits.Deny, denyAll) {
		t.Errorf("not closed: disabled %v limits %+v", j.Disabled, j.Limits)
	}
}

// TestXinetdAccessLists: only_from and no_access are enforced exactly (or
// narrower), or the service is an error.
func TestXinetdAccessLists(t *testing.T) {
	vmHosts := testInfo("127.0.0.1 localhost\n127.0.0.1 vm\n10.0.0.7 vm\n", "", "")
	runAccessCases(t, []accessCase{
		{name: "every entry unresolvable", text: svc("finger", attrs("only_from = nosuch.example .example.com")...),
			diags: []string{`x.conf:7: only_from: error: none of its entries (nosuch.example .example.com) matches an address sockd can admit (xinetd matches names by the client's reverse DNS name, sockd addresses only), and an empty only_from would admit everyone: list the clients' addresses; service finger skipped`}},
		{name: "address whose reverse name differs", text: svc("finger", attrs("only_from = vm")...), sys: vmHosts, label: "xinetd.finger",
			check: limitsAre([]string{"10.0.0.7/32"}, nil),
			diags: []string{`x.conf:7: only_from: warning: host name "vm": 127.0.0.1 dropped: /etc/hosts names it "localhost" first, so xinetd, which matches the client's reverse name, would not admit it`}},
		{name: "no address left", text: svc("finger", attrs("only_from = vm")...), sys: testInfo("127.0.0.1 localhost vm\n", "", ""),
			diags: []string{`x.conf:7: only_from: error: none of its entries (vm) matches`}},
		{name: "IPv6 unspecified matches no client of an IPv4 service", text: svc("finger", attrs("only_from = ::")...), label: "xinetd.finger",
			check: closedJob, diags: []string{
				"x.conf:7: only_from: warning: :: dropped: it names IPv4 clients in IPv6 form (::/0), which xinetd matches only on an IPv6 socket (flags = IPv6); this service listens on IPv4, where xinetd matches no client with it",
				"x.conf:7: only_from: warning: none of its entries (::) can match a client of this IPv4 service: xinetd serves nobody; the job is disabled and denies every address"}},
		{name: "IPv6 unspecified is every client of an IPv6 socket", text: svc("finger", attrs("only_from = ::", "flags = IPv6")...), label: "xinetd.finger",
			check: limitsAre([]string{"::/0", "0.0.0.0/0"}, nil)},
		{name: "mapped only_from on an IPv6 socket", text: svc("finger", attrs("only_from = ::ffff:127.0.0.2 ::ffff:10.0.0.0/104 ::1", "flags = IPv6")...), label: "xinetd.finger",
			check: limitsAre([]string{"127.0.0.2", "10.0.0.0/8", "::1/128"}, nil)},
		{name: "no_access :: refuses IPv4 clients of an IPv6 socket", text: svc("finger", attrs("no_access = ::", "flags = IPv6")...), label: "xinetd.finger",
			check: limitsAre(nil, []string{"::/0", "0.0.0.0/0"})},
		{name: "no_access of the mapped space", text: svc("finger", attrs("no_access = ::ffff:0.0.0.0/96", "flags = IPv6", "v6only = yes")...), label: "xinetd.finger",
			check: limitsAre(nil, []string{"0.0.0.0/0"})},
		{name: "mapped no_access on an IPv4 socket refuses nobody", text: svc("finger", attrs("no_access = ::ffff:127.0.0.2 10.0.0.1")...), label: "xinetd.finger",
			check: limitsAre(nil, []string{"10.0.0.1/32"}),
			diags: []string{"x.conf:7: no_access: warning: ::ffff:127.0.0.2 dropped: it names IPv4 clients in IPv6 form (::ffff:127.0.0.2/128)"}},
		{name: "empty in defaults", text: "defaults\n{\nonly_from =\n}\n" + svc("finger", attrs()...), label: "xinetd.finger", check: closedJob,
			diags: []string{"x.conf:3: only_from: warning: no address is allowed: xinetd serves nobody; the job is disabled and denies every address"}},
		{name: "per_source 0", text: svc("finger", attrs("per_source = 0")...), label: "xinetd.finger", check: closedJob,
			diags: []string{"x.conf:7: per_source: warning: 0 lets no client in: xinetd serves nobody; the job is disabled and denies every address"}},
		{name: "no_access host name", text: svc("finger", attrs("no_access = localhost")...),
			diags: []string{`x.conf:7: no_access: error: "localhost" is a name: xinetd refuses every client whose reverse DNS name matches it, and sockd, which matches addresses only, could not refuse them all: list the addresses to refuse (/etc/hosts gives 127.0.0.1, ::1); service finger skipped`}},
		{name: "no_access domain", text: svc("finger", attrs("no_access = .example.com")...),
			diags: []string{`x.conf:7: no_access: error: ".example.com" is a name`}},
		{name: "redirect keeps its lists", text: svc("telnet", "socket_type = stream", "wait = no", "bind = 127.0.0.1", "redirect = 10.0.0.2 23",
			"only_from = 127.0.0.0/8 localhost", "no_access = 127.0.0.2"), label: "xinetd.telnet",
			check: func(t *testing.T, j *job.Job) {
				if j.Mode() != job.ModeProxy {
					t.Errorf("mode %v", j.Mode())
				}
				limitsAre([]string{"127.0.0.0/8", "127.0.0.1/32", "::1/128"}, []string{"127.0.0.2/32"})(t, j)
			}},
		{name: "internal dgram keeps its lists", text: svc("echo", "type = INTERNAL", "id = echo-dgram", "socket_type = dgram", "wait = yes", "only_from = 127.0.0.1"),
			label: "xinetd.echo-dgram", check: limitsAre([]string{"127.0.0.1/32"}, nil)},
	})
}

// TestXinetdUnenforceable: attributes sockd cannot enforce make the
// service an error, wherever they are given.
func TestXinetdUnenforceable(t *testing.T) {
	tftp := func(extra ...string) string {
		return svc("tftp", append([]string{"socket_type = dgram", "wait = yes", "user = nobody", "server = /usr/sbin/in.tftpd"}, extra...)...)
	}
	runAccessCases(t, []accessCase{
		{name: "access_times", text: svc("finger", attrs("access_times = 2:00-8:59")...),
			diags: []string{"x.conf:7: access_times: error: xinetd serves only within these hours; sockd has no time-of-day windows and would serve at any hour: remove access_times to serve at all hours; service finger skipped"}},
		{name: "max_load in defaults", text: "defaults\n{\nmax_load = 2.5\n}\n" + svc("finger", attrs()...),
			diags: []string{"x.conf:3: max_load: error: xinetd refuses clients while the load average is at or above it; sockd does not look at the load and would serve them: remove max_load to serve at any load; service finger skipped"}},
		{name: "IDONLY", text: svc("finger", attrs("flags = IDONLY")...),
			diags: []string{"x.conf:7: flags: error: IDONLY: xinetd serves only clients whose user an ident (RFC 1413) server names; sockd makes no ident queries, so it would serve everyone: remove the flag to serve everyone; service finger skipped"}},
		{name: "LABELED", text: svc("finger", attrs("flags = LABELED")...),
			diags: []string{"x.conf:7: flags: error: LABELED: xinetd runs the server in the SELinux context of the client's label; sockd does not, so the server would run with more rights: remove the flag, or confine the server in the policy; service finger skipped"}},
		{name: "INTERCEPT on wait = no is ignored, as by xinetd", text: svc("finger", attrs("flags = INTERCEPT")...), label: "xinetd.finger",
			diags: []string{"x.conf:7: flags: warning: INTERCEPT ignored, as xinetd ignores it for a wait = no service"}},
		{name: "INTERCEPT on wait = yes", text: tftp("flags = INTERCEPT"),
			diags: []string{"x.conf:7: flags: error: INTERCEPT: xinetd checks every client of the running server against the access rules; sockd hands the server its socket and sees no client: remove the flag, or set wait = no; service tftp skipped"}},
		{name: "only_from on wait = yes", text: tftp("only_from = 10.0.0.0/8"),
			diags: []string{"x.conf:7: only_from: error: cannot be enforced for a wait = yes service: sockd hands the socket to the server and never sees its clients (xinetd checks the first datagram's source): set wait = no, or restrict access in the server or a firewall; service tftp skipped"}},
		{name: "no_access from defaults on wait = yes", text: "defaults\n{\nno_access = 10.0.0.1\n}\n" + tftp(),
			diags: []string{"x.conf:3: no_access: error: cannot be enforced for a wait = yes service"}},
		{name: "wait = yes gets no SockdLimits", text: tftp("instances = 4", "per_source = 2", "cps = 5 1"), label: "xinetd.tftp",
			check: func(t *testing.T, j *job.Job) {
				if show(j.Limits) != show(job.Limits{MaxChildren: DefaultMaxChildren, Pause: DefaultPause}) {
					t.Errorf("limits %+v", j.Limits)
				}
				if data, _ := WritePlist(j); strings.Contains(string(data), "SockdLimits") {
					t.Errorf("SockdLimits written for a wait = yes job:\n%s", data)
				}
			},
			diags: []string{"x.conf:9: cps: warning: not applied to a wait = yes service: sockd starts its server again only once it has exited, and throttles one that exits leaving its request unread"}},
	})
}

// TestXinetdTCPWrappers: a service whose clients hosts.allow or
// hosts.deny can refuse is an error, unless NOLIBWRAP or tcpd.
func TestXinetdTCPWrappers(t *testing.T) {
	denyAllRule := testInfo(offlineHosts, "", "# comment\nALL: ALL\n")
	exceptFinger := testInfo(offlineHosts, "", "ALL EXCEPT in.fingerd: ALL\n")
	allowOnly := testInfo(offlineHosts, "in.fingerd: 10.0.0.0/8\n", "")
	allowOptions := testInfo(offlineHosts, "in.fingerd : ALL : \\\n  spawn /bin/echo %a\n", "")
	const msg = `x.conf:1: libwrap: error: /etc/hosts.deny:2 ("ALL: ALL") can refuse clients of this service: xinetd, built with TCP wrappers, checks hosts.allow and hosts.deny at every connection under the daemon name "in.fingerd", and sockd has no TCP wrappers; run the server through /usr/sbin/tcpd with flags = NAMEINARGS (tcpd checks them itself), or write the rule as only_from/no_access and add flags = NOLIBWRAP; service finger skipped`
	telnet := svc("telnet", "socket_type = stream", "wait = no", "user = root", "server = /usr/sbin/in.telnetd")
	runAccessCases(t, []accessCase{
		{name: "deny ALL", text: svc("finger", attrs()...), sys: denyAllRule, diags: []string{msg}},
		{name: "NOLIBWRAP", text: svc("finger", attrs("flags = NOLIBWRAP")...), sys: denyAllRule, label: "xinetd.finger"},
		{name: "through tcpd", text: svc("finger", "socket_type = stream", "wait = no", "user = nobody", "flags = NAMEINARGS",
			"server = /usr/sbin/tcpd", "server_args = /usr/sbin/in.fingerd"), sys: denyAllRule, label: "xinetd.finger"},
		{name: "EXCEPT spares the daemon", text: svc("finger", attrs()...), sys: exceptFinger, label: "xinetd.finger"},
		{name: "EXCEPT applies to the others", text: telnet, sys: exceptFinger,
			diags: []string{`x.conf:1: libwrap: error: /etc/hosts.deny:1 ("ALL EXCEPT in.fingerd: ALL") can refuse clients of this service`}},
		{name: "an allow rule alone refuses nobody", text: svc("finger", attrs()...), sys: allowOnly, label: "xinetd.finger"},
		{name: "an allow rule with options", text: svc("finger", attrs()...), sys: allowOptions,
			diags: []string{`x.conf:1: libwrap: error: /etc/hosts.allow:1 ("in.fingerd : ALL :   spawn /bin/echo %a") can refuse`}},
		{name: "libwrap names the daemon", text: svc("finger", attrs("libwrap = fingerd-ext")...), sys: testInfo(offlineHosts, "", "fingerd-ext: 10.0.0.0/8\n"),
			diags: []string{`x.conf:7: libwrap: error: /etc/hosts.deny:1 ("fingerd-ext: 10.0.0.0/8") can refuse clients of this service: xinetd, built with TCP wrappers, checks hosts.allow and hosts.deny at every connection under the daemon name "fingerd-ext"`}},
		{name: "redirect goes by the service name", text: svc("telnet", "socket_type = stream", "wait = no", "redirect = 10.0.0.2 23"),
			sys:   testInfo(offlineHosts, "", "telnet@127.0.0.1: ALL\n"),
			diags: []string{`x.conf:1: libwrap: error: /etc/hosts.deny:1 ("telnet@127.0.0.1: ALL") can refuse clients of this service: xinetd, built with TCP wrappers, checks hosts.allow and hosts.deny at every connection under the daemon name "telnet",`}},
	})
}

// TestInetdTCPWrappers: inetd applies the tables only with -l, which
// inetd.conf does not show: a warning names the rule; tcpd applies them
// itself; wait entries get no SockdLimits.
func TestInetdTCPWrappers(t *testing.T) {
	sys := testInfo(offlineHosts, "", "in.fingerd: ALL\n")
	jobs, diags := parseInetd([]byte("finger stream tcp nowait nobody /usr/sbin/in.fingerd in.fingerd\n"+
		"telnet stream tcp nowait root /usr/sbin/tcpd /usr/sbin/in.fingerd\n"+
		"tftp dgram udp wait.20 nobody /usr/sbin/in.tftpd in.tftpd\n"), "t.conf", sys)
	wantDiags(t, diagStrings(diags, ""),
		`t.conf:1: server: warning: /etc/hosts.deny:1 ("in.fingerd: ALL") can refuse clients of in.fingerd, but only an inetd run with -l (Debian) or -w (FreeBSD) applied it, and sockd has no TCP wrappers: if yours did, put /usr/sbin/tcpd before the server (it applies the rule itself)`)
	if len(jobs) != 3 || len(diags) != 1 {
		t.Errorf("jobs %v diags %v", labels(jobs), diags)
	}
	if tftp := findJob(t, jobs, "inetd.tftp.udp"); show(tftp.Limits) != show(job.Limits{MaxChildren: DefaultMaxChildren, Pause: DefaultPause}) {
		t.Errorf("wait entry limits %+v", tftp.Limits)
	}
}

// TestXinetdPassenvNotBaked: passenv writes nothing from the environment of
// whoever imports or converts the file.
func TestXinetdPassenvNotBaked(t *testing.T) {
	const odd = "/tmp/odd-dir-xyz"
	t.Setenv("PATH", odd+":/usr/bin")
	t.Setenv("SOCKD_SECRET", "s3cret")
	dir := t.TempDir()
	p := filepath.Join(dir, "svc")
	if err := os.WriteFile(p, []byte(svc("finger", attrs("passenv = PATH SOCKD_SECRET", "env = LANG=C")...)), 0o644); err != nil {
		t.Fatal(err)
	}
	jobs, diags := LoadXinetd(p)
	if len(jobs) != 1 || diags.HasErrors() {
		t.Fatalf("jobs %v diags %v", labels(jobs), diags)
	}
	j := jobs[0]
	if show(j.EnvironmentVariables) != show([]job.EnvVar{ev("LANG", "C")}) {
		t.Errorf("environment %+v", j.EnvironmentVariables)
	}
	data, err := WritePlist(j)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), odd) || strings.Contains(string(data), "s3cret") {
		t.Errorf("the converter's environment is in the job file:\n%s", data)
	}
	wantDiags(t, diagStrings(diags, dir+"/"), "svc:7: passenv: warning: xinetd passes the server only PATH SOCKD_SECRET of its environment; sockd writes no value into the job and passes its whole environment when it starts the server (less LISTEN_*, LAUNCH_*, NOTIFY_SOCKET and the connection variables; it cannot withhold the others)")
}

func TestWrapRulesParse(t *testing.T) {
	rules := parseWrapRules([]byte("# c\n\nsshd, in.fingerd : 10.0.0.0/8 : deny\nno colon here\nALL : [::1]/128\n"), "a", false)
	if len(rules) != 2 || rules[0].line != 3 || !rules[0].options || !eq(rules[0].daemons, []string{"sshd", "in.fingerd"}) ||
		rules[1].options || rules[1].line != 5 {
		t.Errorf("rules %+v", rules)
	}
	for _, tc := range []struct {
		list   string
		daemon string
		want   bool
	}{
		{"ALL", "x", true}, {"in.fingerd", "IN.FINGERD", true}, {"in.", "in.fingerd", true}, {".fingerd", "in.fingerd", true}, {".d", "in.fingerd", false},
		{"in.*", "in.fingerd", true}, {"sshd", "in.fingerd", false}, {"ALL EXCEPT in.fingerd", "in.fingerd", false},
		{"ALL EXCEPT in.fingerd@10.0.0.1", "in.fingerd", true}, {"in.fingerd@10.0.0.1", "in.fingerd", true},
		{"ALL EXCEPT in.* EXCEPT in.fingerd", "in.fingerd", true}, {"EXCEPT ALL", "x", false},
	} {
		if got := daemonListMatches(strings.Fields(tc.list), tc.daemon, true); got != tc.want {
			t.Errorf("%q for %s: %v, want %v", tc.list, tc.daemon, got, tc.want)
		}
	}
}

func TestHostsTable(t *testing.T) {
	h := parseHosts([]byte(offlineHosts + "bad line\n10.0.0.1 A b # c\n::ffff:10.0.0.2 mapped\n"))
	if got := joinAddrs(h.addrs("LOCALHOST")); got != "127.0.0.1, ::1" {
		t.Errorf("localhost: %s", got)
	}
	if h.canonical(h.addrs("b")[0]) != "A" || h.canonical(h.addrs("mapped")[0]) != "mapped" || h.addrs("mapped")[0].Is6() {
		t.Errorf("canonical names wrong: %+v", h.entries)
	}
	if len(h.addrs("nosuch")) != 0 || h.canonical(netip.MustParseAddr("192.0.2.99")) != "" {
		t.Error("unknown names resolve")
	}
}

// TestInternalDatagramLimits: an internal datagram service gets no
// MaxChildren or MaxPerSource, which a job file may not set for it (inetd
// and xinetd count nothing for it either), and its converted job file
// loads; the attributes the service sets itself draw a warning.
func TestInternalDatagramLimits(t *testing.T) {
	runAccessCases(t, []accessCase{
		{name: "xinetd instances and per_source", label: "xinetd.echo-dgram",
			text: svc("echo", "type = INTERNAL", "id = echo-dgram", "socket_type = dgram", "wait = yes", "instances = 5", "per_source = 2"),
			check: func(t *testing.T, j *job.Job) {
				if j.Limits.MaxChildren != DefaultMaxChildren || j.Limits.MaxPerSource != 0 || j.Limits.Rate == 0 {
					t.Errorf("limits %+v", j.Limits)
				}
			},
			diags: []string{"x.conf:7: instances: warning: not applied: xinetd answers an internal datagram service itself",
				"x.conf:8: per_source: warning: not applied"}},
	})
	jobs, diags := parseInetdTest(t, "echo dgram udp wait/5/10/2 root internal\n")
	if len(jobs) != 1 {
		t.Fatalf("jobs %v\n%s", labels(jobs), strings.Join(diags, "\n"))
	}
	if l := jobs[0].Limits; l.MaxChildren != DefaultMaxChildren || l.MaxPerSource != 0 {
		t.Errorf("inetd: limits %+v", l)
	}
	roundTrip(t, jobs[0])
}
