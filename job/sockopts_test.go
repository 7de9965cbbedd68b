package job

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// opts is a SockdOptions dictionary of a socket.
func opts(body string) string { return `<key>SockdOptions</key><dict>` + body + `</dict>` }

const tcpPort = `<key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>8080</string>`

// TestSockOptionsParse: every key of SockdOptions is read into the model,
// shown by Values in table order, written back by Dict, and part of the
// endpoint's identity.
func TestSockOptionsParse(t *testing.T) {
	body := base + sockets(sock("L", tcpPort+opts(
		`<key>KeepAlive</key><true/><key>KeepAliveTime</key><integer>60</integer><key>KeepAliveInterval</key><integer>10</integer>`+
			`<key>KeepAliveCount</key><integer>5</integer><key>NoDelay</key><true/><key>ReusePort</key><true/><key>FreeBind</key><true/>`+
			`<key>Transparent</key><false/><key>BindToDevice</key><string>lo</string><key>Mark</key><integer>4294967295</integer>`+
			`<key>Priority</key><integer>6</integer><key>ReceiveBuffer</key><integer>65536</integer><key>SendBuffer</key><integer>32768</integer>`+
			`<key>Backlog</key><integer>128</integer><key>DeferAccept</key><integer>5</integer><key>TTL</key><integer>64</integer>`+
			`<key>TOS</key><integer>16</integer>`)))
	j := mustDecode(t, xmlJob(body))
	o := j.Sockets[0].Sockets[0].Options
	if *o.KeepAlive != true || *o.KeepAliveTime != 60 || *o.KeepAliveInterval != 10 || *o.KeepAliveCount != 5 || !*o.NoDelay ||
		!*o.ReusePort || !*o.FreeBind || *o.Transparent || o.BindToDevice != "lo" || *o.Mark != 4294967295 || *o.Priority != 6 ||
		*o.ReceiveBuffer != 65536 || *o.SendBuffer != 32768 || *o.Backlog != 128 || *o.DeferAccept != 5 || *o.TTL != 64 || *o.TOS != 16 {
		t.Fatalf("options: %+v", o)
	}
	var names []string
	for _, v := range o.Values() {
		names = append(names, v.Name+"="+v.Value)
	}
	want := "KeepAlive=true KeepAliveTime=60 KeepAliveInterval=10 KeepAliveCount=5 NoDelay=true ReusePort=true FreeBind=true " +
		"Transparent=false BindToDevice=lo Mark=4294967295 Priority=6 ReceiveBuffer=65536 SendBuffer=32768 Backlog=128 DeferAccept=5 TTL=64 TOS=16"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("values\n got %s\nwant %s", got, want)
	}
	d := o.Dict()
	if d["Mark"] != int64(4294967295) || d["NoDelay"] != true || d["BindToDevice"] != "lo" || len(d) != 17 {
		t.Errorf("dict %v", d)
	}
	id := j.Endpoints()[0].ID()
	if !strings.Contains(id, `opts=KeepAlive="true",KeepAliveTime="60"`) || !strings.Contains(id, `TOS="16"`) {
		t.Errorf("ID %s lacks the options", id)
	}

	// Unix: PassCredentials, DirectoryMode, Symlinks, Backlog, buffers.
	body = base + sockets(sock("U", `<key>SockPathName</key><string>/run/x/s.sock</string>`+opts(
		`<key>PassCredentials</key><true/><key>DirectoryMode</key><integer>493</integer><key>Backlog</key><integer>16</integer>`+
			`<key>Symlinks</key><array><string>/run/a.sock</string><string>/run/b/c.sock</string></array><key>ReceiveBuffer</key><integer>4096</integer>`)))
	j = mustDecode(t, xmlJob(body))
	o = j.Sockets[0].Sockets[0].Options
	if !*o.PassCredentials || *o.DirectoryMode != 0o755 || *o.Backlog != 16 || strings.Join(o.Symlinks, " ") != "/run/a.sock /run/b/c.sock" {
		t.Fatalf("unix options: %+v", o)
	}
	if v := o.Values(); v[len(v)-2] != (OptionValue{"DirectoryMode", "0755"}) || v[len(v)-1] != (OptionValue{"Symlinks", "/run/a.sock,/run/b/c.sock"}) {
		t.Errorf("values %v", v)
	}
}

