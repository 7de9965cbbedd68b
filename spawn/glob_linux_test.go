//go:build linux && cgo

package spawn

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestGlobAsJobUser: root sockd expands EnableGlobbing with the job's file
// credentials. A pattern in a root-only directory used to expand as root
// and give the job (and whoever it answers) the names in it; as the job's
// user it matches nothing and stays as written. A directory the job's
// supplementary group may read still expands, and sockd's own rights are
// back afterwards.
func TestGlobAsJobUser(t *testing.T) {
	a := newTestAccount(t)
	base, err := os.MkdirTemp("", "sockd-glob-") // t.TempDir's parent is 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(base, "secret")
	shared := filepath.Join(base, "shared")
	for _, d := range []string{secret, shared} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "name.key"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(shared, 0, a.gid2); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o750); err != nil {
		t.Fatal(err)
	}
	j := helperJob(t, "report", secret+"/*", shared+"/*")
	j.EnableGlobbing = true
	j.UserName = a.name
	j.InitGroups = true
	tpl := newTemplate(t, j, Options{AsRoot: true})
	s := &scratch{}
	if err := tpl.expand(s); err != nil {
		t.Fatal(err)
	}
	want := []string{testExe(t), "report", secret + "/*", shared + "/name.key"}
	if !slices.Equal(s.words, want) {
		t.Errorf("argv =\n%q\nwant\n%q", s.words, want)
	}
	if _, err := os.ReadDir(secret); err != nil {
		t.Errorf("sockd lost its own rights: %v", err)
	}
	root := helperJob(t, "report", secret+"/*")
	root.EnableGlobbing = true
	tpl = newTemplate(t, root, Options{AsRoot: true})
	if err := tpl.expand(s); err != nil {
		t.Fatal(err)
	}
	if s.words[2] != secret+"/name.key" {
		t.Errorf("a root job's glob: %q", s.words)
	}
}
