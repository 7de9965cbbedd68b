package packaging

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	debOnce    sync.Once
	debPath    string // the package built by deb/build.sh
	debVersion string
	debErr     error
	debDir     string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if debDir != "" {
		os.RemoveAll(debDir)
	}
	os.Exit(code)
}

// buildDeb builds the package once for the tests, as make deb does, into
// a directory of its own (never dist/).
func buildDeb(t *testing.T) (path, version string) {
	t.Helper()
	need(t, "dpkg-deb", "dpkg")
	debOnce.Do(func() {
		out, err := exec.Command("deb/version.sh").Output()
		if err != nil {
			debErr = err
			return
		}
		debVersion = strings.TrimSpace(string(out))
		if debDir, debErr = os.MkdirTemp("", "sockd-deb-test-"); debErr != nil {
			return
		}
		// apt's sandbox user must be able to read the package.
		if debErr = os.Chmod(debDir, 0o755); debErr != nil {
			return
		}
		var stderr bytes.Buffer
		cmd := exec.Command("deb/build.sh", "-o", debDir)
		cmd.Stderr = &stderr
		out, err = cmd.Output()
		if err != nil {
			debErr = &buildError{err, stderr.String()}
			return
		}
		debPath = strings.TrimSpace(string(out))
	})
	if debErr != nil {
		t.Fatalf("deb/build.sh: %v", debErr)
	}
	return debPath, debVersion
}

type buildError struct {
	err    error
	stderr string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.stderr }

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// debEntry is one line of dpkg-deb -c.
type debEntry struct {
	mode, owner, link string
}

// The package's files and directories, with their modes (every entry is
// root/root; directories not listed are 0755).
var wantFiles = map[string]string{
	"./usr/sbin/sockd":                                 "-rwxr-xr-x",
	"./usr/bin/sockd":                                  "lrwxrwxrwx",
	"./etc/sockd/jobs/":                                "drwxr-xr-x",
	"./lib/systemd/system/sockd.service":               "-rw-r--r--",
	"./usr/lib/systemd/user/sockd.service":             "-rw-r--r--",
	"./usr/share/man/man8/sockd.8.gz":                  "-rw-r--r--",
	"./usr/share/man/man5/sockd.plist.5.gz":            "-rw-r--r--",
	"./usr/share/bash-completion/completions/sockd":    "-rw-r--r--",
	"./usr/share/zsh/vendor-completions/_sockd":        "-rw-r--r--",
	"./usr/share/fish/vendor_completions.d/sockd.fish": "-rw-r--r--",
	"./usr/share/doc/sockd/examples/echo.plist":        "-rw-r--r--",
	"./usr/share/doc/sockd/examples/hello-http.plist":  "-rw-r--r--",
	"./usr/share/doc/sockd/copyright":                  "-rw-r--r--",
	"./usr/share/doc/sockd/changelog.gz":               "-rw-r--r--",
	"./usr/share/doc/sockd/README.md":                  "-rw-r--r--",
	"./usr/share/doc/sockd/docs/keys.md":               "-rw-r--r--",
	"./usr/share/lintian/overrides/sockd":              "-rw-r--r--",
}