// TestSockOptionsIdentity: two definitions that differ only in an option
// have different endpoint IDs (a reload reopens the socket); equal ones
// have equal IDs.
func TestSockOptionsIdentity(t *testing.T) {
	id := func(o string) string {
		j := mustDecode(t, xmlJob(base+sockets(sock("L", tcpPort+o))))
		return j.Endpoints()[0].ID()
	}
	plain := id("")
	b128 := id(opts(`<key>Backlog</key><integer>128</integer>`))
	if plain == b128 || b128 != id(opts(`<key>backlog</key><integer>128</integer>`)) || b128 == id(opts(`<key>Backlog</key><integer>129</integer>`)) {
		t.Errorf("IDs: %q %q", plain, b128)
	}
	if plain != id(opts(``)) {
		t.Errorf("an empty SockdOptions changes the ID: %q", id(opts(``)))
	}
}

// TestSockOptionsErrors: wrong types, ranges and options that do not apply
// to their socket are errors naming the key (and the socket's kind); the
// job does not load.
func TestSockOptionsErrors(t *testing.T) {
	udp := `<key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>8080</string><key>SockType</key><string>dgram</string>`
	unixp := `<key>SockPathName</key><string>/run/s.sock</string>`
	cases := []struct {
		name string
		sock string
		want string
	}{
		{"bool type", tcpPort + opts(`<key>NoDelay</key><string>yes</string>`),
			`t.plist:4: Sockets.L.SockdOptions.NoDelay: error: must be a boolean (<true/> or <false/>), not string "yes"`},
		{"int type", tcpPort + opts(`<key>Backlog</key><string>x</string>`),
			`t.plist:4: Sockets.L.SockdOptions.Backlog: error: must be an integer (<integer>), not string "x"`},
		{"range seconds", tcpPort + opts(`<key>KeepAlive</key><true/><key>KeepAliveTime</key><integer>0</integer>`),
			`t.plist:4: Sockets.L.SockdOptions.KeepAliveTime: error: 0 is out of range: KeepAliveTime (seconds) must be between 1 and 32767`},
		{"range count", tcpPort + opts(`<key>KeepAlive</key><true/><key>KeepAliveCount</key><integer>128</integer>`),
			`t.plist:4: Sockets.L.SockdOptions.KeepAliveCount: error: 128 is out of range: KeepAliveCount must be between 1 and 127`},
		{"range TTL", tcpPort + opts(`<key>TTL</key><integer>256</integer>`),
			`t.plist:4: Sockets.L.SockdOptions.TTL: error: 256 is out of range: TTL must be between 1 and 255`},
		{"range buffer", tcpPort + opts(`<key>ReceiveBuffer</key><integer>2147483647</integer>`),
			`t.plist:4: Sockets.L.SockdOptions.ReceiveBuffer: error: 2147483647 is out of range: ReceiveBuffer (bytes) must be between 1 and 1073741823`},
		{"range mark", tcpPort + opts(`<key>Mark</key><integer>-1</integer>`),
			`t.plist:4: Sockets.L.SockdOptions.Mark: error: -1 is out of range: Mark must be between 0 and 4294967295`},
		{"device name", tcpPort + opts(`<key>BindToDevice</key><string>eth0/1</string>`),
			`t.plist:4: Sockets.L.SockdOptions.BindToDevice: error: "eth0/1" is not an interface name: it may not be . or .., nor contain '/', ':' or white space`},
		{"device long", tcpPort + opts(`<key>BindToDevice</key><string>abcdefghijklmnop</string>`),
			`t.plist:4: Sockets.L.SockdOptions.BindToDevice: error: "abcdefghijklmnop" is 16 bytes long; interface names have at most 15`},
		{"NoDelay on UDP", udp + opts(`<key>NoDelay</key><true/>`),
			`t.plist:4: Sockets.L.SockdOptions.NoDelay: error: NoDelay applies only to TCP sockets; this is a UDP socket, where it would do nothing: remove NoDelay`},
		{"Broadcast on TCP", tcpPort + opts(`<key>Broadcast</key><true/>`),
			`t.plist:4: Sockets.L.SockdOptions.Broadcast: error: Broadcast applies only to UDP sockets; this is a TCP socket, where it would do nothing: remove Broadcast`},
		{"Backlog on UDP", udp + opts(`<key>Backlog</key><integer>5</integer>`),
			`t.plist:4: Sockets.L.SockdOptions.Backlog: error: Backlog applies only to listening stream and seqpacket sockets (TCP, Unix stream, Unix seqpacket); this is a UDP socket, where it would do nothing: remove Backlog`},
		{"DirectoryMode on TCP", tcpPort + opts(`<key>DirectoryMode</key><integer>493</integer>`),
			`t.plist:4: Sockets.L.SockdOptions.DirectoryMode: error: DirectoryMode applies only to Unix sockets with a file (SockPathName, not @abstract) and FIFOs; this is a TCP socket, where it would do nothing: remove DirectoryMode`},
		{"Symlinks on abstract", `<key>SockPathName</key><string>@abs</string>` + opts(`<key>Symlinks</key><array><string>/run/a</string></array>`),
			`t.plist:4: Sockets.L.SockdOptions.Symlinks: error: Symlinks applies only to Unix sockets with a file (SockPathName, not @abstract) and FIFOs; this is an abstract Unix stream socket, where it would do nothing: remove Symlinks`},
		{"NoDelay on Unix", unixp + opts(`<key>NoDelay</key><true/>`),
			`t.plist:4: Sockets.L.SockdOptions.NoDelay: error: NoDelay applies only to TCP sockets; this is a Unix stream socket, where it would do nothing: remove NoDelay`},
		{"PassCredentials on TCP", tcpPort + opts(`<key>PassCredentials</key><true/>`),
			`t.plist:4: Sockets.L.SockdOptions.PassCredentials: error: PassCredentials applies only to Unix sockets (SockPathName); this is a TCP socket, where it would do nothing: remove PassCredentials`},
		{"Mark on Unix", unixp + opts(`<key>Mark</key><integer>1</integer>`),
			`t.plist:4: Sockets.L.SockdOptions.Mark: error: Mark applies only to TCP and UDP sockets; this is a Unix stream socket, where it would do nothing: remove Mark`},
		{"ReusePort connecting", tcpPort + `<key>SockPassive</key><false/>` + opts(`<key>ReusePort</key><true/>`),
			`t.plist:4: Sockets.L.SockdOptions.ReusePort: error: ReusePort applies only to a socket that listens; this is a TCP socket that connects (SockPassive false): remove ReusePort, or SockPassive`},
		{"IPv6Only on IPv4", tcpPort + opts(`<key>IPv6Only</key><false/>`),
			`t.plist:4: Sockets.L.SockdOptions.IPv6Only: error: IPv6Only applies only to IPv6 sockets, and this socket has only IPv4 addresses (SockFamily IPv4, or an IPv4 SockNodeName): remove IPv6Only`},
		{"IPv6Only false on a specific address", `<key>SockNodeName</key><string>::1</string><key>SockServiceName</key><string>8080</string>` + opts(`<key>IPv6Only</key><false/>`),
			`t.plist:4: Sockets.L.SockdOptions.IPv6Only: error: false makes an IPv6 wildcard socket (no SockNodeName, or "::") take IPv4 clients too; this socket's IPv6 addresses are specific, which IPv4 clients cannot reach anyway: remove IPv6Only`},
		{"Symlinks relative", unixp + opts(`<key>Symlinks</key><array><string>a.sock</string></array>`),
			`t.plist:4: Sockets.L.SockdOptions.Symlinks[0]: error: "a.sock" is not an absolute path: write the link's full path`},
		{"Symlinks self", unixp + opts(`<key>Symlinks</key><array><string>/run/s.sock</string></array>`),
			`t.plist:4: Sockets.L.SockdOptions.Symlinks: error: "/run/s.sock" is the socket's own path (SockPathName): a link cannot replace the socket; remove it from Symlinks`},
		{"DirectoryMode range", unixp + opts(`<key>DirectoryMode</key><integer>4095</integer>`),
			`t.plist:4: Sockets.L.SockdOptions.DirectoryMode: error: 4095 is out of range: DirectoryMode (decimal, e.g. 493 for 0755; the permission bits and the sticky bit) must be between 0 and 1023`},
		{"unknown key", tcpPort + opts(`<key>NoDelai</key><true/><key>BindToDevise</key><string>lo</string>`),
			`t.plist:4: Sockets.L.SockdOptions.BindToDevise: error: unknown SockdOptions key; did you mean BindToDevice? a misspelt BindToDevice would let the socket listen on every interface instead of one`},
		{"not a dict", tcpPort + `<key>SockdOptions</key><true/>`,
			`t.plist:4: Sockets.L.SockdOptions: error: must be a dictionary, not a boolean (true)`},
		{"misplaced in the socket", tcpPort + `<key>KeepAlive</key><true/>`,
			`t.plist:4: Sockets.L.KeepAlive: error: KeepAlive belongs at the top level of the job or in SockdOptions (Sockets.NAME.SockdOptions), not here: as a socket key it is ignored, and a misplaced KeepAlive would change when the job runs; move it there`},
		{"misspelt SockdOptions", tcpPort + `<key>SockdOption</key><dict/>`,
			`t.plist:4: Sockets.L.SockdOption: error: unknown socket key; did you mean SockdOptions? a misspelt SockdOptions would open the socket without the options the file sets`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, diags := Decode(xmlJob(base+sockets(sock("L", tc.sock))), "t.plist")
			if j != nil {
				t.Errorf("loaded")
			}
			if !strings.Contains(diagText(diags), tc.want+"\n") {
				t.Errorf("missing diagnostic\n  %s\ngot:\n%s", tc.want, diagText(diags))
			}
		})
	}
}

