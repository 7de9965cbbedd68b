package compat

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sockd/sockd/job"
)

// corpusCase is what loading one corpus path must give.
type corpusCase struct {
	path         string // relative to the corpus root
	xinetd       bool
	jobs         int
	errs, warns  int
	diags        []string // exact diag strings (corpus root trimmed)
	covers       []string // further files read through includes
	labels       []string // some labels that must be there
	firstJobEps  []string // endpoints of labels[0]
	disabledJobs int
	records      bool // every job gets SockdLogConnections (log_on_success / log_on_failure)
}

var corpusCases = []corpusCase{
	{path: "inetd/4.4bsd--etc-inetd.conf", jobs: 21, errs: 1,
		diags:  []string{`inetd/4.4bsd--etc-inetd.conf:30: service: error: service "eklogin" is not in /etc/services for tcp; skipped`},
		labels: []string{"inetd.ftp.tcp", "inetd.echo.udp", "inetd.kshell.tcp"}, firstJobEps: []string{"tcp6 [::]:21", "tcp4 0.0.0.0:21"}},
	{path: "inetd/apple-samba--Solaris-inetd.conf.master", errs: 1,
		diags: []string{`inetd/apple-samba--Solaris-inetd.conf.master:1: service: error: service "swat" is not in /etc/services for tcp; skipped`}},
	{path: "inetd/apple-xinetd--inetd.conf"},
	{path: "inetd/debian-amanda-client--inetd.conf.amandaclient", jobs: 1,
		labels: []string{"inetd.amanda.tcp"}, firstJobEps: []string{"tcp6 [::]:10080", "tcp4 0.0.0.0:10080"}},
	{path: "inetd/debian-inetutils-inetd--default-inetd.conf"},
	{path: "inetd/debian-openbsd-inetd--default-inetd.conf"},
	{path: "inetd/dgl-nethack--inetd.conf", jobs: 1, labels: []string{"inetd.telnet.tcp"}},
	{path: "inetd/docker-dos-bbs--inetd.conf", jobs: 1, labels: []string{"inetd.23.tcp"}, firstJobEps: []string{"tcp6 [::]:23", "tcp4 0.0.0.0:23"}},
	{path: "inetd/freebsd--usr.sbin-inetd-inetd.conf"},
	{path: "inetd/kobo-busybox--inetd.conf", jobs: 3, labels: []string{"inetd.21.tcp", "inetd.23.tcp", "inetd.ssh.tcp"}},
	{path: "inetd/netbsd--etc-inetd.conf", jobs: 18, warns: 3,
		diags: []string{
			`inetd/netbsd--etc-inetd.conf:39: protocol: warning: RPC services are not supported (rstatd/1-3 rpc/udp); skipped`,
			`inetd/netbsd--etc-inetd.conf:41: protocol: warning: RPC services are not supported (walld/1 rpc/udp); skipped`,
		},
		labels: []string{"inetd.ident.tcp", "inetd.time.udp"}},
	{path: "inetd/nrpe--default-inetd.in"},
	{path: "inetd/openbsd--etc-inetd.conf", jobs: 4, warns: 1,
		diags:  []string{`inetd/openbsd--etc-inetd.conf:25: protocol: warning: tcp taken as IPv4 only because line 26 declares the same service on tcp6 (the BSD meaning; alone, tcp means IPv6 and IPv4 as in Debian's openbsd-inetd)`},
		labels: []string{"inetd.comsat.udp@127.0.0.1", "inetd.comsat.udp6@::1", "inetd.daytime.tcp", "inetd.daytime.tcp6"}, firstJobEps: []string{"udp4 127.0.0.1:512"}},
	{path: "inetd/pfsense--etc-inetd.conf", errs: 1,
		diags: []string{`inetd/pfsense--etc-inetd.conf:1: service: error: service "tftp-proxy" is not in /etc/services for udp; skipped`}},
	{path: "inetd/raspbian-etc--inetd.conf", jobs: 1, errs: 1,
		diags:  []string{`inetd/raspbian-etc--inetd.conf:40: service: error: service "eklogin" is not in /etc/services for tcp; skipped`},
		labels: []string{"inetd.kshell.tcp"}},

	{path: "xinetd/apple-xinetd/xinetd.conf", xinetd: true, jobs: 19, warns: 6, disabledJobs: 19,
		covers: []string{"auth", "bootps", "chargen", "chargen-udp", "comsat", "daytime", "daytime-udp", "echo", "echo-udp",
			"exec", "finger", "ftp", "login", "ntalk", "shell", "telnet", "tftp", "time", "time-udp"},
		diags: []string{
			`xinetd/apple-xinetd/xinetd.conf:6: log_type: warning: not honoured: sockd logs through its own logger`,
			`xinetd/apple-xinetd/xinetd.d/chargen-udp:1: port: warning: service chargen-udp is not in /etc/services; using the port of chargen (19)`,
			`xinetd/apple-xinetd/xinetd.d/tftp:3: cps: warning: not applied to a wait = yes service: sockd starts its server again only once it has exited, and throttles one that exits leaving its request unread`,
		},
		labels: []string{"xinetd.auth", "xinetd.chargen-dgram", "xinetd.tftp"}, firstJobEps: []string{"tcp6 [::]:113", "tcp4 0.0.0.0:113"}},
	{path: "xinetd/debian-xinetd/xinetd.conf", xinetd: true, jobs: 10, warns: 7, disabledJobs: 10,
		covers: []string{"chargen", "chargen-udp", "daytime", "daytime-udp", "discard", "discard-udp", "echo", "echo-udp",
			"servers", "services", "time", "time-udp"},
		diags: []string{
			`xinetd/debian-xinetd/xinetd.d/servers:4: type: warning: internal service "servers" is not provided by sockd (it serves echo, discard, chargen, daytime and time); service servers skipped (the service is disabled)`,
			`xinetd/debian-xinetd/xinetd.d/chargen-udp:4: id: warning: duplicate service id chargen-dgram (first at xinetd/debian-xinetd/xinetd.d/chargen:19); this disabled one is dropped`,
		},
		labels: []string{"xinetd.chargen-stream", "xinetd.chargen-dgram", "xinetd.time-dgram"}, firstJobEps: []string{"tcp4 0.0.0.0:19"}},
	// The sample's defaults give every service an only_from, which sockd
	// cannot enforce for its wait = yes services; IDONLY and access_times
	// cannot be enforced either.
	{path: "xinetd/opensuse-xinetd/sample.conf", xinetd: true, jobs: 15, errs: 7, warns: 11,
		diags: []string{
			`xinetd/opensuse-xinetd/sample.conf:11: only_from: warning: host name "localhost" is 127.0.0.1/32, ::1/128 in /etc/hosts`,
			`xinetd/opensuse-xinetd/sample.conf:11: only_from: error: cannot be enforced for a wait = yes service: sockd hands the socket to the server and never sees its clients (xinetd checks the first datagram's source): set wait = no, or restrict access in the server or a firewall; service comsat skipped`,
			`xinetd/opensuse-xinetd/sample.conf:40: flags: error: IDONLY: xinetd serves only clients whose user an ident (RFC 1413) server names; sockd makes no ident queries, so it would serve everyone: remove the flag to serve everyone; service shell skipped`,
			`xinetd/opensuse-xinetd/sample.conf:115: access_times: error: xinetd serves only within these hours; sockd has no time-of-day windows and would serve at any hour: remove access_times to serve at all hours; service ftp skipped`,
			`xinetd/opensuse-xinetd/sample.conf:126: port: error: service "name" is not in /etc/services for udp; add port (and type = UNLISTED); service name skipped`,
			`xinetd/opensuse-xinetd/sample.conf:278: type: warning: RPC services are not supported; service rstatd skipped`,
			`xinetd/opensuse-xinetd/sample.conf:342: flags: error: SENSOR services are not supported (xinetd would also refuse the clients that touch it, for deny_time, on every service; sockd keeps no such list); service irc skipped`,
		},
		labels: []string{"xinetd.telnet@127.0.0.1", "xinetd.telnet@192.231.139.175", "xinetd.systat"}, firstJobEps: []string{"tcp4 127.0.0.1:23"}},
	{path: "xinetd/opensuse-xinetd/xinetd.conf", xinetd: true, errs: 1, warns: 1,
		diags: []string{`xinetd/opensuse-xinetd/xinetd.conf:21: log_type: warning: not honoured: sockd logs through its own logger`}},
	{path: "xinetd/checkmk/xinetd.conf", xinetd: true, jobs: 1,
		labels: []string{"xinetd.check-mk-agent"}, firstJobEps: []string{"tcp4 0.0.0.0:6556"}},
	{path: "xinetd/debian-amanda-client/xinetd.amandaclient", xinetd: true, jobs: 1,
		labels: []string{"xinetd.amanda"}, firstJobEps: []string{"tcp4 0.0.0.0:10080"}},
	{path: "xinetd/debian-cfingerd/cfingerd.xinetd", xinetd: true, jobs: 1, warns: 1, records: true,
		diags:  []string{`xinetd/debian-cfingerd/cfingerd.xinetd:10: log_type: warning: not honoured: sockd logs through its own logger`},
		labels: []string{"xinetd.finger"}, firstJobEps: []string{"tcp6 [::]:79", "tcp4 0.0.0.0:79"}},
	{path: "xinetd/debian-fingerd/finger.xinetd", xinetd: true, jobs: 1, warns: 1,
		diags:  []string{`xinetd/debian-fingerd/finger.xinetd:11: log_type: warning: not honoured: sockd logs through its own logger`},
		labels: []string{"xinetd.finger"}},
	{path: "xinetd/debian-vsftpd/vsftpd.xinetd", xinetd: true, jobs: 1, warns: 1, records: true,
		diags:  []string{`xinetd/debian-vsftpd/vsftpd.xinetd:12: banner_fail: warning: not honoured: sockd sends no banners`},
		labels: []string{"xinetd.ftp"}},
	{path: "xinetd/nrpe/default-xinetd.in", xinetd: true, warns: 2,
		diags: []string{
			`xinetd/nrpe/default-xinetd.in:7: port: warning: "@nrpe_port@" is not a port number (1-65535); service nrpe skipped (the service is disabled)`,
			`xinetd/nrpe/default-xinetd.in:11: server: warning: server path "@sbindir@/nrpe" is not absolute; sockd runs it relative to its working directory (no PATH search)`,
		}},
	{path: "xinetd/rsync-upstream/rsync.xinetd", xinetd: true, jobs: 1, warns: 1, disabledJobs: 1, records: true,
		diags:  []string{`xinetd/rsync-upstream/rsync.xinetd:12: log_on_failure: warning: USERID: not honoured: sockd makes no ident (RFC 1413) lookups`},
		labels: []string{"xinetd.rsync"}},
}