// TestDebPackage builds the package and inspects it without installing
// it: its name, control fields, every file with its owner and mode, the
// maintainer scripts, the binary's version, and lintian.
func TestDebPackage(t *testing.T) {
	deb, version := buildDeb(t)
	arch := strings.TrimSpace(run(t, "dpkg", "--print-architecture"))
	if want := "sockd_" + version + "_" + arch + ".deb"; filepath.Base(deb) != want {
		t.Errorf("package %s, want %s", filepath.Base(deb), want)
	}
	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Maintainer", "Depends", "Section", "Priority", "Description"} {
		fields[f] = strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, f))
	}
	if fields["Package"] != "sockd" || fields["Version"] != version || fields["Architecture"] != arch ||
		!strings.HasPrefix(fields["Depends"], "libc6") || fields["Maintainer"] == "" || fields["Section"] != "admin" {
		t.Errorf("control fields: %q", fields)
	}
	info := run(t, "dpkg-deb", "-I", deb)
	for _, s := range []string{"postinst", "prerm", "postrm", "md5sums"} {
		if !strings.Contains(info, " "+s+" ") {
			t.Errorf("dpkg-deb -I: no %s\n%s", s, info)
		}
	}

	entries := map[string]debEntry{}
	sc := bufio.NewScanner(strings.NewReader(run(t, "dpkg-deb", "-c", deb)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c: %q", sc.Text())
		}
		e := debEntry{mode: f[0], owner: f[1]}
		if len(f) >= 8 && f[6] == "->" {
			e.link = f[7]
		}
		entries[f[5]] = e
	}
	for path, mode := range wantFiles {
		e, ok := entries[path]
		if !ok {
			t.Errorf("the package lacks %s", path)
		} else if e.mode != mode {
			t.Errorf("%s: mode %s, want %s", path, e.mode, mode)
		}
	}
	if l := entries["./usr/bin/sockd"].link; l != "../sbin/sockd" {
		t.Errorf("/usr/bin/sockd links to %q", l)
	}
	for path, e := range entries {
		if e.owner != "root/root" {
			t.Errorf("%s: owner %s, want root/root", path, e.owner)
		}
		link := e.mode[0] == 'l'
		if !link && (e.mode[5] == 'w' || e.mode[8] == 'w') || e.mode[0] == 'd' && e.mode != "drwxr-xr-x" ||
			strings.ContainsAny(e.mode[1:], "sStT") {
			t.Errorf("%s: mode %s: group- or world-writable, setuid or sticky", path, e.mode)
		}
		if strings.HasPrefix(path, "./etc/") && !strings.HasSuffix(path, "/") {
			t.Errorf("%s: a file in /etc would be a conffile; the package ships the empty jobs directory only", path)
		}
	}

	// The tree as installed: the binary's version, the man pages, the
	// maintainer scripts.
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)
	if out := run(t, filepath.Join(root, "usr/sbin/sockd"), "version"); !strings.HasPrefix(out, "sockd "+version+" (") {
		t.Errorf("sockd version: %q, want version %s", out, version)
	}
	for _, page := range []string{"usr/share/man/man8/sockd.8.gz", "usr/share/man/man5/sockd.plist.5.gz"} {
		if out := run(t, "gzip", "-dc", filepath.Join(root, page)); !strings.HasPrefix(out, ".TH ") {
			t.Errorf("%s: %.40q", page, out)
		}
	}
	ctl := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, ctl)
	scripts := map[string]string{}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		run(t, "sh", "-n", filepath.Join(ctl, s))
		data, err := os.ReadFile(filepath.Join(ctl, s))
		if err != nil {
			t.Fatal(err)
		}
		scripts[s] = string(data)
	}
	// Enabled, not started, on installation; on upgrade, upgraded in place
	// only if it runs (restarted if it is too old to know upgrade); stopped
	// on removal; forgotten on purge.
	for s, want := range map[string][]string{
		"postinst": {"deb-systemd-helper enable 'sockd.service'", `if [ -n "$2" ] && systemctl is-active --quiet sockd.service; then`,
			"out=$(sockd upgrade 2>&1) || rc=$?", "deb-systemd-invoke try-restart 'sockd.service'"},
		"prerm":  {`[ "$1" = remove ]`, "deb-systemd-invoke stop 'sockd.service'"},
		"postrm": {"deb-systemd-helper purge 'sockd.service'", "rm -rf /var/lib/sockd\n"},
	} {
		for _, w := range want {
			if !strings.Contains(scripts[s], w) {
				t.Errorf("%s lacks %q", s, w)
			}
		}
	}
	if regexp.MustCompile(`deb-systemd-invoke (start|restart) `).MatchString(scripts["postinst"]) {
		t.Errorf("postinst starts sockd; it must only enable it:\n%s", scripts["postinst"])
	}

	need(t, "lintian", "lintian")
	cmd := exec.Command("lintian", "-I", "-E", "--pedantic", deb)
	out, err := cmd.CombinedOutput()
	var tags []string
	for _, l := range strings.Split(string(out), "\n") {
		if len(l) > 2 && l[1] == ':' && strings.ContainsRune("EWIPXC", rune(l[0])) {
			tags = append(tags, l)
		}
	}
	if err != nil || len(tags) > 0 {
		t.Errorf("lintian: %v: every tag must be fixed or explained in deb/lintian-overrides:\n%s", err, out)
	}
}