// TestSockOptionsWarnings: the keep-alive parameters without KeepAlive,
// and misplaced option keys, warn; the job loads.
func TestSockOptionsWarnings(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"KeepAliveTime alone", base + sockets(sock("L", tcpPort+opts(`<key>KeepAliveTime</key><integer>30</integer>`))),
			`t.plist:4: Sockets.L.SockdOptions.KeepAliveTime: warning: KeepAliveTime has no effect while KeepAlive is not true (unless the service turns SO_KEEPALIVE on itself): set KeepAlive to true`},
		{"NoDelay in the socket", base + sockets(sock("L", tcpPort+`<key>NoDelay</key><true/>`)),
			`t.plist:4: Sockets.L.NoDelay: warning: NoDelay belongs in SockdOptions (Sockets.NAME.SockdOptions), not here: as a socket key it is ignored; move it there`},
		{"near miss", base + sockets(sock("L", tcpPort+opts(`<key>NoDelai</key><true/>`))),
			`t.plist:4: Sockets.L.SockdOptions.NoDelai: warning: unknown SockdOptions key; did you mean NoDelay? it is ignored`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, diags := Decode(xmlJob(tc.body), "t.plist")
			if j == nil {
				t.Errorf("did not load")
			}
			if !strings.Contains(diagText(diags), tc.want+"\n") {
				t.Errorf("missing diagnostic\n  %s\ngot:\n%s", tc.want, diagText(diags))
			}
		})
	}
}

