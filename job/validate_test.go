package job

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sockd/sockd/internal/portrange"
)

// xmlJob wraps body (written on one line) into an XML plist; every key of
// body is on line 4, so diagnostics read "t.plist:4: KEY: ...".
func xmlJob(body string) []byte {
	return []byte("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n" + body + "\n</dict>\n</plist>\n")
}

const base = `<key>Label</key><string>org.test</string><key>ProgramArguments</key><array><string>/bin/true</string></array>`

func sockets(groups string) string { return `<key>Sockets</key><dict>` + groups + `</dict>` }

func sock(name, body string) string { return `<key>` + name + `</key><dict>` + body + `</dict>` }

const nowait = `<key>inetdCompatibility</key><dict><key>Wait</key><false/></dict>`

func TestValidation(t *testing.T) {
	cases := []struct {
		name string
		body string
		ok   bool     // the job loads
		want []string // exact diagnostics that must be among the reported ones
	}{
		{"wrong type", `<key>Label</key><integer>5</integer><key>Program</key><string>/bin/true</string>`, false,
			[]string{"t.plist:4: Label: error: must be a string, not an integer (5)"}},
		{"wrong type bool", base + `<key>RunAtLoad</key><string>yes</string>`, false,
			[]string{`t.plist:4: RunAtLoad: error: must be a boolean (<true/> or <false/>), not string "yes"`}},
		{"wrong type array element", `<key>Label</key><string>x</string><key>ProgramArguments</key><array><string>/bin/true</string><integer>1</integer></array>`, false,
			[]string{"t.plist:4: ProgramArguments[1]: error: must be a string, not an integer (1)"}},
		{"missing label", `<key>ProgramArguments</key><array><string>/bin/true</string></array>`, false,
			[]string{`t.plist: Label: error: missing: every job needs a Label, a unique name such as "org.example.echo"`}},
		{"missing program", `<key>Label</key><string>x</string>`, false,
			[]string{"t.plist: ProgramArguments: error: missing: the job needs ProgramArguments (the command and its arguments) or Program (the path of the program to run)"}},
		{"empty label", `<key>Label</key><string></string><key>Program</key><string>/bin/true</string>`, false,
			[]string{`t.plist:4: Label: error: is empty: give the job a unique name such as "org.example.echo"`}},
		{"control char in label", `<key>Label</key><string>a&#9;b</string><key>Program</key><string>/bin/true</string>`, false,
			[]string{`t.plist:4: Label: error: "a\tb" contains a control character; labels must be printable`}},
		{"unknown SockType", base + sockets(sock("L", `<key>SockType</key><string>streem</string><key>SockServiceName</key><string>8080</string>`)), false,
			[]string{`t.plist:4: Sockets.L.SockType: error: unknown SockType "streem": use stream, dgram, seqpacket or fifo (launchd would silently use stream)`}},
		{"unknown SockFamily", base + sockets(sock("L", `<key>SockFamily</key><string>IPv5</string><key>SockServiceName</key><string>8080</string>`)), false,
			[]string{`t.plist:4: Sockets.L.SockFamily: error: unknown SockFamily "IPv5": use IPv4, IPv6, IPv4v6 (both) or Unix (launchd would silently use both IPv4 and IPv6)`}},
		{"unresolvable service", base + sockets(sock("L", `<key>SockServiceName</key><string>no-such-service-x</string>`)), false,
			[]string{`t.plist:4: Sockets.L.SockServiceName: error: unknown service name "no-such-service-x": it is not in the services database (/etc/services) for tcp; use a port number instead, or add the name to /etc/services`}},
		{"port out of range", base + sockets(sock("L", `<key>SockServiceName</key><integer>70000</integer>`)), false,
			[]string{`t.plist:4: Sockets.L.SockServiceName: error: port 70000 is out of range (0-65535)`}},
		{"unix path with node name", base + sockets(sock("L", `<key>SockPathName</key><string>/run/x.sock</string><key>SockNodeName</key><string>127.0.0.1</string>`)), false,
			[]string{`t.plist:4: Sockets.L.SockNodeName: error: a Unix socket (SockPathName) has no node name: remove SockNodeName or SockPathName`}},
		{"wait false on dgram", base + nowait + sockets(sock("L", `<key>SockType</key><string>dgram</string><key>SockServiceName</key><string>8080</string>`)), false,
			[]string{`t.plist:4: Sockets.L.SockType: error: a datagram socket cannot be served with inetdCompatibility Wait=false (there is no connection to accept): set Wait to true, or use SockType stream`}},
		{"two sockets one address", base + sockets(sock("A", `<key>SockServiceName</key><string>8080</string>`)+sock("B", `<key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>8080</string>`)), false,
			[]string{`t.plist:4: Sockets.B: error: tcp4 127.0.0.1:8080 overlaps tcp4 0.0.0.0:8080 of Sockets.A in the same job: two sockets cannot claim one address; remove one or change its address`}},
		{"socket without address", base + sockets(sock("L", `<key>SockType</key><string>stream</string>`)), false,
			[]string{`t.plist:4: Sockets.L: error: the socket has neither SockServiceName nor SockPathName: add SockServiceName (a port number or service name) or SockPathName (a Unix socket path)`}},
		{"misspelt SockServiceName", base + sockets(sock("L", `<key>SockNodeName</key><string>127.0.0.1</string><key>SockServicName</key><string>8080</string>`)), false,
			[]string{`t.plist:4: Sockets.L.SockServicName: error: unknown socket key; did you mean SockServiceName? a misspelt SockServiceName would listen on a port the file does not name`}},
		{"SockPathMode on an inet socket", base + sockets(sock("L", `<key>SockServiceName</key><string>8080</string><key>SockPathMode</key><integer>384</integer>`)), false,
			[]string{`t.plist:4: Sockets.L.SockPathMode: error: applies only to Unix sockets (SockPathName); an inet socket has no file mode or owner, so it would be open to every client that reaches it: remove SockPathMode, or restrict clients with SockNodeName or SockdLimits.Allow`}},
		{"abstract socket", base + sockets(sock("L", `<key>SockPathName</key><string>@sockd.test</string>`)), true, nil},
		{"abstract socket with mode and owner", base + sockets(sock("L", `<key>SockPathName</key><string>@sockd.test</string><key>SockPathMode</key><integer>384</integer><key>SockPathOwner</key><integer>0</integer>`)), false,
			[]string{`t.plist:4: Sockets.L.SockPathMode: error: an abstract socket (@sockd.test) has no file, so SockPathMode cannot restrict who connects: any process in sockd's network namespace can; remove SockPathMode, or use a socket path in a directory with the access you want`,
				`t.plist:4: Sockets.L.SockPathOwner: error: an abstract socket (@sockd.test) has no file, so SockPathOwner cannot restrict who connects: any process in sockd's network namespace can; remove SockPathOwner, or use a socket path in a directory with the access you want`}},
		{"abstract socket without a name", base + sockets(sock("L", `<key>SockPathName</key><string>@</string>`)), false,
			[]string{`t.plist:4: Sockets.L.SockPathName: error: an abstract socket name needs at least one character after @`}},
		{"SockdLimits on a handoff job", base + `<key>SockdLimits</key><dict><key>Deny</key><array><string>127.0.0.1</string></array></dict>` + sockets(sock("L", `<key>SockServiceName</key><string>8080</string>`)), false,
			[]string{`t.plist:4: SockdLimits: error: applies only to jobs whose connections sockd accepts (inetdCompatibility Wait=false, SockdInternal, SockdProxy); this is a handoff job: sockd passes its sockets to the service and never sees a client, so the limits would restrict nothing: remove SockdLimits, or limit clients in the service itself`}},
		{"SockdLimits on an inetd wait job", base + `<key>inetdCompatibility</key><dict><key>Wait</key><true/></dict><key>SockdLimits</key><dict><key>MaxChildren</key><integer>3</integer></dict>` + sockets(sock("L", `<key>SockServiceName</key><string>8080</string>`)), false,
			[]string{`t.plist:4: SockdLimits: error: applies only to jobs whose connections sockd accepts (inetdCompatibility Wait=false, SockdInternal, SockdProxy); this is an inetdCompatibility Wait=true job: the service gets the socket itself and accepts its clients, so the limits would restrict nothing: remove SockdLimits, or limit clients in the service itself`}},
		{"SockdLimits on a job without sockets", base + `<key>KeepAlive</key><true/><key>SockdLimits</key><dict><key>Rate</key><integer>3</integer></dict>`, false,
			[]string{`t.plist:4: SockdLimits: error: applies only to jobs whose connections sockd accepts (inetdCompatibility Wait=false, SockdInternal, SockdProxy); this is a job without Sockets: sockd accepts nothing for it, so the limits would restrict nothing: remove SockdLimits, or limit clients in the service itself`}},
		{"SockdLimits.Allow on a Unix socket", base + nowait + `<key>SockdLimits</key><dict><key>allow</key><array><string>127.0.0.1</string></array><key>MaxPerSource</key><integer>2</integer><key>Deny</key><array><string>10.0.0.1</string></array></dict>` + sockets(sock("L", `<key>SockPathName</key><string>/run/t.sock</string>`)), false,
			[]string{`t.plist:4: SockdLimits.Allow: error: Sockets.L is a Unix socket, whose clients have no address, so Allow cannot restrict them: limit who may connect with SockPathMode/SockPathOwner/SockPathGroup, or serve the Unix socket from a job of its own`,
				`t.plist:4: SockdLimits.MaxPerSource: error: Sockets.L is a Unix socket, whose clients have no address, so MaxPerSource cannot restrict them: limit who may connect with SockPathMode/SockPathOwner/SockPathGroup, or serve the Unix socket from a job of its own`}},
		{"MaxChildren and MaxPerSource on an internal UDP service", `<key>Label</key><string>x</string><key>SockdInternal</key><string>echo</string><key>SockdLimits</key><dict><key>MaxChildren</key><integer>4</integer><key>maxPerSource</key><integer>2</integer><key>Rate</key><integer>10</integer></dict>` + sockets(sock("U", `<key>SockType</key><string>dgram</string><key>SockServiceName</key><string>8007</string>`)), false,
			[]string{`t.plist:4: SockdLimits.MaxChildren: error: an internal service with only datagram sockets answers each datagram itself, with no connection or child to count, so MaxChildren would restrict nothing: remove it (Rate, Allow and Deny do apply to datagrams)`,
				`t.plist:4: SockdLimits.maxPerSource: error: an internal service with only datagram sockets answers each datagram itself, with no connection or child to count, so MaxPerSource would restrict nothing: remove it (Rate, Allow and Deny do apply to datagrams)`}},
		{"Rate and Allow on an internal UDP service", `<key>Label</key><string>x</string><key>SockdInternal</key><string>echo</string><key>SockdLimits</key><dict><key>Rate</key><integer>10</integer><key>Allow</key><array><string>127.0.0.1</string></array></dict>` + sockets(sock("U", `<key>SockType</key><string>dgram</string><key>SockServiceName</key><string>8007</string>`)), true, nil},
		{"MaxChildren on an internal service with a stream socket too", `<key>Label</key><string>x</string><key>SockdInternal</key><string>echo</string><key>SockdLimits</key><dict><key>MaxChildren</key><integer>4</integer></dict>` + sockets(sock("U", `<key>SockType</key><string>dgram</string><key>SockServiceName</key><string>8007</string>`)+sock("T", `<key>SockServiceName</key><string>8007</string>`)), true, nil},
		{"SockdLimits on an inetd nowait job", base + nowait + `<key>SockdLimits</key><dict><key>Deny</key><array><string>10.0.0.1</string></array></dict>` + sockets(sock("L", `<key>SockServiceName</key><string>8080</string>`)), true, nil},
		{"public proxy without idle or per-source limits", `<key>Label</key><string>x</string><key>SockdProxy</key><dict><key>Backend</key><string>127.0.0.1:7000</string></dict>` + sockets(sock("L", `<key>SockServiceName</key><string>8080</string>`)), true,
			[]string{`t.plist:4: SockdProxy: warning: this proxy job listens beyond loopback with neither SockdProxy.IdleTimeout nor SockdLimits.MaxPerSource: 256 idle connections from one client (MaxChildren) hold every slot and starve everyone else; set MaxPerSource (e.g. 32) and an IdleTimeout (e.g. 300)`}},
		{"loopback proxy", `<key>Label</key><string>x</string><key>SockdProxy</key><dict><key>Backend</key><string>127.0.0.1:7000</string></dict>` + sockets(sock("L", `<key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>8080</string>`)), true, nil},
		{"public proxy with MaxPerSource", `<key>Label</key><string>x</string><key>SockdLimits</key><dict><key>MaxPerSource</key><integer>8</integer></dict><key>SockdProxy</key><dict><key>Backend</key><string>127.0.0.1:7000</string></dict>` + sockets(sock("L", `<key>SockServiceName</key><string>8080</string>`)), true, nil},
		{"explicit port 0", base + sockets(sock("L", `<key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>0</string>`)), true, nil},
		{"udp protocol with stream type", base + sockets(sock("L", `<key>SockType</key><string>stream</string><key>SockProtocol</key><string>UDP</string><key>SockServiceName</key><string>53</string>`)), false,
			[]string{`t.plist:4: Sockets.L.SockProtocol: error: UDP needs SockType dgram, but SockType is stream: set SockType to dgram`}},
		{"seqpacket over IP", base + sockets(sock("L", `<key>SockType</key><string>seqpacket</string><key>SockServiceName</key><string>80</string>`)), false,
			[]string{`t.plist:4: Sockets.L.SockType: error: seqpacket is only available for Unix sockets on Linux: add SockPathName or use stream`}},
		{"family mismatch with node", base + sockets(sock("L", `<key>SockFamily</key><string>IPv6</string><key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>80</string>`)), false,
			[]string{`t.plist:4: Sockets.L.SockNodeName: error: 127.0.0.1 is not an IPv6 address, but SockFamily is IPv6: fix SockFamily or SockNodeName`}},
		{"case-variant keys", base + `<key>RunAtLoad</key><true/><key>runatload</key><false/>`, false,
			[]string{`t.plist:4: runatload: error: key "runatload" is also written as "RunAtLoad"; launchd matches keys case-insensitively, so it is unclear which one applies: keep one`}},
		{"bad internal", base + `<key>SockdInternal</key><string>qotd</string>` + sockets(sock("L", `<key>SockServiceName</key><string>8080</string>`)), false,
			[]string{`t.plist:4: SockdInternal: error: unknown internal service "qotd": use echo, discard, chargen, daytime or time`}},
		{"proxy without backend", base + `<key>SockdProxy</key><dict><key>Notify</key><true/></dict>` + sockets(sock("L", `<key>SockServiceName</key><string>8080</string>`)), false,
			[]string{`t.plist:4: SockdProxy.Backend: error: missing: a proxy needs a Backend (host:port or a Unix socket path)`}},
		{"bad allow", base + `<key>SockdLimits</key><dict><key>Allow</key><array><string>10.0.0.0/8</string><string>nonsense</string></array></dict>`, false,
			[]string{`t.plist:4: SockdLimits.Allow[1]: error: "nonsense" is neither an IP address nor a CIDR prefix (e.g. 192.0.2.0/24)`}},
		{"nice out of range", base + `<key>Nice</key><integer>40</integer>`, false,
			[]string{`t.plist:4: Nice: error: 40 is out of range: Nice must be between -20 and 19`}},
		{"keepalive wrong type", base + `<key>KeepAlive</key><string>true</string>`, false,
			[]string{`t.plist:4: KeepAlive: error: must be a boolean or a dictionary, not string "true"`}},
		{"multicast on stream", base + sockets(sock("L", `<key>MulticastGroup</key><string>239.1.2.3</string><key>SockServiceName</key><string>5000</string>`)), false,
			[]string{`t.plist:4: Sockets.L.MulticastGroup: error: multicast needs a datagram socket: set SockType to dgram`}},
		{"socket name with colon", base + sockets(sock("a:b", `<key>SockServiceName</key><string>8080</string>`)), false,
			[]string{`t.plist:4: Sockets.a:b: error: socket name "a:b" is not usable: it must be non-empty and contain no ':' (LISTEN_FDNAMES separates names with colons)`}},

		// Warnings: the job still loads.
		{"UID key", base + `<key>UID</key><integer>0</integer>`, true,
			[]string{`t.plist:4: UID: warning: ignored: UID is not a launchd key; use UserName`}},
		{"GID key", base + `<key>GID</key><integer>0</integer>`, true,
			[]string{`t.plist:4: GID: warning: ignored: GID is not a launchd key; use GroupName`}},
		{"darwin-only key", base + `<key>MachServices</key><dict/>`, true,
			[]string{`t.plist:4: MachServices: warning: ignored: Mach IPC is Darwin-only`}},
		{"planned key", base + `<key>LowPriorityIO</key><true/>`, true,
			[]string{`t.plist:4: LowPriorityIO: warning: not supported by sockd yet and ignored: the Linux equivalent (idle I/O priority) is not implemented yet`}},
		{"unknown key", base + `<key>Frobnicate</key><true/>`, true,
			[]string{`t.plist:4: Frobnicate: warning: unknown top-level key; it is ignored (check the spelling)`}},
		{"unknown socket key", base + sockets(sock("L", `<key>SockServiceName</key><string>8080</string><key>SockColour</key><string>red</string>`)), true,
			[]string{`t.plist:4: Sockets.L.SockColour: warning: unknown socket key; it is ignored (check the spelling)`}},
		{"duplicate key", base + `<key>EnvironmentVariables</key><dict><key>A</key><string>1</string><key>A</key><string>2</string></dict>`, true,
			[]string{`t.plist:4: EnvironmentVariables.A: warning: key "A" appears twice in this dictionary (lines 4 and 4); the last one wins: remove one`}},
		{"SockPathMode type bits", base + sockets(sock("L", `<key>SockPathName</key><string>/run/t.sock</string><key>SockPathMode</key><integer>49663</integer>`)), true,
			[]string{`t.plist:4: Sockets.L.SockPathMode: warning: 49663 is octal 0140777, which has bits beyond the permission bits (file type or setuid/sticky); using 0777`}},
		{"missing program file", `<key>Label</key><string>x</string><key>Program</key><string>/nonexistent/prog</string>`, true,
			[]string{`t.plist:4: Program: warning: program /nonexistent/prog does not exist; the job loads but will fail to start until it is installed`}},
		{"program not on PATH", `<key>Label</key><string>x</string><key>ProgramArguments</key><array><string>no-such-prog-x</string></array><key>EnvironmentVariables</key><dict><key>PATH</key><string>/nonexistent</string></dict>`, true,
			[]string{`t.plist:4: ProgramArguments[0]: warning: program "no-such-prog-x" was not found on PATH (/nonexistent); the job loads but will fail to start until it is installed`}},
		{"network state", base + `<key>KeepAlive</key><dict><key>NetworkState</key><true/><key>OtherJobActive</key><dict/></dict>`, true,
			[]string{`t.plist:4: KeepAlive.NetworkState: warning: ignored: sockd does not track network state (launchd itself stopped honouring it in 10.10)`,
				`t.plist:4: KeepAlive.OtherJobActive: warning: ignored: not supported by sockd; use OtherJobEnabled`}},
		{"instances", base + `<key>inetdCompatibility</key><dict><key>Wait</key><true/><key>Instances</key><integer>4</integer></dict>` + sockets(sock("L", `<key>SockServiceName</key><string>8080</string>`)), true,
			[]string{`t.plist:4: inetdCompatibility.Instances: warning: ignored: launchd never implemented it; use SockdLimits.MaxChildren to bound concurrent children`}},
		{"unknown rlimit", base + `<key>SoftResourceLimits</key><dict><key>Files</key><integer>5</integer></dict>`, true,
			[]string{`t.plist:4: SoftResourceLimits.Files: warning: unknown resource limit; it is ignored (known: Core, CPU, Data, FileSize, MemoryLock, NumberOfFiles, NumberOfProcesses, ResidentSetSize, Stack)`}},
		{"ondemand", base + `<key>OnDemand</key><false/>`, true,
			[]string{`t.plist:4: OnDemand: warning: OnDemand is deprecated (Mac OS X 10.5); write KeepAlive <true/> instead`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, diags := Decode(xmlJob(tc.body), "t.plist")
			if (j != nil) != tc.ok {
				t.Errorf("loaded = %v, want %v", j != nil, tc.ok)
			}
			if tc.ok && diags.HasErrors() {
				t.Errorf("unexpected errors")
			}
			got := map[string]bool{}
			for _, d := range diags {
				got[d.String()] = true
			}
			for _, w := range tc.want {
				if !got[w] {
					t.Errorf("missing diagnostic\n  %s\ngot:\n%s", w, diagText(diags))
				}
			}
		})
	}
}

