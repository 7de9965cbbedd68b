package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/freeport"
	"github.com/sockd/sockd/internal/privilege"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/spawn"
)

// The test in this file holds check to its promise: what check calls
// valid, serve loads the same way on this machine. For every input it runs
// `sockd check --list` and serve's loader (serveLoader over the sources
// parseServe makes of serve's flags, then the template every loaded job
// gets from the supervisor, whose failure would be "job not loaded"), each
// in a process of its own, as the user the case is judged for, and
// requires the same verdict for every job.

// verdictEnv makes the test binary print serve's verdicts for the serve
// arguments it is given, as JSON, and exit.
const verdictEnv = "SOCKD_TEST_SERVE_VERDICTS"

func init() {
	if os.Getenv(verdictEnv) != "1" {
		return
	}
	v, err := serveVerdicts(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	b, _ := json.Marshal(v)
	os.Stdout.Write(b)
	os.Exit(0)
}

// liveEnv makes serveVerdicts also do what serve does next with a loaded
// job: bind its sockets (listener.Registry.Sync) and start its program
// once. Only for cases on loopback addresses whose programs exit at EOF.
const liveEnv = "SOCKD_TEST_LIVE"

// serveVerdicts is "FILE LABEL loaded|disabled|not loaded: why" for every
// job serve would load from args, sorted.
func serveVerdicts(args []string) ([]string, error) {
	sf, err := parseServe(args)
	if err != nil {
		return nil, err
	}
	jobs, _ := serveLoader(sf.sources, zap.NewNop())()
	opts := spawn.Options{AsRoot: os.Geteuid() == 0, BaseEnv: os.Environ()}
	live := os.Getenv(liveEnv) == "1"
	var enabled []*job.Job
	verdicts := map[*job.Job]string{}
	tmpls := map[*job.Job]*spawn.Template{}
	for _, j := range jobs {
		v := "loaded"
		switch {
		case j.Disabled:
			v = "disabled"
		case spawn.Runs(j):
			t, _, err := spawn.NewTemplate(j, opts)
			if err != nil {
				v = "not loaded: " + err.Error()
			}
			tmpls[j] = t
		}
		verdicts[j] = v
		if v == "loaded" {
			enabled = append(enabled, j)
		}
	}
	if live {
		liveVerdicts(enabled, tmpls, verdicts)
	}
	var out []string
	for _, j := range jobs {
		out = append(out, j.File+" "+j.Label+" "+verdicts[j])
	}
	slices.Sort(out)
	return out, nil
}

// liveVerdicts binds the sockets of jobs as serve does and starts each
// program once; a failure of either is the job's verdict.
func liveVerdicts(jobs []*job.Job, tmpls map[*job.Job]*spawn.Template, verdicts map[*job.Job]string) {
	reg := listener.NewRegistry(zap.NewNop())
	defer reg.CloseAll()
	_, errs := reg.Sync(jobs)
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		panic(err)
	}
	defer unix.Close(null)
	for _, j := range jobs {
		if err := errs[j.Label]; err != nil {
			verdicts[j] = "not served: sockets failed: " + err.Error()
			continue
		}
		t := tmpls[j]
		if t == nil {
			continue
		}
		p, err := t.Start([]int{null, null, null}, nil, false)
		if err != nil {
			verdicts[j] = "not served: every start fails: " + err.Error()
			continue
		}
		unix.Poll([]unix.PollFd{{Fd: int32(p.Pidfd()), Events: unix.POLLIN}}, 10000)
		if st, done, err := p.Reap(); !done || err != nil || !st.Success() {
			verdicts[j] = fmt.Sprintf("not served: the program ends with %v (%v)", st, err)
		}
	}
}