func TestCorpus(t *testing.T) {
	root := corpusRoot(t)
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("corpus: %v", err)
	}
	covered := map[string]bool{}
	for _, c := range corpusCases {
		t.Run(c.path, func(t *testing.T) {
			p := filepath.Join(root, c.path)
			covered[c.path] = true
			for _, f := range c.covers {
				covered[filepath.Join(filepath.Dir(c.path), "xinetd.d", f)] = true
			}
			var jobs []*job.Job
			var diags job.Diags
			if c.xinetd {
				jobs, diags = loadXinetd(p, XinetdOptions{Relocate: true, Files: corpusFiles}, offlineInfo())
			} else {
				jobs, diags = loadInetd(p, corpusFiles, offlineInfo())
			}
			got := diagStrings(diags, root+string(filepath.Separator))
			if len(jobs) != c.jobs {
				t.Errorf("%d jobs %v, want %d", len(jobs), labels(jobs), c.jobs)
			}
			if e, w := countSev(diags); e != c.errs || w != c.warns {
				t.Errorf("%d errors and %d warnings, want %d and %d:\n  %s", e, w, c.errs, c.warns, strings.Join(got, "\n  "))
			}
			wantDiags(t, got, c.diags...)
			for i, l := range c.labels {
				j := findJob(t, jobs, l)
				if i == 0 && c.firstJobEps != nil && !eq(endpoints(j), c.firstJobEps) {
					t.Errorf("%s endpoints %v, want %v", l, endpoints(j), c.firstJobEps)
				}
			}
			dis := 0
			for _, j := range jobs {
				if j.Disabled {
					dis++
				}
				checkJobInvariants(t, j)
				if c.records && !j.LogConnections {
					t.Errorf("%s: log_on_success/log_on_failure did not turn on SockdLogConnections", j.Label)
				}
			}
			if dis != c.disabledJobs {
				t.Errorf("%d disabled jobs, want %d", dis, c.disabledJobs)
			}
		})
	}
	// Every corpus file must be covered by the table.
	for _, dir := range []string{"inetd", "xinetd"} {
		filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if !covered[rel] {
				t.Errorf("corpus file %s is not in the test table", rel)
			}
			return nil
		})
	}
}