func TestProxyDatagramRules(t *testing.T) {
	udp := `<key>Sockets</key><dict><key>U</key><dict><key>SockServiceName</key><string>5353</string><key>SockType</key><string>dgram</string></dict></dict>`
	cases := []struct{ proxy, want string }{
		{`<key>Backend</key><string>/run/x.sock</string>`, "SockdProxy.Backend: error: UDP sockets need a host:port backend, not a Unix socket path (/run/x.sock)"},
		{`<key>Backend</key><string>127.0.0.1:53</string><key>ProxyProtocol</key><string>v1</string>`, "SockdProxy.ProxyProtocol: error: PROXY protocol v1 has no datagram form"},
	}
	for _, c := range cases {
		data := `<?xml version="1.0"?><plist version="1.0"><dict><key>Label</key><string>p</string>` + udp +
			`<key>SockdProxy</key><dict>` + c.proxy + `</dict></dict></plist>`
		j, diags := Decode([]byte(data), "p.plist")
		if j != nil {
			t.Errorf("%s: job loaded", c.want)
		}
		found := false
		for _, d := range diags {
			if strings.Contains(d.String(), c.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("want %q in %v", c.want, diags)
		}
	}
}

// TestProxyBackendEphemeralPort: a backend sockd starts and stops, on a
// port of the kernel's ephemeral range, gets a warning; below the range,
// or an external backend, gets none.
func TestProxyBackendEphemeralPort(t *testing.T) {
	lo, hi, ok := portrange.Ephemeral()
	if !ok {
		t.Skip("no /proc/sys/net/ipv4/ip_local_port_range")
	}
	sockets := `<key>Sockets</key><dict><key>L</key><dict><key>SockServiceName</key><string>8080</string></dict></dict>`
	for _, c := range []struct {
		program string
		port    int
		warn    bool
	}{
		{base, lo, true},
		{base, hi, true},
		{base, lo - 1, false},
		{`<key>Label</key><string>org.test</string>`, lo, false}, // external backend
	} {
		data := `<?xml version="1.0"?><plist version="1.0"><dict>` + c.program + sockets +
			fmt.Sprintf(`<key>SockdProxy</key><dict><key>Backend</key><string>127.0.0.1:%d</string></dict></dict></plist>`, c.port)
		j, diags := Decode([]byte(data), "p.plist")
		if j == nil {
			t.Fatalf("port %d: not loaded: %v", c.port, diags)
		}
		warned := false
		for _, d := range diags {
			if strings.Contains(d.String(), "SockdProxy.Backend: warning: port") && strings.Contains(d.String(), "ephemeral port range") {
				warned = true
			}
		}
		if warned != c.warn {
			t.Errorf("program %v, port %d: warned %v, want %v (%v)", c.program != "", c.port, warned, c.warn, diags)
		}
	}
}

// TestProgramCache: decodes that share a cache look a program up once
// (a program removed meanwhile is still seen as there); a new cache, as
// the next load makes, sees it gone.
func TestProgramCache(t *testing.T) {
	prog := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	body := xmlJob(`<key>Label</key><string>x</string><key>Program</key><string>` + prog + `</string>`)
	missing := func(c *ProgramCache) bool {
		j, ds := DecodeWith(body, "t.plist", c)
		if j == nil {
			t.Fatalf("not decoded: %v", ds)
		}
		return strings.Contains(fmt.Sprint(ds), "does not exist")
	}
	c := NewProgramCache()
	if missing(c) {
		t.Fatal("the program is there: no warning expected")
	}
	if err := os.Remove(prog); err != nil {
		t.Fatal(err)
	}
	if missing(c) {
		t.Error("the same load's cache looked the program up again")
	}
	if !missing(NewProgramCache()) || !missing(nil) {
		t.Error("a new cache, or none, does not see the program gone")
	}
}