// checkVerdicts runs check --list over the sources of serve's args and
// returns its verdicts in serveVerdicts' form, and its output.
func checkVerdicts(t *testing.T, as *verdictUser, args []string) ([]string, string) {
	t.Helper()
	cargs := []string{"check", "--list"}
	for i := 0; i < len(args); i++ {
		if args[i] == "--jobs" {
			i++
			cargs = append(cargs, args[i])
			continue
		}
		cargs = append(cargs, args[i])
	}
	out, _ := as.run(t, []string{"SOCKD_TEST_MAIN=1"}, cargs...)
	var v []string
	for _, ln := range strings.Split(out, "\n") {
		head, mode, ok := strings.Cut(ln, ": loaded (")
		if !ok || strings.Contains(ln, ": error: ") || strings.Contains(ln, ": warning: ") {
			continue
		}
		i := strings.LastIndex(head, ": ")
		state := "loaded"
		if strings.Contains(mode, "disabled") {
			state = "disabled"
		}
		v = append(v, head[:i]+" "+head[i+2:]+" "+state)
	}
	slices.Sort(v)
	return v, out
}

// verdictUser runs the test binary as root (nil) or as an unprivileged
// account.
type verdictUser struct {
	cred *syscall.Credential
	exe  string
}

func (u *verdictUser) run(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	exe := os.Args[0]
	if u != nil {
		exe = u.exe
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), env...)
	if u != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
	}
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return string(out), code
}

// newVerdictUser creates an unprivileged account and a copy of the test
// binary it can run.
func newVerdictUser(t *testing.T, dir string) *verdictUser {
	t.Helper()
	useradd, err := exec.LookPath("useradd")
	if os.Geteuid() != 0 || err != nil {
		t.Skip("needs root and useradd to judge jobs for an unprivileged sockd")
	}
	name := fmt.Sprintf("sockdv%d", os.Getpid()%100000)
	if out, err := exec.Command(useradd, "-r", "-M", "-U", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	uid, err1 := lookupUID(name)
	out, err2 := exec.Command("id", "-g", name).Output()
	gid, err3 := strconv.Atoi(strings.TrimSpace(string(out)))
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatal(err1, err2, err3)
	}
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "sockd.test")
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return &verdictUser{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, exe: exe}
}

// verdictCase is one input: files written into a directory that every
// user can read (name -> content), serve's arguments over them (DIR is
// the directory), and what the case must show.
type verdictCase struct {
	name   string
	files  map[string]string
	args   []string
	asUser bool
	// loaded are the labels serve loads, sorted; skip says why the case
	// does not apply on this machine ("" when it does).
	loaded []string
	want   []string // lines check must print (DIR/ for the directory)
	skip   string
	// live: serve's verdict also binds the sockets and starts each
	// program once (loopback addresses, /bin/cat).
	live bool
}

// listenDoc is a job file: /bin/cat on 127.0.0.1:port, one per connection,
// with more keys.
func listenDoc(label string, port int, extra string) string {
	return jobDoc(label, fmt.Sprintf(`<key>inetdCompatibility</key><dict><key>Wait</key><false/></dict>`+
		`<key>Sockets</key><dict><key>L</key><dict><key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>%d</string></dict></dict>`, port)+extra)
}

func proxyDoc(label string, port int, backend string) string {
	return plistDoc(fmt.Sprintf(`<key>Label</key><string>%s</string>`+
		`<key>Sockets</key><dict><key>L</key><dict><key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>%d</string></dict></dict>`+
		`<key>SockdProxy</key><dict><key>Backend</key><string>%s</string></dict>`, label, port, backend))
}

// readmeProxyRecipe is the job of the proxy recipe of docs/proxy.md (Front
// nginx with on-demand start, proxy mode), as a job file.
func readmeProxyRecipe(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "proxy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "## Front nginx with on-demand start (proxy mode)")
	_, rest, ok2 := strings.Cut(rest, "```xml\n")
	body, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("docs/proxy.md: the proxy recipe's job is not where this test looks")
	}
	return "<?xml version=\"1.0\"?>\n<plist version=\"1.0\">\n<dict>\n" + body + "</dict>\n</plist>\n"
}

func exampleFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	paths, err := filepath.Glob(filepath.Join("..", "..", "examples", "jobs", "*.plist"))
	if err != nil || len(paths) < 2 {
		t.Fatalf("examples: %v %v", paths, err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files["examples/"+filepath.Base(p)] = string(data)
	}
	return files
}

