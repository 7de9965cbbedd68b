package job

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"howett.net/plist"
)

func mustDecode(t *testing.T, data []byte) *Job {
	t.Helper()
	j, diags := Decode(data, "t.plist")
	if j == nil {
		t.Fatalf("did not load:\n%s", diagText(diags))
	}
	return j
}

func TestDefaults(t *testing.T) {
	j := mustDecode(t, xmlJob(base))
	if !j.InitGroups || j.ThrottleInterval != 10*time.Second || j.ExitTimeOut != 20*time.Second || j.TimeOut != 30*time.Second {
		t.Errorf("defaults: %+v", j)
	}
	if j.Limits.MaxChildren != 256 || j.Limits.MaxPerSource != 0 || j.Limits.Rate != 0 || j.Limits.Burst != 0 || j.Limits.Pause != 5*time.Second {
		t.Errorf("limits defaults: %+v", j.Limits)
	}
	if j.Umask != nil || j.Nice != nil || j.Inetd != nil || j.Proxy != nil || j.Mode() != ModeNone {
		t.Errorf("unset fields set: %+v", j)
	}
	if j.Source != SourceXML || j.File != "t.plist" || j.Path != "/bin/true" || strings.Join(j.Argv, " ") != "/bin/true" {
		t.Errorf("source %q path %q argv %q", j.Source, j.Path, j.Argv)
	}
}

func TestAllKeys(t *testing.T) {
	body := `<key>label</key><string>org.all</string>
<key>Program</key><string>/bin/sh</string>
<key>ProgramArguments</key><array><string>sh</string><string>-c</string><string>exit 0</string></array>
<key>EnableGlobbing</key><true/><key>Disabled</key><true/>
<key>UserName</key><string>root</string><key>GroupName</key><string>root</string><key>InitGroups</key><false/>
<key>WorkingDirectory</key><string>/tmp</string><key>RootDirectory</key><string>/</string>
<key>EnvironmentVariables</key><dict><key>B</key><string>2</string><key>A</key><string>1</string></dict>
<key>Umask</key><integer>18</integer>
<key>StandardInPath</key><string>/dev/null</string><key>StandardOutPath</key><string>/tmp/o</string><key>StandardErrorPath</key><string>/tmp/e</string>
<key>SoftResourceLimits</key><dict><key>NumberOfFiles</key><integer>1024</integer><key>Core</key><integer>0</integer></dict>
<key>HardResourceLimits</key><dict><key>stack</key><integer>8388608</integer></dict>
<key>Nice</key><integer>-5</integer><key>SessionCreate</key><true/><key>AbandonProcessGroup</key><true/>
<key>KeepAlive</key><dict><key>SuccessfulExit</key><false/><key>Crashed</key><true/><key>AfterInitialDemand</key><true/>
  <key>PathState</key><dict><key>/run/x</key><true/></dict><key>OtherJobEnabled</key><dict><key>org.other</key><false/></dict></dict>
<key>RunAtLoad</key><true/><key>ThrottleInterval</key><integer>0</integer><key>ExitTimeOut</key><integer>5</integer><key>TimeOut</key><integer>7</integer>
<key>SockdLimits</key><dict><key>MaxChildren</key><integer>4</integer><key>MaxPerSource</key><integer>2</integer><key>Rate</key><real>2.5</real>
  <key>PauseSeconds</key><integer>1</integer><key>Allow</key><array><string>127.0.0.0/8</string></array><key>Deny</key><array><string>::1</string></array></dict>
<key>SockdProxy</key><dict><key>Backend</key><string>127.0.0.1:9000</string><key>Notify</key><true/><key>ReadyTimeout</key><integer>3</integer>
  <key>IdleTimeout</key><integer>60</integer><key>StopAfterIdle</key><integer>300</integer><key>ProxyProtocol</key><string>V2</string></dict>
<key>Sockets</key><dict><key>web</key><dict><key>SockServiceName</key><integer>0</integer><key>SockNodeName</key><string>localhost</string></dict></dict>`
	j, diags := Decode(xmlJob(body), "t.plist")
	if j == nil {
		t.Fatalf("did not load:\n%s", diagText(diags))
	}
	if j.Label != "org.all" || j.Program != "/bin/sh" || j.Path != "/bin/sh" || strings.Join(j.Argv, "|") != "sh|-c|exit 0" {
		t.Errorf("program: %q %q %q", j.Program, j.Path, j.Argv)
	}
	if !j.EnableGlobbing || !j.Disabled || j.UserName != "root" || j.GroupName != "root" || j.InitGroups {
		t.Errorf("flags/user: %+v", j)
	}
	if j.WorkingDirectory != "/tmp" || j.RootDirectory != "/" || *j.Umask != 0o22 || *j.Nice != -5 {
		t.Errorf("dirs/umask/nice: %+v", j)
	}
	if len(j.EnvironmentVariables) != 2 || j.EnvironmentVariables[0] != (EnvVar{"A", "1"}) {
		t.Errorf("env not sorted: %v", j.EnvironmentVariables)
	}
	if j.StandardInPath != "/dev/null" || j.StandardOutPath != "/tmp/o" || j.StandardErrorPath != "/tmp/e" {
		t.Errorf("std paths: %+v", j)
	}
	wantRL := []RLimit{{"Core", unix.RLIMIT_CORE, 0}, {"NumberOfFiles", unix.RLIMIT_NOFILE, 1024}}
	if len(j.SoftResourceLimits) != 2 || j.SoftResourceLimits[0] != wantRL[0] || j.SoftResourceLimits[1] != wantRL[1] {
		t.Errorf("soft limits %+v", j.SoftResourceLimits)
	}
	if len(j.HardResourceLimits) != 1 || j.HardResourceLimits[0] != (RLimit{"Stack", unix.RLIMIT_STACK, 8388608}) {
		t.Errorf("hard limits %+v", j.HardResourceLimits)
	}
	k := j.KeepAlive
	if k.Always || *k.SuccessfulExit || !*k.Crashed || !k.AfterInitialDemand || !k.ImpliesRunAtLoad() ||
		len(k.PathState) != 1 || k.PathState[0] != (PathCond{"/run/x", true}) || k.OtherJobEnabled[0] != (LabelCond{"org.other", false}) {
		t.Errorf("keepalive %+v", k)
	}
	if !j.RunAtLoad || !j.SessionCreate || !j.AbandonProcessGroup || j.ThrottleInterval != 0 || j.ExitTimeOut != 5*time.Second || j.TimeOut != 7*time.Second {
		t.Errorf("timing: %+v", j)
	}
	l := j.Limits
	if l.MaxChildren != 4 || l.MaxPerSource != 2 || l.Rate != 2.5 || l.Burst != 3 || l.Pause != time.Second || l.Allow[0] != "127.0.0.0/8" || l.Deny[0] != "::1" {
		t.Errorf("limits %+v", l)
	}
	p := j.Proxy
	if p == nil || p.Backend != "127.0.0.1:9000" || !p.Notify || p.ReadyTimeout != 3*time.Second || p.IdleTimeout != time.Minute || p.StopAfterIdle != 5*time.Minute || p.ProxyProtocol != "v2" {
		t.Errorf("proxy %+v", p)
	}
	if j.Mode() != ModeProxy {
		t.Errorf("mode %v", j.Mode())
	}
	wantEndpoints(t, j, "web tcp6 [::1]:0", "web tcp4 127.0.0.1:0")
	for _, d := range diags {
		t.Logf("diag: %s", d)
	}
}

