package compat

import (
	"strings"
	"testing"
	"time"

	"github.com/sockd/sockd/job"
)

// parseInetdTest parses text offline under the name "t.conf".
func parseInetdTest(t *testing.T, text string) ([]*job.Job, []string) {
	t.Helper()
	jobs, diags := parseInetd([]byte(text), "t.conf", offlineInfo())
	return jobs, diagStrings(diags, "")
}

func TestInetdForms(t *testing.T) {
	defRate := 256.0 / 60
	tests := []struct {
		name, text string
		label      string
		eps        []string
		argv       []string
		path       string
		user, grp  string
		wait       *bool // nil: Inetd must be nil
		internal   string
		limits     job.Limits
		diags      []string
		file       string
	}{
		{name: "plain tcp is both families", text: "ftp stream tcp nowait root /usr/sbin/ftpd ftpd -l\n",
			label: "inetd.ftp.tcp", eps: []string{"tcp6 [::]:21", "tcp4 0.0.0.0:21"}, argv: []string{"ftpd", "-l"},
			path: "/usr/sbin/ftpd", user: "root", wait: ptr(false), file: "t.conf:1",
			limits: job.Limits{MaxChildren: 256, Rate: defRate, Burst: 256, Pause: 5 * time.Second}},
		{name: "tcp4", text: "telnet stream tcp4 nowait root /bin/t t", label: "inetd.telnet.tcp4", eps: []string{"tcp4 0.0.0.0:23"}},
		{name: "tcp6", text: "telnet stream tcp6 nowait root /bin/t t", label: "inetd.telnet.tcp6", eps: []string{"tcp6 [::]:23"}},
		{name: "udp", text: "tftp dgram udp wait nobody /usr/sbin/in.tftpd in.tftpd -s /srv", label: "inetd.tftp.udp",
			eps: []string{"udp6 [::]:69", "udp4 0.0.0.0:69"}, wait: ptr(true), user: "nobody"},
		{name: "udp4", text: "tftp dgram udp4 wait root /bin/t t", label: "inetd.tftp.udp4", eps: []string{"udp4 0.0.0.0:69"}},
		{name: "udp6", text: "tftp dgram udp6 wait root /bin/t t", label: "inetd.tftp.udp6", eps: []string{"udp6 [::]:69"}},
		{name: "tcp46", text: "ssh stream tcp46 nowait root /bin/s s", label: "inetd.ssh.tcp46", eps: []string{"tcp6 [::]:22", "tcp4 0.0.0.0:22"}},
		{name: "numeric service", text: "2323 stream tcp nowait root /bin/s s", label: "inetd.2323.tcp", eps: []string{"tcp6 [::]:2323", "tcp4 0.0.0.0:2323"}},
		{name: "v4 host prefix", text: "127.0.0.1:comsat dgram udp wait root /usr/libexec/comsat comsat",
			label: "inetd.comsat.udp@127.0.0.1", eps: []string{"udp4 127.0.0.1:512"}},
		{name: "v6 host prefix", text: "[::1]:comsat dgram udp6 wait root /usr/libexec/comsat comsat",
			label: "inetd.comsat.udp6@::1", eps: []string{"udp6 [::1]:512"}},
		{name: "host list and name", text: "127.0.0.2,localhost:echo stream tcp nowait root internal",
			label: "inetd.echo.tcp@127.0.0.2,localhost", eps: []string{"tcp4 127.0.0.2:7", "tcp6 [::1]:7", "tcp4 127.0.0.1:7"}, internal: "echo"},
		{name: "star prefix", text: "*:echo stream tcp nowait root internal", label: "inetd.echo.tcp", eps: []string{"tcp6 [::]:7", "tcp4 0.0.0.0:7"}, internal: "echo"},
		{name: "host line sets default", text: "127.0.0.1:\necho stream tcp nowait root internal\n*:\ndiscard stream tcp nowait root internal\n",
			label: "inetd.echo.tcp", eps: []string{"tcp4 127.0.0.1:7"}, file: "t.conf:2", internal: "echo"},
		{name: "unix", text: "/run/foo.sock stream unix nowait root /bin/cat cat", label: "inetd./run/foo.sock.unix", eps: []string{"unix /run/foo.sock"}},
		{name: "unix dgram", text: "/run/log.sock dgram unix wait root /bin/cat cat", label: "inetd./run/log.sock.unix", eps: []string{"unixgram /run/log.sock"}},
		{name: "unix seqpacket", text: "/run/p.sock seqpacket unix nowait root /bin/cat cat", label: "inetd./run/p.sock.unix", eps: []string{"unixpacket /run/p.sock"}},
		{name: "nowait.max is per minute", text: "swat stream tcp nowait.400 root /usr/sbin/swat swat\n", label: "",
			diags: []string{`t.conf:1: service: error: service "swat" is not in /etc/services for tcp; skipped`}},
		{name: "nowait.max", text: "ftp stream tcp nowait.400 root /bin/f f", label: "inetd.ftp.tcp",
			limits: job.Limits{MaxChildren: 256, Rate: 400.0 / 60, Burst: 400, Pause: 5 * time.Second}},
		{name: "wait.0 no rate limit", text: "ftp stream tcp wait.0 root /bin/f f", label: "inetd.ftp.tcp", wait: ptr(true),
			limits: job.Limits{MaxChildren: 256, Pause: 5 * time.Second}},
		{name: "freebsd max-child", text: "finger stream tcp nowait/3 nobody /usr/libexec/fingerd fingerd -s", label: "inetd.finger.tcp",
			limits: job.Limits{MaxChildren: 3, Rate: defRate, Burst: 256, Pause: 5 * time.Second}},
		{name: "freebsd per-ip per minute", text: "finger stream tcp nowait/3/10 nobody /usr/libexec/fingerd fingerd -s", label: "inetd.finger.tcp",
			limits: job.Limits{MaxChildren: 3, MaxPerSource: 10, Rate: defRate, Burst: 256, Pause: 5 * time.Second},
			diags:  []string{"t.conf:1: wait: warning: max-connections-per-ip-per-minute 10 approximated as at most 10 concurrent connections per source address (sockd has no per-source rate)"}},
		{name: "freebsd child per ip", text: "finger stream tcp nowait/0/10/2 nobody /usr/libexec/fingerd fingerd", label: "inetd.finger.tcp",
			limits: job.Limits{MaxChildren: Unlimited, MaxPerSource: 2, Rate: defRate, Burst: 256, Pause: 5 * time.Second},
			diags:  []string{"t.conf:1: wait: warning: max-connections-per-ip-per-minute 10 is not honoured (sockd limits concurrent connections per source, set from max-child-per-ip 2)"}},
		{name: "netbsd accept filter", text: "ftp stream tcp nowait:dataready root /bin/f f", label: "inetd.ftp.tcp",
			diags: []string{`t.conf:1: wait: warning: accept filter "dataready" is not honoured`}},
		{name: "user:group", text: "comsat dgram udp wait tty:tty /usr/libexec/comsat comsat", label: "inetd.comsat.udp", user: "tty", grp: "tty"},
		{name: "user.group", text: "ident stream tcp wait nobody.kmem /usr/libexec/identd identd -w", label: "inetd.ident.tcp", user: "nobody", grp: "kmem", wait: ptr(true)},
		{name: "login class", text: "ftp stream tcp nowait root:wheel/daemon /bin/f f", label: "inetd.ftp.tcp", user: "root", grp: "wheel",
			diags: []string{`t.conf:1: user: warning: login class "daemon" is not honoured`}},
		{name: "internal", text: "daytime stream tcp nowait root internal", label: "inetd.daytime.tcp", internal: "daytime", argv: []string{}, path: ""},
		{name: "internal by port number", text: "19 dgram udp wait root internal", label: "inetd.19.udp", internal: "chargen"},
		{name: "internal with args", text: "echo stream tcp nowait root internal -x", label: "inetd.echo.tcp", internal: "echo",
			diags: []string{"t.conf:1: arguments: warning: arguments of internal service echo are ignored: -x"}},
		{name: "no args", text: "ftp stream tcp nowait root /usr/sbin/ftpd", label: "inetd.ftp.tcp", argv: []string{"/usr/sbin/ftpd"},
			diags: []string{"t.conf:1: arguments: warning: no arguments: argv[0] will be the server path"}},
		{name: "tcpd wrapper argv0", text: "telnet stream tcp nowait root /usr/sbin/tcpd /usr/sbin/in.telnetd -h", label: "inetd.telnet.tcp",
			path: "/usr/sbin/tcpd", argv: []string{"/usr/sbin/in.telnetd", "-h"}},
		{name: "relative server", text: "ftp stream tcp nowait root __BASEDIR__/ftpd ftpd", label: "inetd.ftp.tcp",
			diags: []string{`t.conf:1: server: warning: server path "__BASEDIR__/ftpd" is not absolute; sockd runs it relative to its working directory (no PATH search)`}},
		{name: "continuation line", text: "ftp stream tcp nowait root /usr/sbin/ftpd\n\tftpd -l\n", label: "inetd.ftp.tcp", argv: []string{"ftpd", "-l"}},
		{name: "comments, markers and CRLF", text: "#:STANDARD: Standard services\n## two\n\n   \r\n# ftp stream tcp nowait root /x x\r\nftp stream tcp nowait root /bin/f f\r\n",
			label: "inetd.ftp.tcp", file: "t.conf:6", argv: []string{"f"}},
		{name: "no final newline", text: "ftp\tstream  tcp\tnowait root /bin/f f -a", label: "inetd.ftp.tcp", argv: []string{"f", "-a"}},
		{name: "buffer options", text: "ftp stream tcp,rcvbuf=64k nowait root /bin/f f", label: "inetd.ftp.tcp",
			diags: []string{`t.conf:1: protocol: warning: socket buffer options "rcvbuf=64k" are not honoured`}},
		{name: "tcp6 twin", text: "daytime stream tcp nowait root internal\ndaytime stream tcp6 nowait root internal\n",
			label: "inetd.daytime.tcp", eps: []string{"tcp4 0.0.0.0:13"}, internal: "daytime",
			diags: []string{"t.conf:1: protocol: warning: tcp taken as IPv4 only because line 2 declares the same service on tcp6 (the BSD meaning; alone, tcp means IPv6 and IPv4 as in Debian's openbsd-inetd)"}},
		// Entries that are skipped.
		{name: "rpc", text: "rstatd/1-3 dgram rpc/udp wait root /usr/libexec/rpc.rstatd rpc.rstatd",
			diags: []string{"t.conf:1: protocol: warning: RPC services are not supported (rstatd/1-3 rpc/udp); skipped"}},
		{name: "raw", text: "x raw tcp nowait root /bin/x x", diags: []string{"t.conf:1: socket type: warning: socket type raw is not supported; skipped"}},
		{name: "rdm", text: "x rdm tcp nowait root /bin/x x", diags: []string{"t.conf:1: socket type: warning: socket type rdm is not supported; skipped"}},
		{name: "bad socket type", text: "ftp streem tcp nowait root /bin/x x",
			diags: []string{`t.conf:1: socket type: error: unknown socket type "streem" (want stream, dgram or seqpacket); skipped`}},
		{name: "bad protocol", text: "ftp stream sctp nowait root /bin/x x",
			diags: []string{`t.conf:1: protocol: error: unknown protocol "sctp" (want tcp, tcp4, tcp6, udp, udp4, udp6, unix or rpc/*); skipped`}},
		{name: "type mismatch", text: "ftp dgram tcp nowait root /bin/x x",
			diags: []string{"t.conf:1: protocol: error: protocol tcp does not go with socket type dgram; skipped"}},
		{name: "unknown service", text: "nosuchsvc stream tcp nowait root /bin/x x",
			diags: []string{`t.conf:1: service: error: service "nosuchsvc" is not in /etc/services for tcp; skipped`}},
		{name: "bad wait", text: "ftp stream tcp maybe root /bin/x x", diags: []string{`t.conf:1: wait: error: "maybe": want wait or nowait; skipped`}},
		{name: "bad max", text: "ftp stream tcp nowait.x root /bin/x x",
			diags: []string{`t.conf:1: wait: error: "nowait.x": the invocation limit after the dot must be a non-negative number; skipped`}},
		{name: "too few fields", text: "ftp stream tcp nowait root",
			diags: []string{"t.conf:1: error: expected at least 6 fields (service, socket type, protocol, wait/nowait, user, server), found 5; skipped"}},
		{name: "unknown internal", text: "auth stream tcp nowait root internal",
			diags: []string{`t.conf:1: server: error: internal service "auth" is not provided by sockd (it serves echo, discard, chargen, daytime and time); skipped`}},
		{name: "relative unix path", text: "foo.sock stream unix nowait root /bin/x x",
			diags: []string{`t.conf:1: service: error: unix socket path "foo.sock" is not absolute; skipped`}},
		{name: "host family mismatch", text: "127.0.0.1:ftp stream tcp6 nowait root /bin/x x",
			diags: []string{"t.conf:1: service: error: address 127.0.0.1 does not match family IPv6; skipped"}},
		{name: "unresolvable host", text: "nosuchhost.invalid:ftp stream tcp nowait root /bin/x x",
			diags: []string{`t.conf:1: service: error: host "nosuchhost.invalid": lookup nosuchhost.invalid: no network lookups here; skipped`}},
		{name: "duplicate", text: "ftp stream tcp nowait root /bin/x x\nftp stream tcp nowait root /bin/y y\n", label: "inetd.ftp.tcp",
			diags: []string{"t.conf:2: service: error: duplicate entry inetd.ftp.tcp (first on line 1); skipped"}},
		{name: "tcpmux", text: "tcpmux/+foo stream tcp nowait root /bin/x x",
			diags: []string{`t.conf:1: service: warning: service "tcpmux/+foo": TCPMUX and other slash forms are not supported; skipped`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jobs, got := parseInetdTest(t, tc.text)
			wantDiags(t, got, tc.diags...)
			if tc.label == "" {
				if len(jobs) != 0 {
					t.Fatalf("want no job, got %v", labels(jobs))
				}
				return
			}
			j := findJob(t, jobs, tc.label)
			checkJobInvariants(t, j)
			if j.Source != "inetd" {
				t.Errorf("Source %q", j.Source)
			}
			if tc.eps != nil && !eq(endpoints(j), tc.eps) {
				t.Errorf("endpoints %v, want %v", endpoints(j), tc.eps)
			}
			if tc.argv != nil && !eq(j.Argv, tc.argv) && !(len(tc.argv) == 0 && len(j.Argv) == 0) {
				t.Errorf("argv %q, want %q", j.Argv, tc.argv)
			}
			if tc.path != "" && j.Path != tc.path {
				t.Errorf("path %q, want %q", j.Path, tc.path)
			}
			if tc.user != "" && (j.UserName != tc.user || j.GroupName != tc.grp) {
				t.Errorf("user %q group %q, want %q %q", j.UserName, j.GroupName, tc.user, tc.grp)
			}
			if tc.wait != nil && (j.Inetd == nil || j.Inetd.Wait != *tc.wait) {
				t.Errorf("inetd %+v, want wait=%v", j.Inetd, *tc.wait)
			}
			if j.Internal != tc.internal {
				t.Errorf("internal %q, want %q", j.Internal, tc.internal)
			}
			if tc.limits.MaxChildren != 0 && show(j.Limits) != show(tc.limits) {
				t.Errorf("limits %+v, want %+v", j.Limits, tc.limits)
			}
			if tc.file != "" && j.File != tc.file {
				t.Errorf("File %q, want %q", j.File, tc.file)
			}
			if len(tc.diags) == 0 && len(got) > 0 && tc.name != "host line sets default" {
				t.Errorf("unexpected diags:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestInetdLimitsBound(t *testing.T) {
	if _, d := ParseInetd(make([]byte, MaxFileSize+1), "big"); !d.HasErrors() {
		t.Error("oversized input accepted")
	}
	many := strings.Repeat("x ", maxFields+1)
	if jobs, d := ParseInetd([]byte("ftp stream tcp nowait root /bin/x "+many), "long"); len(jobs) != 0 || !d.HasErrors() {
		t.Errorf("over-long line: %v %v", labels(jobs), d)
	}
}

func TestLoadInetdMissing(t *testing.T) {
	jobs, d := LoadInetd("/nonexistent/inetd.conf")
	if len(jobs) != 0 || !d.HasErrors() || d[0].File != "/nonexistent/inetd.conf" {
		t.Errorf("missing file: %v %v", jobs, d)
	}
}