// verdictCases are the cases of issue 15 item 1 and the examples.
func verdictCases(t *testing.T) []verdictCase {
	view := privilege.Current()
	p := func() int { return freeport.Port(t, "tcp") }
	p1, p2, p3, p4, p5, p6 := p(), p(), p(), p(), p(), p()
	longPath := "/tmp/" + strings.Repeat("s", 110) + ".sock"
	inetd := fmt.Sprintf("127.0.0.1:%d stream tcp nowait sockd-no-such-user /bin/cat cat\n"+
		"127.0.0.1:%d stream tcp nowait root:sockd-no-such-group /bin/cat cat\n"+
		"127.0.0.1:%d stream tcp nowait root /usr/sbin/sockd-no-such-server sockd-no-such-server\n"+
		"127.0.0.1:%d dgram udp nowait root /bin/cat cat\n"+
		"%s stream unix nowait root /bin/cat cat\n"+
		"127.0.0.1:%d stream tcp nowait root /bin/cat cat\n", p1, p2, p3, p4, longPath, p5)
	inetdWant := []string{
		"DIR/inetd.conf:1: user: error: user \"sockd-no-such-user\" does not exist on this machine",
		"DIR/inetd.conf:2: user: error: group \"sockd-no-such-group\" does not exist on this machine",
		"DIR/inetd.conf:3: server: error: server /usr/sbin/sockd-no-such-server does not exist",
		"DIR/inetd.conf:4: wait: error: dgram udp nowait: a datagram socket has no connection to accept",
		"DIR/inetd.conf:5: service: error: unix socket path is 120 bytes long; Unix socket paths are limited to 107 bytes",
	}
	inetdLabel := fmt.Sprintf("inetd.%d.tcp@127.0.0.1", p5)
	hard := view.Limits[unix.RLIMIT_NOFILE].Max
	examples := exampleFiles(t)
	withRecipe := func(recipe string) map[string]string {
		m := map[string]string{"examples/nginx.plist": recipe}
		for k, v := range examples {
			m[k] = v
		}
		return m
	}
	recipe := readmeProxyRecipe(t)
	portSkip := ""
	if view.PortStart <= 80 {
		portSkip = "net.ipv4.ip_unprivileged_port_start lets every user bind port 80 here"
	}
	limitSkip := ""
	if hard == unix.RLIM_INFINITY || hard >= view.NrOpen {
		limitSkip = "the hard NumberOfFiles limit cannot be raised here"
	}
	userFiles := map[string]string{
		"root.plist":  listenDoc("org.root", p1, `<key>RootDirectory</key><string>/</string>`),
		"nice.plist":  listenDoc("org.nice", p2, `<key>Nice</key><integer>-20</integer>`),
		"user.plist":  listenDoc("org.user", p3, `<key>UserName</key><string>root</string>`),
		"plain.plist": listenDoc("org.plain", p4, ""),
	}
	userWant := []string{
		"DIR/root.plist: RootDirectory: error: needs a sockd running as root",
		"DIR/nice.plist: Nice: error: -20 is below sockd's own nice value",
		`DIR/user.plist: UserName: error: "root": sockd is not running as root, so it cannot run the job as that user and does not load it`,
	}
	if hard != unix.RLIM_INFINITY {
		above := strconv.FormatUint(hard+1, 10)
		userFiles["nofile.plist"] = listenDoc("org.nofile", p5, `<key>SoftResourceLimits</key><dict><key>NumberOfFiles</key><integer>`+above+`</integer></dict>`)
		userWant = append(userWant, "DIR/nofile.plist: SoftResourceLimits.NumberOfFiles: error: "+above+" is above sockd's hard limit")
	}
	return []verdictCase{
		{name: "unknown UserName", live: true, files: map[string]string{
			"a.plist": listenDoc("org.a", p1, `<key>UserName</key><string>sockd-no-such-user</string>`),
			"b.plist": listenDoc("org.b", p2, "")},
			args: []string{"--jobs", "DIR"}, loaded: []string{"org.b"},
			want: []string{`DIR/a.plist: UserName: error: user "sockd-no-such-user" does not exist on this machine`}},
		{name: "inetd.conf through --inetd-conf", live: true, files: map[string]string{"inetd.conf": inetd},
			args: []string{"--inetd-conf", "DIR/inetd.conf"}, loaded: []string{inetdLabel}, want: inetdWant},
		{name: "inetd.conf through --jobs", live: true, files: map[string]string{"inetd.conf": inetd},
			args: []string{"--jobs", "DIR/inetd.conf"}, loaded: []string{inetdLabel}, want: inetdWant},
		{name: "port below 1024 in a user's sockd", live: true, asUser: true, skip: portSkip, files: map[string]string{
			"low.plist":  listenDoc("org.low", 80, ""),
			"high.plist": listenDoc("org.high", p3, "")},
			args: []string{"--jobs", "DIR"}, loaded: []string{"org.high"},
			want: []string{"DIR/low.plist: Sockets.L.SockServiceName: error: port 80 is below 1024 (net.ipv4.ip_unprivileged_port_start), and binding it needs root or CAP_NET_BIND_SERVICE"}},
		{name: "proxy Backend", files: map[string]string{
			"relative.plist": proxyDoc("org.relative", p1, "run/app.sock"),
			"range.plist":    proxyDoc("org.range", p2, "127.0.0.1:99999"),
			"own.plist":      proxyDoc("org.own", p3, fmt.Sprintf("127.0.0.1:%d", p3)),
			"other.plist":    proxyDoc("org.other", p4, fmt.Sprintf("127.0.0.1:%d", p5)),
			"target.plist":   listenDoc("org.target", p5, ""),
			"good.plist":     proxyDoc("org.good", p6, "/run/sockd-test-backend.sock")},
			args: []string{"--jobs", "DIR"}, loaded: []string{"org.good", "org.target"},
			want: []string{
				`DIR/relative.plist:4: SockdProxy.Backend: error: "run/app.sock" is a relative path`,
				`DIR/range.plist:4: SockdProxy.Backend: error: "127.0.0.1:99999": port 99999 is out of range`,
				fmt.Sprintf("DIR/own.plist: SockdProxy.Backend: error: 127.0.0.1:%d is this job's own socket", p3),
				fmt.Sprintf(`DIR/other.plist: SockdProxy.Backend: error: 127.0.0.1:%d is claimed by job "org.target"`, p5)}},
		{name: "docs/proxy.md recipe beside the examples", files: withRecipe(recipe),
			args:   []string{"--jobs", "DIR/examples"},
			loaded: []string{"org.nginx.ondemand", "org.sockd.example.echo", "org.sockd.example.hello-http"}},
		{name: "a proxy recipe whose backend is an example's socket", files: withRecipe(strings.Replace(recipe, "127.0.0.1:8180", "127.0.0.1:8007", 1)),
			args:   []string{"--jobs", "DIR/examples"},
			loaded: []string{"org.sockd.example.echo", "org.sockd.example.hello-http"},
			want:   []string{`DIR/examples/nginx.plist: SockdProxy.Backend: error: 127.0.0.1:8007 is claimed by job "org.sockd.example.echo"`}},
		{name: "SockServiceName with blanks", live: true, files: map[string]string{"blank.plist": jobDoc("org.blank",
			`<key>Sockets</key><dict><key>L</key><dict><key>SockServiceName</key><string> 80</string></dict></dict>`)},
			args: []string{"--jobs", "DIR"},
			want: []string{`DIR/blank.plist:4: Sockets.L.SockServiceName: error: " 80" has blanks around it`}},
		{name: "a user's sockd", live: true, asUser: true, files: userFiles, args: []string{"--jobs", "DIR"}, loaded: []string{"org.plain"}, want: userWant},
		{name: "a user's sockd raising the fd limit", live: true, asUser: true, skip: limitSkip, files: map[string]string{
			"nofile.plist": listenDoc("org.nofile", p1, `<key>HardResourceLimits</key><dict><key>NumberOfFiles</key><integer>`+strconv.FormatUint(hard+1, 10)+`</integer></dict>`)},
			args: []string{"--jobs", "DIR"},
			want: []string{"DIR/nofile.plist: HardResourceLimits.NumberOfFiles: error: " + strconv.FormatUint(hard+1, 10) + " is above sockd's own hard limit"}},
		{name: "examples", files: examples, args: []string{"--jobs", "DIR/examples"},
			loaded: []string{"org.sockd.example.echo", "org.sockd.example.hello-http"}},
	}
}

