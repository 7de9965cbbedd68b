package overrides

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "overrides.json")
	f, err := Load(path)
	if err != nil || len(f.Disabled) != 0 {
		t.Fatalf("missing file: %v %v", f.Disabled, err)
	}
	f.Disabled["org.b"], f.Disabled["org.a"], f.Disabled["org.off"] = true, true, false
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), `"org.a",`) || strings.Contains(string(data), "org.off") {
		t.Errorf("file:\n%s", data)
	}
	g, err := Load(path)
	if err != nil || !g.Disabled["org.a"] || !g.Disabled["org.b"] || len(g.Disabled) != 2 {
		t.Fatalf("reloaded: %v %v", g.Disabled, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "overrides.json")
	os.WriteFile(path, []byte(`{"version":1,"disabled":["a"`), 0o644)
	f, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("err = %v, want a corrupt-file error naming %s", err, path)
	}
	if f == nil || len(f.Disabled) != 0 {
		t.Errorf("a corrupt file disables %v", f.Disabled)
	}
	os.WriteFile(path, []byte(`{"version":7,"disabled":[]}`), 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "version 7") {
		t.Errorf("err = %v", err)
	}
}
