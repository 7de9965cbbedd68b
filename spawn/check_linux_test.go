//go:build linux && cgo

package spawn

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/privilege"
	"github.com/sockd/sockd/job"
)

// checkCase is one job for TestCheckTellsTheTruth.
type checkCase struct {
	name string
	job  *job.Job
	key  string // the key Check must name when it refuses
}

// checkCases builds the cases for a sockd with view: limits and nice
// values just inside and just outside what it may set.
func checkCases(view privilege.View) []checkCase {
	base := func() *job.Job {
		return &job.Job{Label: "t", Path: "/bin/true", Argv: []string{"true"}, InitGroups: true}
	}
	with := func(f func(j *job.Job)) *job.Job { j := base(); f(j); return j }
	nofile := func(soft, hard *uint64) *job.Job {
		j := base()
		if soft != nil {
			j.SoftResourceLimits = []job.RLimit{{Name: "NumberOfFiles", Resource: unix.RLIMIT_NOFILE, Value: *soft}}
		}
		if hard != nil {
			j.HardResourceLimits = []job.RLimit{{Name: "NumberOfFiles", Resource: unix.RLIMIT_NOFILE, Value: *hard}}
		}
		return j
	}
	u := func(v uint64) *uint64 { return &v }
	nice := func(n int) *job.Job { return with(func(j *job.Job) { j.Nice = &n }) }
	hard := view.Limits[unix.RLIMIT_NOFILE].Max
	// A sockd not running as root refuses another user or group: it
	// would run the job as itself.
	otherKey := func(key string) string {
		if view.Root() {
			return ""
		}
		return key
	}
	ownGroup := "root"
	if g, err := user.LookupGroupId(strconv.Itoa(view.GID)); err == nil {
		ownGroup = g.Name
	}
	cs := []checkCase{
		{name: "plain", job: base()},
		{name: "unknown user", job: with(func(j *job.Job) { j.UserName = "sockd-no-such-user" }), key: "UserName"},
		{name: "unknown group", job: with(func(j *job.Job) { j.GroupName = "sockd-no-such-group" }), key: "GroupName"},
		{name: "user root", job: with(func(j *job.Job) { j.UserName = "root" }), key: otherKey("UserName")},
		{name: "group root", job: with(func(j *job.Job) { j.UserName, j.GroupName = view.User, "root" }), key: otherKey("GroupName")},
		{name: "own user and group", job: with(func(j *job.Job) { j.UserName, j.GroupName = view.User, ownGroup })},
		{name: "RootDirectory", job: with(func(j *job.Job) { j.RootDirectory = "/" }), key: otherKey("RootDirectory")},
		{name: "nice above", job: nice(min(view.Nice+1, 19))},
		{name: "nice below", job: nice(max(view.Nice-1, -20)), key: "Nice"},
		{name: "nice lowest", job: nice(-20), key: "Nice"},
		{name: "hard lowered", job: nofile(nil, u(64))},
		{name: "soft at hard", job: nofile(u(hard), nil)},
		{name: "soft above hard", job: nofile(u(64), u(32)), key: "SoftResourceLimits.NumberOfFiles"},
		{name: "above nr_open", job: nofile(nil, u(view.NrOpen+1)), key: "HardResourceLimits.NumberOfFiles"},
		{name: "NUL argument", job: with(func(j *job.Job) { j.Argv = []string{"true", "a\x00b"} }), key: "ProgramArguments[1]"},
		{name: "no such program", job: with(func(j *job.Job) { j.Path, j.Program = "", "sockd-no-such-program" }), key: "Program"},
		{name: "bad variable", job: with(func(j *job.Job) { j.EnvironmentVariables = []job.EnvVar{{Name: "A=B", Value: "x"}} }), key: "EnvironmentVariables"},
	}
	if hard != unix.RLIM_INFINITY && hard < view.NrOpen {
		cs = append(cs,
			checkCase{name: "soft above kept hard", job: nofile(u(hard+1), nil), key: "SoftResourceLimits.NumberOfFiles"},
			checkCase{name: "hard raised", job: nofile(nil, u(hard+1)), key: "HardResourceLimits.NumberOfFiles"})
	}
	return cs
}

// compareCheck runs every case through Check, NewTemplate and a real start
// in this process, and returns how Check's verdict differs from what
// happened.
func compareCheck() []string {
	view := privilege.Current()
	opts := Options{AsRoot: view.Root(), BaseEnv: os.Environ()}
	c := NewChecker(opts, view)
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return []string{err.Error()}
	}
	defer unix.Close(null)
	var out []string
	for _, tc := range checkCases(view) {
		fatal, keys := false, []string{}
		for _, p := range c.Check(tc.job) {
			fatal = fatal || p.Fatal
			if p.Fatal {
				keys = append(keys, p.Key)
			}
		}
		failed, why := startFails(tc.job, opts, null)
		switch {
		case fatal != failed:
			out = append(out, fmt.Sprintf("%s (uid %d): Check refuses %v (%v), but the start %s", tc.name, view.UID, fatal, keys, why))
		case fatal && (len(keys) == 0 || keys[0] != tc.key):
			out = append(out, fmt.Sprintf("%s (uid %d): Check names %v, want %s first", tc.name, view.UID, keys, tc.key))
		}
	}
	return out
}

