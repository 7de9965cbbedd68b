package job

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// proxyAs is a proxy job on 127.0.0.1:8080 forwarding to backend, run as
// user ("" for none).
func proxyAs(backend, user string) []byte {
	body := `<key>Label</key><string>org.test</string>` +
		sockets(sock("L", `<key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>8080</string>`)) +
		`<key>SockdProxy</key><dict><key>Backend</key><string>` + backend + `</string></dict>`
	if user != "" {
		body += `<key>UserName</key><string>` + user + `</string>`
	}
	return xmlJob(body)
}

// TestBackendPathOfAnotherUser (root): a Unix socket Backend in a
// directory another user owns, or may write, is refused at load for a job
// that sockd connects to as root, naming the key and the directory; the
// same path with a UserName is loaded (sockd connects as that user), and
// so is a path only root may change.
func TestBackendPathOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the check is root sockd's")
	}
	base := t.TempDir()
	home := filepath.Join(base, "home")
	shared := filepath.Join(base, "shared")
	safe := filepath.Join(base, "safe")
	for _, d := range []string{home, shared, safe} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(home, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{home, shared} {
		backend := filepath.Join(dir, "app", "backend.sock")
		j, diags := Decode(proxyAs(backend, ""), "p.plist")
		text := diagText(diags)
		if j != nil || !strings.Contains(text, "SockdProxy.Backend: error: "+backend+": "+dir+" is ") {
			t.Errorf("Backend %s without UserName: loaded %t, want an error naming %s:\n%s", backend, j != nil, dir, text)
		}
		if j, diags := Decode(proxyAs(backend, "nobody"), "p.plist"); j == nil {
			t.Errorf("Backend %s with UserName nobody refused:\n%s", backend, diagText(diags))
		}
	}
	for _, backend := range []string{filepath.Join(safe, "backend.sock"), filepath.Join(safe, "none", "backend.sock")} {
		if j, diags := Decode(proxyAs(backend, ""), "p.plist"); j == nil {
			t.Errorf("Backend %s (only root may change the path) refused:\n%s", backend, diagText(diags))
		}
	}
}
