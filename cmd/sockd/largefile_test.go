package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// sameAddressDoc is a job whose n sockets all claim 127.0.0.1:8080.
func sameAddressDoc(n int) string {
	dict := `<dict><key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>8080</string></dict>`
	return jobDoc("org.same", `<key>Sockets</key><dict><key>L</key><array>`+strings.Repeat(dict, n)+`</array></dict>`)
}

// portZeroOpenStep is a job file of nearly 1 MiB in OpenStep text, as many
// port-0 sockets as fit, each under its own name: distinct sockets, none
// conflicting.
func portZeroOpenStep() string {
	var b strings.Builder
	b.WriteString(`{Label=org.port0;ProgramArguments=(/bin/cat);Sockets={`)
	for i := 0; b.Len() < 1<<20-100; i++ {
		fmt.Fprintf(&b, `s%05d={SockServiceName=0;};`, i)
	}
	b.WriteString("};}\n")
	return b.String()
}

// TestCheckLargeFiles runs check on the inputs of issue 15 item 3, which
// took 14 s and printed 385 MB (2,000 sockets on one address), and 114 s
// (1 MiB of port-0 sockets): each now takes bounded time, prints a few
// lines and names the count and the socket cap.
func TestCheckLargeFiles(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		path string
		want []string
	}{
		{writeFile(t, dir, "same.plist", sameAddressDoc(2000), 0o644), []string{
			`:4: Sockets.L[1]: error: tcp4 127.0.0.1:8080 is claimed by 1999 other sockets of this job (first: Sockets.L[0], last: Sockets.L[1999])`,
			`:4: Sockets: error: the job has 2000 sockets, more than the 1024 sockd accepts in one job`}},
		{writeFile(t, dir, "port0.plist", portZeroOpenStep(), 0o644), []string{
			`: Sockets: error: the job has 74888 sockets, more than the 1024 sockd accepts in one job`}},
	}
	for _, tc := range cases {
		start := time.Now()
		out, errOut, code := sockd(t, "check", tc.path)
		took := time.Since(start)
		if took > 10*time.Second || len(out)+len(errOut) > 64<<10 {
			t.Errorf("%s: %v and %d bytes of output, want under 10s and 64 KiB", tc.path, took, len(out)+len(errOut))
		}
		if code != 1 || !strings.Contains(out, "0 jobs valid") {
			t.Errorf("%s: exit %d, want 1 and no job valid:\n%.2000s", tc.path, code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, tc.path+w) {
				t.Errorf("%s: output lacks %q:\n%.2000s", tc.path, tc.path+w, out)
			}
		}
	}
}
