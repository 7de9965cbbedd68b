package job

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusDir is the shared corpus beside the repository (../shared/corpus
// from the repository root, in CI as here).
func corpusDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "corpus", "launchd")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpus missing: %v", err)
		}
		t.Skipf("corpus not found beside the repository: %v", err)
	}
	return dir
}

// needServices skips (or fails under CI) when /etc/services is missing:
// the corpus uses service names (ssh, ipp, netbios-ns, ...).
func needServices(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/etc/services"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("/etc/services is missing (install Debian package netbase): %v", err)
		}
		t.Skipf("needs /etc/services (Debian package netbase): %v", err)
	}
}

// wantDiag is one expected diagnostic: severity, exact key path, and a
// substring of the message.
type wantDiag struct {
	sev Severity
	key string
	sub string
}

type corpusCase struct {
	ok    bool
	diags []wantDiag
	check func(t *testing.T, j *Job)
}

func endpointsOf(j *Job) []string {
	var out []string
	for _, e := range j.Endpoints() {
		out = append(out, e.Group+" "+e.Network+" "+e.Address)
	}
	return out
}

func wantEndpoints(t *testing.T, j *Job, want ...string) {
	t.Helper()
	got := endpointsOf(j)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("endpoints:\n got %q\nwant %q", got, want)
	}
}

