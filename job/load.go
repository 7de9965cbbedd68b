package job

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sockd/sockd/internal/cfgfile"
)

// LoadOptions control the file-system checks of LoadFile and LoadPaths.
type LoadOptions struct {
	// UID is the uid sockd runs as: a job file must be owned by root or by
	// this uid (launchctl's rule).
	UID int
	// SkipPermissions turns the ownership and permission checks off (for
	// test data, like launchctl load -F).
	SkipPermissions bool
	// Hostname is the host name LimitLoadToHosts and LimitLoadFromHosts are
	// compared with (SelectForHost); empty means the kernel's (uname -n).
	Hostname string
}

// LoadFile reads, checks and decodes one job file. Besides Decode's checks
// it refuses files that launchd would skip: not regular, group- or
// world-writable, or owned by someone other than root or opts.UID. The Job
// is nil when the file has errors.
func LoadFile(path string, opts LoadOptions) (*Job, Diags) {
	data, diags := ReadFile(path, opts)
	if diags.HasErrors() {
		return nil, diags
	}
	j, more := Decode(data, path)
	return j, append(diags, more...)
}

// ReadFile applies LoadFile's file-system checks and returns the content
// (at most MaxFileSize bytes); importers of other formats use it so that
// every job file obeys the same rules.
func ReadFile(path string, opts LoadOptions) ([]byte, Diags) {
	fail := func(format string, args ...any) ([]byte, Diags) {
		return nil, Diags{{File: path, Severity: Error, Msg: fmt.Sprintf(format, args...)}}
	}
	f, fi, err := cfgfile.Open(path)
	var nr *cfgfile.NotRegularError
	if errors.As(err, &nr) {
		return fail("is %s, not a regular file; job files must be regular files", cfgfile.Kind(nr.Mode))
	}
	if err != nil {
		return fail("cannot read the job file: %v", err)
	}
	defer f.Close()
	if !opts.SkipPermissions {
		if d := checkPermissions(path, fi, opts.UID); d != nil {
			return nil, Diags{*d}
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return fail("cannot read the job file: %v", err)
	}
	if len(data) > MaxFileSize {
		return fail("file is larger than the %d bytes sockd accepts for a job file", MaxFileSize)
	}
	return data, nil
}

// checkPermissions applies launchctl's path_goodness_check: a job file
// may not be group- or world-writable and must be owned by root or by the
// user loading it.
func checkPermissions(path string, fi os.FileInfo, uid int) *Diag {
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return &Diag{File: path, Severity: Error, Msg: fmt.Sprintf(
			"file is group- or world-writable (mode %#o), so anyone in that group could change what runs; launchd skips such files too: chmod go-w %s",
			uint32(perm), path)}
	}
	if owner, ok := fileOwner(fi); ok && owner != 0 && owner != uid {
		fix := "chown root " + path
		if uid != 0 {
			fix = fmt.Sprintf("chown %d %s (or chown root %s)", uid, path, path)
		}
		return &Diag{File: path, Severity: Error, Msg: fmt.Sprintf(
			"file is owned by uid %d, which is neither root nor the user sockd runs as (uid %d); launchd skips such files too: %s",
			owner, uid, fix)}
	}
	return nil
}

// ExpandPaths turns the files and directories of paths into the list of
// job files to load: a file is taken as given; in a directory every entry
// whose name ends in ".plist" (any case), sorted by name. Sub-directories
// are not searched.
func ExpandPaths(paths []string) ([]string, Diags) {
	var files []string
	var diags Diags
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			diags = append(diags, Diag{File: p, Severity: Error, Msg: fmt.Sprintf("cannot read: %v", err)})
			continue
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			diags = append(diags, Diag{File: p, Severity: Error, Msg: fmt.Sprintf("cannot read the directory: %v", err)})
			continue
		}
		var names []string
		for _, e := range entries {
			if !strings.HasSuffix(strings.ToLower(e.Name()), ".plist") {
				continue
			}
			if e.IsDir() {
				diags = append(diags, Diag{File: filepath.Join(p, e.Name()), Severity: Warning,
					Msg: "is a directory, not a job file; skipped (sub-directories are not searched)"})
				continue
			}
			names = append(names, e.Name())
		}
		sort.Strings(names)
		for _, n := range names {
			files = append(files, filepath.Join(p, n))
		}
	}
	return files, diags
}
