package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/privilege"
)

// TestMain lets the test binary act as sockd itself when
// SOCKD_TEST_MAIN=1, so tests run the real command tree in a child
// process without building anything.
func TestMain(m *testing.M) {
	if os.Getenv("SOCKD_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stderr))
	}
	os.Exit(m.Run())
}

func sockd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SOCKD_TEST_MAIN=1")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("sockd %q: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// plistDoc wraps a one-line body; every key is on line 4.
func plistDoc(body string) string {
	return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n" + body + "\n</dict>\n</plist>\n"
}

const catJob = `<key>Label</key><string>%s</string><key>ProgramArguments</key><array><string>/bin/cat</string></array>`

func jobDoc(label, extra string) string {
	return plistDoc(strings.Replace(catJob, "%s", label, 1) + extra)
}

func copyExample(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "jobs", "echo.plist"))
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "echo.plist", string(data), 0o644)
}

func TestCheckValid(t *testing.T) {
	dir := t.TempDir()
	copyExample(t, dir)
	out, errOut, code := sockd(t, "check", dir)
	if code != 0 || out != summary("1 file checked, 1 job valid: 0 errors, 0 warnings") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestCheckErrorsAndWarnings(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a-good.plist", jobDoc("org.good", ""), 0o644)
	bad := writeFile(t, dir, "b-bad.plist", jobDoc("org.bad", `<key>Sockets</key><dict><key>L</key><dict><key>SockType</key><string>Streem</string><key>SockServiceName</key><string>9</string></dict></dict>`), 0o644)
	warn := writeFile(t, dir, "c-warn.plist", jobDoc("org.warn", `<key>Frobnicate</key><true/>`), 0o644)
	writeFile(t, dir, "notes.txt", "not a job", 0o644)

	out, _, code := sockd(t, "check", dir)
	want := bad + `:4: Sockets.L.SockType: error: unknown SockType "Streem": use stream, dgram, seqpacket or fifo (launchd would silently use stream)` + "\n" +
		warn + ":4: Frobnicate: warning: unknown top-level key; it is ignored (check the spelling)\n" +
		summary("3 files checked, 2 jobs valid: 1 error, 1 warning")
	if code != 1 || out != want {
		t.Errorf("exit %d, stdout:\n%s\nwant:\n%s", code, out, want)
	}

	// Warnings alone do not fail.
	out, _, code = sockd(t, "check", warn)
	if code != 0 || !strings.HasSuffix(out, summary("1 file checked, 1 job valid: 0 errors, 1 warning")) {
		t.Errorf("warnings only: exit %d\n%s", code, out)
	}
}

func TestCheckCrossFile(t *testing.T) {
	dir := t.TempDir()
	sock := `<key>Sockets</key><dict><key>L</key><dict><key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>8080</string></dict></dict>`
	writeFile(t, dir, "a.plist", jobDoc("org.a", sock), 0o644)
	b := writeFile(t, dir, "b.plist", jobDoc("org.a", ""), 0o644)
	c := writeFile(t, dir, "c.plist", jobDoc("org.c", sock), 0o644)
	out, _, code := sockd(t, "check", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 1 || len(lines) != 3 ||
		!strings.HasPrefix(lines[0], b+`: Label: error: duplicate Label "org.a"`) ||
		!strings.HasPrefix(lines[1], c+`: Sockets.L: error: tcp4 127.0.0.1:8080 conflicts with tcp4 127.0.0.1:8080 of job "org.a"`) ||
		lines[2]+"\n" != summary("3 files checked, 1 job valid: 2 errors, 0 warnings") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestCheckPermissions(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "gw.plist", jobDoc("org.gw", ""), 0o666)
	out, _, code := sockd(t, "check", p)
	if code != 1 || !strings.Contains(out, p+": error: file is group- or world-writable (mode 0666)") || !strings.Contains(out, "chmod go-w "+p) {
		t.Errorf("exit %d\n%s", code, out)
	}
	out, _, code = sockd(t, "check", "--no-permissions", p)
	if code != 0 {
		t.Errorf("--no-permissions: exit %d\n%s", code, out)
	}
}

// TestCheckInetdFiles: a file given to check is loaded in its own format
// (an inetd.conf here), as serve loads it from --jobs or --inetd-conf.
func TestCheckInetdFiles(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "inetd.conf", "127.0.0.1:8090 stream tcp nowait root /bin/cat cat\n", 0o644)
	q := writeFile(t, dir, "broken.conf", "127.0.0.1:8091 stream tcp nowait root /bin/cat cat\n127.0.0.1:8092 stream tcp\n", 0o644)
	out, _, code := sockd(t, "check", p, "--inetd-conf", q)
	if code != 1 || !strings.Contains(out, q+":2: error: expected at least 6 fields") || !strings.HasSuffix(out, summary("2 files checked, 2 jobs valid: 1 error, 0 warnings")) {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestCheckCorpus(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "corpus", "launchd")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("corpus not found: %v", err)
	}
	if _, err := os.Stat("/etc/services"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs /etc/services (netbase)")
		}
		t.Skip("needs /etc/services (Debian package netbase)")
	}
	out, _, code := sockd(t, "check", "--no-permissions", dir)
	if code != 1 ||
		!strings.Contains(out, `osquery--test-FileSyncAgent-sshd.plist:22: Sockets.Listeners.SockServiceName: error: unknown service name "appleugcontrol"`) ||
		// Several versions of one job share a Label and an address.
		!strings.Contains(out, `apple-ipsec-92--com.apple.racoon.plist: Label: error: duplicate Label "com.apple.racoon"`) ||
		// Users and groups of other systems are unknown here.
		!strings.Contains(out, `launch_socket_server--com.example.myserver.plist: UserName: error: user "your-username-here" does not exist on this machine`) ||
		!strings.Contains(out, "76 files checked, "+corpusCounts()+" errors, ") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

// corpusCounts are the valid jobs and errors of the launchd corpus on
// this machine: nix-daemon's SoftResourceLimits NumberOfFiles 1048576 is
// an error where it is above the hard limit (a soft limit cannot pass it).
func corpusCounts() string {
	if privilege.Current().Limits[unix.RLIMIT_NOFILE].Max < 1048576 {
		return "57 jobs valid: 30"
	}
	return "58 jobs valid: 29"
}

func TestUsage(t *testing.T) {
	if _, errOut, code := sockd(t, "check"); code != 2 || !strings.Contains(errOut, "usage: sockd check") {
		t.Errorf("check without args: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := sockd(t); code != 2 || !strings.Contains(errOut, "usage: sockd COMMAND") {
		t.Errorf("no command: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := sockd(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d\n%s", code, errOut)
	}
	if out, _, code := sockd(t, "help"); code != 0 || !strings.Contains(out, "check") || !strings.Contains(out, "print") || !strings.Contains(out, "version") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
	if _, _, code := sockd(t, "check", "-h"); code != 0 {
		t.Errorf("check -h: exit %d", code)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := sockd(t, "version")
	if code != 0 || !strings.HasPrefix(out, "sockd ") || !strings.Contains(out, "linux/") {
		t.Errorf("exit %d: %q", code, out)
	}
	version = "1.2.3"
	defer func() { version = "" }()
	if v := versionString(); v != "1.2.3" {
		t.Errorf("versionString = %q", v)
	}
}

func TestPrintText(t *testing.T) {
	dir := t.TempDir()
	p := copyExample(t, dir)
	out, errOut, code := sockd(t, "print", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"Label:                org.sockd.example.echo\n",
		"Mode:                 inetd-nowait (",
		"Program:              /bin/cat\n",
		"Argv:                 [\"/bin/cat\"]\n",
		"Timing:               ThrottleInterval 10s, ExitTimeOut 20s, TimeOut 30s\n",
		"Limits:               MaxChildren 256, MaxPerSource unlimited, Rate unlimited, Burst 0, Pause 5s\n",
		"  -  Listeners  tcp4  127.0.0.1:8007  Sockets.Listeners\n",
		"Problems:\n  (none)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// By label, flags after the argument.
	out2, errOut, code := sockd(t, "print", "org.sockd.example.echo", "--jobs", dir)
	if code != 0 || out2 != out {
		t.Errorf("print LABEL: exit %d %s\n%s", code, errOut, out2)
	}
	if _, errOut, code := sockd(t, "print", "org.nothing", "--jobs", dir); code != 1 || !strings.Contains(errOut, `"org.nothing" is neither a job file nor the Label of a job in`) {
		t.Errorf("unknown label: exit %d %s", code, errOut)
	}
}

func TestPrintHandoffJSON(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "h.plist", jobDoc("org.h", `<key>Sockets</key><dict>`+
		`<key>web</key><dict><key>SockServiceName</key><string>8080</string></dict>`+
		`<key>admin</key><dict><key>SockPathName</key><string>/run/h.sock</string><key>SockPathMode</key><integer>438</integer></dict>`+
		`</dict><key>Bogus</key><true/>`), 0o644)
	out, errOut, code := sockd(t, "print", "--json", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var v struct {
		Label     string
		Mode      string
		Path      string
		Endpoints []struct {
			FD      int
			Group   string
			Network string
			Address string
			Mode    string
		}
		Diagnostics []string
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if v.Label != "org.h" || v.Mode != "handoff" || v.Path != "/bin/cat" || len(v.Endpoints) != 3 || len(v.Diagnostics) != 1 {
		t.Fatalf("%+v", v)
	}
	want := []string{"3 admin unix /run/h.sock 0666", "4 web tcp6 [::]:8080 ", "5 web tcp4 0.0.0.0:8080 "}
	for i, e := range v.Endpoints {
		got := strings.Join([]string{itoa(e.FD), e.Group, e.Network, e.Address, e.Mode}, " ")
		if got != want[i] {
			t.Errorf("endpoint %d = %q, want %q", i, got, want[i])
		}
	}
	if v.Diagnostics[0] != p+":4: Bogus: warning: unknown top-level key; it is ignored (check the spelling)" {
		t.Errorf("diag %q", v.Diagnostics[0])
	}
	text, _, _ := sockd(t, "print", p)
	if !strings.Contains(text, "  fd 3  admin  unix  /run/h.sock   Sockets.admin  mode 0666\n") || !strings.Contains(text, "  fd 5  web    tcp4  0.0.0.0:8080") {
		t.Errorf("text:\n%s", text)
	}
}

func TestPrintErrors(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "bad.plist", plistDoc(`<key>Label</key><string>x</string>`), 0o644)
	_, errOut, code := sockd(t, "print", p)
	if code != 1 || !strings.Contains(errOut, p+": ProgramArguments: error: missing") || !strings.Contains(errOut, "has errors; the job would not be loaded") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  string
		json bool
	}{
		{[]string{"a", "--json", "b"}, "a b", true},
		{[]string{"--json", "a"}, "a", true},
		{[]string{"a", "--", "--json"}, "a --json", false},
	} {
		fs := newTestFlagSet()
		j := fs.Bool("json", false, "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || strings.Join(pos, " ") != tc.pos || *j != tc.json {
			t.Errorf("%q: pos %q json %v err %v", tc.args, pos, *j, err)
		}
	}
}

func TestStringsFlagAndDirs(t *testing.T) {
	var s stringsFlag
	_ = s.Set("a")
	_ = s.Set("b")
	if s.String() != "a,b" || len(s) != 2 {
		t.Errorf("stringsFlag %v", s)
	}
	if os.Geteuid() == 0 {
		if d := defaultJobDirs(); len(d) != 1 || d[0] != "/etc/sockd/jobs" {
			t.Errorf("root dirs %v", d)
		}
	} else {
		t.Setenv("XDG_CONFIG_HOME", "/x")
		if d := defaultJobDirs(); len(d) != 1 || d[0] != "/x/sockd/jobs" {
			t.Errorf("user dirs %v", d)
		}
	}
	if _, err := newLogger("xml", "info"); err == nil {
		t.Error("bad format accepted")
	}
	if _, err := newLogger("json", "loud"); err == nil {
		t.Error("bad level accepted")
	}
	for _, f := range []string{"console", "json"} {
		l, err := newLogger(f, "debug")
		if err != nil || !l.Core().Enabled(-1) {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestCheckCountsXinetdFiles: an xinetd.d directory and an xinetd.conf
// that includes it count every file read, as a directory of plists does.
func TestCheckCountsXinetdFiles(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "xinetd.d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"one", "two", "three"} {
		writeFile(t, d, name, fmt.Sprintf("service s%d\n{\n\ttype = UNLISTED\n\tsocket_type = stream\n\tprotocol = tcp\n\tport = %d\n\twait = no\n\tuser = root\n\tserver = /bin/cat\n}\n", i, 20001+i), 0o644)
	}
	writeFile(t, d, "skipped.dpkg-old", "not read: xinetd skips names with a dot\n", 0o644)
	conf := writeFile(t, root, "xinetd.conf", "defaults\n{\n}\nincludedir "+d+"\n", 0o644)
	for _, c := range []struct {
		arg, want string
	}{
		{d, summary("3 files checked, 3 jobs valid: 0 errors, 0 warnings")},
		{conf, summary("4 files checked, 3 jobs valid: 0 errors, 0 warnings")},
	} {
		out, errOut, code := sockd(t, "check", c.arg)
		if code != 0 || out != c.want {
			t.Errorf("check %s: exit %d\nstdout:\n%s\nwant: %s\nstderr:\n%s", c.arg, code, out, c.want, errOut)
		}
	}
}