var labelRE = regexp.MustCompile(`^(inetd|xinetd)\.\S+$`)

// checkJobInvariants checks what every imported job must satisfy.
func checkJobInvariants(t *testing.T, j *job.Job) {
	t.Helper()
	if !labelRE.MatchString(j.Label) || !strings.HasPrefix(j.Label, j.Source+".") {
		t.Errorf("label %q / source %q", j.Label, j.Source)
	}
	if !regexp.MustCompile(`:\d+$`).MatchString(j.File) {
		t.Errorf("%s: File %q is not PATH:LINE", j.Label, j.File)
	}
	if len(j.Sockets) != 1 || len(j.Endpoints()) == 0 {
		t.Errorf("%s: sockets %+v", j.Label, j.Sockets)
	}
	for _, e := range j.Endpoints() {
		if e.Socket == nil || e.Group != j.Sockets[0].Name || !e.Passive || e.Key == "" {
			t.Errorf("%s: endpoint not linked: %+v", j.Label, e)
		}
	}
	switch {
	case j.Internal != "":
		if j.Path != "" || j.Inetd != nil || j.Mode() != job.ModeInternal {
			t.Errorf("%s: internal job with Path %q Inetd %v", j.Label, j.Path, j.Inetd)
		}
	case j.Proxy != nil:
		if j.Path != "" || j.Mode() != job.ModeProxy {
			t.Errorf("%s: proxy job with Path %q", j.Label, j.Path)
		}
	default:
		if j.Path == "" || j.Path != j.Program || len(j.Argv) == 0 || j.Inetd == nil {
			t.Errorf("%s: program job: Path %q Program %q Argv %v Inetd %v", j.Label, j.Path, j.Program, j.Argv, j.Inetd)
		}
	}
	if j.ThrottleInterval != job.DefaultThrottleInterval || j.ExitTimeOut != job.DefaultExitTimeOut ||
		j.TimeOut != job.DefaultTimeOut || j.Limits.MaxChildren < 1 || j.Limits.Pause <= 0 {
		t.Errorf("%s: defaults not filled: %+v", j.Label, j)
	}
}

