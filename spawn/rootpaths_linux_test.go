//go:build linux && cgo

package spawn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sockd/sockd/internal/privilege"
	"github.com/sockd/sockd/job"
)

// TestRootPaths: a job root runs as root may not write, read, chdir or
// chroot through a path another user can change. Root used to append a
// root job's output to whatever file the user linked the name to; now the
// job is refused at load, naming the key. The same paths are fine for a
// job that runs as that user, and in directories only root can change.
func TestRootPaths(t *testing.T) {
	a := newTestAccount(t)
	base, err := os.MkdirTemp("", "sockd-rootpaths-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	user := filepath.Join(base, "home")
	os.Mkdir(user, 0o755)
	os.Chown(user, a.uid, a.gid1)
	sticky := filepath.Join(base, "tmp")
	os.Mkdir(sticky, 0o755)
	os.Chmod(sticky, 0o1777)
	rootDir := filepath.Join(base, "log")
	os.Mkdir(rootDir, 0o755)
	linkHome := filepath.Join(user, "logs")
	os.Symlink(rootDir, linkHome)
	os.Lchown(linkHome, a.uid, a.gid1)

	c := NewChecker(Options{AsRoot: true}, privilege.View{UID: 0, Caps: ^uint64(0)})
	cases := []struct {
		name, key, want string
		set             func(j *job.Job)
	}{
		{"out in a user's directory", "StandardOutPath", "which a user other than root can write", func(j *job.Job) { j.StandardOutPath = filepath.Join(user, "out.log") }},
		{"err in a sticky directory", "StandardErrorPath", "could make the name a link", func(j *job.Job) { j.StandardErrorPath = filepath.Join(sticky, "err.log") }},
		{"in through a user's link", "StandardInPath", "symbolic link", func(j *job.Job) { j.StandardInPath = filepath.Join(linkHome, "in") }},
		{"below a user's directory", "StandardOutPath", "a directory above it", func(j *job.Job) {
			os.MkdirAll(filepath.Join(user, "sub"), 0o755)
			j.StandardOutPath = filepath.Join(user, "sub", "out.log")
		}},
		{"root directory of a user", "RootDirectory", "can be changed by uid", func(j *job.Job) { j.RootDirectory = user }},
		{"working directory of a user", "WorkingDirectory", "can be changed by uid", func(j *job.Job) { j.WorkingDirectory = user }},
		{"root's own directory", "", "", func(j *job.Job) { j.StandardOutPath = filepath.Join(rootDir, "out.log"); j.WorkingDirectory = rootDir }},
		{"the user's own job", "", "", func(j *job.Job) { j.StandardOutPath = filepath.Join(user, "out.log"); j.UserName = a.name }},
	}
	for _, tc := range cases {
		j := helperJob(t, "report")
		tc.set(j)
		var got []string
		for _, p := range c.Check(j) {
			if strings.Contains(p.Key, "Path") || strings.HasSuffix(p.Key, "Directory") {
				got = append(got, p.Key+": "+p.Msg)
				if tc.key == "" || p.Key != tc.key || !p.Fatal || !strings.Contains(p.Msg, tc.want) {
					t.Errorf("%s: %s: %s (fatal %t), want %s: ...%s...", tc.name, p.Key, p.Msg, p.Fatal, tc.key, tc.want)
				}
			}
		}
		if tc.key != "" && len(got) == 0 {
			t.Errorf("%s: no problem reported, want %s: ...%s...", tc.name, tc.key, tc.want)
		}
	}
}