// TestDualStack: IPv6Only false on a wildcard gives one IPv6 endpoint that
// takes IPv4 too, which claims the IPv4 wildcard of its port as well.
func TestDualStack(t *testing.T) {
	wild := `<key>SockServiceName</key><string>8080</string>`
	j := mustDecode(t, xmlJob(base+sockets(sock("L", wild+opts(`<key>IPv6Only</key><false/>`)))))
	eps := j.Endpoints()
	if len(eps) != 1 || eps[0].Network != "tcp6" || eps[0].Address != "[::]:8080" || !eps[0].DualStack() {
		t.Fatalf("endpoints %+v", eps)
	}
	j = mustDecode(t, xmlJob(base+sockets(sock("L", wild+opts(`<key>IPv6Only</key><true/>`)))))
	if eps := j.Endpoints(); len(eps) != 2 || eps[0].DualStack() || eps[1].Network != "tcp4" {
		t.Fatalf("IPv6Only true endpoints %+v", eps)
	}
	// Within one job: a dual-stack wildcard and an IPv4 socket of its port.
	_, diags := Decode(xmlJob(base+sockets(sock("A", wild+opts(`<key>IPv6Only</key><false/>`))+
		sock("B", `<key>SockNodeName</key><string>127.0.0.1</string>`+wild))), "t.plist")
	if !strings.Contains(diagText(diags), "Sockets.B: error: tcp4 127.0.0.1:8080 overlaps tcp4 0.0.0.0:8080 of Sockets.A in the same job") {
		t.Errorf("own conflict not reported:\n%s", diagText(diags))
	}
	// Across jobs.
	a := decodeT(t, "a.plist", jobBody("a", sock("L", wild+opts(`<key>IPv6Only</key><false/>`))))
	b := decodeT(t, "b.plist", jobBody("b", sock("L", `<key>SockNodeName</key><string>127.0.0.1</string>`+wild)))
	kept, ds := CrossCheck([]*Job{a, b})
	if len(kept) != 1 || kept[0] != a || !strings.Contains(diagText(ds), "b.plist: Sockets.L: error: tcp4 127.0.0.1:8080 conflicts with tcp4 0.0.0.0:8080 of job \"a\"") {
		t.Errorf("kept %d, diags:\n%s", len(kept), diagText(ds))
	}
}