// TestHandOffOrder: groups sorted by name in byte order, array order
// within a group, IPv6 before IPv4 within one dictionary.
func TestHandOffOrder(t *testing.T) {
	body := base + sockets(
		sock("b", `<key>SockServiceName</key><string>2001</string>`)+
			`<key>a</key><array><dict><key>SockPathName</key><string>/run/a1</string><key>SockType</key><string>DGRAM</string></dict>`+
			`<dict><key>SockPathName</key><string>/run/a2</string><key>SockType</key><string>SeqPacket</string></dict></array>`+
			sock("B", `<key>SockServiceName</key><string>2002</string><key>SockType</key><string>dgram</string><key>SockFamily</key><string>ipv4v6</string>`)+
			sock("c", `<key>SockServiceName</key><string>2003</string><key>SockProtocol</key><string>udp</string><key>SockFamily</key><string>IPV6</string>`)+
			sock("d", `<key>SockServiceName</key><string>2004</string><key>SockPassive</key><false/><key>SockFamily</key><string>IPv4</string>`)+
			sock("e", `<key>SockPathName</key><string>/run/e</string><key>SockFamily</key><string>unix</string><key>SockPathOwner</key><integer>1</integer><key>SockPathGroup</key><string>root</string>`))
	j := mustDecode(t, xmlJob(body))
	wantEndpoints(t, j,
		"B udp6 [::]:2002", "B udp4 0.0.0.0:2002",
		"a unixgram /run/a1", "a unixpacket /run/a2",
		"b tcp6 [::]:2001", "b tcp4 0.0.0.0:2001",
		"c udp6 [::]:2003",
		"d tcp4 127.0.0.1:2004",
		"e unix /run/e")
	eps := j.Endpoints()
	if eps[2].Key != "Sockets.a[0]" || eps[3].Key != "Sockets.a[1]" || eps[3].Socket != &j.Sockets[1].Sockets[1] {
		t.Errorf("keys/back-pointers: %+v %+v", eps[2], eps[3])
	}
	if eps[7].Passive || !eps[0].Passive {
		t.Error("SockPassive false must give a non-passive endpoint")
	}
	if s := eps[8].Socket; *s.PathOwner != 1 || *s.PathGroup != 0 || s.Family != Unix {
		t.Errorf("owner/group %+v", s)
	}
	if j.Mode() != ModeHandoff {
		t.Errorf("mode %v", j.Mode())
	}
}