// TestDebInstall installs the package on this machine with apt-get, checks
// what it put where, that the unit is enabled and not started, and that
// the installed sockd serves the example jobs, then purges it and checks
// that nothing is left. It changes the machine, so it runs only as root
// under CI (or with SOCKD_TEST_INSTALL=1), and never where sockd is
// installed already.
func TestDebInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: installs the package")
	}
	if os.Getenv("CI") != "true" && os.Getenv("SOCKD_TEST_INSTALL") != "1" {
		t.Skip("installs the package on this machine: runs under CI=true, or with SOCKD_TEST_INSTALL=1")
	}
	need(t, "apt-get", "apt")
	if out, _ := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Status}", "sockd").Output(); len(out) > 0 && string(out) != "not-installed" {
		t.Skipf("a sockd package is on this machine (%s): this test would replace and purge it", out)
	}
	for _, p := range []string{"/usr/sbin/sockd", "/usr/bin/sockd", "/etc/sockd", "/lib/systemd/system/sockd.service", "/var/lib/sockd"} {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("%s exists: this test would overwrite or remove it", p)
		}
	}
	deb, version := buildDeb(t)
	before := sockdPaths(t)

	purged := false
	purge := func() {
		if purged {
			return
		}
		purged = true
		if out, err := apt("purge", "sockd"); err != nil {
			t.Errorf("apt-get purge sockd: %v\n%s", err, out)
		}
	}
	t.Cleanup(purge)
	if out, err := apt("install", "--no-install-recommends", deb); err != nil {
		t.Fatalf("apt-get install %s: %v\n%s", deb, err, out)
	}
	if out := run(t, "dpkg-query", "-W", "-f", "${Status} ${Version}", "sockd"); out != "install ok installed "+version {
		t.Errorf("dpkg-query: %q", out)
	}
	for path, want := range map[string]fs.FileMode{
		"/usr/sbin/sockd":                          0o755,
		"/etc/sockd/jobs":                          fs.ModeDir | 0o755,
		"/lib/systemd/system/sockd.service":        0o644,
		"/usr/lib/systemd/user/sockd.service":      0o644,
		"/usr/share/man/man8/sockd.8.gz":           0o644,
		"/usr/share/doc/sockd/examples/echo.plist": 0o644,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("installed: %v", err)
			continue
		}
		if fi.Mode() != want || !ownedByRoot(fi) {
			t.Errorf("%s: mode %v, want %v, owned by root", path, fi.Mode(), want)
		}
	}
	// Enabled (the symlink deb-systemd-helper makes), never started.
	if l, err := os.Readlink("/etc/systemd/system/multi-user.target.wants/sockd.service"); err != nil || l != "/lib/systemd/system/sockd.service" {
		t.Errorf("sockd.service is not enabled: %q %v", l, err)
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if out, _ := exec.Command("systemctl", "is-active", "sockd.service").Output(); strings.TrimSpace(string(out)) != "inactive" {
			t.Errorf("systemctl is-active sockd: %q; installation must not start it", out)
		}
	}
	for _, bin := range []string{"/usr/sbin/sockd", "/usr/bin/sockd"} {
		if out := run(t, bin, "version"); !strings.HasPrefix(out, "sockd "+version+" (") {
			t.Errorf("%s version: %q", bin, out)
		}
	}
	if _, err := exec.LookPath("man"); err == nil {
		if out := strings.TrimSpace(run(t, "man", "-w", "sockd.plist")); out != "/usr/share/man/man5/sockd.plist.5.gz" {
			t.Errorf("man -w sockd.plist: %q", out)
		}
	}
	serveExamples(t)
	// An upgrade (here to the same version): the scripts' upgrade paths
	// run, and the unit stays enabled.
	if out, err := apt("install", "--reinstall", "--no-install-recommends", deb); err != nil {
		t.Errorf("apt-get install --reinstall: %v\n%s", err, out)
	}
	if _, err := os.Readlink("/etc/systemd/system/multi-user.target.wants/sockd.service"); err != nil {
		t.Errorf("sockd.service is not enabled after an upgrade: %v", err)
	}

	purge()
	if out, _ := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Status}", "sockd").Output(); len(out) > 0 && string(out) != "not-installed" {
		t.Errorf("after purge dpkg knows sockd as %q", out)
	}
	after := sockdPaths(t)
	var left []string
	for _, p := range after {
		if !slices.Contains(before, p) {
			left = append(left, p)
		}
	}
	if len(left) > 0 {
		t.Errorf("left behind after purge:\n%s", strings.Join(left, "\n"))
	}
}