// TestFIFO: SockType fifo with SockPathName is a FIFO endpoint, served in
// handoff and wait mode; every key that makes no sense for it, and the
// modes that accept connections, are errors.
func TestFIFO(t *testing.T) {
	fifo := `<key>SockType</key><string>fifo</string><key>SockPathName</key><string>/run/x.fifo</string>`
	j := mustDecode(t, xmlJob(base+sockets(sock("F", fifo+`<key>SockPathMode</key><integer>432</integer>`+
		opts(`<key>DirectoryMode</key><integer>448</integer><key>Symlinks</key><array><string>/run/y.fifo</string></array>`)))))
	eps := j.Endpoints()
	if len(eps) != 1 || eps[0].Network != "fifo" || eps[0].Address != "/run/x.fifo" || j.Mode() != ModeHandoff || j.Sockets[0].Sockets[0].Type != FIFO {
		t.Fatalf("endpoints %+v mode %s", eps, j.Mode())
	}
	if j := mustDecode(t, xmlJob(base+`<key>inetdCompatibility</key><dict><key>Wait</key><true/></dict>`+sockets(sock("F", fifo)))); j.Mode() != ModeInetdWait {
		t.Errorf("mode %s", j.Mode())
	}
	cases := []struct{ name, body, want string }{
		{"nowait", base + nowait + sockets(sock("F", fifo)),
			`t.plist:4: Sockets.F.SockType: error: a FIFO cannot be served in inetd-nowait mode: inetdCompatibility Wait=false accepts a connection per child, and a FIFO has none`},
		{"proxy", `<key>Label</key><string>p</string><key>SockdProxy</key><dict><key>Backend</key><string>127.0.0.1:9</string></dict>` + sockets(sock("F", fifo)),
			`t.plist:4: Sockets.F.SockType: error: a FIFO cannot be served in proxy mode`},
		{"internal", `<key>Label</key><string>i</string><key>SockdInternal</key><string>echo</string>` + sockets(sock("F", fifo)),
			`t.plist:4: Sockets.F.SockType: error: a FIFO cannot be served in internal mode`},
		{"no path", base + sockets(sock("F", `<key>SockType</key><string>fifo</string>`)),
			`t.plist:4: Sockets.F.SockType: error: fifo needs SockPathName, the path of the FIFO: add SockPathName`},
		{"abstract", base + sockets(sock("F", `<key>SockType</key><string>FIFO</string><key>SockPathName</key><string>@x</string>`)),
			`t.plist:4: Sockets.F.SockPathName: error: "@x" names an abstract socket; a FIFO is a file: give its absolute path`},
		{"port", base + sockets(sock("F", fifo+`<key>SockServiceName</key><string>80</string>`)),
			`t.plist:4: Sockets.F.SockServiceName: error: a FIFO has no ServiceName: remove SockServiceName`},
		{"connect", base + sockets(sock("F", fifo+`<key>SockPassive</key><false/>`)),
			`t.plist:4: Sockets.F.SockPassive: error: a FIFO cannot connect: sockd creates it and reads demand from it; remove SockPassive false`},
		{"family", base + sockets(sock("F", fifo+`<key>SockFamily</key><string>IPv4</string>`)),
			`t.plist:4: Sockets.F.SockFamily: error: IPv4 does not apply to a FIFO: remove SockFamily`},
		{"buffer option", base + sockets(sock("F", fifo+opts(`<key>ReceiveBuffer</key><integer>4096</integer>`))),
			`t.plist:4: Sockets.F.SockdOptions.ReceiveBuffer: error: ReceiveBuffer applies only to sockets; this is a FIFO, where it would do nothing: remove ReceiveBuffer`},
		{"same path as a socket", base + sockets(sock("F", fifo)+sock("U", `<key>SockPathName</key><string>/run/x.fifo</string>`)),
			`t.plist:4: Sockets.U: error: unix /run/x.fifo overlaps fifo /run/x.fifo of Sockets.F in the same job`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, diags := Decode(xmlJob(tc.body), "t.plist")
			if j != nil {
				t.Errorf("loaded")
			}
			if !strings.Contains(diagText(diags), tc.want) {
				t.Errorf("missing diagnostic\n  %s\ngot:\n%s", tc.want, diagText(diags))
			}
		})
	}
}

