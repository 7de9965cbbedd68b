package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/sockd/sockd/control"
)

// version is set at link time: go build -ldflags "-X main.version=1.2.3".
var version string

func init() {
	register(withFlags(command{name: "version", summary: "print sockd's version, or the running daemon's",
		synopsis: "[--daemon] [--control PATH] [--json]",
		about: "Prints the version sockd was built as (go build -ldflags \"-X main.version=VERSION\"; " +
			"else the module version or VCS revision), the Go version and the platform. " +
			"With --daemon, asks the running sockd through its control socket instead: its version, pid, when its image started, and the version it upgraded in place from, if it did."},
		(*versionFlags).define, runVersion))
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

// versionFlags are version's command line.
type versionFlags struct {
	daemon  bool
	control string
	json    bool
}

func (f *versionFlags) define(fs *flag.FlagSet, d defaults) {
	fs.BoolVar(&f.daemon, "daemon", false, "ask the running sockd for its version")
	fs.StringVar(&f.control, "control", d.asks, "with --daemon: the control socket `PATH` of the sockd to ask")
	fs.BoolVar(&f.json, "json", false, "with --daemon: print the answer as JSON")
}

func runVersion(f *versionFlags, pos []string) error {
	if len(pos) > 0 {
		return usageError(fmt.Errorf("unexpected argument %q", pos[0]))
	}
	if f.daemon {
		return daemonVersion(f)
	}
	fmt.Printf("sockd %s (%s %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// daemonVersion asks the running sockd for its version.
func daemonVersion(f *versionFlags) error {
	resp, err := askDaemon(f.control, control.Request{Cmd: control.CmdVersion}, 0)
	if err != nil {
		return err
	}
	if f.json || resp.Status != control.OK || resp.Daemon == nil {
		return printStatus(os.Stdout, f.json, resp)
	}
	d := resp.Daemon
	fmt.Printf("sockd %s (pid %d, image started %s", d.Version, d.Pid, d.Started)
	if d.UpgradedFrom != "" {
		fmt.Printf(", upgraded in place from %s", d.UpgradedFrom)
	}
	fmt.Println(")")
	return nil
}
