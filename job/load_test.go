package job

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeJob(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, xmlJob(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // beat the umask
		t.Fatal(err)
	}
	return p
}

func jobBody(label, socket string) string {
	b := `<key>Label</key><string>` + label + `</string><key>ProgramArguments</key><array><string>/bin/true</string></array>`
	if socket != "" {
		b += sockets(socket)
	}
	return b
}

func TestPermissions(t *testing.T) {
	dir := t.TempDir()
	opts := LoadOptions{UID: os.Geteuid()}

	p := writeJob(t, dir, "ok.plist", jobBody("org.ok", ""), 0o644)
	if j, diags := LoadFile(p, opts); j == nil {
		t.Fatalf("0644 file owned by us: %s", diagText(diags))
	}

	p = writeJob(t, dir, "gw.plist", jobBody("org.gw", ""), 0o664)
	j, diags := LoadFile(p, opts)
	want := p + ": error: file is group- or world-writable (mode 0664), so anyone in that group could change what runs; launchd skips such files too: chmod go-w " + p
	if j != nil || len(diags) != 1 || diags[0].String() != want {
		t.Errorf("got %v:\n%s\nwant\n  %s", j != nil, diagText(diags), want)
	}
	if j, _ := LoadFile(p, LoadOptions{UID: opts.UID, SkipPermissions: true}); j == nil {
		t.Error("SkipPermissions must skip the mode check")
	}

	p = writeJob(t, dir, "ww.plist", jobBody("org.ww", ""), 0o646)
	if _, diags := LoadFile(p, opts); !strings.Contains(diagText(diags), "(mode 0646)") {
		t.Errorf("world-writable: %s", diagText(diags))
	}

	if _, diags := LoadFile(dir, opts); !strings.Contains(diagText(diags), dir+": error: is a directory, not a regular file") {
		t.Errorf("directory as file: %s", diagText(diags))
	}
	if _, diags := LoadFile(filepath.Join(dir, "missing.plist"), opts); !strings.Contains(diagText(diags), "cannot read the job file") {
		t.Errorf("missing file: %s", diagText(diags))
	}
}

func TestOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown to another uid")
	}
	dir := t.TempDir()
	p := writeJob(t, dir, "other.plist", jobBody("org.other", ""), 0o644)
	if err := os.Chown(p, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	j, diags := LoadFile(p, LoadOptions{UID: 0})
	want := p + ": error: file is owned by uid 4242, which is neither root nor the user sockd runs as (uid 0); launchd skips such files too: chown root " + p
	if j != nil || len(diags) != 1 || diags[0].String() != want {
		t.Errorf("got:\n%s\nwant\n  %s", diagText(diags), want)
	}
	// The running user may own its own job files.
	if j, diags := LoadFile(p, LoadOptions{UID: 4242}); j == nil {
		t.Errorf("file owned by the running uid: %s", diagText(diags))
	}
	// Root-owned files are fine for any running user.
	if err := os.Chown(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	if j, diags := LoadFile(p, LoadOptions{UID: 4242}); j == nil {
		t.Errorf("root-owned file: %s", diagText(diags))
	}
}

func TestExpandPaths(t *testing.T) {
	dir := t.TempDir()
	writeJob(t, dir, "b.PLIST", jobBody("org.b", ""), 0o644)
	writeJob(t, dir, "a.plist", jobBody("org.a", ""), 0o644)
	writeJob(t, dir, "c.txt", jobBody("org.c", ""), 0o644)
	if err := os.Mkdir(filepath.Join(dir, "sub.plist"), 0o755); err != nil {
		t.Fatal(err)
	}
	extra := writeJob(t, t.TempDir(), "explicit.conf", jobBody("org.explicit", ""), 0o644)
	files, diags := ExpandPaths([]string{dir, extra, filepath.Join(dir, "nope")})
	want := []string{filepath.Join(dir, "a.plist"), filepath.Join(dir, "b.PLIST"), extra}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Errorf("files %q, want %q", files, want)
	}
	text := diagText(diags)
	if !strings.Contains(text, "sub.plist: warning: is a directory") || !strings.Contains(text, "nope: error: cannot read") {
		t.Errorf("diags:\n%s", text)
	}
}

func decodeT(t *testing.T, file, body string) *Job {
	t.Helper()
	j, diags := Decode(xmlJob(body), file)
	if j == nil {
		t.Fatalf("%s did not load:\n%s", file, diagText(diags))
	}
	return j
}

