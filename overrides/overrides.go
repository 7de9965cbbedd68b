// Package overrides keeps what an admin changed about jobs without editing
// their files: the jobs `sockd disable` turned off, which stay off across
// reloads and restarts of sockd until `sockd enable`, and the user domains
// `sockd bootstrap user/UID` brought up, with the files bootstrapped into
// them, served until `sockd bootout user/UID`. The file lives in
// sockd's state directory (DefaultPath) and is written atomically; a
// corrupt file is an error naming it, and the daemon goes on without it.
package overrides

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// File is the content of an overrides file.
type File struct {
	// Disabled are the labels of disabled jobs.
	Disabled map[string]bool
	// Domains are the user domains served, by uid, each with the job
	// files bootstrapped into it (besides its jobs directory).
	Domains map[int][]string
}

// onDisk is the file's JSON form.
type onDisk struct {
	Version  int          `json:"version"`
	Disabled []string     `json:"disabled"`
	Domains  []domainDisk `json:"domains,omitempty"`
}

type domainDisk struct {
	UID   int      `json:"uid"`
	Files []string `json:"files,omitempty"`
}

// DefaultPath is the overrides file of a sockd running as uid:
// /var/lib/sockd/overrides.json for root; for a user
// $XDG_STATE_HOME/sockd/overrides.json, else ~/.local/state/sockd/overrides.json.
func DefaultPath(uid int) string {
	if uid == 0 {
		return "/var/lib/sockd/overrides.json"
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "sockd", "overrides.json")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "state", "sockd", "overrides.json")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("sockd-%d", uid), "overrides.json")
}

// Load reads the file at path; a missing file is an empty one.
func Load(path string) (*File, error) {
	f := &File{Disabled: map[string]bool{}, Domains: map[int][]string{}}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("overrides file %s: %w", path, err)
	}
	var d onDisk
	if err := json.Unmarshal(data, &d); err != nil {
		return f, fmt.Errorf("overrides file %s is corrupt (%v): no job is disabled by it until it is fixed or removed", path, err)
	}
	if d.Version != 1 {
		return f, fmt.Errorf("overrides file %s: version %d, this sockd reads version 1", path, d.Version)
	}
	for _, l := range d.Disabled {
		f.Disabled[l] = true
	}
	for _, dd := range d.Domains {
		f.Domains[dd.UID] = dd.Files
	}
	return f, nil
}

// Save writes f to path atomically (a temporary file in the same
// directory, synced, then renamed over it), creating the directory.
func (f *File) Save(path string) error {
	labels := make([]string, 0, len(f.Disabled))
	for l, off := range f.Disabled {
		if off {
			labels = append(labels, l)
		}
	}
	sort.Strings(labels)
	var domains []domainDisk
	for uid, files := range f.Domains {
		domains = append(domains, domainDisk{UID: uid, Files: files})
	}
	sort.Slice(domains, func(a, b int) bool { return domains[a].UID < domains[b].UID })
	data, err := json.MarshalIndent(onDisk{Version: 1, Disabled: labels, Domains: domains}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("overrides file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, ".overrides-*")
	if err != nil {
		return fmt.Errorf("overrides file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename: ENOENT, ignored
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("overrides file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("overrides file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("overrides file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("overrides file %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	_ = d.Sync() // not every file system syncs directories
	return nil
}
