package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/sockd/sockd/internal/freeport"
)

// TestPrintSeveralJobs: print of a file of several jobs (an inetd.conf)
// says so and shows the one named by its label; a job the loader refuses
// is shown with its errors, and print exits 1.
func TestPrintSeveralJobs(t *testing.T) {
	dir := t.TempDir()
	p, q := freeport.Port(t, "tcp"), freeport.Port(t, "tcp")
	conf := writeFile(t, dir, "inetd.conf", fmt.Sprintf("127.0.0.1:%d stream tcp nowait root /bin/cat cat\n"+
		"127.0.0.1:%d stream tcp nowait sockd-no-such-user /bin/cat cat\n", p, q), 0o644)
	good, bad := fmt.Sprintf("inetd.%d.tcp@127.0.0.1", p), fmt.Sprintf("inetd.%d.tcp@127.0.0.1", q)

	_, errOut, code := sockd(t, "print", conf)
	if want := fmt.Sprintf("%s holds 2 jobs (%s, %s): name the one to show: sockd print %s LABEL", conf, good, bad, conf); code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("no label: exit %d\n%s\nwant %s", code, errOut, want)
	}
	out, errOut, code := sockd(t, "print", conf, good)
	if code != 0 || !strings.Contains(out, "Label:                "+good+"\n") || !strings.Contains(out, "(1 more problem about other entries of "+conf) {
		t.Errorf("good: exit %d %s\n%s", code, errOut, out)
	}
	out, errOut, code = sockd(t, "print", "--json", conf, bad)
	var v struct {
		Loaded      bool
		Diagnostics []string
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 1 || v.Loaded || len(v.Diagnostics) != 1 ||
		!strings.HasPrefix(v.Diagnostics[0], conf+`:2: user: error: user "sockd-no-such-user" does not exist`) ||
		!strings.Contains(errOut, "job "+bad+" has errors; sockd would not load it") {
		t.Errorf("refused: exit %d %v %+v\n%s", code, err, v, errOut)
	}
	if _, errOut, code := sockd(t, "print", conf, "inetd.nothing"); code != 1 || !strings.Contains(errOut, `has no job labelled "inetd.nothing"; its jobs: `+good) {
		t.Errorf("unknown label: exit %d\n%s", code, errOut)
	}
	// By label alone, from the legacy sources serve would load.
	if out, errOut, code := sockd(t, "print", good, "--inetd-conf", conf, "--jobs", dir); code != 0 || !strings.Contains(out, "Label:                "+good+"\n") {
		t.Errorf("LABEL --inetd-conf: exit %d %s\n%s", code, errOut, out)
	}
}

// TestCheckUID: check --uid judges for a sockd run by another user and
// says so in its summary.
func TestCheckUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: judges root's files for another uid")
	}
	dir := t.TempDir()
	low := writeFile(t, dir, "low.plist", jobDoc("org.low", `<key>inetdCompatibility</key><dict><key>Wait</key><false/></dict>`+
		`<key>Sockets</key><dict><key>L</key><dict><key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>79</string></dict></dict>`), 0o644)
	out, _, code := sockd(t, "check", "--uid", "65534", dir)
	if code != 1 || !strings.Contains(out, low+": Sockets.L.SockServiceName: error: port 79 is below") ||
		!strings.HasSuffix(out, "capabilities and limits assumed\n") || !strings.Contains(out, "; judged for sockd as uid 65534") {
		t.Errorf("exit %d\n%s", code, out)
	}
	if out, _, code := sockd(t, "check", "--uid", "0", dir); code != 0 || !strings.HasSuffix(out, summary("1 file checked, 1 job valid: 0 errors, 0 warnings")) {
		t.Errorf("--uid 0: exit %d\n%s", code, out)
	}
	if _, errOut, code := sockd(t, "check", "--uid", "sockd-no-such-user", dir); code != 2 || !strings.Contains(errOut, `--uid "sockd-no-such-user"`) {
		t.Errorf("unknown user: exit %d\n%s", code, errOut)
	}
}