func TestCrossCheck(t *testing.T) {
	port := func(node, svc string) string {
		s := `<key>SockServiceName</key><string>` + svc + `</string>`
		if node != "" {
			s += `<key>SockNodeName</key><string>` + node + `</string>`
		}
		return s
	}
	t.Run("duplicate label", func(t *testing.T) {
		a := decodeT(t, "a.plist", jobBody("org.same", ""))
		b := decodeT(t, "b.plist", jobBody("org.same", ""))
		kept, diags := CrossCheck([]*Job{b, a})
		if len(kept) != 1 || kept[0] != a {
			t.Errorf("kept %v, want a.plist's job", kept)
		}
		want := `b.plist: Label: error: duplicate Label "org.same": a.plist already defines it, so this job is not loaded: give each job a unique Label`
		if len(diags) != 1 || diags[0].String() != want {
			t.Errorf("got:\n%s\nwant\n  %s", diagText(diags), want)
		}
	})
	conflicts := []struct {
		name     string
		a, b     string
		conflict bool
	}{
		{"same address", sock("L", port("127.0.0.1", "8080")), sock("L", port("127.0.0.1", "8080")), true},
		{"wildcard and specific", sock("L", port("", "8080")), sock("M", port("127.0.0.1", "8080")), true},
		{"v6 wildcard and v6 loopback", sock("L", port("", "8080")), sock("M", port("::1", "8080")), true},
		{"other port", sock("L", port("127.0.0.1", "8080")), sock("L", port("127.0.0.1", "8081")), false},
		{"other address", sock("L", port("127.0.0.1", "8080")), sock("L", port("127.0.0.2", "8080")), false},
		{"other family", sock("L", port("127.0.0.1", "8080")), sock("L", port("::1", "8080")), false},
		{"tcp and udp", sock("L", port("127.0.0.1", "8080")), sock("L", port("127.0.0.1", "8080")+`<key>SockType</key><string>dgram</string>`), false},
		{"port zero", sock("L", port("127.0.0.1", "0")), sock("L", port("127.0.0.1", "0")), false},
		{"same unix path", sock("L", `<key>SockPathName</key><string>/run/x</string>`), sock("L", `<key>SockPathName</key><string>/run/x</string><key>SockType</key><string>dgram</string>`), true},
	}
	for _, tc := range conflicts {
		t.Run(tc.name, func(t *testing.T) {
			a := decodeT(t, "a.plist", jobBody("org.a", tc.a))
			b := decodeT(t, "b.plist", jobBody("org.b", tc.b))
			kept, diags := CrossCheck([]*Job{a, b})
			if got := len(kept) == 1; got != tc.conflict {
				t.Fatalf("conflict = %v, want %v:\n%s", got, tc.conflict, diagText(diags))
			}
			if tc.conflict {
				if kept[0] != a || len(diags) != 1 || diags[0].File != "b.plist" || !strings.Contains(diags[0].Msg, `of job "org.a" (a.plist Sockets.`) {
					t.Errorf("diags:\n%s", diagText(diags))
				}
			}
		})
	}
	t.Run("message", func(t *testing.T) {
		a := decodeT(t, "a.plist", jobBody("org.a", sock("L", port("", "8080"))))
		b := decodeT(t, "b.plist", jobBody("org.b", sock("M", port("127.0.0.1", "8080"))))
		_, diags := CrossCheck([]*Job{a, b})
		want := `b.plist: Sockets.M: error: tcp4 127.0.0.1:8080 conflicts with tcp4 0.0.0.0:8080 of job "org.a" (a.plist Sockets.L), so this job is not loaded: change the address, or disable one of the jobs`
		if len(diags) != 1 || diags[0].String() != want {
			t.Errorf("got:\n%s\nwant\n  %s", diagText(diags), want)
		}
	})
	t.Run("disabled jobs claim nothing", func(t *testing.T) {
		a := decodeT(t, "a.plist", jobBody("org.a", sock("L", port("127.0.0.1", "8080")))+`<key>Disabled</key><true/>`)
		b := decodeT(t, "b.plist", jobBody("org.b", sock("L", port("127.0.0.1", "8080"))))
		if kept, diags := CrossCheck([]*Job{a, b}); len(kept) != 2 || len(diags) != 0 {
			t.Errorf("kept %d:\n%s", len(kept), diagText(diags))
		}
	})
}

// TestKeyReferenceListsEveryKey keeps the key reference, docs/keys.md
// (also sockd.plist(5)), complete.
func TestKeyReferenceListsEveryKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "docs", "keys.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append(append([]KeyInfo(nil), TopLevelKeys...), SocketKeys...) {
		if !strings.Contains(string(data), "`"+k.Name+"`") {
			t.Errorf("docs/keys.md does not mention key %s", k.Name)
		}
	}
}