// apt runs apt-get quietly, waiting for the dpkg lock if another install
// holds it.
func apt(args ...string) ([]byte, error) {
	cmd := exec.Command("apt-get", append([]string{"-y", "-q", "-o", "DPkg::Lock::Timeout=300"}, args...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	return cmd.CombinedOutput()
}

// sockdPaths are the paths with "sockd" in their name under the places a
// package writes (not /tmp, not /run, where tests make their own).
func sockdPaths(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, top := range []string{"/etc", "/usr", "/lib", "/var/lib", "/var/cache", "/opt"} {
		if fi, err := os.Lstat(top); err != nil || !fi.IsDir() {
			continue // a usrmerge link (/lib -> usr/lib) is walked as /usr
		}
		filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if strings.Contains(d.Name(), "sockd") {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// serveExamples runs the installed sockd on the installed example jobs,
// in a network namespace of its own (so the ports are free whatever else
// runs here), and talks to both: the echo service and the HTTP one.
func serveExamples(t *testing.T) {
	t.Helper()
	for _, p := range []string{"unshare", "ip", "curl", "socat", "python3"} {
		need(t, p, p)
	}
	state := t.TempDir()
	script := `set -e
ip link set lo up
/usr/sbin/sockd serve --jobs /usr/share/doc/sockd/examples --control '' --overrides "$1/overrides.json" --once-dir "$1/once" 2>"$1/log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
i=0
until curl -fsS http://127.0.0.1:8081/ >"$1/http" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "no answer on 127.0.0.1:8081"; exit 1; }
	sleep 0.1
done
echo 'hello sockd' | socat -t 5 - TCP:127.0.0.1:8007 >"$1/echo"
kill -TERM $pid
wait $pid
`
	cmd := exec.Command("unshare", "--net", "sh", "-c", script, "sh", state)
	done := make(chan error, 1)
	var out []byte
	go func() {
		var err error
		out, err = cmd.CombinedOutput()
		done <- err
	}()
	select {
	case err := <-done:
		log, _ := os.ReadFile(filepath.Join(state, "log"))
		if err != nil {
			t.Fatalf("serving the examples: %v\n%s\nsockd's log:\n%s", err, out, log)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("serving the examples: no end after 60 s")
	}
	if b, _ := os.ReadFile(filepath.Join(state, "http")); !strings.HasPrefix(string(b), "hello from a socket-activated service, pid ") {
		t.Errorf("hello-http answered %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(state, "echo")); string(b) != "hello sockd\n" {
		t.Errorf("echo answered %q", b)
	}
}

func ownedByRoot(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0 && st.Gid == 0
}