func TestProgramLookup(t *testing.T) {
	want, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on PATH")
	}
	j := mustDecode(t, xmlJob(`<key>Label</key><string>x</string><key>ProgramArguments</key><array><string>sh</string><string>-c</string><string>true</string></array>`))
	if j.Path != want || j.Argv[0] != "sh" {
		t.Errorf("Path %q (want %q) Argv %q", j.Path, want, j.Argv)
	}
	// Program is used as written; argv[0] may differ from it.
	j = mustDecode(t, xmlJob(`<key>Label</key><string>x</string><key>Program</key><string>/bin/sh</string><key>ProgramArguments</key><array><string>login-sh</string></array>`))
	if j.Path != "/bin/sh" || j.Argv[0] != "login-sh" {
		t.Errorf("Path %q Argv %q", j.Path, j.Argv)
	}
}

func TestInternalAndHandoffModes(t *testing.T) {
	j := mustDecode(t, xmlJob(`<key>Label</key><string>x</string><key>SockdInternal</key><string>Echo</string>`+sockets(sock("L", `<key>SockServiceName</key><string>7</string>`))))
	if j.Mode() != ModeInternal || j.Internal != "echo" || j.Path != "" || len(j.Argv) != 0 {
		t.Errorf("internal: mode %v internal %q path %q", j.Mode(), j.Internal, j.Path)
	}
	j = mustDecode(t, xmlJob(base+`<key>inetdCompatibility</key><dict><key>Wait</key><true/></dict>`+sockets(sock("L", `<key>SockServiceName</key><string>7</string><key>SockType</key><string>dgram</string>`))))
	if j.Mode() != ModeInetdWait || j.AbandonProcessGroup {
		t.Errorf("inetd wait: %v", j.Mode())
	}
}

// TestOpenStep: OpenStep plists carry only strings; numbers and booleans
// are accepted in their spelled forms.
func TestOpenStep(t *testing.T) {
	src := `{
  Label = "org.sockd.openstep";
  ProgramArguments = ( "/bin/cat" );
  RunAtLoad = YES; InitGroups = no; Disabled = False;
  Umask = 18; Nice = "-3"; ThrottleInterval = 2;
  inetdCompatibility = { Wait = NO; };
  SockdLimits = { Rate = 1.5; MaxChildren = 9; };
  Sockets = { L = { SockServiceName = 8080; SockNodeName = "127.0.0.1"; }; U = { SockPathName = "/run/x.sock"; SockPathMode = 384; }; };
}`
	j, diags := Decode([]byte(src), "t.plist")
	if j == nil {
		t.Fatalf("did not load:\n%s", diagText(diags))
	}
	if j.Source != SourceOpenStep || !j.RunAtLoad || j.InitGroups || j.Disabled || *j.Umask != 18 || *j.Nice != -3 ||
		j.ThrottleInterval != 2*time.Second || j.Inetd == nil || j.Inetd.Wait || j.Limits.Rate != 1.5 || j.Limits.MaxChildren != 9 {
		t.Errorf("openstep job: %+v", j)
	}
	wantEndpoints(t, j, "L tcp4 127.0.0.1:8080", "U unix /run/x.sock")
	if m := j.Sockets[1].Sockets[0].PathMode; m == nil || *m != 0o600 {
		t.Errorf("SockPathMode 384 = %v, want 0600", m)
	}

	_, diags = Decode([]byte(`{ Label = x; Program = "/bin/true"; RunAtLoad = maybe; }`), "t.plist")
	if got := diagText(diags); !strings.Contains(got, `t.plist: RunAtLoad: error: must be a boolean: write YES or NO (or true/false), not "maybe"`) {
		t.Errorf("got:\n%s", got)
	}
}