// TestCheckAndServeAgree: check and serve's loader reach the same verdict
// for every job of the cases above, the examples and the corpus.
func TestCheckAndServeAgree(t *testing.T) {
	base, err := os.MkdirTemp("", "sockd-verdict")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil { // the account reads it
		t.Fatal(err)
	}
	var user *verdictUser
	for i, c := range verdictCases(t) {
		t.Run(c.name, func(t *testing.T) {
			if c.skip != "" {
				t.Skip(c.skip)
			}
			var as *verdictUser
			if c.asUser {
				if user == nil {
					user = newVerdictUser(t, base)
				}
				as = user
			}
			dir := filepath.Join(base, strconv.Itoa(i))
			for name, content := range c.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Dir(p), filepath.Base(p), content, 0o644)
			}
			args := slices.Clone(c.args)
			for k, a := range args {
				args[k] = strings.ReplaceAll(a, "DIR", dir)
			}
			got := agree(t, as, args, c.live)
			labels := []string{}
			for _, v := range got {
				if f := strings.Fields(v); len(f) >= 3 && f[2] == "loaded" {
					labels = append(labels, f[1])
				}
			}
			slices.Sort(labels)
			if want := append([]string{}, c.loaded...); !slices.Equal(labels, want) {
				t.Errorf("serve loads %q, want %q", labels, want)
			}
			_, out := checkVerdicts(t, as, args)
			for _, w := range c.want {
				if w = strings.ReplaceAll(w, "DIR", dir); !strings.Contains(out, w) {
					t.Errorf("check does not say\n  %s\nin:\n%s", w, out)
				}
			}
		})
	}
	t.Run("corpus", func(t *testing.T) {
		sources := corpusSources(t)
		jobs := 0
		for _, args := range sources {
			jobs += len(agree(t, nil, args, false))
		}
		t.Logf("%d corpus sources, %d jobs loaded", len(sources), jobs)
		if len(sources) < 20 || jobs < 50 {
			t.Errorf("%d corpus sources and %d jobs: is the corpus complete?", len(sources), jobs)
		}
	})
}