// TestCorpusCommentedEntries imports the entries the corpus ships
// commented out, which carry most of the syntax variants (FreeBSD limits,
// user:group, tcp/tcp6 pairs, RPC and internal services with arguments).
func TestCorpusCommentedEntries(t *testing.T) {
	root := corpusRoot(t)
	entry := regexp.MustCompile(`^#[ \t]*(\S+\s+(stream|dgram|raw|seqpacket)\s.*)$`)
	uncomment := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(root, "inetd", name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			if m := entry.FindStringSubmatch(l); m != nil {
				lines[i] = m[1]
			}
		}
		return []byte(strings.Join(lines, "\n"))
	}
	jobs, diags := parseInetd(uncomment("freebsd--usr.sbin-inetd-inetd.conf"), "freebsd", offlineInfo())
	got := diagStrings(diags, "")
	wantDiags(t, got,
		`freebsd:18: wait: warning: max-connections-per-ip-per-minute 10 approximated as at most 10 concurrent connections per source address (sockd has no per-source rate)`,
		`freebsd:65: protocol: warning: RPC services are not supported (rstatd/1-3 rpc/udp); skipped`,
		`freebsd:91: server: error: internal service "auth" is not provided by sockd (it serves echo, discard, chargen, daytime and time); skipped`,
	)
	f := findJob(t, jobs, "inetd.finger.tcp")
	if f.Limits.MaxChildren != 3 || f.Limits.MaxPerSource != 10 || !eq(endpoints(f), []string{"tcp4 0.0.0.0:79"}) {
		t.Errorf("finger: limits %+v endpoints %v", f.Limits, endpoints(f))
	}
	c := findJob(t, jobs, "inetd.comsat.udp")
	if c.UserName != "tty" || c.GroupName != "tty" || !c.Inetd.Wait {
		t.Errorf("comsat: user %q group %q inetd %+v", c.UserName, c.GroupName, c.Inetd)
	}
	if e, _ := countSev(diags); e == 0 || len(jobs) < 40 {
		t.Errorf("%d jobs, %d errors:\n%s", len(jobs), e, strings.Join(got, "\n"))
	}

	jobs, diags = parseInetd(uncomment("apple-xinetd--inetd.conf"), "apple", offlineInfo())
	tftp := findJob(t, jobs, "inetd.tftp.udp")
	if !eq(tftp.Argv, []string{"tftpd", "/private/tftpboot"}) || tftp.Path != "/usr/libexec/tcpd" {
		t.Errorf("tftp: path %q argv %v", tftp.Path, tftp.Argv)
	}
	_ = diags
}
