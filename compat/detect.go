package compat

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
)

// Format is a configuration format sockd can read.
type Format int

const (
	FormatUnknown Format = iota
	// FormatLaunchd is a launchd job file (XML, binary or OpenStep plist).
	FormatLaunchd
	// FormatInetd is an inetd.conf file.
	FormatInetd
	// FormatXinetd is an xinetd configuration file.
	FormatXinetd
	// FormatSystemd is a systemd unit file (a socket unit, or the service
	// a socket unit activates).
	FormatSystemd
)

func (f Format) String() string {
	switch f {
	case FormatLaunchd:
		return "launchd"
	case FormatInetd:
		return "inetd"
	case FormatXinetd:
		return "xinetd"
	case FormatSystemd:
		return "systemd"
	}
	return "unknown"
}

var (
	xinetdBlock = regexp.MustCompile(`^(service\s+\S+|defaults)\s*\{?$|^includedir\s+\S+$`)
	inetdWait   = regexp.MustCompile(`^(no)?wait([.:/].*)?$`)
)

// Detect tells the format of a configuration file from its path and
// content; see the package documentation for the rule.
func Detect(path string, data []byte) Format {
	base := filepath.Base(path)
	switch {
	case strings.HasSuffix(base, ".plist"):
		return FormatLaunchd
	case strings.HasPrefix(base, "xinetd.conf"):
		return FormatXinetd
	case strings.HasPrefix(base, "inetd.conf"):
		return FormatInetd
	case strings.HasSuffix(base, ".socket"), strings.HasSuffix(base, ".service"):
		return FormatSystemd
	case filepath.Base(filepath.Dir(path)) == "xinetd.d":
		return FormatXinetd
	}
	if bytes.HasPrefix(data, []byte("bplist00")) {
		return FormatLaunchd
	}
	head := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n")
	for _, p := range []string{"<?xml", "<plist", "<!DOCTYPE plist", "{"} {
		if bytes.HasPrefix(head, []byte(p)) {
			return FormatLaunchd
		}
	}
	if len(data) > MaxFileSize {
		data = data[:MaxFileSize]
	}
	lines := strings.Split(string(data), "\n")
	for _, ln := range lines {
		t := strings.TrimSpace(ln)
		if t != "" && !strings.HasPrefix(t, "#") && xinetdBlock.MatchString(t) {
			return FormatXinetd
		}
		if t == "[Socket]" {
			return FormatSystemd
		}
	}
	// inetd: an entry line, else a commented-out entry line (files that
	// ship with every service disabled).
	for _, commented := range []bool{false, true} {
		for _, ln := range lines {
			t := strings.TrimSpace(ln)
			if strings.HasPrefix(t, "#") != commented {
				continue
			}
			t = strings.TrimLeft(t, "# \t")
			f := strings.Fields(t)
			if len(f) >= 6 && inetdWait.MatchString(f[3]) {
				return FormatInetd
			}
		}
	}
	return FormatUnknown
}