// corpusCases holds the files that fail, and the files with something
// particular to check. Every other file must load without errors.
var corpusCases = map[string]corpusCase{
	"apple-launchd--missing_req_keys.plist": {diags: []wantDiag{
		{Error, "Label", "missing: every job needs a Label"},
		{Error, "ProgramArguments", "missing: the job needs ProgramArguments"},
	}},
	"apple-OpenSSH--StartupParameters-startup.plist": {diags: []wantDiag{
		{Error, "Label", "missing"},
		{Warning, "Provides", "unknown top-level key"},
	}},
	"apple-launchd--StartupItems-IPServices.plist": {diags: []wantDiag{
		{Error, "Label", "missing"},
		{Warning, "Uses", "unknown top-level key"},
	}},
	"osquery--test-FileSyncAgent-sshd.plist": {diags: []wantDiag{
		{Error, "Sockets.Listeners.SockServiceName", `unknown service name "appleugcontrol"`},
		{Warning, "com.apple.Sync", "unknown top-level key"},
	}},
	"go-launchd--testdata-launchd.plist": {diags: []wantDiag{
		// Go template placeholders are not service names.
		{Error, "Sockets.tcp.SockServiceName", `unknown service name "{{.TCP}}"`},
		{Error, "Sockets.tcp-dualstack-single-socket.SockServiceName", `unknown service name`},
	}},
	"procursus--org.gnu.inetutils.talkd.plist": {diags: []wantDiag{
		{Error, "Sockets.TalkdListener.SockType", "a datagram socket cannot be served with inetdCompatibility Wait=false"},
	}},
	"procursus--org.gnu.inetutils.tftpd.plist": {diags: []wantDiag{
		{Error, "Sockets.TFTPListener.SockType", "a datagram socket cannot be served with inetdCompatibility Wait=false"},
	}},

	"apple-cups-372.4--org.cups.cupsd.plist": {ok: true, // "--" inside an XML comment
		diags: []wantDiag{{Warning, "Sockets.Listeners[2].SockPathMode", "49663 is octal 0140777"}},
		check: func(t *testing.T, j *Job) {
			wantEndpoints(t, j, "Listeners tcp6 [::1]:631", "Listeners tcp4 127.0.0.1:631", "Listeners unix /private/var/run/cupsd")
			if m := j.Sockets[0].Sockets[2].PathMode; m == nil || *m != 0o777 {
				t.Errorf("PathMode = %v, want 0777", m)
			}
			if j.Mode() != ModeHandoff || len(j.KeepAlive.PathState) != 1 {
				t.Errorf("mode %v, PathState %v", j.Mode(), j.KeepAlive.PathState)
			}
		}},
	"apple-cups-218.30--org.cups.cupsd.plist": {ok: true, check: func(t *testing.T, j *Job) {
		wantEndpoints(t, j, "Listeners tcp6 [::1]:631", "Listeners tcp4 127.0.0.1:631", "Listeners unix /private/var/run/cupsd")
	}},
	"apple-samba-100.9--swat.plist": {ok: true, // integer SockServiceName
		diags: []wantDiag{{Warning, "GID", "GID is not a launchd key"}},
		check: func(t *testing.T, j *Job) {
			wantEndpoints(t, j, "Listeners tcp6 [::1]:901", "Listeners tcp4 127.0.0.1:901")
			if !j.Disabled || j.Mode() != ModeInetdNowait || j.Argv[1] != "-d 10" {
				t.Errorf("disabled %v mode %v argv %q", j.Disabled, j.Mode(), j.Argv)
			}
		}},
	"Tunnelblick--net.tunnelblick.tunnelblick.tunnelblickd.plist": {ok: true, check: func(t *testing.T, j *Job) {
		s := j.Sockets[0].Sockets[0]
		if s.Type != Stream || s.Family != Unix || *s.PathMode != 0o666 {
			t.Errorf("socket %+v", s)
		}
		if j.GroupName != "" { // "wheel" is a no-op, as in launchd
			t.Errorf("GroupName = %q", j.GroupName)
		}
	}},
	"apple-ipsec-164.9--com.apple.racoon.binary.plist": {ok: true, check: func(t *testing.T, j *Job) {
		if j.Source != SourceBinary || j.Label != "com.apple.racoon" {
			t.Errorf("source %q label %q", j.Source, j.Label)
		}
		wantEndpoints(t, j, "Listeners unix /var/run/vpncontrol.sock")
		if m := j.Sockets[0].Sockets[0].PathMode; m == nil || *m != 0o600 {
			t.Errorf("PathMode %v", m)
		}
	}},
	"apple-ipsec-305--com.apple.racoon.binary.plist": {ok: true,
		diags: []wantDiag{{Warning, "MachServices", "Darwin-only"}},
		check: func(t *testing.T, j *Job) {
			if j.Source != SourceBinary {
				t.Errorf("source %q", j.Source)
			}
			wantEndpoints(t, j, "Listeners unix /var/run/vpncontrol.sock")
		}},
	"homebrew-generated--homebrew.mxcl.ollama.plist": {ok: true,
		diags: []wantDiag{{Warning, "EnvironmentVariables.OLLAMA_FLASH_ATTENTION", `key "OLLAMA_FLASH_ATTENTION" appears twice in this dictionary (lines 7 and 19)`}}},
	"apple-OpenSSH--com.openssh.ssh-agent.plist": {ok: true,
		diags: []wantDiag{{Warning, "Sockets.Listeners.SecureSocketWithKey", "not supported by sockd yet"}},
		check: func(t *testing.T, j *Job) {
			if len(j.Sockets) != 0 {
				t.Errorf("sockets %v", j.Sockets)
			}
		}},
	"apple-OpenSSH--com.openssh.sshd.plist": {ok: true,
		diags: []wantDiag{{Warning, "inetdCompatibility.Instances", "SockdLimits.MaxChildren"}},
		check: func(t *testing.T, j *Job) {
			wantEndpoints(t, j, "Listeners tcp6 [::]:22", "Listeners tcp4 0.0.0.0:22")
			if j.AbandonProcessGroup {
				t.Error("sockd does not force AbandonProcessGroup on inetd jobs (unlike launchd)")
			}
		}},
	"apple-syslog-148.7--com.apple.syslogd.plist": {ok: true, check: func(t *testing.T, j *Job) {
		wantEndpoints(t, j, "AppleSystemLogger unix /var/run/asl_input", "BSDSystemLogger unixgram /var/run/syslog")
		if !j.KeepAlive.Always {
			t.Error("OnDemand false means KeepAlive true")
		}
	}},
	"apple-syslog--com.apple.syslogd.plist": {ok: true, check: func(t *testing.T, j *Job) {
		if len(j.Sockets) != 0 || j.Mode() != ModeNone {
			t.Errorf("empty Sockets dict: %v", j.Sockets)
		}
	}},
	"procursus--org.gnu.inetutils.telnetd.plist": {ok: true, check: func(t *testing.T, j *Job) {
		wantEndpoints(t, j, "TelnetListenerV4 tcp4 127.0.0.1:46", "TelnetListenerV6 tcp6 [::1]:46")
	}},
	"apple-samba--org.samba.smbd.plist": {ok: true, check: func(t *testing.T, j *Job) {
		wantEndpoints(t, j, "direct tcp4 0.0.0.0:445", "netbios tcp4 0.0.0.0:139") // sorted by name
	}},
	"apple-rsync--rsync.plist": {ok: true, check: func(t *testing.T, j *Job) {
		wantEndpoints(t, j, "Listeners tcp4 127.0.0.1:873") // localhost + IPv4
	}},
	"apple-bootp--bootps.plist": {ok: true,
		diags: []wantDiag{{Warning, "Sockets.Listeners.ReceivePacketInfo", "unknown socket key"}},
		check: func(t *testing.T, j *Job) {
			wantEndpoints(t, j, "Listeners udp4 0.0.0.0:67")
			if j.Mode() != ModeInetdWait {
				t.Errorf("mode %v", j.Mode())
			}
		}},
	"launchd-keepalive--com.tjluoma.keeprunning.mail.plist": {ok: true,
		diags: []wantDiag{{Warning, "KeepAlive.NetworkState", "ignored"}}},
	"nix--org.nixos.nix-daemon.plist": {ok: true, check: func(t *testing.T, j *Job) {
		if len(j.SoftResourceLimits) != 1 || j.SoftResourceLimits[0].Name != "NumberOfFiles" {
			t.Errorf("rlimits %+v", j.SoftResourceLimits)
		}
	}},
}

