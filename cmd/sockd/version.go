package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at link time: go build -ldflags "-X main.version=1.2.3".
var version string

func init() {
	register(withFlags(command{name: "version", summary: "print sockd's version",
		about: "Prints the version sockd was built as (go build -ldflags \"-X main.version=VERSION\"; " +
			"else the module version or VCS revision), the Go version and the platform."},
		func(*struct{}, *flag.FlagSet, defaults) {}, runVersion))
}

// versionString is the link-time version, else the module version or VCS
// revision from the build info, else "devel".
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		return "devel+" + rev + dirty
	}
	return "devel"
}

func runVersion(_ *struct{}, pos []string) error {
	if len(pos) > 0 {
		return usageError(fmt.Errorf("unexpected argument %q", pos[0]))
	}
	fmt.Printf("sockd %s (%s %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