// startFails builds j's template and starts it once.
func startFails(j *job.Job, opts Options, null int) (bool, string) {
	tpl, _, err := NewTemplate(j, opts)
	if err != nil {
		return true, "fails in NewTemplate: " + err.Error()
	}
	p, err := tpl.Start([]int{null, null, null}, nil, false)
	if err != nil {
		return true, "fails: " + err.Error()
	}
	st, err := waitExit(p, 10*time.Second)
	if err != nil || !st.Success() {
		return true, fmt.Sprintf("exits %v %v", st, err)
	}
	return false, "succeeds"
}

// TestCheckTellsTheTruth: Check refuses a job exactly when NewTemplate or
// every start of it would fail, in this process and in one running as an
// unprivileged user (whose sockd refuses another user, group or a
// RootDirectory: it would run the job as itself).
func TestCheckTellsTheTruth(t *testing.T) {
	for _, m := range compareCheck() {
		t.Error(m)
	}
	if os.Geteuid() != 0 {
		return
	}
	a := newTestAccount(t)
	dir, err := os.MkdirTemp("", "sockd-check")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the account must reach the binary
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "spawn.test")
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), compareCheckEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid1)}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("as %s: %v\n%s", a.name, err, out)
	}
	var msgs []string
	if err := json.Unmarshal(out, &msgs); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, m := range msgs {
		t.Error(m)
	}
}

// compareCheckEnv makes the test binary print compareCheck's result as
// JSON and exit, before any test runs.
const compareCheckEnv = "SOCKD_TEST_COMPARE_CHECK"

func init() {
	if os.Getenv(compareCheckEnv) != "1" {
		return
	}
	b, err := json.Marshal(compareCheck())
	if err != nil {
		os.Exit(4)
	}
	os.Stdout.Write(b)
	os.Exit(0)
}

// TestCheckLookupsCached: one lookup per user however many jobs name it.
func TestCheckLookupsCached(t *testing.T) {
	c := NewChecker(Options{AsRoot: true}, privilege.View{UID: 0, Caps: ^uint64(0)})
	for range 3 {
		if ps := c.Check(&job.Job{Label: "t", Path: "/bin/true", Argv: []string{"true"}, UserName: "root", InitGroups: true}); len(ps) != 0 {
			t.Fatalf("%+v", ps)
		}
	}
	if len(c.users) != 1 || len(c.lists) != 1 {
		t.Errorf("users %d lists %d", len(c.users), len(c.lists))
	}
	ps := c.Check(&job.Job{Label: "t", Path: "/bin/true", Argv: []string{"true"}, UserName: "sockd-no-such-user"})
	if len(ps) != 1 || !ps[0].Fatal || !strings.Contains(ps[0].Msg, `user "sockd-no-such-user" does not exist on this machine`) {
		t.Errorf("%+v", ps)
	}
}

// TestCheckOtherUserNotAsRoot: a sockd not running as root would run every
// job as itself, so Check refuses a UserName other than its user and a
// GroupName other than its group (NewTemplate refuses them too), and
// accepts its own.
func TestCheckOtherUserNotAsRoot(t *testing.T) {
	view := privilege.For(65534)
	if view.User == "" || view.GID < 0 {
		t.Skip("uid 65534 is not in the user database")
	}
	g, err := user.LookupGroupId(strconv.Itoa(view.GID))
	if err != nil {
		t.Skipf("gid %d: %v", view.GID, err)
	}
	c := NewChecker(Options{}, view)
	for _, tc := range []struct{ user, group, key string }{
		{"root", "", "UserName"},
		{"", "root", "GroupName"},
		{view.User, "root", "GroupName"},
		{view.User, g.Name, ""},
		{view.User, "", ""},
	} {
		j := &job.Job{Label: "t", Path: "/bin/true", Argv: []string{"true"}, UserName: tc.user, GroupName: tc.group}
		var keys []string
		for _, p := range c.Check(j) {
			if p.Fatal {
				keys = append(keys, p.Key+": "+p.Msg)
			}
		}
		switch {
		case tc.key == "" && len(keys) > 0:
			t.Errorf("user %q group %q: refused: %v", tc.user, tc.group, keys)
		case tc.key != "" && (len(keys) != 1 || !strings.HasPrefix(keys[0], tc.key+": ") || !strings.Contains(keys[0], "sockd is not running as root")):
			t.Errorf("user %q group %q: %v, want one refusal naming %s", tc.user, tc.group, keys, tc.key)
		}
	}
}