func TestCorpus(t *testing.T) {
	dir := corpusDir(t)
	needServices(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.plist"))
	if err != nil || len(files) < 70 {
		t.Fatalf("corpus: %d files, %v", len(files), err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			tc, listed := corpusCases[name]
			if !listed {
				tc.ok = true
			}
			j, diags := LoadFile(f, LoadOptions{SkipPermissions: true})
			if tc.ok != (j != nil) {
				t.Fatalf("loaded = %v, want %v; diags:\n%s", j != nil, tc.ok, diagText(diags))
			}
			if tc.ok && diags.HasErrors() {
				t.Fatalf("errors on a loaded job:\n%s", diagText(diags))
			}
			for _, w := range tc.diags {
				if !hasDiag(diags, w) {
					t.Errorf("missing %s on %s containing %q; got:\n%s", w.sev, w.key, w.sub, diagText(diags))
				}
			}
			for _, d := range diags {
				if d.File != f {
					t.Errorf("diag names file %q, want %q", d.File, f)
				}
				if !strings.HasPrefix(d.String(), f) {
					t.Errorf("diag string %q does not start with the file", d)
				}
			}
			if j != nil {
				checkInvariants(t, j)
				if tc.check != nil {
					tc.check(t, j)
				}
			}
		})
	}
	for name := range corpusCases {
		if !seen[name] {
			t.Errorf("corpus case %s names no file", name)
		}
	}
}

// TestCorpusGoLaunchdFamilies: go-launchd's IPv4v6 socket family is
// accepted (the file fails only on its template placeholders).
func TestCorpusGoLaunchdFamilies(t *testing.T) {
	dir := corpusDir(t)
	_, diags := LoadFile(filepath.Join(dir, "go-launchd--testdata-launchd.plist"), LoadOptions{SkipPermissions: true})
	for _, d := range diags {
		if strings.HasSuffix(d.Key, ".SockFamily") || strings.HasSuffix(d.Key, ".SockType") {
			t.Errorf("unexpected diag on a socket family/type: %s", d)
		}
	}
	if !diags.HasErrors() {
		t.Fatal("template placeholders must fail service lookup")
	}
}

// TestCorpusOpenStep: the OpenStep corpus files parse as OpenStep (they
// are SystemStarter files, not jobs, so they fail on the missing Label).
func TestCorpusOpenStep(t *testing.T) {
	dir := corpusDir(t)
	data, err := os.ReadFile(filepath.Join(dir, "apple-OpenSSH--StartupParameters-startup.plist"))
	if err != nil {
		t.Fatal(err)
	}
	d := &decoder{file: "x"}
	root, ok := d.parse(data)
	if !ok || d.source != SourceOpenStep {
		t.Fatalf("parse ok=%v source %q diags %v", ok, d.source, d.diags)
	}
	if root["Description"] != "secure login server" {
		t.Errorf("Description = %v", root["Description"])
	}
}

func diagText(ds Diags) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString("  " + d.String() + "\n")
	}
	return b.String()
}

func hasDiag(ds Diags, w wantDiag) bool {
	for _, d := range ds {
		if d.Severity == w.sev && d.Key == w.key && strings.Contains(d.Msg, w.sub) {
			return true
		}
	}
	return false
}

