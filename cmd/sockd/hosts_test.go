package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func hostsDoc(label, key, host string) string {
	return jobDoc(label, `<key>`+key+`</key><array><string>`+host+`</string></array>`+
		`<key>inetdCompatibility</key><dict><key>Wait</key><false/></dict>`+
		`<key>Sockets</key><dict><key>L</key><dict><key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>9</string></dict></dict>`)
}

// TestCheckAndPrintHostLimits: check and print say whether this host
// (the kernel's name) loads a job, as serve decides: a job for another
// host claims nothing here, so two jobs with one Label and one address,
// for two hosts, do not conflict.
func TestCheckAndPrintHostLimits(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	here := writeFile(t, dir, "a-here.plist", hostsDoc("org.svc", "LimitLoadToHosts", strings.ToUpper(host)), 0o644)
	there := writeFile(t, dir, "b-there.plist", hostsDoc("org.svc", "LimitLoadToHosts", "other-host.invalid"), 0o644)
	out, _, code := sockd(t, "check", dir)
	want := there + `: LimitLoadToHosts: info: not loaded on this host (LimitLoadToHosts): this host, "` + host + `", is not among "other-host.invalid"` + "\n" +
		summary("2 files checked, 2 jobs valid (1 not loaded on this host): 0 errors, 0 warnings")
	if code != 0 || out != want {
		t.Errorf("check: exit %d\n%swant:\n%s", code, out, want)
	}

	out, errOut, code := sockd(t, "print", there)
	if code != 0 || !strings.Contains(out, `This host:            does not load the job (LimitLoadToHosts), so sockd does not serve it here: this host, "`+host+`", is not among "other-host.invalid"`+"\n") ||
		!strings.Contains(out, "Problems:\n  (none)\n") {
		t.Errorf("print (other host): exit %d %s\n%s", code, errOut, out)
	}
	out, errOut, code = sockd(t, "print", here)
	if code != 0 || !strings.Contains(out, "This host:            "+host+" loads the job (LimitLoadToHosts "+strings.ToUpper(host)+")\n") {
		t.Errorf("print (this host): exit %d %s\n%s", code, errOut, out)
	}
	// By label: the job this host loads, though another file sorts first.
	writeFile(t, dir, "0-first.plist", hostsDoc("org.svc", "LimitLoadFromHosts", host), 0o644)
	out, _, _ = sockd(t, "print", "--json", "org.svc", "--jobs", dir)
	var v struct {
		File             string
		LoadedOnThisHost bool `json:"loaded_on_this_host"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.File != here || !v.LoadedOnThisHost {
		t.Errorf("print LABEL: %+v %v\n%s", v, err, out)
	}
	out, _, _ = sockd(t, "print", "--json", there)
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.LoadedOnThisHost {
		t.Errorf("print --json (other host): %+v %v\n%s", v, err, out)
	}
}

// TestHostNamesCompareWhole: as in launchctl (strcasecmp with the kernel's
// host name), a name loads a job only when it is this host's whole name:
// its first label with a domain, or this host's first label when it has a
// domain, does not load a job limited to it, and check says so.
func TestHostNamesCompareWhole(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	other := host + ".prod.example.invalid" // a longer name of this host's first label
	if short, _, dotted := strings.Cut(host, "."); dotted {
		other = short
	}
	dir := t.TempDir()
	p := writeFile(t, dir, "a.plist", hostsDoc("org.svc", "LimitLoadToHosts", other), 0o644)
	out, _, code := sockd(t, "check", "--list", dir)
	want := p + `: LimitLoadToHosts: info: not loaded on this host (LimitLoadToHosts): this host, "` + host + `", is not among "` + other +
		`" ("` + other + `" only differs in the domain: names are compared whole, as launchd does; write "` + host + `" to load the job here)` + "\n"
	if code != 0 || !strings.HasPrefix(out, want) || strings.Contains(out, "loaded (") {
		t.Errorf("check: exit %d\n%swant:\n%s", code, out, want)
	}
}

// TestCheckMisspeltKey: check refuses a job whose misspelt key would
// change how it is served, naming the file, the key and the fix.
func TestCheckMisspeltKey(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "echo.plist", jobDoc("org.echo", `<key>inetdCompatability</key><dict><key>Wait</key><false/></dict>`+
		`<key>Sockets</key><dict><key>L</key><dict><key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>9</string></dict></dict>`), 0o644)
	out, _, code := sockd(t, "check", p)
	want := p + ":4: inetdCompatability: error: unknown top-level key; did you mean inetdCompatibility? a misspelt inetdCompatibility would serve the job in handoff mode, which an inetd program cannot serve\n" +
		summary("1 file checked, 0 jobs valid: 1 error, 0 warnings")
	if code != 1 || out != want {
		t.Errorf("exit %d\n%swant:\n%s", code, out, want)
	}
}
