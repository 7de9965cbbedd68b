package job

import (
	"strings"
	"testing"
)

const proxyHead = `<key>Label</key><string>org.test</string>`

func proxyJob(backend, socket string) string {
	return proxyHead + sockets(sock("L", socket)) + `<key>SockdProxy</key><dict><key>Backend</key><string>` + backend + `</string></dict>`
}

const loopback8080 = `<key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>8080</string>`

// TestBackendAndServiceName: a Backend sockd cannot connect to, and a
// SockServiceName with blanks (getaddrinfo would read " 80" as 80), are
// errors that name the fix.
func TestBackendAndServiceName(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{proxyJob("run/app.sock", loopback8080), `SockdProxy.Backend: error: "run/app.sock" is a relative path: sockd connects from its own working directory, not the job's: give the absolute path of the socket`},
		{proxyJob("127.0.0.1:99999", loopback8080), `SockdProxy.Backend: error: "127.0.0.1:99999": port 99999 is out of range: give a port from 1 to 65535`},
		{proxyJob("127.0.0.1:0", loopback8080), `port 0 is out of range`},
		{proxyJob("127.0.0.1", loopback8080), `SockdProxy.Backend: error: "127.0.0.1": want host:port or an absolute Unix socket path`},
		{proxyJob("@abstract", loopback8080), `an abstract Unix socket cannot be a Backend`},
		{proxyJob("/"+strings.Repeat("a", 120), loopback8080), `SockdProxy.Backend: error: path is 121 bytes long`},
		{base + sockets(sock("L", `<key>SockServiceName</key><string> 80</string>`)), `Sockets.L.SockServiceName: error: " 80" has blanks around it: write the port number or service name alone ("80")`},
		{base + sockets(sock("L", `<key>SockServiceName</key><string>http </string>`)), `"http " has blanks around it`},
	} {
		j, diags := Decode(xmlJob(c.body), "t.plist")
		if j != nil || !strings.Contains(diagText(diags), c.want) {
			t.Errorf("%s: loaded %v, want %q in\n%s", c.body, j != nil, c.want, diagText(diags))
		}
	}
	for _, b := range []string{"127.0.0.1:8180", "localhost:http", "/run/app.sock", "[::1]:8180", "backend.example:8180"} {
		if j, diags := Decode(xmlJob(proxyJob(b, loopback8080)), "t.plist"); j == nil {
			t.Errorf("Backend %s refused:\n%s", b, diagText(diags))
		}
	}
}

// TestBackendLoops: a proxy whose Backend is one of sockd's own sockets
// (its own, another job's, a wildcard of the port) is dropped; a backend
// elsewhere is kept.
func TestBackendLoops(t *testing.T) {
	echo := decodeT(t, "echo.plist", jobBody("org.echo", sock("L", loopback8080))+nowait)
	wild := decodeT(t, "wild.plist", jobBody("org.wild", sock("L", `<key>SockServiceName</key><string>8180</string>`))+nowait)
	unixJob := decodeT(t, "unix.plist", jobBody("org.unix", sock("L", `<key>SockPathName</key><string>/run/sockd-test.sock</string>`))+nowait)
	for _, c := range []struct {
		backend, listen string
		others          []*Job
		want            string // "" when the proxy is kept
	}{
		{"127.0.0.1:8080", loopback8080, nil, `p.plist: SockdProxy.Backend: error: 127.0.0.1:8080 is this job's own socket (Sockets.L tcp4 127.0.0.1:8080): sockd would forward every connection back to itself`},
		{"127.0.0.1:8080", `<key>SockServiceName</key><string>9090</string>`, []*Job{echo}, `p.plist: SockdProxy.Backend: error: 127.0.0.1:8080 is claimed by job "org.echo" (echo.plist, Sockets.L tcp4 127.0.0.1:8080)`},
		{"localhost:8180", `<key>SockServiceName</key><string>9090</string>`, []*Job{wild}, `is claimed by job "org.wild" (wild.plist, Sockets.L tcp4 0.0.0.0:8180)`},
		{"0.0.0.0:8080", `<key>SockServiceName</key><string>9090</string>`, []*Job{echo}, `is claimed by job "org.echo"`},
		{"/run/sockd-test.sock", `<key>SockServiceName</key><string>9090</string>`, []*Job{unixJob}, `is claimed by job "org.unix"`},
		{"192.0.2.1:8180", `<key>SockServiceName</key><string>9090</string>`, []*Job{wild}, ""},
		{"127.0.0.1:8181", loopback8080, []*Job{wild}, ""},
	} {
		p := decodeT(t, "p.plist", proxyJob(c.backend, c.listen))
		kept, diags := CrossCheck(append([]*Job{p}, c.others...))
		text := diagText(diags)
		if c.want == "" {
			if len(kept) != 1+len(c.others) || len(diags) != 0 {
				t.Errorf("%s: kept %d\n%s", c.backend, len(kept), text)
			}
			continue
		}
		if len(kept) != len(c.others) || !strings.Contains(text, c.want) {
			t.Errorf("%s: kept %d, want %q in\n%s", c.backend, len(kept), c.want, text)
		}
	}
}
