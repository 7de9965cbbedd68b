package trigger

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestQueueDirectory: emptiness and the fingerprint that tells progress.
func TestQueueDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	if ne, err := NotEmpty(dir); ne || err != nil {
		t.Errorf("missing directory: %v %v", ne, err)
	}
	os.Mkdir(dir, 0o755)
	if ne, err := NotEmpty(dir); ne || err != nil {
		t.Errorf("empty directory: %v %v", ne, err)
	}
	os.WriteFile(filepath.Join(dir, ".hidden"), nil, 0o644)
	if ne, err := NotEmpty(dir); !ne || err != nil {
		t.Errorf("a hidden entry: %v %v", ne, err)
	}
	a, _ := Fingerprint(dir)
	if b, _ := Fingerprint(dir); a != b {
		t.Error("fingerprint changed with nothing done")
	}
	os.WriteFile(filepath.Join(dir, "job"), []byte("x"), 0o644)
	b, _ := Fingerprint(dir)
	if a == b {
		t.Error("fingerprint did not change with a file added")
	}
	os.Chtimes(filepath.Join(dir, "job"), time.Now(), time.Now().Add(time.Hour))
	if c, _ := Fingerprint(dir); c == b {
		t.Error("fingerprint did not change with a file touched")
	}
}

// TestOnce: one claim per boot; a record of another boot is replaced; a
// released claim can be made again; labels become safe file names.
func TestOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "once")
	o := NewOnce(dir, "boot-1")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if ok, _, err := o.Claim("org.example.x", now); !ok || err != nil {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	ok, rec, err := o.Claim("org.example.x", now.Add(time.Hour))
	if ok || err != nil || !rec.At.Equal(now) || rec.File != filepath.Join(dir, "org.example.x") {
		t.Errorf("second claim: %v %+v %v", ok, rec, err)
	}
	if _, found, _ := o.Lookup("org.example.x"); !found {
		t.Error("lookup")
	}
	if _, found, _ := NewOnce(dir, "boot-2").Lookup("org.example.x"); found {
		t.Error("a record of another boot counts")
	}
	if ok, _, _ := NewOnce(dir, "boot-2").Claim("org.example.x", now); !ok {
		t.Error("a record of another boot was not replaced")
	}
	o2 := NewOnce(dir, "boot-2")
	if err := o2.Release("org.example.x"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := o2.Claim("org.example.x", now); !ok {
		t.Error("claim after release")
	}
	for _, label := range []string{"a/b", "..", ".x", ""} {
		p := o.Path(label)
		if filepath.Dir(p) != dir || filepath.Base(p) == ".." {
			t.Errorf("label %q: path %s", label, p)
		}
		if ok, _, err := o.Claim(label, now); !ok || err != nil {
			t.Errorf("label %q: %v %v", label, ok, err)
		}
	}
}