// agree requires check and serve's loader to give the same verdicts for
// args, and returns them.
func agree(t *testing.T, as *verdictUser, args []string, live bool) []string {
	t.Helper()
	env := []string{verdictEnv + "=1"}
	if live {
		env = append(env, liveEnv+"=1")
	}
	out, code := as.run(t, env, args...)
	var serve []string
	if err := json.Unmarshal([]byte(out), &serve); code != 0 || err != nil {
		t.Fatalf("serve verdicts %q: exit %d %v\n%s", args, code, err, out)
	}
	check, checkOut := checkVerdicts(t, as, args)
	if !slices.Equal(check, serve) {
		t.Errorf("%q: check and serve disagree\ncheck:\n  %s\nserve:\n  %s\ncheck said:\n%s", args,
			strings.Join(check, "\n  "), strings.Join(serve, "\n  "), checkOut)
	}
	return serve
}

// corpusSources are serve's arguments for every launchd, inetd and xinetd
// source of the corpus: the launchd directory, each inetd.conf, each xinetd
// configuration (an xinetd.conf with the tree beside it, else a file).
func corpusSources(t *testing.T) [][]string {
	root := filepath.Join("..", "..", "..", "shared", "corpus")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("corpus not found: %v", err)
	}
	out := [][]string{{"--jobs", filepath.Join(root, "launchd")}}
	inetd, _ := filepath.Glob(filepath.Join(root, "inetd", "*"))
	for _, f := range inetd {
		out = append(out, []string{"--inetd-conf", f})
	}
	xdirs, _ := filepath.Glob(filepath.Join(root, "xinetd", "*"))
	for _, d := range xdirs {
		if _, err := os.Stat(filepath.Join(d, "xinetd.conf")); err == nil {
			out = append(out, []string{"--xinetd", filepath.Join(d, "xinetd.conf")})
			continue
		}
		files, _ := filepath.Glob(filepath.Join(d, "*"))
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil && !fi.IsDir() {
				out = append(out, []string{"--xinetd", f})
			}
		}
	}
	return out
}
