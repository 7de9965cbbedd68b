package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// need skips (or, under CI, fails) when a program is missing.
func need(t *testing.T, prog, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(prog); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed; .ci/run must install %s", prog, pkg)
		}
		t.Skipf("%s not installed (Debian: apt-get install %s)", prog, pkg)
	}
}

// buildSockd builds sockd into dir and writes its man pages under
// dir/man, as the package does.
func buildSockd(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "sockd")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/sockd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, p := range []struct{ page, sect string }{{"sockd.8", "man8"}, {"sockd.plist.5", "man5"}} {
		out, err := exec.Command(bin, "man", p.page).Output()
		if err != nil {
			t.Fatalf("sockd man %s: %v", p.page, err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "man", p.sect), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "man", p.sect, p.page), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

// TestUnitsVerify runs systemd-analyze verify on both units, with
// /usr/sbin/sockd standing for a sockd built here and the man pages of
// Documentation= found in the ones it writes: it must pass without a word.
func TestUnitsVerify(t *testing.T) {
	need(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	bin := buildSockd(t, dir)
	xdg := filepath.Join(dir, "xdg")
	if err := os.Mkdir(xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		src, wanted string
		args        []string
	}{
		{"systemd/sockd.service", "WantedBy=multi-user.target", []string{"verify"}},
		{"systemd/user/sockd.service", "WantedBy=default.target", []string{"--user", "verify"}},
	} {
		data, err := os.ReadFile(u.src)
		if err != nil {
			t.Fatal(err)
		}
		unit := string(data)
		for _, want := range []string{"\nType=notify\n", "\nExecStart=/usr/sbin/sockd serve\n", "\nExecReload=/usr/sbin/sockd reload\n",
			"\nKillMode=mixed\n", "\nTimeoutStopSec=30\n", "\nRestart=on-failure\n", "\n" + u.wanted + "\n", "\nDocumentation=man:sockd(8) man:sockd.plist(5)"} {
			if !strings.Contains(unit, want) {
				t.Errorf("%s lacks %q", u.src, strings.TrimSpace(want))
			}
		}
		sub := filepath.Join(dir, filepath.Dir(u.src))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(sub, "sockd.service")
		if err := os.WriteFile(file, []byte(strings.ReplaceAll(unit, "/usr/sbin/sockd", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("systemd-analyze", append(u.args, file)...)
		cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(dir, "man"), "XDG_RUNTIME_DIR="+xdg, "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0")
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze %s %s: %v\n%s", strings.Join(u.args, " "), u.src, err, out)
		}
	}
}
