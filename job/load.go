package job

import (
	"errors"
	"fmt"
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
	data, fi, link, err := cfgfile.ReadFile(path, MaxFileSize)
	var nr *cfgfile.NotRegularError
	if errors.As(err, &nr) {
		return fail("is %s, not a regular file; job files must be regular files", cfgfile.Kind(nr.Mode))
	}
	if fi == nil && err != nil {
		return fail("cannot read the job file: %v", err)
	}
	if d := checkFile(path, fi, link, opts); d != nil {
		return nil, Diags{*d}
	}
	if err != nil {
		return fail("cannot read the job file: %v", err)
	}
	if len(data) > MaxFileSize {
		return fail("file is larger than the %d bytes sockd accepts for a job file", MaxFileSize)
	}
	return data, nil
}

// CheckFile applies the job files' rule to the file opened at path, fi
// being its fstat: not group- or world-writable, owned by root or by
// opts.UID (checkPermissions); where path is a symbolic link, the link
// itself must be owned by root or opts.UID too. Every configuration file
// sockd reads, an import's included ones as well, obeys it. It returns
// nil with opts.SkipPermissions.
func CheckFile(path string, fi os.FileInfo, opts LoadOptions) *Diag {
	return checkFile(path, fi, true, opts)
}

// checkFile is CheckFile for a path known to be a symbolic link or not.
func checkFile(path string, fi os.FileInfo, link bool, opts LoadOptions) *Diag {
	if opts.SkipPermissions {
		return nil
	}
	if link {
		if d := checkLink(path, opts.UID); d != nil {
			return d
		}
	}
	return checkPermissions(path, fi, opts.UID)
}

// CheckDir applies launchctl's rule for a job directory to dir, whose
// entries sockd loads: owned by root or by opts.UID and not group- or
// world-writable, or another user could add jobs to it (a link named dir
// must be owned by root or opts.UID too). Nothing from a directory that
// fails it may be loaded. It returns nil with opts.SkipPermissions.
func CheckDir(dir string, opts LoadOptions) *Diag {
	if opts.SkipPermissions {
		return nil
	}
	if d := checkLink(dir, opts.UID); d != nil {
		return d
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return &Diag{File: dir, Severity: Error, Msg: fmt.Sprintf("cannot read the directory: %v", err)}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return &Diag{File: dir, Severity: Error, Msg: fmt.Sprintf(
			"directory is group- or world-writable (mode %#o), so anyone in that group could add a job that root runs; nothing in it is loaded: chmod go-w %s",
			uint32(perm), dir)}
	}
	if owner, ok := fileOwner(fi); ok && owner != 0 && owner != opts.UID {
		return &Diag{File: dir, Severity: Error, Msg: fmt.Sprintf(
			"directory is owned by uid %d, which is neither root nor the user sockd runs as (uid %d), so that user could add jobs to it; nothing in it is loaded: %s",
			owner, opts.UID, chownFix(dir, opts.UID))}
	}
	return nil
}

// checkLink refuses a symbolic link at path owned by another user than
// root or uid: that user could point it elsewhere.
func checkLink(path string, uid int) *Diag {
	li, err := os.Lstat(path)
	if err != nil || li.Mode()&os.ModeSymlink == 0 {
		return nil
	}
	if owner, ok := fileOwner(li); ok && owner != 0 && owner != uid {
		return &Diag{File: path, Severity: Error, Msg: fmt.Sprintf(
			"is a symbolic link owned by uid %d, which is neither root nor the user sockd runs as (uid %d), so that user could point it at another file; launchd skips such links too: replace it with a link of root's (ln -sfn TARGET %s as root) or with the file itself",
			owner, uid, path)}
	}
	return nil
}

// chownFix is the command that gives path to root (or to uid).
func chownFix(path string, uid int) string {
	if uid != 0 {
		return fmt.Sprintf("chown %d %s (or chown root %s)", uid, path, path)
	}
	return "chown root " + path
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
		return &Diag{File: path, Severity: Error, Msg: fmt.Sprintf(
			"file is owned by uid %d, which is neither root nor the user sockd runs as (uid %d); launchd skips such files too: %s",
			owner, uid, chownFix(path, uid))}
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