// TestCheckSockets: a job built by hand is checked as the loader checks a
// job file.
func TestCheckSockets(t *testing.T) {
	yes := true
	j := &Job{Label: "x", File: "x.socket", Inetd: &Inetd{}, Sockets: []SocketGroup{{Name: "L", Sockets: []Socket{
		{Key: "Sockets.L", Type: Dgram, Passive: true, Options: SockOptions{NoDelay: &yes},
			Endpoints: []Endpoint{{Network: "udp4", Address: "127.0.0.1:9", Passive: true}}},
		{Key: "Sockets.L[1]", Type: FIFO, Passive: true, PathName: "/run/f", Family: Unix,
			Endpoints: []Endpoint{{Network: "fifo", Address: "/run/f", Passive: true}}},
	}}}}
	j.LinkEndpoints()
	got := diagText(CheckSockets(j))
	for _, want := range []string{
		"x.socket: Sockets.L.SockdOptions.NoDelay: error: NoDelay applies only to TCP sockets; this is a UDP socket",
		"x.socket: Sockets.L[1].SockType: error: a FIFO cannot be served in inetd-nowait mode",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s\ngot:\n%s", want, got)
		}
	}
}

// TestEndpointIDFormat: the ID is what an upgrade matches a handed socket
// by, so it must read as the format every earlier sockd wrote (the
// fmt.Sprintf form below); a change would reopen every socket on upgrade.
func TestEndpointIDFormat(t *testing.T) {
	mode, owner, group := os.FileMode(0o660), 0, 1001
	cases := []Endpoint{
		{Network: "tcp4", Address: "127.0.0.1:80", Passive: true},
		{Network: "udp6", Address: "[::1]:53"},
		{Network: "unix", Address: "/run/x.sock", Passive: true, Socket: &Socket{}},
		{Network: "unix", Address: "/run/x.sock", Passive: true, Socket: &Socket{PathMode: &mode, PathOwner: &owner, PathGroup: &group}},
		{Network: "udp4", Address: "0.0.0.0:5353", Passive: true, Socket: &Socket{MulticastGroup: "224.0.0.251"}},
	}
	j := mustDecode(t, xmlJob(base+sockets(sock("L", tcpPort+opts(`<key>Backlog</key><integer>16</integer><key>NoDelay</key><true/>`)))))
	cases = append(cases, *j.Endpoints()[0])
	for _, e := range cases {
		if got, want := e.ID(), sprintfID(&e); got != want {
			t.Errorf("ID\n got %q\nwant %q", got, want)
		}
	}
}

func sprintfID(e *Endpoint) string {
	s, extra := e.Socket, ""
	if s != nil {
		if s.PathMode != nil {
			extra += fmt.Sprintf(" mode=%o", *s.PathMode)
		}
		if s.PathOwner != nil {
			extra += fmt.Sprintf(" owner=%d", *s.PathOwner)
		}
		if s.PathGroup != nil {
			extra += fmt.Sprintf(" group=%d", *s.PathGroup)
		}
		if s.MulticastGroup != "" {
			extra += " mcast=" + s.MulticastGroup
		}
		if o := s.Options.identity(); o != "" {
			extra += " opts=" + o
		}
	}
	return fmt.Sprintf("%s %s passive=%t%s", e.Network, e.Address, e.Passive, extra)
}