func TestBinary(t *testing.T) {
	data, err := plist.Marshal(map[string]any{
		"Label":            "org.bin",
		"ProgramArguments": []string{"/bin/cat"},
		"Sockets":          map[string]any{"L": map[string]any{"SockServiceName": 8080, "SockNodeName": "::1"}},
		"RunAtLoad":        true,
	}, plist.BinaryFormat)
	if err != nil {
		t.Fatal(err)
	}
	j := mustDecode(t, data)
	if j.Source != SourceBinary || !j.RunAtLoad {
		t.Errorf("source %q", j.Source)
	}
	wantEndpoints(t, j, "L tcp6 [::1]:8080")
}

func TestBadInput(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"too large", make([]byte, MaxFileSize+1), "t.plist: error: file is 1048577 bytes, larger than the 1048576 bytes sockd accepts for a job file"},
		{"deep xml", []byte("<plist>" + strings.Repeat("<array>", 100) + strings.Repeat("</array>", 100) + "</plist>"), "t.plist:1: error: not a valid XML property list: nested more than 64 levels deep"},
		{"deep text", []byte(strings.Repeat("(", 100) + strings.Repeat(")", 100)), "t.plist: error: not a valid property list (OpenStep): nested more than 64 levels deep"},
		{"not a dict", []byte(`<plist><array/></plist>`), "t.plist: error: the top level of a job file must be a dictionary, not an array"},
		{"broken xml", []byte("<plist>\n<dict>\n<key>Label</key>\n</plist>"), "t.plist:4: error: not a valid XML property list: element <dict> closed by </plist>"},
		{"empty", []byte(" \n"), "t.plist: error: file is empty: a job file is a property list dictionary with at least Label and ProgramArguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, diags := Decode(tc.data, "t.plist")
			if j != nil {
				t.Fatal("loaded")
			}
			if got := diagText(diags); !strings.Contains(got, tc.want) {
				t.Errorf("want %q, got:\n%s", tc.want, got)
			}
		})
	}
}

// TestCommentWithDoubleDash: CoreFoundation accepts "--" inside XML
// comments; so does sockd, and line numbers stay right.
func TestCommentWithDoubleDash(t *testing.T) {
	src := "<?xml version=\"1.0\"?>\n<plist version=\"1.0\">\n<dict>\n<!-- built with --enable-x -->\n<key>Label</key><string>x</string>\n<key>Program</key><string>/bin/true</string>\n<key>Bogus</key><true/>\n</dict>\n</plist>\n"
	j, diags := Decode([]byte(src), "t.plist")
	if j == nil {
		t.Fatalf("did not load:\n%s", diagText(diags))
	}
	if len(diags) != 1 || diags[0].String() != "t.plist:7: Bogus: warning: unknown top-level key; it is ignored (check the spelling)" {
		t.Errorf("diags:\n%s", diagText(diags))
	}
}

// bplistChain builds a binary plist of n+1 arrays where array i holds
// width references to array i-1: width 1 nests n deep, width 2 shares
// objects so the tree expands to 2^n values.
func bplistChain(n, width int) []byte {
	out := []byte("bplist00")
	var offsets []int
	offsets = append(offsets, len(out))
	out = append(out, 0xA0)
	for i := 1; i <= n; i++ {
		offsets = append(offsets, len(out))
		out = append(out, byte(0xA0|width))
		for k := 0; k < width; k++ {
			out = append(out, byte(i-1))
		}
	}
	table := len(out)
	for _, o := range offsets {
		out = append(out, byte(o>>8), byte(o))
	}
	tr := make([]byte, 32)
	tr[6], tr[7] = 2, 1
	be := func(b []byte, v int) {
		for i := 7; i >= 0; i-- {
			b[i] = byte(v)
			v >>= 8
		}
	}
	be(tr[8:16], n+1)
	be(tr[16:24], n)
	be(tr[24:32], table)
	return append(out, tr...)
}

func TestBinaryBombs(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"deep", bplistChain(200, 1), "nested more than 64 levels deep"},
		{"shared", bplistChain(60, 2), "expands to more than 1048576 values"},
		{"ok", bplistChain(10, 1), "the top level of a job file must be a dictionary, not an array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, diags := Decode(tc.data, "t.plist")
			if j != nil || !strings.Contains(diagText(diags), tc.want) {
				t.Errorf("want %q, got:\n%s", tc.want, diagText(diags))
			}
		})
	}
}