// checkInvariants holds for every loaded job.
func checkInvariants(t *testing.T, j *Job) {
	t.Helper()
	if j.Label == "" {
		t.Error("empty label")
	}
	if j.Path != "" && len(j.Argv) == 0 {
		t.Error("Path without Argv")
	}
	for gi := 1; gi < len(j.Sockets); gi++ {
		if j.Sockets[gi-1].Name >= j.Sockets[gi].Name {
			t.Errorf("groups not sorted: %q before %q", j.Sockets[gi-1].Name, j.Sockets[gi].Name)
		}
	}
	for _, e := range j.Endpoints() {
		if e.Socket == nil || e.Group == "" || e.Key != e.Socket.Key || e.Network == "" || e.Address == "" {
			t.Errorf("endpoint not filled in: %+v", e)
		}
	}
	if j.ThrottleInterval < 0 || j.Limits.MaxChildren < 1 {
		t.Errorf("defaults not filled: %+v", j)
	}
}

// TestFastXMLMatchesReference: on every corpus file, on the examples and
// on hand-written edge cases, the fast XML path either declines or gives
// exactly howett.net/plist's tree; and it takes the usual job files.
func TestFastXMLMatchesReference(t *testing.T) {
	var files []string
	if _, err := os.Stat(filepath.Join("..", "..", "shared", "corpus", "launchd")); err == nil {
		files, _ = filepath.Glob(filepath.Join("..", "..", "shared", "corpus", "launchd", "*.plist"))
	}
	examples, _ := filepath.Glob(filepath.Join("..", "examples", "jobs", "*.plist"))
	if len(examples) == 0 {
		t.Fatal("no example jobs")
	}
	fast := 0
	for _, p := range append(files, examples...) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		checkFastXML(t, data)
		if _, ok := fastXMLTree(data); ok {
			fast++
		}
	}
	for _, p := range examples {
		data, _ := os.ReadFile(p)
		if _, ok := fastXMLTree(data); !ok {
			t.Errorf("%s: not taken by the fast path", p)
		}
	}
	t.Logf("fast path took %d of %d files", fast, len(files)+len(examples))

	const head = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n"
	for _, c := range []struct {
		doc  string
		fast bool
	}{
		{head + `<plist version="1.0"><dict><key>Label</key><string>x</string></dict></plist>`, true},
		{head + `<plist version="1.0"><dict><key>A</key><string>&lt;&amp;&gt;&quot;&apos;</string><key>B</key><string/><key>C</key><integer>0</integer><key>D</key><integer>-9</integer><key>E</key><false></false></dict></plist>` + "\n<!-- end -->\n", true},
		{`<plist><array><string> spaced	tab </string><dict/><array/></array></plist>`, true},
		{head + `<plist version="1.1"><dict/></plist>`, false},
		{`<?xml version="1.1"?><plist><dict/></plist>`, false},
		{`<?xml version="1.0" encoding="ISO-8859-1"?><plist><dict/></plist>`, false},
		{"<plist><dict><key>A</key><string>a\r\nb</string></dict></plist>", false},
		{`<plist><dict><key>A</key><string>&#65;</string></dict></plist>`, false},
		{`<plist><dict><key>A</key><string><![CDATA[x]]></string></dict></plist>`, false},
		{`<plist><dict><key>A</key><integer>007</integer></dict></plist>`, false},
		{`<plist><dict><key>A</key><integer>0x10</integer></dict></plist>`, false},
		{`<plist><dict><key>A</key><integer> 1</integer></dict></plist>`, false},
		{`<plist><dict><key>A</key><real>1.5</real></dict></plist>`, false},
		{`<plist><dict><key>A</key><true/><key>A</key><false/></dict></plist>`, false},
		{`<plist><dict><key>CF$UID</key><integer>1</integer></dict></plist>`, false},
		{`<plist><dict><key>A</key><string>é</string></dict></plist>`, false},
		{`<plist><dict><!-- a -- b --><key>A</key><true/></dict></plist>`, false},
		{`<plist><dict><key>A</key><true/></dict></plist><dict/>`, false},
		{`<plist><dict><key>A</key></dict></plist>`, false},
		{`<plist><dict junk="1"><key>A</key><true/></dict></plist>`, false},
	} {
		_, ok := fastXMLTree([]byte(c.doc))
		if ok != c.fast {
			t.Errorf("fast=%v, want %v: %s", ok, c.fast, c.doc)
		}
		checkFastXML(t, []byte(c.doc))
	}
}
